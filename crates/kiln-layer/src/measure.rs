//! A layer's size as docker reports it (`images`, `history`, `system df`):
//! the bytes of what it holds, not of its tar. docker measures a layer's
//! directory after extracting it (moby's `directory.Size`): every entry
//! but directories, hard links counted once, a symlink as the length of
//! its target. So tar headers and padding do not count, and a layer of
//! only directories (a WORKDIR) is 0 B.

use std::io::{self, Read};

/// docker's size of the uncompressed layer tar `r`.
pub fn content_size(r: impl Read) -> io::Result<u64> {
    let mut archive = tar::Archive::new(r);
    let mut total = 0u64;
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        let size = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                entry.size()
            }
            tar::EntryType::Symlink => entry
                .link_name_bytes()
                .map_or(0, |target| target.len() as u64),
            // Directories, hard links (their data is the first name's),
            // devices, fifos, whiteouts' markers: nothing of their own.
            _ => 0,
        };
        total += size;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn files_and_link_targets_count_headers_and_dirs_do_not() {
        let mut b = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        dir.set_mode(0o755);
        b.append_data(&mut dir, "d/", io::empty()).unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(6);
        file.set_mode(0o644);
        b.append_data(&mut file, "d/f", &b"hello\n"[..]).unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        b.append_link(&mut link, "d/l", "f").unwrap();
        let mut hard = tar::Header::new_gnu();
        hard.set_entry_type(tar::EntryType::Link);
        hard.set_size(0);
        b.append_link(&mut hard, "d/h", "d/f").unwrap();
        let bytes = b.into_inner().unwrap();
        assert!(bytes.len() > 2048);
        assert_eq!(content_size(&bytes[..]).unwrap(), 6 + 1);
        // Only directories: 0, as docker shows a WORKDIR layer.
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut dir, "w/", io::empty()).unwrap();
        assert_eq!(content_size(&b.into_inner().unwrap()[..]).unwrap(), 0);
    }
}
