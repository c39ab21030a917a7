//! Writing an [`Sbom`](crate::Sbom): SPDX 2.3 JSON, CycloneDX 1.6 JSON
//! (both with the image as the root package/component and each package's
//! layer and step as an annotation/property), a table, and kiln's JSON
//! (the model as it is).

pub mod cyclonedx;
pub mod spdx;
pub mod table;

use sha2::Digest as _;

use crate::Sbom;

/// An output format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    SpdxJson,
    CyclonedxJson,
    Table,
    Json,
}

impl Format {
    /// syft's names: `spdx-json`, `cyclonedx-json`, `table`, `json`.
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "spdx-json" => Format::SpdxJson,
            "cyclonedx-json" => Format::CyclonedxJson,
            "table" => Format::Table,
            "json" => Format::Json,
            _ => return None,
        })
    }
}

/// When and by what a document is made.
#[derive(Debug, Clone)]
pub struct Meta {
    /// RFC 3339 UTC, seconds.
    pub created: String,
    /// `kiln` version.
    pub tool_version: String,
}

impl Meta {
    /// Now, by kiln `version`.
    pub fn now(version: &str) -> Meta {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        Meta {
            created: now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            tool_version: version.to_string(),
        }
    }
}

/// Writes `sbom` in `format`.
pub fn render(sbom: &Sbom, format: Format, meta: &Meta) -> String {
    match format {
        Format::SpdxJson => pretty(&spdx::document(sbom, meta)),
        Format::CyclonedxJson => pretty(&cyclonedx::document(sbom, meta)),
        Format::Table => table::render(sbom),
        Format::Json => pretty(&serde_json::to_value(sbom).unwrap_or_default()),
    }
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// A UUID (version 4 layout) derived from `seed`: documents of the same
/// image made at the same second get the same one, others differ.
pub(crate) fn uuid(seed: &str) -> String {
    let h = sha2::Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// A short stable id of a package (type, name, version, path).
pub(crate) fn package_id(p: &crate::Package) -> String {
    let h = sha2::Sha256::digest(
        format!(
            "{}\0{}\0{}\0{}",
            p.ptype.as_str(),
            p.name,
            p.version,
            p.path
        )
        .as_bytes(),
    );
    hex::encode(&h[..8])
}

/// The layer-and-step text of a package: `layer 2 (sha256:…): RUN …`.
pub(crate) fn layer_note(p: &crate::Package) -> String {
    match &p.layer_digest {
        Some(d) => format!("installed by layer {} ({d}): {}", p.layer, p.step),
        None => format!("installed by layer {}: {}", p.layer, p.step),
    }
}
