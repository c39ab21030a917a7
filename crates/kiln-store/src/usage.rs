//! Disk usage (`system df`): how many bytes the store holds, how many are
//! shared between images (stored once), unique to one, or referenced by
//! nothing. Layers count uncompressed, as `images` shows them.

use std::collections::{BTreeSet, HashMap};

use kiln_core::{Digest, ImageRef};

use crate::error::Result;
use crate::Store;

/// One image's share of the store.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub names: Vec<ImageRef>,
    pub id: Digest,
    pub created: Option<String>,
    /// Its layers' content size (what `images` shows as SIZE).
    pub size: u64,
    /// Of `size`, the bytes of layers other images use too.
    pub shared: u64,
}

impl ImageUsage {
    pub fn unique(&self) -> u64 {
        self.size - self.shared
    }
}

#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Every blob in the store.
    pub total: u64,
    /// Blobs more than one image refers to.
    pub shared: u64,
    /// Blobs exactly one image refers to.
    pub unique: u64,
    /// Blobs no image refers to (GC removes them).
    pub unreferenced: u64,
}

impl Store {
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let sizes: HashMap<Digest, u64> = self
            .blobs()
            .walk()?
            .into_iter()
            .map(|(d, on_disk)| {
                // Layers as `images` measures them; other blobs as stored.
                let size = match self.layer_info(&d) {
                    Some(info) => self.layer_size_with(&d, Some(info)).unwrap_or(on_disk),
                    None => on_disk,
                };
                (d, size)
            })
            .collect();
        let size = |d: &Digest| sizes.get(d).copied().unwrap_or(0);
        // Per image: its layers, and every blob it holds on to.
        let catalog = self.catalog()?;
        let mut per_image = Vec::new();
        for record in catalog.images {
            let image = self.load_record(&record)?;
            let layers: BTreeSet<Digest> = image.layer_digests().into_iter().collect();
            let mut blobs = layers.clone();
            blobs.insert(image.config_digest.clone());
            blobs.insert(image.manifest_digest.clone());
            blobs.insert(record.entry.digest.clone());
            per_image.push((record.names, image, layers, blobs));
        }
        let mut users: HashMap<Digest, usize> = HashMap::new();
        for (_, _, _, blobs) in &per_image {
            for b in blobs {
                *users.entry(b.clone()).or_default() += 1;
            }
        }
        // Artifacts (signatures, SBOMs) are no image's, but GC keeps their
        // blobs: they count as referenced, shared when an image has them.
        for a in catalog.artifacts {
            let mut blobs = vec![a.entry.digest.clone(), a.manifest.config.digest.clone()];
            blobs.extend(a.manifest.layers.iter().map(|l| l.digest.clone()));
            for b in blobs {
                *users.entry(b).or_default() += 1;
            }
        }
        let referenced: u64 = users.keys().map(size).sum();
        let shared: u64 = users
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(d, _)| size(d))
            .sum();
        let total: u64 = sizes.values().sum();
        let images = per_image
            .into_iter()
            .map(|(names, image, layers, _)| ImageUsage {
                names,
                id: image.id().clone(),
                created: image.config.created.clone(),
                size: layers.iter().map(size).sum(),
                shared: layers
                    .iter()
                    .filter(|b| users.get(*b).copied().unwrap_or(0) > 1)
                    .map(size)
                    .sum(),
            })
            .collect();
        Ok(DiskUsage {
            images,
            total,
            shared,
            unique: referenced - shared,
            unreferenced: total.saturating_sub(referenced),
        })
    }
}
