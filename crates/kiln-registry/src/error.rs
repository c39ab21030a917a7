//! The distribution spec's errors: a status, a code and a JSON body
//! (`{"errors":[{"code","message","detail"}]}`), and the storage's errors.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kiln_core::ErrorKind;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Corrupt(String),
    /// An upload's bytes do not have the digest the client named.
    #[error("the content has digest {actual}, not {expected}")]
    DigestMismatch { expected: String, actual: String },
}

impl StorageError {
    pub(crate) fn io(what: impl std::fmt::Display, source: std::io::Error) -> StorageError {
        StorageError::Io {
            what: what.to_string(),
            source,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            StorageError::Io { .. } => ErrorKind::Io,
            StorageError::Corrupt(_) | StorageError::DigestMismatch { .. } => ErrorKind::Integrity,
        }
    }
}

/// Why a request failed, as the client is told.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }

    pub(crate) fn blob_unknown(digest: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob unknown to registry: {digest}"),
        )
    }
    pub(crate) fn upload_unknown() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        )
    }
    pub(crate) fn upload_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", message)
    }
    pub(crate) fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }
    pub(crate) fn manifest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
    }
    pub(crate) fn manifest_unknown(reference: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest unknown: {reference}"),
        )
    }
    pub(crate) fn manifest_blob_unknown(digest: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            format!("manifest references a blob or manifest unknown to this repository: {digest}"),
        )
    }
    pub(crate) fn name_invalid(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name {name:?}"),
        )
    }
    pub(crate) fn name_unknown(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository name not known to registry: {name}"),
        )
    }
    pub(crate) fn tag_invalid(tag: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            format!("invalid tag {tag:?}"),
        )
    }
    pub(crate) fn size_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SIZE_INVALID", message)
    }
    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }
    pub(crate) fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "DENIED", message)
    }
    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
    }
    pub(crate) fn range_invalid(size: u64) -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "requested range not satisfiable",
        )
        .header("content-range", format!("bytes */{size}"))
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if let StorageError::DigestMismatch { .. } = e {
            return ApiError::digest_invalid(e.to_string());
        }
        tracing::error!("storage: {}", kiln_core::error_chain(&e));
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "errors": [{"code": self.code, "message": self.message, "detail": null}]
        });
        let mut response = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

pub(crate) type ApiResult<T = Response> = Result<T, ApiError>;
