//! Images as the user sees them: a manifest, its config, and the names that
//! point at it; and resolution of what a user typed (a name, an ID or ID
//! prefix, `name@digest`) to one of them.

use kiln_core::image::{ImageConfig, Index as ImageIndex, Manifest};
use kiln_core::{media_types, Digest, ImageRef, Platform};

use crate::error::{Result, StoreError};
use crate::index::{IndexEntry, IndexEntryExt};
use crate::Store;

/// An image in the store: one manifest and everything the index says of it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// The index entry of the manifest (without a name).
    pub entry: IndexEntry,
    /// Every tag pointing at it (empty for a dangling image).
    pub names: Vec<ImageRef>,
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
    pub fn layer_digests(&self) -> Result<Vec<Digest>> {
        Ok(self
            .manifest
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .collect())
    }
}

impl Store {
    /// Every image in the index, one record per manifest. Artifacts
    /// (signatures, SBOMs: see [`Store::artifacts`]) are not images.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let index = self.index()?;
        Ok(index
            .roots()
            .into_iter()
            .filter(|e| self.artifact_manifest(e).is_none())
            .map(|e| {
                let mut entry = e.clone();
                entry.annotations.remove(crate::REF_NAME);
                ImageRecord {
                    names: index.names_of(&e.digest),
                    entry,
                }
            })
            .collect())
    }

    /// Loads the image an index entry names. An entry that is an index
    /// (multi-platform) resolves to the host platform's manifest.
    pub fn load_image(&self, entry: &IndexEntry) -> Result<Image> {
        let (digest, media_type) = if media_types::is_index(&entry.media_type) {
            self.platform_manifest(&entry.digest, &Platform::host())?
        } else {
            (entry.digest.clone(), entry.media_type.clone())
        };
        let manifest = self.read_manifest(&digest)?;
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

    /// Resolves what a user typed to an image, docker's way: first as a
    /// name (`busybox`, `busybox:1.36`, `name@sha256:…`), then as an image ID
    /// (`sha256:<hex>`, or a unique prefix of the hex).
    pub fn resolve(&self, input: &str) -> Result<(ImageRecord, Image)> {
        let records = self.images()?;
        if let Ok(name) = input.parse::<ImageRef>() {
            if let Some(digest) = name.digest() {
                // name@digest: the manifest digest, or (docker) the image ID.
                for r in &records {
                    if &r.entry.digest == digest || &r.entry.repo_digest() == digest {
                        let image = self.load_image(&r.entry)?;
                        return Ok((r.clone(), image));
                    }
                }
            } else if let Some(r) = records.iter().find(|r| r.names.contains(&name)) {
                let image = self.load_image(&r.entry)?;
                return Ok((r.clone(), image));
            }
        }
        let prefix = input.strip_prefix("sha256:").unwrap_or(input);
        let is_hex = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex {
            let mut found: Option<(ImageRecord, Image)> = None;
            for r in records {
                let image = self.load_image(&r.entry)?;
                if !image.config_digest.hex().starts_with(prefix) {
                    continue;
                }
                match &found {
                    // Several manifests with one config are one image to docker.
                    Some((_, f)) if f.config_digest == image.config_digest => {}
                    Some(_) => return Err(StoreError::AmbiguousId(input.to_string())),
                    None => found = Some((r, image)),
                }
            }
            if let Some(found) = found {
                return Ok(found);
            }
        }
        Err(StoreError::ImageNotFound(input.to_string()))
    }
}
