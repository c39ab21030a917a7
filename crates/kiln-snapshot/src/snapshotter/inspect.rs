//! Reading snapshots: stat, walk, list and disk usage.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;

use super::{Backend, Info, Kind, Snapshotter};
use crate::error::{io, Result, SnapshotError};

/// Disk used by a snapshot's own files (not its parents').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Allocated bytes (hard links counted once).
    pub size: u64,
    pub inodes: u64,
}

impl Snapshotter {
    /// What snapshot `key` (active, view or committed) is.
    pub fn stat(&self, key: &str) -> Result<Info> {
        match self.active_info(key) {
            Err(SnapshotError::NotFound(_)) => Ok(Info {
                name: key.to_string(),
                kind: Kind::Committed,
                parent: self.parent_of(key)?,
                owner: None,
            }),
            other => other,
        }
    }

    /// Disk used by the snapshot's own files: a committed one's layer
    /// (overlay) or tree (native), an active one's writes (overlay) or
    /// tree (native); a view has none.
    pub fn usage(&self, key: &str) -> Result<Usage> {
        let info = self.stat(key)?;
        let dir = match (info.kind, self.backend) {
            (Kind::Committed, _) => self.path(key).join("fs"),
            (Kind::Active, Backend::Overlay) => self.active_path(key).join("upper"),
            (Kind::Active, Backend::Native) => self.active_path(key).join("fs"),
            (Kind::View, _) => return Ok(Usage::default()),
        };
        let mut usage = Usage::default();
        let mut seen = HashSet::new();
        let mut todo = vec![dir];
        while let Some(p) = todo.pop() {
            let md = fs::symlink_metadata(&p).map_err(io("stat", &p))?;
            if seen.insert((md.dev(), md.ino())) {
                usage.inodes += 1;
                usage.size += md.blocks() * 512;
            }
            if md.is_dir() {
                for e in fs::read_dir(&p).map_err(io("list", &p))? {
                    todo.push(e.map_err(io("list", &p))?.path());
                }
            }
        }
        Ok(usage)
    }

    /// Every snapshot: committed ones, active ones and views, by name.
    pub fn walk(&self) -> Result<Vec<Info>> {
        let mut out = self.actives()?;
        for name in self.committed()? {
            out.push(Info {
                parent: self.parent_of(&name)?,
                name,
                kind: Kind::Committed,
                owner: None,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Committed snapshot names.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut out = self.committed()?;
        out.sort();
        Ok(out)
    }

    pub(super) fn committed(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io("list", &self.dir))? {
            let e = e.map_err(io("list", &self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if self.exists(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    pub(super) fn actives(&self) -> Result<Vec<Info>> {
        let dir = self.dir.join("active");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let e = e.map_err(io("list", &dir))?;
            let key = e.file_name().to_string_lossy().into_owned();
            match self.active_info(&key) {
                Ok(info) => out.push(info),
                // Not one of ours (a directory of an older kiln): left alone.
                Err(err) => tracing::warn!("snapshot {key}: {err}"),
            }
        }
        Ok(out)
    }
}
