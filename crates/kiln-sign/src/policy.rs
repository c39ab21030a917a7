//! Which images may run: a subset of containers/image's `policy.json`
//! (containers-policy.json(5)), the file podman, buildah and skopeo read.
//!
//! The subset kiln reads:
//! - `default`: the requirements for images no scope matches;
//! - `transports.docker` (and `docker-daemon`/`atomic` are refused by
//!   name): scopes `host[:port]/repo[:tag|@digest]`, `host/namespace`,
//!   `host`, and `*.domain` wildcards, the most specific one winning, as
//!   containers/image matches them; the transport's `""` scope is its
//!   default;
//! - requirement types `insecureAcceptAnything`, `reject`, and
//!   `sigstoreSigned` with `keyPath`, `keyPaths` or `keyData` (base64 PEM)
//!   — the cosign-key requirement. `signedBy` with a `keyPath` to a PEM
//!   public key is taken the same way (its GPG keyrings are not: they are
//!   refused with a message), and `signedIdentity` is read as
//!   `matchRepository` (the payload's `docker-reference` must name the
//!   image's repository) whatever it says.
//!
//! All requirements of the chosen scope must hold, as containers/image
//! requires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kiln_core::ImageRef;
use serde::Deserialize;

use crate::error::{Result, SignError};
use crate::keys::PublicKey;

/// One requirement, as kiln enforces it.
#[derive(Debug, Clone)]
pub enum Requirement {
    Accept,
    Reject,
    /// A valid signature by any one of these keys.
    Signed(Vec<(String, PublicKey)>),
}

/// The parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    default: Vec<Requirement>,
    docker: BTreeMap<String, Vec<Requirement>>,
}

#[derive(Deserialize)]
struct RawPolicy {
    default: Vec<RawRequirement>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<RawRequirement>>>,
}

#[derive(Deserialize)]
struct RawRequirement {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "keyType", default)]
    key_type: Option<String>,
    #[serde(rename = "keyPath", default)]
    key_path: Option<PathBuf>,
    #[serde(rename = "keyPaths", default)]
    key_paths: Vec<PathBuf>,
    #[serde(rename = "keyData", default)]
    key_data: Option<String>,
}

impl Policy {
    /// A policy requiring `key`'s signature for every image (`--verify-key`).
    pub fn require_key(name: String, key: PublicKey) -> Policy {
        Policy {
            default: vec![Requirement::Signed(vec![(name, key)])],
            docker: BTreeMap::new(),
        }
    }

    /// Reads a policy file; relative key paths are relative to the file's
    /// directory.
    pub fn load(path: &Path) -> Result<Policy> {
        let what = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SignError::Io {
            what: format!("read policy {what}"),
            source: e,
        })?;
        Policy::parse(&text, path.parent().unwrap_or(Path::new(".")), &what)
    }

    pub fn parse(text: &str, dir: &Path, what: &str) -> Result<Policy> {
        let raw: RawPolicy = serde_json::from_str(text).map_err(|e| {
            SignError::invalid(
                what,
                format!("not a policy.json (containers-policy.json(5)): {e}"),
            )
        })?;
        if raw.default.is_empty() {
            return Err(SignError::invalid(
                what,
                "\"default\" is empty: give at least one requirement, e.g. [{\"type\":\"reject\"}]",
            ));
        }
        let reqs = |list: Vec<RawRequirement>| -> Result<Vec<Requirement>> {
            list.into_iter()
                .map(|r| requirement(r, dir, what))
                .collect()
        };
        let mut docker = BTreeMap::new();
        for (transport, scopes) in raw.transports {
            if transport != "docker" {
                return Err(SignError::Unsupported(format!(
                    "{what}: transport {transport:?}: kiln reads the \"docker\" transport's scopes only (images come from registries)"
                )));
            }
            for (scope, list) in scopes {
                docker.insert(scope, reqs(list)?);
            }
        }
        Ok(Policy {
            default: reqs(raw.default)?,
            docker,
        })
    }

    /// The requirements for `image` (the scope that matched, for messages).
    pub fn requirements(&self, image: &ImageRef) -> (String, &[Requirement]) {
        for scope in scopes(image) {
            if let Some(r) = self.docker.get(&scope) {
                let label = if scope.is_empty() {
                    "docker transport default".to_string()
                } else {
                    format!("scope {scope}")
                };
                return (label, r);
            }
        }
        ("default".to_string(), &self.default)
    }
}

fn requirement(r: RawRequirement, dir: &Path, what: &str) -> Result<Requirement> {
    match r.kind.as_str() {
        "insecureAcceptAnything" => Ok(Requirement::Accept),
        "reject" => Ok(Requirement::Reject),
        "sigstoreSigned" | "signedBy" => {
            if r.kind == "signedBy" && r.key_type.as_deref().is_some_and(|t| t != "GPGKeys" || r.key_path.is_none()) {
                return Err(SignError::Unsupported(format!("{what}: signedBy with keyType {:?}: kiln verifies cosign keys (PEM public keys); use sigstoreSigned with keyPath", r.key_type)));
            }
            let mut keys = Vec::new();
            let mut paths = r.key_paths;
            paths.extend(r.key_path);
            for p in paths {
                let p = if p.is_relative() { dir.join(p) } else { p };
                let name = p.display().to_string();
                let text = std::fs::read_to_string(&p).map_err(|e| SignError::Io { what: format!("{what}: read key {name}"), source: e })?;
                let key = PublicKey::from_pem(&text, &name).map_err(|e| match r.kind.as_str() {
                    "signedBy" => SignError::Unsupported(format!("{what}: signedBy key {name} is not a PEM public key ({e}); GPG keyrings are not supported: use sigstoreSigned with a cosign public key")),
                    _ => e,
                })?;
                keys.push((name, key));
            }
            if let Some(data) = r.key_data {
                let pem = B64.decode(data.trim()).map_err(|e| SignError::invalid(what, format!("keyData is not base64: {e}")))?;
                let pem = String::from_utf8_lossy(&pem).into_owned();
                keys.push(("keyData".to_string(), PublicKey::from_pem(&pem, &format!("{what}: keyData"))?));
            }
            if keys.is_empty() {
                return Err(SignError::invalid(what, format!("{} needs keyPath, keyPaths or keyData", r.kind)));
            }
            Ok(Requirement::Signed(keys))
        }
        other => Err(SignError::Unsupported(format!(
            "{what}: requirement type {other:?}: kiln reads insecureAcceptAnything, reject, sigstoreSigned (and signedBy with a PEM keyPath)"
        ))),
    }
}

/// The scopes to try for `image`, most specific first, as containers/image
/// lists them for the docker transport; the transport default `""` last.
fn scopes(image: &ImageRef) -> Vec<String> {
    let mut out = Vec::new();
    let repo = format!("{}/{}", image.domain(), image.path());
    if let Some(d) = image.digest() {
        out.push(format!("{repo}@{d}"));
    }
    if let Some(t) = image.tag() {
        out.push(format!("{repo}:{t}"));
    }
    let mut cur = repo.as_str();
    out.push(cur.to_string());
    while let Some((parent, _)) = cur.rsplit_once('/') {
        out.push(parent.to_string());
        cur = parent;
    }
    // Wildcards: *.example.com matches sub.example.com's images.
    let host = image.domain().split(':').next().unwrap_or_default();
    let mut labels: &str = host;
    while let Some((_, rest)) = labels.split_once('.') {
        out.push(format!("*.{rest}"));
        labels = rest;
    }
    out.push(String::new());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn most_specific_scope_wins() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::keys::PrivateKey::generate().public();
        std::fs::write(dir.path().join("k.pub"), key.to_pem().unwrap()).unwrap();
        let text = r#"{"default":[{"type":"reject"}],
            "transports":{"docker":{
              "127.0.0.1:5000/signed":[{"type":"sigstoreSigned","keyPath":"k.pub","signedIdentity":{"type":"matchRepository"}}],
              "127.0.0.1:5000":[{"type":"insecureAcceptAnything"}],
              "*.example.com":[{"type":"insecureAcceptAnything"}]}}}"#;
        let p = Policy::parse(text, dir.path(), "policy.json").unwrap();
        let kind = |r: &str| {
            let (scope, reqs) = p.requirements(&r.parse().unwrap());
            (
                scope,
                format!("{:?}", reqs.first().unwrap())
                    .split(['(', ' '])
                    .next()
                    .unwrap()
                    .to_string(),
            )
        };
        assert_eq!(
            kind("127.0.0.1:5000/signed:v1"),
            ("scope 127.0.0.1:5000/signed".into(), "Signed".into())
        );
        assert_eq!(kind("127.0.0.1:5000/other:v1").1, "Accept");
        assert_eq!(kind("reg.example.com/x").1, "Accept");
        assert_eq!(kind("busybox"), ("default".into(), "Reject".into()));
    }

    #[test]
    fn unknown_types_and_transports_are_named() {
        let d = Path::new(".");
        let e = Policy::parse(r#"{"default":[{"type":"signedBaseLayer"}]}"#, d, "p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("signedBaseLayer"), "{e}");
        let e = Policy::parse(
            r#"{"default":[{"type":"reject"}],"transports":{"oci":{}}}"#,
            d,
            "p",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"oci\""), "{e}");
        let e = Policy::parse(r#"{"default":[]}"#, d, "p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
    }
}
