//! Packages from an SBOM document: CycloneDX 1.x JSON (`components[]`,
//! nested ones too) or SPDX 2.x JSON (`packages[].externalRefs[]` of type
//! `purl`), as syft and kiln write them. The purl says everything
//! matching needs; the document's operating-system entry (`debian` `12`)
//! stands in for a distro purl without a `distro=` qualifier.

use serde_json::Value;

use crate::query::{Purl, Query};
use crate::Error;

/// What an SBOM yields.
#[derive(Debug, Default)]
pub struct Packages {
    /// The packages to look up.
    pub queries: Vec<Query>,
    /// Purls of packages that cannot be matched (no version, an ecosystem
    /// without OSV data here, a distro package without its release).
    pub skipped: Vec<String>,
}

/// Reads a CycloneDX or SPDX JSON document; `what` names it in errors.
pub fn read(doc: &[u8], what: &str) -> Result<Packages, Error> {
    let v: Value =
        serde_json::from_slice(doc).map_err(|e| Error::invalid(what, format!("not JSON: {e}")))?;
    if v.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        return Ok(cyclonedx(&v));
    }
    if v.get("spdxVersion").and_then(Value::as_str).is_some() {
        return Ok(spdx(&v));
    }
    Err(Error::invalid(
        what,
        "neither CycloneDX JSON (bomFormat) nor SPDX JSON (spdxVersion); give an SBOM as `kiln sbom -o cyclonedx-json` or `syft -o spdx-json` write them",
    ))
}

fn collect(purls: Vec<String>, distro: Option<String>) -> Packages {
    let mut out = Packages::default();
    for p in purls {
        match Purl::parse(&p).and_then(|u| u.to_query(&p, distro.as_deref())) {
            Some(q) => {
                if !out.queries.contains(&q) {
                    out.queries.push(q);
                }
            }
            None => out.skipped.push(p),
        }
    }
    out
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn cyclonedx(v: &Value) -> Packages {
    let mut purls = Vec::new();
    let mut distro = None;
    let mut stack: Vec<&Value> = v
        .get("components")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    while let Some(c) = stack.pop() {
        if str_of(c, "type") == Some("operating-system") {
            if let (Some(n), Some(ver)) = (str_of(c, "name"), str_of(c, "version")) {
                distro = Some(format!("{n}-{ver}"));
            }
        }
        if let Some(p) = str_of(c, "purl") {
            purls.push(p.to_string());
        }
        if let Some(kids) = c.get("components").and_then(Value::as_array) {
            stack.extend(kids);
        }
    }
    purls.reverse();
    collect(purls, distro)
}

fn spdx(v: &Value) -> Packages {
    let mut purls = Vec::new();
    let mut distro = None;
    for p in v
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if str_of(p, "primaryPackagePurpose") == Some("OPERATING-SYSTEM") {
            if let (Some(n), Some(ver)) = (str_of(p, "name"), str_of(p, "versionInfo")) {
                distro = Some(format!("{n}-{ver}"));
            }
        }
        for r in p
            .get("externalRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if str_of(r, "referenceType") == Some("purl") {
                if let Some(l) = str_of(r, "referenceLocator") {
                    purls.push(l.to_string());
                }
            }
        }
    }
    collect(purls, distro)
}
