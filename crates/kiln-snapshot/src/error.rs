use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot {0} does not exist")]
    NotFound(String),
    #[error("mounting an overlay on {path} failed: {source} (use the native snapshotter where overlayfs is not available)")]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the snapshots here were made by the {recorded} snapshotter, not {wanted}: remove them first (kiln builder prune -a)")]
    BackendMismatch {
        recorded: String,
        wanted: &'static str,
    },
    #[error(transparent)]
    Layer(#[from] kiln_layer::LayerError),
}

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.into();
    move |source| SnapshotError::Io { what, path, source }
}
