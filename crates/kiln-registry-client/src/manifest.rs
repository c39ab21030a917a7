//! Manifests and indexes as they come off the wire: OCI and Docker schema 2
//! share one JSON shape, so one pair of small structs reads both. Parsed
//! only as far as kiln needs (descriptors and platforms); the bytes are
//! always kept as received, since their digest is the image's name.

use kiln_core::{media_types as mt, Digest, Platform};
use serde::Deserialize;

use crate::error::{RegistryError, Result};

/// Manifests are capped: distribution refuses ones over 4 MiB too.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Layer media types kiln can unpack.
pub const LAYER_TYPES: &[&str] = &[
    mt::OCI_LAYER_TAR,
    mt::OCI_LAYER_GZIP,
    mt::OCI_LAYER_ZSTD,
    mt::DOCKER_LAYER_TAR,
    mt::DOCKER_LAYER_GZIP,
];

const CONFIG_TYPES: &[&str] = &[mt::OCI_CONFIG, mt::DOCKER_CONFIG];

/// Every manifest type kiln asks for, in the Accept header.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<PlatformDoc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlatformDoc {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl PlatformDoc {
    pub fn to_platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImageIndex {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// A manifest or index as received: bytes, media type, digest of the bytes.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

impl RawManifest {
    /// Classifies the document. The media type comes from the JSON's own
    /// `mediaType` when present (it is covered by the digest), else from
    /// the Content-Type header.
    pub fn new(bytes: Vec<u8>, header_type: Option<&str>, what: &str) -> Result<RawManifest> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType", default)]
            media_type: Option<String>,
            #[serde(rename = "schemaVersion", default)]
            schema_version: Option<u32>,
            #[serde(default)]
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
            what: what.to_string(),
            reason: format!("not JSON: {e}"),
        })?;
        let header_type = header_type
            .map(|h| h.split(';').next().unwrap_or_default().trim().to_string())
            .filter(|h| !h.is_empty());
        let media_type = match (probe.media_type, header_type) {
            (Some(m), _) => m,
            (None, Some(h)) if mt::is_index(&h) || mt::is_manifest(&h) => h,
            // OCI allows mediaType to be absent: tell by shape.
            (None, _) if probe.manifests.is_some() => mt::OCI_INDEX.to_string(),
            (None, _) => mt::OCI_MANIFEST.to_string(),
        };
        if probe.schema_version == Some(1)
            || media_type.starts_with("application/vnd.docker.distribution.manifest.v1")
        {
            return Err(RegistryError::UnsupportedMediaType {
                what: what.to_string(),
                media_type,
                expected: "an OCI or Docker schema 2 manifest (schema 1 was retired in 2019; push the image again with a current tool)",
            });
        }
        if !mt::is_index(&media_type) && !mt::is_manifest(&media_type) {
            return Err(RegistryError::UnsupportedMediaType {
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

    pub fn is_index(&self) -> bool {
        mt::is_index(&self.media_type)
    }

    pub fn index(&self, what: &str) -> Result<ImageIndex> {
        serde_json::from_slice(&self.bytes).map_err(|e| RegistryError::Invalid {
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    /// The image manifest, with its config and layer media types checked
    /// (unless `any_layers`: attestations and other artifacts in an index
    /// copied whole carry their own types).
    pub fn image(&self, what: &str, any_layers: bool) -> Result<ImageManifest> {
        let m: ImageManifest =
            serde_json::from_slice(&self.bytes).map_err(|e| RegistryError::Invalid {
                what: what.to_string(),
                reason: e.to_string(),
            })?;
        if any_layers {
            return Ok(m);
        }
        if !CONFIG_TYPES.contains(&m.config.media_type.as_str()) {
            return Err(RegistryError::UnsupportedMediaType {
                what: format!("the config of {what}"),
                media_type: m.config.media_type.clone(),
                expected: "an OCI or Docker image config",
            });
        }
        for l in &m.layers {
            if !LAYER_TYPES.contains(&l.media_type.as_str()) {
                return Err(RegistryError::UnsupportedMediaType {
                    what: format!("layer {} of {what}", l.digest),
                    media_type: l.media_type.clone(),
                    expected: "a tar layer (plain, gzip or zstd)",
                });
            }
        }
        Ok(m)
    }
}

/// Whether an index entry's platform is what the user asked for. An
/// absent variant matches any (arm64 images often omit `v8`).
pub fn platform_matches(have: &PlatformDoc, want: &Platform) -> bool {
    if have.os != want.os || have.architecture != want.architecture {
        return false;
    }
    match (&have.variant, &want.variant) {
        (Some(h), Some(w)) => h == w,
        _ => true,
    }
}

/// Picks the manifest for `want` from an index; the error lists what the
/// index offers.
pub fn select_platform<'a>(
    index: &'a ImageIndex,
    want: &Platform,
    reference: &str,
) -> Result<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| platform_matches(p, want))
        })
        .collect();
    // An exact variant match beats a variant-less one.
    if let Some(d) = candidates
        .iter()
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_ref()) == want.variant.as_ref())
    {
        return Ok(d);
    }
    if let Some(d) = candidates.first() {
        return Ok(d);
    }
    let mut available: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(|p| p.to_platform().to_string())
        .collect();
    available.dedup();
    Err(RegistryError::NoMatchingPlatform {
        reference: reference.to_string(),
        wanted: want.to_string(),
        available: if available.is_empty() {
            "no platforms".into()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn index() -> ImageIndex {
        let d = |arch: &str, variant: Option<&str>, n: u8| {
            let v = variant
                .map(|v| format!(r#","variant":"{v}""#))
                .unwrap_or_default();
            format!(
                r#"{{"mediaType":"{}","digest":"sha256:{}","size":1,"platform":{{"os":"linux","architecture":"{arch}"{v}}}}}"#,
                mt::OCI_MANIFEST,
                format!("{n:02x}").repeat(32)
            )
        };
        let text = format!(
            r#"{{"manifests":[{},{},{}]}}"#,
            d("amd64", None, 1),
            d("arm", Some("v6"), 2),
            d("arm", Some("v7"), 3)
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn selects_platform_and_variant() {
        let idx = index();
        let pick = |p: &str| {
            select_platform(&idx, &p.parse().unwrap(), "x").map(|d| d.digest.hex()[..2].to_string())
        };
        assert_eq!(pick("linux/amd64").unwrap(), "01");
        assert_eq!(pick("linux/arm/v7").unwrap(), "03");
        assert_eq!(pick("linux/arm/v6").unwrap(), "02");
        let err = pick("linux/s390x").unwrap_err().to_string();
        assert!(
            err.contains("linux/amd64, linux/arm/v6, linux/arm/v7"),
            "{err}"
        );
        assert!(err.contains("--platform"), "{err}");
    }

    #[test]
    fn classifies_documents() {
        let m =
            RawManifest::new(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(), None, "x").unwrap();
        assert!(m.is_index());
        let m = RawManifest::new(
            br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}}"#.to_vec(),
            Some("application/vnd.docker.distribution.manifest.v2+json"),
            "x",
        )
        .unwrap();
        assert_eq!(m.media_type, mt::DOCKER_MANIFEST);
        let err = m.image("x", false).unwrap_err().to_string();
        assert!(err.contains("media type \"a\""), "{err}");
        assert!(RawManifest::new(br#"{"schemaVersion":1}"#.to_vec(), None, "x").is_err());
        let err =
            RawManifest::new(br#"{"mediaType":"text/html"}"#.to_vec(), None, "x").unwrap_err();
        assert!(err.to_string().contains("text/html"), "{err}");
        assert!(RawManifest::new(b"<html>".to_vec(), None, "x").is_err());
    }
}
