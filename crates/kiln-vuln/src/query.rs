//! What is asked of the database: one installed package. Any cataloguer
//! fills these in (an SBOM reader here; kiln's own cataloguers later), so
//! matching depends on no SBOM format. Also the purl reader: purls carry
//! the ecosystem, the distro release and (`upstream=`) the source package
//! the way syft and kiln write them.

use std::collections::BTreeMap;

/// One installed package to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The OSV ecosystem: `Debian:12`, `Alpine:v3.19`, `PyPI`, `npm`,
    /// `Go`, `crates.io`.
    pub ecosystem: String,
    /// The (binary) package name as installed.
    pub name: String,
    /// The installed version.
    pub version: String,
    /// The source package, for distro packages (OSV's Debian and Alpine
    /// records name source packages).
    pub source_name: Option<String>,
    /// The source package's version, when it differs from `version`.
    pub source_version: Option<String>,
    /// The package URL, shown in reports.
    pub purl: Option<String>,
}

impl Query {
    /// The name and version OSV records speak of: the source package for
    /// a distro, the package itself elsewhere.
    pub fn lookup(&self) -> (&str, &str) {
        if is_distro(&self.ecosystem) {
            let name = self.source_name.as_deref().unwrap_or(&self.name);
            let version = self.source_version.as_deref().unwrap_or(&self.version);
            (name, version)
        } else {
            (&self.name, &self.version)
        }
    }
}

/// Whether an ecosystem is a distro's (records by source package).
pub fn is_distro(ecosystem: &str) -> bool {
    matches!(
        ecosystem.split(':').next(),
        Some("Debian" | "Ubuntu" | "Alpine")
    )
}

/// A name as the ecosystem compares names: PyPI's PEP 503 normal form
/// (lower case, runs of `-_.` as one `-`); others as they are.
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    if ecosystem != "PyPI" {
        return name.to_string();
    }
    kiln_core::pep503::normalize(name)
}

/// A parsed package URL (`pkg:type/namespace/name@version?qualifiers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// `deb`, `apk`, `pypi`, `npm`, `golang`, `cargo`, …
    pub kind: String,
    /// The namespace (`debian`, `@babel`, `github.com/foo`), decoded.
    pub namespace: Option<String>,
    /// The name, decoded.
    pub name: String,
    /// The version, decoded.
    pub version: Option<String>,
    /// The qualifiers, decoded.
    pub qualifiers: BTreeMap<String, String>,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Purl {
    /// Parses a purl; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Purl> {
        let rest = s.trim().strip_prefix("pkg:")?;
        let rest = rest.split_once('#').map_or(rest, |(r, _subpath)| r);
        let (rest, quals) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (path, version) = match rest.rsplit_once('@') {
            // An `@` inside the path is a scoped npm namespace, encoded as
            // %40 by spec; a bare one before the last `/` is not a version.
            Some((p, v)) if !v.contains('/') => (p, Some(decode(v))),
            _ => (rest, None),
        };
        let (kind, path) = path.split_once('/')?;
        let path = path.trim_matches('/');
        let (namespace, name) = match path.rsplit_once('/') {
            Some((ns, n)) => (
                Some(ns.split('/').map(decode).collect::<Vec<_>>().join("/")),
                n,
            ),
            None => (None, path),
        };
        if name.is_empty() {
            return None;
        }
        let qualifiers = quals
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_ascii_lowercase(), decode(v)))
            .collect();
        Some(Purl {
            kind: kind.to_ascii_lowercase(),
            namespace,
            name: decode(name),
            version,
            qualifiers,
        })
    }

    /// The query for this purl. `distro` is the SBOM's operating system
    /// (`debian-12`), used when the purl has no `distro=` qualifier.
    /// `None` for a purl kiln does not match (no version, or an
    /// ecosystem without OSV data here).
    pub fn to_query(&self, purl: &str, distro: Option<&str>) -> Option<Query> {
        let version = self.version.clone()?;
        let distro = self.qualifiers.get("distro").map(String::as_str).or(distro);
        let (ecosystem, name) = match self.kind.as_str() {
            "deb" => {
                let vendor = self.namespace.as_deref().unwrap_or("debian");
                (distro_ecosystem(vendor, distro)?, self.name.clone())
            }
            "apk" => {
                let vendor = self.namespace.as_deref().unwrap_or("alpine");
                (distro_ecosystem(vendor, distro)?, self.name.clone())
            }
            "pypi" => ("PyPI".to_string(), self.name.clone()),
            "npm" => ("npm".to_string(), self.full_name()),
            "golang" => ("Go".to_string(), self.full_name()),
            "cargo" => ("crates.io".to_string(), self.name.clone()),
            _ => return None,
        };
        // upstream=NAME or upstream=NAME@VERSION (syft's form when the
        // source version differs from the binary's).
        let (source_name, source_version) = match self.qualifiers.get("upstream") {
            Some(u) => match u.split_once('@') {
                Some((n, v)) => (Some(n.to_string()), Some(v.to_string())),
                None => (Some(u.trim().to_string()), None),
            },
            None => (None, None),
        };
        // syft writes `upstream=src (1.2-3)` in some versions' CycloneDX.
        let (source_name, source_version) = match source_name.as_deref().map(|s| s.split_once(' '))
        {
            Some(Some((n, v))) if v.starts_with('(') => (
                Some(n.to_string()),
                Some(v.trim_matches(['(', ')', ' ']).to_string()),
            ),
            _ => (source_name, source_version),
        };
        Some(Query {
            ecosystem,
            name,
            version,
            source_name,
            source_version,
            purl: Some(purl.to_string()),
        })
    }

    fn full_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// `Debian:12` from (`debian`, `debian-12`); `Alpine:v3.19` from
/// (`alpine`, `alpine-3.19.1`); `Ubuntu:22.04` from (`ubuntu`,
/// `ubuntu-22.04`). `None` without a release: a distro record cannot be
/// matched without one.
fn distro_ecosystem(vendor: &str, distro: Option<&str>) -> Option<String> {
    let distro = distro?;
    // `debian-12`, `debian:12` or a bare `12`.
    let release = distro
        .rsplit_once(['-', ':'])
        .map_or(distro, |(_, r)| r)
        .trim_start_matches('v');
    match vendor.to_ascii_lowercase().as_str() {
        "debian" => {
            let major = release.split('.').next()?;
            Some(format!("Debian:{major}"))
        }
        "alpine" => {
            let mut it = release.split('.');
            let (a, b) = (it.next()?, it.next()?);
            Some(format!("Alpine:v{a}.{b}"))
        }
        "ubuntu" => Some(format!("Ubuntu:{release}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(purl: &str) -> Query {
        Purl::parse(purl)
            .and_then(|p| p.to_query(purl, None))
            .unwrap_or_else(|| panic!("{purl}"))
    }

    #[test]
    fn syft_purls() {
        let d =
            q("pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc");
        assert_eq!(d.ecosystem, "Debian:12");
        assert_eq!(d.version, "2.36-9+deb12u4");
        assert_eq!(d.lookup(), ("glibc", "2.36-9+deb12u4"));
        let d = q("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?distro=debian-12.4&upstream=openssl%403.0.11-1~deb12u1");
        assert_eq!(d.lookup(), ("openssl", "3.0.11-1~deb12u1"));
        let a = q(
            "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&upstream=openssl&distro=alpine-3.19.1",
        );
        assert_eq!(a.ecosystem, "Alpine:v3.19");
        assert_eq!(a.lookup(), ("openssl", "3.1.4-r5"));
        let n = q("pkg:npm/%40babel/core@7.0.0");
        assert_eq!(
            (n.ecosystem.as_str(), n.name.as_str()),
            ("npm", "@babel/core")
        );
        let g = q("pkg:golang/golang.org/x/net@v0.0.0-20220127200216-cd36cc0744dd");
        assert_eq!(
            (g.ecosystem.as_str(), g.name.as_str()),
            ("Go", "golang.org/x/net")
        );
        let p = q("pkg:pypi/Requests@2.28.1");
        assert_eq!(normalize_name(&p.ecosystem, &p.name), "requests");
        assert_eq!(
            normalize_name("PyPI", "Zope.Interface__x"),
            "zope-interface-x"
        );
        assert_eq!(q("pkg:cargo/serde@1.0.0").ecosystem, "crates.io");
        // A distro package without its release cannot be matched.
        let no = Purl::parse("pkg:deb/debian/bash@5.2").and_then(|p| p.to_query("", None));
        assert!(no.is_none());
        let from_os = Purl::parse("pkg:deb/debian/bash@5.2")
            .and_then(|p| p.to_query("", Some("debian-12")))
            .map(|q| q.ecosystem);
        assert_eq!(from_os.as_deref(), Some("Debian:12"));
    }
}
