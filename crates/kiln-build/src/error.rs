use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Dockerfile(#[from] kiln_dockerfile::Error),
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error(transparent)]
    Snapshot(#[from] kiln_snapshot::SnapshotError),
    #[error(transparent)]
    Exec(#[from] kiln_exec::ExecError),
    #[error(transparent)]
    Layer(#[from] kiln_layer::LayerError),
    #[error(transparent)]
    Archive(#[from] kiln_archive::ArchiveError),
    #[error("build context: {0}")]
    Context(String),
    /// A step failed: where, what, and why.
    #[error("Dockerfile:{line}: {instruction}: {message}")]
    Step {
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl BuildError {
    /// The class of failure, for exit codes: a step that failed or a
    /// Dockerfile or request that makes no sense is input; the rest comes
    /// from the crate that failed.
    pub fn kind(&self) -> kiln_core::ErrorKind {
        use kiln_core::ErrorKind;
        match self {
            BuildError::Io { .. } | BuildError::Snapshot(_) => ErrorKind::Io,
            BuildError::Exec(e) => e.kind(),
            BuildError::Dockerfile(e) => e.kind(),
            BuildError::Store(e) => e.kind(),
            BuildError::Layer(e) => e.kind(),
            BuildError::Archive(e) => e.kind(),
            BuildError::Context(_) | BuildError::Step { .. } | BuildError::Invalid(_) => {
                ErrorKind::InvalidInput
            }
        }
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io { what, path, source }
}
