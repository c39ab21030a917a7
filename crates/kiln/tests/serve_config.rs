//! `kiln serve`'s `[gc]` and `[storage]` sections: garbage collection
//! applies `[[policy.retention]]` (not only a manifest PUT does), flags
//! override the file, unknown keys are refused with their name, and `kiln
//! serve` runs as `kiln-serve` (a clear error without it). Servers
//! listen on 127.0.0.1 and are stopped when a test ends.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Child;

use common::Kiln;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn gc_applies_retention_and_flags_override_the_file() {
    let kiln = Kiln::new();
    let data = kiln.dir.path().join("reg");
    // Three images pushed to a registry with no retention.
    let (child, host) = common::serve::listening(
        kiln.cmd()
            .args([
                "serve",
                "--log-format",
                "off",
                "--addr",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(&data),
        None,
    );
    let server = Server(child);
    for i in 1..=3 {
        let k = Kiln::new();
        let motd = format!("image {i}\n");
        k.import_busybox("bb", &[("etc/motd", motd.as_bytes())], &[]);
        let name = format!("{host}/ci/app:t{i}");
        k.ok(&["tag", "bb", &name]);
        k.ok(&["push", &name]);
    }
    drop(server);
    let tags = || {
        let mut t: Vec<String> = std::fs::read_dir(data.join("repositories/ci/app/_tags"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        t.sort();
        t
    };
    let manifests = || {
        std::fs::read_dir(data.join("repositories/ci/app/_manifests/sha256"))
            .unwrap()
            .count()
    };
    assert_eq!(tags(), ["t1", "t2", "t3"]);
    assert_eq!(manifests(), 3);

    // The file: keep the newest tag, collect untagged manifests at once.
    let config = kiln.dir.path().join("kiln-registry.toml");
    std::fs::write(
        &config,
        format!(
            "data = {:?}\n[gc]\ngrace = 0\ndelete_untagged = true\n\
             [[policy.retention]]\nrepository = \"ci/*\"\nkeep_last = 1\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let dry = kiln.ok(&["serve", "gc", "--config", cfg, "--dry-run"]);
    assert!(dry.contains("would delete tag ci/app:t1"), "{dry}");
    assert!(dry.contains("would delete tag ci/app:t2"), "{dry}");
    assert_eq!(tags(), ["t1", "t2", "t3"]);
    // --grace overrides the file's 0: the tags go, their young manifests
    // stay.
    let out = kiln.ok(&["serve", "gc", "--config", cfg, "--grace", "1h"]);
    assert!(out.contains("deleted tag ci/app:t1"), "{out}");
    assert_eq!(tags(), ["t3"]);
    assert_eq!(manifests(), 3);
    // The file's grace of 0: the untagged manifests go too.
    let out = kiln.ok(&["serve", "gc", "--config", cfg]);
    assert!(out.contains("deleted manifest ci/app@"), "{out}");
    assert_eq!(manifests(), 1);

    // Online: [gc] interval runs the same collection while serving;
    // retention trims tags set behind the server's back (no PUT).
    std::fs::copy(
        data.join("repositories/ci/app/_tags/t3"),
        data.join("repositories/ci/app/_tags/t0"),
    )
    .unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(data.join("repositories/ci/app/_tags/t0"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let online = kiln.dir.path().join("online.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&online, text.replace("[gc]\n", "[gc]\ninterval = 1\n")).unwrap();
    let (child, _) = common::serve::listening(
        kiln.cmd()
            .args(["serve", "--addr", "127.0.0.1:0", "--config"])
            .arg(&online),
        None,
    );
    let _server = Server(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tags() != ["t3"] {
        assert!(
            std::time::Instant::now() < deadline,
            "online GC kept {:?}",
            tags()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn unknown_keys_and_bad_sections_are_refused() {
    let kiln = Kiln::new();
    let bad = |text: &str, expect: &str| {
        let f = kiln.dir.path().join("bad.toml");
        std::fs::write(&f, text).unwrap();
        let out = kiln.run(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--config",
            f.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{text} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{text}: {err}");
    };
    bad("[gc]\nintervall = 5\n", "intervall");
    bad("[storage]\nbucket = \"b\"\n", "bucket");
    bad("[storage]\nurl = \"gs://b\"\n", "s3://");
    bad("[gc]\ninterval = 0\n", "interval");
    bad("[proxy]\nurl = \"registry.example\"\n", "https://HOST");
}

/// Runs a binary this test has just copied. Another test's thread may
/// fork while the copy's file is still open for writing; the child holds
/// that descriptor until it execs, and until then running the copy fails
/// with ETXTBSY ("Text file busy"). So try again for a moment.
fn run_copied(cmd: &mut std::process::Command) -> std::process::Output {
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
    panic!("the copied binary stayed busy (ETXTBSY) for 2 s")
}

/// `kiln serve` runs as the lean `kiln-serve` next to kiln (the same
/// process, exec'd); without that file it says which file is missing.
#[test]
fn serve_execs_kiln_serve_and_names_it_when_missing() {
    let kiln = Kiln::new();
    let (child, _host) = common::serve::listening(
        kiln.cmd()
            .args(["serve", "--log-format", "off", "--addr", "127.0.0.1:0"]),
        None,
    );
    let server = Server(child);
    let exe = std::fs::read_link(format!("/proc/{}/exe", server.0.id())).unwrap();
    assert_eq!(exe.file_name().unwrap(), "kiln-serve", "{}", exe.display());
    drop(server);

    // A kiln alone in a directory.
    let lone = kiln.dir.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_kiln"), lone.join("kiln")).unwrap();
    let out = run_copied(std::process::Command::new(lone.join("kiln")).args([
        "--root",
        kiln.root.to_str().unwrap(),
        "serve",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let missing = lone.join("kiln-serve");
    assert!(
        stderr.contains(&format!("{} is missing", missing.display())),
        "{stderr}"
    );
    // Usage errors are still kiln's own (125), before anything is exec'd.
    let out =
        run_copied(std::process::Command::new(lone.join("kiln")).args(["serve", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(125));
}
