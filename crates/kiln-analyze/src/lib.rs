//! Image layer analysis: where an image's bytes go and which of them are
//! wasted, with dive's numbers and more.
//!
//! An image is found by [`source`] (the kiln store, `docker-archive:`,
//! `oci-archive:`, `oci:`, or a registry stream), and its layers are read
//! as tar streams by [`entry`] (headers only; contents are skipped, by
//! seeking when the layer is a plain tar in a file). Each layer becomes a
//! [`tree::LayerTree`] shaped as dive shapes it, because dive's numbers
//! depend on that shape; [`efficiency`] then computes dive's score, wasted
//! bytes and inefficient files exactly, and [`waste`] replays the layers
//! with the layer format's rules to say what is wasted, why (overwritten,
//! deleted later, package caches) and which steps to change.
//! [`analysis`] ties these together; [`ci`] is dive's CI rules and
//! report, [`export`] dive's JSON export and kiln's own report, [`summary`]
//! the text kiln prints, and [`tui`] the interactive explorer (its view
//! model, [`tui::model`], has no terminal in it).

pub mod analysis;
pub mod ci;
pub mod efficiency;
pub mod entry;
mod error;
pub mod export;
pub mod humanize;
mod registry;
pub mod source;
pub mod summary;
pub mod tree;
pub mod tui;
pub mod waste;

pub use analysis::{analyze, Analysis, Layer};
pub use ci::{evaluate, CiConfig, CiOutcome};
pub use error::{AnalyzeError, Result};
pub use registry::open_registry;
pub use source::{open, ImageSource, Source};
