//! Writing one tar entry in place of whatever the directory held there.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::link::LinkState;
use super::local::{copy_file, local_id, LOCAL_FILE_PAX};
use super::metadata::{gid_of, ts, uid_of, xattrs};
use super::root::{errno_io, join, remove_all, show};
use super::whiteout::WHITEOUT_PREFIX;
use super::Applier;
use crate::check::clean_entry_path;
use crate::error::LayerError;

impl Applier<'_> {
    pub(super) fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), LayerError> {
        let raw = entry.path_bytes().into_owned();
        let comps =
            clean_entry_path(&raw).ok_or_else(|| LayerError::Escape { path: show(&raw) })?;
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // the root itself: its metadata belongs to the caller
        };
        let path = join(&comps);
        if name.starts_with(WHITEOUT_PREFIX) {
            if let Some(l) = &mut self.link {
                l.forget_all();
            }
            return self.whiteout(parent, name);
        }
        if let Some(l) = &mut self.link {
            // A link at this path (or a parent) is invisible to the
            // overlay: it goes before anything else happens there.
            l.before_entry(&comps, false)?;
        }
        let kind = entry.header().entry_type();
        let parent_key = join(parent);
        let (parent_fd, parent_setgid) = match self.parent_cache.take() {
            Some((key, fd, setgid)) if key == parent_key => (fd, setgid),
            _ => {
                let fd = self.open_dir(parent, true)?;
                // Files made in a setgid directory take its group: known
                // once per directory, it lets a new file skip its chown.
                let setgid = rfs::fstat(&fd)
                    .map(|st| st.st_mode & 0o2000 != 0)
                    .unwrap_or(true);
                (fd, setgid)
            }
        };
        // Replace whatever is there, never following it; a directory stays
        // a directory (its lower contents merge).
        let mut removed = false;
        match rfs::statat(&parent_fd, *name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                if let Some(l) = &mut self.link {
                    l.forget(&path);
                }
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if !(is_dir && kind.is_dir()) {
                    remove_all(&parent_fd, name)?;
                    removed = true;
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(errno_io(format!("stat {}", show(&path)))(e)),
        }
        let xattrs = xattrs(entry)?;
        let header = entry.header();
        let mode = Mode::from_raw_mode(
            header
                .mode()
                .map_err(|e| LayerError::BadTar(e.to_string()))?
                & 0o7777,
        );
        let uid = header
            .uid()
            .map_err(|e| LayerError::BadTar(e.to_string()))?;
        let gid = header
            .gid()
            .map_err(|e| LayerError::BadTar(e.to_string()))?;
        let mtime = header
            .mtime()
            .map_err(|e| LayerError::BadTar(e.to_string()))? as i64;
        let io_err = |what: &str| errno_io(format!("{what} {}", show(&path)));

        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let local = local_id(entry)
                    .map_err(|e| LayerError::BadTar(format!("{}: {e}", show(&path))))?;
                let src = match (local, self.local) {
                    (Some(id), Some(open)) => Some(open(id).map_err(LayerError::io(format!(
                        "open the source of {}",
                        show(&path)
                    )))?),
                    (Some(_), None) => {
                        return Err(LayerError::BadTar(format!(
                            "{}: carries kiln's local-file marker ({LOCAL_FILE_PAX}), which only kiln's own COPY streams may use",
                            show(&path)
                        )))
                    }
                    (None, _) => None,
                };
                // A local file with a twin in a committed snapshot is
                // linked from there (`link`); else copied, and recorded.
                let link_key = match (&src, &self.link) {
                    (Some(src), Some(_)) if xattrs.is_empty() => {
                        LinkState::key(src, mode.as_raw_mode(), uid, gid, mtime)
                    }
                    _ => None,
                };
                if let (Some((key, size)), Some(l)) = (&link_key, &mut self.link) {
                    let meta = (mode.as_raw_mode(), uid, gid, mtime);
                    if !removed && l.try_link(parent, name, key, *size, meta) {
                        self.created.insert(path);
                        self.parent_cache = Some((parent_key, parent_fd, parent_setgid));
                        return Ok(());
                    }
                }
                // A new file is created with its final mode when the umask
                // leaves that mode whole (and it has no setuid, setgid or
                // sticky bit, which chown would clear), and is already
                // owned by us unless a setgid directory gives it another
                // group: then no fchmod or fchown is needed (two of the
                // three metadata calls per file a COPY of thousands paid).
                let mode_at_create = self
                    .umask
                    .is_some_and(|u| mode.as_raw_mode() & (0o7000 | u) == 0);
                let owned_at_create = !self.opts.ownership
                    || (!parent_setgid
                        && (uid, gid) == (u64::from(self.ids.0), u64::from(self.ids.1)));
                let create_mode = if mode_at_create {
                    mode
                } else {
                    Mode::from_raw_mode(0o600)
                };
                let fd =
                    rfs::openat(&parent_fd, *name, flags, create_mode).map_err(io_err("create"))?;
                let mut file = File::from(fd);
                match src {
                    Some(src) => {
                        copy_file(&src, &mut file, &mut self.buf, &mut self.route)
                            .map_err(LayerError::io(format!("copy into {}", show(&path))))?;
                    }
                    None => loop {
                        let n = entry
                            .read(&mut self.buf)
                            .map_err(|e| LayerError::BadTar(format!("{}: {e}", show(&path))))?;
                        if n == 0 {
                            break;
                        }
                        file.write_all(&self.buf[..n])
                            .map_err(LayerError::io(format!("write {}", show(&path))))?;
                    },
                }
                if mode_at_create && owned_at_create && xattrs.is_empty() {
                    // Nothing to change.
                } else {
                    // chown clears only setuid/setgid, which a mode set at
                    // creation never has.
                    let set_mode = (!mode_at_create).then_some(mode);
                    self.owner_mode_xattrs(file.as_fd(), uid, gid, set_mode, &xattrs, &path)?;
                }
                rfs::futimens(&file, &ts(mtime)).map_err(io_err("set times of"))?;
                if let (Some((key, _)), Some(l)) = (link_key, &mut self.link) {
                    l.copied(parent, name, key);
                }
            }
            tar::EntryType::Directory => {
                match rfs::mkdirat(&parent_fd, *name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_err("create directory")(e)),
                }
                let dir = rfs::openat(
                    &parent_fd,
                    *name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open directory"))?;
                self.owner_mode_xattrs(dir.as_fd(), uid, gid, Some(mode), &xattrs, &path)?;
                self.dir_times.push((path.clone(), mtime));
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    LayerError::BadTar(format!("symlink {} has no target", show(&path)))
                })?;
                rfs::symlinkat(target.as_ref(), &parent_fd, *name)
                    .map_err(io_err("create symlink"))?;
                if self.opts.ownership {
                    rfs::chownat(
                        &parent_fd,
                        *name,
                        Some(uid_of(uid)),
                        Some(gid_of(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(io_err("set owner of"))?;
                }
                self.set_xattrs_at(&parent_fd, name, &xattrs);
                rfs::utimensat(&parent_fd, *name, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("set times of"))?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    LayerError::BadTar(format!("hard link {} has no target", show(&path)))
                })?;
                let tcomps = clean_entry_path(&target).ok_or_else(|| LayerError::Escape {
                    path: show(&target),
                })?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(LayerError::BadTar(format!(
                        "hard link {} points at the root",
                        show(&path)
                    )));
                };
                let tparent_fd = self.open_dir(tparent, false)?;
                // linkat without AT_SYMLINK_FOLLOW links the entry itself,
                // never what a symlink points at.
                rfs::linkat(&tparent_fd, *tname, &parent_fd, *name, AtFlags::empty()).map_err(
                    |e| LayerError::Io {
                        context: format!("hard link {} to {}", show(&path), show(&target)),
                        source: e.into(),
                    },
                )?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                if file_type != FileType::Fifo && !self.opts.devices {
                    self.report.skipped_devices += 1;
                    return Ok(());
                }
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                rfs::mknodat(
                    &parent_fd,
                    *name,
                    file_type,
                    mode,
                    rfs::makedev(major, minor),
                )
                .map_err(io_err("create node"))?;
                self.owner_mode_at(&parent_fd, name, uid, gid, mode, &path)?;
                self.set_xattrs_at(&parent_fd, name, &xattrs);
                rfs::utimensat(&parent_fd, *name, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("set times of"))?;
            }
            // PAX/GNU metadata entries are consumed by the tar reader; other
            // kinds (e.g. GNU volume headers) carry nothing to extract.
            _ => return Ok(()),
        }
        self.created.insert(path);
        if !removed {
            self.parent_cache = Some((parent_key, parent_fd, parent_setgid));
        }
        Ok(())
    }
}
