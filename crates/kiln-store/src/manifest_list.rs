//! Manifest lists assembled in the store (`kiln manifest create|annotate|rm`,
//! docker's verbs): an index over images the store already holds, tagged
//! like any image, so `push`, `save`, `run --platform` and `images` treat it
//! as the multi-platform image it is.
//!
//! docker keeps such lists in a side directory (`~/.docker/manifests`) until
//! `manifest push`; kiln's store *is* an OCI layout that holds indexes, so
//! the list is simply an index entry. Each child's platform is read from
//! its image config (os, architecture, variant, os.version, os.features),
//! as docker does, and can be overridden by `annotate`. The list's media
//! type follows its children: Docker schema 2 manifests only → a Docker
//! manifest list (what docker writes), anything else → an OCI index (what
//! buildx writes), so a registry never sees a list mixing the two schemas
//! under the wrong type.

use kiln_core::image::{Descriptor, Index as ImageIndex};
use kiln_core::{media_types, ImageRef, Platform};

use crate::error::{Result, StoreError};
use crate::index::IndexEntry;
use crate::{Image, Store};

impl Store {
    /// The list entry for `image`: its manifest's media type, digest and
    /// size, with the platform its config names.
    pub fn list_entry(&self, image: &Image) -> Result<Descriptor> {
        let size = self.blobs().size(&image.manifest_digest)?;
        let mut d = Descriptor::new(
            &image.manifest_media_type,
            image.manifest_digest.clone(),
            size,
        );
        d.platform = Some(platform_of(image));
        Ok(d)
    }

    /// The index named `name`, if `name` names one (`None` when the name is
    /// unknown; an error when it names a single image).
    pub fn read_list(&self, name: &ImageRef) -> Result<Option<(IndexEntry, ImageIndex)>> {
        let index = self.index()?;
        let Some(entry) = index.find(name) else {
            return Ok(None);
        };
        if !media_types::is_index(&entry.media_type) {
            return Err(StoreError::Conflict {
                reference: name.familiar(),
                reason: "it names an image, not a manifest list; pick another name for the list, or remove the image's tag with `kiln rmi`".to_string(),
            });
        }
        let list = self.read_index_blob(&entry.digest)?;
        Ok(Some((entry.clone(), list)))
    }

    /// Writes `list` (its media type set from its children) and tags it
    /// `name`, replacing what the name pointed at. Every child must be in
    /// the store.
    pub fn write_list(&self, name: &ImageRef, mut list: ImageIndex) -> Result<IndexEntry> {
        for child in &list.manifests {
            if !self.blobs().exists(&child.digest) {
                return Err(StoreError::ImageNotFound(format!(
                    "manifest {} of list {} is not in the store",
                    child.digest,
                    name.familiar()
                )));
            }
        }
        let media_type = list_media_type(&list.manifests);
        list.schema_version = 2;
        list.media_type = Some(media_type.to_string());
        let bytes = list.to_bytes();
        let digest = self.blobs().put(&bytes, None)?;
        let entry = IndexEntry::new(media_type, digest, bytes.len() as u64);
        self.name_image(&entry, std::slice::from_ref(name))?;
        Ok(entry)
    }

    /// Removes the list tagged `name` (the tag only: its images stay, as
    /// docker's `manifest rm` leaves the images alone); false when `name`
    /// names no list.
    pub fn remove_list(&self, name: &ImageRef) -> Result<bool> {
        if self.read_list(name)?.is_none() {
            return Ok(false);
        }
        self.update_index(|index| Ok(index.remove_tag(name).is_some()))
    }
}

/// Docker schema 2 children only → a Docker manifest list; otherwise OCI.
pub fn list_media_type(children: &[Descriptor]) -> &'static str {
    let all_docker = !children.is_empty()
        && children
            .iter()
            .all(|c| c.media_type == media_types::DOCKER_MANIFEST);
    if all_docker {
        media_types::DOCKER_MANIFEST_LIST
    } else {
        media_types::OCI_INDEX
    }
}

/// An image's platform as its config states it (`unknown` fields left
/// empty by a config that does not say, as docker leaves them).
pub fn platform_of(image: &Image) -> Platform {
    let cfg = &image.config;
    let text = |key: &str| {
        cfg.rest
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    Platform {
        architecture: cfg.architecture.clone().unwrap_or_default(),
        os: cfg.os.clone().unwrap_or_default(),
        os_version: text("os.version"),
        os_features: cfg
            .rest
            .get("os.features")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        variant: cfg.variant.clone(),
    }
}
