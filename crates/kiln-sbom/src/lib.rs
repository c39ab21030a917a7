//! Software bills of materials for images (`kiln sbom`, `kiln build
//! --sbom`): what syft finds, read from layer streams, plus the layer and
//! Dockerfile step that installed each package.
//!
//! [`catalog`] takes an image found by kiln-analyze's [`ImageSource`]
//! (the store, an archive, a layout or a registry) and reads its layers as
//! tar streams ([`layers`]): package databases and metadata files go to
//! the catalogers ([`catalog`](mod@catalog): dpkg, apk, rpm, Python, npm, Go and
//! cargo-auditable binaries), whose packages get syft's types and purls
//! ([`package`], [`purl`], with the distro of [`distro`]). [`format`]
//! writes the result as SPDX 2.3 JSON, CycloneDX 1.6 JSON, a table, or
//! kiln's JSON; [`attest`] wraps an SPDX document as the in-toto
//! statement BuildKit attaches to an image.

pub mod attest;
pub mod catalog;
pub mod distro;
mod error;
pub mod format;
pub mod layers;
pub mod package;
pub mod purl;

use kiln_analyze::source::ImageSource;
use serde::Serialize;

pub use distro::Distro;
pub use error::{Result, SbomError};
pub use package::{Package, PkgType};

/// One layer of the image, bottom first.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(rename = "diffID", skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<String>,
    /// The Dockerfile step (history `created_by`, empty_layer entries
    /// skipped).
    pub step: String,
}

/// The image an SBOM describes.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// The name the user gave.
    pub name: String,
    /// The image ID (config digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    pub layers: Vec<LayerInfo>,
}

/// An image's bill of materials.
#[derive(Debug, Clone, Serialize)]
pub struct Sbom {
    pub image: ImageInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    pub packages: Vec<Package>,
}

/// Catalogs `image` reading up to `jobs` layers at once.
pub fn catalog(image: &ImageSource, jobs: usize) -> Result<Sbom> {
    let n = image.layers.len();
    let steps = kiln_analyze::analysis::steps(image, n);
    let diff_ids = image.config.diff_ids();
    let layers: Vec<LayerInfo> = (0..n)
        .map(|i| LayerInfo {
            digest: image.layers[i].digest.as_ref().map(ToString::to_string),
            diff_id: diff_ids.get(i).map(|d| d.0.to_string()),
            step: steps[i].clone(),
        })
        .collect();
    let deltas = layers::read_layers(image, jobs)?;
    let mut state = layers::State::default();
    for (i, d) in deltas.into_iter().enumerate() {
        state.apply(i, d);
    }
    Ok(Sbom {
        image: ImageInfo {
            name: image.name.clone(),
            id: image.config_digest.as_ref().map(ToString::to_string),
            architecture: image.config.architecture.clone(),
            os: image.config.os.clone(),
            layers: layers.clone(),
        },
        distro: state.distro(),
        packages: state.packages(&layers),
    })
}
