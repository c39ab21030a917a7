//! RUN-style processes on a busybox root filesystem, through both
//! backends: the builtin libcontainer (re-exec'd helper) and runc.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use std::io::Read;

mod common;

use common::{runtimes, setup};
use kiln_exec::{
    resolve_user, ExecError, Executor, ExtraMount, Network, Output, ProcessIo, ProcessSpec, Status,
};

fn sh_spec(rootfs: &Path, script: &str) -> ProcessSpec {
    ProcessSpec {
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
        // As a RUN step has it.
        no_new_privileges: true,
        ..ProcessSpec::default()
    }
}

fn sh(exec: &Executor, rootfs: &Path, script: &str, f: impl FnOnce(&mut ProcessSpec)) -> Output {
    let mut spec = sh_spec(rootfs, script);
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
        let (dir, rootfs, exec) = setup(&runtime);
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
                        noexec: false,
                    },
                ];
            },
        );
        assert_eq!(out.tail, ["from host", "ro", "tmpfs-ok"], "{runtime:?}");
        assert!(!shared.join("g").exists());
    }
}

/// The lifecycle `kiln run` builds on: a container that runs until told,
/// a second process in it, a signal, its exit code, its removal.
#[test]
fn lifecycle_create_start_exec_kill_wait_delete() {
    for runtime in runtimes() {
        let (_dir, rootfs, exec) = setup(&runtime);
        let (mut out, io) = ProcessIo::pipe().unwrap();
        let c = exec
            .create(
                "life",
                &sh_spec(&rootfs, "echo up; exec sleep 60"),
                &rootfs,
                io,
            )
            .unwrap();
        let st = c.state().unwrap();
        assert_eq!(
            (st.status, st.id.as_str()),
            (Status::Created, "life"),
            "{runtime:?}"
        );
        assert!(st.pid.is_some(), "{runtime:?}");
        let create = |id: &str| {
            let io = ProcessIo::pipe().unwrap().1;
            exec.create(id, &sh_spec(&rootfs, "true"), &rootfs, io)
        };
        assert!(matches!(create("life"), Err(ExecError::AlreadyExists(_))));
        assert!(matches!(create("../x"), Err(ExecError::InvalidId(_))));
        c.start().unwrap();
        assert_eq!(c.state().unwrap().status, Status::Running, "{runtime:?}");

        // Another invocation finds it by id.
        let again = exec.container("life").unwrap();
        let (mut exec_out, io) = ProcessIo::pipe().unwrap();
        let code = again
            .exec(&sh_spec(&rootfs, "echo in-$(hostname); exit 3"), io)
            .unwrap();
        assert_eq!(code, 3, "{runtime:?}");
        let mut text = String::new();
        exec_out.read_to_string(&mut text).unwrap();
        assert_eq!(text, "in-buildhost\n", "{runtime:?}");

        c.kill(9).unwrap();
        assert_eq!(c.wait().unwrap(), Some(128 + 9), "{runtime:?}");
        assert_eq!(c.state().unwrap().status, Status::Stopped, "{runtime:?}");
        let mut text = String::new();
        out.read_to_string(&mut text).unwrap();
        assert_eq!(text, "up\n", "{runtime:?}");
        let bundle = c.bundle().to_path_buf();
        c.delete(false).unwrap();
        assert!(!bundle.exists());
        assert!(matches!(
            exec.container("life"),
            Err(ExecError::NotFound(_))
        ));
    }
}

/// A process that cannot start fails the run with the runtime's reason,
/// and leaves no bundle behind.
#[test]
fn a_missing_program_is_reported_with_the_runtimes_reason() {
    for runtime in runtimes() {
        let (dir, rootfs, exec) = setup(&runtime);
        let state = dir.path().join("state");
        let mut spec = sh_spec(&rootfs, "");
        spec.args = vec!["/no/such/program".into()];
        let result = exec.run(&spec, &rootfs, &mut |_| {});
        match result {
            Err(e @ ExecError::Runtime { .. }) => {
                let text = e.to_string();
                assert!(text.contains("/no/such/program"), "{runtime:?}: {text}");
                assert!(!text.contains("level=error"), "{runtime:?}: {text}");
            }
            // A runtime may exec late and report like a shell does.
            Ok(out) => assert_ne!(out.code, 0, "{runtime:?}"),
            Err(e) => panic!("{runtime:?}: {e:?}"),
        }
        assert_eq!(
            std::fs::read_dir(state.join("bundles")).unwrap().count(),
            0,
            "{runtime:?}"
        );
    }
}
