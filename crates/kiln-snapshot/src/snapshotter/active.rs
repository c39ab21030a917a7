//! Active snapshots and views: prepare, view, mounts, commit, remove,
//! and what an active snapshot changed.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use kiln_layer::{diff_overlay, diff_trees, Change};

use super::trees::copy_tree;
use super::{check_name, Backend, Info, Kind, Snapshotter};
use crate::error::{io, Result, SnapshotError};
use crate::mount::{mount, Mount};

impl Snapshotter {
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

    pub(super) fn active_info(&self, key: &str) -> Result<Info> {
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
        let from = self.changes_root(key);
        let staged = self.staging()?;
        let to = staged.path().join("fs");
        fs::rename(&from, &to).map_err(io("move", &from))?;
        self.carry_copied(key, staged.path())?;
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

    /// What committed snapshot `name` changed on its parent: what
    /// [`Snapshotter::diff`] gave for the active snapshot it was committed
    /// from (the same files against the same lowers), read from
    /// [`Snapshotter::committed_changes_root`]. For a snapshot committed
    /// without a layer (a build's intermediate stage) whose layer is
    /// wanted later.
    pub fn diff_committed(&self, name: &str) -> Result<Vec<Change>> {
        if !self.exists(name) {
            return Err(SnapshotError::NotFound(name.to_string()));
        }
        let lowers = self.lowers_of(self.parent_of(name)?.as_deref())?;
        let own = self.path(name).join("fs");
        let changes = match self.backend {
            Backend::Native => diff_trees(&lowers[0], &own),
            Backend::Overlay => {
                // The lowers mounted in staging; unmounted (the view
                // dropped) before the staging directory goes.
                let staged = self.staging()?;
                let at = staged.path().join("lower");
                let view = match lowers.as_slice() {
                    [one] => mount(&[Mount::bind(one.clone(), true)], &at)?,
                    many => {
                        fs::create_dir_all(&at).map_err(io("create", &at))?;
                        mount(&[Mount::overlay(many, None)], &at)?
                    }
                };
                let changes = diff_overlay(view.path(), &own);
                drop(view);
                changes
            }
        };
        changes.map_err(io("diff", own))
    }

    /// The tree [`Snapshotter::diff_committed`]'s file contents are read
    /// from: the snapshot's own directory.
    pub fn committed_changes_root(&self, name: &str) -> PathBuf {
        self.path(name).join("fs")
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
