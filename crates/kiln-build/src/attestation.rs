//! Attestations in a multi-platform image's index, as BuildKit puts them
//! there (`--sbom`, `--provenance` with several platforms): per platform
//! image, one manifest whose layers are in-toto statements (each layer
//! annotated with its predicate type), listed in the index with the
//! platform `unknown/unknown` and the annotations
//! `vnd.docker.reference.type: attestation-manifest` and
//! `vnd.docker.reference.digest: <the image manifest's digest>`. Clients
//! that pick a platform skip it; `docker buildx imagetools inspect` and
//! registries' UIs read it.
//!
//! A single-platform build keeps its statements as OCI 1.1 referrers in
//! the store instead (`kiln_sbom::attest`, the CLI's provenance), as a
//! manifest without an index has nowhere else to hold them.

use std::collections::BTreeMap;

use kiln_core::image::{Descriptor, Manifest};
use kiln_core::media_types::{OCI_CONFIG, OCI_MANIFEST};
use kiln_core::Platform;
use kiln_store::Store;
use serde_json::json;

use crate::error::{BuildError, Result};

pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const PREDICATE_ANNOTATION: &str = "in-toto.io/predicate-type";
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// One in-toto statement about a platform's image.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The statement's `predicateType` (SPDX, SLSA provenance).
    pub predicate_type: String,
    /// The statement's JSON.
    pub bytes: Vec<u8>,
}

/// Stores the attestation manifest of `statements` about the image
/// manifest `image`; returns its descriptor for the index.
pub fn attestation_manifest(
    store: &Store,
    image: &Descriptor,
    statements: &[Statement],
) -> Result<Descriptor> {
    let blobs = store.blobs();
    let mut layers = Vec::new();
    for s in statements {
        let digest = blobs.put(&s.bytes, None)?;
        let mut layer = Descriptor::new(IN_TOTO, digest, s.bytes.len() as u64);
        layer.annotations =
            BTreeMap::from([(PREDICATE_ANNOTATION.to_string(), s.predicate_type.clone())]);
        layers.push(layer);
    }
    // BuildKit's config of an attestation manifest: an image config of
    // the unknown platform listing the statements as its layers.
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>(),
        },
    });
    let config = serde_json::to_vec(&config).map_err(|e| BuildError::Internal(e.to_string()))?;
    let config_digest = blobs.put(&config, None)?;
    let manifest = Manifest::oci(
        Descriptor::new(OCI_CONFIG, config_digest, config.len() as u64),
        layers,
    );
    let bytes = manifest.to_bytes();
    let digest = blobs.put(&bytes, None)?;
    let mut d = Descriptor::new(OCI_MANIFEST, digest, bytes.len() as u64);
    d.annotations = BTreeMap::from([
        (REFERENCE_DIGEST.to_string(), image.digest.to_string()),
        (REFERENCE_TYPE.to_string(), ATTESTATION_MANIFEST.to_string()),
    ]);
    d.platform = Some(Platform::new("unknown", "unknown", None));
    Ok(d)
}
