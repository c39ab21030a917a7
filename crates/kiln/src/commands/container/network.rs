//! Networking flags of `run`/`create` (`-p`, `-P`) and `kiln port`.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use kiln_network::PortSpec;
use kiln_store::Store;

/// `-p` values and `-P` over the image's exposed ports, checked; none
/// where the network publishes nothing (docker's warning for `host`).
pub(crate) fn publish(
    network: &str,
    specs: &[String],
    all: bool,
    exposed: &[String],
) -> anyhow::Result<Vec<PortSpec>> {
    let mut out = Vec::new();
    for s in specs {
        out.extend(kiln_network::parse_publish(s)?);
    }
    if all {
        for p in kiln_network::publish_all(exposed) {
            if !out
                .iter()
                .any(|o| o.container_port == p.container_port && o.proto == p.proto)
            {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return Ok(out);
    }
    match network {
        "host" => {
            eprintln!("WARNING: Published ports are discarded when using host network mode");
            Ok(Vec::new())
        }
        n if n == "none" || n.starts_with("container:") => {
            bail!("conflicting options: port publishing and the container type network mode")
        }
        _ => Ok(out),
    }
}

/// `--mac-address`, checked as docker checks it.
pub(crate) fn mac_address(mac: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(mac) = mac else { return Ok(None) };
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        bail!("{mac} is not a valid mac address");
    }
    Ok(Some(mac.to_ascii_lowercase()))
}

#[derive(Args, Debug)]
pub(crate) struct PortArgs {
    /// Container name or ID
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// `kiln port NAME [PORT[/PROTO]]`: docker's lines.
pub(crate) fn port(store: &Store, args: PortArgs) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    let c = engine.get(&args.container)?;
    let ports = kiln_container::net::ports(&c);
    let Some(filter) = &args.port else {
        for p in &ports {
            println!("{p}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let (num, proto) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let found: Vec<_> = ports
        .iter()
        .filter(|p| p.container_port.to_string() == num && p.proto.to_string() == proto)
        .collect();
    if found.is_empty() {
        bail!(
            "No public port '{num}/{proto}' published for {}",
            args.container
        );
    }
    for p in found {
        println!("{}", kiln_network::ports::host_addr(p.host_ip, p.host_port));
    }
    Ok(ExitCode::SUCCESS)
}
