//! The host's side of networking behind a small trait: links, network
//! namespaces, routes and kiln's nftables table. [`HostNet`] changes
//! links, addresses, routes and namespaces through rtnetlink itself
//! ([`crate::netlink`], no process run) and the rules through `nft` and
//! `iptables` (see the crate doc for why);
//! [`testing::FakeHost`](crate::testing::FakeHost) keeps links in memory
//! so the bookkeeping is tested without root.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::error::{NetworkError, Result};
use crate::ipam::Subnet;
use crate::netlink::Socket;

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

/// The real host: rtnetlink for links, addresses, routes (and the route
/// dump when a bridge is made) and namespaces; `nft` and `iptables` for
/// the rest.
#[derive(Debug, Default, Clone)]
pub struct HostNet;

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

/// A netlink (or namespace) failure, named by the `ip` command that
/// would do the same, so the message says what was attempted.
fn netlink(what: String) -> impl FnOnce(std::io::Error) -> NetworkError {
    move |source| NetworkError::Netlink { what, source }
}

impl NetHost for HostNet {
    fn routes(&self) -> Result<Vec<Subnet>> {
        let routes = Socket::open()
            .and_then(|mut nl| nl.ipv4_routes())
            .map_err(netlink("ip -4 route show table all".into()))?;
        Ok(routes
            .into_iter()
            // Host routes of the host's own addresses (table local) say
            // nothing about whole subnets; default routes overlap all.
            .filter(|(_, prefix)| (1..32).contains(prefix))
            .filter_map(|(addr, prefix)| format!("{addr}/{prefix}").parse().ok())
            .collect())
    }

    fn link_exists(&self, name: &str) -> bool {
        std::path::Path::new("/sys/class/net").join(name).exists()
    }

    fn create_bridge(&self, name: &str, subnet: &Subnet) -> Result<()> {
        let what = || format!("ip link add {name} type bridge");
        let mut nl = Socket::open().map_err(netlink(what()))?;
        // A fixed MAC: a bridge without one takes its lowest port's, and
        // changes it as containers come and go, which strands the
        // containers' ARP entries for the gateway.
        nl.add_bridge(name, &crate::bridge::mac_for(subnet.gateway()))
            .map_err(netlink(what()))?;
        let index = nl
            .link_index(name)
            .map_err(netlink(what()))?
            .ok_or_else(|| netlink(what())(std::io::ErrorKind::NotFound.into()))?;
        let (gw, prefix) = (subnet.gateway(), subnet.prefix);
        nl.add_address(index, gw, prefix)
            .map_err(netlink(format!("ip addr add {gw}/{prefix} dev {name}")))?;
        nl.set_up(index)
            .map_err(netlink(format!("ip link set {name} up")))
    }

    fn delete_link(&self, name: &str) -> Result<()> {
        Socket::open()
            .and_then(|mut nl| nl.delete_link(name))
            .map(drop)
            .map_err(netlink(format!("ip link del {name}")))
    }

    fn create_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let Endpoint {
            netns,
            veth,
            ifname,
            bridge,
            ..
        } = ep;
        let path = netns_path(netns);
        let add = || format!("ip link add {veth} type veth peer name {ifname} netns {netns}");
        let missing = |what: &str| std::io::Error::other(format!("no link {what}"));
        let mut nl = Socket::open().map_err(netlink(add()))?;
        let master = nl
            .link_index(bridge)
            .map_err(netlink(add()))?
            .ok_or_else(|| netlink(add())(missing(bridge)))?;
        let ns = std::fs::File::open(&path).map_err(netlink(add()))?;
        nl.add_veth(veth, master, ifname, &ep.mac, &ns)
            .map_err(netlink(add()))?;
        // The container's side, from a socket in its namespace.
        let up = |name: &str| format!("ip -n {netns} link set {name} up");
        let mut nl = Socket::open_in(&path).map_err(netlink(up(ifname)))?;
        for name in ["lo", ifname.as_str()] {
            let index = nl
                .link_index(name)
                .map_err(netlink(up(name)))?
                .ok_or_else(|| netlink(up(name))(missing(name)))?;
            if name != "lo" {
                let (ip, prefix) = (ep.ip, ep.subnet.prefix);
                nl.add_address(index, ip, prefix).map_err(netlink(format!(
                    "ip -n {netns} addr add {ip}/{prefix} dev {ifname}"
                )))?;
            }
            nl.set_up(index).map_err(netlink(up(name)))?;
        }
        if ep.default_route {
            let via = ep.subnet.gateway();
            nl.default_route(via, false).map_err(netlink(format!(
                "ip -n {netns} route add default via {via}"
            )))?;
        }
        Ok(())
    }

    fn set_default_route(&self, netns: &str, via: Ipv4Addr) -> Result<()> {
        Socket::open_in(&netns_path(netns))
            .and_then(|mut nl| nl.default_route(via, true))
            .map_err(netlink(format!(
                "ip -n {netns} route replace default via {via}"
            )))
    }

    fn create_netns(&self, name: &str) -> Result<()> {
        crate::netns::create(name).map_err(netlink(format!("ip netns add {name}")))
    }

    fn delete_netns(&self, name: &str) -> Result<()> {
        crate::netns::delete(name).map_err(netlink(format!("ip netns del {name}")))
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

impl HostNet {
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
        // The jump and the chain in one transaction (one run instead of
        // four: this is on the `rm -f` of the bridge's last container);
        // it fails whole if either is missing, and then each goes alone.
        let gone = format!(
            "*filter\n-D FORWARD -j {FORWARD_CHAIN}\n-F {FORWARD_CHAIN}\n-X {FORWARD_CHAIN}\nCOMMIT\n"
        );
        if run("iptables-restore", &["-w", "--noflush"], Some(&gone)).is_ok() {
            return Ok(());
        }
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
        Some(&HostNet::forward_rules(bridges)),
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
