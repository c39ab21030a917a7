//! The one OCI image model every kiln crate speaks: descriptors, manifests
//! (with `subject`, `artifactType` and annotations), indexes, manifests as
//! received ([`RawManifest`]: the exact bytes, their digest and media type),
//! the typed image config ([`ImageConfig`], which keeps every field it does
//! not model), layer identities ([`DiffId`], [`ChainId`]), and one walk over
//! index → manifest → config/layers ([`walk()`]) reading blobs through the
//! small [`crate::content::Provider`] trait, or through futures
//! ([`walk_with()`]), so the store, an OCI layout on disk and a registry
//! are walked by the same code.
//!
//! Why not `oci-spec`'s types as they are: kiln must keep the bytes it did
//! not write (a manifest's digest is its name), keep config fields it does
//! not model (an image ID is the config's digest), tell an absent field from
//! a `null` one, and write its own documents in a fixed field order (the
//! existing image IDs and manifest digests are pinned by tests). The types
//! here are small serde structs whose field order *is* the wire order.

mod config;
mod walk;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{media_types as mt, Digest, Platform};

pub use config::{
    ContainerConfig, ContainerConfigFields, Fields, HealthConfig, HealthConfigFields, History,
    HistoryFields, ImageConfig, ImageConfigFields, Lenient, RootFs, RootFsFields, DEFAULT_SHELL,
};
pub use walk::{reachable, walk, walk_with, Node, NodeKind, Visit};

/// Manifests are capped: distribution refuses ones over 4 MiB too.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A content descriptor. Field order is the order kiln writes (media type,
/// digest, size first: the manifests kiln writes name their config and
/// layers with those three only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// Embedded content (base64), as the spec allows for small blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: Vec::new(),
            platform: None,
            annotations: BTreeMap::new(),
            artifact_type: None,
            data: None,
        }
    }

    /// The descriptor of `bytes` as a blob of `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256(bytes), bytes.len() as u64)
    }

    pub fn is_index(&self) -> bool {
        mt::is_index(&self.media_type)
    }

    // oci-spec-style accessors, so code written against `oci-spec`'s
    // descriptors reads the model unchanged.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn is_manifest(&self) -> bool {
        mt::is_manifest(&self.media_type)
    }
}

/// An image manifest (OCI or Docker schema 2: one JSON shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Required by the spec; read leniently (2) as docker does.
    #[serde(rename = "schemaVersion", default = "schema_2")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// An OCI image manifest of `config` and `layers`, as kiln writes them.
    pub fn oci(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(mt::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// oci-spec-style accessors (see [`Descriptor::media_type`]).
    pub fn layers(&self) -> &[Descriptor] {
        &self.layers
    }

    pub fn config(&self) -> &Descriptor {
        &self.config
    }

    /// The serialized form. The field order is fixed by the struct, so the
    /// same image always gets the same manifest digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_bytes(self)
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Required by the spec; read leniently (2) as docker does.
    #[serde(rename = "schemaVersion", default = "schema_2")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    pub fn oci(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(mt::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        to_bytes(self)
    }

    /// The manifest for `want` (see [`Platform::select`]).
    pub fn select(&self, want: &Platform) -> Option<&Descriptor> {
        want.select(&self.manifests)
    }

    /// The platforms the index offers, for "no match" messages.
    pub fn platforms(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            // Attestation manifests are listed as unknown/unknown.
            .filter(|p| p.os != "unknown")
            .map(|p| p.to_string())
            .collect();
        out.dedup();
        out
    }
}

fn schema_2() -> u32 {
    2
}

fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(b) => b,
        // Plain structs of strings, numbers and maps with string keys.
        Err(e) => unreachable!("serializing a manifest cannot fail: {e}"),
    }
}

/// Why a document is not a manifest kiln can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{what} is not valid: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{what} has media type {media_type:?}; kiln expects {expected}")]
    UnsupportedMediaType {
        what: String,
        media_type: String,
        expected: &'static str,
    },
}

/// Layer media types kiln can unpack.
pub const LAYER_TYPES: &[&str] = &[
    mt::OCI_LAYER_TAR,
    mt::OCI_LAYER_GZIP,
    mt::OCI_LAYER_ZSTD,
    mt::DOCKER_LAYER_TAR,
    mt::DOCKER_LAYER_GZIP,
];

/// Config media types of images (as opposed to artifacts).
pub const CONFIG_TYPES: &[&str] = &[mt::OCI_CONFIG, mt::DOCKER_CONFIG];

/// A manifest or index exactly as read: its bytes (whose digest names it),
/// media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

impl RawManifest {
    /// Classifies the document. The media type comes from the JSON's own
    /// `mediaType` when present (it is covered by the digest), else from
    /// `declared` (a Content-Type header, or the descriptor that named it),
    /// else from its shape.
    pub fn new(
        bytes: Vec<u8>,
        declared: Option<&str>,
        what: &str,
    ) -> Result<RawManifest, ModelError> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType", default)]
            media_type: Option<String>,
            #[serde(rename = "schemaVersion", default)]
            schema_version: Option<u32>,
            #[serde(default)]
            manifests: Option<serde::de::IgnoredAny>,
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| ModelError::Invalid {
            what: what.to_string(),
            reason: format!("not JSON: {e}"),
        })?;
        let declared = declared
            .map(|h| h.split(';').next().unwrap_or_default().trim().to_string())
            .filter(|h| !h.is_empty());
        let media_type = match (probe.media_type, declared) {
            (Some(m), _) => m,
            (None, Some(h)) if mt::is_index(&h) || mt::is_manifest(&h) => h,
            // OCI allows mediaType to be absent: tell by shape.
            (None, _) if probe.manifests.is_some() => mt::OCI_INDEX.to_string(),
            (None, _) => mt::OCI_MANIFEST.to_string(),
        };
        if probe.schema_version == Some(1)
            || media_type.starts_with("application/vnd.docker.distribution.manifest.v1")
        {
            return Err(ModelError::UnsupportedMediaType {
                what: what.to_string(),
                media_type,
                expected: "an OCI or Docker schema 2 manifest (schema 1 was retired in 2019; push the image again with a current tool)",
            });
        }
        if !mt::is_index(&media_type) && !mt::is_manifest(&media_type) {
            return Err(ModelError::UnsupportedMediaType {
                what: what.to_string(),
                media_type,
                expected: "an OCI or Docker schema 2 manifest or index",
            });
        }
        Ok(RawManifest {
            digest: Digest::sha256(&bytes),
            bytes,
            media_type,
        })
    }

    /// A document kiln serialized itself.
    pub fn from_manifest(m: &Manifest) -> RawManifest {
        let bytes = m.to_bytes();
        RawManifest {
            digest: Digest::sha256(&bytes),
            media_type: m
                .media_type
                .clone()
                .unwrap_or_else(|| mt::OCI_MANIFEST.to_string()),
            bytes,
        }
    }

    pub fn is_index(&self) -> bool {
        mt::is_index(&self.media_type)
    }

    /// The descriptor that names this document.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }

    pub fn index(&self, what: &str) -> Result<Index, ModelError> {
        serde_json::from_slice(&self.bytes).map_err(|e| ModelError::Invalid {
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    /// The manifest, parsed with no check of what it names.
    pub fn manifest(&self, what: &str) -> Result<Manifest, ModelError> {
        serde_json::from_slice(&self.bytes).map_err(|e| ModelError::Invalid {
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    /// The manifest of a runnable image: its config and layer media types
    /// checked (artifacts, e.g. attestations in an index, use
    /// [`RawManifest::manifest`]).
    pub fn image(&self, what: &str) -> Result<Manifest, ModelError> {
        let m = self.manifest(what)?;
        if !CONFIG_TYPES.contains(&m.config.media_type.as_str()) {
            return Err(ModelError::UnsupportedMediaType {
                what: format!("the config of {what}"),
                media_type: m.config.media_type.clone(),
                expected: "an OCI or Docker image config",
            });
        }
        for l in &m.layers {
            if !LAYER_TYPES.contains(&l.media_type.as_str()) {
                return Err(ModelError::UnsupportedMediaType {
                    what: format!("layer {} of {what}", l.digest),
                    media_type: l.media_type.clone(),
                    expected: "a tar layer (plain, gzip or zstd)",
                });
            }
        }
        Ok(m)
    }
}

/// The digest of a layer's *uncompressed* tar: what an image config lists
/// in `rootfs.diff_ids`. A distinct type so it is never mistaken for the
/// blob digest of the (compressed) layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DiffId(pub Digest);

impl std::fmt::Display for DiffId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The identity of a stack of layers (OCI image spec, "ChainID"): the
/// bottom layer's diff_id, then `sha256(parent + " " + diff_id)` upward.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainId(pub Digest);

impl ChainId {
    /// The chain id of `diff_id` stacked on the chain `parent`.
    pub fn next(parent: Option<&ChainId>, diff_id: &DiffId) -> ChainId {
        match parent {
            None => ChainId(diff_id.0.clone()),
            Some(ChainId(prev)) => ChainId(Digest::sha256(format!("{prev} {diff_id}").as_bytes())),
        }
    }

    /// The chain id of every prefix of `diff_ids` (bottom first).
    pub fn chain(diff_ids: &[DiffId]) -> Vec<ChainId> {
        let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
        for d in diff_ids {
            let next = ChainId::next(out.last(), d);
            out.push(next);
        }
        out
    }
}

impl std::fmt::Display for ChainId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests;
