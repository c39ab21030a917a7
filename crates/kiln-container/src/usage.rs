//! Disk used by containers and volumes, for `system df`: each
//! container's writable layer (its active snapshot) and each volume's
//! data, with whether something uses it.

use crate::engine::{open_snapshotter, Engine};
use crate::error::{io, Result};
use crate::record::Status;

/// One container's writable layer.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub size: u64,
}

/// One volume's data.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub name: String,
    /// Containers (any state) mounting it.
    pub links: usize,
    pub size: u64,
}

impl Engine {
    pub fn container_usage(&self) -> Result<Vec<ContainerUsage>> {
        let snaps = open_snapshotter(&self.root)?;
        let mut out = Vec::new();
        for c in self.list()? {
            let size = snaps.usage(&c.config.snapshot).map(|u| u.size).unwrap_or(0);
            out.push(ContainerUsage {
                running: matches!(c.state.status, Status::Running | Status::Restarting),
                id: c.config.id,
                name: c.config.name,
                size,
            });
        }
        Ok(out)
    }

    pub fn volume_usage(&self) -> Result<Vec<VolumeUsage>> {
        let used = self.volumes_in_use()?;
        let mut out = Vec::new();
        for v in self.volumes.list()? {
            let data = self.volumes.data(&v.name);
            out.push(VolumeUsage {
                links: used.get(&v.name).map_or(0, Vec::len),
                size: dir_size(&data).map_err(io("measure", &data))?,
                name: v.name,
            });
        }
        Ok(out)
    }
}

impl Engine {
    /// docker's `volume prune`: the volumes no container mounts that are
    /// anonymous (every one with `all`); their names and the bytes freed.
    pub fn prune_volumes(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let mut deleted = Vec::new();
        let mut bytes = 0;
        for u in self.volume_usage()? {
            if u.links > 0 || (!all && !self.volumes.get(&u.name)?.anonymous) {
                continue;
            }
            self.volumes.remove(&u.name)?;
            bytes += u.size;
            deleted.push(u.name);
        }
        Ok((deleted, bytes))
    }
}

/// Bytes of the regular files under `dir` (hard links counted once).
pub(crate) fn dir_size(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    Ok(total)
}
