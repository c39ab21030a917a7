//! kiln's nftables table: outbound masquerade for the bridge's subnet
//! and DNAT of published ports for clients from elsewhere. It is one
//! table of kiln's own (`ip kiln`), rewritten whole from the IPAM state
//! in one transaction, so docker's and podman's tables are never read or
//! touched and a stale rule cannot outlive the next rewrite.

use std::fmt::Write;
use std::net::IpAddr;

use crate::ipam::State;

pub const TABLE: &str = "kiln";

/// The table for `state`, or `None` when nothing is on the bridge.
///
/// DNAT takes packets for a published port that arrive from anywhere but
/// the bridge (the client's address is kept: the container sees the real
/// source); loopback and hairpin traffic is not DNATed (it would need
/// `route_localnet` and masquerade, losing the source anyway) and reaches
/// the userland proxy on the host socket kiln bound.
pub fn ruleset(state: &State) -> Option<String> {
    let bridge = state.bridge.as_ref()?;
    if state.leases.is_empty() {
        return None;
    }
    let mut s = String::new();
    let _ = writeln!(s, "table ip {TABLE} {{");
    let _ = writeln!(
        s,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {} oifname != \"{}\" masquerade\n  }}",
        bridge.subnet, bridge.name
    );
    let _ = writeln!(
        s,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;"
    );
    for lease in state.leases.values() {
        for p in &lease.ports {
            let daddr = match p.host_ip {
                IpAddr::V4(ip) if ip.is_loopback() => continue,
                IpAddr::V4(ip) if ip.is_unspecified() => "fib daddr type local".to_string(),
                IpAddr::V4(ip) => format!("ip daddr {ip}"),
                IpAddr::V6(_) => continue,
            };
            let _ = writeln!(
                s,
                "    iifname != \"{}\" {daddr} {} dport {} dnat to {}:{}",
                bridge.name, p.proto, p.host_port, lease.ip, p.container_port
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
            }),
            ..State::default()
        };
        assert_eq!(ruleset(&st), None);
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
            },
        );
        let r = ruleset(&st).expect("rules");
        assert!(
            r.contains("ip saddr 172.18.0.0/16 oifname != \"kiln0\" masquerade"),
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
