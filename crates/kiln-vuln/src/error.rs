//! The crate's one error type; `kind` classifies it for exit codes.

use kiln_core::ErrorKind;
use std::path::PathBuf;

/// What went wrong while reading a database or an SBOM, or downloading.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No `<Ecosystem>/all.zip` under the database directory.
    #[error("no OSV database in {0} (run `kiln scan --update-db`, or give --db DIR holding <Ecosystem>/all.zip files as osv-scanner keeps them)")]
    NoDatabase(PathBuf),
    /// A database zip, an OSV record or an SBOM is malformed.
    #[error("{what}: {msg}")]
    Invalid {
        /// The file or record.
        what: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A download failed.
    #[error("download {url}: {msg}")]
    Download {
        /// What was asked for.
        url: String,
        /// Why it failed.
        msg: String,
    },
}

impl Error {
    /// The class of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Download { .. } => ErrorKind::Io,
            Error::NoDatabase(_) => ErrorKind::NotFound,
            Error::Invalid { .. } => ErrorKind::InvalidInput,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl std::fmt::Display, msg: impl std::fmt::Display) -> Error {
        Error::Invalid {
            what: what.to_string(),
            msg: msg.to_string(),
        }
    }
}
