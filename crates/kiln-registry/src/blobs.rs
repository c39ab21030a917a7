//! Blob GET/HEAD (whole, or one `Range`: `a-b`, `a-`, `-n`) and DELETE.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use tokio::io::AsyncReadExt;

use crate::error::{ApiError, ApiResult};
use crate::{not_modified, parse_digest, respond, App};

pub(crate) async fn handle(
    app: &App,
    name: &str,
    digest: &str,
    method: Method,
    req: Request,
) -> ApiResult {
    let digest = parse_digest(digest)?;
    let storage = &app.storage;
    match method {
        Method::GET | Method::HEAD => {
            let size = match storage.has_link(name, &digest)? {
                true => storage.blob_size(&digest)?,
                false => None,
            }
            .ok_or_else(|| ApiError::blob_unknown(&digest))?;
            let etag = format!("\"{digest}\"");
            let mut headers = vec![
                ("docker-content-digest", digest.to_string()),
                ("etag", etag.clone()),
                ("accept-ranges", "bytes".to_string()),
            ];
            if not_modified(&req, &etag) {
                return Ok(respond(StatusCode::NOT_MODIFIED, &headers, Body::empty()));
            }
            let range = req
                .headers()
                .get(header::RANGE)
                .map(|v| v.to_str().unwrap_or("invalid"));
            let (status, start, len) = match range {
                None => (StatusCode::OK, 0, size),
                Some(r) => {
                    let (start, len) =
                        parse_range(r, size).ok_or_else(|| ApiError::range_invalid(size))?;
                    headers.push((
                        "content-range",
                        format!("bytes {start}-{}/{size}", start + len - 1),
                    ));
                    (StatusCode::PARTIAL_CONTENT, start, len)
                }
            };
            headers.push(("content-type", "application/octet-stream".into()));
            headers.push(("content-length", len.to_string()));
            let body = if method == Method::HEAD || len == 0 {
                Body::empty()
            } else {
                let reader = storage.open_blob(&digest, start)?.take(len);
                Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                    reader,
                    256 * 1024,
                ))
            };
            Ok(respond(status, &headers, body))
        }
        Method::DELETE => {
            if !storage.unlink_blob(name, &digest)? {
                return Err(ApiError::blob_unknown(&digest));
            }
            Ok(respond(
                StatusCode::ACCEPTED,
                &[
                    ("docker-content-digest", digest.to_string()),
                    ("content-length", "0".into()),
                ],
                Body::empty(),
            ))
        }
        _ => Err(ApiError::unsupported("blobs take GET, HEAD and DELETE")),
    }
}

/// One byte range of a `size`-byte blob: (start, length), or `None` when it
/// cannot be satisfied (or is not one we serve: multiple ranges).
pub(crate) fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || size == 0 {
            return None;
        }
        let n = n.min(size);
        return Some((size - n, n));
    }
    let start: u64 = a.parse().ok()?;
    if start >= size {
        return None;
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        b.parse::<u64>().ok()?.min(size - 1)
    };
    (end >= start).then(|| (start, end - start + 1))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 10)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 10)));
        assert_eq!(parse_range("bytes=-1000", 100), Some((0, 100)));
        assert_eq!(parse_range("bytes=50-1000", 100), Some((50, 50)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-4", 100), None);
        assert_eq!(parse_range("bytes=-0", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-", 0), None);
    }
}
