//! Uploads: POST (monolithic with `?digest=`, a session, or a mount),
//! PATCH (streamed, or chunks with `Content-Range` that must continue where
//! the upload ends), PUT (the last bytes and the digest), GET (status) and
//! DELETE. One request writes an upload at a time (a per-upload lock), so
//! two clients interleaving chunks on one upload cannot mix bytes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use futures_util::StreamExt;
use kiln_core::{Algorithm, Digest};
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, ApiResult, StorageError};
use crate::hash::{digest_reader, Hasher};
use crate::names::valid_name;
use crate::signed_location::Refused;
use crate::{parse_digest, query, query_value, respond, App};

/// An upload's lock and the running sha256 of its first `hashed` bytes
/// (when the hash is lost — a failed chunk, a restart — the upload is
/// hashed again from storage when it finishes).
pub(crate) type Slot = Arc<tokio::sync::Mutex<UploadState>>;

pub(crate) struct UploadState {
    hasher: Option<Hasher>,
    hashed: u64,
}

impl App {
    fn slot(&self, id: &str) -> Slot {
        let mut map = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(UploadState {
                    hasher: Some(Hasher::new(Algorithm::Sha256)),
                    hashed: 0,
                }))
            })
            .clone()
    }

    fn forget(&self, id: &str) {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Streams `body` onto the upload at `offset` (its end); returns the
    /// bytes written and the storage's state after them. On failure what
    /// this request wrote is cut off again.
    async fn append(
        &self,
        name: &str,
        id: &str,
        (stored, offset): (&str, u64),
        body: Body,
        state: &mut UploadState,
    ) -> ApiResult<(u64, String)> {
        if state.hashed != offset {
            state.hasher = None;
        }
        // Request bodies arrive in small frames; write in large blocks.
        let mut writer = tokio::io::BufWriter::with_capacity(
            1 << 20,
            self.storage.upload_writer(name, id, stored, offset)?,
        );
        let mut stream = body.into_data_stream();
        let mut written = 0u64;
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            let bytes = match chunk {
                Ok(b) => b,
                Err(e) => {
                    failure = Some(ApiError::upload_invalid(format!("reading the body: {e}")));
                    break;
                }
            };
            if let Err(e) = writer.write_all(&bytes).await {
                failure = Some(StorageError::io(format!("upload {id}"), e).into());
                break;
            }
            if let Some(h) = state.hasher.as_mut() {
                h.update(&bytes);
            }
            written += bytes.len() as u64;
        }
        if failure.is_none() {
            if let Err(e) = writer.shutdown().await {
                failure = Some(StorageError::io(format!("upload {id}"), e).into());
            }
        }
        if failure.is_some() {
            // A write the sink accepted may still be in flight (tokio's
            // File hands writes to a blocking thread); dropping the writer
            // does not wait for it, and one landing after the truncate
            // would leave bytes past `offset`. Flushing waits for it; its
            // own error changes nothing, as the truncate follows.
            let _ = writer.flush().await;
        }
        let next = writer.get_ref().state();
        drop(writer);
        if let Some(e) = failure {
            self.storage.truncate_upload(name, id, offset)?;
            state.hasher = None;
            return Err(e);
        }
        state.hashed = offset + written;
        Ok((written, next))
    }

    /// Verifies the upload against `expected` and makes it that blob; a
    /// mismatch drops the upload (nothing is stored).
    async fn finish(
        &self,
        name: &str,
        id: &str,
        (stored, size): (&str, u64),
        state: &mut UploadState,
        expected: &Digest,
    ) -> ApiResult {
        let actual = match state.hasher.take() {
            // The storage hashes what it assembled as it stores it.
            _ if self.storage.verifies_uploads() => expected.clone(),
            Some(h) if state.hashed == size && h.algorithm() == expected.algorithm() => h.finish(),
            _ => digest_reader(
                expected.algorithm(),
                self.storage.open_upload(name, id, stored)?,
            )
            .await
            .map_err(|e| StorageError::io(format!("upload {id}"), e))?,
        };
        if &actual != expected {
            self.storage.cancel_upload(name, id, stored)?;
            self.forget(id);
            return Err(ApiError::digest_invalid(format!(
                "the content ({size} bytes) has digest {actual}, not {expected}"
            )));
        }
        let stored = self.storage.finish_upload(name, id, stored, expected);
        self.forget(id);
        stored?;
        Ok(created(name, expected))
    }
}

fn created(name: &str, digest: &Digest) -> axum::response::Response {
    respond(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

impl App {
    /// Where the client continues upload `id`: with the storage's `state`
    /// signed into `_state` when there is one.
    fn upload_location(&self, name: &str, id: &str, state: &str) -> String {
        if state.is_empty() {
            return format!("/v2/{name}/blobs/uploads/{id}");
        }
        format!(
            "/v2/{name}/blobs/uploads/{id}?_state={}",
            self.signer.sign(name, id, state)
        )
    }

    /// The storage's state of upload `id` from the request's `_state`
    /// (empty without one); a `_state` this registry did not sign for this
    /// upload is refused.
    fn upload_state(&self, name: &str, id: &str, req: &Request) -> ApiResult<String> {
        let q = query(req);
        let Some(token) = query_value(&q, "_state") else {
            return Ok(String::new());
        };
        self.signer.verify(name, id, token).map_err(|why| {
            ApiError::upload_invalid(match why {
                Refused::Signature => "the upload URL's _state is not signed by this registry's upload secret: replicas must share --upload-secret-file; restart the upload",
                Refused::Mismatch => "the upload URL's _state belongs to another upload; use the Location the registry returned",
                Refused::Malformed => "the upload URL's _state is malformed; use the Location the registry returned",
            })
        })
    }
}

fn session(
    app: &App,
    status: StatusCode,
    (name, id, state): (&str, &str, &str),
    size: u64,
) -> axum::response::Response {
    respond(
        status,
        &[
            ("location", app.upload_location(name, id, state)),
            ("range", format!("0-{}", size.saturating_sub(1))),
            ("docker-upload-uuid", id.to_string()),
            ("oci-chunk-min-length", "0".into()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

/// `POST /v2/<name>/blobs/uploads/`
pub(crate) async fn start(app: &App, name: &str, req: Request) -> ApiResult {
    let q = query(&req);
    if let Some(mount) = query_value(&q, "mount") {
        let digest = parse_digest(mount)?;
        let from = query_value(&q, "from").filter(|f| valid_name(f));
        // Blobs are stored once: a mount only links. Without `from`, any
        // stored blob may be mounted (the client knows its digest, and no
        // access rules exist yet).
        let mountable = match from {
            Some(from) => app.storage.has_link(from, &digest)?,
            None => app.storage.blob_size(&digest)?.is_some(),
        };
        if mountable {
            app.storage.link_blob(name, &digest)?;
            return Ok(created(name, &digest));
        }
    }
    let expected = query_value(&q, "digest").map(parse_digest).transpose()?;
    let (id, stored) = app.storage.new_upload(name)?;
    let Some(expected) = expected else {
        return Ok(session(app, StatusCode::ACCEPTED, (name, &id, &stored), 0));
    };
    let slot = app.slot(&id);
    let mut state = slot.lock().await;
    let mut last = stored.clone();
    let result = async {
        let (size, next) = app
            .append(name, &id, (&stored, 0), req.into_body(), &mut state)
            .await?;
        last = next;
        app.finish(name, &id, (&last, size), &mut state, &expected)
            .await
    }
    .await;
    if result.is_err() {
        app.storage.cancel_upload(name, &id, &last)?;
        app.forget(&id);
    }
    result
}

/// `Content-Range: a-b` (also accepted with a `bytes ` prefix).
fn content_range(req: &Request) -> ApiResult<Option<(u64, u64)>> {
    let Some(v) = req.headers().get("content-range") else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let parsed = s.split_once('-').and_then(|(a, b)| {
        let b = b.split('/').next().unwrap_or(b);
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    });
    match parsed {
        Some((a, b)) if b >= a => Ok(Some((a, b))),
        _ => Err(ApiError::upload_invalid(format!("bad Content-Range {s:?}"))),
    }
}

/// `PATCH|PUT|GET|DELETE /v2/<name>/blobs/uploads/<id>`
pub(crate) async fn handle(
    app: &App,
    name: &str,
    id: &str,
    method: Method,
    req: Request,
) -> ApiResult {
    if !crate::names::valid_upload_id(id) {
        return Err(ApiError::upload_unknown());
    }
    let stored = app.upload_state(name, id, &req)?;
    let slot = app.slot(id);
    let mut state = slot.lock().await;
    let Some(size) = app.storage.upload_size(name, id, &stored)? else {
        drop(state);
        app.forget(id);
        return Err(ApiError::upload_unknown());
    };
    match method {
        Method::GET => Ok(session(
            app,
            StatusCode::NO_CONTENT,
            (name, id, &stored),
            size,
        )),
        Method::DELETE => {
            app.storage.cancel_upload(name, id, &stored)?;
            app.forget(id);
            Ok(respond(
                StatusCode::NO_CONTENT,
                &[("content-length", "0".into())],
                Body::empty(),
            ))
        }
        Method::PATCH | Method::PUT => {
            let expected = if method == Method::PUT {
                let q = query(&req);
                let d = query_value(&q, "digest")
                    .ok_or_else(|| ApiError::digest_invalid("PUT needs ?digest="))?;
                Some(parse_digest(d)?)
            } else {
                None
            };
            let range = content_range(&req)?;
            if let Some((a, _)) = range {
                if a != size {
                    return Err(ApiError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UPLOAD_INVALID",
                        format!("chunk starts at {a}, the upload has {size} bytes"),
                    )
                    .header("location", app.upload_location(name, id, &stored))
                    .header("range", format!("0-{}", size.saturating_sub(1)))
                    .header("docker-upload-uuid", id));
                }
            }
            let (written, next) = app
                .append(name, id, (&stored, size), req.into_body(), &mut state)
                .await?;
            if let Some((a, b)) = range {
                if written != b - a + 1 {
                    app.storage.truncate_upload(name, id, size)?;
                    state.hasher = None;
                    return Err(ApiError::size_invalid(format!(
                        "Content-Range {a}-{b} but {written} bytes sent"
                    )));
                }
            }
            let size = size + written;
            match expected {
                None => Ok(session(app, StatusCode::ACCEPTED, (name, id, &next), size)),
                Some(expected) => {
                    app.finish(name, id, (&next, size), &mut state, &expected)
                        .await
                }
            }
        }
        _ => Err(ApiError::unsupported(
            "uploads take PATCH, PUT, GET and DELETE",
        )),
    }
}
