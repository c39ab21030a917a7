//! Reachability, garbage collection and the consistency check.
//!
//! The roots are the manifests named in index.json; from each, an index
//! reaches its manifests, and a manifest its config and layers. Anything in
//! `blobs/` not reached is garbage.

use std::collections::{BTreeSet, HashSet};

use kiln_core::content::ContentError;
use kiln_core::image::{walk, NodeKind, Visit};
use kiln_core::Digest;

use crate::error::{IoContext, Result, StoreError};
use crate::index::IndexEntry;
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

/// Walks from one root with the model's walk, collecting every digest it
/// reaches. Missing or unreadable blobs are reported through `missing`
/// instead of failing: GC keeps what it can reach, check reports the rest.
fn reach(
    store: &Store,
    root: &IndexEntry,
    seen: &mut HashSet<Digest>,
    missing: &mut Vec<String>,
) -> Result<()> {
    let mut problems = Vec::new();
    let mut unreadable = Vec::new();
    walk::<_, ContentError>(
        store,
        root,
        &mut |node| {
            let d = node.descriptor;
            seen.insert(d.digest.clone());
            if store.blobs().exists(&d.digest) {
                return Ok(Visit::Descend);
            }
            problems.push(match (node.kind, node.parent) {
                (NodeKind::Config | NodeKind::Layer, Some(parent)) => {
                    format!(
                        "{} {} (of manifest {parent}) is missing",
                        d.media_type, d.digest
                    )
                }
                _ => format!("{} {} is missing", d.media_type, d.digest),
            });
            Ok(Visit::Skip)
        },
        &mut |_, e| {
            unreadable.push(e.to_string());
            Ok(())
        },
    )
    .map_err(|e| StoreError::CorruptMetadata {
        what: "image graph",
        digest: root.digest.clone(),
        reason: e.to_string(),
    })?;
    missing.extend(problems);
    missing.extend(unreadable);
    Ok(())
}

impl Store {
    fn gc_roots_dir(&self) -> std::path::PathBuf {
        self.root().join("metadata/gc-roots")
    }

    /// Keeps `digests` out of GC under `name` (e.g. the layers of a build
    /// cache record) until [`Store::remove_gc_root`]. Written atomically.
    pub fn add_gc_root(&self, name: &str, digests: &[Digest]) -> Result<()> {
        let dir = self.gc_roots_dir();
        std::fs::create_dir_all(&dir).ctx("create", &dir)?;
        let text: String = digests.iter().map(|d| format!("{d}\n")).collect();
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).ctx("write", &tmp)?;
        std::fs::rename(&tmp, dir.join(name)).ctx("write GC root in", &dir)?;
        Ok(())
    }

    pub fn remove_gc_root(&self, name: &str) -> Result<()> {
        let p = self.gc_roots_dir().join(name);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).ctx("remove", &p),
            _ => Ok(()),
        }
    }

    /// Every digest the GC roots name (unreadable lines are skipped: a root
    /// can only keep blobs, never lose them).
    fn gc_root_digests(&self) -> Vec<Digest> {
        let Ok(rd) = std::fs::read_dir(self.gc_roots_dir()) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.parse::<Digest>().ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every blob reachable from the index or named by a GC root, plus any
    /// missing-blob findings.
    fn reachable(&self) -> Result<(HashSet<Digest>, Vec<String>)> {
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        seen.extend(self.gc_root_digests());
        for entry in self.index()?.roots() {
            reach(self, entry, &mut seen, &mut missing)?;
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
                self.forget_sources(&digest);
                self.forget_pushed(&digest);
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
