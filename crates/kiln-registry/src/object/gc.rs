//! Garbage collection's storage methods on a bucket (see `crate::gc`).
//!
//! S3 has no rename and no conditional delete, so the two rules GC relies
//! on are kept differently from the filesystem layout:
//!
//! - a *touch* writes a marker `gc/touched/<key>` (S3 cannot refresh an
//!   object's time in place) and then checks that the object still exists;
//!   an object's age is the younger of its own and its marker's;
//! - a conditional delete copies the object aside (`gc/aside/<key>`),
//!   deletes it, and only then reads its marker: a touch whose marker came
//!   first is seen and the object is put back; a touch whose marker came
//!   later finds the object gone and answers false. Either way no caller
//!   relies on an object GC removed. A GC that dies between the two steps
//!   leaves the aside copy, which `list_staged` reports.

use std::collections::HashMap;
use std::time::SystemTime;

use futures_util::TryStreamExt;
use kiln_core::Digest;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use super::{found, io, ObjectStorage};
use crate::error::StorageError;
use crate::storage::{BlobEntry, ManifestEntry, Result, StagedEntry, UploadEntry};

/// An object's time (object_store's is a chrono date).
fn time(m: &object_store::ObjectMeta) -> SystemTime {
    let ms = m.last_modified.timestamp_millis();
    SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl ObjectStorage {
    fn marker(&self, key: &Path) -> Path {
        let rel = key
            .as_ref()
            .strip_prefix(&self.prefix)
            .unwrap_or(key.as_ref());
        self.key(&format!("gc/touched/{rel}"))
    }

    fn aside(&self, key: &Path) -> Path {
        let rel = key
            .as_ref()
            .strip_prefix(&self.prefix)
            .unwrap_or(key.as_ref());
        self.key(&format!("gc/aside/{rel}"))
    }

    /// Every object under `prefix` with its time: (path relative to it,
    /// size, modified).
    fn list_meta(&self, prefix: Path) -> Result<Vec<(String, u64, SystemTime)>> {
        let bucket = self.bucket.clone();
        self.bridge.block(async move {
            let metas: Vec<object_store::ObjectMeta> = bucket
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|e| io(&prefix, e))?;
            Ok(metas
                .into_iter()
                .filter_map(|m| {
                    let rel: Vec<String> = m
                        .location
                        .prefix_match(&prefix)?
                        .map(|p| p.as_ref().to_string())
                        .collect();
                    Some((rel.join("/"), m.size, time(&m)))
                })
                .collect())
        })
    }

    /// Writes the marker, then whether `key` exists.
    pub(super) fn touch(&self, key: Path) -> Result<bool> {
        let bucket = self.bucket.clone();
        let marker = self.marker(&key);
        self.bridge.block(async move {
            bucket
                .put(&marker, PutPayload::new())
                .await
                .map_err(|e| io(&marker, e))?;
            Ok(found(bucket.head(&key).await)
                .map_err(|e| io(&key, e))?
                .is_some())
        })
    }

    /// Deletes `key` unless it or its marker is at least as new as
    /// `older_than` (see the module doc).
    fn delete_if_older(&self, key: Path, older_than: SystemTime) -> Result<bool> {
        let bucket = self.bucket.clone();
        let marker = self.marker(&key);
        let aside = self.aside(&key);
        self.bridge.block(async move {
            let Some(meta) = found(bucket.head(&key).await).map_err(|e| io(&key, e))? else {
                return Ok(false);
            };
            if time(&meta) >= older_than {
                return Ok(false);
            }
            bucket.copy(&key, &aside).await.map_err(|e| io(&aside, e))?;
            found(bucket.delete(&key).await).map_err(|e| io(&key, e))?;
            let touched = found(bucket.head(&marker).await)
                .map_err(|e| io(&marker, e))?
                .map(|m| time(&m));
            if touched.is_some_and(|t| t >= older_than) {
                bucket.copy(&aside, &key).await.map_err(|e| io(&key, e))?;
                found(bucket.delete(&aside).await).map_err(|e| io(&aside, e))?;
                return Ok(false);
            }
            found(bucket.delete(&aside).await).map_err(|e| io(&aside, e))?;
            found(bucket.delete(&marker).await).map_err(|e| io(&marker, e))?;
            Ok(true)
        })
    }

    /// Marker times under `rel` (relative to the storage's prefix).
    fn touched(&self, rel: &str) -> Result<HashMap<String, SystemTime>> {
        Ok(self
            .list_meta(self.key(&format!("gc/touched/{rel}")))?
            .into_iter()
            .map(|(k, _, t)| (k, t))
            .collect())
    }

    pub(super) fn gc_list_blobs(&self) -> Result<Vec<BlobEntry>> {
        let touched = self.touched("blobs")?;
        let mut out = Vec::new();
        for (rel, size, modified) in self.list_meta(self.key("blobs"))? {
            let Some((alg, hex)) = rel.split_once('/') else {
                continue;
            };
            let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else {
                continue;
            };
            let modified = touched.get(&rel).map_or(modified, |t| (*t).max(modified));
            out.push(BlobEntry {
                digest,
                size,
                modified,
            });
        }
        Ok(out)
    }

    pub(super) fn gc_delete_blob(&self, digest: &Digest, older_than: SystemTime) -> Result<bool> {
        self.delete_if_older(self.blob(digest), older_than)
    }

    pub(super) fn gc_list_uploads(&self) -> Result<Vec<UploadEntry>> {
        let mut by_id: HashMap<String, (u64, SystemTime)> = HashMap::new();
        for (rel, size, modified) in self.list_meta(self.key("uploads"))? {
            let Some((id, name)) = rel.split_once('/') else {
                continue;
            };
            let e = by_id
                .entry(id.to_string())
                .or_insert((0, SystemTime::UNIX_EPOCH));
            // The size is what the bucket lists (tails, completed
            // targets): parts of an open multipart upload are not objects.
            if name != "repo" && !name.ends_with(".id") {
                e.0 += size;
            }
            e.1 = e.1.max(modified);
        }
        let mut out = Vec::new();
        for (id, (size, modified)) in by_id {
            let Some(repo) = self.read(super::upload::marker(self, &id))? else {
                continue;
            };
            out.push(UploadEntry {
                repo: String::from_utf8_lossy(&repo).into_owned(),
                id,
                size,
                modified,
            });
        }
        Ok(out)
    }

    pub(super) fn gc_list_manifests(&self, repo: &str) -> Result<Vec<ManifestEntry>> {
        let touched = self.touched(&format!("repositories/{repo}/_manifests"))?;
        let mut out = Vec::new();
        for (rel, _, modified) in self.list_meta(self.repo(repo, "_manifests"))? {
            let Some((alg, hex)) = rel.split_once('/') else {
                continue;
            };
            let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else {
                continue;
            };
            let modified = touched.get(&rel).map_or(modified, |t| (*t).max(modified));
            out.push(ManifestEntry { digest, modified });
        }
        Ok(out)
    }

    /// Each tag of `repo` with its object's last-modified time: a tag
    /// object is written whole on every push, so that is when it was
    /// last pushed (retention's order).
    pub(super) fn gc_tag_times(&self, repo: &str) -> Result<Vec<(String, SystemTime)>> {
        Ok(self
            .list_meta(self.repo(repo, "_tags"))?
            .into_iter()
            .map(|(tag, _, modified)| (tag, modified))
            .collect())
    }

    pub(super) fn gc_delete_manifest(
        &self,
        repo: &str,
        digest: &Digest,
        older_than: SystemTime,
    ) -> Result<bool> {
        let key = self.repo(repo, &format!("_manifests/{}", super::digest_key(digest)));
        self.delete_if_older(key, older_than)
    }

    pub(super) fn gc_list_staged(&self) -> Result<Vec<StagedEntry>> {
        Ok(self
            .list_meta(self.key("gc/aside"))?
            .into_iter()
            .map(|(name, size, modified)| StagedEntry {
                name,
                size,
                modified,
            })
            .collect())
    }

    pub(super) fn gc_remove_staged(&self, name: &str) -> Result<bool> {
        if name.is_empty()
            || name
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(StorageError::Corrupt(format!("no staged object {name:?}")));
        }
        self.remove(self.key(&format!("gc/aside/{name}")))
    }
}
