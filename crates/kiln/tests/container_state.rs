//! What kiln knows of its containers, end to end and for real (root,
//! network none): `inspect` of containers beside images (and its keys
//! against docker's own), images in use (`rmi`'s conflicts in docker's
//! words, `image prune -a`, what GC keeps), and health checks run by the
//! monitor.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Kiln;
use serde_json::Value;

const DOCKER: &str = "/usr/bin/docker";

fn inspect(k: &Kiln, args: &[&str]) -> Value {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    let v: Value = serde_json::from_str(&k.ok(&all)).unwrap();
    v[0].clone()
}

fn field(k: &Kiln, name: &str, template: &str) -> String {
    k.ok(&["inspect", "-f", template, name]).trim().to_string()
}

/// Polls `f` until it is true, for up to `secs` seconds.
fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn image_id(k: &Kiln, image: &str) -> String {
    inspect(k, &["--type", "image", image])["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn short(id: &str) -> &str {
    &id.trim_start_matches("sha256:")[..12]
}

#[test]
fn inspect_finds_containers_then_images() {
    let k = Kiln::new();
    k.import_busybox("bb", &[], &[]);
    // A container named like the image: docker's inspect prefers it.
    let id = k.ok(&["create", "--name", "bb", "--network", "none", "bb", "true"]);
    let id = id.trim();
    let c = inspect(&k, &["bb"]);
    assert_eq!(c["Id"], id);
    assert_eq!(c["Name"], "/bb");
    assert_eq!(c["Image"], image_id(&k, "bb"));
    assert_eq!(c["State"]["Status"], "created");
    assert_eq!(c["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(c["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert!(c["State"].get("Health").is_none(), "{c}");
    assert_eq!(c["Path"], "true");
    assert_eq!(c["Config"]["Image"], "bb");
    assert!(c["Created"].as_str().unwrap().ends_with('Z'));
    // --type chooses; `container inspect` only knows containers.
    assert!(inspect(&k, &["--type", "image", "bb"])["RepoTags"].is_array());
    assert_eq!(inspect(&k, &["--type", "container", "bb"])["Id"], id);
    assert_eq!(
        serde_json::from_str::<Value>(&k.ok(&["container", "inspect", &id[..8]])).unwrap()[0]["Id"],
        id
    );
    k.ok(&["rename", "bb", "other"]);
    let err = k.fails(&["container", "inspect", "bb"]);
    assert!(err.contains("Error: No such container: bb"), "{err}");
    let err = k.fails(&["inspect", "--type", "container", "bb"]);
    assert!(err.contains("No such container: bb"), "{err}");
    assert!(inspect(&k, &["bb"])["RepoTags"].is_array());
    let err = k.fails(&["inspect", "nothing-here"]);
    assert!(err.contains("Error: No such object: nothing-here"), "{err}");
    // One call, both kinds, and templates on either.
    let out = k.ok(&["inspect", "-f", "{{.Id}}", "other", "bb"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [id, image_id(&k, "bb").as_str()]);

    // Running: pid, start time, and the stop reflected.
    k.ok(&["start", "other"]);
    k.ok(&["wait", "other"]);
    let c = inspect(&k, &["other"]);
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["Pid"], 0);
    assert_ne!(c["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_ne!(c["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    let id2 = k.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        "--label",
        "a=b",
        "-e",
        "X=1",
        "--restart",
        "on-failure:2",
        "bb",
        "busybox",
        "sleep",
        "30",
    ]);
    let c = inspect(&k, &["up"]);
    assert_eq!(c["Id"], id2.trim());
    assert_eq!(c["State"]["Running"], true);
    assert!(c["State"]["Pid"].as_i64().unwrap() > 0);
    assert_eq!(c["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(c["HostConfig"]["NetworkMode"], "none");
    assert_eq!(field(&k, "up", "{{.Config.Labels.a}}"), "b");
    assert!(c["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&Value::from("X=1")));
    assert_eq!(
        field(&k, "up", "{{.State.Status}} {{.RestartCount}}"),
        "running 0"
    );
    let merged = c["GraphDriver"]["Data"]["MergedDir"].as_str().unwrap();
    assert!(
        std::path::Path::new(merged).join("bin/busybox").exists(),
        "{merged}"
    );
    k.ok(&["rm", "-f", "up", "other"]);
}

/// Every key path of a JSON document (`A.B`, list items as `A[]`);
/// `skip` paths' contents are data (label names, network names), not keys.
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                key_paths(v, &p, out);
            }
        }
        Value::Array(items) => {
            for i in items {
                key_paths(i, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// Removes this test's docker container, volume and image (all named
/// `name`) however the test ends: the daemon is shared.
struct DockerCleanup(String);

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        let name = &self.0;
        let vol = format!("{name}-vol");
        for args in [
            &["rm", "-f", "-v", name][..],
            &["volume", "rm", &vol],
            &["rmi", name],
        ] {
            let _ = Command::new(DOCKER).args(args).output();
        }
    }
}

#[test]
fn container_inspect_keys_are_dockers() {
    let k = Kiln::new();
    let tar = k.import_busybox("bb", &[], &[]);
    let name = format!("kiln-state-test-{}", std::process::id());
    let tag = name.clone();
    let cleanup = DockerCleanup(name.clone());
    common::tool(DOCKER, &["import", tar.to_str().unwrap(), &tag]);
    let host = k.path("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/host:ro", host.display());
    let vol = format!("{name}-vol:/data");
    let flags = [
        "--network",
        "none",
        "-v",
        &vol,
        "-v",
        &bind,
        "--tmpfs",
        "/run:size=1m",
        "--restart",
        "on-failure:3",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "CHOWN",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "0:0",
        "--label",
        "x=y",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "5",
        "--init",
        "--pids-limit",
        "50",
        "--add-host",
        "h:1.2.3.4",
        "--read-only",
        "--security-opt",
        "no-new-privileges",
        "--health-cmd",
        "echo ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
    ];
    fn run<'a>(name: &'a str, flags: &[&'a str], image: &'a str) -> Vec<&'a str> {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[image, "busybox", "sleep", "30"]);
        args
    }
    let docker_args = run(&name, &flags, &tag);
    common::tool(DOCKER, &docker_args);
    k.ok(&run(&name, &flags, "bb"));
    let healthy = |out: &str| out.trim() == "healthy";
    until(20, "docker's health", || {
        healthy(&common::tool(
            DOCKER,
            &["inspect", "-f", "{{.State.Health.Status}}", &name],
        ))
    });
    until(20, "kiln's health", || {
        healthy(&field(&k, &name, "{{.State.Health.Status}}"))
    });
    let theirs: Value = serde_json::from_str(&common::tool(DOCKER, &["inspect", &name])).unwrap();
    let ours = inspect(&k, &[&name]);
    drop(cleanup);
    k.ok(&["rm", "-f", &name]);
    let (mut t, mut o) = (BTreeSet::new(), BTreeSet::new());
    key_paths(&theirs[0], "", &mut t);
    key_paths(&ours, "", &mut o);
    let extra: Vec<&String> = o.difference(&t).collect();
    assert!(extra.is_empty(), "keys docker does not have: {extra:?}");
    // And the values that mean the same in both.
    for p in [
        "/Path",
        "/Args",
        "/State/Status",
        "/State/Health/Status",
        "/Name",
        "/RestartCount",
        "/Platform",
        "/HostConfig/NetworkMode",
        "/HostConfig/RestartPolicy",
        "/HostConfig/CapAdd",
        "/HostConfig/CapDrop",
        "/HostConfig/SecurityOpt",
        "/HostConfig/PidsLimit",
        "/HostConfig/Init",
        "/HostConfig/ExtraHosts",
        "/HostConfig/ReadonlyRootfs",
        "/Config/User",
        "/Config/Cmd",
        "/Config/WorkingDir",
        "/Config/Labels",
        "/Config/StopSignal",
        "/Config/StopTimeout",
        "/Config/Healthcheck",
    ] {
        assert_eq!(ours.pointer(p), theirs[0].pointer(p), "{p}");
    }
    // docker lists binds and mounts in its maps' order: compare as sets.
    let sorted = |v: &Value| {
        let mut l: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap().to_string())
            .collect();
        l.sort();
        l
    };
    assert_eq!(
        sorted(&ours["HostConfig"]["Binds"]),
        sorted(&theirs[0]["HostConfig"]["Binds"])
    );
    let mount = |doc: &Value, dest: &str| {
        let mut m = doc["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Destination"] == dest)
            .unwrap()
            .clone();
        // Where each keeps a volume's data is its own.
        m.as_object_mut().unwrap().remove("Source");
        m
    };
    for dest in ["/data", "/host"] {
        let (o, t) = (mount(&ours, dest), mount(&theirs[0], dest));
        if dest == "/host" {
            assert_eq!(o, t, "{dest}");
        } else {
            for k in ["Type", "Name", "Driver", "Mode", "RW", "Propagation"] {
                assert_eq!(o[k], t[k], "{dest} {k}");
            }
        }
    }
    let log = &ours["State"]["Health"]["Log"][0];
    assert_eq!(log["Output"], "ok\n");
    assert_eq!(log["ExitCode"], 0);
}

#[test]
fn rmi_refuses_images_containers_use_in_dockers_words() {
    let k = Kiln::new();
    k.import_busybox("bb", &[], &[]);
    k.import_busybox("up", &[("up", b"1")], &[]);
    let bb = image_id(&k, "bb");
    let up = image_id(&k, "up");
    let stopped = k.ok(&[
        "create",
        "--name",
        "st",
        "--network",
        "none",
        "bb",
        "echo",
        "still here",
    ]);
    let stopped = stopped.trim();
    let running = k.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "up",
        "busybox",
        "sleep",
        "60",
    ]);
    let running = running.trim();

    let err = k.fails(&["rmi", "bb"]);
    assert_eq!(
        err.trim(),
        format!(
            "Error response from daemon: conflict: unable to remove repository reference \"bb\" (must force) - container {} is using its referenced image {}",
            short(stopped),
            short(&bb)
        )
    );
    let err = k.fails(&["rmi", short(&bb)]);
    assert_eq!(
        err.trim(),
        format!(
            "Error response from daemon: conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
            short(&bb),
            short(stopped)
        )
    );
    for force in [&[][..], &["-f"][..]] {
        let mut args = vec!["rmi"];
        args.extend_from_slice(force);
        args.push(&up);
        let err = k.fails(&args);
        assert_eq!(
            err.trim(),
            format!(
                "Error response from daemon: conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                short(&up),
                short(running)
            )
        );
    }
    let err = k.fails(&["rmi", "up:latest"]);
    assert!(
        err.contains(&format!("container {} is using", short(running))),
        "{err}"
    );
    // A second name: untagging one is no conflict.
    k.ok(&["tag", "bb", "bb2"]);
    assert_eq!(k.ok(&["rmi", "bb2"]), "Untagged: bb2:latest\n");

    // -f: a running container's image loses its name but stays (docker's
    // dangling image); a stopped one's image is deleted, its content kept
    // for the container.
    assert_eq!(k.ok(&["rmi", "-f", "up"]), "Untagged: up:latest\n");
    assert!(k.ok(&["images", "-q"]).contains(short(&up)));
    assert_eq!(
        k.ok(&["rmi", "-f", "bb"]),
        format!("Untagged: bb:latest\nDeleted: {bb}\n")
    );
    assert!(!k.ok(&["images", "-q"]).contains(short(&bb)));
    k.ok(&["image", "prune", "-a", "-f"]);
    k.ok(&["builder", "prune", "-a", "-f"]);
    assert!(k.ok(&["images", "-q"]).contains(short(&up)), "in use: kept");
    // The stopped container still starts on its image's layers.
    k.ok(&["start", "st"]);
    assert_eq!(k.ok(&["wait", "st"]).trim(), "0");
    assert_eq!(k.ok(&["logs", "st"]), "still here\n");
    assert_eq!(field(&k, "st", "{{.Image}}"), bb);
    let check = k.ok(&["system", "check"]);
    assert!(check.contains("store is consistent"), "{check}");

    // Without containers nothing holds them.
    k.ok(&["rm", "-f", "st", running]);
    k.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(k.ok(&["images", "-q"]), "");
}

#[test]
fn image_prune_keeps_every_image_a_container_uses() {
    let k = Kiln::new();
    k.import_busybox("a", &[("a", b"a")], &[]);
    k.import_busybox("b", &[("b", b"b")], &[]);
    k.import_busybox("c", &[("c", b"c")], &[]);
    k.ok(&["run", "--name", "done", "--network", "none", "a", "true"]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "b",
        "busybox",
        "sleep",
        "60",
    ]);
    let out = k.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: c:latest"), "{out}");
    assert!(
        !out.contains("a:latest") && !out.contains("b:latest"),
        "{out}"
    );
    let left = k.ok(&["images", "--format", "{{.Repository}}"]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(left, ["a", "b"]);
    k.ok(&["builder", "prune", "-a", "-f"]);
    k.ok(&["start", "-a", "done"]);
    k.ok(&["rm", "-f", "live", "done"]);
}

/// `ps`'s STATUS and health filter of container `name`.
fn ps_health(k: &Kiln, name: &str, health: &str) -> bool {
    let f = format!("health={health}");
    k.ok(&["ps", "--filter", &f, "--format", "{{.Names}}"])
        .lines()
        .any(|l| l == name)
}

#[test]
fn health_checks_go_starting_unhealthy_healthy() {
    let k = Kiln::new();
    k.import_busybox("bb", &[], &[]);
    // Unhealthy until the process makes the file, 3 s in.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--network",
        "none",
        "--health-cmd",
        "test -e /tmp/ok || { echo missing; exit 1; }",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "bb",
        "sh",
        "-c",
        "busybox sleep 3; : > /tmp/ok; busybox sleep 60",
    ]);
    // A long interval: no probe yet, `starting`.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        "bb",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(field(&k, "slow", "{{.State.Health.Status}}"), "starting");
    let status = k.ok(&["ps", "--filter", "name=slow", "--format", "{{.Status}}"]);
    assert!(status.trim().ends_with("(health: starting)"), "{status}");
    assert!(ps_health(&k, "slow", "starting"));

    until(20, "unhealthy", || {
        field(&k, "hc", "{{.State.Health.Status}}") == "unhealthy"
    });
    let h = &inspect(&k, &["hc"])["State"]["Health"];
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 1);
    assert_eq!(last["Output"], "missing\n");
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());
    assert!(ps_health(&k, "hc", "unhealthy"));
    assert!(!ps_health(&k, "hc", "healthy"));

    until(20, "healthy", || {
        field(&k, "hc", "{{.State.Health.Status}}") == "healthy"
    });
    let h = &inspect(&k, &["hc"])["State"]["Health"];
    assert_eq!(h["FailingStreak"], 0);
    assert!(h["Log"].as_array().unwrap().len() <= 5, "{h}");
    assert!(ps_health(&k, "hc", "healthy"));
    let status = k.ok(&["ps", "--filter", "name=hc", "--format", "{{.Status}}"]);
    assert!(status.trim().ends_with("(healthy)"), "{status}");
    assert!(!ps_health(&k, "slow", "none"));
    let err = k.fails(&["ps", "--filter", "health=bogus"]);
    assert!(
        err.contains("Unrecognised filter value for health: bogus"),
        "{err}"
    );

    // Probing ends with the process.
    k.ok(&["stop", "-t", "1", "hc"]);
    let before = inspect(&k, &["hc"])["State"]["Health"]["Log"].clone();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(inspect(&k, &["hc"])["State"]["Health"]["Log"], before);
    k.ok(&["rm", "-f", "hc", "slow"]);
}

#[test]
fn health_check_timeouts_and_the_start_period() {
    let k = Kiln::new();
    k.import_busybox("bb", &[], &[]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "to",
        "--network",
        "none",
        "--health-cmd",
        "busybox sleep 5",
        "--health-timeout",
        "300ms",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "bb",
        "busybox",
        "sleep",
        "60",
    ]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "grace",
        "--network",
        "none",
        "--health-cmd",
        "exit 1",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "--health-start-period",
        "1h",
        "bb",
        "busybox",
        "sleep",
        "60",
    ]);
    until(20, "a timed-out probe", || {
        field(&k, "to", "{{.State.Health.Status}}") == "unhealthy"
    });
    let log = inspect(&k, &["to"])["State"]["Health"]["Log"][0].clone();
    assert_eq!(log["ExitCode"], -1);
    assert_eq!(log["Output"], "Health check exceeded timeout (300ms)");
    // The probe's processes were killed, not left to pile up.
    let ps = common::tool("ps", &["-eo", "args"]);
    assert!(
        ps.lines().filter(|l| l.trim() == "busybox sleep 5").count() <= 1,
        "{ps}"
    );
    // Failures inside the start period do not count while starting.
    until(20, "probes in the start period", || {
        field(&k, "grace", "{{len .State.Health.Log}}")
            .parse::<u32>()
            .unwrap()
            >= 2
    });
    assert_eq!(
        field(
            &k,
            "grace",
            "{{.State.Health.Status}} {{.State.Health.FailingStreak}}"
        ),
        "starting 0"
    );
    k.ok(&["rm", "-f", "to", "grace"]);
}

#[test]
fn an_image_healthcheck_runs_its_exec_form_and_none_turns_it_off() {
    let k = Kiln::new();
    k.import_busybox(
        "hc",
        &[],
        &[
            "--change",
            "HEALTHCHECK --interval=200ms CMD [\"/bin/echo\", \"exec form\"]",
        ],
    );
    k.ok(&[
        "run",
        "-d",
        "--name",
        "img",
        "--network",
        "none",
        "hc",
        "busybox",
        "sleep",
        "60",
    ]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "off",
        "--network",
        "none",
        "--no-healthcheck",
        "hc",
        "busybox",
        "sleep",
        "60",
    ]);
    until(20, "healthy", || {
        field(&k, "img", "{{.State.Health.Status}}") == "healthy"
    });
    assert_eq!(
        field(
            &k,
            "img",
            "{{(index .State.Health.Log 0).Output}}|{{json .Config.Healthcheck.Test}}"
        ),
        "exec form\n|[\"CMD\",\"/bin/echo\",\"exec form\"]"
    );
    assert_eq!(field(&k, "off", "{{json .State.Health}}"), "null");
    assert!(ps_health(&k, "off", "none"));
    k.ok(&["rm", "-f", "img", "off"]);
}
