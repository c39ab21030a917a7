//! Writing a new image (config + manifest) into the store, for everything
//! that creates images: import, load, build, commit.

use kiln_core::{media_types, Digest, ImageRef};
use serde::Serialize;

use crate::error::Result;
use crate::index::IndexEntry;
use crate::Store;

/// A layer blob already in the store, as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LayerDescriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: LayerDescriptor,
    layers: &'a [LayerDescriptor],
}

impl Store {
    /// Stores `config` (bytes kept exactly: the image ID is their digest) and
    /// an OCI manifest naming it and `layers`; returns the manifest's index
    /// entry. The layer blobs must already be in the store. Nothing is tagged.
    pub fn write_image(&self, config: &[u8], layers: &[LayerDescriptor]) -> Result<IndexEntry> {
        let config_digest = self.blobs().put(config, None)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: media_types::OCI_MANIFEST,
            config: LayerDescriptor {
                media_type: media_types::OCI_CONFIG.to_string(),
                digest: config_digest,
                size: config.len() as u64,
            },
            layers,
        };
        // Field order is fixed by the struct: the same image always gets the
        // same manifest digest.
        let bytes = serde_json::to_vec(&manifest).map_err(std::io::Error::other);
        let bytes = crate::error::IoContext::ctx(bytes, "encode manifest for", self.root())?;
        let digest = self.blobs().put(&bytes, None)?;
        Ok(IndexEntry::new(
            media_types::OCI_MANIFEST,
            digest,
            bytes.len() as u64,
        ))
    }

    /// Names `entry` with every name in `names` (moving tags that pointed
    /// elsewhere, docker-style), or keeps it untagged when `names` is empty.
    /// One atomic index update.
    pub fn name_image(&self, entry: &IndexEntry, names: &[ImageRef]) -> Result<()> {
        self.update_index(|index| {
            if names.is_empty() {
                index.add_untagged(entry);
            }
            for name in names {
                index.set_tag(name, entry);
            }
            Ok(())
        })
    }
}
