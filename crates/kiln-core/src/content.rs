//! The content-store seams, in containerd's shape and kept small: a
//! [`Provider`] reads blobs by digest, an [`Ingester`] writes them through
//! verifying, optionally named (resumable) ingests, and [`Tags`] names
//! descriptors. The filesystem store implements all three; a read-only OCI
//! layout implements only [`Provider`] (so nothing can write into a layout
//! kiln was asked to read); the registry server (later) implements them
//! over its storage. `kiln_store::content_tests` is the shared suite any
//! implementation runs.

use std::io::{Read, Write};

use crate::image::{Descriptor, ModelError};
use crate::{Digest, ErrorKind};

/// Why a content operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("content has digest {actual} ({actual_size} bytes), expected {expected}")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        actual_size: u64,
    },
    #[error("blob {digest} has {actual} bytes, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("{message}")]
    Other { kind: ErrorKind, message: String },
}

impl ContentError {
    pub fn other(kind: ErrorKind, message: impl std::fmt::Display) -> ContentError {
        ContentError::Other {
            kind,
            message: message.to_string(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ContentError::NotFound(_) => ErrorKind::NotFound,
            ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. } => {
                ErrorKind::Integrity
            }
            ContentError::Model(_) => ErrorKind::InvalidInput,
            ContentError::Other { kind, .. } => *kind,
        }
    }
}

pub type Result<T> = std::result::Result<T, ContentError>;

/// Reads blobs.
pub trait Provider {
    /// The size of a blob, or `None` when it is not there.
    fn info(&self, digest: &Digest) -> Result<Option<u64>>;

    /// A reader of the blob's bytes. Implementations over content they did
    /// not verify themselves must verify while reading (see
    /// [`VerifyingReader`]).
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>>;

    /// A whole small blob (manifest, index, config), refused past `max`
    /// bytes, its digest checked.
    fn read_capped(&self, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open(digest)?
            .take(max + 1)
            .read_to_end(&mut buf)
            .map_err(|e| {
                // A verifying reader reports bad content as InvalidData.
                let kind = match e.kind() {
                    std::io::ErrorKind::InvalidData => ErrorKind::Integrity,
                    _ => ErrorKind::Io,
                };
                ContentError::other(kind, format!("read blob {digest}: {e}"))
            })?;
        if buf.len() as u64 > max {
            return Err(ContentError::other(
                ErrorKind::InvalidInput,
                format!("blob {digest} is larger than {max} bytes"),
            ));
        }
        let actual = Digest::sha256(&buf);
        if &actual != digest {
            return Err(ContentError::DigestMismatch {
                expected: digest.clone(),
                actual,
                actual_size: buf.len() as u64,
            });
        }
        Ok(buf)
    }
}

/// A blob being written. Nothing is visible until [`ContentWriter::commit`]
/// has checked the digest (and size, when given).
pub trait ContentWriter: Write + Send {
    /// Bytes already written: where a resumed download continues.
    fn offset(&self) -> u64;
    fn commit(self: Box<Self>, expected: Option<&Digest>, size: Option<u64>) -> Result<Digest>;
}

/// Writes blobs.
pub trait Ingester {
    /// A writer. With a `name` (e.g. the expected digest of a download),
    /// an ingest of that name left by an interrupted writer is resumed: its
    /// [`ContentWriter::offset`] says how much is already there. Two
    /// writers of one name at once: the second fails with
    /// [`ErrorKind::Conflict`].
    fn writer(&self, name: Option<&str>) -> Result<Box<dyn ContentWriter>>;
}

/// Names for descriptors (image tags, layout `ref.name`s).
pub trait Tags {
    fn resolve(&self, name: &str) -> Result<Option<Descriptor>>;
    /// Points `name` at `target`, replacing what it named.
    fn tag(&self, name: &str, target: &Descriptor) -> Result<()>;
    /// Removes `name`; false when it did not exist.
    fn untag(&self, name: &str) -> Result<bool>;
    /// Every name, with what it points at.
    fn tags(&self) -> Result<Vec<(String, Descriptor)>>;
}

/// Hashes what passes through and fails at the end of the stream when the
/// content is not what its digest (and size) say: for providers over
/// content nobody verified (a user's layout, a registry).
pub struct VerifyingReader<R> {
    inner: R,
    hasher: crate::Sha256Writer<std::io::Sink>,
    expected: Digest,
    size: Option<u64>,
    checked: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> VerifyingReader<R> {
        VerifyingReader {
            inner,
            hasher: crate::Sha256Writer::new(std::io::sink()),
            expected,
            size,
            checked: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.write_all(&buf[..n])?;
        if self.size.is_some_and(|s| self.hasher.len() > s) {
            return Err(std::io::Error::other(format!(
                "blob {} is larger than {} bytes",
                self.expected,
                self.size.unwrap_or_default()
            )));
        }
        if n == 0 && !buf.is_empty() && !self.checked {
            self.checked = true;
            let done =
                std::mem::replace(&mut self.hasher, crate::Sha256Writer::new(std::io::sink()));
            let (actual, len, _) = done.finish();
            if actual != self.expected || self.size.is_some_and(|s| s != len) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "content of blob {} has digest {actual} ({len} bytes)",
                        self.expected
                    ),
                ));
            }
        }
        Ok(n)
    }
}
