//! Vulnerability matching for `kiln scan`: packages (from an SBOM, or from
//! kiln's own cataloguers once they are wired in) against an OSV database
//! kept offline in osv-scanner's layout (`DIR/<Ecosystem>/all.zip`).
//!
//! Why its own crate: matching needs each ecosystem's version order
//! (`version`), the OSV evaluation rules (`osv`), CVSS scoring (`cvss`)
//! and three report formats (`output`), none of which the image crates
//! need. Its input is a small [`Query`] per package, so it depends on no
//! SBOM generator: `sbom` reads CycloneDX and SPDX documents as syft and
//! kiln write them, and any cataloguer can hand over queries directly.

pub mod cvss;
pub mod db;
mod error;
pub mod osv;
pub mod output;
pub mod query;
pub mod sbom;
pub mod scan;
pub mod update;
pub mod version;

pub use db::Database;
pub use error::Error;
pub use query::Query;
pub use scan::{scan, Finding, Level, Severity};
