//! The root filesystem and runtimes the real-container tests share.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};

use kiln_exec::{Executor, Runtime};

pub(crate) fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "tmp", "data", "mnt"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static must be installed (scripts/setup.sh)");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    root
}

pub(crate) fn runtimes() -> Vec<Runtime> {
    vec![
        Runtime::Builtin {
            helper: PathBuf::from(env!("CARGO_BIN_EXE_kiln-container-child")),
        },
        Runtime::Binary(PathBuf::from("runc")),
    ]
}

/// A temporary directory with a busybox root and an executor whose state
/// is in `state/`.
pub(crate) fn setup(runtime: &Runtime) -> (tempfile::TempDir, PathBuf, Executor) {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let exec = Executor::new(runtime.clone(), &dir.path().join("state")).unwrap();
    (dir, rootfs, exec)
}
