//! kiln's nftables table: outbound masquerade for the bridge's subnet
//! and DNAT of published ports for clients from elsewhere. It is one
//! table of kiln's own (`ip kiln`), rewritten whole from the IPAM state
//! in one transaction, so docker's and podman's tables are never read or
//! touched and a stale rule cannot outlive the next rewrite.

use std::fmt::Write;
use std::net::IpAddr;

use crate::ipam::State;

pub const TABLE: &str = "kiln";

/// The table for `state`, or `None` when there is no bridge.
///
/// DNAT takes packets for a published port that arrive from anywhere but
/// the bridge (the client's address is kept: the container sees the real
/// source); loopback and hairpin traffic is not DNATed (it would need
/// `route_localnet` and masquerade, losing the source anyway) and reaches
/// the userland proxy on the host socket kiln bound.
pub fn ruleset(state: &State) -> Option<String> {
    // (bridge, subnet, internal) of every network that has a bridge.
    let mut nets: Vec<(&str, String, bool)> = state
        .networks
        .values()
        .map(|n| (n.bridge.as_str(), n.subnet.to_string(), n.internal))
        .collect();
    // The default bridge's masquerade lives as long as the bridge (its
    // first container to its last), so a container without published
    // ports joining a bridge that is there changes no rule.
    if let Some(b) = &state.bridge {
        nets.push((b.name.as_str(), b.subnet.to_string(), false));
    }
    if nets.is_empty() {
        return None;
    }
    let bridge_of = |network: &str| -> Option<&str> {
        match network {
            "bridge" => state.bridge.as_ref().map(|b| b.name.as_str()),
            n => state.networks.get(n).map(|n| n.bridge.as_str()),
        }
    };
    let mut s = String::new();
    let _ = writeln!(s, "table ip {TABLE} {{");
    let _ = writeln!(
        s,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;"
    );
    // Between kiln's networks (a published port DNATed to another
    // network's container) the source is kept.
    let all: Vec<&str> = nets.iter().map(|(_, subnet, _)| subnet.as_str()).collect();
    let all = all.join(", ");
    for (bridge, subnet, internal) in &nets {
        if !internal {
            let _ = writeln!(
                s,
                "    ip saddr {subnet} ip daddr != {{ {all} }} oifname != \"{bridge}\" masquerade"
            );
        }
    }
    let _ = writeln!(s, "  }}");
    // An internal network reaches nothing but itself.
    let _ = writeln!(
        s,
        "  chain forward {{\n    type filter hook forward priority filter; policy accept;"
    );
    for (bridge, _, internal) in &nets {
        if *internal {
            let _ = writeln!(s, "    iifname \"{bridge}\" oifname != \"{bridge}\" drop");
            let _ = writeln!(s, "    oifname \"{bridge}\" iifname != \"{bridge}\" drop");
        }
    }
    let _ = writeln!(s, "  }}");
    let _ = writeln!(
        s,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;"
    );
    for lease in state.leases.values() {
        let Some(bridge) = bridge_of(&lease.network) else {
            continue;
        };
        for p in &lease.ports {
            let daddr = match p.host_ip {
                IpAddr::V4(ip) if ip.is_loopback() => continue,
                IpAddr::V4(ip) if ip.is_unspecified() => "fib daddr type local".to_string(),
                IpAddr::V4(ip) => format!("ip daddr {ip}"),
                IpAddr::V6(_) => continue,
            };
            let _ = writeln!(
                s,
                "    iifname != \"{bridge}\" {daddr} {} dport {} dnat to {}:{}",
                p.proto, p.host_port, lease.ip, p.container_port
            );
        }
    }
    let _ = writeln!(s, "  }}\n}}");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::{Bridge, Lease, Owner};
    use crate::ports::{PortMapping, Proto};

    #[test]
    fn rules_follow_the_leases() {
        let mut st = State {
            bridge: Some(Bridge {
                name: "kiln0".into(),
                subnet: "172.18.0.0/16".parse().expect("subnet"),
                id: String::new(),
            }),
            ..State::default()
        };
        assert_eq!(ruleset(&State::default()), None);
        let idle = ruleset(&st).expect("the bridge's masquerade");
        assert!(!idle.contains("dnat"), "{idle}");
        let port = |ip: &str, h| PortMapping {
            container_port: 80,
            proto: Proto::Tcp,
            host_ip: ip.parse().expect("ip"),
            host_port: h,
        };
        st.leases.insert(
            "c1".into(),
            Lease {
                ip: "172.18.0.2".parse().expect("ip"),
                owner: Owner::me(),
                veth: "kvc1".into(),
                netns: "kiln-c1".into(),
                ports: vec![port("127.0.0.1", 18080), port("0.0.0.0", 8080)],
                network: "bridge".into(),
                names: Vec::new(),
                mac: "02:42:ac:12:00:02".into(),
                ifname: "eth0".into(),
                default_route: true,
                dns: Vec::new(),
            },
        );
        let r = ruleset(&st).expect("rules");
        assert!(
            r.contains(
                "ip saddr 172.18.0.0/16 ip daddr != { 172.18.0.0/16 } oifname != \"kiln0\" masquerade"
            ),
            "{r}"
        );
        assert!(
            r.contains(
                "iifname != \"kiln0\" fib daddr type local tcp dport 8080 dnat to 172.18.0.2:80"
            ),
            "{r}"
        );
        assert!(
            !r.contains("18080"),
            "loopback ports go through the proxy: {r}"
        );
    }
}
