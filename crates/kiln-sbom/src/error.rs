//! The SBOM's errors, each with the kind the CLI turns into an exit code.

use kiln_core::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// Finding or reading the image (store, archive, layout, registry).
    #[error(transparent)]
    Source(#[from] kiln_analyze::AnalyzeError),
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error("reading layer {layer}: {source}")]
    Layer {
        layer: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

impl SbomError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SbomError::Source(e) => e.kind(),
            SbomError::Store(e) => e.kind(),
            SbomError::Layer { .. } | SbomError::Usage(_) => ErrorKind::InvalidInput,
            SbomError::Io(_) => ErrorKind::Io,
        }
    }
}

pub type Result<T, E = SbomError> = std::result::Result<T, E>;
