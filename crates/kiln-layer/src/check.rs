//! Copying a tar stream while proving it is a well-formed archive whose
//! entries stay inside the root.

use std::io::{self, Read, Write};

use crate::error::LayerError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarSummary {
    pub entries: u64,
    pub bytes: u64,
}

/// Lexically cleans a tar entry path (as Go's `filepath.Clean` relative to
/// the root): drops `.` and empty components and a leading `/`, resolves
/// `..`. Returns `None` when the path climbs out of the root.
pub fn clean_entry_path(raw: &[u8]) -> Option<Vec<&[u8]>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts)
}

struct Tee<'a, R, W> {
    r: R,
    w: &'a mut W,
    n: u64,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.w.write_all(&buf[..n])?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Copies every byte of the tar stream `r` into `w` (so digests of the
/// output equal digests of the input) while parsing it. Fails on a
/// malformed archive, an empty input, and entries or hardlink targets that
/// climb out of the root with `..`. Absolute names are allowed: they are
/// relative to the root, as docker treats them.
pub fn copy_checked_tar<R: Read, W: Write>(r: R, w: &mut W) -> Result<TarSummary, LayerError> {
    let mut tee = Tee { r, w, n: 0 };
    let mut entries = 0;
    {
        let mut archive = tar::Archive::new(&mut tee);
        let iter = archive
            .entries()
            .map_err(|e| LayerError::BadTar(e.to_string()))?;
        for entry in iter {
            let entry = entry.map_err(|e| bad_tar(e, entries))?;
            let path = entry.path_bytes();
            if clean_entry_path(&path).is_none() {
                return Err(LayerError::Escape {
                    path: String::from_utf8_lossy(&path).into_owned(),
                });
            }
            if entry.header().entry_type().is_hard_link() {
                if let Some(target) = entry.link_name_bytes() {
                    if clean_entry_path(&target).is_none() {
                        return Err(LayerError::Escape {
                            path: String::from_utf8_lossy(&target).into_owned(),
                        });
                    }
                }
            }
            entries += 1;
        }
    }
    // The end-of-archive blocks and any padding after them are part of the
    // stream whose digest is the diff_id.
    io::copy(&mut tee, &mut io::sink()).map_err(LayerError::io("read input"))?;
    if tee.n == 0 {
        return Err(LayerError::BadTar("the input is empty".into()));
    }
    Ok(TarSummary {
        entries,
        bytes: tee.n,
    })
}

fn bad_tar(e: io::Error, entries_so_far: u64) -> LayerError {
    LayerError::BadTar(format!("{e} (after {entries_so_far} valid entries)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(name: &str, link: Option<&str>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        if let Some(link) = link {
            h.set_entry_type(tar::EntryType::Link);
            h.set_link_name(link).unwrap();
        }
        // Raw name bytes: tar::Builder refuses '..', a hostile archive does not.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn copies_exact_bytes_of_a_valid_tar() {
        let input = tar_with("etc/hostname", None);
        let mut out = Vec::new();
        let s = copy_checked_tar(&input[..], &mut out).unwrap();
        assert_eq!(out, input);
        assert_eq!(s.entries, 1);
    }

    #[test]
    fn rejects_escapes() {
        for (name, link) in [
            ("../evil", None),
            ("a/../../evil", None),
            ("/../evil", None),
            ("ok", Some("../../etc/shadow")),
        ] {
            let input = tar_with(name, link);
            let err = copy_checked_tar(&input[..], &mut Vec::new()).unwrap_err();
            assert!(matches!(err, LayerError::Escape { .. }), "{name}: {err}");
        }
        // Absolute and dot-dot that stays inside are fine.
        for name in ["/etc/passwd", "a/../b", "./x"] {
            copy_checked_tar(&tar_with(name, None)[..], &mut Vec::new()).unwrap();
        }
    }

    #[test]
    fn rejects_garbage_and_empty() {
        let garbage = vec![7u8; 2048];
        assert!(matches!(
            copy_checked_tar(&garbage[..], &mut Vec::new()),
            Err(LayerError::BadTar(_))
        ));
        assert!(matches!(
            copy_checked_tar(&[][..], &mut Vec::new()),
            Err(LayerError::BadTar(_))
        ));
    }

    #[test]
    fn rejects_truncated() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4096);
        h.set_path("big").unwrap();
        h.set_cksum();
        b.append(&h, &vec![1u8; 4096][..]).unwrap();
        let full = b.into_inner().unwrap();
        let cut = &full[..1500];
        assert!(copy_checked_tar(cut, &mut Vec::new()).is_err());
    }
}
