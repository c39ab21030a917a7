//! The simple-signing payload cosign signs, byte for byte as cosign's Go
//! code marshals it: fields in struct order, `optional` keys sorted (a Go
//! map), `null` when there are no annotations, and Go's string escaping
//! (`<`, `>`, `&`, U+2028 and U+2029 as `\u00XX`), so a signature made by
//! either tool is over the same bytes.

use std::collections::BTreeMap;

use kiln_core::{Digest, ImageRef};
use serde::Deserialize;

use crate::error::{Result, SignError};

/// The `type` of a cosign container image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The payload of one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`: the repository signed for.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub manifest_digest: String,
    /// `optional`: the `-a key=value` annotations.
    pub annotations: BTreeMap<String, String>,
}

impl SimpleSigning {
    /// The payload for `repository` (as [`docker_reference`] names it) at
    /// `digest`.
    pub fn new(
        repository: &ImageRef,
        digest: &Digest,
        annotations: BTreeMap<String, String>,
    ) -> SimpleSigning {
        SimpleSigning {
            docker_reference: docker_reference(repository),
            manifest_digest: digest.to_string(),
            annotations,
        }
    }

    /// The bytes cosign would write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::from("{\"critical\":{\"identity\":{\"docker-reference\":");
        go_string(&mut out, &self.docker_reference);
        out.push_str("},\"image\":{\"docker-manifest-digest\":");
        go_string(&mut out, &self.manifest_digest);
        out.push_str("},\"type\":");
        go_string(&mut out, SIGNATURE_TYPE);
        out.push_str("},\"optional\":");
        if self.annotations.is_empty() {
            out.push_str("null");
        } else {
            out.push('{');
            for (i, (k, v)) in self.annotations.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(&mut out, k);
                out.push(':');
                go_string(&mut out, v);
            }
            out.push('}');
        }
        out.push('}');
        out.into_bytes()
    }

    /// Reads a payload (any field order, as the JSON spec allows). Only
    /// string annotations are kept; cosign's own `optional` may hold
    /// others, which no `-a` check can name.
    pub fn parse(bytes: &[u8]) -> Result<SimpleSigning> {
        #[derive(Deserialize)]
        struct Doc {
            critical: Critical,
            #[serde(default)]
            optional: Option<BTreeMap<String, serde_json::Value>>,
        }
        #[derive(Deserialize)]
        struct Critical {
            identity: Identity,
            image: Image,
            #[serde(rename = "type")]
            kind: String,
        }
        #[derive(Deserialize)]
        struct Identity {
            #[serde(rename = "docker-reference")]
            docker_reference: String,
        }
        #[derive(Deserialize)]
        struct Image {
            #[serde(rename = "docker-manifest-digest")]
            digest: String,
        }
        let doc: Doc = serde_json::from_slice(bytes)
            .map_err(|e| SignError::invalid("simple-signing payload", e))?;
        if doc.critical.kind != SIGNATURE_TYPE {
            return Err(SignError::invalid(
                "simple-signing payload",
                format!("type {:?}, not {SIGNATURE_TYPE:?}", doc.critical.kind),
            ));
        }
        Ok(SimpleSigning {
            docker_reference: doc.critical.identity.docker_reference,
            manifest_digest: doc.critical.image.digest,
            annotations: doc
                .optional
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect(),
        })
    }
}

/// A repository as cosign names it in `docker-reference` (go-containerregistry's
/// `Repository.Name()`): Docker Hub is `index.docker.io`.
pub fn docker_reference(r: &ImageRef) -> String {
    match r.domain() {
        "docker.io" => format!("index.docker.io/{}", r.path()),
        d => format!("{d}/{}", r.path()),
    }
}

/// A reference fully qualified as go-containerregistry's
/// `Reference.Name()` spells it (what cosign prints in "Verification for
/// … --"): `index.docker.io/library/busybox:latest`, `host/repo:tag`, or
/// `host/repo@sha256:…` when a digest is given.
pub fn qualified_name(r: &ImageRef) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => format!("{}@{d}", docker_reference(r)),
        (None, t) => format!("{}:{}", docker_reference(r), t.unwrap_or("latest")),
    }
}

/// Whether a payload's `docker-reference` names the repository of `r`
/// (Docker Hub's spellings are one registry).
pub fn same_repository(docker_ref: &str, r: &ImageRef) -> bool {
    let norm = |s: &str| -> String {
        let s = s
            .strip_prefix("index.docker.io/")
            .map(|p| format!("docker.io/{p}"))
            .unwrap_or_else(|| s.to_string());
        match ImageRef::parse(&s) {
            Ok(p) => format!("{}/{}", p.domain(), p.path()),
            Err(_) => s,
        }
    };
    norm(docker_ref) == format!("{}/{}", r.domain(), r.path())
}

/// A JSON string as Go's `encoding/json` writes it (HTML-safe).
pub(crate) fn go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go ≥ 1.22 encoding/json writes these two as short escapes too.
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bytes_match_cosign() {
        let r: ImageRef = "127.0.0.1:5000/app:v1".parse().unwrap();
        let d = Digest::sha256(b"x");
        let p = SimpleSigning::new(&r, &d, BTreeMap::new());
        assert_eq!(
            String::from_utf8(p.to_bytes()).unwrap(),
            format!("{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/app\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}")
        );
        let ann = BTreeMap::from([
            ("z".to_string(), "1".to_string()),
            ("a".to_string(), "<&>".to_string()),
        ]);
        let p = SimpleSigning::new(&"busybox".parse().unwrap(), &d, ann);
        let text = String::from_utf8(p.to_bytes()).unwrap();
        assert!(
            text.contains("\"docker-reference\":\"index.docker.io/library/busybox\""),
            "{text}"
        );
        assert!(
            text.ends_with("\"optional\":{\"a\":\"\\u003c\\u0026\\u003e\",\"z\":\"1\"}}"),
            "{text}"
        );
        assert_eq!(SimpleSigning::parse(text.as_bytes()).unwrap(), p);
    }

    #[test]
    fn control_characters_escape_as_go_1_22() {
        let mut out = String::new();
        go_string(&mut out, "a\u{8}b\u{c}c\u{1}\n\u{7f}");
        assert_eq!(out, "\"a\\bb\\fc\\u0001\\n\u{7f}\"");
    }

    #[test]
    fn repositories_compare_across_hub_spellings() {
        let r: ImageRef = "busybox:1".parse().unwrap();
        assert!(same_repository("index.docker.io/library/busybox", &r));
        assert!(same_repository("docker.io/library/busybox", &r));
        assert!(!same_repository("index.docker.io/library/alpine", &r));
        assert_eq!(
            qualified_name(&"busybox".parse().unwrap()),
            "index.docker.io/library/busybox:latest"
        );
        assert_eq!(
            qualified_name(&"localhost:5000/a/b:v1".parse().unwrap()),
            "localhost:5000/a/b:v1"
        );
    }
}
