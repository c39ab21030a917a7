//! Removing images by name or ID, and pruning unused ones: docker's
//! `rmi` and `image prune` policies, so the CLI only prints. The store
//! knows nothing of containers: the caller says which images containers
//! use ([`ImagesInUse`]), and the store applies docker's conflicts.

use std::collections::{BTreeMap, BTreeSet};

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

/// The images containers were created from (any state), by image ID,
/// with their containers' IDs and whether each runs. Containers keep
/// their image's content through store GC roots of their own; this is
/// for docker's policies: which images `rmi` refuses and `image prune`
/// keeps.
#[derive(Debug, Default, Clone)]
pub struct ImagesInUse(BTreeMap<Digest, Vec<(String, bool)>>);

impl ImagesInUse {
    pub fn new() -> ImagesInUse {
        ImagesInUse::default()
    }

    /// Container `container` (its ID) uses image `image`.
    pub fn add(&mut self, image: Digest, container: String, running: bool) {
        self.0.entry(image).or_default().push((container, running));
    }

    pub fn contains(&self, image: &Digest) -> bool {
        self.0.contains_key(image)
    }

    /// The first container using `image` that runs (`Some(true)`) or not.
    fn first(&self, image: &Digest, running: Option<bool>) -> Option<String> {
        self.0
            .get(image)?
            .iter()
            .find(|(_, r)| running.is_none_or(|want| *r == want))
            .map(|(c, _)| short(c).to_string())
    }
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..12.min(id.len())]
}

/// docker's `checkImageDeleteConflict`: a running container is a hard
/// conflict (not even `force` deletes the image), a stopped one a soft
/// conflict (`force` does).
fn delete_conflict(id: &Digest, in_use: &ImagesInUse, force: bool) -> Option<StoreError> {
    let conflict = |hard: bool, message: String| StoreError::DeleteConflict {
        id: id.short().to_string(),
        hard,
        message,
    };
    if let Some(c) = in_use.first(id, Some(true)) {
        return Some(conflict(
            true,
            format!("image is being used by running container {c}"),
        ));
    }
    if force {
        return None;
    }
    in_use.first(id, Some(false)).map(|c| {
        conflict(
            false,
            format!("image is being used by stopped container {c}"),
        )
    })
}

impl Store {
    /// `docker rmi INPUT` with docker's conflicts (`in_use`: the images
    /// containers use). A tag is untagged; the image goes with its last
    /// name unless a running container uses it (it stays, nameless, as in
    /// docker). The last name of an image a container uses is refused
    /// without `force`. An ID, ID prefix or `name@digest` removes the whole
    /// image: refused when a container runs it, and without `force` when
    /// several names refer to it or a stopped container uses it. Blobs
    /// stay until [`Store::gc`] (and while a container's GC root holds
    /// them).
    pub fn remove_image(&self, input: &str, force: bool, in_use: &ImagesInUse) -> Result<Removal> {
        if let Ok(name) = input.parse::<ImageRef>() {
            if name.digest().is_none() {
                if let Some(entry) = self.index()?.find(&name).cloned() {
                    return self.untag(input, &name, &entry, force, in_use);
                }
            }
        }
        // An ID (or name@digest): every manifest with this config.
        let catalog = self.catalog()?;
        let (_, image) = catalog.resolve(self, input)?;
        let id = image.id().clone();
        let (manifests, names) = self.manifests_of(&id)?;
        if let Some(e) = delete_conflict(&id, in_use, true) {
            return Err(e);
        }
        if names.len() > 1 && !force {
            return Err(StoreError::ReferencedByMany {
                id: id.short().to_string(),
            });
        }
        if let Some(e) = delete_conflict(&id, in_use, force) {
            return Err(e);
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

    /// `rmi NAME`: docker's `ImageDelete` for a repository reference.
    fn untag(
        &self,
        input: &str,
        name: &ImageRef,
        entry: &crate::IndexEntry,
        force: bool,
        in_use: &ImagesInUse,
    ) -> Result<Removal> {
        let id = self.load_image(entry).ok().map(|i| i.id().clone());
        let names = match &id {
            Some(id) => self.manifests_of(id)?.1,
            None => vec![name.clone()],
        };
        let user = |running| id.as_ref().and_then(|id| in_use.first(id, running));
        if !force && names.len() == 1 {
            if let (Some(id), Some(container)) = (&id, user(None)) {
                return Err(StoreError::InUse {
                    reference: input.to_string(),
                    container,
                    id: id.short().to_string(),
                });
            }
        }
        // The last name of an image a container runs: the image stays,
        // nameless (docker ignores the hard conflict after the untag).
        let keep = names.len() == 1 && user(Some(true)).is_some();
        let orphaned = self.update_index(|index| {
            let removed = index.remove_tag(name);
            if keep {
                if let Some(e) = &removed {
                    index.add_untagged(e);
                }
                return Ok(None);
            }
            Ok(removed.filter(|e| !index.manifests.iter().any(|m| m.digest == e.digest)))
        })?;
        let deleted = orphaned
            .and_then(|entry| self.load_image(&entry).ok())
            .map(|image| image.id().clone());
        Ok(Removal {
            untagged: vec![name.clone()],
            deleted,
        })
    }

    /// The manifests whose config is `id`, and all their names.
    fn manifests_of(&self, id: &Digest) -> Result<(BTreeSet<Digest>, Vec<ImageRef>)> {
        let mut manifests: BTreeSet<Digest> = BTreeSet::new();
        let mut names: Vec<ImageRef> = Vec::new();
        for record in self.catalog()?.images {
            if self.load_record(&record).ok().as_ref().map(|i| i.id()) == Some(id) {
                manifests.insert(record.entry.digest.clone());
                names.extend(record.names);
            }
        }
        Ok((manifests, names))
    }

    /// `docker image prune [-a]`: removes dangling images (no name), or
    /// with `all` every image no container uses (`in_use`, whatever the
    /// containers' states), then collects the blobs nothing references.
    pub fn prune_images(&self, all: bool, in_use: &ImagesInUse) -> Result<Pruned> {
        let mut records = Vec::new();
        let mut images = Vec::new();
        for r in self.catalog()?.images {
            if !all && !r.names.is_empty() {
                continue;
            }
            let id = self.load_record(&r).ok().map(|i| i.id().clone());
            if id.as_ref().is_some_and(|id| in_use.contains(id)) {
                continue;
            }
            images.push(Removal {
                untagged: r.names.clone(),
                deleted: id,
            });
            records.push(r);
        }
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
