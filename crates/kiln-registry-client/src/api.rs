//! The distribution API calls, one method each on [`Client`], by job:
//! - `manifests`: get (capped in size, verified against the digest), the
//!   digest a tag names (HEAD) and put;
//! - `tags`: the tag list, following the registry's pagination;
//! - `blob_fetch`: whether a blob exists, and fetching one into the store
//!   with verification and resume;
//! - `referrers`: the referrers API and small blobs read into memory;
//! - `upload`: uploads (monolithic, streamed or chunked) and
//!   cross-repository mounts.
//!
//! This file holds what they share: status checks, capped reads and
//! registry URLs from the `Location`s it sends.

mod blob_fetch;
mod manifests;
mod referrers;
mod tags;
mod upload;

use futures_util::StreamExt;
use reqwest::header::LOCATION;
use reqwest::{Response, StatusCode};

use crate::client::{error_chain, error_detail, Client, Repo};
use crate::error::{RegistryError, Result};

/// Reports bytes as they move (per blob).
pub type OnBytes<'a> = &'a (dyn Fn(u64) + Send + Sync);

impl Client {
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
