//! Artifacts in the store: manifests that are not images — signatures,
//! SBOMs, attestations — told apart by an `artifactType` or a config that
//! is not an image config, usually pointing at an image through `subject`.
//! They sit in `index.json` like images (GC keeps them and their blobs),
//! but image commands never treat them as images; [`Store::referrers`]
//! lists those that refer to a digest, as the distribution spec's
//! referrers API does.

use kiln_core::image::{Descriptor, Manifest};
use kiln_core::{media_types, Digest, ImageRef};

use crate::error::Result;
use crate::index::IndexEntry;
use crate::Store;

/// An artifact manifest in the index, with the names pointing at it.
#[derive(Debug, Clone)]
pub struct ArtifactRecord {
    pub entry: IndexEntry,
    pub names: Vec<ImageRef>,
    pub manifest: Manifest,
}

impl ArtifactRecord {
    /// Its type: the manifest's `artifactType`, else its config's media
    /// type (the OCI 1.1 rule).
    pub fn artifact_type(&self) -> &str {
        artifact_type(&self.manifest)
    }
}

/// Whether a manifest is an artifact rather than an image.
pub fn is_artifact(manifest: &Manifest) -> bool {
    manifest.artifact_type.is_some()
        || !matches!(
            manifest.config.media_type.as_str(),
            media_types::OCI_CONFIG | media_types::DOCKER_CONFIG
        )
}

fn artifact_type(manifest: &Manifest) -> &str {
    manifest
        .artifact_type
        .as_deref()
        .unwrap_or(manifest.config.media_type.as_str())
}

impl Store {
    /// The artifacts whose `subject` is `subject`, optionally of one
    /// artifact type, as the referrers API describes them: the manifest's
    /// descriptor with its `artifactType` and annotations.
    pub fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let mut out = Vec::new();
        for a in self.artifacts()? {
            if a.manifest.subject.as_ref().map(|s| &s.digest) != Some(subject) {
                continue;
            }
            if artifact_type.is_some_and(|t| t != a.artifact_type()) {
                continue;
            }
            let mut d = Descriptor::new(
                a.manifest
                    .media_type
                    .as_deref()
                    .unwrap_or(media_types::OCI_MANIFEST),
                a.entry.digest.clone(),
                a.entry.size,
            );
            d.artifact_type = Some(a.artifact_type().to_string());
            d.annotations = a.manifest.annotations.clone();
            out.push(d);
        }
        out.sort_by(|x, y| x.digest.cmp(&y.digest));
        Ok(out)
    }
}
