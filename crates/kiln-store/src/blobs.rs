//! Content-addressed blobs under `blobs/<algorithm>/<hex>`, written through a
//! verifying ingest under `ingest/`.
//!
//! A blob becomes visible only by an atomic rename after its bytes were
//! fsync'd and its digest (and size, when known) checked, so a reader never
//! sees partial or unverified content, whatever happens to the writer.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use kiln_core::{Digest, Sha256Writer};
use tempfile::NamedTempFile;

use crate::error::{IoContext, Result, StoreError};
use crate::publish::Publications;

/// The blob half of the store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs_dir: PathBuf,
    ingest_dir: PathBuf,
    /// Blobs being published in the background (see `publish`).
    publishing: Publications,
}

impl BlobStore {
    pub(crate) fn new(root: &Path) -> BlobStore {
        BlobStore {
            blobs_dir: root.join("blobs"),
            ingest_dir: root.join("ingest"),
            publishing: Publications::default(),
        }
    }

    pub(crate) fn create_dirs(&self) -> Result<()> {
        for dir in [self.blobs_dir.join("sha256"), self.ingest_dir.clone()] {
            fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        }
        Ok(())
    }

    pub(crate) fn ingest_dir(&self) -> &Path {
        &self.ingest_dir
    }

    pub(crate) fn blobs_dir(&self) -> &Path {
        &self.blobs_dir
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
            || (self.waited_for_publications() && self.path(digest).is_file())
    }

    /// Waits for the blobs this process is publishing in the background,
    /// if any: whether there were any (a blob that was missing may be
    /// there now).
    fn waited_for_publications(&self) -> bool {
        self.publishing.any() && self.publishing.wait().is_ok()
    }

    /// Waits for every blob this process is publishing in the background
    /// ([`PendingBlob::publish`]) to be durable and in place; the first
    /// failure. Anything that makes blobs reachable calls it first.
    pub fn wait_published(&self) -> Result<()> {
        self.publishing.wait()
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let mut found = fs::metadata(self.path(digest));
        if found.is_err() && self.waited_for_publications() {
            found = fs::metadata(self.path(digest));
        }
        match found {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(e).ctx("stat blob", self.path(digest)),
        }
    }

    /// Opens a blob for reading. Its content was verified when it was written;
    /// [`BlobStore::verify`] re-checks it.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        let mut found = File::open(&path);
        if found.is_err() && self.waited_for_publications() {
            found = File::open(&path);
        }
        match found {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(e).ctx("open blob", path),
        }
    }

    /// Reads a whole (small) blob: manifests, configs, indexes.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open(digest)?
            .read_to_end(&mut buf)
            .ctx("read blob", self.path(digest))?;
        Ok(buf)
    }

    /// Rehashes a stored blob and compares with its name.
    pub fn verify(&self, digest: &Digest) -> Result<u64> {
        let mut file = self.open(digest)?;
        let mut hasher = Sha256Writer::new(io::sink());
        io::copy(&mut file, &mut hasher).ctx("read blob", self.path(digest))?;
        let (actual, size, _) = hasher.finish();
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                expected_size: None,
                actual,
                actual_size: size,
                context: format!(" (stored blob {} is corrupt)", self.path(digest).display()),
            });
        }
        Ok(size)
    }

    /// Starts writing a blob whose digest is computed as it is written.
    pub fn ingest(&self) -> Result<BlobWriter> {
        let temp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.ingest_dir)
            .ctx("create ingest file in", &self.ingest_dir)?;
        // The lock marks this ingest as alive: a cleaner that can take it knows
        // its writer died (see `remove_stale_ingests`).
        temp.as_file()
            .try_lock()
            .map_err(|e| io::Error::other(e.to_string()))
            .ctx("lock ingest file", temp.path())?;
        let file = temp.reopen().ctx("open ingest file", temp.path())?;
        Ok(BlobWriter {
            writer: Sha256Writer::new(BufWriter::with_capacity(1 << 20, file)),
            temp,
            blobs_dir: self.blobs_dir.clone(),
            writeback_every: None,
            publishing: self.publishing.clone(),
        })
    }

    /// Stores a small blob held in memory, verifying `expected` if given.
    pub fn put(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let digest = Digest::sha256(bytes);
        if let Some(expected) = expected {
            if &digest != expected {
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    expected_size: None,
                    actual: digest,
                    actual_size: bytes.len() as u64,
                    context: String::new(),
                });
            }
        }
        if self.exists(&digest) {
            return Ok(digest);
        }
        let mut w = self.ingest()?;
        w.write_all(bytes).ctx("write blob", w.temp.path())?;
        w.commit(Some(&digest), Some(bytes.len() as u64))?;
        Ok(digest)
    }

    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx("delete blob", path),
        }
    }

    /// Every blob in the store, with its size. Files whose names are not
    /// valid digests are skipped (an OCI layout may hold other algorithms'
    /// directories kiln does not use).
    pub fn walk(&self) -> Result<Vec<(Digest, u64)>> {
        let dir = self.blobs_dir.join("sha256");
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).ctx("list", dir),
        };
        for entry in entries {
            let entry = entry.ctx("list", &dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                continue;
            };
            let len = entry.metadata().ctx("stat", entry.path())?.len();
            out.push((digest, len));
        }
        out.sort();
        Ok(out)
    }

    /// Whether some writer (of any process) has an ingest under way: a
    /// live writer holds its file's lock until the blob is in place.
    pub fn ingest_under_way(&self) -> bool {
        let Ok(entries) = fs::read_dir(&self.ingest_dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            File::open(e.path())
                .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
        })
    }

    /// Ingest files left behind by writers that died; removes them when
    /// `remove` is set. A live writer holds a lock on its file, so only
    /// abandoned ones are touched.
    pub fn stale_ingests(&self, remove: bool) -> Result<Vec<PathBuf>> {
        let mut stale = Vec::new();
        let entries = match fs::read_dir(&self.ingest_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(stale),
            Err(e) => return Err(e).ctx("list", &self.ingest_dir),
        };
        for entry in entries {
            let path = entry.ctx("list", &self.ingest_dir)?.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                if remove {
                    fs::remove_file(&path).ctx("remove stale ingest", &path)?;
                }
                stale.push(path);
            }
        }
        Ok(stale)
    }
}

/// A blob being written. Dropping it without [`BlobWriter::commit`] discards
/// the content.
pub struct BlobWriter {
    writer: Sha256Writer<BufWriter<File>>,
    temp: NamedTempFile,
    blobs_dir: PathBuf,
    /// See [`BlobWriter::set_writeback`].
    writeback_every: Option<u64>,
    publishing: Publications,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.writer.len()
    }

    /// For large blobs written once and not read back soon (downloads,
    /// layers): start disk writeback every `every` bytes, so that
    /// [`BlobWriter::commit`]'s fsync finds little left to write.
    pub fn set_writeback(&mut self, every: u64) {
        self.writeback_every = Some(every.max(1 << 20));
    }

    /// Asks the kernel to start writing what was written so far to disk,
    /// without waiting, so the fsync in [`BlobWriter::commit`] finds little
    /// left to do: large downloads overlap their disk writes with the
    /// network instead of paying for them all at the end.
    pub fn start_writeback(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        let file = self.writer.get_ref().get_ref();
        // POSIX_FADV_DONTNEED starts asynchronous writeback of dirty pages
        // (and drops clean ones from the cache: the blob is not read back
        // soon). Advice only: errors are not worth failing a write for.
        let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
        Ok(())
    }

    /// Verifies the content against `expected` digest and size (when given),
    /// makes it durable, and moves it into place. Returns the digest and size.
    pub fn commit(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let pending = self.finish()?;
        if let Some(expected) = expected {
            if &pending.digest != expected {
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    expected_size,
                    actual: pending.digest,
                    actual_size: pending.size,
                    context: String::new(),
                });
            }
        }
        if let Some(expected_size) = expected_size {
            if expected_size != pending.size {
                return Err(StoreError::SizeMismatch {
                    digest: pending.digest,
                    expected: expected_size,
                    actual: pending.size,
                });
            }
        }
        pending.commit()
    }

    /// Ends writing without publishing: the caller learns the digest and can
    /// check the content (e.g. against a manifest that arrives later) before
    /// deciding to [`PendingBlob::commit`] or drop it.
    pub fn finish(self) -> Result<PendingBlob> {
        let BlobWriter {
            writer,
            temp,
            blobs_dir,
            writeback_every: _,
            publishing,
        } = self;
        let (digest, size, buf) = writer.finish();
        let file = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx("write", temp.path())?;
        Ok(PendingBlob {
            digest,
            size,
            file,
            temp,
            blobs_dir,
            publishing,
        })
    }
}

/// A fully written, not yet visible blob. Dropping it discards the content.
pub struct PendingBlob {
    digest: Digest,
    size: u64,
    file: File,
    temp: NamedTempFile,
    blobs_dir: PathBuf,
    publishing: Publications,
}

impl PendingBlob {
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the content is until commit (to upload it without publishing).
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Reads the content back (for checks that need it before commit).
    pub fn reader(&self) -> Result<File> {
        File::open(self.temp.path()).ctx("open ingest file", self.temp.path())
    }

    /// Makes the content durable and moves it into `blobs/` under its digest.
    pub fn commit(self) -> Result<(Digest, u64)> {
        let (digest, size) = (self.digest.clone(), self.size);
        if let Some(publish) = self.publication() {
            publish()?;
        }
        Ok((digest, size))
    }

    /// [`PendingBlob::commit`] on a thread of its own (for large blobs on
    /// a critical path: a build step's layer): returns at once with the
    /// digest and size; the blob is in place when the fsync is done, and
    /// before anything makes it reachable (see the `publish` module's
    /// crash argument).
    pub fn publish(self) -> Result<(Digest, u64)> {
        let (digest, size) = (self.digest.clone(), self.size);
        let publishing = self.publishing.clone();
        if let Some(publish) = self.publication() {
            publishing.spawn(publish)?;
        }
        Ok((digest, size))
    }

    /// The fsync, rename and directory fsync that put the blob in place;
    /// none when a blob of the same digest is there already.
    fn publication(self) -> Option<impl FnOnce() -> Result<()> + Send + 'static> {
        let PendingBlob {
            digest,
            file,
            temp,
            blobs_dir,
            ..
        } = self;
        let dir = blobs_dir.join(digest.algorithm().as_str());
        let target = dir.join(digest.hex());
        if target.exists() {
            // Same digest, same content: keep the existing file.
            return None;
        }
        Some(move || {
            file.sync_all().ctx("fsync", temp.path())?;
            temp.persist(&target)
                .map_err(|e| e.error)
                .ctx("move blob into place at", &target)?;
            sync_dir(&dir)
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let before = self.writer.len();
        let n = self.writer.write(buf)?;
        if let Some(every) = self.writeback_every {
            if before / every != (before + n as u64) / every {
                self.start_writeback()?;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}
