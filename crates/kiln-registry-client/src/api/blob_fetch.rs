//! Blobs in: whether the registry has one, downloading one into the
//! store, verified on every byte and resumed after a break, and reading a
//! small one (a config) into memory, verified and capped.

use std::io::Write;

use futures_util::StreamExt;
use kiln_core::content::{ContentError, ContentWriter, Ingester};
use kiln_core::Digest;
use kiln_core::ErrorKind;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use reqwest::{Response, StatusCode};

use super::{check, OnBytes};
use crate::client::{error_chain, Client, Repo};
use crate::error::{RegistryError, Result};

impl Client {
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

    /// Reads a small blob (an image config) into memory: at most `limit`
    /// bytes, and only if they hash to `digest`.
    pub async fn read_blob(&self, repo: &Repo, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let scopes = [repo.pull_scope()];
        let resp = self
            .send(&repo.registry, &scopes, || self.http().get(&url))
            .await?;
        let what = format!("blob {digest} of {repo}");
        let resp = check(resp, repo, &what, "pull").await?;
        let bytes = super::read_capped(resp, limit, &what, &repo.registry).await?;
        let actual = Digest::sha256(&bytes);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
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
        blobs: &(dyn Ingester + Sync),
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
}

fn content_range_start(resp: &Response) -> Option<u64> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let v = v.trim().strip_prefix("bytes")?.trim();
    v.split('-').next()?.trim().parse().ok()
}
