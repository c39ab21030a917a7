//! Finding directories inside the root and removing things there.
//!
//! Every parent path is resolved from the root's fd with
//! `openat2(RESOLVE_IN_ROOT)`: `..` and symlinks stay inside it. Removal
//! goes name by name with `*at` calls that never follow a symlink.

use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::Applier;
use crate::error::LayerError;

pub(super) fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

pub(super) fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

pub(super) fn errno_io(context: String) -> impl FnOnce(Errno) -> LayerError {
    move |e| LayerError::Io {
        context,
        source: e.into(),
    }
}

impl Applier<'_> {
    /// Opens a directory inside the root, resolving symlinks and `..`
    /// scoped to the root. With `create`, missing directories are made.
    pub(super) fn open_dir(&self, comps: &[&[u8]], create: bool) -> Result<OwnedFd, LayerError> {
        let how = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let path = if comps.is_empty() {
            b".".to_vec()
        } else {
            join(comps)
        };
        match rfs::openat2(&self.root, path.as_slice(), how, Mode::empty(), resolve) {
            Ok(fd) => Ok(fd),
            Err(Errno::NOENT) if create && !comps.is_empty() => {
                let (last, parent) = comps.split_last().unwrap_or((&comps[0], &[]));
                let parent_fd = self.open_dir(parent, true)?;
                match rfs::mkdirat(&parent_fd, *last, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(errno_io(format!("create directory {}", show(&path)))(e)),
                }
                rfs::openat2(&self.root, path.as_slice(), how, Mode::empty(), resolve).map_err(
                    |e| LayerError::Io {
                        context: format!(
                            "open directory {} (is it a dangling symlink?)",
                            show(&path)
                        ),
                        source: e.into(),
                    },
                )
            }
            Err(Errno::NOTDIR) => Err(LayerError::BadTar(format!(
                "a parent of {} is not a directory",
                show(&path)
            ))),
            Err(e) => Err(errno_io(format!("open directory {}", show(&path)))(e)),
        }
    }
}

pub(super) fn list_dir(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, LayerError> {
    let mut names = Vec::new();
    let mut d = rfs::Dir::read_from(dir).map_err(errno_io("read directory".into()))?;
    while let Some(e) = d.read() {
        let e = e.map_err(errno_io("read directory".into()))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    Ok(names)
}

/// Removes `name` in `dir`, recursively, never following symlinks.
pub(super) fn remove_all(dir: &OwnedFd, name: &[u8]) -> Result<(), LayerError> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno_io(format!("stat {}", show(name)))(e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_io(format!("open {}", show(name))))?;
        for child in list_dir(&sub)? {
            remove_all(&sub, &child)?;
        }
        rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
            .map_err(errno_io(format!("remove {}", show(name))))
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())
            .map_err(errno_io(format!("remove {}", show(name))))
    }
}
