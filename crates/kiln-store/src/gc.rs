//! Reachability, garbage collection and the consistency check.
//!
//! The roots are the manifests named in index.json; from each, an index
//! reaches its manifests, and a manifest its config and layers. Anything in
//! `blobs/` not reached is garbage.

use std::collections::{BTreeSet, HashSet};

use kiln_core::{media_types, Digest};

use crate::error::{Result, StoreError};
use crate::image::descriptor_digest;
use crate::lock::{self, Mode};
use crate::Store;

#[derive(Debug, Default)]
pub struct GcReport {
    pub deleted: Vec<(Digest, u64)>,
    pub stale_ingests: usize,
}

impl GcReport {
    pub fn reclaimed_bytes(&self) -> u64 {
        self.deleted.iter().map(|(_, n)| n).sum()
    }
}

/// What `kiln system check` found. The store is healthy when `problems` is
/// empty.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    pub images_checked: usize,
    pub unreferenced_blobs: usize,
    pub stale_ingests: usize,
    pub problems: Vec<String>,
}

/// Walks from one root, collecting every digest it reaches. Missing or
/// unreadable blobs are reported through `missing` instead of failing.
fn reach(
    store: &Store,
    root: &Digest,
    media_type: &str,
    seen: &mut HashSet<Digest>,
    missing: &mut Vec<String>,
) -> Result<()> {
    if !seen.insert(root.clone()) {
        return Ok(());
    }
    if !store.blobs().exists(root) {
        missing.push(format!("{media_type} {root} is missing"));
        return Ok(());
    }
    if media_types::is_index(media_type) {
        let index = match store.read_index_blob(root) {
            Ok(i) => i,
            Err(e) => {
                missing.push(e.to_string());
                return Ok(());
            }
        };
        for m in index.manifests() {
            let d = descriptor_digest(m, root)?;
            reach(store, &d, m.media_type().as_ref(), seen, missing)?;
        }
    } else if media_types::is_manifest(media_type) {
        let manifest = match store.read_manifest(root) {
            Ok(m) => m,
            Err(e) => {
                missing.push(e.to_string());
                return Ok(());
            }
        };
        let children = std::iter::once(manifest.config()).chain(manifest.layers());
        for child in children {
            let d = descriptor_digest(child, root)?;
            if seen.insert(d.clone()) && !store.blobs().exists(&d) {
                missing.push(format!(
                    "{} {d} (of manifest {root}) is missing",
                    child.media_type()
                ));
            }
        }
    }
    Ok(())
}

impl Store {
    /// Every blob reachable from the index, plus any missing-blob findings.
    fn reachable(&self) -> Result<(HashSet<Digest>, Vec<String>)> {
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        for entry in self.index()?.roots() {
            reach(
                self,
                &entry.digest,
                &entry.media_type,
                &mut seen,
                &mut missing,
            )?;
        }
        Ok((seen, missing))
    }

    /// Deletes every blob nothing in the index reaches, and ingest files of
    /// dead writers. Waits for running writers (their leases) to finish.
    pub fn gc(&self) -> Result<GcReport> {
        let _gc = lock::lock(self.root(), "gc.lock", Mode::Exclusive)?;
        let (keep, _) = self.reachable()?;
        let mut report = GcReport::default();
        for (digest, size) in self.blobs().walk()? {
            if !keep.contains(&digest) {
                self.blobs().delete(&digest)?;
                self.forget_layer(&digest);
                report.deleted.push((digest, size));
            }
        }
        report.stale_ingests = self.blobs().stale_ingests(true)?.len();
        Ok(report)
    }

    /// Verifies every blob's digest and that every image's whole graph is
    /// present. Read-only.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let (reachable, missing) = self.reachable()?;
        report.problems.extend(missing);
        report.images_checked = self.index()?.roots().len();
        let mut present = BTreeSet::new();
        for (digest, _) in self.blobs().walk()? {
            match self.blobs().verify(&digest) {
                Ok(n) => {
                    report.bytes_checked += n;
                }
                Err(e @ StoreError::DigestMismatch { .. }) => report.problems.push(e.to_string()),
                Err(e) => return Err(e),
            }
            report.blobs_checked += 1;
            present.insert(digest);
        }
        report.unreferenced_blobs = present.iter().filter(|d| !reachable.contains(*d)).count();
        report.stale_ingests = self.blobs().stale_ingests(false)?.len();
        Ok(report)
    }
}
