//! Making committed snapshots: a staging directory, a layer unpacked into
//! it, and the staged tree published under its name.

use std::fs;
use std::io::BufRead;

use kiln_layer::{apply, ApplyOptions};

use super::trees::copy_tree;
use super::{check_name, Backend, Snapshotter};
use crate::error::{io, Result, SnapshotError};

impl Snapshotter {
    /// A fresh directory under `snapshots/tmp` that is renamed into place
    /// (made under the shared lock: a prune clears what dead writers left).
    pub(super) fn staging(&self) -> Result<tempfile::TempDir> {
        let tmp = self.dir.join("tmp");
        tempfile::Builder::new()
            .tempdir_in(&tmp)
            .map_err(io("create", &tmp))
    }

    /// Creates committed snapshot `name` = `parent` + the layer (a tar
    /// stream) and holds it.
    pub fn unpack(
        &self,
        name: &str,
        parent: Option<&str>,
        layer: impl BufRead + Send,
    ) -> Result<()> {
        let _lock = self.lock(false)?;
        self.unpack_locked(name, parent, layer)?;
        self.reference(name)
    }

    /// [`unpack`](Snapshotter::unpack) under a lock the caller holds.
    pub(crate) fn unpack_locked(
        &self,
        name: &str,
        parent: Option<&str>,
        layer: impl BufRead + Send,
    ) -> Result<()> {
        check_name(name)?;
        let staged = self.staging()?;
        let fs_dir = staged.path().join("fs");
        let mut opts = ApplyOptions::for_current_user();
        match (self.backend, parent) {
            (Backend::Native, Some(p)) => copy_tree(&self.lowers(p)?[0], &fs_dir)?,
            (Backend::Overlay, Some(p)) if !self.exists(p) => {
                return Err(SnapshotError::NotFound(p.to_string()))
            }
            _ => fs::create_dir(&fs_dir).map_err(io("create", &fs_dir))?,
        }
        opts.overlay_whiteouts = self.backend == Backend::Overlay;
        // Layers come from the store, verified when they entered it (and
        // their diff_ids checked on load/pull): no second hash here.
        opts.diff_id = false;
        apply(layer, &fs_dir, &opts)?;
        self.publish(staged, name, parent)
    }

    /// Moves a staged `<dir>/fs` into place as `name`. Someone else having
    /// committed the same name first is fine: same name, same content.
    pub(super) fn publish(
        &self,
        staged: tempfile::TempDir,
        name: &str,
        parent: Option<&str>,
    ) -> Result<()> {
        if let Some(p) = parent {
            let f = staged.path().join("parent");
            fs::write(&f, p).map_err(io("write", f))?;
        }
        let target = self.path(name);
        match fs::rename(staged.path(), &target) {
            Ok(()) => {
                // The TempDir would delete the renamed path's old name: no-op.
                let _ = staged.keep();
                Ok(())
            }
            Err(_) if self.exists(name) => {
                // Same content committed already (a --no-cache rebuild, a
                // parallel twin): the copy goes, but deleting thousands of
                // files is not this step's business. It moves to the trash,
                // emptied after the command (see `Snapshotter::trash`).
                self.trash(staged.keep(), false);
                Ok(())
            }
            Err(e) => Err(io("commit snapshot", target)(e)),
        }
    }
}
