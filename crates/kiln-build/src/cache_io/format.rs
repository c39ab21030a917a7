//! The cache as data: the metadata document (one record per step) and the
//! OCI artifact that carries it (see `docs/build-cache.md`).
//!
//! The artifact is an image manifest whose `artifactType` and config media
//! type are [`CACHE_MEDIA_TYPE`]; the config blob is the metadata, the
//! layers are every layer a record names (in record order, compressed by
//! the export: [`carried_layers`] pairs them back), so registries keep them
//! and `skopeo copy` moves the whole cache.

use std::collections::HashMap;

use kiln_core::image::{Descriptor, Manifest};
use kiln_core::Digest;
use kiln_layer::Compression;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `artifactType` of the manifest and media type of its config blob.
pub const CACHE_MEDIA_TYPE: &str = "application/vnd.kiln.build.cache.v1+json";

/// The image config key an inline cache is kept under (BuildKit uses
/// `moby.buildkit.cache.v0` for its own format; kiln's records differ, so
/// its key does too).
pub const INLINE_KEY: &str = "kiln.build.cache.v1";

/// Largest metadata document read (a record is a few hundred bytes).
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

/// The metadata document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheMetadata {
    /// 1.
    pub version: u32,
    /// `min` or `max`: what the exporter was asked for.
    pub mode: String,
    pub records: Vec<StepRecord>,
}

/// One step: its key, what it made, and how it sits in the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's cache key (hex sha256: the parent's key, the expanded
    /// instruction and what it reads).
    pub key: String,
    /// `COPY --from`'s input key (its parent, the instruction, the
    /// source's key): an importer that computes it takes this record
    /// without reading the source's files.
    #[serde(rename = "inputKey", default, skip_serializing_if = "Option::is_none")]
    pub input_key: Option<String>,
    /// The key of the state the step ran on (the previous step, or the
    /// stage's base).
    pub parent: String,
    /// The layer as the image has it (uncompressed tar); `null` for a step
    /// that changed no file. The artifact carries it compressed (see
    /// [`carried_layers`]).
    pub layer: Option<Descriptor>,
    /// The layer's diff_id (equal to its digest for a plain tar).
    #[serde(rename = "diffID", default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// The history entry the step adds to the config (`created`,
    /// `created_by`, `comment`, `empty_layer`); an importer checks the
    /// `created_by` it would write is the same before it reuses the step.
    pub history: Value,
    /// Paths the layer leaves out (RUN --mount targets).
    #[serde(rename = "leftOut", default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

impl CacheMetadata {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A metadata document, refusing other versions.
    pub fn parse(bytes: &[u8]) -> std::result::Result<CacheMetadata, String> {
        let m: CacheMetadata = serde_json::from_slice(bytes)
            .map_err(|e| format!("not kiln build cache metadata: {e}"))?;
        if m.version != 1 {
            return Err(format!(
                "build cache metadata version {} (this kiln reads version 1)",
                m.version
            ));
        }
        Ok(m)
    }

    /// The metadata an image config carries inline, if any.
    pub fn inline(config: &[u8]) -> Option<CacheMetadata> {
        let v: Value = serde_json::from_slice(config).ok()?;
        serde_json::from_value(v.get(INLINE_KEY)?.clone())
            .ok()
            .filter(|m: &CacheMetadata| m.version == 1)
    }

    /// One document of several builds' records (the platforms of one
    /// multi-platform build): every record once, by key, in order; the
    /// keys include each step's platform, so the platforms' records sit
    /// side by side, and a step they share (a `$BUILDPLATFORM` stage) is
    /// one record. The layers are then each listed once by [`layers`].
    ///
    /// [`layers`]: CacheMetadata::layers
    pub fn merge(parts: impl IntoIterator<Item = CacheMetadata>) -> Option<CacheMetadata> {
        let mut parts = parts.into_iter();
        let mut out = parts.next()?;
        let mut seen: std::collections::HashSet<String> =
            out.records.iter().map(|r| r.key.clone()).collect();
        for p in parts {
            for r in p.records {
                if seen.insert(r.key.clone()) {
                    out.records.push(r);
                }
            }
        }
        Some(out)
    }

    /// The distinct layers the records name, in record order.
    pub fn layers(&self) -> Vec<Descriptor> {
        let mut out: Vec<Descriptor> = Vec::new();
        for l in self.records.iter().filter_map(|r| r.layer.as_ref()) {
            if !out.iter().any(|d| d.digest == l.digest) {
                out.push(l.clone());
            }
        }
        out
    }

    /// The artifact: its manifest (config = this document, layers = every
    /// layer, as stored: the export compresses them) and the config bytes.
    pub fn artifact(&self) -> (Manifest, Vec<u8>) {
        let config = self.to_bytes();
        let mut m = Manifest::oci(Descriptor::of(CACHE_MEDIA_TYPE, &config), self.layers());
        m.artifact_type = Some(CACHE_MEDIA_TYPE.to_string());
        (m, config)
    }
}

/// Each record layer (plain tar, by digest) → the blob the artifact
/// `manifest` carries it as: the manifest lists [`CacheMetadata::layers`]
/// in the same order, compressed by the export (gzip, zstd) or not. A
/// compressed blob's type must say so; an uncompressed one must be the
/// layer itself.
pub fn carried_layers(
    meta: &CacheMetadata,
    manifest: &Manifest,
) -> std::result::Result<HashMap<Digest, Descriptor>, String> {
    let layers = meta.layers();
    if layers.len() != manifest.layers.len() {
        return Err(format!(
            "the cache manifest lists {} layers but its metadata names {}",
            manifest.layers.len(),
            layers.len()
        ));
    }
    let mut out = HashMap::new();
    for (plain, carried) in layers.into_iter().zip(&manifest.layers) {
        match Compression::of_media_type(&carried.media_type) {
            Some(Compression::None) if carried.digest != plain.digest => {
                return Err(format!(
                    "the cache manifest's layer {} is not the metadata's {}",
                    carried.digest, plain.digest
                ))
            }
            Some(_) => {}
            None => {
                return Err(format!(
                    "the cache manifest's layer {} has media type {:?}, not a tar layer's",
                    carried.digest, carried.media_type
                ))
            }
        }
        out.insert(plain.digest, carried.clone());
    }
    Ok(out)
}

/// Whether a manifest is a kiln build cache (by its artifact type, or its
/// config's media type when a registry dropped the field).
pub fn is_cache_manifest(m: &Manifest) -> bool {
    m.artifact_type.as_deref() == Some(CACHE_MEDIA_TYPE) || m.config.media_type == CACHE_MEDIA_TYPE
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::media_types::OCI_LAYER_TAR;
    use serde_json::json;

    fn digest(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn sample() -> CacheMetadata {
        let layer = Descriptor::new(OCI_LAYER_TAR, digest('a'), 1024);
        CacheMetadata {
            version: 1,
            mode: "max".into(),
            records: vec![
                StepRecord {
                    key: "1".repeat(64),
                    input_key: None,
                    parent: "0".repeat(64),
                    layer: Some(layer.clone()),
                    diff_id: Some(digest('a')),
                    history: json!({"created": "1970-01-01T00:00:00Z",
                        "created_by": "RUN /bin/sh -c make # buildkit",
                        "comment": "buildkit.dockerfile.v0"}),
                    left_out: vec![],
                },
                StepRecord {
                    key: "2".repeat(64),
                    input_key: None,
                    parent: "1".repeat(64),
                    layer: None,
                    diff_id: None,
                    history: json!({"created_by": "RUN /bin/sh -c true # buildkit", "empty_layer": true}),
                    left_out: vec![],
                },
                StepRecord {
                    key: "3".repeat(64),
                    input_key: None,
                    parent: "0".repeat(64),
                    layer: Some(layer),
                    diff_id: Some(digest('a')),
                    history: json!({}),
                    left_out: vec!["/run/cache".into()],
                },
            ],
        }
    }

    #[test]
    fn the_document_round_trips_with_the_documented_names() {
        let m = sample();
        let v: Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["records"][0]["diffID"], json!(digest('a').to_string()));
        assert_eq!(v["records"][0]["layer"]["mediaType"], OCI_LAYER_TAR);
        assert_eq!(v["records"][1]["layer"], Value::Null);
        assert!(v["records"][1].get("diffID").is_none());
        assert_eq!(v["records"][2]["leftOut"], json!(["/run/cache"]));
        assert_eq!(CacheMetadata::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn the_artifact_names_each_layer_once_and_its_type() {
        let (manifest, config) = sample().artifact();
        assert_eq!(manifest.layers.len(), 1);
        assert_eq!(manifest.artifact_type.as_deref(), Some(CACHE_MEDIA_TYPE));
        assert_eq!(manifest.config.media_type, CACHE_MEDIA_TYPE);
        assert_eq!(manifest.config.digest, Digest::sha256(&config));
        assert!(is_cache_manifest(&manifest));
        let v: Value = serde_json::from_slice(&manifest.to_bytes()).unwrap();
        assert_eq!(v["artifactType"], CACHE_MEDIA_TYPE);
    }

    #[test]
    fn the_manifest_s_compressed_layers_pair_with_the_records_by_position() {
        let meta = sample();
        let (mut manifest, _) = meta.artifact();
        // As stored (uncompressed): each layer is itself.
        let same = carried_layers(&meta, &manifest).unwrap();
        assert_eq!(same[&digest('a')], manifest.layers[0]);
        // Compressed by the export.
        let gz = Descriptor::new(kiln_core::media_types::OCI_LAYER_GZIP, digest('c'), 100);
        manifest.layers[0] = gz.clone();
        assert_eq!(carried_layers(&meta, &manifest).unwrap()[&digest('a')], gz);
        // A plain layer that is not the record's, another type, a count
        // that differs: refused.
        manifest.layers[0] = Descriptor::new(OCI_LAYER_TAR, digest('b'), 1);
        assert!(carried_layers(&meta, &manifest).is_err());
        manifest.layers[0] = Descriptor::new("application/json", digest('b'), 1);
        assert!(carried_layers(&meta, &manifest)
            .unwrap_err()
            .contains("application/json"));
        manifest.layers.push(gz);
        assert!(carried_layers(&meta, &manifest)
            .unwrap_err()
            .contains("lists 2 layers"));
    }

    #[test]
    fn merging_keeps_every_key_once_and_each_layer_once() {
        let all = sample();
        let first = CacheMetadata {
            records: all.records[..2].to_vec(),
            ..all.clone()
        };
        // The second platform shares the first record (a build-platform
        // step) and has its own.
        let second = CacheMetadata {
            records: vec![all.records[0].clone(), all.records[2].clone()],
            ..all.clone()
        };
        let merged = CacheMetadata::merge([first, second]).unwrap();
        assert_eq!(merged, all);
        assert_eq!(merged.layers().len(), 1);
        assert!(CacheMetadata::merge([]).is_none());
    }

    #[test]
    fn other_versions_and_documents_are_refused() {
        let mut m = sample();
        m.version = 2;
        assert!(CacheMetadata::parse(&m.to_bytes())
            .unwrap_err()
            .contains("version 2"));
        assert!(CacheMetadata::parse(b"{}").is_err());
        let config = json!({"architecture": "amd64", INLINE_KEY: sample()});
        assert_eq!(
            CacheMetadata::inline(config.to_string().as_bytes()),
            Some(sample())
        );
        assert_eq!(CacheMetadata::inline(b"{\"architecture\":\"amd64\"}"), None);
    }
}
