//! Writing a new image (config + manifest) into the store, for everything
//! that creates images: import, load, build, commit.

use kiln_core::image::{Descriptor, Manifest};
use kiln_core::{media_types, ImageRef};

use crate::error::Result;
use crate::index::IndexEntry;
use crate::Store;

impl Store {
    /// Stores `config` (bytes kept exactly: the image ID is their digest) and
    /// an OCI manifest naming it and `layers`; returns the manifest's index
    /// entry. The layer blobs must already be in the store. Nothing is tagged.
    pub fn write_image(&self, config: &[u8], layers: &[Descriptor]) -> Result<IndexEntry> {
        // The layers may still be publishing (see `publish`).
        self.blobs().wait_published()?;
        let config_digest = self.blobs().put(config, None)?;
        let manifest = Manifest::oci(
            Descriptor::new(media_types::OCI_CONFIG, config_digest, config.len() as u64),
            layers.to_vec(),
        );
        // Field order is fixed by the model: the same image always gets the
        // same manifest digest.
        let bytes = manifest.to_bytes();
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
