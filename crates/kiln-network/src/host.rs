//! The host's side of networking behind a small trait: links, network
//! namespaces, routes and kiln's nftables table. [`IpCommands`] runs
//! iproute2's `ip` and nftables' `nft` (see the crate doc for why);
//! [`testing::FakeHost`](crate::testing::FakeHost) keeps links in memory
//! so the bookkeeping is tested without root.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::error::{NetworkError, Result};
use crate::ipam::Subnet;

/// A container's end of the bridge, to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub netns: String,
    /// The host's end.
    pub veth: String,
    /// The container's end (`eth0`, `eth1`…).
    pub ifname: String,
    pub bridge: String,
    pub ip: Ipv4Addr,
    pub subnet: Subnet,
    pub mac: String,
    /// Not on an internal network, which has no way out.
    pub default_route: bool,
}

pub trait NetHost {
    /// The host's IPv4 routes' destinations (a new bridge must overlap none).
    fn routes(&self) -> Result<Vec<Subnet>>;
    fn link_exists(&self, name: &str) -> bool;
    /// A bridge with the subnet's gateway address, up.
    fn create_bridge(&self, name: &str, subnet: &Subnet) -> Result<()>;
    /// Removes a link; a missing one is not an error.
    fn delete_link(&self, name: &str) -> Result<()>;
    /// A named namespace (under `/run/netns`), empty.
    fn create_netns(&self, name: &str) -> Result<()>;
    /// In the namespace [`create_netns`](Self::create_netns) made: the
    /// endpoint's interface (a veth whose peer is on the bridge), the
    /// address, loopback up and, if asked, the default route.
    fn create_endpoint(&self, ep: &Endpoint) -> Result<()>;
    /// Points namespace `netns`'s default route at `via` (the container
    /// left the network its route went through).
    fn set_default_route(&self, netns: &str, via: Ipv4Addr) -> Result<()>;
    /// Removes a named namespace; a missing one is not an error.
    fn delete_netns(&self, name: &str) -> Result<()>;
    /// Replaces kiln's nftables table with `ruleset` atomically, or
    /// removes it (`None`).
    fn apply_rules(&self, ruleset: Option<&str>) -> Result<()>;
    /// Lets the bridges' traffic through iptables' FORWARD chain (see
    /// the crate doc): kiln's own chain `KILN-FORWARD` with an accept per
    /// bridge (`(name, internal)`), jumped to from FORWARD; none left
    /// (chain and jump removed) when `bridges` is empty.
    fn allow_forward(&self, bridges: &[(String, bool)]) -> Result<()>;
}

/// iproute2 and nftables through their command-line tools.
#[derive(Debug, Default, Clone)]
pub struct IpCommands;

fn run(program: &'static str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let fail = |message: String| NetworkError::Command {
        program,
        args: args.join(" "),
        message,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} is not installed (Debian: iproute2, nftables)")
            } else {
                e.to_string()
            })
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn gone(e: &NetworkError) -> bool {
    matches!(e, NetworkError::Command { message, .. }
        if message.contains("Cannot find device") || message.contains("No such file"))
}

impl NetHost for IpCommands {
    fn routes(&self) -> Result<Vec<Subnet>> {
        let out = run("ip", &["-4", "route", "show", "table", "all"], None)?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let mut dst = words.next()?;
                if matches!(dst, "local" | "broadcast" | "unicast") {
                    dst = words.next()?;
                }
                dst.parse::<Subnet>().ok()
            })
            // Host routes of the host's own addresses (table local) say
            // nothing about whole subnets; default routes overlap all.
            .filter(|s| s.prefix > 0 && s.prefix < 32)
            .collect())
    }

    fn link_exists(&self, name: &str) -> bool {
        std::path::Path::new("/sys/class/net").join(name).exists()
    }

    fn create_bridge(&self, name: &str, subnet: &Subnet) -> Result<()> {
        // A fixed MAC: a bridge without one takes its lowest port's, and
        // changes it as containers come and go, which strands the
        // containers' ARP entries for the gateway.
        let script = format!(
            "link add {name} address {} type bridge\naddr add {}/{} dev {name}\nlink set {name} up\n",
            crate::bridge::mac_for(subnet.gateway()),
            subnet.gateway(),
            subnet.prefix
        );
        run("ip", &["-batch", "-"], Some(&script)).map(drop)
    }

    fn delete_link(&self, name: &str) -> Result<()> {
        match run("ip", &["link", "del", name], None) {
            Err(e) if !gone(&e) => Err(e),
            _ => Ok(()),
        }
    }

    fn create_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let Endpoint {
            netns,
            veth,
            ifname,
            bridge,
            ..
        } = ep;
        let host = format!(
            "link add {veth} type veth peer name {ifname} netns {netns}\nlink set {veth} master {bridge} up\n"
        );
        run("ip", &["-batch", "-"], Some(&host))?;
        let mut inside = format!(
            "link set lo up\nlink set {ifname} address {}\naddr add {}/{} dev {ifname}\nlink set {ifname} up\n",
            ep.mac, ep.ip, ep.subnet.prefix,
        );
        if ep.default_route {
            inside.push_str(&format!("route add default via {}\n", ep.subnet.gateway()));
        }
        run("ip", &["-n", netns, "-batch", "-"], Some(&inside)).map(drop)
    }

    fn set_default_route(&self, netns: &str, via: Ipv4Addr) -> Result<()> {
        let via = via.to_string();
        run(
            "ip",
            &["-n", netns, "route", "replace", "default", "via", &via],
            None,
        )
        .map(drop)
    }

    fn create_netns(&self, name: &str) -> Result<()> {
        run("ip", &["netns", "add", name], None).map(drop)
    }

    fn delete_netns(&self, name: &str) -> Result<()> {
        if !netns_path(name).exists() {
            return Ok(());
        }
        match run("ip", &["netns", "del", name], None) {
            Err(e) if !gone(&e) => Err(e),
            _ => Ok(()),
        }
    }

    fn apply_rules(&self, ruleset: Option<&str>) -> Result<()> {
        // Declaring the table first makes the delete safe when it is
        // absent; the whole file is one transaction.
        let mut script = format!(
            "table ip {table}\ndelete table ip {table}\n",
            table = crate::nat::TABLE
        );
        if let Some(r) = ruleset {
            script.push_str(r);
        }
        run("nft", &["-f", "-"], Some(&script)).map(drop)
    }

    fn allow_forward(&self, bridges: &[(String, bool)]) -> Result<()> {
        match allow_forward(bridges) {
            // A host without iptables has no FORWARD chain to pass.
            Err(e) if iptables_missing(&e) => Ok(()),
            r => r,
        }
    }
}

const FORWARD_CHAIN: &str = "KILN-FORWARD";

fn iptables_missing(e: &NetworkError) -> bool {
    matches!(e, NetworkError::Command { message, .. } if message.contains("is not installed"))
}

impl IpCommands {
    fn forward_rules(bridges: &[(String, bool)]) -> String {
        let mut s = format!("*filter\n:{FORWARD_CHAIN} - [0:0]\n");
        for (b, internal) in bridges {
            if *internal {
                s.push_str(&format!("-A {FORWARD_CHAIN} -i {b} -o {b} -j ACCEPT\n"));
            } else {
                s.push_str(&format!("-A {FORWARD_CHAIN} -i {b} -j ACCEPT\n"));
                s.push_str(&format!("-A {FORWARD_CHAIN} -o {b} -j ACCEPT\n"));
            }
        }
        s.push_str("COMMIT\n");
        s
    }
}

fn allow_forward(bridges: &[(String, bool)]) -> Result<()> {
    let jump = ["-w", "-C", "FORWARD", "-j", FORWARD_CHAIN];
    if bridges.is_empty() {
        if run("iptables", &jump, None).is_ok() {
            run(
                "iptables",
                &["-w", "-D", "FORWARD", "-j", FORWARD_CHAIN],
                None,
            )?;
        }
        let _ = run("iptables", &["-w", "-F", FORWARD_CHAIN], None);
        let _ = run("iptables", &["-w", "-X", FORWARD_CHAIN], None);
        return Ok(());
    }
    run(
        "iptables-restore",
        &["-w", "--noflush"],
        Some(&IpCommands::forward_rules(bridges)),
    )?;
    if run("iptables", &jump, None).is_err() {
        run(
            "iptables",
            &["-w", "-I", "FORWARD", "1", "-j", FORWARD_CHAIN],
            None,
        )?;
    }
    Ok(())
}

/// Where `ip netns` keeps a named namespace: what a runtime spec joins.
pub fn netns_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new("/run/netns").join(name)
}
