//! Where cosign keeps signatures and attestations, and the manifests it
//! writes for them:
//!
//! - the tag scheme (cosign's default): tag `sha256-<hex>.sig` (or
//!   `.att`) in the image's repository, an OCI image manifest whose
//!   layers are one payload each (`application/vnd.dev.cosign.simplesigning.v1+json`
//!   with the base64 signature in the `dev.cosignproject.cosign/signature`
//!   annotation, or a DSSE envelope `application/vnd.dsse.envelope.v1+json`
//!   with a `predicateType` annotation); a new signature is appended to
//!   the manifest already there. Its config is the minimal image config
//!   go-containerregistry's `empty.Image` gives (diff_ids = the layers);
//! - OCI 1.1 referrers (`--registry-referrers-mode oci-1-1`): one manifest
//!   per signature with `artifactType`, the empty config and `subject` =
//!   the image. The kiln store keeps signatures this way, beside the image
//!   (kiln-store tells artifacts from images by `artifactType`).

use kiln_core::image::{Descriptor, Manifest, RawManifest};
use kiln_core::{media_types, Digest};

/// Layer media type of a simple-signing payload.
pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer media type of a DSSE envelope (attestations).
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation naming an attestation's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// artifactType of a signature referrer (cosign's).
pub const SIG_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// artifactType of an attestation referrer.
pub const ATT_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.att.v1+json";
/// The OCI 1.1 empty descriptor's media type, and its content.
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_JSON: &[u8] = b"{}";

/// Signatures or attestations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signature,
    Attestation,
}

impl Kind {
    /// The tag suffix: `sig` or `att`.
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Signature => "sig",
            Kind::Attestation => "att",
        }
    }

    pub fn artifact_type(self) -> &'static str {
        match self {
            Kind::Signature => SIG_ARTIFACT_TYPE,
            Kind::Attestation => ATT_ARTIFACT_TYPE,
        }
    }

    pub fn layer_type(self) -> &'static str {
        match self {
            Kind::Signature => SIMPLESIGNING,
            Kind::Attestation => DSSE,
        }
    }
}

/// cosign's tag for the signatures (`kind`) of `digest`: `sha256-<hex>.sig`.
pub fn tag(digest: &Digest, kind: Kind) -> String {
    format!(
        "{}-{}.{}",
        digest.algorithm().as_str(),
        digest.hex(),
        kind.suffix()
    )
}

/// A manifest with the blobs it needs, ready to be written.
pub struct Built {
    pub manifest: RawManifest,
    /// (media type, bytes) of the config and any new layer blob.
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// The tag-scheme manifest: `existing` (the manifest already under the
/// tag, if any) with `layer` appended, unless an identical layer (same
/// digest and annotations) is there already.
pub fn tag_manifest(existing: Option<&Manifest>, layer: Descriptor, layer_bytes: Vec<u8>) -> Built {
    let mut layers = existing.map(|m| m.layers.clone()).unwrap_or_default();
    if !layers
        .iter()
        .any(|l| l.digest == layer.digest && l.annotations == layer.annotations)
    {
        layers.push(layer.clone());
    }
    let config = image_config(&layers);
    let config_desc = Descriptor::of(media_types::OCI_CONFIG, &config);
    let manifest = Manifest::oci(config_desc, layers);
    Built {
        manifest: RawManifest::from_manifest(&manifest),
        blobs: vec![
            (media_types::OCI_CONFIG.to_string(), config),
            (layer.media_type, layer_bytes),
        ],
    }
}

/// go-containerregistry's config for an image of these layers, as cosign
/// writes it.
fn image_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .unwrap_or_default()
}

/// An OCI 1.1 referrer holding `layer`, about `subject`.
pub fn referrer_manifest(
    subject: &Descriptor,
    kind: Kind,
    layer: Descriptor,
    layer_bytes: Vec<u8>,
) -> Built {
    let config = Descriptor::of(EMPTY, EMPTY_JSON);
    let mut manifest = Manifest::oci(config, vec![layer.clone()]);
    manifest.artifact_type = Some(kind.artifact_type().to_string());
    manifest.subject = Some(Descriptor::new(
        &subject.media_type,
        subject.digest.clone(),
        subject.size,
    ));
    let created = layer
        .annotations
        .get("org.opencontainers.image.created")
        .cloned();
    if let Some(c) = created {
        manifest
            .annotations
            .insert("org.opencontainers.image.created".into(), c);
    }
    Built {
        manifest: RawManifest::from_manifest(&manifest),
        blobs: vec![
            (EMPTY.to_string(), EMPTY_JSON.to_vec()),
            (layer.media_type, layer_bytes),
        ],
    }
}

/// The layers of `kind` in a manifest (other layers are ignored, as cosign
/// ignores them).
pub fn layers_of(manifest: &Manifest, kind: Kind) -> Vec<Descriptor> {
    manifest
        .layers
        .iter()
        .filter(|l| l.media_type == kind.layer_type())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tag_manifest_appends_once() {
        let d = Digest::sha256(b"img");
        assert_eq!(tag(&d, Kind::Signature), format!("sha256-{}.sig", d.hex()));
        let mut l = Descriptor::of(SIMPLESIGNING, b"p1");
        l.annotations
            .insert(SIGNATURE_ANNOTATION.into(), "s1".into());
        let first = tag_manifest(None, l.clone(), b"p1".to_vec());
        let m1 = first.manifest.manifest("m").unwrap();
        let mut l2 = Descriptor::of(SIMPLESIGNING, b"p2");
        l2.annotations
            .insert(SIGNATURE_ANNOTATION.into(), "s2".into());
        let m2 = tag_manifest(Some(&m1), l2, b"p2".to_vec())
            .manifest
            .manifest("m")
            .unwrap();
        assert_eq!(m2.layers.len(), 2);
        let m3 = tag_manifest(Some(&m2), l, b"p1".to_vec())
            .manifest
            .manifest("m")
            .unwrap();
        assert_eq!(
            m3.layers.len(),
            2,
            "the same signature is not appended twice"
        );
    }
}
