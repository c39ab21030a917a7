//! Applying a layer (a tar stream, compressed or not) onto a directory.
//!
//! Safety model: the root directory is opened once, and every parent path
//! is resolved from it with `openat2(RESOLVE_IN_ROOT)`, so `..` and symlinks
//! (absolute or relative) resolve *inside* the root, as if it were `/` — the
//! kernel guarantees no escape. The final component of every entry is then
//! created, replaced or removed with `*at` calls relative to that parent
//! that never follow a symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`,
//! `O_EXCL`). Entry names that climb out with `..` are rejected outright.
//!
//! Whiteouts follow the OCI image spec: `.wh.NAME` removes NAME from lower
//! layers and `.wh..wh..opq` hides a directory's lower contents; neither
//! touches what the same layer created, whatever the entry order.
//!
//! Without root, ownership is not changed and device nodes are skipped (and
//! counted in the report): an unprivileged process cannot create them, and
//! silently making plain files instead would be worse.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use kiln_core::{Digest, Sha256Writer};
use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
};
use rustix::io::Errno;

use crate::check::clean_entry_path;
use crate::compression::{decompress, Compression};
use crate::error::LayerError;

/// What apply may do beyond writing files.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Set owners from the tar headers (needs root).
    pub ownership: bool,
    /// Create character and block devices (needs root).
    pub devices: bool,
    /// Unpack into an empty directory as an overlayfs layer: whiteouts
    /// become 0/0 character devices and opaque markers the
    /// `trusted.overlay.opaque` xattr, instead of removing anything.
    /// (The snapshotter stacks such directories as overlay lowers.)
    pub overlay_whiteouts: bool,
    /// Hash the uncompressed stream for [`ApplyReport::diff_id`]. A
    /// stream kiln made itself (COPY in a build) needs no diff_id.
    pub diff_id: bool,
}

impl ApplyOptions {
    /// Everything the current user is allowed to do.
    pub fn for_current_user() -> ApplyOptions {
        let root = rustix::process::geteuid().is_root();
        ApplyOptions {
            ownership: root,
            devices: root,
            overlay_whiteouts: false,
            diff_id: true,
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub entries: u64,
    pub whiteouts: u64,
    /// Device nodes not created (no privilege to).
    pub skipped_devices: u64,
    /// Extended attributes the file system refused.
    pub skipped_xattrs: u64,
    /// sha256 of the uncompressed tar: compare with the config's diff_id.
    pub diff_id: Option<Digest>,
    pub uncompressed_size: u64,
    pub compression: Option<Compression>,
}

const OPAQUE: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const COPY_BUF: usize = 256 * 1024;

/// Applies `layer` (gzip, zstd or plain tar) onto the directory `root`.
pub fn apply<R: BufRead + Send>(
    layer: R,
    root: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport, LayerError> {
    let (compression, mut plain) = decompress(layer)?;
    // A reader thread reads and decompresses while this one creates files.
    // The diff_id hash goes where there is room: on the reader for a plain
    // layer, here for a compressed one (decompression fills the reader).
    // (A third, hashing-only thread was measured and gained nothing on two
    // cores: file creation here is the bound.)
    let hash_in_reader = compression == Compression::None && opts.diff_id;
    let hash_here = compression != Compression::None && opts.diff_id;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
        let reader = scope.spawn(move || {
            let mut hasher = hash_in_reader.then(|| Sha256Writer::new(io::sink()));
            loop {
                // read_to_end into spare capacity: no zeroing of each chunk.
                let mut buf = Vec::with_capacity(COPY_BUF);
                match (&mut plain).take(COPY_BUF as u64).read_to_end(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {
                        if let Some(h) = &mut hasher {
                            h.write_all(&buf)?;
                        }
                        if tx.send(Ok(buf)).is_err() {
                            break; // the applier stopped; its error is reported
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                }
            }
            Ok::<_, io::Error>(hasher.map(Sha256Writer::finish))
        });
        let mut stream = ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            hasher: hash_here.then(|| Sha256Writer::new(io::sink())),
        };
        let applied = apply_stream(&mut stream, root, opts);
        let hashed_here = stream.hasher.take();
        drop(stream);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("layer reader panicked")));
        let mut report = applied?;
        let hashed = read
            .map_err(LayerError::io("read layer"))?
            .or_else(|| hashed_here.map(Sha256Writer::finish));
        if let Some((diff_id, size, _)) = hashed {
            report.diff_id = Some(diff_id);
            report.uncompressed_size = size;
        } else if opts.diff_id {
            return Err(LayerError::BadTar("layer stream was not hashed".into()));
        }
        report.compression = Some(compression);
        Ok(report)
    })
}

/// Reads the chunks another thread sends, hashing them when asked to.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    hasher: Option<Sha256Writer<io::Sink>>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.cur = chunk?;
                    self.pos = 0;
                    if let Some(h) = &mut self.hasher {
                        h.write_all(&self.cur)?;
                    }
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn apply_stream<R: Read>(
    mut stream: R,
    root: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport, LayerError> {
    let root_fd = rfs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LayerError::io(format!("open {}", root.display()))(e.into()))?;
    let mut applier = Applier {
        root: root_fd,
        opts: opts.clone(),
        created: HashSet::new(),
        dir_times: Vec::new(),
        report: ApplyReport::default(),
        buf: vec![0u8; COPY_BUF],
        parent_cache: None,
    };
    {
        let mut archive = tar::Archive::new(&mut stream);
        let entries = archive
            .entries()
            .map_err(|e| LayerError::BadTar(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| LayerError::BadTar(e.to_string()))?;
            applier.entry(&mut entry)?;
            applier.report.entries += 1;
        }
    }
    // The end-of-archive padding is part of the diff_id.
    io::copy(&mut stream, &mut io::sink()).map_err(LayerError::io("read layer"))?;
    applier.finish_dirs()?;
    Ok(applier.report)
}

struct Applier {
    root: OwnedFd,
    opts: ApplyOptions,
    /// Paths this layer created (joined with '/'): whiteouts spare them.
    created: HashSet<Vec<u8>>,
    /// Directory mtimes, set last (creating children changes them).
    dir_times: Vec<(Vec<u8>, i64)>,
    report: ApplyReport,
    buf: Vec<u8>,
    /// The parent directory of the previous entry: most entries share it,
    /// and resolving it again costs a path walk. Dropped whenever anything
    /// is removed, so it never names a directory that is gone.
    parent_cache: Option<(Vec<u8>, OwnedFd)>,
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn errno_io(context: String) -> impl FnOnce(Errno) -> LayerError {
    move |e| LayerError::Io {
        context,
        source: e.into(),
    }
}

fn ts(secs: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Applier {
    /// Opens a directory inside the root, resolving symlinks and `..`
    /// scoped to the root. With `create`, missing directories are made.
    fn open_dir(&self, comps: &[&[u8]], create: bool) -> Result<OwnedFd, LayerError> {
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

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), LayerError> {
        let raw = entry.path_bytes().into_owned();
        let comps =
            clean_entry_path(&raw).ok_or_else(|| LayerError::Escape { path: show(&raw) })?;
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // the root itself: its metadata belongs to the caller
        };
        let path = join(&comps);
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(parent, name);
        }
        let kind = entry.header().entry_type();
        let parent_key = join(parent);
        let parent_fd = match self.parent_cache.take() {
            Some((key, fd)) if key == parent_key => fd,
            _ => self.open_dir(parent, true)?,
        };
        // Replace whatever is there, never following it; a directory stays
        // a directory (its lower contents merge).
        let mut removed = false;
        match rfs::statat(&parent_fd, *name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
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
                let fd = rfs::openat(&parent_fd, *name, flags, Mode::from_raw_mode(0o600))
                    .map_err(io_err("create"))?;
                let mut file = File::from(fd);
                loop {
                    let n = entry
                        .read(&mut self.buf)
                        .map_err(|e| LayerError::BadTar(format!("{}: {e}", show(&path))))?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n])
                        .map_err(LayerError::io(format!("write {}", show(&path))))?;
                }
                self.owner_mode_xattrs(file.as_fd(), uid, gid, Some(mode), &xattrs, &path)?;
                rfs::futimens(&file, &ts(mtime)).map_err(io_err("set times of"))?;
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
            self.parent_cache = Some((parent_key, parent_fd));
        }
        Ok(())
    }

    fn owner_mode_xattrs(
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

    fn owner_mode_at(
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
    fn set_xattrs_at(&mut self, parent: &OwnedFd, name: &[u8], xattrs: &Xattrs) {
        use std::os::fd::AsRawFd;
        for (k, v) in xattrs {
            let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            p.extend_from_slice(name);
            if rfs::lsetxattr(p.as_slice(), k.as_slice(), v, rfs::XattrFlags::empty()).is_err() {
                self.report.skipped_xattrs += 1;
            }
        }
    }

    fn whiteout(&mut self, parent: &[&[u8]], name: &[u8]) -> Result<(), LayerError> {
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
        let mut full = join(parent);
        if !full.is_empty() {
            full.push(b'/');
        }
        full.extend_from_slice(target);
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
            let mut p = dir_path.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&child);
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

    fn finish_dirs(&mut self) -> Result<(), LayerError> {
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

fn uid_of(id: u64) -> rfs::Uid {
    rfs::Uid::from_raw(id as u32)
}

fn gid_of(id: u64) -> rfs::Gid {
    rfs::Gid::from_raw(id as u32)
}

/// Extended attributes as (name, value) pairs.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// PAX `SCHILY.xattr.*` records of an entry.
fn xattrs<R: Read>(entry: &mut tar::Entry<R>) -> Result<Xattrs, LayerError> {
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

fn list_dir(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, LayerError> {
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
pub(crate) fn remove_all(dir: &OwnedFd, name: &[u8]) -> Result<(), LayerError> {
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
