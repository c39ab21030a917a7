//! Linking instead of copying, for [`apply_local_linked`](super::apply_local_linked):
//! a local file whose source and target metadata are the same as a file an
//! earlier apply wrote into a now-committed (immutable) snapshot is
//! hard-linked from there into the overlay's upper directory, instead of
//! being created, copied and given its times. A build's second `COPY src/`
//! of the same context (another stage, or the next build after a one-file
//! change) then writes no file data at all.
//!
//! Why it gives the same layer: the layer tar records type, owner, mode,
//! size, whole-second mtime, xattrs and contents, and the linked file has
//! all of them as a fresh copy would (checked on the candidate before
//! linking: owner, mode, mtime, size, no xattrs; contents follow from the
//! source's identity — dev, inode, size, mtime and ctime in ns). The tar
//! writer emits `Link` entries only for inodes met twice in one walk, so
//! an apply links one candidate inode at most once.
//!
//! Why it goes to the upper directory: `link(2)` across mounts is EXDEV,
//! and the root is an overlay mount. A parent that resolves in the upper
//! directory without symlinks is the very directory the overlay writes
//! into, so the file lands where the overlay would have put it. The
//! overlay may have cached the name as absent (the apply stat-ed it), so a
//! later entry at a linked path (or below it) removes the link in the
//! upper directory first.
//!
//! What an apply wrote where (source key → path in the upper directory)
//! is reported, so the caller can keep it with the committed snapshot for
//! later applies; a path replaced or removed later in the same apply is
//! dropped from it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::local::LocalFile;
use super::root::join;
use crate::error::LayerError;

/// Where [`apply_local_linked`](super::apply_local_linked) writes links
/// and what it may link from.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    /// The overlay upper directory behind the root being applied to.
    pub upper: &'a Path,
    /// Files earlier applies wrote into committed snapshots, by
    /// [`link key`](LinkState::key) (as reported in
    /// [`ApplyReport::written`](super::ApplyReport::written)).
    pub known: &'a HashMap<String, PathBuf>,
}

/// A parent's upper directory, if it resolves there without symlinks,
/// and whether files may be linked into it.
type UpperParent = Option<(OwnedFd, bool)>;

/// One apply's linking state.
pub(super) struct LinkState<'a> {
    known: &'a HashMap<String, PathBuf>,
    upper: OwnedFd,
    /// The upper directory of the previous entry's parent, if it resolves
    /// there without symlinks, and whether files may be linked into it (no
    /// default ACL, which a new file would inherit).
    parent: Option<(Vec<u8>, UpperParent)>,
    /// Candidate keys linked in this apply (each inode once per layer).
    used: HashSet<String>,
    /// Paths linked in this apply, which the overlay may not see yet.
    linked: HashSet<Vec<u8>>,
    /// Path → key of the local files this apply wrote.
    pub(super) written: BTreeMap<Vec<u8>, String>,
    pub(super) count: u64,
}

impl<'a> LinkState<'a> {
    pub(super) fn new(links: Links<'a>) -> Result<LinkState<'a>, LayerError> {
        let upper = rfs::open(
            links.upper,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| LayerError::io(format!("open {}", links.upper.display()))(e.into()))?;
        Ok(LinkState {
            known: links.known,
            upper,
            parent: None,
            used: HashSet::new(),
            linked: HashSet::new(),
            written: BTreeMap::new(),
            count: 0,
        })
    }

    /// The key of a local file (its source's identity and the metadata
    /// the entry gives it), and its size.
    pub(super) fn key(
        src: &LocalFile,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: i64,
    ) -> Option<(String, u64)> {
        let st = rfs::fstat(&src.file).ok()?;
        let key = format!(
            "{}:{}:{}:{}.{}:{}.{}:{:o}:{}:{}:{}",
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime,
            st.st_mtime_nsec,
            st.st_ctime,
            st.st_ctime_nsec,
            mode,
            uid,
            gid,
            mtime
        );
        Some((key, st.st_size as u64))
    }

    /// Before an entry at `comps` is written: a link this apply made at it
    /// or at one of its parents goes (the overlay would not see it), and
    /// what was recorded there or below is forgotten (it is being
    /// replaced). `existed`: something was at the path.
    pub(super) fn before_entry(
        &mut self,
        comps: &[&[u8]],
        existed: bool,
    ) -> Result<(), LayerError> {
        let depth = if self.linked.is_empty() {
            0
        } else {
            comps.len()
        };
        for n in 1..=depth {
            let p = join(&comps[..n]);
            if self.linked.remove(&p) {
                rfs::unlinkat(&self.upper, p.as_slice(), AtFlags::empty()).map_err(|e| {
                    LayerError::io(format!("remove the link {}", String::from_utf8_lossy(&p)))(
                        e.into(),
                    )
                })?;
                self.parent = None;
                self.forget(&p);
            }
        }
        if existed {
            self.forget(&join(comps));
        }
        Ok(())
    }

    /// Forgets what was written at `path` and below (a whiteout or a
    /// replacement removed it).
    pub(super) fn forget(&mut self, path: &[u8]) {
        self.written.remove(path);
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        let below: Vec<Vec<u8>> = self
            .written
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.written.remove(&k);
        }
    }

    /// Forgets everything written so far (a whiteout: rare in a COPY).
    pub(super) fn forget_all(&mut self) {
        self.written.clear();
        self.parent = None;
    }

    /// The upper directory of `parent` (resolved there without symlinks),
    /// and whether linking into it is allowed.
    fn upper_parent(&mut self, parent: &[&[u8]]) -> Option<(&OwnedFd, bool)> {
        let key = join(parent);
        if self.parent.as_ref().is_none_or(|(k, _)| *k != key) {
            let path = if parent.is_empty() {
                b".".to_vec()
            } else {
                key.clone()
            };
            let fd = rfs::openat2(
                &self.upper,
                path.as_slice(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
            .ok();
            let resolved = fd.map(|fd| {
                // A default ACL would give a new file an ACL the linked
                // one does not have.
                let mut v = [0u8; 0];
                let acl = rfs::fgetxattr(&fd, "system.posix_acl_default", &mut v);
                let ok = matches!(acl, Err(Errno::NODATA | Errno::NOTSUP));
                (fd, ok)
            });
            self.parent = Some((key, resolved));
        }
        self.parent
            .as_ref()
            .and_then(|(_, r)| r.as_ref())
            .map(|(fd, ok)| (fd, *ok))
    }

    /// Links the candidate for `key` at `parent/name` when there is one
    /// whose metadata is what the entry asks for; whether it did.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn try_link(
        &mut self,
        parent: &[&[u8]],
        name: &[u8],
        key: &str,
        size: u64,
        (mode, uid, gid, mtime): (u32, u64, u64, i64),
    ) -> bool {
        if self.used.contains(key) {
            return false;
        }
        let Some(candidate) = self.known.get(key) else {
            return false;
        };
        let Ok(st) = rfs::statat(rfs::CWD, candidate, AtFlags::SYMLINK_NOFOLLOW) else {
            return false;
        };
        let same = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
            && st.st_size as u64 == size
            && st.st_mode & 0o7777 == mode & 0o7777
            && u64::from(st.st_uid) == uid
            && u64::from(st.st_gid) == gid
            && st.st_mtime == mtime
            && st.st_mtime_nsec == 0;
        if !same || has_xattrs(candidate) {
            return false;
        }
        let Some((dir, ok)) = self.upper_parent(parent) else {
            return false;
        };
        if !ok {
            return false;
        }
        if rfs::linkat(rfs::CWD, candidate, dir, name, AtFlags::empty()).is_err() {
            return false;
        }
        let mut path = join(parent);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        self.used.insert(key.to_string());
        self.linked.insert(path.clone());
        self.written.insert(path, key.to_string());
        self.count += 1;
        true
    }

    /// Records a local file the apply copied at `parent/name`, when its
    /// parent resolves in the upper directory (so the path is where the
    /// committed snapshot holds it).
    pub(super) fn copied(&mut self, parent: &[&[u8]], name: &[u8], key: String) {
        if self.upper_parent(parent).is_none_or(|(_, ok)| !ok) {
            return;
        }
        let mut path = join(parent);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        self.written.insert(path, key);
    }
}

/// Whether `path` carries extended attributes other than overlayfs' own.
fn has_xattrs(path: &Path) -> bool {
    let mut names = vec![0u8; 1024];
    match rfs::llistxattr(path, &mut names[..]) {
        Ok(n) => names[..n]
            .split(|&b| b == 0)
            .any(|n| !n.is_empty() && !crate::fsmeta::is_overlay_xattr(n)),
        Err(Errno::NOTSUP) => false,
        Err(_) => true,
    }
}
