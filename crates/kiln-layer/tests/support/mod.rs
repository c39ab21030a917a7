//! Hand-made tarballs for apply tests: raw headers, so names and link
//! targets can be anything a hostile layer could hold.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

pub(crate) enum E<'a> {
    File(&'a str, &'a [u8]),
    FileMode(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
    /// A file with PAX records (key, value).
    Pax(&'a str, &'a [u8], Vec<(&'a str, &'a [u8])>),
}

fn header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_000_000_000);
    h.set_uid(0);
    h.set_gid(0);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    h
}

pub(crate) fn tarball(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (mut h, data): (tar::Header, &[u8]) = match e {
            E::File(n, d) => (header(n, tar::EntryType::Regular, d.len() as u64, 0o644), d),
            E::FileMode(n, d, m) => (header(n, tar::EntryType::Regular, d.len() as u64, *m), d),
            E::Dir(n) => (header(n, tar::EntryType::Directory, 0, 0o755), &[]),
            E::Symlink(n, t) | E::Hardlink(n, t) => {
                let kind = if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(n, kind, 0, 0o777);
                let gnu = h.as_gnu_mut().unwrap();
                gnu.linkname[..t.len()].copy_from_slice(t.as_bytes());
                (h, &[])
            }
            E::Char(n, maj, min) => {
                let mut h = header(n, tar::EntryType::Char, 0, 0o666);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                (h, &[])
            }
            E::Fifo(n) => (header(n, tar::EntryType::Fifo, 0, 0o644), &[]),
            E::Pax(n, d, recs) => {
                b.append_pax_extensions(recs.iter().map(|(k, v)| (*k, *v)))
                    .unwrap();
                (header(n, tar::EntryType::Regular, d.len() as u64, 0o644), d)
            }
        };
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A sandbox: `root` to apply into, `outside` beside it with a canary file.
pub(crate) struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/canary"), b"untouched").unwrap();
        Sandbox { dir }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub(crate) fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Every path under the sandbox but outside root, with file contents.
    pub(crate) fn outside_listing(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(self.dir.path(), &self.root(), &mut out);
        out.sort();
        out
    }
}

fn walk(dir: &Path, skip: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p == skip {
            continue;
        }
        let meta = fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            out.push((p.clone(), Vec::new()));
            walk(&p, skip, out);
        } else {
            out.push((p.clone(), fs::read(&p).unwrap_or_default()));
        }
    }
}
