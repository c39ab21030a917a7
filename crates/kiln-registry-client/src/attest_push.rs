//! An index's attestation manifests (BuildKit's form, which `kiln build
//! --sbom/--provenance` writes for several platforms) as a push sends
//! them. Their in-toto statements name the image manifest they are about
//! by digest; a push that compresses the image's layers gives that
//! manifest another digest, so the statements (and the manifest listing
//! them) are rewritten to name the pushed one, as BuildKit's statements
//! name the manifest the registry holds. The store keeps the originals,
//! true of the stored images.

use std::collections::HashMap;

use kiln_core::Digest;
use kiln_store::Store;
use serde_json::Value;

use crate::error::{RegistryError, Result};
use crate::manifest::{Descriptor, RawManifest};

const IN_TOTO: &str = "application/vnd.in-toto+json";

fn invalid(what: &Digest, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Invalid {
        what: format!("stored attestation manifest {what}"),
        reason: e.to_string(),
    }
}

/// Whether `m` is an attestation manifest: every layer an in-toto
/// statement.
pub(crate) fn is_attestation(m: &RawManifest) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(&m.bytes) else {
        return false;
    };
    v["layers"]
        .as_array()
        .is_some_and(|l| !l.is_empty() && l.iter().all(|l| l["mediaType"] == IN_TOTO))
}

/// The statement `bytes` with each subject digest `renamed` says was
/// pushed under another digest renamed; `None` when none was.
fn renamed_statement(bytes: &[u8], renamed: &HashMap<Digest, Descriptor>) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(bytes).ok()?;
    let mut changed = false;
    for s in v.get_mut("subject")?.as_array_mut()? {
        let Some(digests) = s.get_mut("digest").and_then(Value::as_object_mut) else {
            continue;
        };
        for (algorithm, hex) in digests.iter_mut() {
            let Some(old) = hex
                .as_str()
                .and_then(|h| format!("{algorithm}:{h}").parse::<Digest>().ok())
            else {
                continue;
            };
            if let Some(new) = renamed.get(&old).filter(|n| n.digest != old) {
                *hex = Value::from(new.digest.hex());
                changed = true;
            }
        }
    }
    changed.then(|| serde_json::to_vec(&v).ok()).flatten()
}

/// The blobs (config, then statements) the attestation manifest `m`
/// names: what a push sends for it, once it is in its final form.
pub(crate) fn blobs_of(m: &RawManifest) -> Result<Vec<Descriptor>> {
    let v: Value = serde_json::from_slice(&m.bytes).map_err(|e| invalid(&m.digest, e))?;
    let mut out = Vec::new();
    for d in std::iter::once(&v["config"]).chain(v["layers"].as_array().into_iter().flatten()) {
        let d: Descriptor = serde_json::from_value(d.clone()).map_err(|e| invalid(&m.digest, e))?;
        out.push(d);
    }
    Ok(out)
}

/// The attestation manifest `m` with its statements about renamed images
/// rewritten, its new blobs (statements, config) put in the store for the
/// push to send with it (see [`blobs_of`]); the push sends no blob before
/// this, so the registry never gets statements the index does not name.
/// `None` when no statement names a renamed image.
pub(crate) fn resubject(
    store: &Store,
    m: &RawManifest,
    renamed: &HashMap<Digest, Descriptor>,
) -> Result<Option<RawManifest>> {
    let mut v: Value = serde_json::from_slice(&m.bytes).map_err(|e| invalid(&m.digest, e))?;
    let mut new_blobs = 0;
    // Old layer digest → new, for the config's diff_ids.
    let mut moved: HashMap<String, String> = HashMap::new();
    if let Some(layers) = v.get_mut("layers").and_then(Value::as_array_mut) {
        for l in layers {
            let Some(old) = l["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else {
                continue;
            };
            let bytes = store.blobs().read(&old)?;
            let Some(rewritten) = renamed_statement(&bytes, renamed) else {
                continue;
            };
            let digest = store.blobs().put(&rewritten, None)?;
            moved.insert(old.to_string(), digest.to_string());
            l["digest"] = Value::from(digest.to_string());
            l["size"] = Value::from(rewritten.len() as u64);
            new_blobs += 1;
        }
    }
    if new_blobs == 0 {
        return Ok(None);
    }
    // BuildKit's config lists the statements as its diff_ids.
    let config_digest: Digest = v["config"]["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| invalid(&m.digest, "no config digest"))?;
    let mut config: Value = serde_json::from_slice(&store.blobs().read(&config_digest)?)
        .map_err(|e| invalid(&m.digest, e))?;
    if let Some(ids) = config
        .pointer_mut("/rootfs/diff_ids")
        .and_then(Value::as_array_mut)
    {
        for id in ids {
            if let Some(new) = id.as_str().and_then(|s| moved.get(s)) {
                *id = Value::from(new.clone());
            }
        }
    }
    let config = serde_json::to_vec(&config).map_err(|e| invalid(&m.digest, e))?;
    let digest = store.blobs().put(&config, None)?;
    v["config"]["digest"] = Value::from(digest.to_string());
    v["config"]["size"] = Value::from(config.len() as u64);
    let bytes = serde_json::to_vec(&v).map_err(|e| invalid(&m.digest, e))?;
    let manifest = RawManifest::new(bytes, Some(&m.media_type), "pushed attestation manifest")?;
    Ok(Some(manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_names_the_pushed_manifest() {
        let old = Digest::sha256(b"stored manifest");
        let new = Digest::sha256(b"pushed manifest");
        let other = Digest::sha256(b"another image");
        let renamed = HashMap::from([(
            old.clone(),
            Descriptor::new(kiln_core::media_types::OCI_MANIFEST, new.clone(), 10),
        )]);
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "subject": [
                {"name": "a", "digest": {"sha256": old.hex()}},
                {"name": "b", "digest": {"sha256": other.hex()}},
            ],
            "predicate": {},
        });
        let out = renamed_statement(&serde_json::to_vec(&statement).unwrap(), &renamed).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["subject"][0]["digest"]["sha256"], new.hex());
        assert_eq!(out["subject"][1]["digest"]["sha256"], other.hex());
        // Nothing renamed: nothing to rewrite.
        let unrelated = serde_json::json!({"subject": [{"digest": {"sha256": other.hex()}}]});
        assert!(renamed_statement(&serde_json::to_vec(&unrelated).unwrap(), &renamed).is_none());
    }
}
