//! The one error type of signing and verification; its [`ErrorKind`]
//! gives the CLI its exit code.

use kiln_core::ErrorKind;

pub type Result<T, E = SignError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A key file that cannot be read as any key format kiln knows.
    #[error("{what}: {reason}")]
    BadKey { what: String, reason: String },
    /// The password does not open the encrypted key.
    #[error("{what}: decryption failed: wrong password for this key (cosign's error: \"decrypt: encrypted: decryption failed\")")]
    WrongPassword { what: String },
    /// Malformed input: a predicate, a policy file, an annotation flag.
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// No signature (or attestation) passed: the image is not trusted.
    #[error("{0}")]
    Verification(String),
    /// The policy rejects the image outright.
    #[error("{0}")]
    Rejected(String),
    /// Something the format allows that kiln does not handle.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error(transparent)]
    Registry(#[from] kiln_registry_client::RegistryError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl SignError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SignError::BadKey { .. } | SignError::Invalid { .. } => ErrorKind::InvalidInput,
            SignError::WrongPassword { .. } => ErrorKind::Unauthorized,
            SignError::Verification(_) | SignError::Rejected(_) => ErrorKind::Integrity,
            SignError::Unsupported(_) => ErrorKind::Unsupported,
            SignError::Store(e) => e.kind(),
            SignError::Registry(e) => e.kind(),
            SignError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            SignError::Io { .. } => ErrorKind::Io,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl std::fmt::Display) -> SignError {
        SignError::Invalid {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn bad_key(what: impl Into<String>, reason: impl std::fmt::Display) -> SignError {
        SignError::BadKey {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
