//! The store behind the content traits of `kiln_core::content`, and
//! [`Layout`]: an OCI image layout somebody else wrote, opened read-only.
//!
//! `Layout` exists so that reading a user's layout (`kiln copy oci:DIR …`)
//! cannot write into it: it implements only [`Provider`] and opens nothing
//! for writing (a [`Store`] creates `ingest/` and `locks/` as it opens).
//! Its blobs were verified by nobody, so every read is verified.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use kiln_core::content::{ContentError, ContentWriter, Ingester, Provider, Tags, VerifyingReader};
use kiln_core::image::Descriptor;
use kiln_core::{Digest, ErrorKind, ImageRef, Sha256Writer};

use crate::blobs::{sync_dir, BlobStore, BlobWriter};
use crate::error::StoreError;
use crate::index::{Index, IndexEntryExt, REF_NAME};
use crate::Store;

impl From<StoreError> for ContentError {
    fn from(e: StoreError) -> ContentError {
        match e {
            StoreError::BlobNotFound(d) => ContentError::NotFound(d),
            StoreError::DigestMismatch {
                expected,
                actual,
                actual_size,
                ..
            } => ContentError::DigestMismatch {
                expected,
                actual,
                actual_size,
            },
            StoreError::SizeMismatch {
                digest,
                expected,
                actual,
            } => ContentError::SizeMismatch {
                digest,
                expected,
                actual,
            },
            other => ContentError::other(other.kind(), other),
        }
    }
}

impl Provider for BlobStore {
    fn info(&self, digest: &Digest) -> Result<Option<u64>, ContentError> {
        match self.size(digest) {
            Ok(n) => Ok(Some(n)),
            Err(StoreError::BlobNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ContentError> {
        Ok(Box::new(BlobStore::open(self, digest)?))
    }
}

impl Provider for Store {
    fn info(&self, digest: &Digest) -> Result<Option<u64>, ContentError> {
        self.blobs().info(digest)
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ContentError> {
        Provider::open(self.blobs(), digest)
    }
}

/// Large writes start disk writeback as they go (see
/// [`BlobWriter::set_writeback`]); small blobs never reach the threshold.
const WRITEBACK_EVERY: u64 = 16 << 20;

impl ContentWriter for BlobWriter {
    fn offset(&self) -> u64 {
        self.written()
    }

    fn commit(
        self: Box<Self>,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Digest, ContentError> {
        Ok(BlobWriter::commit(*self, expected, size)?.0)
    }
}

impl Ingester for BlobStore {
    fn writer(&self, name: Option<&str>) -> Result<Box<dyn ContentWriter>, ContentError> {
        match name {
            None => {
                let mut w = self.ingest()?;
                w.set_writeback(WRITEBACK_EVERY);
                Ok(Box::new(w))
            }
            Some(name) => Ok(Box::new(FileIngest::named(self, name)?)),
        }
    }
}

impl Ingester for Store {
    fn writer(&self, name: Option<&str>) -> Result<Box<dyn ContentWriter>, ContentError> {
        self.blobs().writer(name)
    }
}

/// A blob written to a file of its own and renamed into `blobs/` once
/// verified: a named ingest of the store, or a layout's hidden temp file.
struct FileIngest {
    file: Sha256Writer<BufWriter<File>>,
    backing: Backing,
    blobs_dir: PathBuf,
}

enum Backing {
    /// An ingest with a name, kept across processes until committed: a
    /// writer that dies leaves it, the next writer of that name continues
    /// where it stopped (the bytes already there are hashed again first).
    /// The file lock says a writer is alive: a second one gets a conflict,
    /// and GC's stale-ingest sweep leaves it alone.
    Named(PathBuf),
    /// Removed when dropped uncommitted.
    Temp(tempfile::NamedTempFile),
}

impl Backing {
    fn path(&self) -> &Path {
        match self {
            Backing::Named(p) => p,
            Backing::Temp(t) => t.path(),
        }
    }
}

impl Write for FileIngest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ContentWriter for FileIngest {
    fn offset(&self) -> u64 {
        self.file.len()
    }

    fn commit(
        self: Box<Self>,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Digest, ContentError> {
        let FileIngest {
            file,
            backing,
            blobs_dir,
        } = *self;
        let (digest, len, buf) = file.finish();
        let path = backing.path().to_path_buf();
        let io_err =
            |e: io::Error| ContentError::other(ErrorKind::Io, format!("{}: {e}", path.display()));
        let file = buf.into_inner().map_err(|e| io_err(e.into_error()))?;
        let refused = if let Some(expected) = expected.filter(|e| **e != digest) {
            Some(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual: digest.clone(),
                actual_size: len,
            })
        } else {
            size.filter(|s| *s != len)
                .map(|size| ContentError::SizeMismatch {
                    digest: digest.clone(),
                    expected: size,
                    actual: len,
                })
        };
        if let Some(e) = refused {
            // Wrong content is not worth resuming: start over next time.
            if let Backing::Named(p) = &backing {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
        file.sync_all().map_err(io_err)?;
        let dir = blobs_dir.join(digest.algorithm().as_str());
        let target = dir.join(digest.hex());
        match backing {
            Backing::Named(p) => fs::rename(&p, &target).map_err(io_err)?,
            Backing::Temp(t) => {
                t.persist(&target).map_err(|e| io_err(e.error))?;
            }
        }
        sync_dir(&dir)?;
        Ok(digest)
    }
}

impl FileIngest {
    fn named(blobs: &BlobStore, name: &str) -> Result<FileIngest, ContentError> {
        // Names are anything (a digest, a reference): the file name is
        // their hash, so no name can point outside `ingest/`.
        let path = blobs
            .ingest_dir()
            .join(format!("named-{}", Digest::sha256(name.as_bytes()).hex()));
        let io_err = |op: &str, e: io::Error| {
            ContentError::other(ErrorKind::Io, format!("{op} {}: {e}", path.display()))
        };
        let mut file = fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_err("open ingest", e))?;
        if file.try_lock().is_err() {
            return Err(ContentError::other(
                ErrorKind::Conflict,
                format!("ingest {name:?} is being written by another writer"),
            ));
        }
        // The bytes a dead writer left count: hash them again first
        // (appends go after them: the file is in append mode).
        file.rewind().map_err(|e| io_err("read ingest", e))?;
        let mut existing = file.try_clone().map_err(|e| io_err("read ingest", e))?;
        let mut writer = Sha256Writer::new(BufWriter::with_capacity(1 << 20, file));
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = existing
                .read(&mut chunk)
                .map_err(|e| io_err("read ingest", e))?;
            if n == 0 {
                break;
            }
            writer.skip_ahead(&chunk[..n]);
        }
        Ok(FileIngest {
            file: writer,
            backing: Backing::Named(path),
            blobs_dir: blobs.blobs_dir().to_path_buf(),
        })
    }
}

/// The store's tags: full references (`docker.io/library/busybox:latest`).
impl Tags for Store {
    fn resolve(&self, name: &str) -> Result<Option<Descriptor>, ContentError> {
        let name = parse_name(name)?;
        Ok(self.index()?.find(&name).map(strip_name))
    }

    fn tag(&self, name: &str, target: &Descriptor) -> Result<(), ContentError> {
        let name = parse_name(name)?;
        Ok(self.update_index(|index| {
            index.set_tag(&name, target);
            Ok(())
        })?)
    }

    fn untag(&self, name: &str) -> Result<bool, ContentError> {
        let name = parse_name(name)?;
        Ok(self.update_index(|index| Ok(index.remove_tag(&name).is_some()))?)
    }

    fn tags(&self) -> Result<Vec<(String, Descriptor)>, ContentError> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .filter_map(|e| Some((e.name()?.to_string(), strip_name(e))))
            .collect())
    }
}

fn parse_name(name: &str) -> Result<ImageRef, ContentError> {
    name.parse()
        .map_err(|e| ContentError::other(ErrorKind::InvalidInput, e))
}

fn strip_name(e: &Descriptor) -> Descriptor {
    let mut e = e.clone();
    e.annotations.remove(REF_NAME);
    e
}

/// An OCI image layout on disk that is not a kiln store: read-only when
/// [`Layout::open`]ed; [`Layout::create`] also lets it be written through
/// [`Ingester`] and [`Tags`], and then it gets only what the layout spec
/// names (`oci-layout`, `index.json`, `blobs/`): none of a store's
/// `ingest/`, `locks/` or `metadata/`.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    writable: bool,
}

impl Layout {
    /// Opens `root` if it looks like a layout (an `index.json`). Writes
    /// nothing, creates nothing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Layout, StoreError> {
        let root = root.into();
        let index = root.join("index.json");
        if !index.is_file() {
            return Err(StoreError::BadLayout {
                path: root,
                reason: "no index.json: not an OCI image layout".into(),
            });
        }
        Ok(Layout {
            root,
            writable: false,
        })
    }

    /// Opens `root` for writing, making an empty layout there if it is
    /// missing or empty.
    pub fn create(root: impl Into<PathBuf>) -> Result<Layout, StoreError> {
        use crate::error::IoContext;
        let root = root.into();
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).ctx("create", &blobs)?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            fs::write(&layout, crate::OCI_LAYOUT).ctx("write", &layout)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            Index::default().save(&index)?;
        }
        Ok(Layout {
            root,
            writable: true,
        })
    }

    /// Read-modify-write of `index.json` (replaced atomically; a layout has
    /// no lock, as for the other tools that write layouts).
    pub fn update_index<R>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let path = self.root.join("index.json");
        let mut index = Index::load(&path)?;
        let out = f(&mut index)?;
        index.save(&path)?;
        Ok(out)
    }

    /// Where a blob lives in the layout (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.path(digest)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `index.json`, parsed.
    pub fn index(&self) -> Result<Index, StoreError> {
        Index::load(&self.root.join("index.json"))
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }
}

/// A layout is written through a hidden temporary file in its blob
/// directory, renamed into place once verified (so even a crash leaves
/// only a dot-file, never a wrong blob).
impl Ingester for Layout {
    fn writer(&self, name: Option<&str>) -> Result<Box<dyn ContentWriter>, ContentError> {
        if !self.writable {
            return Err(ContentError::other(
                ErrorKind::Unsupported,
                format!("{} is open read-only", self.root.display()),
            ));
        }
        if name.is_some() {
            return Err(ContentError::other(
                ErrorKind::Unsupported,
                "an OCI layout keeps no resumable ingests",
            ));
        }
        let dir = self.root.join("blobs/sha256");
        let temp = tempfile::Builder::new()
            .prefix(".kiln-ingest-")
            .tempfile_in(&dir)
            .map_err(|e| ContentError::other(ErrorKind::Io, format!("{}: {e}", dir.display())))?;
        let file = temp
            .reopen()
            .map_err(|e| ContentError::other(ErrorKind::Io, format!("{}: {e}", dir.display())))?;
        Ok(Box::new(FileIngest {
            file: Sha256Writer::new(BufWriter::with_capacity(1 << 20, file)),
            backing: Backing::Temp(temp),
            blobs_dir: self.root.join("blobs"),
        }))
    }
}

/// A layout's names are its `org.opencontainers.image.ref.name`s, as
/// written (`v1`, or a full reference): layouts hold any string there.
impl Tags for Layout {
    fn resolve(&self, name: &str) -> Result<Option<Descriptor>, ContentError> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .find(|e| e.annotations.get(REF_NAME).map(String::as_str) == Some(name))
            .cloned())
    }

    fn tag(&self, name: &str, target: &Descriptor) -> Result<(), ContentError> {
        let mut e = target.clone();
        e.annotations.insert(REF_NAME.into(), name.to_string());
        Ok(self.update_index(|index| {
            index
                .manifests
                .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(name));
            index.manifests.push(e);
            Ok(())
        })?)
    }

    fn untag(&self, name: &str) -> Result<bool, ContentError> {
        Ok(self.update_index(|index| {
            let before = index.manifests.len();
            index
                .manifests
                .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(name));
            Ok(index.manifests.len() != before)
        })?)
    }

    fn tags(&self) -> Result<Vec<(String, Descriptor)>, ContentError> {
        Ok(self
            .index()?
            .manifests
            .iter()
            .filter_map(|e| Some((e.annotations.get(REF_NAME)?.clone(), e.clone())))
            .collect())
    }
}

impl Provider for Layout {
    fn info(&self, digest: &Digest) -> Result<Option<u64>, ContentError> {
        match fs::metadata(self.path(digest)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContentError::other(
                ErrorKind::Io,
                format!("{}: {e}", self.path(digest).display()),
            )),
        }
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ContentError> {
        let path = self.path(digest);
        match File::open(&path) {
            Ok(f) => Ok(Box::new(VerifyingReader::new(f, digest.clone(), None))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::other(
                ErrorKind::Io,
                format!("{}: {e}", path.display()),
            )),
        }
    }
}
