//! One package found in an image, in syft's vocabulary: its type names
//! (`deb`, `python`, `go-module`, …) are syft's, so an SBOM from kiln and
//! one from syft can be compared line by line, and the purl is written by
//! [`crate::purl`] as syft writes it.

use serde::Serialize;

/// A package's ecosystem, named as syft names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PkgType {
    #[serde(rename = "deb")]
    Deb,
    #[serde(rename = "apk")]
    Apk,
    #[serde(rename = "rpm")]
    Rpm,
    #[serde(rename = "python")]
    Python,
    #[serde(rename = "npm")]
    Npm,
    #[serde(rename = "go-module")]
    GoModule,
    #[serde(rename = "rust-crate")]
    RustCrate,
}

impl PkgType {
    /// syft's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            PkgType::Deb => "deb",
            PkgType::Apk => "apk",
            PkgType::Rpm => "rpm",
            PkgType::Python => "python",
            PkgType::Npm => "npm",
            PkgType::GoModule => "go-module",
            PkgType::RustCrate => "rust-crate",
        }
    }
}

/// A package as a cataloger reads it, before the distro and the layer are
/// known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub ptype: PkgType,
    pub name: String,
    pub version: String,
    /// The architecture (`amd64`, `x86_64`) of an OS package.
    pub arch: Option<String>,
    /// The source package of an OS package (dpkg `Source`, apk origin,
    /// rpm source rpm) and its version when it differs.
    pub source: Option<String>,
    pub source_version: Option<String>,
    /// The rpm epoch.
    pub epoch: Option<String>,
    pub licenses: Vec<String>,
}

impl Found {
    pub fn new(ptype: PkgType, name: impl Into<String>, version: impl Into<String>) -> Found {
        Found {
            ptype,
            name: name.into(),
            version: version.into(),
            arch: None,
            source: None,
            source_version: None,
            epoch: None,
            licenses: Vec::new(),
        }
    }
}

/// A package of the image: what was found, where, and which layer and
/// Dockerfile step installed it.
#[derive(Debug, Clone, Serialize)]
pub struct Package {
    #[serde(rename = "type")]
    pub ptype: PkgType,
    pub name: String,
    pub version: String,
    pub purl: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// The file it was read from (package database, metadata file or
    /// binary), absolute.
    pub path: String,
    /// The layer that installed it (0 = bottom).
    pub layer: usize,
    /// That layer's digest, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<String>,
    /// That layer's step (the history's `created_by`).
    pub step: String,
}
