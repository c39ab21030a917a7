//! Image references, parsed and normalized exactly as docker does
//! (github.com/distribution/reference: `ParseNormalizedNamed` + `TagNameOnly`).
//!
//! Grammar:
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain "/"] path
//! domain     := host [":" port]          host: dns-name | "[" ipv6 "]"
//! path       := component ("/" component)*
//! component  := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
//! tag        := [\w][\w.-]{0,127}
//! ```
//! The first `/`-separated part is a domain only if it contains `.` or `:`,
//! or is `localhost`, or has uppercase letters; otherwise the domain is
//! `docker.io` and single-component names get the `library/` namespace.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_REGISTRY: &str = "index.docker.io";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A normalized image reference: registry domain, repository path, and an
/// optional tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a reference was rejected; each message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: reference is empty")]
    Empty,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error(
        "invalid repository name ({0}), cannot specify 64-byte hexadecimal strings \
         (use sha256:{0} to name an image by ID)"
    )]
    HexName(String),
    #[error("invalid reference format: repository name must not be more than {MAX_NAME_LEN} characters ({0} given)")]
    NameTooLong(usize),
    #[error("invalid reference format: repository name component {0:?} in {1:?} is invalid: components use a-z, 0-9 and the separators '.', '_', '__', '-' between them")]
    BadComponent(String, String),
    #[error("invalid reference format: registry host {0:?} is invalid")]
    BadDomain(String),
    #[error("invalid reference format: tag {0:?} is invalid: a tag is up to {MAX_TAG_LEN} characters of A-Z a-z 0-9 _ . - and does not start with '.' or '-'")]
    BadTag(String),
    #[error("invalid reference format: {0}")]
    BadDigest(DigestError),
}

impl ImageRef {
    /// Parse and normalize, without adding a default tag (`busybox` stays
    /// tagless; use [`ImageRef::with_default_tag`] or [`FromStr`] for that).
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(d.parse::<Digest>().map_err(ReferenceError::BadDigest)?),
            ),
            None => (s, None),
        };
        let (name, tag) = split_tag(rest);
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        let (domain, path) = split_domain(name);
        validate_domain(&domain)?;
        if path.is_empty() {
            return Err(ReferenceError::BadComponent(String::new(), s.to_string()));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(path));
        }
        for component in path.split('/') {
            if !valid_component(component) {
                return Err(ReferenceError::BadComponent(
                    component.to_string(),
                    s.to_string(),
                ));
            }
        }
        let full_len = domain.len() + 1 + path.len();
        if full_len > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong(full_len));
        }
        Ok(ImageRef {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Adds the `latest` tag when the reference has neither tag nor digest.
    pub fn with_default_tag(mut self) -> ImageRef {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ReferenceError> {
        validate_tag(tag)?;
        Ok(ImageRef {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository pinned to a digest, without a tag.
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// Registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path within the registry, e.g. `library/nginx`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, e.g. `docker.io/library/nginx`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as docker prints it: `nginx`, `user/app`, `localhost:5000/a`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_REGISTRY {
            match self.path.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference as docker prints it: `nginx:latest`.
    pub fn familiar(&self) -> String {
        self.format_with(self.familiar_name())
    }

    fn format_with(&self, name: String) -> String {
        let mut out = name;
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
        out
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    /// Parse, normalize, and add `latest` when no tag or digest is given.
    fn from_str(s: &str) -> Result<ImageRef, ReferenceError> {
        ImageRef::parse(s).map(ImageRef::with_default_tag)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format_with(self.name()))
    }
}

/// Splits `name[:tag]`: a `:` starts a tag only if no `/` follows it
/// (`localhost:5000/app` has a port, not a tag).
fn split_tag(s: &str) -> (&str, Option<&str>) {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_REGISTRY {
        DEFAULT_REGISTRY.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_REGISTRY && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    (domain, path)
}

fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_TAG_LEN
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ReferenceError::BadTag(tag.to_string()))
    }
}

fn validate_domain(domain: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::BadDomain(domain.to_string());
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad());
        }
        match after {
            "" => (None, None),
            _ => (None, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    Ok(())
}

/// The distribution spec's repository name: path components of
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, at most 255
/// characters (what a registry accepts in its URLs; none can climb out of
/// a directory).
pub fn valid_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(valid_component)
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_valid_references() {
        let d = format!("sha256:{HEX}");
        let cases: Vec<(String, String, String)> = vec![
            // input, normalized, familiar
            (
                "nginx".into(),
                "docker.io/library/nginx:latest".into(),
                "nginx:latest".into(),
            ),
            (
                "nginx:1.25".into(),
                "docker.io/library/nginx:1.25".into(),
                "nginx:1.25".into(),
            ),
            (
                "user/app:1.0".into(),
                "docker.io/user/app:1.0".into(),
                "user/app:1.0".into(),
            ),
            (
                "library/ubuntu".into(),
                "docker.io/library/ubuntu:latest".into(),
                "ubuntu:latest".into(),
            ),
            (
                "docker.io/ubuntu".into(),
                "docker.io/library/ubuntu:latest".into(),
                "ubuntu:latest".into(),
            ),
            (
                "index.docker.io/ubuntu".into(),
                "docker.io/library/ubuntu:latest".into(),
                "ubuntu:latest".into(),
            ),
            (
                "docker.io/library/a/b".into(),
                "docker.io/library/a/b:latest".into(),
                "library/a/b:latest".into(),
            ),
            (
                "localhost/app".into(),
                "localhost/app:latest".into(),
                "localhost/app:latest".into(),
            ),
            (
                "localhost:5000/a/b:tag".into(),
                "localhost:5000/a/b:tag".into(),
                "localhost:5000/a/b:tag".into(),
            ),
            (
                "localhost:5000".into(),
                "docker.io/library/localhost:5000".into(),
                "localhost:5000".into(),
            ),
            (
                "registry.example.com/team/app".into(),
                "registry.example.com/team/app:latest".into(),
                "registry.example.com/team/app:latest".into(),
            ),
            (
                "quay.io/a/b/c/d:v1.2.3-rc_1".into(),
                "quay.io/a/b/c/d:v1.2.3-rc_1".into(),
                "quay.io/a/b/c/d:v1.2.3-rc_1".into(),
            ),
            (
                "127.0.0.1:5000/x".into(),
                "127.0.0.1:5000/x:latest".into(),
                "127.0.0.1:5000/x:latest".into(),
            ),
            (
                "[::1]:5000/x:t".into(),
                "[::1]:5000/x:t".into(),
                "[::1]:5000/x:t".into(),
            ),
            (
                "[fe80::1]/x".into(),
                "[fe80::1]/x:latest".into(),
                "[fe80::1]/x:latest".into(),
            ),
            (
                "Registry.Example.com/x".into(),
                "Registry.Example.com/x:latest".into(),
                "Registry.Example.com/x:latest".into(),
            ),
            (
                "UpperHost/x".into(),
                "UpperHost/x:latest".into(),
                "UpperHost/x:latest".into(),
            ),
            (
                "ab-c_d__e---f/g.h".into(),
                "docker.io/ab-c_d__e---f/g.h:latest".into(),
                "ab-c_d__e---f/g.h:latest".into(),
            ),
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
                format!("busybox@{d}"),
            ),
            (
                format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
                format!("busybox:1@{d}"),
            ),
            (
                format!("localhost:5000/a@{d}"),
                format!("localhost:5000/a@{d}"),
                format!("localhost:5000/a@{d}"),
            ),
            (
                "x:_under".into(),
                "docker.io/library/x:_under".into(),
                "x:_under".into(),
            ),
            (
                format!("x:{}", "t".repeat(128)),
                format!("docker.io/library/x:{}", "t".repeat(128)),
                format!("x:{}", "t".repeat(128)),
            ),
            (
                "0".into(),
                "docker.io/library/0:latest".into(),
                "0:latest".into(),
            ),
        ];
        for (input, normalized, familiar) in cases {
            let r: ImageRef = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), normalized, "normalized form of {input}");
            assert_eq!(r.familiar(), familiar, "familiar form of {input}");
            // Normalizing is idempotent.
            let again: ImageRef = normalized.parse().unwrap();
            assert_eq!(again, r, "re-parse of {normalized}");
        }
    }

    #[test]
    fn rejects_invalid_references_naming_the_part() {
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty"),
            ("Nginx".into(), "must be lowercase"),
            ("user/App".into(), "must be lowercase"),
            ("localhost:5000/App".into(), "must be lowercase"),
            (HEX.into(), "64-byte hexadecimal"),
            (format!("x:{}", "t".repeat(129)), "tag"),
            ("x:-bad".into(), "tag"),
            ("x:.bad".into(), "tag"),
            ("x:a$b".into(), "tag"),
            ("x:".into(), "tag"),
            ("x@sha256:abc".into(), "sha256 needs 64"),
            ("x@sha256:".into(), "sha256 needs 64"),
            (
                format!("x@sha256:{}", HEX.to_uppercase()),
                "sha256 needs 64",
            ),
            (format!("x@md5:{HEX}"), "unsupported algorithm"),
            ("x@".into(), "expected ALGORITHM:HEX"),
            ("-x".into(), "component"),
            ("x-".into(), "component"),
            ("a..b".into(), "component"),
            ("a___b".into(), "component"),
            ("a/-b".into(), "component"),
            ("a//b".into(), "component"),
            ("a/".into(), "component"),
            ("x y".into(), "component"),
            ("example.com/".into(), "component"),
            ("-bad.com/x".into(), "registry host"),
            ("under_score.com/x".into(), "registry host"),
            ("bad-.com/x".into(), "registry host"),
            ("host:port/x".into(), "registry host"),
            ("host:/x".into(), "registry host"),
            ("[::1/x".into(), "registry host"),
            ("[zz::1]/x".into(), "registry host"),
            (format!("example.com/{}", "a".repeat(250)), "255"),
        ];
        for (input, expected) in cases {
            match ImageRef::parse(&input) {
                Ok(r) => panic!("{input:?} should be rejected, got {r}"),
                Err(e) => assert!(
                    e.to_string().contains(expected),
                    "{input:?}: error {e:?} should mention {expected:?}"
                ),
            }
        }
    }

    #[test]
    fn default_tag_only_without_digest() {
        assert_eq!(ImageRef::parse("busybox").unwrap().tag(), None);
        let r: ImageRef = format!("busybox@sha256:{HEX}").parse().unwrap();
        assert_eq!(r.tag(), None);
        assert!(r.digest().is_some());
    }
}
