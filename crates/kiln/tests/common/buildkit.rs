//! BuildKit as the reference for `kiln build`: docker 20.10's BuildKit
//! (`DOCKER_BUILDKIT=1 /usr/bin/docker build`; Debian's 20.10 client —
//! a newer client without buildx cannot drive it) builds the same
//! Dockerfile and context as kiln, on the same base image, and the tests
//! compare what users would see: the file tree (paths, types, modes,
//! owners, contents), the config, the history and the exit code.
//!
//! Both images are read back the same way: kiln's is handed to docker
//! (`kiln save | docker load`) and each is flattened with `docker create`
//! and `docker export`, so any difference comes from the images, not from
//! two ways of reading them. dockerd must be running (`.ci/run` starts
//! it); a missing docker fails the test, it never skips.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{run_tool, tool, Kiln};

/// Debian's docker client, which drives the daemon's BuildKit.
pub(crate) const DOCKER: &str = "/usr/bin/docker";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// One entry of a flattened image: kind, mode bits, owner, and content
/// digest (files) or link target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub content: String,
}

pub(crate) type Tree = BTreeMap<String, Node>;

/// A kiln store and docker, both holding the same busybox base image
/// (with an `app` user, uid 1000) under a name unique to this test.
pub(crate) struct Peers {
    pub kiln: Kiln,
    pub base: String,
    prefix: String,
    docker_images: std::sync::Mutex<Vec<String>>,
}

impl Drop for Peers {
    fn drop(&mut self) {
        let images = self
            .docker_images
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        for image in images.iter().chain(std::iter::once(&self.base)) {
            let _ = Command::new(DOCKER)
                .args(["rmi", "-f", image])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The result of one build: exit code, output, and the docker image name
/// it can be read under (when it succeeded).
pub(crate) struct Built {
    pub code: i32,
    pub output: String,
    pub image: String,
}

impl Peers {
    pub(crate) fn new() -> Peers {
        require_buildkit();
        let kiln = Kiln::new();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("kiln-parity-{}-{n}", std::process::id());
        let base = format!("{prefix}-base:1");
        let tar = full_busybox_tar(kiln.dir.path());
        kiln.ok_with_env(
            &["import", tar.to_str().unwrap(), &base, "-m", "parity base"],
            &[("SOURCE_DATE_EPOCH", "1600000000")],
        );
        let peers = Peers {
            kiln,
            base,
            prefix,
            docker_images: std::sync::Mutex::new(Vec::new()),
        };
        peers.to_docker(&peers.base);
        peers
    }

    /// A docker image name unique to this test.
    pub(crate) fn name(&self, what: &str) -> String {
        let name = format!("{}-{what}:1", self.prefix);
        self.docker_images.lock().unwrap().push(name.clone());
        name
    }

    /// Hands a kiln image to docker under the same name.
    pub(crate) fn to_docker(&self, image: &str) {
        let archive = self
            .kiln
            .path(&format!("{}.tar", image.replace([':', '/'], "_")));
        self.kiln
            .ok(&["save", "-o", archive.to_str().unwrap(), image]);
        tool(DOCKER, &["load", "-i", archive.to_str().unwrap()]);
    }

    /// A context directory holding `files`; `Dockerfile` uses `{BASE}`
    /// for the base image's name.
    pub(crate) fn context(&self, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = self.kiln.dir.path().join(name);
        for (p, c) in files {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c.replace("{BASE}", &self.base)).unwrap();
        }
        dir
    }

    /// `DOCKER_BUILDKIT=1 docker build` with `args` (the context last).
    pub(crate) fn buildkit(&self, args: &[&str], stdin: Option<&Path>) -> Built {
        let image = self.name("bk");
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_BUILDKIT", "1")
            .args(["build", "--progress", "plain", "-t", &image])
            .args(args);
        run_build(cmd, stdin, image)
    }

    /// `kiln build` with `args`; a successful image is handed to docker.
    pub(crate) fn kiln(&self, args: &[&str], stdin: Option<&Path>) -> Built {
        let image = self.name("kiln");
        let mut cmd = self.kiln.cmd();
        cmd.args(["build", "--progress", "plain", "-t", &image])
            .args(args);
        let built = run_build(cmd, stdin, image);
        if built.code == 0 {
            self.to_docker(&built.image);
        }
        built
    }

    /// Builds with both and requires both to succeed.
    pub(crate) fn both(&self, args: &[&str]) -> (Built, Built) {
        self.both_with_stdin(args, None)
    }

    pub(crate) fn both_with_stdin(&self, args: &[&str], stdin: Option<&Path>) -> (Built, Built) {
        let bk = self.buildkit(args, stdin);
        assert_eq!(bk.code, 0, "BuildKit failed:\n{}", bk.output);
        let kiln = self.kiln(args, stdin);
        assert_eq!(kiln.code, 0, "kiln failed:\n{}", kiln.output);
        (bk, kiln)
    }

    /// Builds with both and requires the same tree, config and history.
    pub(crate) fn same_image(&self, args: &[&str]) -> (Built, Built) {
        let (bk, kiln) = self.both(args);
        assert_same_tree(&tree(&bk.image), &tree(&kiln.image));
        assert_eq!(
            config(&kiln.image),
            config(&bk.image),
            "config (kiln, BuildKit)"
        );
        assert_eq!(
            history(&kiln.image),
            history(&bk.image),
            "history (kiln, BuildKit)"
        );
        (bk, kiln)
    }
}

/// A busybox rootfs with every applet linked (the steps use touch, stat,
/// grep…) and an `app` user, as a tarball.
fn full_busybox_tar(work: &Path) -> std::path::PathBuf {
    let dir = work.join("parity-base-rootfs");
    super::busybox_rootfs(
        &dir,
        &[
            (
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            ),
            ("etc/group", b"root:x:0:\napp:x:1000:\n"),
        ],
    );
    let list = tool(super::busybox_binary().to_str().unwrap(), &["--list"]);
    for applet in list.lines().filter(|a| *a != "busybox") {
        let link = dir.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    let out = work.join("parity-base.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-cf"])
        .arg(&out)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn run_build(mut cmd: Command, stdin: Option<&Path>, image: String) -> Built {
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
        None => Stdio::null(),
    });
    let out = cmd.output().unwrap();
    Built {
        code: out.status.code().unwrap_or(-1),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        image,
    }
}

/// Fails with a clear message when BuildKit cannot run here.
pub(crate) fn require_buildkit() {
    let out = run_tool(DOCKER, &["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        out.status.success(),
        "dockerd is not running or {DOCKER} is missing (install docker.io, start dockerd; .ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image's file tree as `docker export` flattens it.
pub(crate) fn tree(image: &str) -> Tree {
    let id = tool(DOCKER, &["create", image, "/bin/true"])
        .trim()
        .to_string();
    let out: Output = Command::new(DOCKER).args(["export", &id]).output().unwrap();
    let _ = run_tool(DOCKER, &["rm", "-f", &id]);
    assert!(out.status.success(), "docker export {image}");
    let mut tree = Tree::new();
    let mut archive = tar::Archive::new(&out.stdout[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let h = entry.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Regular => 'f',
            _ => 'o',
        };
        let content = match kind {
            'l' | 'h' => entry
                .link_name()
                .unwrap()
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default(),
            'f' => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                use sha2::Digest;
                hex_of(&sha2::Sha256::digest(&data))
            }
            _ => String::new(),
        };
        tree.insert(
            path,
            Node {
                kind,
                mode: h.mode().unwrap() & 0o7777,
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                content,
            },
        );
    }
    tree
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every path that differs, with both sides, or nothing.
pub(crate) fn assert_same_tree(buildkit: &Tree, kiln: &Tree) {
    let mut diffs = Vec::new();
    for (path, node) in buildkit {
        match kiln.get(path) {
            Some(k) if k == node => {}
            Some(k) => diffs.push(format!("{path}: BuildKit {node:?}, kiln {k:?}")),
            None => diffs.push(format!("{path}: BuildKit {node:?}, missing in kiln")),
        }
    }
    for (path, node) in kiln {
        if !buildkit.contains_key(path) {
            diffs.push(format!("{path}: only in kiln {node:?}"));
        }
    }
    assert!(diffs.is_empty(), "file trees differ:\n{}", diffs.join("\n"));
}

/// `docker inspect`'s Config of an image, with the top-level Comment.
pub(crate) fn config(image: &str) -> serde_json::Value {
    let out = tool(
        DOCKER,
        &["inspect", "-f", "{{json .Config}}|{{json .Comment}}", image],
    );
    let (cfg, comment) = out.trim().split_once('|').unwrap();
    let mut v: serde_json::Value = serde_json::from_str(cfg).unwrap();
    // Fields docker adds when it loads an image, the same for both, but
    // Hostname/Image are per daemon state: leave them out.
    if let Some(m) = v.as_object_mut() {
        m.remove("Hostname");
        m.remove("Image");
    }
    v["__Comment"] = serde_json::from_str(comment).unwrap();
    v
}

/// The image's history: `created_by` of each entry, newest first.
pub(crate) fn history(image: &str) -> Vec<String> {
    tool(
        DOCKER,
        &["history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
    )
    .lines()
    .map(str::to_string)
    .collect()
}
