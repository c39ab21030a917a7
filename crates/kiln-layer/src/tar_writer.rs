//! The reproducible layer tar: the same change set over the same file
//! contents gives the same bytes, wherever and whenever it is written.
//!
//! - entries in path order, parents first (the change set's order);
//! - recorded: type, numeric uid/gid, permission bits (with setuid, setgid,
//!   sticky), size, mtime in whole seconds, xattrs, link targets, device
//!   numbers — never atime, ctime, user or group names, or inode numbers;
//! - mtimes clamped to `SOURCE_DATE_EPOCH` when it is set;
//! - ustar headers, with a PAX record only where ustar cannot say it (long
//!   names and link targets, xattrs);
//! - deletions as OCI whiteouts (`.wh.NAME`, mode 0600, mtime 0 or the clamp);
//! - files hard-linked to each other within the layer become one file and
//!   `Link` entries to it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::diff::{Change, ChangeKind};
use crate::fsmeta::xattrs;

#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// Upper bound for recorded mtimes (`SOURCE_DATE_EPOCH`).
    pub clamp_mtime: Option<u64>,
}

impl TarOptions {
    fn mtime(&self, t: i64) -> u64 {
        let t = t.max(0) as u64;
        self.clamp_mtime.map_or(t, |c| t.min(c))
    }
}

/// Writes the layer tar for `changes`, reading content and metadata from
/// `upper`. Returns the number of entries written.
pub fn write_layer_tar<W: Write>(
    upper: &Path,
    changes: &[Change],
    opts: &TarOptions,
    out: W,
) -> io::Result<(u64, W)> {
    let mut tar = tar::Builder::new(out);
    let mut first_link: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut entries = 0;
    for change in changes {
        let name = change.path.as_os_str().as_bytes();
        if change.kind == ChangeKind::Deleted {
            let (dir, base) = match name.iter().rposition(|&b| b == b'/') {
                Some(i) => (&name[..=i], &name[i + 1..]),
                None => (&b""[..], name),
            };
            let mut wh = dir.to_vec();
            wh.extend_from_slice(b".wh.");
            wh.extend_from_slice(base);
            let mut h = header(
                tar::EntryType::Regular,
                0o600,
                0,
                0,
                opts.clamp_mtime.unwrap_or(0),
                0,
            );
            append(&mut tar, &mut h, &wh, None, &[], &mut io::empty())?;
            entries += 1;
            continue;
        }
        let path = upper.join(&change.path);
        let m = fs::symlink_metadata(&path)?;
        let ft = m.file_type();
        let mode = m.mode() & 0o7777;
        let mtime = opts.mtime(m.mtime());
        let xa = xattrs(&path)?;
        if !ft.is_dir() && m.nlink() > 1 {
            if let Some(target) = first_link.get(&(m.dev(), m.ino())) {
                let mut h = header(tar::EntryType::Link, mode, m.uid(), m.gid(), mtime, 0);
                append(&mut tar, &mut h, name, Some(target), &[], &mut io::empty())?;
                entries += 1;
                continue;
            }
            first_link.insert((m.dev(), m.ino()), name.to_vec());
        }
        if ft.is_dir() {
            let mut n = name.to_vec();
            n.push(b'/');
            let mut h = header(tar::EntryType::Directory, mode, m.uid(), m.gid(), mtime, 0);
            append(&mut tar, &mut h, &n, None, &xa, &mut io::empty())?;
        } else if ft.is_file() {
            let mut h = header(
                tar::EntryType::Regular,
                mode,
                m.uid(),
                m.gid(),
                mtime,
                m.len(),
            );
            let mut f = File::open(&path)?.take(m.len());
            append(&mut tar, &mut h, name, None, &xa, &mut f)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            let mut h = header(tar::EntryType::Symlink, mode, m.uid(), m.gid(), mtime, 0);
            append(
                &mut tar,
                &mut h,
                name,
                Some(target.as_os_str().as_bytes()),
                &xa,
                &mut io::empty(),
            )?;
        } else {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else if ft.is_fifo() {
                tar::EntryType::Fifo
            } else {
                // Sockets cannot be stored in a tar; docker skips them too.
                continue;
            };
            let mut h = header(kind, mode, m.uid(), m.gid(), mtime, 0);
            let rdev = m.rdev();
            h.set_device_major(rustix::fs::major(rdev))?;
            h.set_device_minor(rustix::fs::minor(rdev))?;
            append(&mut tar, &mut h, name, None, &xa, &mut io::empty())?;
        }
        entries += 1;
    }
    Ok((entries, tar.into_inner()?))
}

fn header(
    kind: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    size: u64,
) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// Appends one entry, with a PAX record first when ustar cannot hold the
/// name, the link target or the xattrs.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    link: Option<&[u8]>,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    data: &mut dyn Read,
) -> io::Result<()> {
    let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let name_os = std::ffi::OsStr::from_bytes(name);
    if h.set_path(name_os).is_err() {
        pax.push((b"path".to_vec(), name.to_vec()));
        h.set_path(truncated(name))?;
    }
    if let Some(link) = link {
        if link.len() > 100 || h.set_link_name(std::ffi::OsStr::from_bytes(link)).is_err() {
            pax.push((b"linkpath".to_vec(), link.to_vec()));
            h.set_link_name(truncated(link))?;
        }
    }
    for (k, v) in xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k);
        pax.push((key, v.clone()));
    }
    if !pax.is_empty() {
        tar.append_pax_extensions(pax.iter().map(|(k, v)| {
            // PAX keys are UTF-8 by the standard; xattr names are ASCII.
            (
                std::str::from_utf8(k).unwrap_or("SCHILY.xattr.invalid"),
                v.as_slice(),
            )
        }))?;
    }
    h.set_cksum();
    tar.append(h, data)
}

/// A placeholder ustar name for an entry whose real name is in a PAX record.
fn truncated(name: &[u8]) -> &std::ffi::OsStr {
    let cut = name.len().min(99);
    std::ffi::OsStr::from_bytes(&name[..cut])
}
