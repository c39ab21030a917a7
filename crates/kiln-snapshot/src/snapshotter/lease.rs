//! References, leases and the lock: what keeps a prune away from what is
//! in use.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::Snapshotter;
use crate::error::{io, Result};

/// An owner: `leases/<id>`, locked (flock, exclusive) by the owning
/// process for its life, listing the committed snapshots it holds. The
/// kernel drops the lock when the process dies, however it dies: a prune
/// that can take the lock knows the owner is gone.
#[derive(Debug)]
pub(super) struct Lease {
    pub(super) id: String,
    path: PathBuf,
    file: Mutex<File>,
    held: Mutex<HashSet<String>>,
    keys: AtomicU64,
}

impl Drop for Lease {
    /// The owner is done: what it held is free. (Its actives, if any were
    /// left, count as abandoned from now on.)
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Snapshotter {
    /// A handle whose active snapshots and views are owned by a new lease
    /// of this process, and which holds every committed snapshot it
    /// unpacks, commits or [`hold`](Snapshotter::hold)s: a prune removes
    /// none of them while the lease lives, and removes the actives once the
    /// process is gone. (A build uses one; a container's snapshot is made
    /// without, so it outlives the CLI that made it.)
    pub fn leased(&self) -> Result<Snapshotter> {
        let leases = self.dir.join("leases");
        // Made and locked under the lock, so a prune never sees the file
        // unlocked and takes its owner for dead.
        let _lock = self.lock(false)?;
        let (file, path) = tempfile::Builder::new()
            .prefix("lease-")
            .tempfile_in(&leases)
            .map_err(io("create lease in", &leases))?
            .keep()
            .map_err(|e| io("create lease in", &leases)(e.error))?;
        file.try_lock().map_err(|e| {
            io("lock lease", &path)(match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => {
                    std::io::Error::other("held by another process")
                }
            })
        })?;
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Snapshotter {
            owner: Some(Arc::new(Lease {
                id,
                path,
                file: Mutex::new(file),
                held: Mutex::new(HashSet::new()),
                keys: AtomicU64::new(0),
            })),
            ..self.clone()
        })
    }

    /// A key no other snapshot has: `<what>-<lease>-<n>` (or with the
    /// process id and time without a lease).
    pub fn new_key(&self, what: &str) -> String {
        match &self.owner {
            Some(l) => format!("{what}-{}-{}", l.id, l.keys.fetch_add(1, Ordering::Relaxed)),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                format!("{what}-{}-{nanos}", std::process::id())
            }
        }
    }

    /// `snapshots/lock`: shared while snapshots are made, held and
    /// referenced; exclusive while committed ones are removed. A flock, so
    /// a killed process never leaves it held.
    pub(crate) fn lock(&self, exclusive: bool) -> Result<File> {
        let path = self.dir.join("lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        let locked = if exclusive { f.lock() } else { f.lock_shared() };
        locked.map_err(io("lock", &path))?;
        Ok(f)
    }

    /// Records `name` in this handle's lease (call under the lock, after
    /// checking it exists, so a prune cannot come between).
    pub(crate) fn reference(&self, name: &str) -> Result<()> {
        let Some(lease) = &self.owner else {
            return Ok(());
        };
        let mut held = lease.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.contains(name) {
            return Ok(());
        }
        let mut f = lease.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(format!("{name}\n").as_bytes())
            .map_err(io("write lease", self.dir.join("leases").join(&lease.id)))?;
        held.insert(name.to_string());
        Ok(())
    }

    /// Holds committed `name` in this handle's lease if it exists; false
    /// if it does not.
    pub fn hold(&self, name: &str) -> Result<bool> {
        let _lock = self.lock(false)?;
        if !self.exists(name) {
            return Ok(false);
        }
        self.reference(name)?;
        Ok(true)
    }

    /// Every lease: (id, whether its owner lives, what it holds).
    pub(super) fn leases(&self) -> Result<Vec<(String, bool, Vec<String>)>> {
        let dir = self.dir.join("leases");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let e = e.map_err(io("list", &dir))?;
            let id = e.file_name().to_string_lossy().into_owned();
            let f = match OpenOptions::new().read(true).write(true).open(e.path()) {
                Ok(f) => f,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(io("open lease", e.path())(err)),
            };
            // The owner holds the lock for its life (this process's own
            // leases too: flocks of separate opens conflict).
            let alive = f.try_lock().is_err();
            let held = fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            out.push((id, alive, held));
        }
        Ok(out)
    }
}
