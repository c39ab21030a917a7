use std::io;

use kiln_core::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("not a valid tar archive: {0}")]
    BadTar(String),
    #[error(
        "tar entry {path:?} is outside of the root (it climbs out with '..'); refusing the archive"
    )]
    Escape { path: String },
    #[error("{0}-compressed input is not supported; decompress it first or use gzip or zstd")]
    UnsupportedCompression(&'static str),
}

impl LayerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            LayerError::Io { .. } => ErrorKind::Io,
            LayerError::BadTar(_) | LayerError::Escape { .. } => ErrorKind::InvalidInput,
            LayerError::UnsupportedCompression(_) => ErrorKind::Unsupported,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> LayerError {
        let context = context.into();
        move |source| LayerError::Io { context, source }
    }
}
