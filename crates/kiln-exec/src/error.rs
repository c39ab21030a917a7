use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("user {user:?}: {reason}")]
    User { user: String, reason: String },
    #[error("the container runtime failed: {0}")]
    Runtime(String),
}

pub type Result<T, E = ExecError> = std::result::Result<T, E>;

pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ExecError {
    let path = path.into();
    move |source| ExecError::Io { what, path, source }
}
