//! Whole trees on disk: the native backend's copy, and deleting trees off
//! the critical path through `snapshots/trash`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Snapshotter;
use crate::error::{io, Result};

impl Snapshotter {
    /// Moves a tree out of sight into its own directory under the trash
    /// (so deleting it can never meet a new tree of the same name).
    pub(super) fn to_trash(&self, path: &Path) -> std::io::Result<PathBuf> {
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let t = tempfile::Builder::new()
            .prefix(&name)
            .tempdir_in(self.dir.join("trash"))?
            .keep();
        match fs::rename(path, t.join("x")) {
            Ok(()) => Ok(t),
            Err(e) => {
                let _ = fs::remove_dir(&t);
                Err(e)
            }
        }
    }

    /// Moves a tree to the trash and deletes it, now or in the background
    /// (in place if it cannot be moved).
    pub(super) fn trash(&self, path: PathBuf, now: bool) {
        let gone = self.to_trash(&path).unwrap_or(path);
        if now {
            if let Err(e) = fs::remove_dir_all(&gone) {
                tracing::warn!("remove {}: {e}", gone.display());
            }
        } else {
            discard_in_background(gone);
        }
    }
}

/// `cp -a`: ownership, modes, times, xattrs, hard links and special files
/// as they are, with reflinks where the file system has them. (A copy
/// snapshotter is the fallback path; coreutils already does this right.)
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let out = Command::new("cp")
        .args(["-a", "--reflink=auto", "--no-target-directory"])
        .arg(from)
        .arg(to)
        .output()
        .map_err(io("run cp for", to))?;
    if !out.status.success() {
        return Err(io("copy tree to", to)(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )));
    }
    Ok(())
}

/// Deletes a directory tree on a detached thread. If the process ends
/// first, the rest stays in `snapshots/trash` until the next open.
pub(super) fn discard_in_background(path: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("snapshot-trash".into())
        .spawn({
            let path = path.clone();
            move || {
                let _ = fs::remove_dir_all(&path);
            }
        });
    if spawned.is_err() {
        let _ = fs::remove_dir_all(&path);
    }
}
