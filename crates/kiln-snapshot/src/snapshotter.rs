//! The snapshotter: committed snapshots by id, active ones on top.

use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_layer::{apply, diff_overlay, diff_trees, ApplyOptions, Change};

use crate::error::{io, Result, SnapshotError};
use crate::mount::Mounted;

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
            let m = Mounted::overlay(
                &t.path().join("m"),
                &[t.path().join("l")],
                Some((&t.path().join("u"), &t.path().join("w"))),
            )?;
            drop(m);
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
}

/// Committed snapshots under `<root>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    backend: Backend,
}

/// A writable snapshot over a committed parent.
#[derive(Debug)]
pub struct Active {
    dir: tempfile::TempDir,
    parent: Option<String>,
    /// Top first: the parent's chain (overlay) or the parent's full tree
    /// (native, one entry).
    lowers: Vec<PathBuf>,
    backend: Backend,
}

impl Snapshotter {
    /// Opens (creating) the snapshots of a store. Committed snapshots of
    /// one backend mean nothing to the other, so the backend is recorded
    /// and a different one refused.
    pub fn open(store_root: &Path, backend: Backend) -> Result<Snapshotter> {
        let dir = store_root.join("snapshots");
        for d in [
            dir.join("active"),
            dir.join("empty"),
            dir.join("tmp"),
            dir.join("trash"),
        ] {
            fs::create_dir_all(&d).map_err(io("create", &d))?;
        }
        // What a killed kiln left in the trash goes now, in the background.
        if let Ok(entries) = fs::read_dir(dir.join("trash")) {
            for e in entries.flatten() {
                discard_in_background(e.path());
            }
        }
        let marker = dir.join("backend");
        let name = match backend {
            Backend::Overlay => "overlay",
            Backend::Native => "native",
        };
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
        Ok(Snapshotter { dir, backend })
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

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn exists(&self, id: &str) -> bool {
        self.path(id).join("fs").is_dir()
    }

    pub fn parent_of(&self, id: &str) -> Result<Option<String>> {
        let p = self.path(id).join("parent");
        match fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.exists(id) {
                    Ok(None)
                } else {
                    Err(SnapshotError::NotFound(id.to_string()))
                }
            }
            Err(e) => Err(io("read", p)(e)),
        }
    }

    /// The directories that make up `id`, top first.
    fn lowers(&self, id: &str) -> Result<Vec<PathBuf>> {
        if !self.exists(id) {
            return Err(SnapshotError::NotFound(id.to_string()));
        }
        if self.backend == Backend::Native {
            return Ok(vec![self.path(id).join("fs")]);
        }
        let mut out = vec![self.path(id).join("fs")];
        let mut cur = self.parent_of(id)?;
        while let Some(p) = cur {
            out.push(self.path(&p).join("fs"));
            cur = self.parent_of(&p)?;
        }
        Ok(out)
    }

    /// A fresh directory under `snapshots/tmp` that is renamed into place.
    fn staging(&self) -> Result<tempfile::TempDir> {
        let tmp = self.dir.join("tmp");
        tempfile::Builder::new()
            .tempdir_in(&tmp)
            .map_err(io("create", &tmp))
    }

    /// Moves a staged `<dir>/fs` into place as `id`. Someone else having
    /// committed the same id first is fine: same id, same content.
    fn publish(&self, staged: tempfile::TempDir, id: &str, parent: Option<&str>) -> Result<()> {
        if let Some(p) = parent {
            let f = staged.path().join("parent");
            fs::write(&f, p).map_err(io("write", f))?;
        }
        let target = self.path(id);
        match fs::rename(staged.path(), &target) {
            Ok(()) => {
                // The TempDir would delete the renamed path's old name: no-op.
                let _ = staged.keep();
                Ok(())
            }
            Err(_) if self.exists(id) => {
                // Same content committed already (a --no-cache rebuild, a
                // parallel twin): the copy goes, but deleting thousands of
                // files is not this step's business. It moves to the trash
                // and is deleted off the build's critical path.
                let path = staged.keep();
                let trash = self.dir.join("trash").join(
                    path.file_name()
                        .map(|n| n.to_os_string())
                        .unwrap_or_else(|| id.into()),
                );
                match fs::rename(&path, &trash) {
                    Ok(()) => discard_in_background(trash),
                    Err(_) => discard_in_background(path),
                }
                Ok(())
            }
            Err(e) => Err(io("commit snapshot", target)(e)),
        }
    }

    /// Creates committed snapshot `id` = `parent` + the layer.
    pub fn unpack(&self, id: &str, parent: Option<&str>, layer: impl BufRead + Send) -> Result<()> {
        let staged = self.staging()?;
        let fs_dir = staged.path().join("fs");
        let mut opts = ApplyOptions::for_current_user();
        match (self.backend, parent) {
            (Backend::Native, Some(p)) => copy_tree(&self.lowers(p)?[0], &fs_dir)?,
            _ => fs::create_dir(&fs_dir).map_err(io("create", &fs_dir))?,
        }
        opts.overlay_whiteouts = self.backend == Backend::Overlay;
        // Layers come from the store, verified when they entered it (and
        // their diff_ids checked on load/pull): no second hash here.
        opts.diff_id = false;
        apply(layer, &fs_dir, &opts)?;
        self.publish(staged, id, parent)
    }

    /// A writable snapshot on `parent` (or on nothing).
    pub fn prepare(&self, parent: Option<&str>) -> Result<Active> {
        let active = self.dir.join("active");
        let dir = tempfile::Builder::new()
            .tempdir_in(&active)
            .map_err(io("create", &active))?;
        let lowers = match parent {
            Some(p) => self.lowers(p)?,
            None => vec![self.dir.join("empty")],
        };
        match self.backend {
            Backend::Overlay => {
                for d in ["upper", "work", "merged", "lower"] {
                    fs::create_dir(dir.path().join(d)).map_err(io("create", dir.path()))?;
                }
            }
            Backend::Native => copy_tree(&lowers[0], &dir.path().join("merged"))?,
        }
        Ok(Active {
            dir,
            parent: parent.map(str::to_string),
            lowers,
            backend: self.backend,
        })
    }

    /// A read-only view of a committed snapshot.
    pub fn view(&self, id: &str, at: &Path) -> Result<Mounted> {
        let lowers = self.lowers(id)?;
        match (self.backend, lowers.as_slice()) {
            (Backend::Native, _) | (_, [_]) => Ok(Mounted::plain(lowers[0].clone())),
            _ => Mounted::overlay(at, &lowers, None),
        }
    }

    /// Makes the active snapshot's content committed snapshot `id`.
    pub fn commit(&self, active: Active, id: &str) -> Result<()> {
        let staged = self.staging()?;
        let from = match active.backend {
            Backend::Overlay => active.dir.path().join("upper"),
            Backend::Native => active.dir.path().join("merged"),
        };
        let to = staged.path().join("fs");
        fs::rename(&from, &to).map_err(io("move", &from))?;
        self.publish(staged, id, active.parent.as_deref())
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let p = self.path(id);
        fs::remove_dir_all(&p).map_err(io("remove", p))
    }

    /// Committed snapshot ids.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io("list", &self.dir))? {
            let e = e.map_err(io("list", &self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !matches!(
                name.as_str(),
                "active" | "empty" | "tmp" | "trash" | "backend"
            ) && self.exists(&name)
            {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

impl Active {
    /// The root filesystem to run in, mounted while the result lives.
    pub fn mount(&self) -> Result<Mounted> {
        let merged = self.dir.path().join("merged");
        match self.backend {
            Backend::Native => Ok(Mounted::plain(merged)),
            Backend::Overlay => Mounted::overlay(
                &merged,
                &self.lowers,
                Some((
                    &self.dir.path().join("upper"),
                    &self.dir.path().join("work"),
                )),
            ),
        }
    }

    /// What changed against the parent (call with nothing mounted).
    pub fn diff(&self) -> Result<Vec<Change>> {
        let changes = match self.backend {
            Backend::Native => diff_trees(&self.lowers[0], &self.dir.path().join("merged")),
            Backend::Overlay => {
                let lower_at = self.dir.path().join("lower");
                let view = match self.lowers.as_slice() {
                    [one] => Mounted::plain(one.clone()),
                    many => Mounted::overlay(&lower_at, many, None)?,
                };
                diff_overlay(view.path(), &self.dir.path().join("upper"))
            }
        };
        changes.map_err(io("diff", self.dir.path()))
    }

    /// The tree the changes are relative to, for reading file contents of
    /// a diff: the upper dir (overlay) or the merged tree (native).
    pub fn changes_root(&self) -> PathBuf {
        match self.backend {
            Backend::Overlay => self.dir.path().join("upper"),
            Backend::Native => self.dir.path().join("merged"),
        }
    }

    /// The parent's tree top directory (for diffs and layer writing).
    pub fn lower_dirs(&self) -> &[PathBuf] {
        &self.lowers
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
