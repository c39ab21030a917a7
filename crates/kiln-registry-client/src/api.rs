//! The distribution API calls, one method each: manifests (get/put), blobs
//! (exists, fetch into the store with verification and resume, upload,
//! cross-repository mount).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use kiln_core::content::{ContentError, ContentWriter, Ingester};
use kiln_core::Digest;
use kiln_core::ErrorKind;
use kiln_store::StoreError;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Response, StatusCode};

use crate::client::{error_chain, error_detail, Client, Repo};
use crate::error::{RegistryError, Result};
use crate::manifest::{RawManifest, ACCEPT, MAX_MANIFEST_BYTES};

/// Blobs up to this size go up in one PUT; larger ones stream in a PATCH.
const MONOLITHIC_MAX: u64 = 8 << 20;
/// Chunk size when the registry asks for chunked uploads and its minimum
/// is smaller.
const CHUNK: u64 = 8 << 20;

/// Reports bytes as they move (per blob).
pub type OnBytes<'a> = &'a (dyn Fn(u64) + Send + Sync);

impl Client {
    /// Fetches a manifest or index by tag or digest, verifying it against
    /// the digest asked for, or the one the registry claims.
    pub async fn get_manifest(&self, repo: &Repo, reference: &str) -> Result<RawManifest> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let scopes = [repo.pull_scope()];
        let resp = self
            .send(&repo.registry, &scopes, || {
                self.http().get(&url).header("Accept", ACCEPT)
            })
            .await?;
        // Named as the user would write it: name@digest or name:tag.
        let sep = if reference.contains(':') { '@' } else { ':' };
        let what = format!("manifest {repo}{sep}{reference}");
        let resp = check(resp, repo, &what, "pull").await?;
        let header_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let claimed = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let bytes = read_capped(resp, MAX_MANIFEST_BYTES, &what, &repo.registry).await?;
        let m = RawManifest::new(bytes, header_type.as_deref(), &what)?;
        let expected = reference.parse::<Digest>().ok().or(claimed);
        if let Some(expected) = expected {
            if expected != m.digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected,
                    actual: m.digest,
                });
            }
        }
        Ok(m)
    }

    /// Every tag of the repository, following the registry's pagination
    /// (`Link: <…>; rel="next"`). Capped in pages and bytes: a registry
    /// could otherwise keep kiln reading forever.
    pub async fn list_tags(&self, repo: &Repo) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        const MAX_PAGES: usize = 1000;
        let what = format!("tag list of {repo}");
        let mut url = self.url(repo, "tags/list");
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self
                .send(&repo.registry, &[repo.pull_scope()], || {
                    self.http().get(&url)
                })
                .await?;
            let resp = check(resp, repo, &what, "pull").await?;
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|l| self.location_of(repo, &l, &what))
                .transpose()?;
            // Credentials go only to the registry asked: a next page
            // elsewhere is refused.
            if let Some(n) = &next {
                if !n.starts_with(&format!("{}/", self.base_url(&repo.registry))) {
                    return Err(RegistryError::Invalid {
                        what,
                        reason: format!("next page {n:?} is on another host"),
                    });
                }
            }
            let bytes = read_capped(resp, MAX_MANIFEST_BYTES, &what, &repo.registry).await?;
            let page: Page =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Err(RegistryError::Invalid {
            what,
            reason: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// Uploads a manifest under a tag or its digest; returns the digest the
    /// registry reports, checked against the bytes.
    pub async fn put_manifest(
        &self,
        repo: &Repo,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let body = Bytes::copy_from_slice(bytes);
        let resp = self
            .send(&repo.registry, &[repo.push_scope()], || {
                self.http()
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        let what = format!("manifest {repo}:{reference}");
        let resp = check(resp, repo, &what, "push to").await?;
        let digest = Digest::sha256(bytes);
        if let Some(claimed) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
        {
            if claimed != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("{what} (as stored by the registry)"),
                    expected: digest,
                    actual: claimed,
                });
            }
        }
        Ok(digest)
    }

    /// The blob's size if the repository has it.
    pub async fn blob_exists(
        &self,
        repo: &Repo,
        digest: &Digest,
        scope_push: bool,
    ) -> Result<Option<u64>> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let scopes = [if scope_push {
            repo.push_scope()
        } else {
            repo.pull_scope()
        }];
        let resp = self
            .send(&repo.registry, &scopes, || self.http().head(&url))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check(resp, repo, &format!("blob {digest}"), "read").await?;
        Ok(resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Downloads a blob into the store. Every byte is hashed on the way in;
    /// the blob becomes visible only if digest and size match. An
    /// interrupted download resumes with a Range request; a registry that
    /// ignores the range gets a fresh start.
    ///
    /// With `layer` (the blob's compression, for a tar layer) the content
    /// is also decoded on the way and the layer's diff_id and uncompressed
    /// size are returned, when it decodes.
    pub async fn fetch_blob(
        &self,
        repo: &Repo,
        digest: &Digest,
        size: u64,
        blobs: &dyn Ingester,
        layer: Option<kiln_layer::Compression>,
        on_bytes: OnBytes<'_>,
    ) -> Result<Option<(Digest, u64)>> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let scopes = [repo.pull_scope()];
        let what = format!("blob {digest} of {repo}");
        // Anonymous ingests: a download that dies leaves nothing to resume
        // across processes; within one, an interrupted body is resumed by
        // Range below.
        let ingest = || -> Result<Box<dyn ContentWriter>> { Ok(blobs.writer(None)?) };
        let mut out = ingest()?;
        // A plain tar layer is its own diff_id: the blob writer's hash
        // and size say it all.
        let plain = layer == Some(kiln_layer::Compression::None);
        let mut measure = layer
            .filter(|_| !plain)
            .map(crate::measure::LayerMeasure::new);
        let mut interruptions = 0u32;
        loop {
            let offset = out.offset();
            let resp = self
                .send(&repo.registry, &scopes, || {
                    let r = self.http().get(&url);
                    if offset > 0 {
                        r.header(RANGE, format!("bytes={offset}-"))
                    } else {
                        r
                    }
                })
                .await?;
            let resp = check(resp, repo, &what, "pull").await?;
            if offset > 0 {
                let resumed = resp.status() == StatusCode::PARTIAL_CONTENT
                    && content_range_start(&resp) == Some(offset);
                if !resumed {
                    // Range not honoured: start over with a clean ingest.
                    out = ingest()?;
                    if let Some(m) = &mut measure {
                        m.reset();
                    }
                    on_bytes(0);
                }
            }
            let mut stream = resp.bytes_stream();
            let mut failure = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        if out.offset() + chunk.len() as u64 > size {
                            return Err(RegistryError::SizeMismatch {
                                what,
                                expected: size,
                                actual: out.offset() + chunk.len() as u64,
                            });
                        }
                        out.write_all(&chunk).map_err(|e| {
                            RegistryError::Content(ContentError::other(
                                ErrorKind::Io,
                                format!("write {what}: {e}"),
                            ))
                        })?;
                        if let Some(m) = &mut measure {
                            m.feed(&chunk);
                        }
                        on_bytes(out.offset());
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            match failure {
                None if out.offset() == size => break,
                None => {
                    // The body ended early with no error: a truncated answer.
                    interruptions += 1;
                    if interruptions >= self.options().max_attempts {
                        return Err(RegistryError::SizeMismatch {
                            what,
                            expected: size,
                            actual: out.offset(),
                        });
                    }
                }
                Some(e) => {
                    interruptions += 1;
                    if interruptions >= self.options().max_attempts {
                        return Err(RegistryError::Connect {
                            registry: repo.registry.clone(),
                            detail: format!(
                                "{what}: download broke off {interruptions} times, last: {}",
                                error_chain(&e)
                            ),
                        });
                    }
                    tracing::debug!("{what}: interrupted at {} bytes: {e}", out.offset());
                }
            }
        }
        // The fsync in commit blocks: keep it off the runtime's workers so
        // the other downloads go on meanwhile.
        let expected = digest.clone();
        let committed =
            tokio::task::spawn_blocking(move || out.commit(Some(&expected), Some(size)))
                .await
                .map_err(|e| RegistryError::Config(format!("blob commit task failed: {e}")))?;
        match committed {
            Ok(_) if plain => Ok(Some((digest.clone(), size))),
            Ok(_) => Ok(measure.and_then(|m| m.finish())),
            Err(ContentError::DigestMismatch { actual, .. }) => {
                Err(RegistryError::DigestMismatch {
                    what,
                    expected: digest.clone(),
                    actual,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

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

    /// The absolute URL of an upload session from a `Location` header
    /// (registries may send a path).
    fn location(&self, repo: &Repo, resp: &Response, what: &str) -> Result<String> {
        let raw = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Invalid {
                what: what.to_string(),
                reason: "the registry answered without a Location header".into(),
            })?;
        self.location_of(repo, raw, what)
    }

    /// An absolute URL on the registry from a path or URL it sent.
    fn location_of(&self, repo: &Repo, raw: &str, what: &str) -> Result<String> {
        let base = reqwest::Url::parse(&self.base_url(&repo.registry)).map_err(|e| {
            RegistryError::Invalid {
                what: what.to_string(),
                reason: e.to_string(),
            }
        })?;
        base.join(raw)
            .map(|u| u.to_string())
            .map_err(|e| RegistryError::Invalid {
                what: what.to_string(),
                reason: format!("bad Location {raw:?}: {e}"),
            })
    }
}

/// Turns an error status into the error that names it.
pub(crate) async fn check(
    resp: Response,
    repo: &Repo,
    what: &str,
    action: &'static str,
) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let url = resp.url().to_string();
    let detail = error_detail(resp).await;
    Err(match status {
        StatusCode::UNAUTHORIZED => RegistryError::Unauthorized {
            registry: repo.registry.clone(),
            detail,
        },
        StatusCode::FORBIDDEN => RegistryError::Denied {
            registry: repo.registry.clone(),
            repository: repo.path.clone(),
            action,
            detail,
        },
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            what: what.to_string(),
            repository: repo.to_string(),
            detail,
        },
        s => RegistryError::Status {
            url,
            status: s.as_u16(),
            detail: format!("{what}: {detail}"),
        },
    })
}

/// The target of a `rel="next"` link in a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

fn content_range_start(resp: &Response) -> Option<u64> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let v = v.trim().strip_prefix("bytes")?.trim();
    v.split('-').next()?.trim().parse().ok()
}

/// Reads a body but refuses more than `limit` bytes, whatever
/// Content-Length claims.
async fn read_capped(resp: Response, limit: u64, what: &str, registry: &str) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Connect {
            registry: registry.to_string(),
            detail: format!("{what}: {}", error_chain(&e)),
        })?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn finds_the_next_page_in_a_link_header() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=1&last=x>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=1&last=x")
        );
        assert_eq!(
            next_link(r#"<http://x/prev>; rel="prev", <http://x/next>; rel=next"#).as_deref(),
            Some("http://x/next")
        );
        assert_eq!(next_link(r#"</v2/a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
