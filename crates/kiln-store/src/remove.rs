//! Removing images by name or ID, and pruning unused ones: docker's
//! `rmi` and `image prune` policies, so the CLI only prints.

use std::collections::BTreeSet;

use kiln_core::{Digest, ImageRef};

use crate::error::{Result, StoreError};
use crate::gc::GcReport;
use crate::Store;

/// What one removal did: the names it untagged and the image it deleted
/// (its ID) when nothing refers to it any more.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removal {
    pub untagged: Vec<ImageRef>,
    pub deleted: Option<Digest>,
}

/// What `image prune` removed: per image its names and ID, and the GC
/// that followed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub images: Vec<Removal>,
    pub gc: GcReport,
}

impl Store {
    /// `docker rmi INPUT`: a tag is untagged (the image goes with its last
    /// name); an ID, ID prefix or `name@digest` removes the whole image —
    /// refused when several names refer to it, unless `force`. Blobs stay
    /// until [`Store::gc`].
    pub fn remove_image(&self, input: &str, force: bool) -> Result<Removal> {
        if let Ok(name) = input.parse::<ImageRef>() {
            if name.digest().is_none() && self.index()?.find(&name).is_some() {
                let orphaned = self.update_index(|index| {
                    let entry = index.remove_tag(&name);
                    Ok(entry.filter(|e| !index.manifests.iter().any(|m| m.digest == e.digest)))
                })?;
                let deleted = orphaned
                    .and_then(|entry| self.load_image(&entry).ok())
                    .map(|image| image.id().clone());
                return Ok(Removal {
                    untagged: vec![name],
                    deleted,
                });
            }
        }
        // An ID (or name@digest): every manifest with this config.
        let catalog = self.catalog()?;
        let (_, image) = catalog.resolve(self, input)?;
        let id = image.id().clone();
        let mut manifests: BTreeSet<Digest> = BTreeSet::new();
        let mut names: Vec<ImageRef> = Vec::new();
        for record in catalog.images {
            if self.load_record(&record)?.id() == &id {
                manifests.insert(record.entry.digest.clone());
                names.extend(record.names);
            }
        }
        if names.len() > 1 && !force {
            return Err(StoreError::ReferencedByMany {
                id: id.short().to_string(),
            });
        }
        self.update_index(|index| {
            for m in &manifests {
                index.remove_manifest(m);
            }
            Ok(())
        })?;
        Ok(Removal {
            untagged: names,
            deleted: Some(id),
        })
    }

    /// `docker image prune [-a]`: removes dangling images (no name), or
    /// with `all` every image nothing uses (no containers exist yet to use
    /// one), then collects the blobs nothing references.
    pub fn prune_images(&self, all: bool) -> Result<Pruned> {
        let records: Vec<_> = self
            .images()?
            .into_iter()
            .filter(|r| all || r.names.is_empty())
            .collect();
        let images = records
            .iter()
            .map(|r| Removal {
                untagged: r.names.clone(),
                deleted: self.load_record(r).ok().map(|i| i.id().clone()),
            })
            .collect();
        self.update_index(|index| {
            for r in &records {
                index.remove_manifest(&r.entry.digest);
            }
            Ok(())
        })?;
        let gc = self.gc()?;
        Ok(Pruned { images, gc })
    }
}
