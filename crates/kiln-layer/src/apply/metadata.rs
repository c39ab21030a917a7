//! Owners, modes, times and extended attributes of what apply creates.

use std::io::Read;
use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs, AtFlags, Mode, Timespec, Timestamps};

use super::root::{errno_io, show};
use super::Applier;
use crate::error::LayerError;

pub(super) fn ts(secs: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Applier<'_> {
    pub(super) fn owner_mode_xattrs(
        &mut self,
        fd: std::os::fd::BorrowedFd<'_>,
        uid: u64,
        gid: u64,
        mode: Option<Mode>,
        xattrs: &Xattrs,
        path: &[u8],
    ) -> Result<(), LayerError> {
        // Owner first: chown clears setuid/setgid, so the mode comes after.
        if self.opts.ownership {
            rfs::fchown(fd, Some(uid_of(uid)), Some(gid_of(gid)))
                .map_err(errno_io(format!("set owner of {}", show(path))))?;
        }
        if let Some(mode) = mode {
            rfs::fchmod(fd, mode).map_err(errno_io(format!("set mode of {}", show(path))))?;
        }
        for (k, v) in xattrs {
            if rfs::fsetxattr(fd, k.as_slice(), v, rfs::XattrFlags::empty()).is_err() {
                self.report.skipped_xattrs += 1;
            }
        }
        Ok(())
    }

    pub(super) fn owner_mode_at(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        uid: u64,
        gid: u64,
        mode: Mode,
        path: &[u8],
    ) -> Result<(), LayerError> {
        if self.opts.ownership {
            rfs::chownat(
                parent,
                name,
                Some(uid_of(uid)),
                Some(gid_of(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(errno_io(format!("set owner of {}", show(path))))?;
        }
        rfs::chmodat(parent, name, mode, AtFlags::empty())
            .map_err(errno_io(format!("set mode of {}", show(path))))
    }

    /// xattrs on something that cannot be opened (symlinks, devices): through
    /// the parent's fd in /proc, so the final component is not followed.
    pub(super) fn set_xattrs_at(&mut self, parent: &OwnedFd, name: &[u8], xattrs: &Xattrs) {
        use std::os::fd::AsRawFd;
        for (k, v) in xattrs {
            let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            p.extend_from_slice(name);
            if rfs::lsetxattr(p.as_slice(), k.as_slice(), v, rfs::XattrFlags::empty()).is_err() {
                self.report.skipped_xattrs += 1;
            }
        }
    }

    pub(super) fn finish_dirs(&mut self) -> Result<(), LayerError> {
        for (path, mtime) in self.dir_times.iter().rev() {
            let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            // A later entry may have replaced the directory: skip it then.
            if let Ok(fd) = self.open_dir(&comps, false) {
                rfs::futimens(&fd, &ts(*mtime))
                    .map_err(errno_io(format!("set times of {}", show(path))))?;
            }
        }
        Ok(())
    }
}

pub(super) fn uid_of(id: u64) -> rfs::Uid {
    rfs::Uid::from_raw(id as u32)
}

pub(super) fn gid_of(id: u64) -> rfs::Gid {
    rfs::Gid::from_raw(id as u32)
}

/// Extended attributes as (name, value) pairs.
pub(super) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// PAX `SCHILY.xattr.*` records of an entry.
pub(super) fn xattrs<R: Read>(entry: &mut tar::Entry<R>) -> Result<Xattrs, LayerError> {
    let mut out = Vec::new();
    if let Some(exts) = entry
        .pax_extensions()
        .map_err(|e| LayerError::BadTar(e.to_string()))?
    {
        for ext in exts {
            let ext = ext.map_err(|e| LayerError::BadTar(e.to_string()))?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}
