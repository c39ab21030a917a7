//! Where a proxied blob lands while it downloads: a file in a local
//! staging directory, hashed as it is written, kept only when its digest
//! and size are the ones asked for. kiln-registry-client downloads into
//! kiln-core's `Ingester`/`ContentWriter` (synchronous writes, a commit
//! that verifies); the registry's [`crate::Storage`] takes async upload
//! writers, so the blob is staged here and copied into the storage once
//! verified, never shown half-checked.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln_core::content::{ContentError, ContentWriter, Ingester, Result};
use kiln_core::{Algorithm, Digest, ErrorKind};

use crate::hash::Hasher;

/// Hands out staging files for one download; remembers the one that
/// committed.
pub(crate) struct Staging {
    dir: PathBuf,
    algorithm: Algorithm,
    committed: Arc<Mutex<Option<PathBuf>>>,
}

impl Staging {
    pub(crate) fn new(dir: &Path, algorithm: Algorithm) -> Staging {
        Staging {
            dir: dir.to_path_buf(),
            algorithm,
            committed: Arc::default(),
        }
    }

    /// The verified file, once a writer committed.
    pub(crate) fn committed(&self) -> Option<PathBuf> {
        self.committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

impl Ingester for Staging {
    fn writer(&self, _name: Option<&str>) -> Result<Box<dyn ContentWriter>> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create", &self.dir, e))?;
        let mut id = [0u8; 16];
        getrandom::getrandom(&mut id)
            .map_err(|e| ContentError::other(ErrorKind::Io, format!("random name: {e}")))?;
        let name: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let path = self.dir.join(format!("{name}.part"));
        let file = File::create(&path).map_err(|e| io("create", &path, e))?;
        Ok(Box::new(StagedFile {
            file: Some(file),
            path,
            hasher: Some(Hasher::new(self.algorithm)),
            written: 0,
            committed: self.committed.clone(),
        }))
    }
}

fn io(verb: &str, path: &Path, e: std::io::Error) -> ContentError {
    ContentError::other(ErrorKind::Io, format!("{verb} {}: {e}", path.display()))
}

struct StagedFile {
    file: Option<File>,
    path: PathBuf,
    hasher: Option<Hasher>,
    written: u64,
    committed: Arc<Mutex<Option<PathBuf>>>,
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let file = self.file.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let n = file.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), File::flush)
    }
}

impl ContentWriter for StagedFile {
    fn offset(&self) -> u64 {
        self.written
    }

    fn commit(mut self: Box<Self>, expected: Option<&Digest>, size: Option<u64>) -> Result<Digest> {
        let actual = self.hasher.take().map(Hasher::finish).ok_or_else(|| {
            ContentError::other(ErrorKind::Conflict, "staged blob committed twice")
        })?;
        if let Some(size) = size.filter(|s| *s != self.written) {
            return Err(ContentError::SizeMismatch {
                digest: actual,
                expected: size,
                actual: self.written,
            });
        }
        if let Some(expected) = expected.filter(|e| **e != actual) {
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual,
                actual_size: self.written,
            });
        }
        // Dropping the file closes it; the path is then the caller's.
        self.file.take();
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.path.clone());
        self.path = PathBuf::new();
        Ok(actual)
    }
}

impl Drop for StagedFile {
    /// A writer dropped without a good commit leaves nothing behind.
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_bytes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let good = Digest::sha256(b"hello");
        let staging = Staging::new(dir.path(), Algorithm::Sha256);
        let mut w = staging.writer(None).unwrap();
        w.write_all(b"hellx").unwrap();
        let e = w.commit(Some(&good), Some(5)).unwrap_err();
        assert!(matches!(e, ContentError::DigestMismatch { .. }), "{e}");
        assert!(staging.committed().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut w = staging.writer(None).unwrap();
        w.write_all(b"hello").unwrap();
        let e = w.commit(Some(&good), Some(6)).unwrap_err();
        assert!(matches!(e, ContentError::SizeMismatch { .. }), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut w = staging.writer(None).unwrap();
        w.write_all(b"hello").unwrap();
        assert_eq!(w.commit(Some(&good), Some(5)).unwrap(), good);
        let path = staging.committed().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    }
}
