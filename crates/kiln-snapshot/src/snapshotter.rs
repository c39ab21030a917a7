//! The snapshotter, to containerd's contract: committed snapshots by
//! name, active snapshots and views by key, mounts returned as data; and
//! the references and the lock that keep a prune away from what is in use.
//!
//! This module holds the types and opening a store's snapshots, with the
//! paths and parent chains of committed snapshots; the rest, by job:
//!
//! - [`active`]: active snapshots and views (prepare, view, mounts,
//!   commit, remove, diff);
//! - [`unpack`]: making committed snapshots (staging, unpacking a layer,
//!   publishing);
//! - [`lease`]: references, leases and the lock;
//! - [`prune`]: snapshot GC;
//! - [`inspect`]: stat, walk, list, usage;
//! - [`trees`]: copying trees (native backend) and the trash;
//! - [`copied`]: what a COPY wrote into a snapshot, for linking from it.

mod active;
mod copied;
mod inspect;
mod lease;
mod prune;
mod trees;
mod unpack;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{io, Result, SnapshotError};
use crate::mount::{mount, Mount};

pub use inspect::Usage;
use lease::Lease;
pub use prune::PruneReport;
pub use trees::{copy_tree, empty_trash, trash_pending};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Overlay,
    Native,
}

impl Backend {
    /// Overlay when this process can mount one here, else native.
    pub fn detect(dir: &Path) -> Backend {
        let probe = || -> Result<()> {
            let t = tempfile::Builder::new()
                .prefix("overlay-probe-")
                .tempdir_in(dir)
                .map_err(io("create", dir))?;
            for d in ["l", "u", "w", "m"] {
                fs::create_dir(t.path().join(d)).map_err(io("create", t.path()))?;
            }
            let m = Mount::overlay(
                &[t.path().join("l")],
                Some((&t.path().join("u"), &t.path().join("w"))),
            );
            drop(mount(&[m], &t.path().join("m"))?);
            Ok(())
        };
        match probe() {
            Ok(()) => Backend::Overlay,
            Err(e) => {
                tracing::info!("overlayfs not usable ({e}): using the native snapshotter");
                Backend::Native
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Overlay => "overlay",
            Backend::Native => "native",
        }
    }

    /// The backend whose snapshots store `store_root` holds, if it has
    /// made any (its `snapshots/backend` marker).
    pub fn recorded(store_root: &Path) -> Option<Backend> {
        match fs::read_to_string(store_root.join("snapshots/backend"))
            .ok()?
            .trim()
        {
            "native" => Some(Backend::Native),
            "overlay" => Some(Backend::Overlay),
            _ => None,
        }
    }
}

/// What a snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Immutable, named; a parent for others.
    Committed,
    /// Writable, by key; committed or removed when done.
    Active,
    /// Read-only access to a committed snapshot, by key; removed when done.
    View,
}

/// One snapshot, as [`Snapshotter::stat`] and [`Snapshotter::walk`] see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The committed name, or the active snapshot's or view's key.
    pub name: String,
    pub kind: Kind,
    pub parent: Option<String>,
    /// The lease owning an active snapshot or view (none: it stays until
    /// removed, as a container's does).
    pub owner: Option<String>,
}

/// The snapshots of one store root (`<root>/snapshots`). A clone from
/// [`Snapshotter::leased`] owns what it prepares and holds what it unpacks
/// or commits, for as long as it (any clone of it) lives.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    backend: Backend,
    owner: Option<Arc<Lease>>,
    /// Threads of one process unpacking the same chain do it once.
    pub(crate) unpacking: Arc<Mutex<()>>,
}

/// Names of the entries under `snapshots/` that are not committed
/// snapshots.
const RESERVED: [&str; 7] = [
    "active", "empty", "tmp", "trash", "leases", "lock", "backend",
];

/// Keys and names become directory names: plain characters only.
fn check_name(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(SnapshotError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() || key.len() > 200 {
        return bad("a key is 1 to 200 characters");
    }
    if key.starts_with('.') || RESERVED.contains(&key) {
        return bad("reserved name");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:@+-".contains(&b))
    {
        return bad("only letters, digits and . _ : @ + - are allowed");
    }
    Ok(())
}

impl Snapshotter {
    /// Opens (creating) the snapshots of a store. Committed snapshots of
    /// one backend mean nothing to the other, so the backend is recorded
    /// and a different one refused.
    pub fn open(store_root: &Path, backend: Backend) -> Result<Snapshotter> {
        let dir = store_root.join("snapshots");
        for d in ["active", "empty", "tmp", "trash", "leases"] {
            let d = dir.join(d);
            fs::create_dir_all(&d).map_err(io("create", &d))?;
        }
        let marker = dir.join("backend");
        let name = backend.name();
        match fs::read_to_string(&marker) {
            Ok(recorded) if recorded.trim() != name && !Snapshotter::is_empty(&dir)? => {
                return Err(SnapshotError::BackendMismatch {
                    recorded: recorded.trim().to_string(),
                    wanted: name,
                })
            }
            Ok(recorded) if recorded.trim() == name => {}
            _ => fs::write(&marker, name).map_err(io("write", &marker))?,
        }
        Ok(Snapshotter {
            dir,
            backend,
            owner: None,
            unpacking: Arc::new(Mutex::new(())),
        })
    }

    /// Opens the snapshots with the backend that made them (for listing
    /// and pruning).
    pub fn open_existing(store_root: &Path) -> Result<Snapshotter> {
        let backend = Backend::recorded(store_root).unwrap_or(Backend::Overlay);
        Snapshotter::open(store_root, backend)
    }

    fn is_empty(dir: &Path) -> Result<bool> {
        for e in fs::read_dir(dir).map_err(io("list", dir))? {
            let e = e.map_err(io("list", dir))?;
            if e.path().join("fs").is_dir() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn active_path(&self, key: &str) -> PathBuf {
        self.dir.join("active").join(key)
    }

    /// Whether committed snapshot `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        check_name(name).is_ok() && self.path(name).join("fs").is_dir()
    }

    pub fn parent_of(&self, name: &str) -> Result<Option<String>> {
        check_name(name)?;
        let p = self.path(name).join("parent");
        match fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.exists(name) {
                    Ok(None)
                } else {
                    Err(SnapshotError::NotFound(name.to_string()))
                }
            }
            Err(e) => Err(io("read", p)(e)),
        }
    }

    /// The directories that make up committed `name`, top first.
    fn lowers(&self, name: &str) -> Result<Vec<PathBuf>> {
        if !self.exists(name) {
            return Err(SnapshotError::NotFound(name.to_string()));
        }
        if self.backend == Backend::Native {
            return Ok(vec![self.path(name).join("fs")]);
        }
        let mut out = vec![self.path(name).join("fs")];
        let mut cur = self.parent_of(name)?;
        while let Some(p) = cur {
            out.push(self.path(&p).join("fs"));
            cur = self.parent_of(&p)?;
        }
        Ok(out)
    }

    /// The lowers of an active snapshot or view on `parent` (the empty
    /// directory for none).
    fn lowers_of(&self, parent: Option<&str>) -> Result<Vec<PathBuf>> {
        match parent {
            Some(p) => self.lowers(p),
            None => Ok(vec![self.dir.join("empty")]),
        }
    }
}
