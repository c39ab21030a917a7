//! `HostNet` against the real kernel (root): the rtnetlink writer and
//! the namespace mounts leave what `ip` itself reports, and removing
//! them leaves nothing. Names are this test's own (`ktb…`, `kiln-tn…`);
//! no traffic is sent.

use std::process::Command;

use kiln_network::{netns_path, Endpoint, HostNet, NetHost, Subnet};

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

struct Cleanup(&'static str, &'static str);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = HostNet.delete_netns(self.1);
        let _ = HostNet.delete_link(self.0);
    }
}

#[test]
fn a_bridge_and_an_endpoint_as_ip_would_make_them_and_nothing_after() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test changes links and namespaces: run it as root"
    );
    let (bridge, ns, veth) = ("ktb0net", "kiln-tnhost", "kvtnhost");
    let _c = Cleanup(bridge, ns);
    let subnet: Subnet = "10.231.7.0/24".parse().unwrap();
    let h = HostNet;

    h.create_bridge(bridge, &subnet).unwrap();
    let shown = ip(&["-4", "-o", "addr", "show", "dev", bridge]);
    assert!(shown.contains("10.231.7.1/24"), "{shown}");
    let link = ip(&["link", "show", bridge]);
    assert!(link.contains("02:42:0a:e7:07:01"), "{link}");
    assert!(h.link_exists(bridge));
    // The route dump sees the bridge's connected route, as `ip` does.
    let routes = h.routes().unwrap();
    assert!(routes.contains(&subnet), "{routes:?}");
    assert!(ip(&["-4", "route", "show", "table", "all"]).contains("10.231.7.0/24"));
    // The same set as `ip` lists (prefixes 1-31: what a subnet can
    // overlap).
    let listed: std::collections::BTreeSet<String> = ip(&["-4", "route", "show", "table", "all"])
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let mut dst = words.next()?;
            if matches!(dst, "local" | "broadcast" | "unicast") {
                dst = words.next()?;
            }
            let s: Subnet = dst.parse().ok()?;
            (dst.contains('/') && (1..32).contains(&s.prefix)).then(|| s.to_string())
        })
        .collect();
    let dumped: std::collections::BTreeSet<String> = routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(dumped, listed);

    h.create_netns(ns).unwrap();
    assert!(netns_path(ns).exists());
    assert!(ip(&["netns", "list"]).contains(ns));
    let ep = Endpoint {
        netns: ns.into(),
        veth: veth.into(),
        ifname: "eth0".into(),
        bridge: bridge.into(),
        ip: "10.231.7.2".parse().unwrap(),
        subnet,
        mac: "02:42:0a:e7:07:02".into(),
        default_route: true,
    };
    h.create_endpoint(&ep).unwrap();
    let host_end = ip(&["link", "show", veth]);
    assert!(host_end.contains(&format!("master {bridge}")), "{host_end}");
    assert!(host_end.contains("UP"), "{host_end}");
    let inside = ip(&["-n", ns, "-4", "-o", "addr"]);
    assert!(
        inside.contains("lo") && inside.contains("127.0.0.1/8"),
        "{inside}"
    );
    assert!(
        inside.contains("eth0") && inside.contains("10.231.7.2/24"),
        "{inside}"
    );
    let eth0 = ip(&["-n", ns, "link", "show", "eth0"]);
    assert!(
        eth0.contains("02:42:0a:e7:07:02") && eth0.contains("UP"),
        "{eth0}"
    );
    assert_eq!(
        ip(&["-n", ns, "route", "show", "default"]).trim(),
        "default via 10.231.7.1 dev eth0"
    );
    h.set_default_route(ns, "10.231.7.254".parse().unwrap())
        .unwrap();
    assert!(ip(&["-n", ns, "route", "show", "default"]).contains("via 10.231.7.254"));

    // A second endpoint of the same name is refused, not doubled.
    let err = h.create_endpoint(&ep).unwrap_err().to_string();
    assert!(err.contains(&format!("ip link add {veth}")), "{err}");

    h.delete_link(veth).unwrap();
    h.delete_link(veth).unwrap(); // gone already: fine
    assert!(!h.link_exists(veth));
    h.delete_netns(ns).unwrap();
    h.delete_netns(ns).unwrap();
    assert!(!netns_path(ns).exists());
    assert!(!ip(&["netns", "list"]).contains(ns));
    h.delete_link(bridge).unwrap();
    assert!(!h.link_exists(bridge));
}
