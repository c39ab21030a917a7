//! The analysis's errors, each with the kind the CLI turns into an exit code.

use std::path::PathBuf;

use kiln_core::ErrorKind;
use kiln_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Content(#[from] kiln_core::content::ContentError),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading a layer: {0}")]
    Layer(#[source] std::io::Error),
    #[error(transparent)]
    Registry(Box<kiln_registry_client::RegistryError>),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Usage(String),
    #[error("CI rules misconfigured: {0}")]
    Config(String),
}

impl AnalyzeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AnalyzeError::Store(e) => e.kind(),
            AnalyzeError::Content(e) => e.kind(),
            AnalyzeError::Registry(e) => e.kind(),
            AnalyzeError::File { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            AnalyzeError::File { .. } => ErrorKind::Io,
            AnalyzeError::Layer(_)
            | AnalyzeError::Invalid(_)
            | AnalyzeError::Usage(_)
            | AnalyzeError::Config(_) => ErrorKind::InvalidInput,
        }
    }

    pub(crate) fn layer(e: std::io::Error) -> AnalyzeError {
        AnalyzeError::Layer(e)
    }

    pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AnalyzeError {
        let path = path.into();
        move |source| AnalyzeError::File { path, source }
    }
}

pub type Result<T, E = AnalyzeError> = std::result::Result<T, E>;
