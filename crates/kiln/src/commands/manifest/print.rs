//! docker's `manifest inspect` output, byte for byte (docker CLI 20.10–28):
//!
//! - one manifest: its bytes as received, re-indented with tabs
//!   (`json.Indent`, so key order and spelling are the registry's);
//! - a list: *rebuilt* from its children's descriptors (distribution's
//!   `FromDescriptors`: an OCI index when the first child is an OCI
//!   manifest, else a Docker manifest list, whatever the original was),
//!   indented with three spaces, each entry carrying only media type,
//!   size, digest and platform;
//! - `--verbose`: docker's `ImageManifest` records (`Ref`, `Descriptor`
//!   with the platform, `Raw` in base64, and the manifest itself under
//!   `SchemaV2Manifest` or `OCIManifest`), tab-indented; a list is an
//!   array of them.

use base64::Engine;
use kiln_core::gofmt::json_indent;
use kiln_core::image::Descriptor;
use kiln_core::{media_types, Platform};
use serde::Serialize;

/// One manifest as docker's registry client hands it to the printer.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// docker's `Ref`: the full name, `@digest` added for a list's child.
    pub reference: String,
    /// Media type, digest and size of the bytes, with the platform (from
    /// the list entry for a child, from the config otherwise).
    pub descriptor: Descriptor,
    pub raw: Vec<u8>,
}

/// One manifest, non-verbose.
pub(crate) fn manifest(raw: &[u8]) -> anyhow::Result<String> {
    let text = json_indent(raw, "", "\t")
        .ok_or_else(|| anyhow::anyhow!("the manifest is not valid JSON"))?;
    Ok(text + "\n")
}

/// A list, non-verbose: docker's rebuilt manifest list.
pub(crate) fn list(children: &[Descriptor]) -> String {
    #[derive(Serialize)]
    struct List<'a> {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        manifests: Vec<Entry<'a>>,
    }
    #[derive(Serialize)]
    struct Entry<'a> {
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        size: u64,
        digest: String,
        platform: Spec,
    }
    // distribution's PlatformSpec: architecture and os always written.
    #[derive(Serialize)]
    struct Spec {
        architecture: String,
        os: String,
        #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
        os_version: Option<String>,
        #[serde(rename = "os.features", skip_serializing_if = "Vec::is_empty")]
        os_features: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        variant: Option<String>,
    }
    let oci_first = children
        .first()
        .is_some_and(|c| c.media_type == media_types::OCI_MANIFEST);
    let list = List {
        schema_version: 2,
        media_type: if oci_first {
            media_types::OCI_INDEX
        } else {
            media_types::DOCKER_MANIFEST_LIST
        },
        manifests: children
            .iter()
            .map(|c| {
                let p = c.platform.clone().unwrap_or_else(empty_platform);
                Entry {
                    media_type: &c.media_type,
                    size: c.size,
                    digest: c.digest.to_string(),
                    platform: Spec {
                        architecture: p.architecture,
                        os: p.os,
                        os_version: p.os_version,
                        os_features: p.os_features,
                        variant: p.variant,
                    },
                }
            })
            .collect(),
    };
    let compact = serde_json::to_vec(&list).unwrap_or_default();
    json_indent(&compact, "", "   ").unwrap_or_default() + "\n"
}

/// `--verbose` of one manifest.
pub(crate) fn verbose(m: &Fetched) -> anyhow::Result<String> {
    let compact = record(m)?;
    Ok(json_indent(compact.as_bytes(), "", "\t").unwrap_or_default() + "\n")
}

/// `--verbose` of a list: an array of records.
pub(crate) fn verbose_list(ms: &[Fetched]) -> anyhow::Result<String> {
    let records = ms.iter().map(record).collect::<anyhow::Result<Vec<_>>>()?;
    let compact = format!("[{}]", records.join(","));
    Ok(json_indent(compact.as_bytes(), "", "\t").unwrap_or_default() + "\n")
}

/// docker's `ImageManifest` as compact JSON (the manifest spliced in as
/// received: Go marshals it from its canonical bytes).
fn record(m: &Fetched) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Desc<'a> {
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        digest: String,
        size: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<&'a Platform>,
    }
    let d = &m.descriptor;
    let desc = Desc {
        media_type: &d.media_type,
        digest: d.digest.to_string(),
        size: d.size,
        platform: d.platform.as_ref(),
    };
    let key = if d.media_type == media_types::DOCKER_MANIFEST {
        "SchemaV2Manifest"
    } else if d.media_type == media_types::OCI_MANIFEST {
        "OCIManifest"
    } else {
        anyhow::bail!("{} is not a manifest ({})", m.reference, d.media_type);
    };
    // Checked JSON: spliced below as it is.
    serde_json::from_slice::<serde::de::IgnoredAny>(&m.raw)
        .map_err(|e| anyhow::anyhow!("{}: the manifest is not valid JSON: {e}", m.reference))?;
    Ok(format!(
        "{{\"Ref\":{},\"Descriptor\":{},\"Raw\":\"{}\",\"{key}\":{}}}",
        serde_json::to_string(&m.reference)?,
        serde_json::to_string(&desc)?,
        base64::engine::general_purpose::STANDARD.encode(&m.raw),
        String::from_utf8_lossy(&m.raw),
    ))
}

/// The platform docker reads out of a config: os, architecture, variant,
/// os.version and os.features, empty strings when absent.
pub(crate) fn platform_from_config(config: &[u8]) -> Platform {
    let v: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Platform {
        architecture: s("architecture").unwrap_or_default(),
        os: s("os").unwrap_or_default(),
        os_version: s("os.version"),
        os_features: v
            .get("os.features")
            .and_then(|f| f.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        variant: s("variant"),
    }
}

fn empty_platform() -> Platform {
    Platform::new("", "", None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::Digest;

    #[test]
    fn a_list_is_rebuilt_as_docker_writes_it() {
        let mut a = Descriptor::new(media_types::OCI_MANIFEST, Digest::sha256(b"a"), 480);
        a.platform = Some(Platform::new("linux", "arm64", Some("v8")));
        let text = list(&[a]);
        let want = format!(
            "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{}\",\n   \"manifests\": [\n      {{\n         \"mediaType\": \"{}\",\n         \"size\": 480,\n         \"digest\": \"{}\",\n         \"platform\": {{\n            \"architecture\": \"arm64\",\n            \"os\": \"linux\",\n            \"variant\": \"v8\"\n         }}\n      }}\n   ]\n}}\n",
            media_types::OCI_INDEX,
            media_types::OCI_MANIFEST,
            Digest::sha256(b"a")
        );
        assert_eq!(text, want);
    }

    #[test]
    fn verbose_splices_the_manifest_and_its_base64() {
        let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
        let mut d = Descriptor::new(
            media_types::OCI_MANIFEST,
            Digest::sha256(raw),
            raw.len() as u64,
        );
        d.platform = Some(platform_from_config(
            br#"{"architecture":"amd64","os":"linux"}"#,
        ));
        let out = verbose(&Fetched {
            reference: "127.0.0.1:5000/a:b".into(),
            descriptor: d,
            raw: raw.to_vec(),
        })
        .unwrap();
        assert!(
            out.starts_with(
                "{\n\t\"Ref\": \"127.0.0.1:5000/a:b\",\n\t\"Descriptor\": {\n\t\t\"mediaType\""
            ),
            "{out}"
        );
        assert!(
            out.contains("\t\"OCIManifest\": {\n\t\t\"schemaVersion\": 2,"),
            "{out}"
        );
        assert!(out.contains("\t\t\"layers\": []\n"), "{out}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert!(out.contains(&format!("\"Raw\": \"{b64}\"")), "{out}");
    }
}
