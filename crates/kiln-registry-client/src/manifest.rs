//! Manifests as they come off the wire, in the one model of
//! `kiln_core::image` (OCI and Docker schema 2 share one JSON shape; the
//! bytes are always kept as received, since their digest is the image's
//! name). What is the registry's own here: the Accept header and the error
//! for an index that offers no wanted platform.

use kiln_core::Platform;

use crate::error::{RegistryError, Result};

pub use kiln_core::image::{
    Descriptor, Index as ImageIndex, Manifest as ImageManifest, RawManifest, LAYER_TYPES,
    MAX_MANIFEST_BYTES,
};

/// An image config read into memory ([`crate::Client::read_blob`]) may be
/// no larger: configs are kilobytes; a registry sending more is refused.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// Every manifest type kiln asks for, in the Accept header.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Picks the manifest for `want` from an index (the one matcher,
/// [`Platform::select`]); the error lists what the index offers.
pub fn select_platform<'a>(
    index: &'a ImageIndex,
    want: &Platform,
    reference: &str,
) -> Result<&'a Descriptor> {
    index
        .select(want)
        .ok_or_else(|| RegistryError::NoMatchingPlatform {
            reference: reference.to_string(),
            wanted: want.to_string(),
            available: match index.platforms() {
                a if a.is_empty() => "no platforms".into(),
                a => a.join(", "),
            },
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kiln_core::media_types as mt;

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
}
