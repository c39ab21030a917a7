//! Shared support for kiln's end-to-end tests: a temporary store root, a
//! runner for the kiln binary, and base images made on the spot from the
//! busybox-static binary (no registry is needed or reachable).
#![allow(dead_code)]

pub(crate) mod buildkit;
pub(crate) mod http;
pub(crate) mod pty;
pub(crate) mod registry;
pub(crate) mod serve;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) struct Kiln {
    pub root: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Kiln {
    pub(crate) fn new() -> Kiln {
        let dir = tempfile::tempdir().unwrap();
        Kiln {
            root: dir.path().join("root"),
            dir,
        }
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.arg("--root").arg(&self.root);
        c.env_remove("KILN_ROOT");
        c.stdin(Stdio::null());
        c
    }

    /// Runs kiln; returns the output whatever the exit status.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs kiln and requires success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kiln {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kiln with extra environment variables and requires success;
    /// returns stdout.
    pub(crate) fn ok_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self
            .cmd()
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kiln {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kiln with `input` as standard input and requires success.
    pub(crate) fn ok_with_stdin(&self, args: &[&str], input: &Path) -> String {
        let out = self
            .cmd()
            .args(args)
            .stdin(fs::File::open(input).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kiln {args:?} < {} failed: {}",
            input.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kiln and requires failure; returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kiln {args:?} should fail but printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(out.status.code(), Some(1), "exit code of kiln {args:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    /// Runs kiln and requires a usage error (docker's exit 125: the
    /// command line was wrong, nothing ran); returns stderr.
    pub(crate) fn usage_fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(125),
            "exit code of kiln {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Everything observable about the store's content: index.json bytes
    /// and the sorted list of blob files.
    pub(crate) fn snapshot(&self) -> (Vec<u8>, Vec<String>) {
        let index = fs::read(self.root.join("index.json")).unwrap_or_default();
        let mut blobs: Vec<String> = fs::read_dir(self.root.join("blobs/sha256"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        blobs.sort();
        (index, blobs)
    }

    /// Imports a fresh busybox rootfs (plus `files`) as `name` with extra
    /// `kiln import` arguments; returns the tarball it imported.
    pub(crate) fn import_busybox(
        &self,
        name: &str,
        files: &[(&str, &[u8])],
        args: &[&str],
    ) -> PathBuf {
        let label = name.replace([':', '/'], "_");
        let tar = busybox_tar(self.dir.path(), &label, files);
        let mut all = vec!["import", tar.to_str().unwrap(), name];
        all.extend_from_slice(args);
        self.ok(&all);
        tar
    }

    /// Debian's arm64 busybox-static (unpacked by scripts/setup.sh: the
    /// issue's recipe, `apt-get download busybox-static:arm64`, `dpkg-deb
    /// -x`) imported as `name`, a linux/arm64 image.
    pub(crate) fn import_arm64_busybox(&self, name: &str) {
        self.import_arm64_busybox_with(name, &[]);
    }

    /// [`Kiln::import_arm64_busybox`] with `env` set for the import (e.g.
    /// `SOURCE_DATE_EPOCH`, for the same image in every root).
    pub(crate) fn import_arm64_busybox_with(&self, name: &str, env: &[(&str, &str)]) {
        assert!(
            Path::new(ARM64_BUSYBOX).exists(),
            "{ARM64_BUSYBOX} is missing: run scripts/setup.sh (it downloads busybox-static:arm64)"
        );
        let label = name.replace([':', '/'], "_");
        let root = self.dir.path().join(format!("{label}-arm64-rootfs"));
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::copy(ARM64_BUSYBOX, root.join("bin/busybox")).unwrap();
        for applet in ["sh", "uname", "cat"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let tar = self.dir.path().join(format!("{label}-arm64.tar"));
        tar_dir(&root, &tar);
        self.ok_with_env(
            &[
                "import",
                "--platform",
                "linux/arm64",
                tar.to_str().unwrap(),
                name,
            ],
            env,
        );
    }

    pub(crate) fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", image]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }
}

/// Debian's arm64 busybox-static binary, unpacked by scripts/setup.sh.
pub(crate) const ARM64_BUSYBOX: &str = "/var/cache/kiln-ci/arm64-busybox/bin/busybox";

/// The busybox-static binary (Debian package busybox-static).
pub(crate) fn busybox_binary() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("busybox not found: install the Debian package busybox-static (.ci/run does)");
}

/// A minimal busybox root filesystem in `dir`, plus `extra` files.
pub(crate) fn busybox_rootfs(dir: &Path, extra: &[(&str, &[u8])]) {
    for d in ["bin", "etc", "tmp", "root"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::copy(busybox_binary(), dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "echo", "true", "env", "id", "wc"] {
        let link = dir.join("bin").join(applet);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("busybox", link).unwrap();
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
    for (path, content) in extra {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
}

/// A busybox rootfs as a plain tarball at `out` (made with tar(1), as a user
/// would); returns its path.
pub(crate) fn busybox_tar(work: &Path, name: &str, extra: &[(&str, &[u8])]) -> PathBuf {
    let dir = work.join(format!("{name}-rootfs"));
    busybox_rootfs(&dir, extra);
    let out = work.join(format!("{name}.tar"));
    tar_dir(&dir, &out);
    out
}

/// `dir`'s content as a reproducible tarball (tar(1), as a user would
/// make it: sorted, mtime 0, owned by root).
pub(crate) fn tar_dir(dir: &Path, out: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-cf"])
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
}

/// Runs an external tool and requires success; returns stdout.
pub(crate) fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required for this test and could not run: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The manifest or index a registry on loopback serves for `reference`,
/// byte for byte, as skopeo reads it (`inspect --raw`).
pub(crate) fn skopeo_raw(reference: &str) -> String {
    tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    )
}

/// `skopeo copy SOURCE docker://NAME` to a plain-HTTP registry on loopback
/// (SOURCE in skopeo's transport syntax, e.g. `docker-archive:PATH`).
pub(crate) fn skopeo_copy_to_registry(source: &str, name: &str) {
    tool(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            source,
            &format!("docker://{name}"),
        ],
    );
}

/// `base:1` from busybox with a fixed timestamp and message, so two stores
/// hold byte-identical base images (as two machines pulling one base).
pub(crate) fn import_pinned_base(k: &Kiln) {
    let tar = busybox_tar(k.dir.path(), "base", &[]);
    k.ok_with_env(
        &["import", tar.to_str().unwrap(), "base:1", "-m", "base"],
        &[("SOURCE_DATE_EPOCH", "1600000000")],
    );
}

pub(crate) fn run_tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required for this test and could not run: {e}"))
}

/// `sha256:<hex>` of `bytes`, as registries name content.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}
