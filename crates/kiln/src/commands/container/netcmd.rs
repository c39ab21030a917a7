//! `kiln network create|ls|inspect|rm|prune|connect|disconnect`, docker's
//! columns and document (the parts kiln has: bridge driver, local scope,
//! one IPv4 subnet).

use std::process::ExitCode;

use serde_json::json;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls,
    /// Display detailed information on one or more networks
    Inspect {
        /// Networks, by name or ID
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        /// Networks, by name or ID
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove all unused networks
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network
    Connect {
        /// Add network-scoped alias for the container
        #[arg(long = "alias", value_name = "ALIAS")]
        aliases: Vec<String>,
        /// IPv4 address (e.g., 172.30.100.104)
        #[arg(long)]
        ip: Option<std::net::Ipv4Addr>,
        /// The network, by name
        network: String,
        /// The container, by name or ID
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Force the container to disconnect from a network
        #[arg(short, long)]
        force: bool,
        /// The network, by name
        network: String,
        /// The container, by name or ID
        container: String,
    },
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    /// Name of the new network
    name: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    subnet: Option<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Driver to manage the Network (only bridge)
    #[arg(short, long, default_value = "bridge")]
    driver: String,
}

pub(crate) fn run(store: &kiln_store::Store, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Connect {
            aliases,
            ip,
            network,
            container,
        } => {
            let engine = super::engine(store)?;
            kiln_container::net::connect(&engine, &network, &container, aliases, ip)?;
        }
        Command::Disconnect {
            force: _,
            network,
            container,
        } => {
            let engine = super::engine(store)?;
            kiln_container::net::disconnect(&engine, &network, &container)?;
        }
        Command::Create(a) => {
            if a.driver != "bridge" {
                anyhow::bail!(
                    "plugin \"{}\" not found: kiln has the bridge driver",
                    a.driver
                );
            }
            let n = kiln_container::net::create_network(&a.name, a.subnet.as_deref(), a.internal)?;
            println!("{}", n.id);
        }
        Command::Ls => {
            let mut rows: Vec<(String, String, &str)> = ["bridge", "host", "none"]
                .iter()
                .map(|n| {
                    (
                        String::new(),
                        n.to_string(),
                        if *n == "none" { "null" } else { n },
                    )
                })
                .collect();
            for (name, n, _) in kiln_container::net::user_networks() {
                rows.push((n.id[..12].to_string(), name, "bridge"));
            }
            rows.sort_by(|a, b| a.1.cmp(&b.1));
            println!("{:<15}{:<15}{:<10}SCOPE", "NETWORK ID", "NAME", "DRIVER");
            for (id, name, driver) in rows {
                println!("{id:<15}{name:<15}{driver:<10}local");
            }
        }
        Command::Inspect { names } => {
            let user = kiln_container::net::user_networks();
            let mut docs = Vec::new();
            for name in &names {
                let Some((name, n, on)) = user
                    .iter()
                    .find(|(x, n, _)| x == name || n.id.starts_with(name.as_str()))
                else {
                    anyhow::bail!("network {name} not found");
                };
                let containers: serde_json::Map<String, serde_json::Value> = on
                    .iter()
                    .map(|(id, l)| {
                        let mac = if l.mac.is_empty() {
                            kiln_network::mac_for(l.ip)
                        } else {
                            l.mac.clone()
                        };
                        (
                            id.clone(),
                            json!({
                                "Name": l.names.first().cloned().unwrap_or_default(),
                                "EndpointID": "",
                                "MacAddress": mac,
                                "IPv4Address": format!("{}/{}", l.ip, n.subnet.prefix),
                                "IPv6Address": "",
                            }),
                        )
                    })
                    .collect();
                docs.push(json!({
                    "Name": name,
                    "Id": n.id,
                    "Created": n.created,
                    "Scope": "local",
                    "Driver": "bridge",
                    "EnableIPv6": false,
                    "IPAM": {"Driver": "default", "Options": {}, "Config": [
                        {"Subnet": n.subnet.to_string(), "Gateway": n.subnet.gateway().to_string()}
                    ]},
                    "Internal": n.internal,
                    "Attachable": false,
                    "Ingress": false,
                    "Containers": containers,
                    "Options": {"com.docker.network.bridge.name": n.bridge},
                    "Labels": {},
                }));
            }
            println!("{}", serde_json::to_string_pretty(&docs)?);
        }
        Command::Rm { names } => {
            let mut failed = false;
            for name in names {
                match kiln_container::net::remove_network(&name) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Prune { .. } => {
            let removed = kiln_container::net::prune_networks()?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
