//! Manifests and indexes: fetched capped in size and verified against
//! their digest; uploaded and checked against what the registry stored.

use bytes::Bytes;
use kiln_core::Digest;
use reqwest::header::CONTENT_TYPE;
use reqwest::Response;

use super::{check, read_capped};
use crate::client::{Client, Repo};
use crate::error::{RegistryError, Result};
use crate::manifest::{RawManifest, ACCEPT, MAX_MANIFEST_BYTES};

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
        let claimed = claimed_digest(&resp);
        let bytes = read_capped(resp, MAX_MANIFEST_BYTES, &what, &repo.registry).await?;
        let mut m = RawManifest::new(bytes, header_type.as_deref(), &what)?;
        let expected = reference.parse::<Digest>().ok().or(claimed);
        if let Some(expected) = expected {
            // Checked under the algorithm the digest names (sha512 content
            // too), and then named by it.
            let actual = match expected.algorithm() == m.digest.algorithm() {
                true => m.digest.clone(),
                false => Digest::compute(expected.algorithm(), &m.bytes),
            };
            if expected != actual {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected,
                    actual,
                });
            }
            m.digest = actual;
        }
        Ok(m)
    }

    /// The digest a tag or digest names on the registry, by HEAD (no body
    /// moves: what a pull-through cache asks to see whether a tag moved);
    /// `None` when the registry has no such manifest. A registry that
    /// answers HEAD without `Docker-Content-Digest` is asked by GET, and
    /// the digest is that of the bytes.
    pub async fn manifest_digest(&self, repo: &Repo, reference: &str) -> Result<Option<Digest>> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let scopes = [repo.pull_scope()];
        let resp = self
            .send(&repo.registry, &scopes, || {
                self.http().head(&url).header("Accept", ACCEPT)
            })
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let sep = if reference.contains(':') { '@' } else { ':' };
        let resp = check(
            resp,
            repo,
            &format!("manifest {repo}{sep}{reference}"),
            "pull",
        )
        .await?;
        match claimed_digest(&resp) {
            Some(d) => Ok(Some(d)),
            None => Ok(Some(self.get_manifest(repo, reference).await?.digest)),
        }
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
        if let Some(claimed) = claimed_digest(&resp) {
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
}

/// The digest the registry says it stored (`Docker-Content-Digest`).
fn claimed_digest(resp: &Response) -> Option<Digest> {
    resp.headers()
        .get("Docker-Content-Digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok())
}
