//! What a COPY wrote into a snapshot, kept with it so that a later COPY of
//! the same files can hard-link them instead of copying them
//! (`kiln_layer::apply_local_linked`; overlay backend only: a native
//! active snapshot is a writable tree, and a link into it would let a
//! later step change a committed snapshot's file).
//!
//! `active/<key>/copied` is written after the COPY and moves with the
//! upper directory when the snapshot is committed (`<name>/copied`); GC
//! removes it with the snapshot. One line per file: the link key, a tab,
//! the path in the snapshot (paths holding a tab or newline are left out).
//! Committed snapshots are immutable, so a recorded path holds what was
//! copied for as long as the snapshot exists; the linker still checks
//! each candidate's metadata before it links it.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{check_name, Backend, Kind, Snapshotter};
use crate::error::{io, Result};

const RECORD: &str = "copied";

impl Snapshotter {
    /// The upper directory of active snapshot `key` when files may be
    /// linked into it (overlay backend), else `None`.
    pub fn link_upper(&self, key: &str) -> Option<PathBuf> {
        if self.backend != Backend::Overlay || check_name(key).is_err() {
            return None;
        }
        let info = self.active_info(key).ok()?;
        (info.kind == Kind::Active).then(|| self.active_path(key).join("upper"))
    }

    /// Keeps what a COPY wrote into active snapshot `key` (path, link key)
    /// with it; it goes with the snapshot when it is committed.
    pub fn record_copied(&self, key: &str, written: &[(Vec<u8>, String)]) -> Result<()> {
        check_name(key)?;
        let mut text = Vec::new();
        for (path, k) in written {
            if path.contains(&b'\n') || path.contains(&b'\t') || k.contains(['\n', '\t']) {
                continue;
            }
            text.extend_from_slice(k.as_bytes());
            text.push(b'\t');
            text.extend_from_slice(path);
            text.push(b'\n');
        }
        let p = self.active_path(key).join(RECORD);
        fs::write(&p, text).map_err(io("write", p))
    }

    /// Moves an active snapshot's record into the staged committed one.
    pub(super) fn carry_copied(&self, key: &str, staged: &Path) -> Result<()> {
        let from = self.active_path(key).join(RECORD);
        match fs::rename(&from, staged.join(RECORD)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("move", from)(e)),
        }
    }

    /// What a COPY into active snapshot `key` may link from: the files the
    /// `limit` most recently committed COPY snapshots hold, by link key
    /// (absolute paths, newest snapshot first wins). Never from `key`'s
    /// own parent chain: then no stack of layers holds one inode twice,
    /// and an overlay with `index=on` (which keeps hard links together on
    /// copy-up) cannot tie two paths of one container together.
    pub fn link_sources(&self, key: &str, limit: usize) -> Result<HashMap<String, PathBuf>> {
        let mut chain = std::collections::HashSet::new();
        let mut cur = self.active_info(key)?.parent;
        while let Some(p) = cur {
            cur = self.parent_of(&p)?;
            chain.insert(p);
        }
        let mut records = Vec::new();
        for name in self.committed()? {
            if chain.contains(&name) {
                continue;
            }
            let p = self.path(&name).join(RECORD);
            if let Ok(m) = fs::metadata(&p) {
                records.push((m.modified().ok(), name));
            }
        }
        records.sort();
        let mut out = HashMap::new();
        for (_, name) in records.into_iter().rev().take(limit) {
            let dir = self.path(&name);
            let Ok(text) = fs::read(dir.join(RECORD)) else {
                continue; // removed meanwhile
            };
            let fs_dir = dir.join("fs");
            for line in text.split(|&b| b == b'\n') {
                let Some(tab) = line.iter().position(|&b| b == b'\t') else {
                    continue;
                };
                let (k, path) = (&line[..tab], &line[tab + 1..]);
                let Ok(k) = std::str::from_utf8(k) else {
                    continue;
                };
                out.entry(k.to_string())
                    .or_insert_with(|| fs_dir.join(std::ffi::OsStr::from_bytes(path)));
            }
        }
        Ok(out)
    }
}
