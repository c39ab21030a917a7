//! `inspect CONTAINER`'s `NetworkSettings` against docker's: the same
//! container (busybox httpd, a published loopback port, an exposed one,
//! on a user network with an alias, and on the default bridge) run by
//! both, the fields compared one by one (kiln's values checked against
//! kiln's own addresses, docker's shape against kiln's), and the
//! `--format` templates users write. Needs dockerd (scripts/setup.sh
//! starts it); fails, not skips, without it. Loopback traffic only.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::Kiln;
use serde_json::Value;

/// docker's containers, network and image of this test, removed even
/// when it fails; kiln's containers and network too.
struct Cleanup<'a> {
    kiln: &'a Kiln,
    docker_containers: Vec<String>,
    docker_network: String,
    docker_image: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for c in &self.docker_containers {
            let _ = docker(&["rm", "-f", c]);
        }
        let _ = docker(&["network", "rm", &self.docker_network]);
        let _ = docker(&["rmi", "-f", &self.docker_image]);
        let ids = self.kiln.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.kiln.run(&["rm", "-f", id]);
        }
        let _ = self.kiln.run(&["network", "rm", "kinspnet"]);
    }
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("/usr/bin/docker")
        .args(args)
        .output()
        .expect("/usr/bin/docker (Debian docker.io; scripts/setup.sh installs it)")
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn settings(doc: &str) -> Value {
    let v: Value = serde_json::from_str(doc).unwrap();
    v[0]["NetworkSettings"].clone()
}

/// What kind of JSON value: docker's and kiln's must agree.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The fields a network entry has in docker 20.10 (newer daemons add
/// more, such as `DNSNames`; those are not compared).
const ENTRY: &[&str] = &[
    "IPAMConfig",
    "Links",
    "Aliases",
    "NetworkID",
    "EndpointID",
    "Gateway",
    "IPAddress",
    "IPPrefixLen",
    "IPv6Gateway",
    "GlobalIPv6Address",
    "GlobalIPv6PrefixLen",
    "MacAddress",
    "DriverOpts",
];

const TOP: &[&str] = &[
    "Bridge",
    "HairpinMode",
    "Ports",
    "SandboxKey",
    "SecondaryIPAddresses",
    "Gateway",
    "IPAddress",
    "IPPrefixLen",
    "MacAddress",
    "Networks",
];

fn same_shape(kiln: &Value, docker: &Value, fields: &[&str], what: &str) {
    for f in fields {
        // docker leaves EndpointID and IPAMConfig as it likes; the kind
        // of every field must match, except the ids docker has and kiln
        // keeps empty (no endpoint objects in kiln).
        if *f == "EndpointID" {
            continue;
        }
        assert_eq!(
            kind(&kiln[f]),
            kind(&docker[f]),
            "{what}.{f}: kiln {} docker {}",
            kiln[f],
            docker[f]
        );
    }
}

#[test]
fn network_settings_match_dockers() {
    let k = Kiln::new();
    let tar = k.import_busybox("bb", &[], &["--change", "EXPOSE 81"]);
    let image = "kiln-test/inspect-net:1";
    docker_ok(&[
        "import",
        "--change",
        "EXPOSE 81",
        tar.to_str().unwrap(),
        image,
    ]);
    let mut clean = Cleanup {
        kiln: &k,
        docker_containers: Vec::new(),
        docker_network: "kiln-test-inspnet".into(),
        docker_image: image.into(),
    };
    k.ok(&["network", "create", "--subnet", "10.124.9.0/24", "kinspnet"]);
    docker_ok(&["network", "create", "kiln-test-inspnet"]);
    let cmd = ["busybox", "httpd", "-f", "-p", "80", "-h", "/"];
    let run_args = |net: &str, port: &str, name: &str| -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "--network-alias",
            "web",
            "-p",
            port,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(cmd.iter().map(|s| s.to_string()));
        a
    };
    // A user network.
    let mut ka = run_args("kinspnet", "127.0.0.1:18191:80", "kinsp1");
    ka.insert(ka.len() - cmd.len(), "bb".into());
    let kid = k.ok(&ka.iter().map(String::as_str).collect::<Vec<_>>());
    let kid = kid.trim();
    let mut da = run_args("kiln-test-inspnet", "127.0.0.1:18192:80", "kiln-test-insp1");
    da.insert(da.len() - cmd.len(), image.into());
    clean.docker_containers.push("kiln-test-insp1".into());
    let did = docker_ok(&da.iter().map(String::as_str).collect::<Vec<_>>());
    let ks = settings(&k.ok(&["inspect", kid]));
    let ds = settings(&docker_ok(&["inspect", &did]));
    same_shape(&ks, &ds, TOP, "NetworkSettings");
    let (ke, de) = (
        &ks["Networks"]["kinspnet"],
        &ds["Networks"]["kiln-test-inspnet"],
    );
    same_shape(ke, de, ENTRY, "Networks.<net>");
    // kiln's values are kiln's facts.
    let net: Value = serde_json::from_str(&k.ok(&["network", "inspect", "kinspnet"])).unwrap();
    assert_eq!(ke["NetworkID"], net[0]["Id"]);
    assert_eq!(ke["Gateway"], "10.124.9.1");
    assert_eq!(ke["IPPrefixLen"], 24);
    let ip = ke["IPAddress"].as_str().unwrap();
    assert!(ip.starts_with("10.124.9."), "{ke}");
    assert_eq!(
        net[0]["Containers"][kid]["IPv4Address"],
        format!("{ip}/24").as_str()
    );
    let [a, b, c, d]: [u8; 4] = ip.parse::<std::net::Ipv4Addr>().unwrap().octets();
    assert_eq!(
        ke["MacAddress"],
        format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}").as_str()
    );
    // docker's aliases: the --network-alias, then the short id.
    assert_eq!(ke["Aliases"], serde_json::json!(["web", &kid[..12]]));
    assert_eq!(
        de["Aliases"],
        serde_json::json!(["web", &did[..12]]),
        "docker's own"
    );
    // On a user network docker's top-level fields are empty; so are kiln's.
    for f in ["IPAddress", "Gateway", "MacAddress"] {
        assert_eq!(ks[f], "", "{f}");
        assert_eq!(ds[f], "", "docker's {f}");
    }
    let ports = serde_json::json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18191"}], "81/tcp": null});
    assert_eq!(ks["Ports"], ports);
    assert_eq!(
        ds["Ports"],
        serde_json::json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18192"}], "81/tcp": null})
    );
    // The templates users write.
    let f = k.ok(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        kid,
    ]);
    assert_eq!(f.trim(), ip);

    // The default bridge: docker's top-level fields are filled.
    let kb = k.ok(&[
        "run", "-d", "--name", "kinsp2", "bb", "busybox", "sleep", "60",
    ]);
    let kb = kb.trim();
    clean.docker_containers.push("kiln-test-insp2".into());
    let db = docker_ok(&[
        "run",
        "-d",
        "--name",
        "kiln-test-insp2",
        image,
        "busybox",
        "sleep",
        "60",
    ]);
    let ks = settings(&k.ok(&["inspect", kb]));
    let ds = settings(&docker_ok(&["inspect", &db]));
    same_shape(&ks, &ds, TOP, "NetworkSettings");
    same_shape(
        &ks["Networks"]["bridge"],
        &ds["Networks"]["bridge"],
        ENTRY,
        "Networks.bridge",
    );
    let ip = ks["IPAddress"].as_str().unwrap();
    assert!(!ip.is_empty(), "{ks}");
    assert_eq!(ks["Networks"]["bridge"]["IPAddress"], ip);
    assert_eq!(ks["Networks"]["bridge"]["Aliases"], Value::Null);
    assert_eq!(ds["Networks"]["bridge"]["Aliases"], Value::Null);
    assert_eq!(ks["Gateway"], ks["Networks"]["bridge"]["Gateway"]);
    assert_eq!(ks["IPPrefixLen"], ks["Networks"]["bridge"]["IPPrefixLen"]);
    let f = k.ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", kb]);
    assert_eq!(f.trim(), ip);
    // The address is the container's own: on eth0 in its namespace.
    let addr = Command::new("ip")
        .args([
            "-n",
            &format!("kiln-{}", &kb[..12]),
            "-br",
            "addr",
            "show",
            "eth0",
        ])
        .output()
        .unwrap();
    let addr = String::from_utf8_lossy(&addr.stdout);
    assert!(addr.contains(&format!("{ip}/")), "{addr}");

    // Stopped: docker's shape, empty values.
    k.ok(&["rm", "-f", "kinsp2"]);
    k.ok(&["create", "--name", "kinsp3", "bb", "busybox", "true"]);
    let ks = settings(&k.ok(&["inspect", "kinsp3"]));
    assert_eq!(ks["IPAddress"], "");
    assert_eq!(ks["Ports"], serde_json::json!({}));
    assert_eq!(ks["Networks"]["bridge"]["IPAddress"], "");
}
