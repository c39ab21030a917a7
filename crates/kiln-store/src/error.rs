use std::io;
use std::path::PathBuf;

use kiln_core::{Digest, ErrorKind, ImageRef};

/// Everything that can go wrong in the store, with the thing it went wrong on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error("content verification failed: expected {expected} ({expected_size:?} bytes), got {actual} ({actual_size} bytes){context}")]
    DigestMismatch {
        expected: Digest,
        expected_size: Option<u64>,
        actual: Digest,
        actual_size: u64,
        context: String,
    },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("{path} is not a kiln store: {reason}")]
    BadLayout { path: PathBuf, reason: String },
    #[error("corrupt {what} {digest}: {reason}")]
    CorruptMetadata {
        what: &'static str,
        digest: Digest,
        reason: String,
    },
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    ReferencedByMany { id: String },
    /// docker's words for the last name of an image a container uses.
    #[error("conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {id}")]
    InUse {
        reference: String,
        container: String,
        id: String,
    },
    /// docker's `imageDeleteConflict`: `hard` ones not even `force` passes.
    #[error("conflict: unable to delete {id} ({}) - {message}", if *hard { "cannot be forced" } else { "must be forced" })]
    DeleteConflict {
        id: String,
        hard: bool,
        message: String,
    },
    #[error("conflict: unable to remove repository reference {reference:?}: {reason}")]
    Conflict { reference: String, reason: String },
    #[error("image ID prefix {0:?} is ambiguous: it matches several images; give more characters")]
    AmbiguousId(String),
    #[error("{0:?} cannot be used for a tag: a tag needs a name, not only a digest")]
    DigestOnlyTag(ImageRef),
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            StoreError::Io { .. } => ErrorKind::Io,
            StoreError::BlobNotFound(_) | StoreError::ImageNotFound(_) => ErrorKind::NotFound,
            StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. } => {
                ErrorKind::Integrity
            }
            StoreError::CorruptMetadata { .. } | StoreError::BadLayout { .. } => {
                ErrorKind::Integrity
            }
            StoreError::ReferencedByMany { .. }
            | StoreError::Conflict { .. }
            | StoreError::InUse { .. }
            | StoreError::DeleteConflict { .. } => ErrorKind::Conflict,
            StoreError::AmbiguousId(_) | StoreError::DigestOnlyTag(_) => ErrorKind::InvalidInput,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attach the operation and path to an io::Error.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            op,
            path: path.into(),
            source,
        })
    }
}
