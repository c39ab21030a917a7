//! What changed between a lower tree and an upper one, as `docker diff`
//! lists it (A/C/D) and as a layer records it.
//!
//! Two sources, one answer: [`diff_trees`] compares two full trees (the copy
//! snapshotter), [`diff_overlay`] reads an overlayfs upper directory
//! (whiteout devices, opaque directories) and only looks at what it holds.
//! Both compute the same change set — every path whose state differs, the
//! top-most deleted paths, and the ancestors of every change — so the same
//! change gives the same layer whichever snapshotter made it. Overlay
//! copy-ups that changed nothing are dropped, and an opaque directory is
//! turned into explicit whiteouts of what it hid.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsmeta::{is_opaque, is_whiteout, same};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One changed path, relative to the root (no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: PathBuf,
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    /// `docker diff`'s line: `A /etc/motd`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self.kind {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'C',
            ChangeKind::Deleted => 'D',
        };
        write!(f, "{c} /{}", self.path.display())
    }
}

/// Collects changes keyed by path components (so parents sort first).
#[derive(Default)]
struct ChangeSet(BTreeMap<Vec<Vec<u8>>, ChangeKind>);

fn key(p: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    p.components()
        .map(|c| c.as_os_str().as_bytes().to_vec())
        .collect()
}

impl ChangeSet {
    fn add(&mut self, path: PathBuf, kind: ChangeKind) {
        self.0.insert(key(&path), kind);
    }

    /// Adds every ancestor of a change as modified (or added, if new).
    fn finish(mut self, lower: &Path) -> Vec<Change> {
        let paths: Vec<Vec<Vec<u8>>> = self.0.keys().cloned().collect();
        for p in paths {
            for i in 1..p.len() {
                let anc = p[..i].to_vec();
                if let std::collections::btree_map::Entry::Vacant(slot) = self.0.entry(anc) {
                    let rel = to_path(slot.key());
                    let kind = if fs::symlink_metadata(lower.join(&rel)).is_ok() {
                        ChangeKind::Modified
                    } else {
                        ChangeKind::Added
                    };
                    slot.insert(kind);
                }
            }
        }
        self.0
            .into_iter()
            .map(|(k, kind)| Change {
                path: to_path(&k),
                kind,
            })
            .collect()
    }
}

fn to_path(parts: &[Vec<u8>]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    parts
        .iter()
        .map(|p| std::ffi::OsStr::from_bytes(p))
        .collect()
}

fn children(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names: Vec<_> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    names.sort();
    Ok(names)
}

/// The upper side must exist (a missing lower is an empty one): a typo in
/// a path must not quietly become an empty layer.
fn require_dir(upper: &Path) -> io::Result<()> {
    match fs::metadata(upper) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", upper.display()),
        )),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{}: {e}", upper.display()),
        )),
    }
}

/// Changes from `lower` to `upper`, two complete trees.
pub fn diff_trees(lower: &Path, upper: &Path) -> io::Result<Vec<Change>> {
    require_dir(upper)?;
    let mut set = ChangeSet::default();
    compare_dirs(lower, upper, Path::new(""), &mut set, false)?;
    Ok(set.finish(lower))
}

/// Changes recorded in an overlayfs upper directory over `lower` (the
/// merged lower layers).
pub fn diff_overlay(lower: &Path, upper: &Path) -> io::Result<Vec<Change>> {
    require_dir(upper)?;
    let mut set = ChangeSet::default();
    walk_upper(lower, upper, Path::new(""), &mut set)?;
    Ok(set.finish(lower))
}

/// Full comparison of `lower/rel` and `upper/rel` (both directories).
/// `skip_whiteouts`: inside an opaque overlay directory, leftover whiteout
/// devices mean "absent".
fn compare_dirs(
    lower: &Path,
    upper: &Path,
    rel: &Path,
    set: &mut ChangeSet,
    skip_whiteouts: bool,
) -> io::Result<()> {
    let (ld, ud) = (lower.join(rel), upper.join(rel));
    let lower_dir = fs::symlink_metadata(&ld)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    let upper_names = children(&ud)?;
    let mut present = std::collections::HashSet::new();
    for name in &upper_names {
        let r = rel.join(name);
        let um = fs::symlink_metadata(upper.join(&r))?;
        if skip_whiteouts && is_whiteout(&um) {
            continue;
        }
        present.insert(name.clone());
        let lm = if lower_dir {
            fs::symlink_metadata(lower.join(&r)).ok()
        } else {
            None
        };
        match lm {
            None => {
                set.add(r.clone(), ChangeKind::Added);
                if um.is_dir() {
                    compare_dirs(lower, upper, &r, set, skip_whiteouts)?;
                }
            }
            Some(lm) => {
                if !same(&lower.join(&r), &lm, &upper.join(&r), &um)? {
                    set.add(r.clone(), ChangeKind::Modified);
                }
                if um.is_dir() {
                    compare_dirs(lower, upper, &r, set, skip_whiteouts)?;
                }
            }
        }
    }
    if lower_dir {
        for name in children(&ld)? {
            if !present.contains(&name) {
                set.add(rel.join(&name), ChangeKind::Deleted);
            }
        }
    }
    Ok(())
}

fn walk_upper(lower: &Path, upper: &Path, rel: &Path, set: &mut ChangeSet) -> io::Result<()> {
    for name in children(&upper.join(rel))? {
        let r = rel.join(&name);
        let up = upper.join(&r);
        let um = fs::symlink_metadata(&up)?;
        let lm = fs::symlink_metadata(lower.join(&r)).ok();
        if is_whiteout(&um) {
            if lm.is_some() {
                set.add(r, ChangeKind::Deleted);
            }
            continue;
        }
        match &lm {
            None => set.add(r.clone(), ChangeKind::Added),
            Some(lm) if !same(&lower.join(&r), lm, &up, &um)? => {
                set.add(r.clone(), ChangeKind::Modified)
            }
            Some(_) => {}
        }
        if um.is_dir() {
            if is_opaque(&up) || lm.as_ref().is_some_and(|m| !m.is_dir()) {
                // Everything below replaces the lower directory: compare in full.
                compare_dirs(lower, upper, &r, set, true)?;
            } else {
                walk_upper(lower, upper, &r, set)?;
            }
        }
    }
    Ok(())
}
