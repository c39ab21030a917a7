use super::*;
use crate::ports::Proto;
use crate::testing::FakeHost;

fn nets(dir: &Path) -> Networks<FakeHost> {
    let host = FakeHost {
        routes: vec!["172.17.0.0/16".parse().expect("subnet")],
        ..FakeHost::default()
    };
    Networks::new(host, dir)
}

fn port(h: u16) -> PortMapping {
    PortMapping {
        container_port: 80,
        proto: Proto::Tcp,
        host_ip: "0.0.0.0".parse().expect("ip"),
        host_port: h,
    }
}

#[test]
fn the_bridge_lives_while_containers_are_on_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = nets(dir.path());
    let a = n
        .attach("aaaaaaaaaaaaaaaa", Owner::me(), vec![port(8080)])
        .expect("attach");
    assert_eq!(
        a.subnet.to_string(),
        "172.18.0.0/16",
        "docker's 172.17 is taken"
    );
    assert_eq!(a.ip, Ipv4Addr::new(172, 18, 0, 2));
    assert_eq!(a.mac, "02:42:ac:12:00:02");
    assert_eq!(a.netns, PathBuf::from("/run/netns/kiln-aaaaaaaaaaaa"));
    let b = n
        .attach("bbbbbbbbbbbbbbbb", Owner::me(), vec![])
        .expect("attach");
    assert_eq!(b.ip, Ipv4Addr::new(172, 18, 0, 3));
    assert_eq!(
        n.host().links(),
        ["kiln0", "kvaaaaaaaaaaaa", "kvbbbbbbbbbbbb"]
    );
    assert!(n.host().rules().expect("rules").contains("dport 8080"));
    assert_eq!(
        n.leases("aaaaaaaaaaaaaaaa").first().map(|l| l.ports.len()),
        Some(1)
    );
    n.detach("aaaaaaaaaaaaaaaa").expect("detach");
    assert!(!n.host().rules().expect("rules").contains("dport 8080"));
    n.detach("bbbbbbbbbbbbbbbb").expect("detach");
    // The last one out takes the bridge, its masquerade, kiln's table and
    // FORWARD chain with it: nothing is left.
    assert!(n.host().links().is_empty(), "{:?}", n.host().links());
    assert!(n.host().namespaces().is_empty());
    assert_eq!(n.host().rules(), None);
    assert!(n.host().forwarded().is_empty());
    assert_eq!(ipam::read(dir.path()), ipam::State::default());
    n.detach("bbbbbbbbbbbbbbbb").expect("twice is fine");
    // The next container makes it again, on the same subnet.
    let c = n
        .attach("cccccccccccccccc", Owner::me(), vec![])
        .expect("attach");
    assert_eq!(c.ip, Ipv4Addr::new(172, 18, 0, 2));
    assert_eq!(n.host().links(), ["kiln0", "kvcccccccccccc"]);
    assert!(n.host().rules().expect("rules").contains("masquerade"));
    // `network disconnect` of the last one takes it too.
    assert!(n.detach_from("cccccccccccccccc", "bridge").expect("detach"));
    assert!(n.host().links().is_empty());
    assert_eq!(n.host().rules(), None);
    // An idle bridge an older kiln left lingering goes with the next
    // sweep; `network prune` finds nothing left to do.
    n.attach("dddddddddddddddd", Owner::me(), vec![])
        .expect("attach");
    let mut l = ipam::lock(dir.path()).expect("lock");
    l.state.leases.clear();
    l.save().expect("save");
    drop(l);
    let _ = n.host().delete_link("kvdddddddddddd");
    let _ = n.host().delete_netns("kiln-dddddddddddd");
    assert_eq!(n.host().links(), ["kiln0"]);
    n.sweep().expect("sweep");
    assert!(n.host().links().is_empty());
    assert_eq!(n.host().rules(), None);
    assert!(n.prune_networks().expect("prune").is_empty());
    assert_eq!(ipam::read(dir.path()), ipam::State::default());
}

#[test]
fn a_dead_owners_lease_is_swept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = nets(dir.path());
    let dead = Owner {
        pid: i32::MAX,
        start: 1,
    };
    n.attach("deaddeaddeaddead", dead, vec![port(8080)])
        .expect("attach");
    // A live container leaving last takes the dead one's lease, and so
    // the bridge, with it.
    n.attach("eeeeeeeeeeeeeeee", Owner::me(), vec![])
        .expect("attach");
    n.attach("deaddeaddeaddead", dead, vec![port(8080)])
        .expect("attach");
    n.detach("eeeeeeeeeeeeeeee").expect("detach");
    assert!(n.host().links().is_empty(), "{:?}", n.host().links());
    assert!(ipam::read(dir.path()).leases.is_empty());
    n.attach("deaddeaddeaddead", dead, vec![port(8080)])
        .expect("attach");
    n.sweep().expect("sweep");
    // It was the bridge's last container: the bridge and rules went too.
    assert!(n.host().links().is_empty());
    assert_eq!(n.host().rules(), None);
    // A sweep also runs when the next container attaches.
    n.attach("deaddeaddeaddead", dead, vec![]).expect("attach");
    let a = n
        .attach("cccccccccccccccc", Owner::me(), vec![])
        .expect("attach");
    assert_eq!(
        a.ip,
        Ipv4Addr::new(172, 18, 0, 2),
        "the dead lease's address is free again"
    );
    assert_eq!(n.host().links(), ["kiln0", "kvcccccccccccc"]);
}

#[test]
fn a_failed_attach_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = FakeHost {
        fail_endpoints: true,
        ..FakeHost::default()
    };
    let n = Networks::new(host, dir.path());
    n.attach("aaaaaaaaaaaaaaaa", Owner::me(), vec![])
        .expect_err("fails");
    assert!(ipam::read(dir.path()).leases.is_empty());
    assert!(n.host().namespaces().is_empty());
}

#[test]
fn parallel_attaches_get_distinct_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = std::sync::Arc::new(nets(dir.path()));
    let ips: Vec<Ipv4Addr> = (0..20)
        .map(|i| {
            let n = n.clone();
            std::thread::spawn(move || {
                n.attach(&format!("{i:016}"), Owner::me(), vec![])
                    .expect("attach")
                    .ip
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let distinct: std::collections::BTreeSet<_> = ips.iter().collect();
    assert_eq!(distinct.len(), 20);
}

#[test]
fn user_networks_keep_their_bridge_until_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = nets(dir.path());
    let id = "0123456789abcdef".to_string();
    let net = n
        .create_network("appnet", None, false, id.clone(), String::new())
        .expect("create");
    assert_eq!(net.subnet.to_string(), "172.18.0.0/16");
    assert_eq!(net.bridge, "kb-0123456789ab");
    n.create_network("appnet", None, false, id.clone(), String::new())
        .expect_err("exists");
    n.create_network("bridge", None, false, id.clone(), String::new())
        .expect_err("reserved");
    let internal = n
        .create_network(
            "inner",
            Some("10.77.0.0/24".parse().expect("subnet")),
            true,
            "f".repeat(16),
            String::new(),
        )
        .expect("create");
    assert!(internal.internal);
    // The default bridge avoids the user networks' subnets.
    let a = n
        .attach("aaaaaaaaaaaaaaaa", Owner::me(), vec![])
        .expect("attach");
    assert_eq!(a.subnet.to_string(), "172.19.0.0/16");
    let join = |ip: Option<Ipv4Addr>| Join {
        network: "appnet".into(),
        names: vec!["srv".into()],
        ip,
        mac: Some("02:00:00:00:00:09".into()),
        ..Join::default()
    };
    let b = n
        .attach_to("bbbbbbbbbbbbbbbb", Owner::me(), join(None))
        .expect("attach");
    assert_eq!(b.ip, Ipv4Addr::new(172, 18, 0, 2));
    assert_eq!(b.mac, "02:00:00:00:00:09");
    // --ip: in the subnet, free, not the gateway; user networks only.
    let c = n
        .attach_to(
            "cccccccccccccccc",
            Owner::me(),
            join(Some(Ipv4Addr::new(172, 18, 9, 9))),
        )
        .expect("attach");
    assert_eq!(c.ip, Ipv4Addr::new(172, 18, 9, 9));
    for bad in [
        Ipv4Addr::new(172, 18, 9, 9),
        Ipv4Addr::new(172, 18, 0, 1),
        Ipv4Addr::new(10, 0, 0, 1),
    ] {
        n.attach_to("dddddddddddddddd", Owner::me(), join(Some(bad)))
            .expect_err("refused");
    }
    let mut on_bridge = join(Some(Ipv4Addr::new(172, 19, 0, 9)));
    on_bridge.network = "bridge".into();
    let err = n
        .attach_to("dddddddddddddddd", Owner::me(), on_bridge)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("user defined networks only"), "{err}");
    n.detach("cccccccccccccccc").expect("detach");
    let rules = n.host().rules().expect("rules");
    assert!(rules.contains("ip saddr 172.18.0.0/16"), "{rules}");
    assert!(!rules.contains("ip saddr 10.77.0.0/24"), "{rules}");
    assert!(
        rules.contains("iifname \"kb-ffffffffffff\" oifname != \"kb-ffffffffffff\" drop"),
        "{rules}"
    );
    let err = n.remove_network("appnet").expect_err("in use").to_string();
    assert!(err.contains("has active endpoints"), "{err}");
    n.detach("bbbbbbbbbbbbbbbb").expect("detach");
    assert!(n.host().links().contains(&"kb-0123456789ab".to_string()));
    n.detach("aaaaaaaaaaaaaaaa").expect("detach");
    // The default bridge went with its last container; the user
    // networks' bridges stay while the networks exist, as docker's do.
    assert!(!n.host().links().contains(&"kiln0".to_string()));
    assert!(n.host().links().contains(&"kb-0123456789ab".to_string()));
    assert!(n.host().links().contains(&"kb-ffffffffffff".to_string()));
    assert_eq!(n.prune_networks().expect("prune"), ["appnet", "inner"]);
    assert!(n.host().links().is_empty(), "{:?}", n.host().links());
    assert_eq!(n.host().rules(), None);
}

#[test]
fn forwarding_follows_the_bridges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = nets(dir.path());
    n.attach("aaaaaaaaaaaaaaaa", Owner::me(), vec![])
        .expect("attach");
    assert_eq!(
        *n.host().forward.lock().expect("lock"),
        [("kiln0".to_string(), false)]
    );
    n.detach("aaaaaaaaaaaaaaaa").expect("detach");
    // Gone with the bridge: no kiln bridge is left.
    assert!(n.host().forwarded().is_empty());
}

#[test]
fn a_reserved_attachment_has_its_namespace_and_the_wiring_adds_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = nets(dir.path());
    let (a, pending) = n
        .reserve(
            "aaaaaaaaaaaaaaaa",
            Owner::me(),
            Join {
                network: "bridge".into(),
                ports: vec![port(8080)],
                ..Join::default()
            },
        )
        .expect("reserve");
    // What a runtime needs to create the container is there...
    assert_eq!(n.host().namespaces(), ["kiln-aaaaaaaaaaaa"]);
    assert_eq!(
        n.leases("aaaaaaaaaaaaaaaa").first().map(|l| l.ip),
        Some(a.ip)
    );
    // ...the veth and the port's rule are not yet.
    assert_eq!(n.host().links(), ["kiln0"]);
    assert!(!n.host().rules().unwrap_or_default().contains("dport 8080"));
    n.wire(pending).expect("wire");
    assert_eq!(n.host().links(), ["kiln0", "kvaaaaaaaaaaaa"]);
    assert!(n.host().rules().expect("rules").contains("dport 8080"));
}

#[test]
fn a_container_on_several_networks_shares_one_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = nets(dir.path());
    for (name, id) in [("front", "1".repeat(16)), ("back", "2".repeat(16))] {
        n.create_network(name, None, false, id, String::new())
            .expect("create");
    }
    let id = "aaaaaaaaaaaaaaaa";
    let on = |network: &str| Join {
        network: network.into(),
        names: vec!["web".into()],
        ..Join::default()
    };
    let a = n.attach_to(id, Owner::me(), on("front")).expect("attach");
    let b = n.attach_to(id, Owner::me(), on("bridge")).expect("connect");
    let c = n.attach_to(id, Owner::me(), on("back")).expect("connect");
    assert_eq!(a.netns, b.netns);
    assert_eq!(a.netns, c.netns);
    assert_eq!(n.host().namespaces(), ["kiln-aaaaaaaaaaaa"]);
    let leases = n.leases(id);
    let ifs: Vec<(&str, &str, bool)> = leases
        .iter()
        .map(|l| (l.network.as_str(), l.ifname.as_str(), l.default_route))
        .collect();
    // The first network keeps eth0 and the default route.
    assert_eq!(
        ifs,
        [
            ("front", "eth0", true),
            ("bridge", "eth1", false),
            ("back", "eth2", false)
        ]
    );
    let veths: Vec<&str> = leases.iter().map(|l| l.veth.as_str()).collect();
    assert_eq!(
        veths,
        ["kvaaaaaaaaaaaa", "k1aaaaaaaaaaaa", "k2aaaaaaaaaaaa"]
    );
    // Off the first network: the default route moves, the namespace stays.
    assert!(n.detach_from(id, "front").expect("disconnect"));
    assert!(!n.detach_from(id, "front").expect("not on it"));
    assert_eq!(
        *n.host().default_routes.lock().expect("lock"),
        [("kiln-aaaaaaaaaaaa".to_string(), b.gateway)]
    );
    assert_eq!(n.host().namespaces(), ["kiln-aaaaaaaaaaaa"]);
    assert!(!n.host().links().contains(&"kvaaaaaaaaaaaa".to_string()));
    // A connect after that takes the free eth0.
    let d = n.attach_to(id, Owner::me(), on("front")).expect("connect");
    assert_eq!(n.leases(id)[0].ifname, "eth0");
    assert!(!n.leases(id)[0].default_route);
    assert_eq!(d.subnet, a.subnet);
    // Off all of them (rm -f): nothing of it left.
    n.detach(id).expect("detach");
    assert!(n.host().namespaces().is_empty());
    assert!(n.leases(id).is_empty());
    let links = n.host().links();
    assert!(!links.iter().any(|l| l.contains("aaaa")), "{links:?}");
}

#[test]
fn one_dns_responder_per_network_while_it_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = nets(dir.path());
    n.create_network("appnet", None, false, "1".repeat(16), String::new())
        .expect("create");
    let me = Owner::me();
    let mut started = 0;
    n.ensure_responder("appnet", || {
        started += 1;
        Ok(me)
    })
    .expect("start");
    // Alive: not started twice; the bridge has none.
    n.ensure_responder("appnet", || {
        started += 1;
        Ok(me)
    })
    .expect("kept");
    n.ensure_responder("bridge", || panic!("the default bridge has no DNS"))
        .expect("none");
    assert_eq!(started, 1);
    let join = Join {
        network: "appnet".into(),
        ..Join::default()
    };
    n.attach_to("aaaaaaaaaaaaaaaa", me, join).expect("attach");
    assert!(!n.responder_done("appnet", me).expect("in use"));
    // Another process's record: this one is not the responder.
    let other = Owner {
        pid: me.pid,
        start: me.start + 1,
    };
    assert!(n.responder_done("appnet", other).expect("not mine"));
    n.detach("aaaaaaaaaaaaaaaa").expect("detach");
    assert!(n.responder_done("appnet", me).expect("empty"));
    assert_eq!(n.state().networks["appnet"].dns, None);
    // A dead responder is replaced.
    n.ensure_responder("appnet", || Ok(other)).expect("record");
    n.ensure_responder("appnet", || {
        started += 1;
        Ok(me)
    })
    .expect("replaced");
    assert_eq!(started, 2);
}

#[test]
fn a_detach_while_the_veth_is_made_leaves_nothing() {
    // `rm -f` (another kiln process) takes the container off after its
    // reservation, while the wiring is making the veth: the remover
    // found no veth to delete, so the wiring must not leave its own.
    let dir = tempfile::tempdir().expect("tempdir");
    let n = nets(dir.path());
    let id = "cccccccccccccccc";
    let (_, pending) = n
        .reserve(
            id,
            Owner::me(),
            Join {
                network: "bridge".into(),
                ..Join::default()
            },
        )
        .expect("reserve");
    let other = nets(dir.path());
    n.host()
        .during_endpoint
        .set(move || other.detach(id).expect("detach"));
    n.wire(pending).expect("wire");
    assert!(n.leases(id).is_empty());
    assert_eq!(n.host().links(), ["kiln0"]);
    assert!(
        n.host().namespaces().is_empty(),
        "{:?}",
        n.host().namespaces()
    );
}
