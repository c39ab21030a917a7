//! Small things a container shows that must be docker 20.10's, each
//! checked against docker itself on the same image: the init layer's
//! `/.dockerenv` and `/etc/mtab`, `/etc/hosts` with `--network none`,
//! `--tmpfs` modes, `inspect -s`, a health probe that cannot start, and
//! what `commit` records of the container.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const DOCKER: &str = "/usr/bin/docker";

/// A kiln store whose containers, and this test's docker containers and
/// images (all named with `tag`), go however the test ends.
struct Both {
    k: common::Kiln,
    tag: String,
}

impl Both {
    fn new(test: &str) -> Both {
        Both {
            k: common::Kiln::new(),
            tag: format!("kiln-parity-{test}-{}", std::process::id()),
        }
    }

    /// `bb` in kiln and `self.tag` in docker: the same busybox tarball
    /// (with `files`, and `import` arguments `args`).
    fn image(&self, files: &[(&str, &[u8])], args: &[&str]) {
        let tar = self.k.import_busybox("bb", files, args);
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[tar.to_str().unwrap(), &self.tag]);
        common::tool(DOCKER, &all);
    }

    /// `run --rm --network none FLAGS IMAGE sh -c SCRIPT` in both: kiln's
    /// output, docker's.
    fn run_both(&self, flags: &[&str], script: &str) -> (String, String) {
        let mut k_args = vec!["run", "--rm", "--network", "none"];
        k_args.extend_from_slice(flags);
        let mut d_args = k_args.clone();
        k_args.extend_from_slice(&["bb", "sh", "-c", script]);
        d_args.extend_from_slice(&[&self.tag, "sh", "-c", script]);
        (self.k.ok(&k_args), common::tool(DOCKER, &d_args))
    }
}

impl Drop for Both {
    fn drop(&mut self) {
        if let Ok(out) = self.k.cmd().args(["ps", "-aq", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.k.run(&["rm", "-f", id]);
            }
        }
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.tag]).output();
        for image in [self.tag.clone(), format!("{}-commit", self.tag)] {
            let _ = Command::new(DOCKER).args(["rmi", "-f", &image]).output();
        }
    }
}

/// Polls `f` until it gives `Some`, for up to `secs` seconds.
fn until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn init_layer_files_hosts_and_tmpfs_modes_are_dockers() {
    let b = Both::new("files");
    b.image(&[("data/keep", b"x")], &[]);
    let script = "busybox stat -c '%a %s %F' /.dockerenv; busybox readlink /etc/mtab; \
                  cat /etc/hosts; busybox stat -c '%a %n' /data /newdir /tmp";
    let flags = [
        "--tmpfs",
        "/data",
        "--tmpfs",
        "/newdir",
        "--tmpfs",
        "/tmp:size=1m",
        "--add-host",
        "db:10.1.2.3",
    ];
    let (kiln, docker) = b.run_both(&flags, script);
    assert_eq!(kiln, docker);
    assert!(
        kiln.starts_with("755 0 regular empty file\n/proc/mounts\n"),
        "{kiln}"
    );
    assert!(!kiln.contains("127.0.1.1"), "{kiln}");

    // The init layer's files are not the container's changes.
    b.k.ok(&["run", "--name", "plain", "--network", "none", "bb", "true"]);
    assert_eq!(b.k.ok(&["diff", "plain"]), "");
}

#[test]
fn inspect_size_shows_the_writable_layer_and_the_root() {
    let b = Both::new("size");
    b.image(&[], &[]);
    let script = "busybox head -c 100000 /dev/zero > /tmp/f";
    for (tool, image) in [("kiln", "bb"), (DOCKER, b.tag.as_str())] {
        let args = [
            "run",
            "--name",
            &b.tag,
            "--network",
            "none",
            image,
            "sh",
            "-c",
            script,
        ];
        if tool == "kiln" {
            b.k.ok(&args);
        } else {
            common::tool(DOCKER, &args);
        }
    }
    let theirs: Value =
        serde_json::from_str(&common::tool(DOCKER, &["inspect", "-s", &b.tag])).unwrap();
    let ours: Value = serde_json::from_str(&b.k.ok(&["inspect", "-s", &b.tag])).unwrap();
    let plain: Value = serde_json::from_str(&b.k.ok(&["inspect", &b.tag])).unwrap();
    let image: Value = serde_json::from_str(&b.k.ok(&["image", "inspect", "bb"])).unwrap();
    for key in ["SizeRw", "SizeRootFs"] {
        assert!(theirs[0][key].is_u64(), "docker: {key}");
        assert!(plain[0].get(key).is_none(), "without -s: {key}");
    }
    let rw = ours[0]["SizeRw"].as_u64().unwrap();
    // kiln counts the blocks the layer holds (with its directories),
    // docker the files' sizes: both about the file written.
    let docker_rw = theirs[0]["SizeRw"].as_u64().unwrap();
    assert!((100_000..160_000).contains(&rw), "{rw}");
    assert!((100_000..120_000).contains(&docker_rw), "{docker_rw}");
    assert_eq!(
        ours[0]["SizeRootFs"].as_u64().unwrap(),
        rw + image[0]["Size"].as_u64().unwrap()
    );
}

#[test]
fn a_probe_that_cannot_start_is_minus_one_with_the_runtimes_words() {
    let b = Both::new("probe");
    b.image(
        &[],
        &["--change", "HEALTHCHECK --interval=300ms CMD [\"/nope\"]"],
    );
    let run = |tool: &str, image: &str| {
        let args = [
            "run",
            "-d",
            "--name",
            &b.tag,
            "--network",
            "none",
            image,
            "busybox",
            "sleep",
            "60",
        ];
        if tool == "kiln" {
            b.k.ok(&args);
        } else {
            common::tool(DOCKER, &args);
        }
    };
    run("kiln", "bb");
    run(DOCKER, &b.tag);
    let first = |out: String| -> Option<(i64, String)> {
        let v: Value = serde_json::from_str(out.trim()).ok()?;
        let log = v.get("Log")?.get(0)?;
        Some((
            log["ExitCode"].as_i64()?,
            log["Output"].as_str()?.to_string(),
        ))
    };
    let template = "{{json .State.Health}}";
    let ours = until(20, "kiln's probe", || {
        first(b.k.ok(&["inspect", "-f", template, &b.tag]))
    });
    let theirs = until(20, "docker's probe", || {
        first(common::tool(DOCKER, &["inspect", "-f", template, &b.tag]))
    });
    assert_eq!(ours, theirs);
    assert_eq!(ours.0, -1);
}

#[test]
fn commit_records_the_container_and_its_config() {
    let b = Both::new("commit");
    b.image(&[], &[]);
    let args = |image: &'static str| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--name", &b.tag, "--network", "none", "-e", "A=1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push(image.to_string());
        v.extend(["sh", "-c", "echo hi > /f"].map(String::from));
        v
    };
    let kiln_args = args("bb");
    b.k.ok(&kiln_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut docker_args = kiln_args.clone();
    docker_args[7] = b.tag.clone();
    common::tool(
        DOCKER,
        &docker_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let committed = format!("{}-commit", b.tag);
    b.k.ok(&["commit", &b.tag, "committed"]);
    common::tool(DOCKER, &["commit", &b.tag, &committed]);
    let id = b.k.ok(&["inspect", "-f", "{{.Id}}", &b.tag]);
    let docker_id = common::tool(DOCKER, &["inspect", "-f", "{{.Id}}", &b.tag]);
    // The image's own config, as `save` gives it.
    let config = |save: &str| -> Value {
        let cfg = b.k.path("cfg");
        let _ = std::fs::remove_dir_all(&cfg);
        std::fs::create_dir_all(&cfg).unwrap();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(save)
            .arg("-C")
            .arg(&cfg)
            .status()
            .unwrap();
        assert!(st.success());
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(cfg.join("manifest.json")).unwrap()).unwrap();
        let name = manifest[0]["Config"].as_str().unwrap();
        serde_json::from_slice(&std::fs::read(cfg.join(name)).unwrap()).unwrap()
    };
    let ours_tar = b.k.path("ours.tar");
    b.k.ok(&["save", "-o", ours_tar.to_str().unwrap(), "committed"]);
    let ours = config(ours_tar.to_str().unwrap());
    let theirs_tar = b.k.path("theirs.tar");
    common::tool(
        DOCKER,
        &["save", "-o", theirs_tar.to_str().unwrap(), &committed],
    );
    let theirs = config(theirs_tar.to_str().unwrap());
    assert_eq!(ours["container"], id.trim());
    assert_eq!(theirs["container"], docker_id.trim());
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(
        keys(&ours["container_config"]),
        keys(&theirs["container_config"])
    );
    // (WorkingDir differs: kiln's container config records the `/` it
    // runs in where docker keeps the image's empty one; `inspect` shows
    // the same.)
    for key in ["Cmd", "Env", "Entrypoint", "User", "Tty"] {
        assert_eq!(
            ours["container_config"][key], theirs["container_config"][key],
            "{key}"
        );
    }
    assert_eq!(ours["container_config"]["Image"], "bb");
}
