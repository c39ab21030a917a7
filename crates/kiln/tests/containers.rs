//! `kiln run` and the container lifecycle end to end, in the style of
//! podman's `test/system/*.bats`: real containers (as root, network none)
//! of busybox images made in the tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::Kiln as Store;

/// A store whose containers are removed (forcibly) when the test ends,
/// passed or failed: a running container must never outlive the
/// temporary store its root lives in.
struct Kiln(Store);

impl Kiln {
    fn new() -> Kiln {
        Kiln(Store::new())
    }
}

impl std::ops::Deref for Kiln {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.0
    }
}

impl Drop for Kiln {
    fn drop(&mut self) {
        let ids = self.0.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.0.run(&["rm", "-f", id]);
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs kiln; (exit code, stdout, stderr).
fn kiln(k: &Kiln, args: &[&str]) -> (i32, String, String) {
    let out: Output = k.run(args);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn image(k: &Kiln) -> &'static str {
    k.import_busybox("bb", &[("etc/motd", b"from the image\n")], &[]);
    "bb"
}

fn state(k: &Kiln, name: &str) -> String {
    k.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.State}}",
    ])
    .trim()
    .to_string()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn entrypoint_and_cmd_follow_docker_rules() {
    let k = Kiln::new();
    k.import_busybox(
        "ep",
        &[],
        &[
            "--change",
            r#"ENTRYPOINT ["/bin/echo", "ep"]"#,
            "--change",
            r#"CMD ["from-cmd"]"#,
        ],
    );
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--rm", "ep"], "ep from-cmd\n"),
        (&["run", "--rm", "ep", "arg"], "ep arg\n"),
        // --entrypoint drops the image CMD.
        (&["run", "--rm", "--entrypoint", "/bin/echo", "ep"], "\n"),
        (
            &["run", "--rm", "--entrypoint", "/bin/echo", "ep", "x", "y"],
            "x y\n",
        ),
        // --entrypoint "" drops the image's entrypoint.
        (
            &["run", "--rm", "--entrypoint", "", "ep", "echo", "plain"],
            "plain\n",
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = kiln(&k, args);
        assert_eq!((code, out.as_str()), (0, *want), "{args:?}: {err}");
    }
    let (code, _, err) = kiln(&k, &["run", "--rm", "--entrypoint", "", "ep"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("No command specified"), "{err}");
}

#[test]
fn exit_codes_are_dockers() {
    let k = Kiln::new();
    let img = image(&k);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["run", "--rm", img, "sh", "-c", "exit 42"], 42, ""),
        (&["run", "--rm", img, "/etc"], 126, "permission denied"),
        (
            &["run", "--rm", img, "nope"],
            127,
            "executable file not found in $PATH",
        ),
        (
            &["run", "--rm", img, "/no/such"],
            127,
            "no such file or directory",
        ),
        (
            &["run", "--rm", "--pull", "never", "missing:1", "true"],
            125,
            "No such image",
        ),
        (&["run", "--rm", "--bogus-flag", img], 125, ""),
        (
            &["run", "--rm", "--restart", "always", img, "true"],
            125,
            "Conflicting options: --restart and --rm",
        ),
    ];
    for (args, want, msg) in cases {
        let (code, _, err) = kiln(&k, args);
        assert_eq!(code, *want, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    // A failed run with --rm leaves nothing behind.
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    // Without --rm the container stays, Created with its error (docker).
    let (code, _, _) = kiln(&k, &["run", "--name", "broken", img, "nope"]);
    assert_eq!(code, 127);
    assert_eq!(state(&k, "broken"), "created");
}

#[test]
fn detached_containers_log_stop_and_are_removed() {
    let k = Kiln::new();
    let img = image(&k);
    let id = k.ok(&[
        "run", "-d", "--name", "ticker", img, "sh", "-c",
        "trap 'echo bye; exit 0' TERM; echo started; echo to-stderr >&2; while true; do /bin/busybox sleep 0.1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(state(&k, "ticker"), "running");
    wait_for("output", || k.ok(&["logs", "ticker"]).contains("started"));
    // Streams stay apart; the json-file log is docker's format.
    let out = k.run(&["logs", "ticker"]);
    assert_eq!(text(&out.stdout), "started\n");
    assert_eq!(text(&out.stderr), "to-stderr\n");
    let log =
        std::fs::read_to_string(k.root.join(format!("containers/{id}/{id}-json.log"))).unwrap();
    // The two streams are read apart, so their records may interleave.
    let first: serde_json::Value =
        serde_json::from_str(log.lines().find(|l| l.contains("started")).unwrap()).unwrap();
    assert_eq!(first["log"], "started\n");
    assert_eq!(first["stream"], "stdout");
    assert_eq!(first["time"].as_str().unwrap().len(), 30);
    let ts = k.ok(&["logs", "-t", "--tail", "2", "ticker"]);
    assert!(ts.ends_with(" started\n") && ts.starts_with("20"), "{ts}");
    // Removing a running container needs -f.
    let (code, _, err) = kiln(&k, &["rm", "ticker"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("You cannot remove a running container"),
        "{err}"
    );
    // stop: SIGTERM, the trap runs, exit 0, quickly.
    let t = Instant::now();
    assert_eq!(k.ok(&["stop", "ticker"]), "ticker\n");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(state(&k, "ticker"), "exited");
    assert!(k.ok(&["logs", "ticker"]).ends_with("bye\n"));
    assert_eq!(k.ok(&["wait", "ticker"]), "0\n");
    let status = k.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Exited (0) "), "{status}");
    // start again: same container, logs appended.
    assert_eq!(k.ok(&["start", "ticker"]), "ticker\n");
    assert_eq!(state(&k, "ticker"), "running");
    assert_eq!(k.ok(&["kill", "ticker"]), "ticker\n");
    assert_eq!(k.ok(&["wait", "ticker"]), "137\n");
    let (code, _, err) = kiln(&k, &["kill", "ticker"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not running"), "{err}");
    assert_eq!(k.ok(&["rm", "ticker"]), "ticker\n");
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    assert!(!k.root.join(format!("containers/{id}")).exists());
    // Its cgroup went with it.
    for c in ["memory", "pids", "cpu"] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(c)
            .join("kiln")
            .join(id);
        assert!(!dir.exists(), "{}", dir.display());
    }
    assert!(!k
        .root
        .join(format!("snapshots/active/container-{id}"))
        .exists());
}

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    let k = Kiln::new();
    let img = image(&k);
    // PID 1 without a handler ignores SIGTERM: stop waits -t, then kills.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        img,
        "/bin/busybox",
        "sleep",
        "60",
    ]);
    let t = Instant::now();
    k.ok(&["stop", "-t", "1", "stubborn"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(k.ok(&["wait", "stubborn"]), "137\n");
    // The image's STOPSIGNAL, or --stop-signal.
    // Signals go once the traps are set.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        img,
        "sh",
        "-c",
        "trap 'exit 7' USR1; echo ready; while true; do /bin/busybox sleep 0.1; done",
    ]);
    wait_for("the trap", || k.ok(&["logs", "usr1"]).contains("ready"));
    k.ok(&["stop", "usr1"]);
    assert_eq!(k.ok(&["wait", "usr1"]), "7\n");
    k.ok(&[
        "run",
        "-d",
        "--name",
        "hup",
        img,
        "sh",
        "-c",
        "trap 'exit 9' HUP; echo ready; while true; do /bin/busybox sleep 0.1; done",
    ]);
    wait_for("the trap", || k.ok(&["logs", "hup"]).contains("ready"));
    k.ok(&["kill", "-s", "SIGHUP", "hup"]);
    assert_eq!(k.ok(&["wait", "hup"]), "9\n");
}

#[test]
fn names_hostnames_users_env_and_workdir() {
    let k = Kiln::new();
    k.import_busybox(
        "users",
        &[
            (
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
            ),
            ("etc/group", b"root:x:0:\napp:x:1000:\n"),
        ],
        &[
            "--change",
            "ENV FROM_IMAGE=1 SHARED=image",
            "--change",
            "WORKDIR /srv",
        ],
    );
    let id = k
        .ok(&[
            "create",
            "--name",
            "named",
            "users",
            "/bin/busybox",
            "hostname",
        ])
        .trim()
        .to_string();
    let out = k.ok(&["start", "-a", "named"]);
    assert_eq!(
        out.trim(),
        &id[..12],
        "the default hostname is the short ID"
    );
    let (code, _, err) = kiln(&k, &["create", "--name", "named", "users", "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("Conflict. The container name \"/named\" is already in use by container"),
        "{err}"
    );
    let (code, _, err) = kiln(&k, &["create", "--name", "bad/name", "users", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("Invalid container name"), "{err}");
    assert_eq!(
        k.ok(&[
            "run",
            "--rm",
            "-h",
            "box",
            "users",
            "/bin/busybox",
            "hostname"
        ]),
        "box\n"
    );
    let id = k.ok(&["run", "--rm", "-u", "app", "users", "id"]);
    assert!(id.starts_with("uid=1000(app) gid=1000(app)"), "{id}");
    assert_eq!(
        k.ok(&["run", "--rm", "-u", "4242:4242", "users", "id", "-u"]),
        "4242\n"
    );
    let (code, _, err) = kiln(&k, &["run", "--rm", "-u", "ghost", "users", "id"]);
    assert_ne!(code, 0);
    assert!(err.contains("ghost"), "{err}");
    let env = k.path("env.list");
    std::fs::write(&env, "# comment\nFROM_FILE=yes\nSHARED=file\n").unwrap();
    let out = k.ok_with_env(
        &[
            "run",
            "--rm",
            "--env-file",
            env.to_str().unwrap(),
            "-e",
            "SHARED=flag",
            "-e",
            "PASSED",
            "users",
            "env",
        ],
        &[("PASSED", "through")],
    );
    for want in [
        "FROM_IMAGE=1",
        "FROM_FILE=yes",
        "SHARED=flag",
        "PASSED=through",
        "HOME=/root",
    ] {
        assert!(out.lines().any(|l| l == want), "{want} in {out}");
    }
    assert_eq!(k.ok(&["run", "--rm", "users", "sh", "-c", "pwd"]), "/srv\n");
    assert_eq!(
        k.ok(&["run", "--rm", "-w", "/tmp", "users", "sh", "-c", "pwd"]),
        "/tmp\n"
    );
    assert_eq!(k.ok(&["rename", "named", "renamed"]), "");
    assert_eq!(state(&k, "renamed"), "exited");
}

#[test]
fn restart_policies_back_off_and_a_manual_stop_ends_them() {
    let k = Kiln::new();
    let img = image(&k);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:3",
        img,
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    wait_for("three restarts", || {
        k.ok(&[
            "ps",
            "-a",
            "--filter",
            "name=flaky",
            "--format",
            "{{.State}}",
        ])
        .trim()
            == "exited"
            && k.ok(&["logs", "flaky"]).lines().count() == 4
    });
    assert_eq!(k.ok(&["wait", "flaky"]), "1\n");
    // always: restarts even after exit 0; stop ends it for good.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "forever",
        "--restart",
        "always",
        img,
        "sh",
        "-c",
        "echo up; /bin/busybox sleep 0.2",
    ]);
    wait_for("a restart", || {
        k.ok(&["logs", "forever"]).lines().count() >= 2
    });
    k.ok(&["stop", "-t", "1", "forever"]);
    let before = k.ok(&["logs", "forever"]).lines().count();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(k.ok(&["logs", "forever"]).lines().count(), before);
    assert_eq!(state(&k, "forever"), "exited");
}

#[test]
fn volumes_copy_up_survive_and_are_removed_only_when_anonymous() {
    let k = Kiln::new();
    k.import_busybox(
        "vol",
        &[("data/seed", b"seeded\n")],
        &["--change", "VOLUME /cache"],
    );
    // A new named volume is filled from the image's content at its path.
    assert_eq!(
        k.ok(&[
            "run",
            "--rm",
            "-v",
            "store:/data",
            "vol",
            "cat",
            "/data/seed"
        ]),
        "seeded\n"
    );
    k.ok(&[
        "run",
        "--rm",
        "-v",
        "store:/data",
        "vol",
        "sh",
        "-c",
        "echo kept > /data/new",
    ]);
    assert_eq!(
        k.ok(&[
            "run",
            "--rm",
            "-v",
            "store:/data",
            "vol",
            "cat",
            "/data/new"
        ]),
        "kept\n"
    );
    assert!(k.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "store"));
    // A bind mount is never filled; :ro makes writes fail.
    let host = k.path("host-dir");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/data", host.display());
    assert_eq!(
        k.ok(&["run", "--rm", "-v", &bind, "vol", "ls", "/data"]),
        ""
    );
    k.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "vol",
        "sh",
        "-c",
        "echo from-container > /data/out",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from-container\n"
    );
    let (code, _, err) = kiln(
        &k,
        &[
            "run",
            "--rm",
            "-v",
            "store:/data:ro",
            "vol",
            "/bin/busybox",
            "touch",
            "/data/x",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    // The image VOLUME gets an anonymous volume; rm -v removes it, never
    // the named one.
    k.ok(&[
        "run",
        "--name",
        "anon",
        "-v",
        "store:/data",
        "vol",
        "sh",
        "-c",
        "echo a > /cache/a",
    ]);
    let vols = k.ok(&["volume", "ls", "-q"]);
    let anon: Vec<&str> = vols.lines().filter(|l| *l != "store").collect();
    assert_eq!(anon.len(), 1, "{vols}");
    let (code, _, err) = kiln(&k, &["volume", "rm", "store"]);
    assert_eq!(code, 1);
    assert!(err.contains("volume is in use"), "{err}");
    k.ok(&["rm", "-v", "anon"]);
    assert_eq!(k.ok(&["volume", "ls", "-q"]), "store\n");
    // --rm also removes anonymous volumes.
    k.ok(&["run", "--rm", "vol", "true"]);
    assert_eq!(k.ok(&["volume", "ls", "-q"]), "store\n");
    // prune: anonymous unused volumes; -a: every unused one; a volume in
    // use stays either way.
    k.ok(&["create", "--name", "holder", "-v", "held:/h", "vol", "true"]);
    k.ok(&["create", "--name", "anon2", "vol", "true"]);
    k.ok(&["rm", "anon2"]);
    // holder's and anon2's anonymous /cache volumes, held, store.
    assert_eq!(k.ok(&["volume", "ls", "-q"]).lines().count(), 4);
    let pruned = k.ok(&["volume", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Volumes:\n"), "{pruned}");
    let left = k.ok(&["volume", "ls", "-q"]);
    let named: Vec<&str> = left.lines().filter(|l| l.len() != 64).collect();
    assert_eq!(named, ["held", "store"], "{left}");
    assert_eq!(
        left.lines().count(),
        3,
        "holder's anonymous volume stays: {left}"
    );
    k.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(k.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    assert!(k.ok(&["volume", "ls", "-q"]).contains("held\n"));
    k.ok(&["rm", "holder"]);
    k.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(k.ok(&["volume", "ls", "-q"]), "");
    let (code, _, _) = kiln(&k, &["volume", "inspect", "store"]);
    assert_eq!(code, 1);
}

#[test]
fn a_killed_monitor_leaves_an_exited_container_and_no_hang() {
    let k = Kiln::new();
    let img = image(&k);
    let id = k
        .ok(&["run", "-d", img, "/bin/busybox", "sleep", "60"])
        .trim()
        .to_string();
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(k.root.join(format!("containers/{id}/state.json"))).unwrap(),
    )
    .unwrap();
    let monitor = state["monitor"][0].as_i64().unwrap() as i32;
    let init = state["pid"].as_i64().unwrap() as i32;
    assert!(std::path::Path::new(&format!("/proc/{init}")).exists());
    common::tool("kill", &["-9", &monitor.to_string()]);
    wait_for("the monitor to die", || {
        !std::fs::read_to_string(format!("/proc/{monitor}/stat")).is_ok_and(|s| !s.contains(") Z "))
    });
    let status = k.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Exited (255)"), "{status}");
    // Its process went with it; rm needs no -f and leaves nothing mounted.
    wait_for("the container's process to end", || {
        !std::fs::read_to_string(format!("/proc/{init}/stat")).is_ok_and(|s| !s.contains(") Z "))
    });
    k.ok(&["rm", &id]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "{mounts}");
}

/// The monitor of running container `id` (its pid), once kiln handed it
/// over to the lean `kiln-monitor` binary.
fn lean_monitor(k: &Kiln, id: &str) -> i32 {
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(k.root.join(format!("containers/{id}/state.json"))).unwrap(),
    )
    .unwrap();
    let monitor = state["monitor"][0].as_i64().unwrap() as i32;
    wait_for("the lean monitor", || {
        std::fs::read_link(format!("/proc/{monitor}/exe"))
            .is_ok_and(|p| p.file_name().is_some_and(|n| n == "kiln-monitor"))
    });
    monitor
}

/// `VmRSS` of process `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn an_idle_container_is_watched_by_the_lean_monitor_in_two_megabytes() {
    let k = Kiln::new();
    let img = image(&k);
    let idle = k
        .ok(&["run", "-d", img, "/bin/busybox", "sleep", "60"])
        .trim()
        .to_string();
    let monitor = lean_monitor(&k, &idle);
    // Idle as bench/run.sh measures it: a moment after the start.
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kib(monitor);
    assert!(rss <= 2048, "the lean monitor holds {rss} KiB");
    let threads = std::fs::read_to_string(format!("/proc/{monitor}/status")).unwrap();
    assert!(threads.contains("Threads:\t1\n"), "{threads}");
    // Output written while the lean monitor watches reaches the log, and
    // the exit code comes back through kiln.
    let talker = k
        .ok(&[
            "run",
            "-d",
            img,
            "/bin/sh",
            "-c",
            "sleep 1; echo out; echo err >&2; printf partial; exit 3",
        ])
        .trim()
        .to_string();
    lean_monitor(&k, &talker);
    assert_eq!(k.ok(&["wait", &talker]).trim(), "3");
    let (_, out, err) = kiln(&k, &["logs", &talker]);
    assert_eq!(out, "out\npartial");
    assert_eq!(err, "err\n");
    let status = k.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("id={talker}"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(status.starts_with("Exited (3)"), "{status}");
    // A healthcheck keeps the lean monitor: it runs kiln for each probe.
    let checked = k
        .ok(&[
            "run",
            "-d",
            "--health-cmd",
            "echo fine",
            "--health-interval",
            "200ms",
            img,
            "/bin/busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let monitor = lean_monitor(&k, &checked);
    wait_for("a healthy container", || {
        k.ok(&["inspect", "--format", "{{.State.Health.Status}}", &checked])
            .trim()
            == "healthy"
    });
    assert!(std::fs::read_link(format!("/proc/{monitor}/exe"))
        .unwrap()
        .ends_with("kiln-monitor"));
    k.ok(&["rm", "-f", &idle, &talker, &checked]);
}

#[test]
fn a_killed_lean_monitor_leaves_an_exited_container() {
    let k = Kiln::new();
    let img = image(&k);
    let id = k
        .ok(&["run", "-d", img, "/bin/busybox", "sleep", "60"])
        .trim()
        .to_string();
    let monitor = lean_monitor(&k, &id);
    common::tool("kill", &["-9", &monitor.to_string()]);
    wait_for("the monitor to die", || {
        !std::fs::read_to_string(format!("/proc/{monitor}/stat")).is_ok_and(|s| !s.contains(") Z "))
    });
    let status = k.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Exited (255)"), "{status}");
    k.ok(&["rm", &id]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "{mounts}");
}

#[test]
fn ps_lists_filters_and_formats_like_docker() {
    let k = Kiln::new();
    let img = image(&k);
    k.ok(&["run", "--name", "one", "-l", "tier=web", img, "true"]);
    assert_eq!(
        kiln(&k, &["run", "--name", "two", img, "sh", "-c", "exit 3"]).0,
        3
    );
    k.ok(&[
        "run",
        "-d",
        "--name",
        "three",
        img,
        "/bin/busybox",
        "sleep",
        "30",
    ]);
    let header = k.ok(&["ps"]);
    assert!(
        header.starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{header}"
    );
    assert!(
        header.contains("three") && !header.contains("one"),
        "{header}"
    );
    let names = |args: &[&str]| {
        let mut all = vec!["ps", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        k.ok(&all).lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(names(&["-a"]), ["three", "two", "one"]);
    assert_eq!(names(&["-l"]), ["three"]);
    assert_eq!(names(&["-n", "2"]), ["three", "two"]);
    assert_eq!(names(&["-a", "--filter", "exited=3"]), ["two"]);
    assert_eq!(names(&["-a", "--filter", "status=exited"]), ["two", "one"]);
    assert_eq!(names(&["-a", "--filter", "label=tier=web"]), ["one"]);
    assert_eq!(names(&["-a", "--filter", "ancestor=bb"]).len(), 3);
    let cmd = k.ok(&["ps", "--format", "{{.Command}}"]);
    assert_eq!(cmd, "\"/bin/busybox sleep …\"\n");
    let json = k.ok(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Names"], "three");
    assert_eq!(v["State"], "running");
    assert_eq!(k.ok(&["ps", "-q"]).trim().len(), 12);
    assert_eq!(k.ok(&["ps", "-q", "--no-trunc"]).trim().len(), 64);
    // system df counts containers (one running) and the image in use.
    let df: serde_json::Value =
        serde_json::from_str(&k.ok(&["system", "df", "--format", "json"])).unwrap();
    assert_eq!(df["ActiveImages"], 1);
    let cs = df["Containers"].as_array().unwrap();
    assert_eq!(cs.len(), 3);
    assert_eq!(cs.iter().filter(|c| c["Running"] == true).count(), 1);
    let table = k.ok(&["system", "df"]);
    assert!(table.contains("\nContainers      3         1  "), "{table}");
    k.ok(&["rm", "-f", "three"]);
    let pruned = k.ok(&["container", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    assert_eq!(k.ok(&["ps", "-aq"]), "");
}

#[test]
fn many_containers_share_the_image_layers() {
    let k = Kiln::new();
    let img = image(&k);
    for i in 0..10 {
        k.ok(&["create", "--name", &format!("c{i}"), img, "true"]);
    }
    // Each container's writable layer starts empty; the image was
    // unpacked once.
    let snaps = std::fs::read_dir(k.root.join("snapshots"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("fs").is_dir())
        .count();
    assert_eq!(snaps, 1);
    let active = std::fs::read_dir(k.root.join("snapshots/active"))
        .unwrap()
        .count();
    assert_eq!(active, 10);
    let t = Instant::now();
    assert_eq!(k.ok(&["ps", "-aq"]).lines().count(), 10);
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// `kiln --root ROOT ARGS` as one shell line, for a pseudo-terminal.
fn line(k: &Kiln, args: &str) -> String {
    format!(
        "{} --root {} {args}",
        env!("CARGO_BIN_EXE_kiln"),
        k.root.display()
    )
}

#[test]
fn stdin_and_terminals_reach_the_process() {
    let k = Kiln::new();
    let img = image(&k);
    // -i pipes stdin; without -i the process reads nothing.
    let input = k.path("input.txt");
    std::fs::write(&input, "piped line\n").unwrap();
    assert_eq!(
        k.ok_with_stdin(&["run", "--rm", "-i", img, "cat"], &input),
        "piped line\n"
    );
    assert_eq!(k.ok_with_stdin(&["run", "--rm", img, "cat"], &input), "");
    // -it: a real terminal, its size the caller's, TERM set, typed input
    // and the exit code through.
    let cmd = format!(
        "stty rows 33 cols 101; {}; echo kiln-exit=$?",
        line(&k, &format!("run -it --rm {img} sh"))
    );
    let (_, shown) = common::pty::under_pty(
        &cmd,
        &[
            ("# ", "tty; stty size; echo term=$TERM\n"),
            ("term=xterm", "exit 6\n"),
        ],
    );
    assert!(shown.contains("/dev/pts/0"), "{shown}");
    assert!(shown.contains("33 101"), "{shown}");
    assert!(shown.contains("kiln-exit=6"), "{shown}");
    // -di keeps stdin open with nobody attached: cat keeps running.
    k.ok(&["run", "-di", "--name", "catty", img, "cat"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(&k, "catty"), "running");
    // exec -i and exec -it into it.
    assert_eq!(
        k.ok_with_stdin(&["exec", "-i", "catty", "cat"], &input),
        "piped line\n"
    );
    let cmd = format!("{}; echo kiln-exit=$?", line(&k, "exec -it catty sh"));
    let (_, shown) = common::pty::under_pty(&cmd, &[("# ", "tty; exit 3\n")]);
    assert!(shown.contains("/dev/pts/"), "{shown}");
    assert!(shown.contains("kiln-exit=3"), "{shown}");
    // Ctrl-C in an attached -it run reaches the process as typed.
    let cmd = format!("{}; echo kiln-exit=$?", line(&k, &format!("run -it --rm {img} sh -c 'trap \"exit 42\" INT; echo armed; while true; do /bin/busybox sleep 0.1; done'")));
    let (_, shown) = common::pty::under_pty(&cmd, &[("armed", "\u{3}")]);
    assert!(shown.contains("kiln-exit=42"), "{shown}");
}

#[test]
fn an_out_of_memory_kill_is_reported() {
    let k = Kiln::new();
    let img = image(&k);
    // A shell variable growing past the limit: the kernel's OOM killer.
    let (code, _, err) = kiln(
        &k,
        &[
            "run",
            "--name",
            "hog",
            "-m",
            "16m",
            img,
            "sh",
            "-c",
            "x=a; while true; do x=$x$x; done",
        ],
    );
    assert_eq!(code, 137, "{err}");
    assert_eq!(
        k.ok(&["inspect", "-f", "{{.State.OOMKilled}}", "hog"]),
        "true\n"
    );
    k.ok(&["run", "--name", "fine", "-m", "16m", img, "true"]);
    assert_eq!(
        k.ok(&["inspect", "-f", "{{.State.OOMKilled}}", "fine"]),
        "false\n"
    );
}

#[test]
fn run_pulls_a_missing_image_as_pull_says() {
    let reg = common::registry::Registry::start(common::registry::Auth::Anonymous);
    let k = Kiln::new();
    let name = format!("{}/team/app:1", reg.host());
    k.import_busybox(&name, &[("etc/motd", b"pulled\n")], &[]);
    k.ok(&["push", &name]);
    k.ok(&["rmi", &name]);
    // never: refused, nothing pulled.
    let (code, _, err) = kiln(
        &k,
        &["run", "--rm", "--pull", "never", &name, "cat", "/etc/motd"],
    );
    assert_eq!(code, 125, "{err}");
    // missing (the default): docker's line, the pull, then the run.
    let (code, out, err) = kiln(&k, &["run", "--rm", &name, "cat", "/etc/motd"]);
    assert_eq!((code, out.as_str()), (0, "pulled\n"), "{err}");
    assert!(
        err.contains(&format!("Unable to find image '{name}' locally")),
        "{err}"
    );
    // Present: no pull.
    let (_, _, err) = kiln(&k, &["run", "--rm", &name, "true"]);
    assert!(!err.contains("Unable to find image"), "{err}");
    // always: pulls even when present.
    let (code, _, err) = kiln(&k, &["run", "--rm", "--pull", "always", &name, "true"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Status: Image is up to date"), "{err}");
}

#[test]
fn logs_follow_cidfile_add_host_and_failed_creates_leave_nothing() {
    let k = Kiln::new();
    let img = image(&k);
    let cid = k.path("cid");
    let id = k.ok(&[
        "run",
        "-d",
        "--cidfile",
        cid.to_str().unwrap(),
        "--add-host",
        "db:10.1.2.3",
        img,
        "sh",
        "-c",
        "cat /etc/hosts; for i in 1 2 3; do echo line$i; /bin/busybox sleep 0.2; done",
    ]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    // -f follows until the container ends.
    let followed = k.ok(&["logs", "-f", id.trim()]);
    assert!(followed.contains("10.1.2.3\tdb"), "{followed}");
    assert!(followed.ends_with("line1\nline2\nline3\n"), "{followed}");
    let (code, _, err) = kiln(
        &k,
        &["run", "-d", "--cidfile", cid.to_str().unwrap(), img, "true"],
    );
    assert_eq!(code, 125);
    assert!(err.contains("Container ID file found"), "{err}");
    // A create that fails leaves no record, writable layer or volume.
    let active = || {
        std::fs::read_dir(k.root.join("snapshots/active"))
            .unwrap()
            .count()
    };
    let before = (
        k.ok(&["ps", "-aq"]),
        active(),
        k.ok(&["volume", "ls", "-q"]),
    );
    let (code, _, err) = kiln(
        &k,
        &[
            "create",
            "-v",
            "ok-vol:/a",
            "-v",
            "bad/name:/b",
            img,
            "true",
        ],
    );
    assert_eq!(code, 125, "{err}");
    let (code, _, err) = kiln(&k, &["create", "--security-opt", "bogus", img, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("invalid --security-opt"), "{err}");
    assert_eq!(
        before,
        (
            k.ok(&["ps", "-aq"]),
            active(),
            k.ok(&["volume", "ls", "-q"])
        )
    );
}

#[test]
fn fifty_detached_containers_share_one_image_on_disk() {
    let k = Kiln::new();
    let img = image(&k);
    let du = |p: &std::path::Path| -> u64 {
        let out = common::tool("du", &["-sb", p.to_str().unwrap()]);
        out.split_whitespace().next().unwrap().parse().unwrap()
    };
    k.ok(&["run", "--rm", img, "true"]);
    let snapshots = k.root.join("snapshots");
    let before = du(&snapshots);
    for i in 0..50 {
        k.ok(&[
            "run",
            "-d",
            "--name",
            &format!("s{i}"),
            img,
            "/bin/busybox",
            "sleep",
            "600",
        ]);
    }
    // 50 writable layers, each nearly empty: far less than 50 copies of
    // the image (busybox alone is ~2 MB).
    let grown = du(&snapshots) - before;
    assert!(grown < 2 * 1024 * 1024, "grew by {grown} bytes");
    let t = Instant::now();
    assert_eq!(k.ok(&["ps", "-q"]).lines().count(), 50);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}
