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

/// An error and all its causes as one line (`a: b: c`), skipping a cause
/// its parent already quotes. Network errors need this: reqwest's own
/// message ("error sending request") says nothing without its sources.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}
