//! Removing build leftovers nothing uses: snapshots of layer stacks no
//! image has, step-cache records whose layers no image has (or all of
//! them), and with `all` the cache mounts and the context checksum cache.
//! Each record's layer is a store GC root; removing the record removes the
//! root, and the store's GC then collects blobs nothing else keeps.

use std::collections::BTreeSet;
use std::fs;

use kiln_core::Digest;
use kiln_snapshot::{chain_ids, Snapshotter};
use kiln_store::Store;

use crate::cache::{CacheRecord, StepCache};
use crate::error::Result;
use crate::state::strings;

#[derive(Debug, Default)]
pub struct PruneReport {
    pub snapshots: usize,
    pub cache_records: usize,
    pub reclaimed_blob_bytes: u64,
}

/// Layer digests and snapshot ids of every image in the store.
fn in_use(store: &Store) -> Result<(BTreeSet<Digest>, BTreeSet<String>)> {
    let mut blobs = BTreeSet::new();
    let mut snapshots = BTreeSet::new();
    for record in store.images()? {
        let Ok(image) = store.load_record(&record) else {
            continue;
        };
        blobs.extend(image.layer_digests());
        let config: serde_json::Value =
            serde_json::from_slice(&image.config_bytes).unwrap_or_default();
        let diff_ids: Vec<Digest> = strings(&config["rootfs"]["diff_ids"])
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        snapshots.extend(chain_ids(&diff_ids));
    }
    Ok((blobs, snapshots))
}

/// Snapshots no image uses (all of them with `all`), except what a
/// running build or a container uses (`kiln_snapshot`'s references).
pub fn prune_snapshots(store: &Store, all: bool) -> Result<usize> {
    let dir = store.root().join("snapshots");
    if !dir.exists() {
        return Ok(0);
    }
    let keep = if all {
        BTreeSet::new()
    } else {
        let mut keep = in_use(store)?.1;
        keep.extend(cached_snapshots(store));
        keep
    };
    let report = Snapshotter::open_existing(store.root())?.prune(&keep)?;
    Ok(report.removed.len())
}

/// The snapshots of the build cache's records (what a cache hit's next
/// step stands on).
fn cached_snapshots(store: &Store) -> BTreeSet<String> {
    let cache = StepCache::new(store);
    let Ok(rd) = fs::read_dir(&cache.dir) else {
        return BTreeSet::new();
    };
    rd.flatten()
        .filter_map(|e| CacheRecord::read(&e.path())?.snapshot)
        .collect()
}

/// `kiln builder prune [-a]`.
pub fn prune(store: &Store, all: bool) -> Result<PruneReport> {
    let (blobs, _) = in_use(store)?;
    let mut report = PruneReport::default();
    let cache = StepCache::new(store);
    if let Ok(rd) = fs::read_dir(&cache.dir) {
        for e in rd.flatten() {
            // A record that does not read (another format, damaged) keeps
            // nothing: it goes.
            let keep = !all
                && CacheRecord::read(&e.path())
                    .as_ref()
                    .and_then(CacheRecord::layer_digest)
                    .is_some_and(|d| blobs.contains(d));
            if !keep {
                cache.remove(&e.path())?;
                report.cache_records += 1;
            }
        }
    }
    // `COPY --from` input keys whose step record went lead nowhere.
    let inputs = store.root().join("buildcache/inputs");
    if let Ok(rd) = fs::read_dir(&inputs) {
        for e in rd.flatten() {
            let leads = fs::read_to_string(e.path())
                .is_ok_and(|k| cache.dir.join(format!("{}.json", k.trim())).exists());
            if all || !leads {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    if all {
        for d in ["buildcache/mounts", "buildcache/files.json"] {
            let p = store.root().join(d);
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
    report.snapshots = prune_snapshots(store, all)?;
    report.reclaimed_blob_bytes = store.gc()?.reclaimed_bytes();
    Ok(report)
}
