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

use std::fs::File;
use std::io::{self, Read, Write};

use rustix::io::Errno;

/// The PAX record that marks a regular entry (of size 0 in the stream) as
/// a local file: its value is the decimal id the caller's [`LocalFiles`]
/// opens.
pub const LOCAL_FILE_PAX: &str = "KILN.local";

/// Opens the local file a marked entry names by its id.
pub type LocalFiles<'a> = &'a (dyn Fn(u64) -> io::Result<File> + Sync);

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
/// it can.
pub(super) fn copy_file(src: &File, dst: &mut File, buf: &mut [u8]) -> io::Result<()> {
    // copy_file_range first (same file system: a reflink or an in-kernel
    // copy); EXDEV, EINVAL or ENOSYS mean this pair cannot, and nothing
    // was copied yet, so sendfile (a splice between any two files) takes
    // over; a file system without either is copied through `buf`.
    let mut copied_any = false;
    loop {
        match rustix::fs::copy_file_range(src, None, &*dst, None, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(_) => copied_any = true,
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if !copied_any => {
                break
            }
            Err(e) => return Err(e.into()),
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
