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
    #[error("snapshot {0} already exists")]
    AlreadyExists(String),
    #[error("snapshot {key}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("snapshot {name} is in use ({by}): remove that first")]
    InUse { name: String, by: String },
    #[error("snapshot {0} is not active (only an active snapshot can be committed)")]
    NotActive(String),
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
    #[error("the image config lists {diff_ids} diff_ids for {layers} layers: the image is corrupt; remove it and pull or load it again")]
    LayerCount { layers: usize, diff_ids: usize },
    #[error(transparent)]
    Layer(#[from] kiln_layer::LayerError),
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
}

impl SnapshotError {
    pub fn kind(&self) -> kiln_core::ErrorKind {
        use kiln_core::ErrorKind;
        match self {
            SnapshotError::NotFound(_) => ErrorKind::NotFound,
            SnapshotError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            SnapshotError::InvalidKey { .. } | SnapshotError::LayerCount { .. } => {
                ErrorKind::InvalidInput
            }
            SnapshotError::InUse { .. } | SnapshotError::NotActive(_) => ErrorKind::Conflict,
            SnapshotError::BackendMismatch { .. } => ErrorKind::Conflict,
            SnapshotError::Mount { .. } => ErrorKind::Unsupported,
            SnapshotError::Io { .. } => ErrorKind::Io,
            SnapshotError::Layer(e) => e.kind(),
            SnapshotError::Store(e) => e.kind(),
        }
    }
}

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.into();
    move |source| SnapshotError::Io { what, path, source }
}
