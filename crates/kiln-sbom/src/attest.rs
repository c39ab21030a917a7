//! The SBOM as BuildKit attaches it to an image (`kiln build --sbom`): an
//! unsigned in-toto statement (`_type` in-toto Statement v0.1,
//! predicateType `https://spdx.dev/Document`, the SPDX document as the
//! predicate, the image manifest as the subject), stored as an OCI 1.1
//! artifact whose `subject` is the image manifest, so `kiln image
//! referrers` lists it. BuildKit puts the same statement in an
//! attestation manifest inside the image index; kiln's store keeps images
//! as single manifests, so the referrer is where it goes (the place
//! cosign's `attest` and the OCI 1.1 referrers API use).

use std::collections::BTreeMap;

use kiln_core::image::{Descriptor, Manifest};
use kiln_core::media_types;
use kiln_store::{IndexEntry, Store};
use serde_json::{json, Value};

use crate::error::Result;

pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v0.1";
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
pub const PREDICATE_ANNOTATION: &str = "in-toto.io/predicate-type";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The in-toto statement of `spdx` about the image manifest `subject`
/// named `name`.
pub fn statement(name: &str, subject: &Descriptor, spdx: Value) -> Value {
    let digest = subject.digest.to_string();
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", &digest));
    json!({
        "_type": STATEMENT_TYPE,
        "predicateType": SPDX_PREDICATE,
        "subject": [{
            "name": name,
            "digest": {algorithm: hex},
        }],
        "predicate": spdx,
    })
}

/// Stores `statement` as an artifact referring to `image` (the image
/// manifest's index entry); returns the artifact manifest's entry.
pub fn attach(store: &Store, image: &IndexEntry, statement: &Value) -> Result<IndexEntry> {
    let payload = serde_json::to_vec(statement).map_err(std::io::Error::other)?;
    let blobs = store.blobs();
    let empty = blobs.put(b"{}", None)?;
    let layer_digest = blobs.put(&payload, None)?;
    let mut layer = Descriptor::new(IN_TOTO, layer_digest, payload.len() as u64);
    layer.annotations =
        BTreeMap::from([(PREDICATE_ANNOTATION.to_string(), SPDX_PREDICATE.to_string())]);
    let mut manifest = Manifest::oci(Descriptor::new(EMPTY, empty, 2), vec![layer]);
    manifest.artifact_type = Some(IN_TOTO.to_string());
    manifest.subject = Some(Descriptor::new(
        &image.media_type,
        image.digest.clone(),
        image.size,
    ));
    manifest.annotations =
        BTreeMap::from([(PREDICATE_ANNOTATION.to_string(), SPDX_PREDICATE.to_string())]);
    let bytes = manifest.to_bytes();
    let digest = blobs.put(&bytes, None)?;
    let entry = IndexEntry::new(media_types::OCI_MANIFEST, digest, bytes.len() as u64);
    store.update_index(|index| {
        index.add_untagged(&entry);
        Ok(())
    })?;
    Ok(entry)
}
