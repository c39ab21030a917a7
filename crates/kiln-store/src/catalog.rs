//! The index in one pass: every root manifest read and parsed once, split
//! into images and artifacts (signatures, SBOMs). Commands that list,
//! resolve, remove or count images take one [`Catalog`] and reuse what it
//! read, rather than reading every manifest again per question.

use kiln_core::media_types;
use kiln_core::ImageRef;

use crate::artifacts::is_artifact;
use crate::error::{Result, StoreError};
use crate::index::IndexEntryExt;
use crate::{ArtifactRecord, Image, ImageRecord, Store};

/// The store's roots as of one read of `index.json`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Images, one per manifest or index (an unreadable manifest is listed
    /// here too, so image commands report it as they always did).
    pub images: Vec<ImageRecord>,
    /// Manifests that are no image.
    pub artifacts: Vec<ArtifactRecord>,
}

impl Store {
    /// Reads the index and each root manifest once, and splits them into
    /// images and artifacts.
    pub fn catalog(&self) -> Result<Catalog> {
        let index = self.index()?;
        let mut catalog = Catalog::default();
        for e in index.roots() {
            let mut entry = e.clone();
            entry.annotations.remove(crate::REF_NAME);
            let names = index.names_of(&e.digest);
            // An index (multi-platform image) is an image; its manifests
            // are read when a platform is chosen.
            let manifest = if media_types::is_index(&e.media_type) {
                None
            } else {
                self.read_manifest(&e.digest).ok()
            };
            match manifest {
                Some(manifest) if is_artifact(&manifest) => {
                    catalog.artifacts.push(ArtifactRecord {
                        entry,
                        names,
                        manifest,
                    })
                }
                manifest => catalog.images.push(ImageRecord {
                    entry,
                    names,
                    manifest,
                }),
            }
        }
        Ok(catalog)
    }

    /// Every image in the index, one record per manifest. Artifacts
    /// (signatures, SBOMs: see [`Store::artifacts`]) are not images.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.catalog()?.images)
    }

    /// Every artifact in the index, one record per manifest.
    pub fn artifacts(&self) -> Result<Vec<ArtifactRecord>> {
        Ok(self.catalog()?.artifacts)
    }

    /// Resolves what a user typed to an image, docker's way: first as a
    /// name (`busybox`, `busybox:1.36`, `name@sha256:…`), then as an image ID
    /// (`sha256:<hex>`, or a unique prefix of the hex).
    pub fn resolve(&self, input: &str) -> Result<(ImageRecord, Image)> {
        self.catalog()?.resolve(self, input)
    }
}

impl Catalog {
    /// [`Store::resolve`] against this catalog.
    pub fn resolve(&self, store: &Store, input: &str) -> Result<(ImageRecord, Image)> {
        if let Ok(name) = input.parse::<ImageRef>() {
            let found = match name.digest() {
                // name@digest: the manifest digest, or (docker) the image ID.
                Some(digest) => self
                    .images
                    .iter()
                    .find(|r| &r.entry.digest == digest || &r.entry.repo_digest() == digest),
                None => self.images.iter().find(|r| r.names.contains(&name)),
            };
            if let Some(r) = found {
                return Ok((r.clone(), store.load_record(r)?));
            }
        }
        let prefix = input.strip_prefix("sha256:").unwrap_or(input);
        let is_hex = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex {
            // A multi-platform image's ID is its index's digest (docker 28
            // with the containerd store; `kiln images` shows it).
            let mut indexes = self.images.iter().filter(|r| {
                kiln_core::media_types::is_index(&r.entry.media_type)
                    && r.entry.digest.hex().starts_with(prefix)
            });
            if let (Some(r), None) = (indexes.next(), indexes.next()) {
                return Ok((r.clone(), store.load_record(r)?));
            }
            let mut found: Option<(&ImageRecord, Image)> = None;
            for r in &self.images {
                let image = store.load_record(r)?;
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
            if let Some((r, image)) = found {
                return Ok((r.clone(), image));
            }
        }
        Err(StoreError::ImageNotFound(input.to_string()))
    }
}
