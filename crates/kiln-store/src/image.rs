//! Images as the user sees them: a manifest, its config, and the names that
//! point at it; and resolution of what a user typed (a name, an ID or ID
//! prefix, `name@digest`) to one of them.

use kiln_core::image::{ImageConfig, Index as ImageIndex, Manifest};
use kiln_core::{media_types, Digest, ImageRef, Platform};

use crate::error::{Result, StoreError};
use crate::index::IndexEntry;
use crate::Store;

/// An image in the store: one manifest and everything the index says of it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// The index entry of the manifest (without a name).
    pub entry: IndexEntry,
    /// Every tag pointing at it (empty for a dangling image).
    pub names: Vec<ImageRef>,
    /// Its manifest as the catalog read it (none for an index, or a
    /// manifest that could not be read): loading the image reuses it.
    pub(crate) manifest: Option<Manifest>,
}

/// A loaded image: manifest and config, parsed, with the raw config bytes
/// (the image ID is their digest, so they are never re-serialized) and the
/// model's lenient view of them (a config with fields of unexpected types
/// still loads).
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: Manifest,
    pub config_digest: Digest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfig,
}

impl Image {
    /// Docker's image ID: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// Layer blobs, bottom first.
    pub fn layer_digests(&self) -> Vec<Digest> {
        self.manifest
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .collect()
    }
}

impl Store {
    /// Loads the image an index entry names. An entry that is an index
    /// (multi-platform) resolves to the host platform's manifest.
    pub fn load_image(&self, entry: &IndexEntry) -> Result<Image> {
        self.load_image_for(entry, &Platform::host())
    }

    /// [`Store::load_image`] choosing `platform`'s manifest of an index (a
    /// single manifest is loaded whatever its platform).
    pub fn load_image_for(&self, entry: &IndexEntry, platform: &Platform) -> Result<Image> {
        let (digest, media_type) = if media_types::is_index(&entry.media_type) {
            self.platform_manifest(&entry.digest, platform)?
        } else {
            (entry.digest.clone(), entry.media_type.clone())
        };
        let manifest = self.read_manifest(&digest)?;
        self.with_config(digest, media_type, manifest)
    }

    /// Loads an image of a [`crate::Catalog`], without reading its
    /// manifest again when the catalog has it.
    pub fn load_record(&self, record: &ImageRecord) -> Result<Image> {
        match &record.manifest {
            Some(manifest) => self.with_config(
                record.entry.digest.clone(),
                record.entry.media_type.clone(),
                manifest.clone(),
            ),
            None => self.load_image(&record.entry),
        }
    }

    fn with_config(&self, digest: Digest, media_type: String, manifest: Manifest) -> Result<Image> {
        let config_digest = manifest.config.digest.clone();
        let config_bytes = self.blobs().read(&config_digest)?;
        let config = ImageConfig::from_slice(&config_bytes).map_err(|reason| {
            StoreError::CorruptMetadata {
                what: "image config",
                digest: config_digest.clone(),
                reason,
            }
        })?;
        Ok(Image {
            manifest_digest: digest,
            manifest_media_type: media_type,
            manifest,
            config_digest,
            config_bytes,
            config,
        })
    }

    pub fn read_manifest(&self, digest: &Digest) -> Result<Manifest> {
        let bytes = self.blobs().read(digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptMetadata {
            what: "manifest",
            digest: digest.clone(),
            reason: e.to_string(),
        })
    }

    pub fn read_index_blob(&self, digest: &Digest) -> Result<ImageIndex> {
        let bytes = self.blobs().read(digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptMetadata {
            what: "image index",
            digest: digest.clone(),
            reason: e.to_string(),
        })
    }

    fn platform_manifest(&self, index: &Digest, want: &Platform) -> Result<(Digest, String)> {
        let idx = self.read_index_blob(index)?;
        if let Some(m) = idx.select(want) {
            return Ok((m.digest.clone(), m.media_type.clone()));
        }
        Err(StoreError::ImageNotFound(format!(
            "{index} has no manifest for platform {want} (it has: {}); pull with --platform set to one of those",
            idx.platforms().join(", ")
        )))
    }
}
