//! Cross-process locks on one store root.
//!
//! Two locks, both `flock`s on files under `locks/`:
//! - `index.lock`, exclusive, held while index.json is read-modified-written,
//!   so concurrent tag changes never lose each other's updates;
//! - `gc.lock`, a lease: every operation that writes blobs and then tags them
//!   holds it shared for its whole run, and garbage collection takes it
//!   exclusive, so GC never deletes a blob that a running import has written
//!   but not yet tagged.
//!
//! Locks are released when the guard drops, or by the kernel when the
//! process dies, so a killed kiln never leaves the store locked.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use crate::error::{IoContext, Result};

/// Held lock; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

pub(crate) fn lock(root: &Path, name: &str, mode: Mode) -> Result<LockGuard> {
    let dir = root.join("locks");
    fs::create_dir_all(&dir).ctx("create directory", &dir)?;
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ctx("open lock file", &path)?;
    let free = match mode {
        Mode::Shared => file.try_lock_shared().is_ok(),
        Mode::Exclusive => file.try_lock().is_ok(),
    };
    if free {
        return Ok(LockGuard { _file: file });
    }
    tracing::info!(
        "waiting for {} (held by another kiln process)",
        path.display()
    );
    match mode {
        Mode::Shared => file.lock_shared(),
        Mode::Exclusive => file.lock(),
    }
    .ctx("lock", &path)?;
    Ok(LockGuard { _file: file })
}
