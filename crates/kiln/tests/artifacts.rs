//! Artifacts in the store (signatures, SBOMs: manifests with an
//! `artifactType` and a `subject`), written into the layout as another
//! OCI tool would: image commands keep working and never take them for
//! images, GC keeps them, and `kiln image referrers` lists them.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::Kiln;
use serde_json::{json, Value};
use sha2::Digest as _;

const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Writes `bytes` as a blob of the store; returns its digest.
fn blob(k: &Kiln, bytes: &[u8]) -> String {
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(k.root.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// Adds an artifact of `artifact_type` about `subject` (a manifest
/// descriptor) to the layout, untagged; returns its manifest digest.
fn add_artifact(k: &Kiln, artifact_type: &str, payload: &[u8], subject: &Value) -> String {
    let config = blob(k, b"{}");
    let layer = blob(k, payload);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": config, "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": layer, "size": payload.len()}],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = blob(k, &bytes);
    let index_path = k.root.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": MANIFEST,
        "digest": digest,
        "size": bytes.len(),
        "artifactType": artifact_type,
    }));
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    digest
}

#[test]
fn artifacts_live_beside_images_and_list_as_referrers() {
    let k = Kiln::new();
    k.import_busybox("app:1", &[], &[]);
    let image = k.inspect("app:1");
    let subject = &image["Descriptor"];
    assert!(subject["digest"].is_string(), "{image}");
    let sbom = add_artifact(
        &k,
        "application/spdx+json",
        b"{\"spdxVersion\":\"SPDX-2.3\"}",
        subject,
    );
    let sig = add_artifact(
        &k,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        b"sig",
        subject,
    );

    // Image commands see one image, not three.
    assert_eq!(k.ok(&["images", "-q"]).lines().count(), 1);
    let listed = k.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(listed, "app:1\n");
    k.ok(&["inspect", "app:1"]);
    k.ok(&["system", "check"]);
    let df: Value = serde_json::from_str(&k.ok(&["system", "df", "--format", "json"])).unwrap();
    assert_eq!(df["Images"], 1);
    assert_eq!(
        df["UnreferencedBytes"], 0,
        "artifact blobs are referenced: {df}"
    );

    // Referrers of the image, all or of one type.
    let all = k.ok(&[
        "image",
        "referrers",
        "app:1",
        "--format",
        "{{.Digest}} {{.ArtifactType}}",
    ]);
    let mut want = vec![
        format!("{sbom} application/spdx+json"),
        format!("{sig} application/vnd.dev.cosign.artifact.sig.v1+json"),
    ];
    want.sort();
    assert_eq!(all.lines().collect::<Vec<_>>(), want);
    let one: Value = serde_json::from_str(
        k.ok(&[
            "image",
            "referrers",
            "app:1",
            "--artifact-type",
            "application/spdx+json",
            "--format",
            "json",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(one["digest"], sbom.as_str());
    assert_eq!(one["artifactType"], "application/spdx+json");
    assert_eq!(
        one["annotations"]["org.opencontainers.image.created"],
        "2026-01-01T00:00:00Z"
    );
    let none = k.ok(&[
        "image",
        "referrers",
        "app:1",
        "--artifact-type",
        "text/plain",
    ]);
    assert_eq!(none.lines().count(), 1, "only the header: {none}");

    // Writing the index (a tag), pruning and GC keep the artifacts.
    k.ok(&["tag", "app:1", "app:2"]);
    k.ok(&["image", "prune", "-f"]);
    let digest = subject["digest"].as_str().unwrap();
    let by_digest = k.ok(&["image", "referrers", digest]);
    assert_eq!(by_digest.lines().count(), 3, "{by_digest}");
    for d in [&sbom, &sig] {
        assert!(
            k.root.join("blobs/sha256").join(&d[7..]).exists(),
            "{d} collected"
        );
    }
    // Other OCI tools still read the layout with artifacts in it.
    let root = k.root.to_str().unwrap();
    common::tool(
        "skopeo",
        &["inspect", &format!("oci:{root}:docker.io/library/app:1")],
    );
}
