//! `docker run`'s settings on a busybox root filesystem, through both
//! backends: terminals, stdin, limits in the container's cgroup, docker's
//! capabilities and seccomp profile, a read-only root.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use common::{runtimes, setup};
use kiln_exec::{Executor, ProcessIo, ProcessSpec, Resources, SeccompProfile};

fn sh(script: &str) -> ProcessSpec {
    ProcessSpec {
        args: vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
        ],
        env: vec!["PATH=/bin".into()],
        hostname: "box".into(),
        ..ProcessSpec::default()
    }
}

/// Runs `spec` to its end: exit code and output lines.
fn run(exec: &Executor, rootfs: &Path, spec: &ProcessSpec) -> (i32, Vec<String>) {
    let mut lines = Vec::new();
    let out = exec
        .run(spec, rootfs, &mut |l| lines.push(l.to_string()))
        .unwrap();
    (out.code, lines)
}

/// Everything a terminal's master holds once its process has ended.
fn drain(master: OwnedFd) -> String {
    rustix::fs::fcntl_setfl(&master, rustix::fs::OFlags::NONBLOCK).unwrap();
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // EAGAIN (drained) or EIO (the slave is gone) ends it.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

fn set_size(master: &OwnedFd) {
    let size = rustix::termios::Winsize {
        ws_row: 24,
        ws_col: 81,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master, size).unwrap();
}

#[test]
fn a_terminal_container_and_a_terminal_exec() {
    for runtime in runtimes() {
        let (_dir, rootfs, exec) = setup(&runtime);
        let (c, master) = exec
            .create_with_terminal("tty", &sh("tty; stty size; exec sleep 60"), &rootfs)
            .unwrap();
        set_size(&master);
        c.start().unwrap();
        assert!(c.pid().unwrap().is_some(), "{runtime:?}");

        // It waits for a line, so that its size is set before it asks.
        let (exec_master, p) = c
            .exec_with_terminal(&sh(
                "read go; tty; stty size; grep -c Seccomp:.2 /proc/self/status; exit 3",
            ))
            .unwrap();
        set_size(&exec_master);
        let mut w = std::fs::File::from(exec_master.try_clone().unwrap());
        w.write_all(b"go\n").unwrap();
        assert_eq!(p.wait().unwrap(), Some(3), "{runtime:?}");
        let text = drain(exec_master);
        let lines: Vec<&str> = text.lines().collect();
        // The echoed input, then what it printed.
        assert_eq!(lines[0], "go", "{runtime:?}: {text:?}");
        assert!(lines[1].starts_with("/dev/pts/"), "{runtime:?}: {text:?}");
        assert_eq!(lines[2], "24 81", "{runtime:?}: {text:?}");
        // The container's filter applies to exec'd processes too (runc's
        // behaviour; the builtin runtime installs it itself, libcontainer
        // 0.7's tenant builder dropping `linux.seccomp`).
        assert_eq!(lines[3], "1", "{runtime:?}: {text:?}");

        c.kill(9).unwrap();
        assert_eq!(c.wait().unwrap(), Some(137), "{runtime:?}");
        assert_eq!(drain(master), "/dev/pts/0\n24 81\n", "{runtime:?}");
        c.delete(false).unwrap();
    }
}

#[test]
fn stdin_reaches_the_container_and_an_exec() {
    for runtime in runtimes() {
        let (_dir, rootfs, exec) = setup(&runtime);
        let (input, writer) = std::io::pipe().unwrap();
        let (mut out, mut io) = ProcessIo::pipe().unwrap();
        io.stdin = Some(input.into());
        let c = exec
            .create("cat", &sh("cat; echo end"), &rootfs, io)
            .unwrap();
        c.start().unwrap();
        let mut writer = writer;
        writer.write_all(b"hello\nworld\n").unwrap();
        drop(writer);
        let mut text = String::new();
        out.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello\nworld\nend\n", "{runtime:?}");
        assert_eq!(c.wait().unwrap(), Some(0), "{runtime:?}");
        c.delete(false).unwrap();

        let (_out, io) = ProcessIo::pipe().unwrap();
        let c = exec
            .create("srv", &sh("exec sleep 60"), &rootfs, io)
            .unwrap();
        c.start().unwrap();
        let (input, mut writer) = std::io::pipe().unwrap();
        let (mut out, mut io) = ProcessIo::pipe().unwrap();
        io.stdin = Some(input.into());
        let p = c.exec_detached(&sh("tr a-z A-Z"), io).unwrap();
        writer.write_all(b"shout\n").unwrap();
        drop(writer);
        let mut text = String::new();
        out.read_to_string(&mut text).unwrap();
        assert_eq!(text, "SHOUT\n", "{runtime:?}");
        assert_eq!(p.wait().unwrap(), Some(0), "{runtime:?}");
        c.delete(true).unwrap();
    }
}

/// `--memory`, `--pids-limit` and `--cpus` land in the container's cgroup,
/// where the container sees them and `cgroup::stats` reads them; a
/// process over the memory limit is OOM-killed and `oom_killed` says so.
#[test]
fn limits_apply_in_the_containers_cgroup() {
    for (n, runtime) in runtimes().into_iter().enumerate() {
        let (_dir, rootfs, exec) = setup(&runtime);
        let cgroup = format!("/kiln-test/{}-{n}", std::process::id());
        let mut spec = sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
             cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
             cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max");
        spec.resources = Resources {
            memory: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(50),
            ..Resources::default()
        };
        spec.cgroups_path = Some(cgroup.clone());
        let (code, lines) = run(&exec, &rootfs, &spec);
        assert_eq!(code, 0, "{runtime:?}: {lines:?}");
        assert_eq!(lines, ["67108864", "50", "50000"], "{runtime:?}");

        spec.args[3] = "exec sleep 60".into();
        let (_out, io) = ProcessIo::pipe().unwrap();
        let c = exec.create("limited", &spec, &rootfs, io).unwrap();
        c.start().unwrap();
        let stats = kiln_exec::cgroup::stats(&cgroup);
        assert_eq!(stats.memory_limit, Some(64 << 20), "{runtime:?}");
        // Right after start, runc's own init may not have left yet.
        assert!(stats.pids >= 1, "{runtime:?}: {stats:?}");
        assert!(stats.memory_usage > 0, "{runtime:?}: {stats:?}");
        assert!(!kiln_exec::cgroup::oom_killed(&cgroup), "{runtime:?}");
        c.delete(true).unwrap();

        // tail keeps a line without end in memory: 64 MiB of zeros.
        spec.resources.memory = Some(16 << 20);
        spec.args[3] = "head -c 67108864 /dev/zero | tail > /dev/null".into();
        let (_out, io) = ProcessIo::pipe().unwrap();
        let c = exec.create("oom", &spec, &rootfs, io).unwrap();
        c.start().unwrap();
        let code = c.wait().unwrap();
        assert!(
            kiln_exec::cgroup::oom_killed(&cgroup),
            "{runtime:?}: {code:?}"
        );
        assert_ne!(code, Some(0), "{runtime:?}");
        c.delete(false).unwrap();
        assert!(!kiln_exec::cgroup::oom_killed(&cgroup), "removed with it");
    }
    // The runtimes remove a container's cgroup, not its parents; another
    // run's children keep theirs (rmdir refuses).
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(hierarchy.path().join("kiln-test"));
    }
    let _ = std::fs::remove_dir("/sys/fs/cgroup/kiln-test");
}

/// docker's defaults refuse mounts and namespaces (no CAP_SYS_ADMIN, and
/// the seccomp profile allows those calls only with it); `--cap-add
/// SYS_ADMIN` opens both; `/proc/sys` is read-only; `--read-only` makes
/// the root read-only; a custom profile's rule applies.
#[test]
fn dockers_capabilities_and_seccomp_profile() {
    for runtime in runtimes() {
        let (_dir, rootfs, exec) = setup(&runtime);
        let script = "mount -t tmpfs x /mnt && echo mounted; \
                      unshare -m true && echo unshared; \
                      echo x > /proc/sys/kernel/domainname || echo procsys-ro; \
                      grep NoNewPrivs /proc/self/status";
        let (code, lines) = run(&exec, &rootfs, &sh(script));
        assert_eq!(code, 0, "{runtime:?}");
        assert_eq!(
            lines
                .iter()
                .filter(|l| !l.contains(": "))
                .collect::<Vec<_>>(),
            ["procsys-ro", "NoNewPrivs:\t0"],
            "{runtime:?}: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("Operation not permitted")),
            "{runtime:?}: {lines:?}"
        );

        let mut admin = sh(script);
        admin.cap_add = vec!["sys_admin".into()];
        let (_, lines) = run(&exec, &rootfs, &admin);
        assert!(
            lines.contains(&"mounted".to_string()),
            "{runtime:?}: {lines:?}"
        );
        assert!(
            lines.contains(&"unshared".to_string()),
            "{runtime:?}: {lines:?}"
        );

        // The capability alone is not enough: docker's filter is what
        // allows mount with it; a profile that refuses it wins.
        admin.seccomp = SeccompProfile::Custom(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        }));
        admin.args[3] =
            "mount -t tmpfs x /mnt && echo mounted; mkdir /tmp/d || echo no-mkdir".into();
        let (_, lines) = run(&exec, &rootfs, &admin);
        assert!(
            !lines.contains(&"mounted".to_string()),
            "{runtime:?}: {lines:?}"
        );
        assert!(
            lines.contains(&"no-mkdir".to_string()),
            "{runtime:?}: {lines:?}"
        );

        let mut none = sh("grep CapEff /proc/self/status");
        none.cap_drop = vec!["ALL".into()];
        let (_, lines) = run(&exec, &rootfs, &none);
        assert_eq!(lines, ["CapEff:\t0000000000000000"], "{runtime:?}");

        let mut ro = sh("touch /x || echo ro; touch /tmp/x || echo tmp-ro");
        ro.readonly_rootfs = true;
        let (_, lines) = run(&exec, &rootfs, &ro);
        assert!(
            lines.iter().any(|l| l.contains("Read-only file system")),
            "{runtime:?}: {lines:?}"
        );
        assert!(lines.contains(&"ro".to_string()), "{runtime:?}: {lines:?}");
        assert!(!rootfs.join("x").exists());

        let mut bad = sh("true");
        bad.cap_add = vec!["CAP_NOPE".into()];
        let e = exec.run(&bad, &rootfs, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("CAP_NOPE"), "{e}");
    }
}

/// An exec'd process gets the container's seccomp filter and docker's
/// capabilities, as the container's own process does (runc's behaviour):
/// a syscall the profile refuses fails in both, and the capabilities the
/// builtin runtime keeps to install the filter are gone.
#[test]
fn exec_gets_the_containers_seccomp_filter_and_capabilities() {
    let probe = "mkdir /tmp/d$$ && echo made || echo no-mkdir; \
                 unshare -m true && echo unshared; \
                 grep -E '^(CapEff|CapPrm|CapBnd|Seccomp):' /proc/self/status";
    let mut per_runtime = Vec::new();
    for runtime in runtimes() {
        let (_dir, rootfs, exec) = setup(&runtime);
        let mut seen = Vec::new();
        for (name, profile) in [
            ("default", SeccompProfile::Default),
            (
                "custom",
                SeccompProfile::Custom(serde_json::json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
                })),
            ),
        ] {
            let mut spec = sh(&format!("{probe}; exec sleep 60"));
            spec.seccomp = profile.clone();
            let (mut out, io) = ProcessIo::pipe().unwrap();
            let c = exec.create(name, &spec, &rootfs, io).unwrap();
            c.start().unwrap();
            let (mut exec_out, io) = ProcessIo::pipe().unwrap();
            let mut probe_spec = sh(probe);
            probe_spec.seccomp = profile;
            let code = c.exec(&probe_spec, io).unwrap();
            assert_eq!(code, 0, "{runtime:?}");
            let mut in_exec = String::new();
            exec_out.read_to_string(&mut in_exec).unwrap();
            c.kill(9).unwrap();
            c.wait().unwrap();
            let mut in_init = String::new();
            out.read_to_string(&mut in_init).unwrap();
            c.delete(true).unwrap();
            let lines = |t: &str| {
                t.lines()
                    .filter(|l| !l.contains("unshare:") && !l.contains("mkdir:"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            assert_eq!(lines(&in_exec), lines(&in_init), "{runtime:?} {name}");
            seen.push(lines(&in_exec));
        }
        // docker's default: mkdir allowed, unshare refused, the 14
        // capabilities; the custom profile refuses mkdir.
        assert_eq!(seen[0][0], "made", "{runtime:?}");
        assert!(
            seen[0].contains(&"CapEff:\t00000000a80425fb".to_string()),
            "{runtime:?} {seen:?}"
        );
        assert!(
            seen[0].contains(&"Seccomp:\t2".to_string()),
            "{runtime:?} {seen:?}"
        );
        assert_eq!(seen[1][0], "no-mkdir", "{runtime:?}");
        assert!(
            !seen.concat().contains(&"unshared".to_string()),
            "{runtime:?} {seen:?}"
        );
        per_runtime.push(seen);
    }
    // The builtin runtime and runc agree.
    assert_eq!(per_runtime[0], per_runtime[1]);
}
