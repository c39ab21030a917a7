//! Blobs out: cross-repository mounts and uploads, in one PUT, one
//! streamed PATCH or chunks.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use kiln_core::Digest;
use kiln_store::StoreError;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::StatusCode;

use super::{check, OnBytes};
use crate::client::{Client, Repo};
use crate::error::{RegistryError, Result};

/// Blobs up to this size go up in one PUT; larger ones stream in a PATCH.
const MONOLITHIC_MAX: u64 = 8 << 20;
/// Chunk size when the registry asks for chunked uploads and its minimum
/// is smaller.
const CHUNK: u64 = 8 << 20;

impl Client {
    /// Tries to mount `digest` from repository `from` of the same registry.
    /// Returns `None` when mounted, or the upload session the registry
    /// opened instead.
    pub async fn mount_blob(
        &self,
        repo: &Repo,
        digest: &Digest,
        from: &str,
    ) -> Result<Option<String>> {
        let url = self.url(repo, "blobs/uploads/");
        let scopes = [repo.push_scope(), format!("repository:{from}:pull")];
        let resp = self
            .send(&repo.registry, &scopes, || {
                self.http()
                    .post(&url)
                    .query(&[("mount", digest.to_string()), ("from", from.to_string())])
                    .header(CONTENT_LENGTH, 0)
            })
            .await?;
        let what = format!("mount of {digest} from {from}");
        let resp = check(resp, repo, &what, "push to").await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(None);
        }
        Ok(Some(self.location(repo, &resp, &what)?))
    }

    /// Uploads a blob from a file: one PUT when small, else one streamed
    /// PATCH, or chunks of at least `OCI-Chunk-Min-Length` when the registry
    /// asks for that. `session` is an upload already opened (by a mount
    /// attempt); otherwise one is started.
    pub async fn upload_blob(
        &self,
        repo: &Repo,
        digest: &Digest,
        path: &Path,
        session: Option<String>,
        on_bytes: OnBytes<'_>,
    ) -> Result<()> {
        let what = format!("upload of {digest} to {repo}");
        let scopes = [repo.push_scope()];
        let io_err = |e: std::io::Error| {
            RegistryError::Store(StoreError::Io {
                op: "read blob",
                path: path.to_path_buf(),
                source: e,
            })
        };
        let size = std::fs::metadata(path).map_err(io_err)?.len();
        let (mut location, min_chunk) = match session {
            Some(l) => (l, None),
            None => {
                let url = self.url(repo, "blobs/uploads/");
                let resp = self
                    .send(&repo.registry, &scopes, || {
                        self.http().post(&url).header(CONTENT_LENGTH, 0)
                    })
                    .await?;
                let resp = check(resp, repo, &what, "push to").await?;
                let min: Option<u64> = resp
                    .headers()
                    .get("OCI-Chunk-Min-Length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                (self.location(repo, &resp, &what)?, min)
            }
        };

        if let Some(min) = min_chunk.filter(|_| size > MONOLITHIC_MAX) {
            let chunk = CHUNK.max(min);
            let mut file = std::fs::File::open(path).map_err(io_err)?;
            let mut start = 0u64;
            while start < size {
                let len = chunk.min(size - start);
                let mut buf = vec![0u8; len as usize];
                file.seek(SeekFrom::Start(start)).map_err(io_err)?;
                file.read_exact(&mut buf).map_err(io_err)?;
                let body = Bytes::from(buf);
                let range = format!("{}-{}", start, start + len - 1);
                let loc = location.clone();
                let resp = self
                    .send_with(&repo.registry, &scopes, 1, || {
                        self.http()
                            .patch(&loc)
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_RANGE, &range)
                            .header(CONTENT_LENGTH, len)
                            .body(body.clone())
                    })
                    .await?;
                let resp = check(resp, repo, &what, "push to").await?;
                location = self.location(repo, &resp, &what)?;
                start += len;
                on_bytes(start);
            }
            return self
                .finish_upload(repo, digest, &location, None, &what)
                .await;
        }

        if size <= MONOLITHIC_MAX {
            let bytes = Bytes::from(std::fs::read(path).map_err(io_err)?);
            self.finish_upload(repo, digest, &location, Some(bytes), &what)
                .await?;
            on_bytes(size);
            return Ok(());
        }

        // One streamed PATCH. Not retried by itself: a broken stream leaves
        // the session in an unknown state, so the caller restarts the upload.
        let file = tokio::fs::File::open(path).await.map_err(io_err)?;
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |chunk| {
            if let Ok(c) = &chunk {
                counter.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            chunk
        });
        let body = std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(stream)));
        let loc = location.clone();
        let resp = self
            .send_with(&repo.registry, &scopes, 1, || {
                let b = body
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_else(|| reqwest::Body::from(Vec::new()));
                self.http()
                    .patch(&loc)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(b)
            })
            .await?;
        on_bytes(sent.load(std::sync::atomic::Ordering::Relaxed));
        let resp = check(resp, repo, &what, "push to").await?;
        location = self.location(repo, &resp, &what)?;
        self.finish_upload(repo, digest, &location, None, &what)
            .await
    }

    async fn finish_upload(
        &self,
        repo: &Repo,
        digest: &Digest,
        location: &str,
        body: Option<Bytes>,
        what: &str,
    ) -> Result<()> {
        let mut url = reqwest::Url::parse(location).map_err(|e| RegistryError::Invalid {
            what: format!("upload location for {what}"),
            reason: format!("{location:?}: {e}"),
        })?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = self
            .send(&repo.registry, &[repo.push_scope()], || {
                let r = self
                    .http()
                    .put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream");
                match &body {
                    Some(b) => r.header(CONTENT_LENGTH, b.len()).body(b.clone()),
                    None => r.header(CONTENT_LENGTH, 0),
                }
            })
            .await?;
        check(resp, repo, what, "push to").await?;
        Ok(())
    }
}
