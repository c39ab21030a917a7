//! The image index: `index.json` of the OCI layout, one descriptor per
//! (manifest, name) pair.
//!
//! A tagged image has an entry whose `org.opencontainers.image.ref.name`
//! annotation is the full normalized reference
//! (`docker.io/library/busybox:latest`). An image kept without any name
//! (docker's dangling `<none>:<none>`) has one entry with no such annotation.
//! Entries written by other tools whose names are not full references are
//! kept and treated as untagged roots.

use std::fs;
use std::io::Write;
use std::path::Path;

use kiln_core::image::Descriptor;
use kiln_core::{Digest, ImageRef};
use serde::{Deserialize, Serialize};

use crate::blobs::sync_dir;
use crate::error::{IoContext, Result, StoreError};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// On an entry pulled from a registry: the digest the registry names the
/// image by (the index digest when one platform of an index was pulled),
/// which docker reports as the RepoDigest.
pub const REPO_DIGEST: &str = "dev.kiln.image.repo-digest";
/// On every entry kiln writes for a name (tag, build, import, pull, load)
/// and on untagged entries it adds: when, RFC 3339 UTC. `kiln images` lists
/// newest-named first, as docker lists by the time an image arrived. It
/// lives only in index.json, never in a manifest or config, so it changes
/// no image ID or manifest digest.
pub const NAMED: &str = "dev.kiln.image.named";

/// One descriptor in index.json: the model's [`Descriptor`]; what kiln
/// reads from its annotations is [`IndexEntryExt`].
pub type IndexEntry = Descriptor;

/// What the store reads from an index.json entry's annotations.
pub trait IndexEntryExt {
    /// The kiln tag of this entry, if it has one that is a full reference.
    fn name(&self) -> Option<ImageRef>;
    /// The digest a registry knows this image by: [`REPO_DIGEST`] when
    /// recorded, else the manifest's own.
    fn repo_digest(&self) -> Digest;
    /// The digest this entry was pulled by ([`REPO_DIGEST`]), if it was
    /// pulled: a built, imported or loaded image has none (docker's empty
    /// RepoDigests), whatever its local manifest's digest.
    fn pulled_digest(&self) -> Option<Digest>;
    /// When this entry was named ([`NAMED`]), if kiln recorded it.
    fn named_at(&self) -> Option<std::time::SystemTime>;
}

impl IndexEntryExt for Descriptor {
    fn name(&self) -> Option<ImageRef> {
        let raw = self.annotations.get(REF_NAME)?;
        let parsed = ImageRef::parse(raw).ok()?;
        // Only names stored in full normalized form are kiln tags.
        (parsed.to_string() == *raw && parsed.tag().is_some()).then_some(parsed)
    }

    fn repo_digest(&self) -> Digest {
        self.annotations
            .get(REPO_DIGEST)
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| self.digest.clone())
    }

    fn pulled_digest(&self) -> Option<Digest> {
        self.annotations
            .get(REPO_DIGEST)
            .and_then(|d| d.parse().ok())
    }

    fn named_at(&self) -> Option<std::time::SystemTime> {
        self.annotations
            .get(NAMED)
            .and_then(|t| kiln_core::parse_rfc3339(t))
    }
}

fn stamp_named(e: &mut Descriptor) {
    let now = kiln_core::rfc3339(std::time::SystemTime::now());
    e.annotations.insert(NAMED.to_string(), now);
}

fn raw_name(e: &Descriptor) -> Option<&str> {
    e.annotations.get(REF_NAME).map(String::as_str)
}

/// The parsed index.json. Only its `manifests` matter to kiln; other fields
/// are preserved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<IndexEntry>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(kiln_core::media_types::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            other: serde_json::Map::new(),
        }
    }
}

impl Index {
    pub(crate) fn load(path: &Path) -> Result<Index> {
        let bytes = fs::read(path).ctx("read", path)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::BadLayout {
            path: path.to_path_buf(),
            reason: format!("index.json is not a valid OCI index: {e}"),
        })
    }

    /// Writes atomically: a crash leaves either the old or the new index.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".index.json-")
            .tempfile_in(dir)
            .ctx("create temporary index in", dir)?;
        let bytes = serde_json::to_vec(self)
            .map_err(std::io::Error::other)
            .ctx("encode", path)?;
        tmp.write_all(&bytes).ctx("write", tmp.path())?;
        tmp.as_file().sync_all().ctx("fsync", tmp.path())?;
        tmp.persist(path)
            .map_err(|e| e.error)
            .ctx("replace", path)?;
        sync_dir(dir)
    }

    /// The entry tagged `name`, if any.
    pub fn find(&self, name: &ImageRef) -> Option<&IndexEntry> {
        let want = name.to_string();
        self.manifests.iter().find(|e| raw_name(e) == Some(&want))
    }

    /// Every name (tag) pointing at `digest`.
    pub fn names_of(&self, digest: &Digest) -> Vec<ImageRef> {
        self.manifests
            .iter()
            .filter(|e| &e.digest == digest)
            .filter_map(IndexEntryExt::name)
            .collect()
    }

    /// Distinct manifests the index holds, in index order.
    pub fn roots(&self) -> Vec<&IndexEntry> {
        let mut seen = std::collections::HashSet::new();
        self.manifests
            .iter()
            .filter(|e| seen.insert(e.digest.clone()))
            .collect()
    }

    /// Points `name` at `target`. The image the name pointed at before, if it
    /// is left with no entry, is kept as a dangling (untagged) image, as
    /// docker does. Returns that previous digest when it changed.
    pub fn set_tag(&mut self, name: &ImageRef, target: &IndexEntry) -> Option<Digest> {
        let want = name.to_string();
        let previous = self
            .manifests
            .iter()
            .position(|e| raw_name(e) == Some(&want))
            .map(|i| self.manifests.remove(i));
        // A dangling entry for the target is replaced by the named one.
        self.manifests
            .retain(|e| !(e.digest == target.digest && raw_name(e).is_none()));
        let mut entry = target.clone();
        entry.annotations.insert(REF_NAME.to_string(), want);
        stamp_named(&mut entry);
        self.manifests.push(entry);
        let previous = previous?;
        if previous.digest == target.digest {
            return None;
        }
        if !self.manifests.iter().any(|e| e.digest == previous.digest) {
            let mut dangling = previous.clone();
            dangling.annotations.remove(REF_NAME);
            self.manifests.push(dangling);
        }
        Some(previous.digest)
    }

    /// Adds `entry` as an untagged image unless the manifest is already held.
    pub fn add_untagged(&mut self, entry: &IndexEntry) {
        if !self.manifests.iter().any(|e| e.digest == entry.digest) {
            let mut entry = entry.clone();
            entry.annotations.remove(REF_NAME);
            stamp_named(&mut entry);
            self.manifests.push(entry);
        }
    }

    /// Removes the tag `name`; returns the entry it pointed at. The manifest
    /// stays only if other entries still hold it.
    pub fn remove_tag(&mut self, name: &ImageRef) -> Option<IndexEntry> {
        let want = name.to_string();
        let i = self
            .manifests
            .iter()
            .position(|e| raw_name(e) == Some(&want))?;
        Some(self.manifests.remove(i))
    }

    /// Removes every entry for `digest`.
    pub fn remove_manifest(&mut self, digest: &Digest) {
        self.manifests.retain(|e| &e.digest != digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> IndexEntry {
        IndexEntry::new(
            kiln_core::media_types::OCI_MANIFEST,
            Digest::sha256(&[n]),
            1,
        )
    }

    #[test]
    fn retag_leaves_previous_image_dangling() {
        let mut idx = Index::default();
        let name: ImageRef = "app".parse().unwrap();
        assert_eq!(idx.set_tag(&name, &entry(1)), None);
        assert_eq!(idx.set_tag(&name, &entry(2)), Some(entry(1).digest));
        assert_eq!(idx.find(&name).unwrap().digest, entry(2).digest);
        let dangling: Vec<_> = idx
            .manifests
            .iter()
            .filter(|e| e.name().is_none())
            .collect();
        assert_eq!(dangling.len(), 1);
        assert_eq!(dangling[0].digest, entry(1).digest);
        // Every name records when it was given; nothing else changes.
        let named = idx.find(&name).unwrap();
        assert!(named.named_at().is_some(), "{named:?}");
        assert_eq!(named.digest, entry(2).digest);
        // Tagging the dangling image again replaces its untagged entry.
        idx.set_tag(&"other".parse().unwrap(), &entry(1));
        assert_eq!(idx.manifests.len(), 2);
        assert!(idx.manifests.iter().all(|e| e.name().is_some()));
    }

    #[test]
    fn retag_keeps_previous_image_with_other_names() {
        let mut idx = Index::default();
        let a: ImageRef = "a".parse().unwrap();
        let b: ImageRef = "b".parse().unwrap();
        idx.set_tag(&a, &entry(1));
        idx.set_tag(&b, &entry(1));
        idx.set_tag(&a, &entry(2));
        assert_eq!(
            idx.manifests.len(),
            2,
            "no dangling entry: b still names image 1"
        );
        assert_eq!(idx.names_of(&entry(1).digest), vec![b]);
    }
}
