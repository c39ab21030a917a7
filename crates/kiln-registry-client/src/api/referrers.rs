//! The referrers API (distribution 1.1) and small blobs read into memory
//! (signature payloads, attestation envelopes), for `kiln sign`/`verify`.

use kiln_core::image::Index;
use kiln_core::Digest;
use reqwest::StatusCode;

use super::{check, read_capped};
use crate::client::{Client, Repo};
use crate::error::{RegistryError, Result};
use crate::manifest::MAX_MANIFEST_BYTES;

impl Client {
    /// The referrers of `digest`, or `None` when the registry has no
    /// referrers API (it answers 404, as distribution 2.x does for a route
    /// it does not know; the spec's registries answer an index, empty when
    /// nothing refers to the digest).
    pub async fn referrers(&self, repo: &Repo, digest: &Digest) -> Result<Option<Index>> {
        let url = self.url(repo, &format!("referrers/{digest}"));
        let scopes = [repo.pull_scope()];
        let resp = self
            .send(&repo.registry, &scopes, || self.http().get(&url))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let what = format!("referrers of {repo}@{digest}");
        let resp = check(resp, repo, &what, "pull").await?;
        let bytes = read_capped(resp, MAX_MANIFEST_BYTES, &what, &repo.registry).await?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RegistryError::Invalid {
                what,
                reason: format!("not an OCI index: {e}"),
            })
    }
}
