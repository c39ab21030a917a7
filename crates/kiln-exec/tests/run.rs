//! RUN-style processes on a busybox root filesystem, through both
//! backends: the builtin libcontainer (re-exec'd helper) and runc.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kiln_exec::{resolve_user, Executor, ExtraMount, Network, Output, ProcessSpec, Runtime};

fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "tmp", "data"] {
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

fn runtimes() -> Vec<Runtime> {
    vec![
        Runtime::Builtin {
            helper: PathBuf::from(env!("CARGO_BIN_EXE_kiln-container-child")),
        },
        Runtime::Binary(PathBuf::from("runc")),
    ]
}

fn sh(exec: &Executor, rootfs: &Path, script: &str, f: impl FnOnce(&mut ProcessSpec)) -> Output {
    let mut spec = ProcessSpec {
        args: vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
        ],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: resolve_user("", rootfs).unwrap(),
        network: Network::Host,
        hostname: "buildhost".into(),
        mounts: Vec::new(),
        extra_hosts: Vec::new(),
        privileged: false,
    };
    f(&mut spec);
    let mut lines = Vec::new();
    let out = exec
        .run(&spec, rootfs, &mut |l| lines.push(l.to_string()))
        .unwrap();
    assert_eq!(
        lines.iter().rev().take(out.tail.len()).count(),
        out.tail.len()
    );
    out
}

#[test]
fn isolation_and_process_settings() {
    for runtime in runtimes() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = busybox_rootfs(dir.path());
        let exec = Executor::new(runtime.clone(), &dir.path().join("state")).unwrap();
        let out = sh(&exec, &rootfs, "echo pid=$$; hostname; id -u; id -G; cat /etc/hosts | grep -c buildhost; grep NoNewPrivs /proc/self/status; echo done >&2", |_| {});
        assert_eq!(out.code, 0, "{runtime:?}: {:?}", out.tail);
        assert_eq!(
            out.tail,
            [
                "pid=1",
                "buildhost",
                "0",
                "0",
                "1",
                "NoNewPrivs:\t1",
                "done"
            ],
            "{runtime:?}"
        );

        let out = sh(&exec, &rootfs, "id -u; id -g; echo $HOME; pwd", |s| {
            s.user = resolve_user("app", &rootfs).unwrap();
            s.cwd = "/tmp".into();
        });
        assert_eq!(
            out.tail,
            ["1000", "1000", "/home/app", "/tmp"],
            "{runtime:?}"
        );

        let out = sh(&exec, &rootfs, "exit 7", |_| {});
        assert_eq!(out.code, 7, "{runtime:?}");

        // No network namespace by default; only loopback with none.
        let out = sh(&exec, &rootfs, "grep -c : /proc/net/dev", |s| {
            s.network = Network::None
        });
        assert_eq!(out.tail, ["1"], "{runtime:?}: only lo");

        // Denied by the seccomp profile / missing capabilities.
        let out = sh(
            &exec,
            &rootfs,
            "busybox unshare -m true; echo rc=$?",
            |_| {},
        );
        assert_ne!(
            out.tail.last().unwrap(),
            "rc=0",
            "{runtime:?}: {:?}",
            out.tail
        );

        // Extra mounts: a bind (read-only) and a tmpfs.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::write(shared.join("f"), "from host\n").unwrap();
        let out = sh(
            &exec,
            &rootfs,
            "cat /data/f; touch /data/g 2>/dev/null || echo ro; touch /scratch/x && echo tmpfs-ok",
            |s| {
                s.mounts = vec![
                    ExtraMount::Bind {
                        source: shared.clone(),
                        target: "/data".into(),
                        readonly: true,
                    },
                    ExtraMount::Tmpfs {
                        target: "/scratch".into(),
                        size: Some(1 << 20),
                    },
                ];
            },
        );
        assert_eq!(out.tail, ["from host", "ro", "tmpfs-ok"], "{runtime:?}");
        assert!(!shared.join("g").exists());
    }
}
