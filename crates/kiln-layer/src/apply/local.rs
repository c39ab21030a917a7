//! File contents that come from local files instead of the tar stream, for
//! a stream kiln makes itself (a build's COPY of context files): the bytes
//! go from the source file to the new file inside the kernel
//! (`copy_file_range`, a reflink where the file system shares extents;
//! `sendfile` across file systems, such as from the context on ext4 into a
//! snapshot on overlayfs) instead of being read into the writer, piped,
//! read again and written. The tar stream still carries every entry's path
//! and metadata, so the entry goes through the same safe apply as any
//! layer; only where its data comes from changes.
//!
//! Only [`apply_local`](super::apply_local) honours the marker, with the
//! caller's own table of files; a plain apply of a layer (hostile input)
//! that carries it is refused, so a layer can never name a host file.
//!
//! A pair of file systems that refuses `copy_file_range` refuses it for
//! every file, so the refusal is remembered per apply ([`CopyRoute`], keyed
//! by the source's and the root's `st_dev`): a COPY of 4,000 context files
//! into an overlay snapshot made 4,000 failed calls before it did.

use std::fs::File;
use std::io::{self, Read, Write};

use rustix::io::Errno;

/// The PAX record that marks a regular entry (of size 0 in the stream) as
/// a local file: its value is the decimal id the caller's [`LocalFiles`]
/// opens.
pub const LOCAL_FILE_PAX: &str = "KILN.local";

/// A source file for a marked entry, and the `st_dev` of the file system
/// it is on when the caller knows it (from the stat it planned with, so
/// no call is spent on it); `None` disables remembering a refused
/// `copy_file_range` for it.
#[derive(Debug)]
pub struct LocalFile {
    pub file: File,
    pub dev: Option<u64>,
}

impl From<File> for LocalFile {
    fn from(file: File) -> LocalFile {
        LocalFile { file, dev: None }
    }
}

/// Opens the local file a marked entry names by its id.
pub type LocalFiles<'a> = &'a (dyn Fn(u64) -> io::Result<LocalFile> + Sync);

/// Which pairs of file systems refused `copy_file_range` in this apply:
/// (source `st_dev`, root `st_dev`). Few pairs ever occur (the context,
/// a stage's tree), so a list is enough.
#[derive(Debug, Default)]
pub(super) struct CopyRoute {
    refused: Vec<(u64, u64)>,
    /// The root's `st_dev`, read once.
    root_dev: Option<u64>,
    /// `copy_file_range` calls refused (each pair's first file only).
    pub(super) refusals: u64,
}

impl CopyRoute {
    pub(super) fn new(root_dev: Option<u64>) -> CopyRoute {
        CopyRoute {
            root_dev,
            ..CopyRoute::default()
        }
    }

    fn key(&self, src_dev: Option<u64>) -> Option<(u64, u64)> {
        Some((src_dev?, self.root_dev?))
    }
}

/// The local file id of `entry`, if it is marked as one.
pub(super) fn local_id<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Option<u64>> {
    let Some(exts) = entry.pax_extensions()? else {
        return Ok(None);
    };
    for ext in exts {
        let ext = ext?;
        if ext.key_bytes() == LOCAL_FILE_PAX.as_bytes() {
            let id = std::str::from_utf8(ext.value_bytes())
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| io::Error::other("bad local file id"))?;
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Copies all of `src` into `dst` (both at offset 0), in the kernel where
/// it can; `route` remembers a pair of file systems that refuses
/// `copy_file_range`, so later files of that pair go to `sendfile` at once.
pub(super) fn copy_file(
    src: &LocalFile,
    dst: &mut File,
    buf: &mut [u8],
    route: &mut CopyRoute,
) -> io::Result<()> {
    // copy_file_range first (same file system: a reflink or an in-kernel
    // copy); EXDEV, EINVAL or ENOSYS mean this pair cannot, and nothing
    // was copied yet, so sendfile (a splice between any two files) takes
    // over; a file system without either is copied through `buf`.
    let key = route.key(src.dev);
    let src = &src.file;
    let mut copied_any = false;
    if !key.is_some_and(|k| route.refused.contains(&k)) {
        loop {
            match rustix::fs::copy_file_range(src, None, &*dst, None, 1 << 30) {
                Ok(0) => return Ok(()),
                Ok(_) => copied_any = true,
                Err(Errno::INTR) => {}
                Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP)
                    if !copied_any =>
                {
                    route.refusals += 1;
                    route.refused.extend(key);
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    loop {
        match rustix::fs::sendfile(&*dst, src, None, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(_) => copied_any = true,
            Err(Errno::INTR) => {}
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if !copied_any => break,
            Err(e) => return Err(e.into()),
        }
    }
    let mut src = src;
    loop {
        let n = match src.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
    }
}
