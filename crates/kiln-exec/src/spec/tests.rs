#![allow(clippy::unwrap_used)]
use super::*;
use oci_spec::runtime::Capability;
use serde_json::{json, Value};
use std::str::FromStr;

fn spec(privileged: bool, network: Network) -> ProcessSpec {
    ProcessSpec {
        args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
        env: vec!["A=1".into()],
        cwd: String::new(),
        user: User {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
            home: "/home/app".into(),
        },
        network,
        hostname: "buildkitsandbox".into(),
        mounts: vec![ExtraMount::Tmpfs {
            target: "/cache".into(),
            size: Some(4096),
            noexec: false,
        }],
        extra_hosts: Vec::new(),
        privileged,
        no_new_privileges: !privileged,
        ..ProcessSpec::default()
    }
}

fn json_of(p: &ProcessSpec) -> Value {
    let s = p.runtime_spec(Path::new("/r"), Path::new("/b")).unwrap();
    serde_json::to_value(&s).unwrap()
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The typed spec carries what the hand-written JSON did: the fields
/// runc and libcontainer act on.
#[test]
fn runtime_spec_matches_the_isolation_kiln_promises() {
    let v = json_of(&spec(false, Network::None));
    assert_eq!(v["ociVersion"], "1.0.2");
    assert_eq!(v["root"], json!({"path": "/r", "readonly": false}));
    assert_eq!(v["hostname"], "buildkitsandbox");
    let p = &v["process"];
    assert_eq!(p["args"], json!(["/bin/sh", "-c", "true"]));
    assert_eq!(
        p["env"],
        json!(["A=1", format!("PATH={DEFAULT_PATH}"), "HOME=/home/app"])
    );
    assert_eq!(p["cwd"], "/");
    assert_eq!(p["terminal"], false);
    assert_eq!(
        p["user"],
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10]})
    );
    assert_eq!(p["noNewPrivileges"], true);
    assert!(p.get("rlimits").is_none(), "runc refuses some rlimits: {p}");
    let mut docker: Vec<String> = caps::DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    docker.sort();
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(sorted(&p["capabilities"][set]), docker, "{set}");
    }
    assert!(p["capabilities"].get("inheritable").is_none());
    assert!(p["capabilities"].get("ambient").is_none());

    let l = &v["linux"];
    let ns: Vec<&str> = l["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
    assert_eq!(l["devices"], json!([]));
    // Docker's first device rule: deny all (the runtime adds its
    // defaults after it).
    assert_eq!(
        l["resources"],
        json!({"devices": [{"allow": false, "access": "rwm"}]})
    );
    assert_eq!(l["maskedPaths"].as_array().unwrap().len(), 11);
    assert_eq!(
        l["readonlyPaths"],
        json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ])
    );
    // docker's allow-list (its details: seccomp's tests).
    let sc = &l["seccomp"];
    assert_eq!(sc["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(sc["defaultErrnoRet"], 1);
    assert_eq!(sc["syscalls"][0]["action"], "SCMP_ACT_ALLOW");

    let mounts = v["mounts"].as_array().unwrap();
    let dests: Vec<&str> = mounts
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/cache"
        ]
    );
    assert_eq!(
        mounts[5]["options"],
        json!(["nosuid", "noexec", "nodev", "ro"])
    );
    assert_eq!(
        mounts[6],
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]})
    );
    assert_eq!(
        mounts[7],
        json!({"destination": "/etc/hosts", "type": "bind", "source": "/b/hosts", "options": ["rbind", "rprivate"]})
    );
    assert_eq!(
        mounts[10],
        json!({"destination": "/cache", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=4096"]})
    );
    assert!(v.get("annotations").is_none());

    // Privileged (RUN --security=insecure): the bounding set, no
    // filter, nothing masked, writable /sys, every device allowed.
    let v = json_of(&spec(true, Network::Host));
    let p = &v["process"];
    let mut bounding: Vec<String> = caps::privileged_caps()
        .iter()
        .map(|s| s.to_string())
        .collect();
    bounding.retain(|c| Capability::from_str(c.trim_start_matches("CAP_")).is_ok());
    bounding.sort();
    assert_eq!(sorted(&p["capabilities"]["bounding"]), bounding);
    assert!(p.get("noNewPrivileges").is_none());
    let l = &v["linux"];
    assert!(l.get("seccomp").is_none());
    assert_eq!(l["maskedPaths"], json!([]));
    assert_eq!(l["readonlyPaths"], json!([]));
    assert_eq!(
        l["resources"],
        json!({"devices": [{"allow": true, "access": "rwm"}]})
    );
    assert_eq!(l["namespaces"].as_array().unwrap().len(), 4);
    assert_eq!(
        v["mounts"][5]["options"],
        json!(["nosuid", "noexec", "nodev", "rw"])
    );
}

fn caps_of(add: &[&str], drop: &[&str]) -> crate::Result<Vec<String>> {
    let p = ProcessSpec {
        cap_add: add.iter().map(|s| s.to_string()).collect(),
        cap_drop: drop.iter().map(|s| s.to_string()).collect(),
        ..ProcessSpec::default()
    };
    p.validate()?;
    let v = json_of(&p);
    let mut effective = sorted(&v["process"]["capabilities"]["effective"]);
    assert_eq!(effective, sorted(&v["process"]["capabilities"]["bounding"]));
    effective.sort();
    Ok(effective)
}

/// `--cap-add`/`--cap-drop` as docker takes them: any case, with or
/// without `CAP_`, `ALL` on either side; an unknown name is an error
/// before any container exists.
#[test]
fn cap_add_and_drop_apply_to_dockers_defaults() {
    let defaults = caps_of(&[], &[]).unwrap();
    assert_eq!(defaults.len(), 14);
    let c = caps_of(&["sys_admin", "CAP_NET_ADMIN"], &["chown", "Cap_Kill"]).unwrap();
    assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
    assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(!c.contains(&"CAP_CHOWN".to_string()));
    assert!(!c.contains(&"CAP_KILL".to_string()));
    assert_eq!(c.len(), 14);
    // Adding one already there adds nothing.
    assert_eq!(caps_of(&["CHOWN"], &[]).unwrap(), defaults);
    assert_eq!(caps_of(&[], &["ALL"]).unwrap(), Vec::<String>::new());
    assert_eq!(
        caps_of(&["NET_RAW"], &["all"]).unwrap(),
        ["CAP_NET_RAW".to_string()]
    );
    let mut all: Vec<String> = caps::privileged_caps()
        .iter()
        .map(|s| s.to_string())
        .filter(|c| c != "CAP_SYS_ADMIN")
        .filter(|c| Capability::from_str(c.trim_start_matches("CAP_")).is_ok())
        .collect();
    all.sort();
    assert_eq!(caps_of(&["ALL"], &["SYS_ADMIN"]).unwrap(), all);
    for bad in [&["CAP_NOPE"][..], &["sys-admin"][..]] {
        match caps_of(bad, &[]) {
            Err(e @ crate::ExecError::Capability(_)) => {
                assert!(e.to_string().contains(bad[0]), "{e}")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
        assert!(matches!(
            caps_of(&[], bad),
            Err(crate::ExecError::Capability(_))
        ));
    }
}

/// `docker run`'s defaults, and the settings a container adds to a RUN
/// step's: terminal, read-only root, no_new_privs off, limits, cgroup.
#[test]
fn container_settings_map_to_the_runtime_spec() {
    let d = ProcessSpec::default();
    assert_eq!(
        (d.cwd.as_str(), d.user.uid, d.network.clone(), d.privileged),
        ("/", 0, Network::None, false)
    );
    let v = json_of(&d);
    assert_eq!(v["process"]["terminal"], false);
    assert!(v["process"].get("noNewPrivileges").is_none());
    assert_eq!(v["root"]["readonly"], false);
    assert_eq!(
        v["linux"]["resources"],
        json!({"devices": [{"allow": false, "access": "rwm"}]})
    );
    assert!(v["linux"].get("cgroupsPath").is_none());

    let p = ProcessSpec {
        terminal: true,
        readonly_rootfs: true,
        no_new_privileges: true,
        resources: Resources {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(32),
        },
        cgroups_path: Some("/kiln/web".into()),
        ..ProcessSpec::default()
    };
    let v = json_of(&p);
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["process"]["noNewPrivileges"], true);
    assert_eq!(v["root"], json!({"path": "/r", "readonly": true}));
    assert_eq!(v["linux"]["cgroupsPath"], "/kiln/web");
    assert_eq!(
        v["linux"]["resources"],
        json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 64 << 20, "swap": 128 << 20},
            "cpu": {"quota": 150_000, "period": 100_000},
            "pids": {"limit": 32}
        })
    );
    // Privileged keeps the limits beside its device rule.
    let v = json_of(&ProcessSpec {
        privileged: true,
        resources: Resources {
            pids_limit: Some(5),
            ..Resources::default()
        },
        ..ProcessSpec::default()
    });
    assert_eq!(
        v["linux"]["resources"],
        json!({"devices": [{"allow": true, "access": "rwm"}], "pids": {"limit": 5}})
    );
    // Unconfined: no filter, the rest unchanged.
    let v = json_of(&ProcessSpec {
        seccomp: SeccompProfile::Unconfined,
        ..ProcessSpec::default()
    });
    assert!(v["linux"].get("seccomp").is_none());
    assert_eq!(v["linux"]["maskedPaths"].as_array().unwrap().len(), 11);
}
