use std::path::PathBuf;

use kiln_core::ErrorKind;

/// What went wrong running a container, with what it went wrong on. Causes
/// stay as `source()` (the CLI prints the chain), not in the message.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `reason` is docker's (and BuildKit's) message, `unable to find
    /// user NAME: no matching entries in passwd file`.
    #[error("{reason}")]
    User { user: String, reason: String },
    /// The runtime program could not be started at all.
    #[error("cannot start the container runtime {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The runtime ran and refused: its own words in `message`.
    #[error("the container runtime failed to {action} container {id}: {message}")]
    Runtime {
        action: &'static str,
        id: String,
        message: String,
    },
    #[error("the runtime spec for container {id} is invalid")]
    Spec {
        id: String,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("a container named {0} already exists")]
    AlreadyExists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '-' and '.' (not first)")]
    InvalidId(String),
    #[error("{0}")]
    Unsupported(&'static str),
    /// `--cap-add`/`--cap-drop` named no capability.
    #[error("unknown capability {0:?}")]
    Capability(String),
    /// A seccomp profile kiln cannot read.
    #[error("invalid seccomp profile: {0}")]
    Seccomp(String),
    /// The runtime did not hand over the terminal it was asked for.
    #[error("container {id}: no terminal from the runtime: {reason}")]
    Terminal { id: String, reason: String },
}

impl ExecError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExecError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            ExecError::Io { .. } | ExecError::Spawn { .. } | ExecError::Runtime { .. } => {
                ErrorKind::Io
            }
            ExecError::User { .. }
            | ExecError::InvalidId(_)
            | ExecError::Spec { .. }
            | ExecError::Capability(_)
            | ExecError::Seccomp(_) => ErrorKind::InvalidInput,
            ExecError::Terminal { .. } => ErrorKind::Io,
            ExecError::NotFound(_) => ErrorKind::NotFound,
            ExecError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            ExecError::Unsupported(_) => ErrorKind::Unsupported,
        }
    }
}

pub type Result<T, E = ExecError> = std::result::Result<T, E>;

pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ExecError {
    let path = path.into();
    move |source| ExecError::Io { what, path, source }
}
