//! kiln's local content store.
//!
//! The store root **is an OCI image layout** (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`), so skopeo, umoci and any other OCI tool read it
//! directly. Around the layout kiln keeps:
//!
//! - `ingest/`: blobs being written ([`BlobWriter`]); renamed into `blobs/`
//!   only after their digest and size are verified and fsync'd;
//! - `locks/`: the index lock and the GC lease (see [`lock`]);
//! - `metadata/layers/`: per-layer facts that are costly to recompute
//!   (diff_id, uncompressed size);
//! - `metadata/sources/`: registry repositories known to hold each blob
//!   (for cross-repository mounts on push);
//! - `metadata/compressed/`, `metadata/pushed/`: the compressed digest of
//!   each layer pushed compressed, and the manifest digest each repository
//!   holds for an image (see [`pushed`]).
//!
//! Main types: [`Store`] (open a root, read/update the index, list it as a
//! [`Catalog`] of images and artifacts in one pass, resolve images,
//! remove and prune them with docker's policies, disk usage, GC and check), [`BlobStore`] (content by digest), [`Index`] (tags ↔
//! manifests; its entries are the model's descriptors, [`IndexEntryExt`]
//! reads kiln's annotations), [`Image`] (a manifest with its config, in the
//! model of `kiln_core::image`), and [`Layout`]: an OCI layout that is not a
//! kiln store (read-only, or written with the layout's own files only).
//!
//! The store and `Layout` implement the content traits of
//! `kiln_core::content` (`Provider`, `Ingester` with named, resumable
//! ingests, `Tags`); `tests/content.rs` is the suite every implementation
//! runs.
//!
//! Crash safety: blobs appear atomically, index.json is replaced atomically
//! after every blob it names is durable, and deletions happen only under the
//! exclusive GC lock. A process killed at any point leaves at worst stale
//! ingest files and unreferenced blobs, which GC removes.

mod artifacts;
mod blobs;
mod catalog;
mod content;
mod error;
mod gc;
mod history;
mod image;
mod index;
mod layers;
pub mod lock;
mod manifest_list;
mod new_image;
mod publish;
mod pushed;
mod remove;
mod sources;
mod usage;

use std::fs;
use std::path::{Path, PathBuf};

pub use artifacts::{is_artifact, ArtifactRecord};
pub use blobs::{BlobStore, BlobWriter, PendingBlob};
pub use catalog::Catalog;
pub use content::Layout;
pub use error::{Result, StoreError};
pub use gc::{CheckReport, GcReport};
pub use history::HistoryStep;
pub use image::{Image, ImageRecord};
pub use index::{Index, IndexEntry, IndexEntryExt, NAMED, REF_NAME, REPO_DIGEST};
pub use layers::LayerInfo;
pub use lock::LockGuard;
pub use manifest_list::{list_media_type, platform_of};
pub use pushed::CompressedLayer;
pub use remove::{ImagesInUse, Pruned, Removal};
pub use usage::{DiskUsage, ImageUsage};

use error::IoContext;
use lock::Mode;

pub(crate) const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// One store root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    blobs: BlobStore,
}

impl Store {
    /// Opens the store at `root`, creating an empty layout if the directory
    /// is missing or empty.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        fs::create_dir_all(&root).ctx("create store root", &root)?;
        let store = Store {
            blobs: BlobStore::new(&root),
            root,
        };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<()> {
        let layout = self.root.join("oci-layout");
        let index = self.index_path();
        if layout.exists() && index.exists() {
            self.blobs.create_dirs()?;
            return Ok(());
        }
        let _lock = lock::lock(&self.root, "index.lock", Mode::Exclusive)?;
        self.blobs.create_dirs()?;
        if !layout.exists() {
            fs::write(&layout, OCI_LAYOUT).ctx("write", &layout)?;
        }
        if !index.exists() {
            Index::default().save(&index)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// A snapshot of the index. Readers need no lock: the file is replaced
    /// atomically.
    pub fn index(&self) -> Result<Index> {
        Index::load(&self.index_path())
    }

    /// Read-modify-write of the index under the index lock. The change is
    /// written only if `f` succeeds.
    pub fn update_index<R>(&self, f: impl FnOnce(&mut Index) -> Result<R>) -> Result<R> {
        // Nothing reaches the index before the blobs it may name are
        // durable and in place (see `publish`).
        self.blobs.wait_published()?;
        let _lock = lock::lock(&self.root, "index.lock", Mode::Exclusive)?;
        let mut index = self.index()?;
        let out = f(&mut index)?;
        index.save(&self.index_path())?;
        Ok(out)
    }

    /// A lease that keeps GC from deleting blobs while the holder writes
    /// blobs and then names them in the index. Hold it from the first blob
    /// written to the last index update.
    pub fn lease(&self) -> Result<LockGuard> {
        lock::lock(&self.root, "gc.lock", Mode::Shared)
    }
}
