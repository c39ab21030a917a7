//! `-v`, `--mount` and `--tmpfs` as docker reads them, and docker's sizes
//! (`512m`): the container's mounts, validated before anything is made.

use anyhow::{anyhow, bail, Context};
use kiln_container::MountConfig;

/// `512m`, `1g`, `1048576`, `2k`: bytes (docker's RAMInBytes).
pub(crate) fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| {
        anyhow!("invalid size: '{s}': use a number with an optional unit (b, k, m, g)")
    })?;
    Ok((n * mult as f64) as i64)
}

fn absolute(target: &str, what: &str) -> anyhow::Result<String> {
    if !target.starts_with('/') {
        bail!("invalid {what} \"{target}\": the path in the container must be absolute");
    }
    Ok(target.to_string())
}

/// `-v` forms: `/path` (anonymous), `NAME:/path[:ro|rw]`,
/// `/host:/path[:ro|rw]` (a missing host directory is created, as docker
/// does for `-v`).
pub(crate) fn volume_flag(v: &str) -> anyhow::Result<MountConfig> {
    let parts: Vec<&str> = v.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => bail!("invalid volume specification: '{v}'"),
    };
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => bail!("invalid volume specification: '{v}': invalid mode: {m}"),
    };
    let target = absolute(target, "volume specification")?;
    Ok(match source {
        None => MountConfig::Volume {
            name: String::new(),
            target,
            read_only,
            anonymous: true,
        },
        Some(s) if s.starts_with('/') || s.starts_with('.') => {
            let source = std::path::absolute(s)?;
            std::fs::create_dir_all(&source)
                .with_context(|| format!("create the bind source {}", source.display()))?;
            MountConfig::Bind {
                source,
                target,
                read_only,
            }
        }
        Some(s) => MountConfig::Volume {
            name: s.to_string(),
            target,
            read_only,
            anonymous: false,
        },
    })
}

/// `--mount type=…,source=…,target=…[,readonly]`.
pub(crate) fn mount_flag(v: &str) -> anyhow::Result<MountConfig> {
    let mut kind = "volume".to_string();
    let (mut source, mut target, mut read_only, mut size) = (None, None, false, None);
    for field in v.split(',') {
        let (k, val) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = val.to_string(),
            "source" | "src" => source = Some(val.to_string()),
            "target" | "destination" | "dst" => target = Some(val.to_string()),
            "readonly" | "ro" => read_only = val.is_empty() || val == "true" || val == "1",
            "tmpfs-size" => size = Some(parse_bytes(val)? as u64),
            other => bail!("invalid field '{other}' in --mount {v}"),
        }
    }
    let target = absolute(
        &target
            .ok_or_else(|| anyhow!("invalid argument \"{v}\" for --mount: target is required"))?,
        "mount target",
    )?;
    Ok(match kind.as_str() {
        "bind" => {
            let s = source.ok_or_else(|| {
                anyhow!("invalid argument \"{v}\" for --mount: source is required for a bind mount")
            })?;
            let source = std::path::absolute(&s)?;
            if !source.exists() {
                bail!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    source.display()
                );
            }
            MountConfig::Bind {
                source,
                target,
                read_only,
            }
        }
        "volume" => MountConfig::Volume {
            anonymous: source.is_none(),
            name: source.unwrap_or_default(),
            target,
            read_only,
        },
        "tmpfs" => MountConfig::Tmpfs {
            target,
            size,
            exec: false,
        },
        other => bail!("invalid mount type \"{other}\": use bind, volume or tmpfs"),
    })
}

pub(crate) fn tmpfs_flag(v: &str) -> anyhow::Result<MountConfig> {
    let (target, opts) = v.split_once(':').unwrap_or((v, ""));
    let mut size = None;
    let mut exec = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(s) = o.strip_prefix("size=") {
            size = Some(parse_bytes(s)? as u64);
        }
        match o {
            "exec" => exec = true,
            "noexec" => exec = false,
            _ => {}
        }
    }
    Ok(MountConfig::Tmpfs {
        target: absolute(target, "tmpfs path")?,
        size,
        exec,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_volumes_and_mounts_as_docker_reads_them() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("lots").is_err());
        assert!(matches!(
            volume_flag("/data").unwrap(),
            MountConfig::Volume {
                anonymous: true,
                ..
            }
        ));
        assert!(matches!(
            volume_flag("db:/data:ro").unwrap(),
            MountConfig::Volume {
                read_only: true,
                anonymous: false,
                ..
            }
        ));
        assert!(volume_flag("db:data").is_err());
        assert!(volume_flag("db:/data:rx").is_err());
        assert!(matches!(
            mount_flag("type=tmpfs,target=/t,tmpfs-size=1m").unwrap(),
            MountConfig::Tmpfs {
                size: Some(1048576),
                ..
            }
        ));
        assert!(mount_flag("type=bind,source=/nonexistent-kiln,target=/x")
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        assert!(matches!(
            tmpfs_flag("/run:size=64k").unwrap(),
            MountConfig::Tmpfs {
                size: Some(65536),
                exec: false,
                ..
            }
        ));
        assert!(matches!(
            tmpfs_flag("/run:exec,size=1k").unwrap(),
            MountConfig::Tmpfs {
                size: Some(1024),
                exec: true,
                ..
            }
        ));
    }
}
