//! The builtin runtime: kiln re-executed as `kiln __kiln-run-container
//! --root STATE [--log FILE] VERB …`, speaking the subset of runc's command
//! line that [`OciCli`](crate::OciCli) uses, with youki's libcontainer.
//!
//! libcontainer forks and clones; doing that from a multi-threaded process
//! (kiln's async runtime, parallel build stages) can deadlock the child on
//! a lock another thread held at fork time. This process is fresh and
//! single-threaded, and each verb is one short invocation, as with runc.

use std::io::Write;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;

use crate::runtime::wait_child;

mod filter;

/// Runs one verb of the builtin runtime (the arguments after
/// [`BUILTIN_CHILD_ARG`](crate::BUILTIN_CHILD_ARG)) and returns the code to
/// exit with: 0, the exec'd process's code for `exec`, or 1 with the
/// reason on stderr (and in `--log`).
pub fn run_builtin_child(args: &[String]) -> i32 {
    let mut log = None;
    let result = parse(args).and_then(|(root, log_path, verb, rest)| {
        log = log_path;
        run(&root, &verb, &rest)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // The log is read back into an error that already says which
            // runtime and verb failed.
            if let Some(path) = log {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                {
                    let _ = writeln!(f, "{e}");
                }
            }
            eprintln!("kiln: container runtime: {e}");
            1
        }
    }
}

type Parsed = (PathBuf, Option<PathBuf>, String, Vec<String>);

fn parse(args: &[String]) -> Result<Parsed, String> {
    let usage = || {
        "usage: kiln __kiln-run-container --root DIR [--log FILE] create|start|kill|state|delete|exec …"
            .to_string()
    };
    let mut it = args.iter();
    let mut root = None;
    let mut log = None;
    let verb = loop {
        match it.next().map(String::as_str) {
            Some("--root") => root = it.next().map(PathBuf::from),
            Some("--log") => log = it.next().map(PathBuf::from),
            Some(v) => break v.to_string(),
            None => return Err(usage()),
        }
    };
    let root = root.ok_or_else(usage)?;
    Ok((root, log, verb, it.cloned().collect()))
}

/// `--flag VALUE` pairs and `--switch`es before the container id (last).
struct Args {
    flags: Vec<(String, Option<String>)>,
    id: String,
    extra: Option<String>,
}

fn args(rest: &[String], with_value: &[&str]) -> Result<Args, String> {
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        if a.starts_with("--") {
            let value = if with_value.contains(&a.as_str()) {
                Some(
                    it.next()
                        .ok_or_else(|| format!("{a} needs a value"))?
                        .clone(),
                )
            } else {
                None
            };
            flags.push((a.clone(), value));
        } else {
            positional.push(a.clone());
        }
    }
    let mut p = positional.into_iter();
    let id = p.next().ok_or("no container id given")?;
    Ok(Args {
        flags,
        id,
        extra: p.next(),
    })
}

impl Args {
    fn value(&self, flag: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(f, _)| f == flag)
            .and_then(|(_, v)| v.as_deref())
    }
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| f == flag)
    }
}

fn load(root: &Path, id: &str) -> Result<Container, String> {
    let dir = root.join(id);
    if !dir.is_dir() {
        return Err(format!("container {id} does not exist"));
    }
    Container::load(dir).map_err(|e| format!("load container {id}: {e}"))
}

fn run(root: &Path, verb: &str, rest: &[String]) -> Result<i32, String> {
    match verb {
        "create" => {
            let a = args(rest, &["--bundle", "--pid-file", "--console-socket"])?;
            let bundle = a.value("--bundle").ok_or("create needs --bundle")?;
            let (spec_bundle, executor) = filter::init(root, Path::new(bundle))?;
            // The init inherits this process's stdio (the caller's pipes
            // or log files), or gets a pty whose master goes to the
            // console socket. It outlives this process.
            let mut builder = ContainerBuilder::new(a.id.clone(), SyscallType::Linux)
                .with_root_path(root.to_path_buf())
                .map_err(|e| e.to_string())?
                .with_console_socket(a.value("--console-socket"));
            if let Some(p) = a.value("--pid-file") {
                builder = builder
                    .with_pid_file(Some(PathBuf::from(p)))
                    .map_err(|e| e.to_string())?;
            }
            if let Some(e) = executor {
                builder = builder.with_executor(e);
            }
            let container = builder
                .as_init(spec_bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
                .map_err(|e| e.to_string())?;
            if let Some(pid) = container.pid() {
                cgroups_read_only(Path::new(bundle), pid.as_raw())?;
            }
            Ok(0)
        }
        "start" => {
            let a = args(rest, &[])?;
            load(root, &a.id)?
                .start()
                .map_err(|e| format!("start: {e}"))?;
            Ok(0)
        }
        "kill" => {
            let a = args(rest, &[])?;
            let signal: i32 = a
                .extra
                .as_deref()
                .unwrap_or("15")
                .parse()
                .map_err(|_| "kill takes a signal number".to_string())?;
            let signal = libcontainer::signal::Signal::try_from(signal)
                .map_err(|e| format!("signal {signal}: {e}"))?;
            load(root, &a.id)?
                .kill(signal, false)
                .map_err(|e| format!("kill: {e}"))?;
            Ok(0)
        }
        "state" => {
            let a = args(rest, &[])?;
            let c = load(root, &a.id)?;
            let status = match c.status() {
                ContainerStatus::Creating => "creating",
                ContainerStatus::Created => "created",
                ContainerStatus::Running => "running",
                ContainerStatus::Stopped => "stopped",
                ContainerStatus::Paused => "paused",
            };
            let state = serde_json::json!({
                "ociVersion": "1.0.2",
                "id": c.id(),
                "status": status,
                "pid": c.pid().map(|p| p.as_raw()).unwrap_or(0),
                "bundle": c.bundle(),
            });
            println!("{state}");
            Ok(0)
        }
        "delete" => {
            let a = args(rest, &[])?;
            let force = a.has("--force");
            match load(root, &a.id) {
                Ok(mut c) => c.delete(force).map_err(|e| format!("delete: {e}"))?,
                Err(_) if force => {}
                Err(e) => return Err(e),
            }
            Ok(0)
        }
        "exec" => {
            let a = args(rest, &["--process", "--pid-file", "--console-socket"])?;
            let process = a.value("--process").ok_or("exec needs --process")?;
            let detach = a.has("--detach");
            let container = load(root, &a.id)?;
            let (copy, executor) = filter::exec(root, container.bundle(), Path::new(process))?;
            let process = copy.as_ref().map_or(Path::new(process), |c| c.path());
            let mut builder = ContainerBuilder::new(a.id.clone(), SyscallType::Linux)
                .with_root_path(root.to_path_buf())
                .map_err(|e| e.to_string())?
                .with_console_socket(a.value("--console-socket"));
            if let Some(e) = executor {
                builder = builder.with_executor(e);
            }
            let pid = builder
                .as_tenant()
                .with_process(Some(process.to_path_buf()))
                .with_detach(detach)
                .build()
                .map_err(|e| format!("exec: {e}"))?;
            if detach {
                // The caller collects it: it is re-parented to the caller
                // (a subreaper) when this process exits.
                if let Some(p) = a.value("--pid-file") {
                    std::fs::write(p, pid.as_raw().to_string())
                        .map_err(|e| format!("exec: write {p}: {e}"))?;
                }
                return Ok(0);
            }
            // The process is this one's child (libcontainer clones it as
            // the intermediate's sibling).
            match wait_child(pid.as_raw()) {
                Ok(Some(code)) => Ok(code),
                Ok(None) => Err("exec: the process is not this runtime's child".into()),
                Err(e) => Err(format!("exec: wait: {e}")),
            }
        }
        other => Err(format!("unknown verb {other:?}")),
    }
}

/// Makes the container's view of its cgroups read-only when its spec asks
/// for it (`/sys/fs/cgroup` mounted `ro`, as for every container but a
/// privileged one), as runc does and docker shows: libcontainer binds the
/// cgroup v1 hierarchies read-write whatever the spec says, and a
/// container could then raise its own memory, CPU and pids limits.
///
/// The init is created and waits to be started: this process (short-lived,
/// single-threaded, about to exit) joins its mount namespace and remounts
/// each cgroup mount under `/sys/fs/cgroup` read-only, `nosuid`, `nodev`,
/// `noexec`.
fn cgroups_read_only(bundle: &Path, pid: i32) -> Result<(), String> {
    let config = std::fs::read(bundle.join("config.json"))
        .map_err(|e| format!("read {}/config.json: {e}", bundle.display()))?;
    let config: serde_json::Value =
        serde_json::from_slice(&config).map_err(|e| format!("config.json: {e}"))?;
    let wants_ro = config["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["destination"] == "/sys/fs/cgroup")
        .any(|m| {
            m["options"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o == "ro"))
        });
    if !wants_ro {
        return Ok(());
    }
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map_err(|e| format!("read the mounts of the container's init: {e}"))?;
    let targets = cgroup_mounts(&mountinfo);
    if targets.is_empty() {
        return Ok(());
    }
    let root = rustix::fs::open(
        format!("/proc/{pid}/root"),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("open the container's root: {e}"))?;
    let ns = rustix::fs::open(
        format!("/proc/{pid}/ns/mnt"),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("open the container's mount namespace: {e}"))?;
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&ns),
        Some(LinkNameSpaceType::Mount),
    )
    .map_err(|e| format!("join the container's mount namespace: {e}"))?;
    rustix::process::fchdir(&root).map_err(|e| format!("enter the container's root: {e}"))?;
    rustix::process::chroot(".").map_err(|e| format!("enter the container's root: {e}"))?;
    use rustix::mount::{mount_remount, MountFlags};
    let flags = MountFlags::BIND
        | MountFlags::RDONLY
        | MountFlags::NOSUID
        | MountFlags::NODEV
        | MountFlags::NOEXEC;
    for target in targets {
        mount_remount(target.as_str(), flags, "")
            .map_err(|e| format!("remount {target} read-only: {e}"))?;
    }
    Ok(())
}

/// The mount points of cgroup filesystems at or under `/sys/fs/cgroup` in
/// a `/proc/PID/mountinfo`, as its process sees them.
fn cgroup_mounts(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (fields, rest) = l.split_once(" - ")?;
            let target = fields.split(' ').nth(4)?;
            let fstype = rest.split(' ').next()?;
            let under = target == "/sys/fs/cgroup" || target.starts_with("/sys/fs/cgroup/");
            (under && (fstype == "cgroup" || fstype == "cgroup2")).then(|| target.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_are_found_in_mountinfo() {
        let info = "\
1 0 0:1 / / rw - overlay overlay rw
2 1 0:2 / /sys ro,nosuid - sysfs sysfs ro
3 2 0:3 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
4 3 0:4 /kiln/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
5 3 0:5 /kiln/abc /sys/fs/cgroup/cpu rw shared:3 - cgroup cgroup rw,cpu
6 1 0:6 / /sys/fs/cgroupx rw - cgroup cgroup rw,pids
";
        assert_eq!(
            cgroup_mounts(info),
            ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu"]
        );
        assert_eq!(
            cgroup_mounts("7 1 0:7 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            ["/sys/fs/cgroup"]
        );
    }
}
