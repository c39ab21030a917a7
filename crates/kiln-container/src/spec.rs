//! A container's record → the process kiln-exec runs: user resolved in
//! the image's root, mounts (volumes, binds, tmpfs, `--init`), hostname.

use std::path::{Path, PathBuf};

use kiln_exec::{ExtraMount, Network, ProcessSpec};

use crate::error::{ContainerError, Result};
use crate::record::{ContainerConfig, MountConfig};
use crate::volumes::Volumes;

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

/// The process of container `c`, its root mounted at `rootfs`.
pub fn process_spec(c: &ContainerConfig, rootfs: &Path, volumes: &Volumes) -> Result<ProcessSpec> {
    let p = &c.process;
    let user = kiln_exec::resolve_user(if p.user.is_empty() { "0" } else { &p.user }, rootfs)?;
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
            MountConfig::Tmpfs { target, size } => ExtraMount::Tmpfs {
                target: target.clone(),
                size: *size,
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
    let network = match c.host.network.as_str() {
        "host" => Network::Host,
        _ => Network::None,
    };
    Ok(ProcessSpec {
        args,
        env: p.env.clone(),
        cwd: if p.working_dir.is_empty() {
            "/".into()
        } else {
            p.working_dir.clone()
        },
        user,
        network,
        hostname: p.hostname.clone(),
        mounts,
        extra_hosts: c.host.extra_hosts.clone(),
        privileged: c.host.privileged,
    })
}
