//! The snapshotter, to containerd's contract: committed snapshots by
//! name, active snapshots and views by key, mounts returned as data; and
//! the references and the lock that keep a prune away from what is in use.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kiln_layer::{apply, diff_overlay, diff_trees, ApplyOptions, Change};

use crate::error::{io, Result, SnapshotError};
use crate::mount::{mount, Mount};

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

    fn name(self) -> &'static str {
        match self {
            Backend::Overlay => "overlay",
            Backend::Native => "native",
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

/// Disk used by a snapshot's own files (not its parents').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Allocated bytes (hard links counted once).
    pub size: u64,
    pub inodes: u64,
}

/// What [`Snapshotter::prune`] removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    /// Committed snapshots.
    pub removed: Vec<String>,
    /// Active snapshots and views whose owner had gone.
    pub abandoned: Vec<String>,
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

/// An owner: `leases/<id>`, locked (flock, exclusive) by the owning
/// process for its life, listing the committed snapshots it holds. The
/// kernel drops the lock when the process dies, however it dies: a prune
/// that can take the lock knows the owner is gone.
#[derive(Debug)]
struct Lease {
    id: String,
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
        // What a killed kiln left in the trash goes now, in the background.
        if let Ok(entries) = fs::read_dir(dir.join("trash")) {
            for e in entries.flatten() {
                discard_in_background(e.path());
            }
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
        let recorded = fs::read_to_string(store_root.join("snapshots/backend")).unwrap_or_default();
        let backend = if recorded.trim() == "native" {
            Backend::Native
        } else {
            Backend::Overlay
        };
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
        file.try_lock()
            .map_err(|e| io("lock lease", &path)(std::io::Error::other(format!("{e:?}"))))?;
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

    pub fn backend(&self) -> Backend {
        self.backend
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

    /// A fresh directory under `snapshots/tmp` that is renamed into place
    /// (made under the shared lock: a prune clears what dead writers left).
    fn staging(&self) -> Result<tempfile::TempDir> {
        let tmp = self.dir.join("tmp");
        tempfile::Builder::new()
            .tempdir_in(&tmp)
            .map_err(io("create", &tmp))
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

    /// Moves a staged `<dir>/fs` into place as `name`. Someone else having
    /// committed the same name first is fine: same name, same content.
    fn publish(&self, staged: tempfile::TempDir, name: &str, parent: Option<&str>) -> Result<()> {
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
                // files is not this step's business. It moves to the trash
                // and is deleted off the build's critical path.
                self.trash(staged.keep(), false);
                Ok(())
            }
            Err(e) => Err(io("commit snapshot", target)(e)),
        }
    }

    /// Moves a tree out of sight into its own directory under the trash
    /// (so deleting it can never meet a new tree of the same name).
    fn to_trash(&self, path: &Path) -> std::io::Result<PathBuf> {
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
    fn trash(&self, path: PathBuf, now: bool) {
        let gone = self.to_trash(&path).unwrap_or(path);
        if now {
            if let Err(e) = fs::remove_dir_all(&gone) {
                tracing::warn!("remove {}: {e}", gone.display());
            }
        } else {
            discard_in_background(gone);
        }
    }

    /// Creates committed snapshot `name` = `parent` + the layer (a tar
    /// stream) and holds it.
    pub fn unpack(
        &self,
        name: &str,
        parent: Option<&str>,
        layer: impl BufRead + Send,
    ) -> Result<()> {
        check_name(name)?;
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

    /// A new active snapshot `key` on committed `parent` (or on nothing);
    /// returns its mounts. Owned by this handle's lease, if any.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.create(key, parent, Kind::Active)
    }

    /// A new read-only view `key` of committed `parent`; returns its
    /// mounts. A view holds its parent like an active snapshot does.
    pub fn view(&self, key: &str, parent: &str) -> Result<Vec<Mount>> {
        self.create(key, Some(parent), Kind::View)
    }

    fn create(&self, key: &str, parent: Option<&str>, kind: Kind) -> Result<Vec<Mount>> {
        check_name(key)?;
        if let Some(p) = parent {
            check_name(p)?;
        }
        // Under the lock: the parent cannot go between this check and the
        // active snapshot that holds it appearing.
        let _lock = self.lock(false)?;
        let lowers = self.lowers_of(parent)?;
        let staged = self.staging()?;
        match (kind, self.backend) {
            (Kind::Active, Backend::Overlay) => {
                for d in ["upper", "work"] {
                    let d = staged.path().join(d);
                    fs::create_dir(&d).map_err(io("create", d))?;
                }
            }
            (Kind::Active, Backend::Native) => copy_tree(&lowers[0], &staged.path().join("fs"))?,
            _ => {}
        }
        let info = Info {
            name: key.to_string(),
            kind,
            parent: parent.map(str::to_string),
            owner: self.owner.as_ref().map(|l| l.id.clone()),
        };
        let info_path = staged.path().join("info");
        fs::write(&info_path, write_info(&info)).map_err(io("write", &info_path))?;
        let target = self.active_path(key);
        if target.exists() {
            return Err(SnapshotError::AlreadyExists(key.to_string()));
        }
        // Appears whole or not at all (a non-empty directory is never
        // replaced by a rename).
        fs::rename(staged.path(), &target).map_err(|e| {
            if target.exists() {
                SnapshotError::AlreadyExists(key.to_string())
            } else {
                io("create snapshot", &target)(e)
            }
        })?;
        let _ = staged.keep();
        self.mounts_of(&info, lowers)
    }

    /// The mounts of active snapshot or view `key`.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let info = self.active_info(key)?;
        let lowers = self.lowers_of(info.parent.as_deref())?;
        self.mounts_of(&info, lowers)
    }

    fn mounts_of(&self, info: &Info, lowers: Vec<PathBuf>) -> Result<Vec<Mount>> {
        let dir = self.active_path(&info.name);
        Ok(vec![match (info.kind, self.backend) {
            (Kind::Active, Backend::Overlay) => {
                Mount::overlay(&lowers, Some((&dir.join("upper"), &dir.join("work"))))
            }
            (Kind::Active, Backend::Native) => Mount::bind(dir.join("fs"), false),
            (_, Backend::Overlay) if lowers.len() > 1 => Mount::overlay(&lowers, None),
            _ => {
                let top = lowers
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| self.dir.join("empty"));
                Mount::bind(top, true)
            }
        }])
    }

    fn active_info(&self, key: &str) -> Result<Info> {
        check_name(key)?;
        let p = self.active_path(key).join("info");
        match fs::read_to_string(&p) {
            Ok(s) => Ok(read_info(key, &s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(SnapshotError::NotFound(key.to_string()))
            }
            Err(e) => Err(io("read", p)(e)),
        }
    }

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

    /// Makes active snapshot `key` committed snapshot `name` (with the
    /// same parent), held by this handle's lease; the key is gone after.
    /// Call with nothing mounted.
    pub fn commit(&self, name: &str, key: &str) -> Result<()> {
        check_name(name)?;
        let _lock = self.lock(false)?;
        let info = self.active_info(key)?;
        if info.kind != Kind::Active {
            return Err(SnapshotError::NotActive(key.to_string()));
        }
        let dir = self.active_path(key);
        let from = match self.backend {
            Backend::Overlay => dir.join("upper"),
            Backend::Native => dir.join("fs"),
        };
        let staged = self.staging()?;
        let to = staged.path().join("fs");
        fs::rename(&from, &to).map_err(io("move", &from))?;
        self.publish(staged, name, info.parent.as_deref())?;
        self.reference(name)?;
        // What is left (overlay's work dir) is small.
        fs::remove_dir_all(&dir).map_err(io("remove", &dir))
    }

    /// Removes active snapshot or view `key` (call with nothing mounted),
    /// or committed snapshot `key` unless something uses it: a child, an
    /// active snapshot or view on it, or a live lease holding it.
    pub fn remove(&self, key: &str) -> Result<()> {
        check_name(key)?;
        let active = self.active_path(key);
        if active.is_dir() {
            // Nothing stands on an active snapshot: no exclusive lock.
            let _lock = self.lock(false)?;
            return fs::remove_dir_all(&active).map_err(io("remove", active));
        }
        let _lock = self.lock(true)?;
        if !self.exists(key) {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        let (leases, actives) = (self.leases()?, self.actives()?);
        let mut users: BTreeMap<String, String> = BTreeMap::new();
        for (id, alive, held) in &leases {
            if *alive {
                for h in held {
                    users.insert(h.clone(), format!("held by lease {id}"));
                }
            }
        }
        for a in &actives {
            if let Some(p) = &a.parent {
                users.insert(p.clone(), format!("parent of {}", a.name));
            }
        }
        for name in self.committed()? {
            if let Ok(Some(p)) = self.parent_of(&name) {
                users.insert(p, format!("parent of {name}"));
            }
        }
        if let Some(by) = users.remove(key) {
            return Err(SnapshotError::InUse {
                name: key.to_string(),
                by,
            });
        }
        self.trash(self.path(key), true);
        Ok(())
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

    fn committed(&self) -> Result<Vec<String>> {
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

    fn actives(&self) -> Result<Vec<Info>> {
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

    /// Every lease: (id, whether its owner lives, what it holds).
    fn leases(&self) -> Result<Vec<(String, bool, Vec<String>)>> {
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

    /// Removes every committed snapshot that is not in `keep` (the caller's
    /// roots: images' and the build cache's chain ids) and not used: held
    /// by a live lease, or a parent (transitively) of a kept one, of an
    /// active snapshot or of a view. Active snapshots and views whose
    /// owning lease is dead go first; those without an owner stay.
    pub fn prune(&self, keep: &BTreeSet<String>) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let mut doomed = Vec::new();
        {
            let _lock = self.lock(true)?;
            let leases = self.leases()?;
            let live: HashSet<&str> = leases
                .iter()
                .filter(|(_, alive, _)| *alive)
                .map(|(id, _, _)| id.as_str())
                .collect();
            let mut roots: BTreeSet<String> = keep.clone();
            for (_, alive, held) in &leases {
                if *alive {
                    roots.extend(held.iter().cloned());
                }
            }
            for a in self.actives()? {
                match &a.owner {
                    Some(o) if !live.contains(o.as_str()) => {
                        let p = self.active_path(&a.name);
                        match fs::remove_dir_all(&p) {
                            Ok(()) => report.abandoned.push(a.name),
                            // Still there: it still holds its parent.
                            Err(e) => {
                                tracing::warn!("remove abandoned snapshot {}: {e}", p.display());
                                roots.extend(a.parent);
                            }
                        }
                    }
                    _ => roots.extend(a.parent),
                }
            }
            let mut reachable = HashSet::new();
            for r in roots {
                let mut cur = Some(r);
                while let Some(c) = cur {
                    if !reachable.insert(c.clone()) {
                        break;
                    }
                    cur = self.parent_of(&c).ok().flatten();
                }
            }
            for name in self.committed()? {
                if !reachable.contains(&name) {
                    // Out of sight under the lock, deleted after it; what
                    // cannot be moved goes now, before a new snapshot of
                    // the same name could appear.
                    match self.to_trash(&self.path(&name)) {
                        Ok(t) => doomed.push(t),
                        Err(_) => self.trash(self.path(&name), true),
                    }
                    report.removed.push(name);
                }
            }
            for (id, alive, _) in &leases {
                if !alive {
                    let p = self.dir.join("leases").join(id);
                    let _ = fs::remove_file(&p);
                }
            }
            // Staging directories are only made under the shared lock:
            // whatever is there now, a dead writer left.
            let tmp = self.dir.join("tmp");
            if let Ok(rd) = fs::read_dir(&tmp) {
                doomed.extend(rd.flatten().map(|e| e.path()));
            }
        }
        for d in doomed {
            if let Err(e) = fs::remove_dir_all(&d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("remove {}: {e}", d.display());
                }
            }
        }
        report.removed.sort();
        Ok(report)
    }

    /// What active snapshot `key` changed against its parent (call with
    /// nothing mounted).
    pub fn diff(&self, key: &str) -> Result<Vec<Change>> {
        let info = self.active_info(key)?;
        if info.kind != Kind::Active {
            return Err(SnapshotError::NotActive(key.to_string()));
        }
        let lowers = self.lowers_of(info.parent.as_deref())?;
        let dir = self.active_path(key);
        let changes = match self.backend {
            Backend::Native => diff_trees(&lowers[0], &dir.join("fs")),
            Backend::Overlay => {
                let at = dir.join("lower");
                let view = match lowers.as_slice() {
                    [one] => mount(&[Mount::bind(one.clone(), true)], &at)?,
                    many => {
                        fs::create_dir_all(&at).map_err(io("create", &at))?;
                        mount(&[Mount::overlay(many, None)], &at)?
                    }
                };
                diff_overlay(view.path(), &dir.join("upper"))
            }
        };
        changes.map_err(io("diff", dir))
    }

    /// The tree a diff's file contents are read from: the upper dir
    /// (overlay) or the whole tree (native) of active snapshot `key`.
    pub fn changes_root(&self, key: &str) -> PathBuf {
        let dir = self.active_path(key);
        match self.backend {
            Backend::Overlay => dir.join("upper"),
            Backend::Native => dir.join("fs"),
        }
    }
}

/// `active/<key>/info`: one `field=value` line each.
fn write_info(info: &Info) -> String {
    let kind = match info.kind {
        Kind::Active => "active",
        Kind::View => "view",
        Kind::Committed => "committed",
    };
    let mut s = format!("kind={kind}\n");
    if let Some(p) = &info.parent {
        s.push_str(&format!("parent={p}\n"));
    }
    if let Some(o) = &info.owner {
        s.push_str(&format!("owner={o}\n"));
    }
    s
}

fn read_info(key: &str, s: &str) -> Info {
    let mut info = Info {
        name: key.to_string(),
        kind: Kind::Active,
        parent: None,
        owner: None,
    };
    for line in s.lines() {
        match line.split_once('=') {
            Some(("kind", "view")) => info.kind = Kind::View,
            Some(("parent", p)) => info.parent = Some(p.to_string()),
            Some(("owner", o)) => info.owner = Some(o.to_string()),
            _ => {}
        }
    }
    info
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
fn discard_in_background(path: PathBuf) {
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
