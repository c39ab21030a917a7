//! A minimal tar writer for archives whose entries are files kiln already
//! has (blobs) or small generated JSON. Written by hand rather than through
//! `tar::Builder` so large blobs go through `io::copy` straight from file
//! to file (the kernel's copy_file_range/sendfile path) and every header is
//! deterministic (mode 0644/0755, uid/gid 0, mtime 0).

use std::io::{self, Read, Write};

pub(crate) struct TarOut<W: Write> {
    out: W,
}

impl<W: Write> TarOut<W> {
    pub(crate) fn new(out: W) -> TarOut<W> {
        TarOut { out }
    }

    fn header(&mut self, path: &str, size: u64, kind: tar::EntryType) -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)?;
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        self.out.write_all(h.as_bytes())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % 512) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    pub(crate) fn dir(&mut self, path: &str) -> io::Result<()> {
        self.header(path, 0, tar::EntryType::Directory)
    }

    pub(crate) fn bytes(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.header(path, data.len() as u64, tar::EntryType::Regular)?;
        self.out.write_all(data)?;
        self.pad(data.len() as u64)
    }

    /// Copies exactly `size` bytes from `src`; fails if it has fewer.
    pub(crate) fn file(&mut self, path: &str, src: &mut impl Read, size: u64) -> io::Result<()> {
        self.header(path, size, tar::EntryType::Regular)?;
        let copied = io::copy(&mut src.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: expected {size} bytes, found {copied}"),
            ));
        }
        self.pad(size)
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.flush()?;
        Ok(self.out)
    }
}
