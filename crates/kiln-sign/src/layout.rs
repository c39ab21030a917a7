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
/// artifactType of an attestation referrer: the in-toto payload type, as
/// cosign's `WriteAttestationsReferrer` (pkg/oci/remote/write.go) writes.
pub const ATT_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
/// The attestation artifactType kiln wrote before; still read.
pub const LEGACY_ATT_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.att.v1+json";
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

    /// Whether a referrer of this `artifactType` holds this kind.
    pub fn accepts_artifact_type(self, t: &str) -> bool {
        t == self.artifact_type() || (self == Kind::Attestation && t == LEGACY_ATT_ARTIFACT_TYPE)
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
/// tag, if any) with `layer` appended, unless `is_dupe` says a layer
/// already there duplicates it (cosign's `DupeDetector`, see
/// [`cosign_dupe`]).
pub fn tag_manifest(
    existing: Option<&Manifest>,
    layer: Descriptor,
    layer_bytes: Vec<u8>,
    is_dupe: &dyn Fn(&Descriptor) -> bool,
) -> Built {
    let mut layers = existing.map(|m| m.layers.clone()).unwrap_or_default();
    if !layers.iter().any(is_dupe) {
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

/// cosign's duplicate test (pkg/cosign/verifiers.go, `dd.Find`): an
/// `existing` layer duplicates `new` when every annotation of `new` but
/// the signature is on it with the same value, digest and media type are
/// the same, and its (non-empty) signature verifies over the payload
/// with the signer's key (`verifies`). The signature strings themselves
/// are not compared: ECDSA signatures are randomized.
pub fn cosign_dupe(
    existing: &Descriptor,
    new: &Descriptor,
    verifies: &dyn Fn(&[u8]) -> bool,
) -> bool {
    let annotations_match = new
        .annotations
        .iter()
        .filter(|(k, _)| k.as_str() != SIGNATURE_ANNOTATION)
        .all(|(k, v)| existing.annotations.get(k) == Some(v));
    if !annotations_match || existing.digest != new.digest || existing.media_type != new.media_type
    {
        return false;
    }
    use base64::Engine;
    match existing.annotations.get(SIGNATURE_ANNOTATION) {
        Some(sig) if !sig.is_empty() => base64::engine::general_purpose::STANDARD
            .decode(sig)
            .map(|s| verifies(&s))
            .unwrap_or(false),
        _ => false,
    }
}

/// go-containerregistry's config for an image of these layers, as cosign
/// writes it.
fn image_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        // go-containerregistry's mutate.Append adds one (empty) history
        // entry per layer.
        "history": vec![serde_json::json!({"created": "0001-01-01T00:00:00Z"}); layers.len()],
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
    fn tag_manifest_appends_unless_dupe() {
        let d = Digest::sha256(b"img");
        assert_eq!(tag(&d, Kind::Signature), format!("sha256-{}.sig", d.hex()));
        let never = |_: &Descriptor| false;
        let mut l = Descriptor::of(SIMPLESIGNING, b"p1");
        l.annotations
            .insert(SIGNATURE_ANNOTATION.into(), "czE=".into());
        let first = tag_manifest(None, l.clone(), b"p1".to_vec(), &never);
        let m1 = first.manifest.manifest("m").unwrap();
        let mut l2 = Descriptor::of(SIMPLESIGNING, b"p2");
        l2.annotations
            .insert(SIGNATURE_ANNOTATION.into(), "czI=".into());
        let m2 = tag_manifest(Some(&m1), l2, b"p2".to_vec(), &never)
            .manifest
            .manifest("m")
            .unwrap();
        assert_eq!(m2.layers.len(), 2);
        let cfg: serde_json::Value = serde_json::from_slice(&image_config(&m2.layers)).unwrap();
        assert_eq!(
            cfg["history"].as_array().unwrap().len(),
            2,
            "one history entry per layer"
        );
        // A re-signature of p1 (another, randomized signature string) is a
        // duplicate when the stored signature verifies.
        let mut again = Descriptor::of(SIMPLESIGNING, b"p1");
        again
            .annotations
            .insert(SIGNATURE_ANNOTATION.into(), "b3RoZXI=".into());
        let dupe = |e: &Descriptor| cosign_dupe(e, &again, &|_| true);
        let m3 = tag_manifest(Some(&m2), again.clone(), b"p1".to_vec(), &dupe)
            .manifest
            .manifest("m")
            .unwrap();
        assert_eq!(m3.layers.len(), 2, "a re-signature is not appended");
    }

    #[test]
    fn dupe_detection_follows_cosign() {
        use base64::Engine;
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let mut old = Descriptor::of(SIMPLESIGNING, b"p");
        old.annotations
            .insert(SIGNATURE_ANNOTATION.into(), b64(b"sig-a"));
        old.annotations.insert("extra".into(), "x".into());
        let mut new = Descriptor::of(SIMPLESIGNING, b"p");
        new.annotations
            .insert(SIGNATURE_ANNOTATION.into(), b64(b"sig-b"));
        let ok = |s: &[u8]| s == b"sig-a";
        // Extra annotations on the stored layer do not matter; the
        // signature string differs, but the stored one verifies.
        assert!(cosign_dupe(&old, &new, &ok));
        // It must verify with the signer's key.
        assert!(!cosign_dupe(&old, &new, &|_| false));
        // A new annotation the stored layer lacks: not a duplicate.
        let mut annotated = new.clone();
        annotated.annotations.insert("k".into(), "v".into());
        assert!(!cosign_dupe(&old, &annotated, &ok));
        // Another payload: not a duplicate.
        let mut other = Descriptor::of(SIMPLESIGNING, b"q");
        other.annotations = new.annotations.clone();
        assert!(!cosign_dupe(&old, &other, &ok));
        // An empty stored signature (attestation layers): never a duplicate.
        let mut att = Descriptor::of(DSSE, b"e");
        att.annotations
            .insert(SIGNATURE_ANNOTATION.into(), String::new());
        assert!(!cosign_dupe(&att, &att.clone(), &|_| true));
        assert!(Kind::Attestation.accepts_artifact_type("application/vnd.in-toto+json"));
        assert!(Kind::Attestation.accepts_artifact_type(LEGACY_ATT_ARTIFACT_TYPE));
        assert!(!Kind::Signature.accepts_artifact_type(LEGACY_ATT_ARTIFACT_TYPE));
    }
}
