use kiln_core::{Digest, ErrorKind};
use kiln_store::StoreError;

/// Everything that can go wrong talking to a registry. Each message names
/// the registry or repository, what was asked for, and (where there is one)
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {registry}: {detail}")]
    Connect { registry: String, detail: String },
    #[error("{registry}: authentication required ({detail}); log in with `kiln login {registry}`")]
    Unauthorized { registry: String, detail: String },
    #[error("{registry}: access to {repository} denied ({detail}); check that the repository exists and that your credentials may {action} it")]
    Denied {
        registry: String,
        repository: String,
        action: &'static str,
        detail: String,
    },
    #[error("{what} not found in {repository} ({detail})")]
    NotFound {
        what: String,
        repository: String,
        detail: String,
    },
    #[error("{url}: the registry kept answering {status} after {attempts} attempts ({detail})")]
    GaveUp {
        url: String,
        status: u16,
        attempts: u32,
        detail: String,
    },
    #[error("{url}: unexpected answer {status} from the registry ({detail})")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: the registry sent content with digest {actual}, expected {expected}; nothing was stored")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: the registry sent {actual} bytes, the descriptor says {expected}; nothing was stored")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{what} is larger than {limit} bytes; refusing it (manifests are small JSON documents)"
    )]
    TooLarge { what: String, limit: u64 },
    #[error(
        "{what} has media type {media_type:?}, which kiln does not handle; expected {expected}"
    )]
    UnsupportedMediaType {
        what: String,
        media_type: String,
        expected: &'static str,
    },
    #[error("{reference} has no image for platform {wanted}; it offers: {available}. Choose one with --platform")]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("invalid {what} from the registry: {reason}")]
    Invalid { what: String, reason: String },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("{0}")]
    Config(String),
    #[error("compress layer {digest} for the push: {source}")]
    Compress {
        digest: kiln_core::Digest,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Content(#[from] kiln_core::content::ContentError),
}

impl From<kiln_core::image::ModelError> for RegistryError {
    fn from(e: kiln_core::image::ModelError) -> RegistryError {
        use kiln_core::image::ModelError;
        match e {
            ModelError::Invalid { what, reason } => RegistryError::Invalid { what, reason },
            ModelError::UnsupportedMediaType {
                what,
                media_type,
                expected,
            } => RegistryError::UnsupportedMediaType {
                what,
                media_type,
                expected,
            },
        }
    }
}

impl RegistryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Connect { .. }
            | RegistryError::GaveUp { .. }
            | RegistryError::Status { .. }
            | RegistryError::Compress { .. } => ErrorKind::Io,
            RegistryError::Unauthorized { .. } | RegistryError::Denied { .. } => {
                ErrorKind::Unauthorized
            }
            RegistryError::Credentials(_) => ErrorKind::Unauthorized,
            RegistryError::NotFound { .. } => ErrorKind::NotFound,
            RegistryError::DigestMismatch { .. }
            | RegistryError::SizeMismatch { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::Invalid { .. } => ErrorKind::Integrity,
            RegistryError::UnsupportedMediaType { .. } => ErrorKind::Unsupported,
            RegistryError::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            RegistryError::Config(_) => ErrorKind::InvalidInput,
            RegistryError::Store(e) => e.kind(),
            RegistryError::Content(e) => e.kind(),
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
