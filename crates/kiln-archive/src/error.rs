use std::path::PathBuf;

use kiln_core::{Digest, ErrorKind};
use kiln_layer::LayerError;
use kiln_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Content(#[from] kiln_core::content::ContentError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid --change {change:?}: {reason}")]
    BadChange { change: String, reason: String },
    #[error("invalid archive: {0}")]
    Invalid(String),
    #[error("invalid archive: entry {0:?} climbs out of the archive root with '..'")]
    Escape(String),
    #[error("invalid archive: {path} should have digest {expected} but its content hashes to {actual}; the archive is corrupt or was tampered with")]
    DigestMismatch {
        path: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("invalid archive: layer {path} does not match the image config: its content has diff_id {actual}, the config lists {expected}")]
    DiffIdMismatch {
        path: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("invalid archive: {0} is named in the archive's manifest but missing from it")]
    Missing(String),
    #[error(
        "cowardly refusing to write an archive to a terminal: use -o FILE or redirect the output"
    )]
    Terminal,
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ArchiveError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Store(e) => e.kind(),
            ArchiveError::Layer(e) => e.kind(),
            ArchiveError::Content(e) => e.kind(),
            ArchiveError::Io { .. } | ArchiveError::File { .. } => ErrorKind::Io,
            ArchiveError::DigestMismatch { .. } | ArchiveError::DiffIdMismatch { .. } => {
                ErrorKind::Integrity
            }
            ArchiveError::BadChange { .. }
            | ArchiveError::Invalid(_)
            | ArchiveError::Escape(_)
            | ArchiveError::Missing(_)
            | ArchiveError::Terminal => ErrorKind::InvalidInput,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArchiveError {
        let context = context.into();
        move |source| ArchiveError::Io { context, source }
    }
}

pub(crate) type Result<T, E = ArchiveError> = std::result::Result<T, E>;
