//! A container's record → the process kiln-exec runs: user resolved in
//! the image's root, mounts (volumes, binds, tmpfs, `--init`), hostname,
//! and what every process of the container shares (capabilities, seccomp,
//! no-new-privileges, limits, its cgroup).

use std::path::{Path, PathBuf};

use kiln_exec::{ExtraMount, Network, ProcessSpec, Resources, SeccompProfile};

use crate::error::{ContainerError, Result};
use crate::record::{ContainerConfig, HostConfig, MountConfig};
use crate::volumes::Volumes;

/// What `--security-opt` says, read: the seccomp profile and
/// no-new-privileges. A profile file was read at create time and is kept
/// as its JSON (`seccomp=<json>`, as docker keeps it), so a later change or
/// removal of the file changes nothing.
pub fn security_options(host: &HostConfig) -> Result<(SeccompProfile, bool)> {
    let mut seccomp = SeccompProfile::Default;
    let mut no_new_privs = false;
    for opt in &host.security_opt {
        let (key, value) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .unwrap_or((opt.as_str(), ""));
        match key {
            "no-new-privileges" => {
                no_new_privs = match value {
                    "" | "true" => true,
                    "false" => false,
                    _ => return Err(invalid_opt(opt)),
                }
            }
            "seccomp" if value == "unconfined" => seccomp = SeccompProfile::Unconfined,
            "seccomp" if !value.is_empty() => {
                let json = serde_json::from_str(value).map_err(|e| {
                    ContainerError::InvalidConfig(format!(
                        "--security-opt seccomp: the profile is not JSON ({e})"
                    ))
                })?;
                seccomp = SeccompProfile::Custom(json);
            }
            _ => return Err(invalid_opt(opt)),
        }
    }
    Ok((seccomp, no_new_privs))
}

fn invalid_opt(opt: &str) -> ContainerError {
    ContainerError::InvalidConfig(format!(
        "invalid --security-opt: {opt:?}: use seccomp=PROFILE.json, seccomp=unconfined or no-new-privileges"
    ))
}

/// The cgroup a container's processes live in (limits, stats, OOM).
pub fn cgroups_path(id: &str) -> String {
    format!("/kiln/{id}")
}

/// A process of container `c` (its init or an exec'd one) with what all of
/// them share: hostname, network, privileges, capabilities, seccomp,
/// limits and cgroup. The caller sets args, env, cwd, user and mounts.
pub fn container_process(c: &ContainerConfig) -> Result<ProcessSpec> {
    let (seccomp, no_new_privileges) = security_options(&c.host)?;
    Ok(ProcessSpec {
        network: match c.host.network.as_str() {
            "host" => Network::Host,
            "none" | "" => Network::None,
            _ => crate::net::joined(c)?,
        },
        hostname: c.process.hostname.clone(),
        hosts: Some(docker_hosts(&c.host.network)),
        extra_hosts: c.host.extra_hosts.clone(),
        privileged: c.host.privileged,
        cap_add: c.host.cap_add.clone(),
        cap_drop: c.host.cap_drop.clone(),
        readonly_rootfs: c.host.read_only,
        no_new_privileges,
        seccomp,
        resources: Resources {
            memory: c.host.memory,
            // docker: `-m` without `--memory-swap` allows as much swap
            // again, where the host accounts swap.
            memory_swap: c
                .host
                .memory
                .filter(|m| *m > 0 && swap_accounted())
                .map(|m| m.saturating_mul(2)),
            nano_cpus: c.host.nano_cpus,
            pids_limit: c.host.pids_limit,
        },
        cgroups_path: Some(cgroups_path(&c.id)),
        ..ProcessSpec::default()
    })
}

/// `/etc/hosts` as docker 20.10 writes it for a container: the host's own
/// with `--network host`; otherwise docker's loopback and IPv6 names (with
/// `--network none` no line names the container, as it has no address).
fn docker_hosts(network: &str) -> String {
    if network == "host" {
        if let Ok(mut hosts) = std::fs::read_to_string("/etc/hosts") {
            if !hosts.is_empty() && !hosts.ends_with('\n') {
                hosts.push('\n');
            }
            return hosts;
        }
    }
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
     fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
     ff02::2\tip6-allrouters\n"
        .to_string()
}

/// Whether the host's memory cgroup limits swap (docker's
/// `sysinfo.SwapLimit`): cgroup v1's `memory.memsw.*` files (a kernel
/// booted without swap accounting has none), or v2 with its memory
/// controller.
fn swap_accounted() -> bool {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("memory/memory.memsw.limit_in_bytes").exists() {
        return true;
    }
    std::fs::read_to_string(base.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"))
}

/// The environment docker gives every process of a container: `HOSTNAME`
/// and, with a terminal, `TERM`, then the container's own.
pub fn container_env(c: &ContainerConfig) -> Vec<String> {
    let term = c.process.tty.then(|| "TERM=xterm".to_string());
    let env: Vec<String> = term
        .into_iter()
        .chain(c.process.env.iter().cloned())
        .collect();
    crate::exec::exec_env(&c.process.hostname, &env, &[])
}

/// Where `--init`'s program is mounted in the container, as docker does.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Host paths of a static `tini` (Debian's `tini` package): what `--init`
/// runs as PID 1.
const INIT_CANDIDATES: &[&str] = &["/usr/bin/tini-static", "/usr/bin/docker-init"];

pub fn init_binary() -> Result<PathBuf> {
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ContainerError::InvalidConfig(
                "--init needs a static tini on the host (/usr/bin/tini-static): install Debian's tini package".into(),
            )
        })
}

/// `-u USER[:GROUP]` (empty: root) of a container's process, resolved in
/// the root it sees as `docker run` and `docker exec` resolve it: as a
/// build's USER, and the primary group is among the supplementary groups
/// too (docker's `id` shows `groups=0(root),10(wheel)` where a BuildKit
/// RUN shows none).
pub fn container_user(user: &str, rootfs: &Path) -> Result<kiln_exec::User> {
    let mut u = kiln_exec::resolve_user(if user.is_empty() { "0" } else { user }, rootfs)?;
    if !u.additional_gids.contains(&u.gid) {
        u.additional_gids.insert(0, u.gid);
    }
    Ok(u)
}

/// The files docker's init layer gives every container, which `diff` and
/// `commit` leave out as docker does (it never shows that layer).
pub const DOCKER_INIT_FILES: &[&str] = &["/.dockerenv", "/etc/mtab"];

/// Makes docker's init-layer files in the root at `rootfs`: an empty
/// `/.dockerenv` (mode 0755) and, when the image has none, `/etc/mtab`
/// linking to `/proc/mounts`. Paths resolve inside the root, and nothing
/// the image has is replaced.
fn docker_init_files(rootfs: &Path) -> Result<()> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let fail = |what: &str, e: Errno| {
        ContainerError::InvalidConfig(format!("make {what} in {}: {e}", rootfs.display()))
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail("/", e))?;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(&root, ".dockerenv", flags, Mode::from_raw_mode(0o755)) {
        Ok(fd) => rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))
            .map_err(|e| fail("/.dockerenv", e))?,
        Err(Errno::EXIST) => {}
        Err(e) => return Err(fail("/.dockerenv", e)),
    }
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let dir = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let etc = match rustix::fs::openat2(&root, "etc", dir, Mode::empty(), resolve) {
        Err(Errno::NOENT) => {
            match rustix::fs::mkdirat(&root, "etc", Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(fail("/etc", e)),
            }
            rustix::fs::openat2(&root, "etc", dir, Mode::empty(), resolve)
        }
        r => r,
    };
    let etc = match etc {
        Ok(etc) => etc,
        // `/etc` is not a directory in this image: docker's init layer
        // would fail the same way; the container does without.
        Err(Errno::NOTDIR | Errno::LOOP) => return Ok(()),
        Err(e) => return Err(fail("/etc", e)),
    };
    match rustix::fs::symlinkat("/proc/mounts", &etc, "mtab") {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(fail("/etc/mtab", e)),
    }
}

/// The process of container `c`, its root mounted at `rootfs` (which gets
/// docker's init-layer files first).
pub fn process_spec(c: &ContainerConfig, rootfs: &Path, volumes: &Volumes) -> Result<ProcessSpec> {
    docker_init_files(rootfs)?;
    let p = &c.process;
    let user = container_user(&p.user, rootfs)?;
    let mut mounts = Vec::new();
    for m in &c.host.mounts {
        mounts.push(match m {
            MountConfig::Volume {
                name,
                target,
                read_only,
                ..
            } => ExtraMount::Bind {
                source: volumes.data(name),
                target: target.clone(),
                readonly: *read_only,
            },
            MountConfig::Bind {
                source,
                target,
                read_only,
            } => ExtraMount::Bind {
                source: source.clone(),
                target: target.clone(),
                readonly: *read_only,
            },
            MountConfig::Tmpfs { target, size, exec } => ExtraMount::Tmpfs {
                target: target.clone(),
                size: *size,
                noexec: !exec,
            },
        });
    }
    let mut args = vec![p.path.clone()];
    args.extend(p.args.iter().cloned());
    if c.host.init {
        mounts.push(ExtraMount::Bind {
            source: init_binary()?,
            target: INIT_PATH.into(),
            readonly: true,
        });
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let mut spec = container_process(c)?;
    spec.args = args;
    spec.env = container_env(c);
    spec.cwd = if p.working_dir.is_empty() {
        "/".into()
    } else {
        p.working_dir.clone()
    };
    spec.user = user;
    spec.mounts = mounts;
    spec.terminal = p.tty;
    Ok(spec)
}
