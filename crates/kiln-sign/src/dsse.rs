//! Attestations as cosign writes them: an in-toto statement (v0.1, the
//! version `cosign attest` writes) whose predicate is the user's file, in
//! a DSSE envelope signed over the pre-authentication encoding (PAE).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kiln_core::{Digest, ImageRef};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SignError};
use crate::keys::{PrivateKey, PublicKey};

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The statement type cosign writes.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// The statement type of in-toto v1 (read too).
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// `--type` names and the predicate type URIs cosign maps them to; any
/// other value that is a URI is taken as the predicate type itself.
pub const PREDICATE_TYPES: &[(&str, &str)] = &[
    ("slsaprovenance", "https://slsa.dev/provenance/v0.2"),
    ("slsaprovenance02", "https://slsa.dev/provenance/v0.2"),
    ("slsaprovenance1", "https://slsa.dev/provenance/v1"),
    ("spdx", "https://spdx.dev/Document"),
    ("spdxjson", "https://spdx.dev/Document"),
    ("cyclonedx", "https://cyclonedx.org/bom"),
    ("vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"),
    ("link", "https://in-toto.io/Link/v1"),
    ("openvex", "https://openvex.dev/ns"),
    ("custom", "https://cosign.sigstore.dev/attestation/v1"),
];

/// cosign's `custom` predicate type.
pub const CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";

/// Whether Go's `url.ParseRequestURI` accepts `s` (cosign's
/// `options.ParsePredicateType` takes any such value as a URI): an
/// absolute URI (`scheme:…`) or an absolute path (`/…`), without
/// control characters or bad `%` escapes.
pub fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(|c| c.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if s == "*" || s.starts_with('/') {
        return true;
    }
    // Go's getScheme: a letter, then letters, digits, `+`, `-`, `.`, up to ':'.
    for (i, c) in s.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' => return i > 0,
            _ => return false,
        }
    }
    false
}

/// The predicate type URI of a `--type` value.
pub fn predicate_type(kind: &str) -> Result<String> {
    if let Some((_, uri)) = PREDICATE_TYPES.iter().find(|(k, _)| *k == kind) {
        return Ok(uri.to_string());
    }
    if is_request_uri(kind) {
        return Ok(kind.to_string());
    }
    Err(SignError::invalid(
        format!("--type {kind}"),
        format!(
            "unknown predicate type; use one of {} or a URI",
            PREDICATE_TYPES
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// An in-toto statement about one image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub kind: String,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub subject: Vec<Subject>,
    pub predicate: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl Statement {
    /// The statement cosign writes for `predicate` (the file's bytes) of
    /// `predicate_type` about `repository@digest`, as cosign's
    /// pkg/cosign/attestation/attestation.go builds it: a `custom`
    /// predicate is `{"Data": <the file as a string>, "Timestamp": …}`
    /// (even when the file is JSON); `--type spdx` (`spdx_as_text`) stores
    /// the file as a string; every other type needs a JSON object.
    pub fn new(
        repository: &ImageRef,
        digest: &Digest,
        predicate_type: &str,
        predicate: &[u8],
        now_rfc3339: &str,
    ) -> Result<Statement> {
        Statement::new_typed(
            repository,
            digest,
            predicate_type,
            false,
            predicate,
            now_rfc3339,
        )
    }

    /// [`Statement::new`], with `spdx_as_text` set for `--type spdx`
    /// (cosign's `generateSPDXStatement(…, parseJSON=false)`).
    pub fn new_typed(
        repository: &ImageRef,
        digest: &Digest,
        predicate_type: &str,
        spdx_as_text: bool,
        predicate: &[u8],
        now_rfc3339: &str,
    ) -> Result<Statement> {
        let text = || serde_json::Value::String(String::from_utf8_lossy(predicate).into_owned());
        let predicate = if predicate_type == CUSTOM {
            serde_json::json!({"Data": text(), "Timestamp": now_rfc3339})
        } else if spdx_as_text {
            text()
        } else {
            match serde_json::from_slice::<serde_json::Value>(predicate) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                Ok(_) => {
                    return Err(SignError::invalid(
                        "predicate",
                        format!("a {predicate_type} predicate must be a JSON object"),
                    ))
                }
                Err(e) => {
                    return Err(SignError::invalid(
                        "predicate",
                        format!("invalid JSON payload for predicate type {predicate_type}: {e}"),
                    ))
                }
            }
        };
        Ok(Statement {
            kind: STATEMENT_V01.to_string(),
            predicate_type: predicate_type.to_string(),
            subject: vec![Subject {
                name: crate::payload::docker_reference(repository),
                digest: BTreeMap::from([(
                    digest.algorithm().as_str().to_string(),
                    digest.hex().to_string(),
                )]),
            }],
            predicate,
        })
    }

    /// Whether the statement is about `digest`.
    pub fn is_about(&self, digest: &Digest) -> bool {
        self.subject.iter().any(|s| {
            s.digest
                .get(digest.algorithm().as_str())
                .map(String::as_str)
                == Some(digest.hex())
        })
    }
}

/// A DSSE envelope (the JSON cosign stores as the attestation layer).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the payload.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the ASN.1 DER signature over the PAE.
    pub sig: String,
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// `statement` signed with `key` (cosign leaves `keyid` empty).
    pub fn sign(statement: &Statement, key: &PrivateKey) -> Result<Envelope> {
        let body = serde_json::to_vec(statement).map_err(|e| SignError::invalid("statement", e))?;
        let sig = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &body));
        Ok(Envelope {
            payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
            payload: B64.encode(&body),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig: B64.encode(sig),
            }],
        })
    }

    /// The statement, if one of the signatures is `key`'s over the PAE.
    pub fn verify(&self, key: &PublicKey) -> Result<Statement> {
        let body = B64.decode(&self.payload).map_err(|e| {
            SignError::invalid("DSSE envelope", format!("payload is not base64: {e}"))
        })?;
        let message = pae(&self.payload_type, &body);
        let signed = self.signatures.iter().any(|s| {
            B64.decode(&s.sig)
                .map(|sig| key.verify(&message, &sig))
                .unwrap_or(false)
        });
        if !signed {
            return Err(SignError::Verification(
                "no signature of the envelope verifies with the given key".into(),
            ));
        }
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(SignError::invalid(
                "DSSE envelope",
                format!(
                    "payload type {:?}, not {IN_TOTO_PAYLOAD_TYPE}",
                    self.payload_type
                ),
            ));
        }
        let st: Statement = serde_json::from_slice(&body)
            .map_err(|e| SignError::invalid("in-toto statement", e))?;
        if st.kind != STATEMENT_V01 && st.kind != STATEMENT_V1 {
            return Err(SignError::invalid(
                "in-toto statement",
                format!("_type {:?}", st.kind),
            ));
        }
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn predicates_as_cosign_builds_them() {
        let r: ImageRef = "127.0.0.1:5000/a".parse().unwrap();
        let d = Digest::sha256(b"img");
        let json = b"{\"k\":1}";
        // custom: the raw file as a string, even when it is JSON.
        let st = Statement::new(&r, &d, CUSTOM, json, "2026-01-02T03:04:05Z").unwrap();
        assert_eq!(
            st.predicate,
            serde_json::json!({"Data": "{\"k\":1}", "Timestamp": "2026-01-02T03:04:05Z"})
        );
        // spdx (not spdxjson): the raw text as a string predicate.
        let spdx = predicate_type("spdx").unwrap();
        let st = Statement::new_typed(&r, &d, &spdx, true, b"SPDXVersion: SPDX-2.3", "t").unwrap();
        assert_eq!(st.predicate, serde_json::json!("SPDXVersion: SPDX-2.3"));
        let st = Statement::new_typed(&r, &d, &spdx, false, json, "t").unwrap();
        assert_eq!(st.predicate, serde_json::json!({"k": 1}));
        // Other types need a JSON object.
        for t in [
            "slsaprovenance",
            "cyclonedx",
            "link",
            "openvex",
            "vuln",
            "spdxjson",
        ] {
            let uri = predicate_type(t).unwrap();
            assert!(Statement::new(&r, &d, &uri, b"[1]", "t").is_err(), "{t}");
            assert!(
                Statement::new(&r, &d, &uri, b"not json", "t").is_err(),
                "{t}"
            );
            assert!(Statement::new(&r, &d, &uri, json, "t").is_ok(), "{t}");
        }
        assert_eq!(
            predicate_type("link").unwrap(),
            "https://in-toto.io/Link/v1"
        );
        assert_eq!(predicate_type("openvex").unwrap(), "https://openvex.dev/ns");
    }

    #[test]
    fn predicate_type_uris_as_go_parse_request_uri() {
        for ok in [
            "https://example.com/p/v1",
            "urn:example:pred",
            "/abs/path",
            "x-y+z.1:rest",
        ] {
            assert_eq!(predicate_type(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "mytype",
            "1http://x",
            ":nope",
            "a b:c\n",
            "http://x/%zz",
            "rel/path",
        ] {
            assert!(predicate_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn envelope_round_trip_and_tampering() {
        let k = PrivateKey::generate();
        let d = Digest::sha256(b"img");
        let st = Statement::new(
            &"127.0.0.1:5000/a".parse().unwrap(),
            &d,
            &predicate_type("slsaprovenance").unwrap(),
            b"{\"builder\":{\"id\":\"x\"}}",
            "t",
        )
        .unwrap();
        let env = Envelope::sign(&st, &k).unwrap();
        let back = env.verify(&k.public()).unwrap();
        assert!(back.is_about(&d));
        let mut bad = env.clone();
        bad.payload = B64.encode(b"{\"_type\":\"https://in-toto.io/Statement/v0.1\"}");
        assert!(bad.verify(&k.public()).is_err());
        assert!(env.verify(&PrivateKey::generate().public()).is_err());
    }
}
