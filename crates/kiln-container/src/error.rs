//! What can go wrong with containers, by kind: the CLI's messages and exit
//! codes come from these.

use std::path::PathBuf;

use kiln_core::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// docker: `Error: No such container: x`.
    #[error("No such container: {0}")]
    NotFound(String),
    /// docker: `get NAME: no such volume`.
    #[error("get {0}: no such volume: kiln volume ls lists the volumes there are")]
    NoSuchVolume(String),
    #[error("multiple containers match {prefix:?} ({count}): give more of the ID or the name")]
    Ambiguous { prefix: String, count: usize },
    /// docker's words, with the owner's ID.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// docker: `You cannot remove a running container ID. Stop the
    /// container before attempting removal or force remove`.
    #[error("You cannot remove a {state} container {id}. Stop the container before attempting removal or force remove")]
    Running { id: String, state: &'static str },
    /// docker cp's `No such container:path: c:/x`.
    #[error("No such container:path: {0}")]
    NoSuchPath(String),
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("{0}")]
    InvalidConfig(String),
    /// An exec's program cannot be run: docker's message, and its exit
    /// code (126 cannot be invoked, 127 not found).
    #[error("OCI runtime exec failed: exec failed: unable to start container process: {message}: unknown")]
    CannotRun { code: i32, message: String },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id}: {message}")]
    Start { id: String, message: String },
    #[error(transparent)]
    Exec(#[from] kiln_exec::ExecError),
    #[error(transparent)]
    Snapshot(#[from] kiln_snapshot::SnapshotError),
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error(transparent)]
    Archive(#[from] kiln_archive::ArchiveError),
    #[error(transparent)]
    Layer(#[from] kiln_layer::LayerError),
    #[error(transparent)]
    Network(#[from] kiln_network::NetworkError),
}

pub type Result<T, E = ContainerError> = std::result::Result<T, E>;

/// An `Io` error maker for `map_err`.
pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.into();
    move |source| ContainerError::Io {
        action,
        path,
        source,
    }
}

impl ContainerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::NotFound(_)
            | ContainerError::NoSuchPath(_)
            | ContainerError::NoSuchVolume(_) => ErrorKind::NotFound,
            ContainerError::Ambiguous { .. } | ContainerError::InvalidName(_) => {
                ErrorKind::InvalidInput
            }
            ContainerError::InvalidConfig(_) | ContainerError::CannotRun { .. } => {
                ErrorKind::InvalidInput
            }
            ContainerError::NameInUse { .. } => ErrorKind::AlreadyExists,
            ContainerError::Running { .. } | ContainerError::NotRunning(_) => ErrorKind::Conflict,
            ContainerError::Io { .. } | ContainerError::Start { .. } => ErrorKind::Io,
            ContainerError::Exec(e) => e.kind(),
            ContainerError::Snapshot(e) => e.kind(),
            ContainerError::Store(e) => e.kind(),
            ContainerError::Archive(e) => e.kind(),
            ContainerError::Layer(e) => e.kind(),
            ContainerError::Network(e) => e.kind(),
        }
    }
}
