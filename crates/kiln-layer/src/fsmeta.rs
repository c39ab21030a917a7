//! File metadata as layers record it, read without following symlinks.

use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Extended attributes as (name, value) pairs, sorted by name.
pub(crate) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Overlayfs keeps its bookkeeping in these namespaces; they are never
/// part of a layer.
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// The xattrs of `path` (not following a final symlink), minus overlayfs'.
pub(crate) fn xattrs(path: &Path) -> io::Result<Xattrs> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if is_overlay_xattr(name) {
            continue;
        }
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, name, &mut value[..]) {
                Ok(len) => break len,
                Err(rustix::io::Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(e) => return Err(e.into()),
            }
        };
        value.truncate(len);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

/// True if `path` carries overlayfs' opaque-directory mark.
pub(crate) fn is_opaque(path: &Path) -> bool {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        let mut v = [0u8; 4];
        if let Ok(n) = rustix::fs::lgetxattr(path, name, &mut v) {
            if &v[..n] == b"y" {
                return true;
            }
        }
    }
    false
}

/// An overlayfs whiteout: a character device 0/0.
pub(crate) fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether two entries are the same as far as a layer is concerned: type,
/// mode, owner, mtime, xattrs, and content (file bytes, link target,
/// device number). atime and ctime do not count.
pub(crate) fn same(a: &Path, am: &Metadata, b: &Path, bm: &Metadata) -> io::Result<bool> {
    let (at, bt) = (am.file_type(), bm.file_type());
    let basic = at == bt
        && am.mode() == bm.mode()
        && am.uid() == bm.uid()
        && am.gid() == bm.gid()
        && am.mtime() == bm.mtime()
        && am.mtime_nsec() == bm.mtime_nsec();
    if !basic {
        return Ok(false);
    }
    if at.is_symlink() && fs::read_link(a)? != fs::read_link(b)? {
        return Ok(false);
    }
    if (at.is_char_device() || at.is_block_device()) && am.rdev() != bm.rdev() {
        return Ok(false);
    }
    if at.is_file() && (am.len() != bm.len() || !same_bytes(a, b)?) {
        return Ok(false);
    }
    Ok(xattrs(a)? == xattrs(b)?)
}

fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
