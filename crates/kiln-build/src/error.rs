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
    /// A flag of the build or of an instruction has a value that makes
    /// no sense (`--chmod=999`, `--output type=zip`, a mount over `/`).
    #[error("{0}")]
    BadOption(String),
    /// Something the build reads is not there: a COPY source, a bind
    /// mount's source, a stage or image named by `--from`, the target.
    #[error("{0}")]
    NotFound(String),
    /// An archive (ADD's, or a context on standard input) that cannot be
    /// read as one.
    #[error("{what}: {source}")]
    BadArchive {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The image a stage starts from (or copies from) cannot be used.
    #[error("{0}")]
    BaseImage(String),
    /// A RUN step's process ended with a non-zero status.
    #[error("process {command:?} did not complete successfully: exit code: {code}{tail}")]
    ProcessFailed {
        command: String,
        code: i32,
        /// The last lines it printed, introduced on a line of their own.
        tail: String,
    },
    /// `ADD URL` could not fetch or check the file.
    #[error("ADD {url}: {problem}")]
    Download { url: String, problem: String },
    /// An imported build cache (`--cache-from`) could not give a layer
    /// it lists, or could not be read.
    #[error("build cache {source_name}: {problem}")]
    Cache {
        source_name: String,
        problem: String,
    },
    /// What the build was not allowed to do (`--security=insecure`
    /// without `--allow`) or kiln cannot do yet (ssh mounts, ADD of git).
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    Unsupported(String),
    /// Stages that need each other.
    #[error("stages depend on each other in a cycle")]
    Cycle,
    /// kiln's own failure: a thread that panicked, a stage that was never
    /// scheduled.
    #[error("{0}")]
    Internal(String),
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
            BuildError::NotFound(_) => ErrorKind::NotFound,
            BuildError::Unsupported(_) => ErrorKind::Unsupported,
            BuildError::Download { .. } | BuildError::Cache { .. } | BuildError::Internal(_) => {
                ErrorKind::Io
            }
            BuildError::Context(_)
            | BuildError::Step { .. }
            | BuildError::BadOption(_)
            | BuildError::BadArchive { .. }
            | BuildError::BaseImage(_)
            | BuildError::ProcessFailed { .. }
            | BuildError::NotAllowed(_)
            | BuildError::Cycle => ErrorKind::InvalidInput,
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

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::ErrorKind;
    use std::error::Error as _;

    #[test]
    fn kinds_and_causes() {
        assert_eq!(BuildError::NotFound("a".into()).kind(), ErrorKind::NotFound);
        assert_eq!(
            BuildError::Unsupported("ssh".into()).kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(BuildError::Cycle.kind(), ErrorKind::InvalidInput);
        // The cause stays a cause, not text pasted into the message.
        let e = BuildError::BadArchive {
            what: "the context archive".into(),
            source: std::io::Error::other("unexpected end of file"),
        };
        assert_eq!(e.to_string(), "the context archive: unexpected end of file");
        assert!(e.source().is_some());
        let run = BuildError::ProcessFailed {
            command: "/bin/sh -c false".into(),
            code: 1,
            tail: String::new(),
        };
        assert_eq!(
            run.to_string(),
            "process \"/bin/sh -c false\" did not complete successfully: exit code: 1"
        );
    }
}
