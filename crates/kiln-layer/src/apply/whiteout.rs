//! OCI whiteouts: `.wh.NAME` removes NAME from lower layers and
//! `.wh..wh..opq` hides a directory's lower contents, sparing what the same
//! layer created; or, in overlay mode, the overlayfs form of both.

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use super::root::{errno_io, join, list_dir, remove_all, show};
use super::Applier;
use crate::error::LayerError;

const OPAQUE: &[u8] = b".wh..wh..opq";
pub(super) const WHITEOUT_PREFIX: &[u8] = b".wh.";

impl Applier<'_> {
    pub(super) fn whiteout(&mut self, parent: &[&[u8]], name: &[u8]) -> Result<(), LayerError> {
        self.report.whiteouts += 1;
        self.parent_cache = None;
        if self.opts.overlay_whiteouts {
            return self.overlay_whiteout(parent, name);
        }
        let parent_fd = match self.open_dir(parent, false) {
            Ok(fd) => fd,
            // Nothing below to hide.
            Err(LayerError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        if name == OPAQUE {
            return self.prune_lower(&parent_fd, &join(parent));
        }
        match self.whiteout_target(parent, name)? {
            Some(target) => remove_all(&parent_fd, target),
            None => Ok(()),
        }
    }

    /// The name a `.wh.NAME` whiteout hides, or `None` when there is
    /// nothing to do: aufs bookkeeping (`.wh..wh.plnk` etc.), or a file the
    /// same layer created (a layer never whites out its own files).
    fn whiteout_target<'n>(
        &self,
        parent: &[&[u8]],
        name: &'n [u8],
    ) -> Result<Option<&'n [u8]>, LayerError> {
        if name.starts_with(b".wh..wh.") {
            return Ok(None);
        }
        let target = &name[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
            return Err(LayerError::BadTar(format!(
                "invalid whiteout {:?}",
                show(name)
            )));
        }
        let full = child_path(&join(parent), target);
        Ok((!self.created.contains(&full)).then_some(target))
    }

    /// A whiteout kept as overlayfs writes it (see
    /// [`ApplyOptions::overlay_whiteouts`]).
    fn overlay_whiteout(&mut self, parent: &[&[u8]], name: &[u8]) -> Result<(), LayerError> {
        let parent_fd = self.open_dir(parent, true)?;
        if name == OPAQUE {
            return rfs::fsetxattr(
                &parent_fd,
                "trusted.overlay.opaque",
                b"y",
                rfs::XattrFlags::empty(),
            )
            .map_err(errno_io(format!("mark {} opaque", show(&join(parent)))));
        }
        let Some(target) = self.whiteout_target(parent, name)? else {
            return Ok(());
        };
        rfs::mknodat(
            &parent_fd,
            target,
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .map_err(errno_io(format!(
            "create whiteout for {} in /{}",
            show(target),
            show(&join(parent))
        )))
    }

    /// Opaque directory: removes everything below `dir` that this layer did
    /// not create, descending into the directories it did create.
    fn prune_lower(&self, dir: &OwnedFd, dir_path: &[u8]) -> Result<(), LayerError> {
        for child in list_dir(dir)? {
            let p = child_path(dir_path, &child);
            if !self.created.contains(&p) {
                remove_all(dir, &child)?;
                continue;
            }
            let st = rfs::statat(dir, child.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno_io(format!("stat {}", show(&p))))?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let sub = rfs::openat(
                    dir,
                    child.as_slice(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno_io(format!("open {}", show(&p))))?;
                self.prune_lower(&sub, &p)?;
            }
        }
        Ok(())
    }
}

/// The path (joined with '/', as in `Applier::created`) of `name` in `dir`.
fn child_path(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}
