/// The class of a failure, independent of which crate raised it.
///
/// Each crate keeps its own error enum with full context; this is the part
/// the caller branches on (the CLI maps it to an exit code and docker-style
/// wording, a registry server to an HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named thing (image, blob, tag, file) does not exist.
    NotFound,
    /// Creating something that is already there.
    AlreadyExists,
    /// The input (reference, archive, flag, JSON) is malformed.
    InvalidInput,
    /// The operation clashes with the current state (e.g. removing an image
    /// that other tags or images still use).
    Conflict,
    /// Credentials missing or rejected.
    Unauthorized,
    /// Valid input that kiln does not handle (yet).
    Unsupported,
    /// Content did not match its digest or size: corruption or tampering.
    Integrity,
    /// The operating system refused or failed an operation.
    Io,
}
