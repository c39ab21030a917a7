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

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io { what, path, source }
}
