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
//!
//! The work is split by job:
//! - this file: the options, the report and the entry loop (a reader
//!   thread decompresses and hashes while this one creates files);
//! - `root`: finding directories inside the root (`openat2`) and removing
//!   things there, never following a symlink;
//! - `entry`: writing one entry of each kind (file, directory, symlink,
//!   hard link, device, fifo) in place of whatever was there;
//! - `whiteout`: OCI whiteouts and opaque directories, or their overlayfs
//!   form;
//! - `metadata`: owners, modes, times and extended attributes;
//! - `local`: file contents copied from local files in the kernel, for
//!   streams kiln makes itself ([`apply_local`]);
//! - `link`: such files hard-linked from committed snapshots instead
//!   ([`apply_local_linked`]).

mod entry;
mod link;
mod local;
mod metadata;
mod root;
mod whiteout;

use std::collections::HashSet;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use kiln_core::{Digest, Sha256Writer};
use rustix::fs::{self as rfs, Mode, OFlags};

use crate::compression::{decompress, Compression};
use crate::error::LayerError;

pub use link::Links;
pub use local::{LocalFile, LocalFiles, LOCAL_FILE_PAX};

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
    /// [`apply_local`]: `copy_file_range` calls refused (at most one per
    /// pair of file systems whose source dev the caller gave; the rest of
    /// that pair's files went straight to `sendfile`).
    pub copy_range_refused: u64,
    /// [`apply_local_linked`]: local files hard-linked from a committed
    /// snapshot instead of copied.
    pub linked: u64,
    /// [`apply_local_linked`]: the local files written (copied or linked)
    /// at a path of the upper directory, as (path, link key), path order.
    pub written: Vec<(Vec<u8>, String)>,
}

const COPY_BUF: usize = 256 * 1024;

/// Applies `layer` (gzip, zstd or plain tar) onto the directory `root`.
pub fn apply<R: BufRead + Send>(
    layer: R,
    root: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport, LayerError> {
    apply_with(layer, root, opts, None, None)
}

/// [`apply`] of a stream kiln made itself, whose regular entries marked
/// with a [`LOCAL_FILE_PAX`] record (and of size 0 in the stream) take
/// their contents from `files`, copied in the kernel. Never for a layer
/// from elsewhere: the marker names the caller's files.
pub fn apply_local<R: BufRead + Send>(
    layer: R,
    root: &Path,
    opts: &ApplyOptions,
    files: LocalFiles<'_>,
) -> Result<ApplyReport, LayerError> {
    apply_with(layer, root, opts, Some(files), None)
}

/// [`apply_local`] onto an overlay mount whose upper directory is
/// `links.upper`, hard-linking a local file from `links.known` (files
/// earlier applies wrote into committed snapshots) where one matches, and
/// reporting what it wrote ([`ApplyReport::written`]) for later applies.
/// Needs ownership (root): a candidate's owner is compared with the
/// entry's. See `link` for why the layer stays the same.
pub fn apply_local_linked<R: BufRead + Send>(
    layer: R,
    root: &Path,
    opts: &ApplyOptions,
    files: LocalFiles<'_>,
    links: Links<'_>,
) -> Result<ApplyReport, LayerError> {
    apply_with(layer, root, opts, Some(files), Some(links))
}

fn apply_with<R: BufRead + Send>(
    layer: R,
    root: &Path,
    opts: &ApplyOptions,
    local: Option<LocalFiles<'_>>,
    links: Option<Links<'_>>,
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
        let applied = apply_stream(&mut stream, root, opts, local, links);
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
    local: Option<LocalFiles<'_>>,
    links: Option<Links<'_>>,
) -> Result<ApplyReport, LayerError> {
    let link = match links {
        Some(l) if opts.ownership && local.is_some() => Some(link::LinkState::new(l)?),
        _ => None,
    };
    let root_fd = rfs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LayerError::io(format!("open {}", root.display()))(e.into()))?;
    // The root's file system, for remembering which pairs refuse
    // copy_file_range (local files only).
    let route = local::CopyRoute::new(
        local
            .is_some()
            .then(|| rfs::fstat(&root_fd).ok().map(|st| st.st_dev))
            .flatten(),
    );
    let mut applier = Applier {
        route,
        root: root_fd,
        opts: opts.clone(),
        created: HashSet::new(),
        dir_times: Vec::new(),
        report: ApplyReport::default(),
        buf: vec![0u8; COPY_BUF],
        parent_cache: None,
        local,
        link,
        umask: current_umask(),
        ids: (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        ),
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
    applier.report.copy_range_refused = applier.route.refusals;
    if let Some(l) = applier.link.take() {
        applier.report.linked = l.count;
        applier.report.written = l.written.into_iter().collect();
    }
    Ok(applier.report)
}

/// The process's umask, read without changing it (`umask(2)` can only
/// set it, and other threads create files meanwhile); `None` when
/// `/proc` does not say, and then every mode is set explicitly.
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// One apply in progress; its methods live in the submodules, by job.
struct Applier<'a> {
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
    /// (and whether it is setgid).
    parent_cache: Option<(Vec<u8>, OwnedFd, bool)>,
    /// Our effective uid and gid: what a new file is owned by.
    ids: (u32, u32),
    /// Where marked entries' contents come from ([`apply_local`] only).
    local: Option<LocalFiles<'a>>,
    /// Linking from committed snapshots ([`apply_local_linked`] only).
    link: Option<link::LinkState<'a>>,
    /// Pairs of file systems that refused `copy_file_range` so far.
    route: local::CopyRoute,
    /// See [`current_umask`].
    umask: Option<u32>,
}
