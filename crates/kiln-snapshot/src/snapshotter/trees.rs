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

    /// Moves a tree to the trash and deletes it now, or leaves it there
    /// for [`empty_trash`] (in place if it cannot be moved).
    ///
    /// Why later and not on a background thread: a `--no-cache` rebuild
    /// discards a context-sized duplicate on every COPY, and deleting
    /// thousands of files beside the build on a 2-core machine cost it
    /// ~150 ms of system time (issue 12's cold-build regression). The
    /// binary empties the trash in a niced process after the command
    /// (`kiln __kiln-empty-trash`), as BuildKit's daemon collects garbage
    /// off the build's path.
    pub(super) fn trash(&self, path: PathBuf, now: bool) {
        match self.to_trash(&path) {
            Ok(gone) if !now => drop(gone),
            moved => {
                let gone = moved.unwrap_or(path);
                if let Err(e) = fs::remove_dir_all(&gone) {
                    tracing::warn!("remove {}: {e}", gone.display());
                }
            }
        }
    }
}

/// The file an emptier holds locked (so two never walk the same trees).
const EMPTYING: &str = ".emptying";

/// Whether store `store_root`'s snapshot trash holds anything to delete.
pub fn trash_pending(store_root: &Path) -> bool {
    fs::read_dir(store_root.join("snapshots/trash"))
        .map(|rd| rd.flatten().any(|e| e.file_name() != EMPTYING))
        .unwrap_or(false)
}

/// Deletes what store `store_root`'s snapshot trash holds: trees discarded
/// by earlier commands, nothing anyone uses. Returns at once if another
/// process is emptying it already; trees trashed meanwhile wait for the
/// next emptying.
pub fn empty_trash(store_root: &Path) -> Result<()> {
    let trash = store_root.join("snapshots/trash");
    let lock_path = trash.join(EMPTYING);
    let lock = match fs::File::create(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("create", &lock_path)(e)),
    };
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(());
    }
    for e in fs::read_dir(&trash).map_err(io("list", &trash))?.flatten() {
        if e.file_name() == EMPTYING {
            continue;
        }
        match fs::remove_dir_all(e.path()) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!("remove {}: {err}", e.path().display()),
        }
    }
    Ok(())
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
