//! Online garbage collection: deletes blobs no manifest names, uploads and
//! staging leftovers nobody touched for a grace period, and (only when
//! asked) untagged manifests — while the registry keeps serving.
//!
//! # What stays
//!
//! *Mark*, per repository: the roots are every tagged manifest and every
//! manifest put (or refreshed) within the grace period; without
//! [`GcOptions::delete_untagged`] every manifest is a root, as in
//! distribution's default. From the roots, liveness follows the children
//! of an index, and the referrers of a live manifest: a manifest whose
//! `subject` is live is live, tagged or not — cosign signatures and SBOMs
//! are untagged referrers and must live as long as the image they describe
//! (and go with it). A live manifest keeps its own blob, its config and its
//! layers (non-distributable layers are stored elsewhere and named only).
//! Links (a repository holding a blob) keep nothing: a blob pushed but
//! never named by a manifest is garbage once older than the grace period.
//!
//! *Sweep*: blobs neither live nor modified within the grace period,
//! uploads and staging leftovers idle for the grace period, and, with
//! `delete_untagged`, manifests that are not live and older than grace.
//!
//! # Why a concurrent push cannot lose content
//!
//! Let `T0` be when a collection starts and `cutoff = T0 - grace`. The
//! storage keeps two rules ([`Storage`]): every write that makes a blob or
//! manifest visible, and every request about to rely on one (a manifest
//! PUT refreshes each blob and child manifest it names, a mount refreshes
//! the blob, an upload of bytes already stored refreshes them) sets its
//! modification time to now *before* the request succeeds; and GC deletes
//! only conditionally ([`Storage::delete_blob`]): a refresh that succeeded
//! before the deletion keeps the file, one after fails, so the request
//! fails too (or writes the file anew) instead of succeeding over a hole.
//!
//! Take a manifest `M` put at time `t1` naming blob `B`, which it
//! refreshed at `t0 < t1`. If the mark listed `M`'s repository after `t1`,
//! `M` is a root and `B` is marked. Otherwise the listing came before `t1`,
//! so `T0 < t1`, and the sweep reaches `B` after the listing: if it does so
//! before `t0`, the refresh fails and the PUT answers
//! `MANIFEST_BLOB_UNKNOWN` (nothing is stored); if after, `B`'s time is
//! `t0 > T0 - (t1 - t0)`, which is after `cutoff` as long as the
//! milliseconds between a PUT's refresh and its store are shorter than the
//! grace period — so `B` stays. A blob uploaded during the mark is younger
//! than `cutoff` (its upload refreshes it), so it stays for the whole grace
//! period, which is the time a client has to put the manifest naming it.
//! An upload is swept only when no byte arrived for the grace period, so
//! the grace period must cover the longest pause of a client mid-upload
//! (default: one hour). Untagged manifests are the same argument one level
//! up: tags are only written right after a PUT that refreshed the manifest,
//! and an index PUT refreshes the manifests it names.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kiln_core::Digest;
use serde_json::Value;

use crate::error::StorageError;
use crate::storage::Storage;

/// How a collection runs. The server's `--gc-*` flags and the config
/// file's `[gc]` section fill it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// Nothing younger is deleted: it must exceed the longest pause of a
    /// client between two chunks of an upload, and between its last blob
    /// and its manifest.
    pub grace: Duration,
    /// Also delete manifests that no tag, index or live subject reaches
    /// (docker's `--delete-untagged`).
    pub delete_untagged: bool,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
    /// Tag retention (`[[policy.retention]]`), applied to every repository
    /// before marking, so the manifests of dropped tags go in the same
    /// run (once past the grace, with `delete_untagged`). A dry run lists
    /// the tags it would drop and still counts them as live.
    pub retention: Vec<crate::RetentionRule>,
    /// Repository patterns whose tags are immutable: retention skips them.
    pub immutable_tags: Vec<String>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(3600),
            delete_untagged: false,
            dry_run: false,
            retention: Vec::new(),
            immutable_tags: Vec::new(),
        }
    }
}

/// What a collection deleted (or, dry, would delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Garbage {
    /// A blob no live manifest names.
    Blob { digest: Digest, size: u64 },
    /// A manifest of `repo` no tag, index or live subject reaches.
    Manifest {
        repo: String,
        digest: Digest,
        size: u64,
    },
    /// An upload idle for the grace period.
    Upload { repo: String, id: String, size: u64 },
    /// A leftover of an interrupted write in the storage's staging area.
    Staged { name: String, size: u64 },
    /// A tag retention drops (its manifest stays until it is garbage).
    Tag { repo: String, tag: String },
}

impl Garbage {
    pub fn size(&self) -> u64 {
        match self {
            Garbage::Blob { size, .. }
            | Garbage::Manifest { size, .. }
            | Garbage::Upload { size, .. }
            | Garbage::Staged { size, .. } => *size,
            Garbage::Tag { .. } => 0,
        }
    }

    /// Why it goes, for the report.
    pub fn reason(&self) -> &'static str {
        match self {
            Garbage::Blob { .. } => "no manifest names it",
            Garbage::Manifest { .. } => "untagged, and no index or live subject reaches it",
            Garbage::Upload { .. } => "upload idle past the grace period",
            Garbage::Staged { .. } => "leftover of an interrupted write",
            Garbage::Tag { .. } => "past the repository's retention",
        }
    }
}

impl std::fmt::Display for Garbage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Garbage::Blob { digest, size } => write!(f, "blob {digest} {size} bytes"),
            Garbage::Manifest { repo, digest, size } => {
                write!(f, "manifest {repo}@{digest} {size} bytes")
            }
            Garbage::Upload { repo, id, size } => write!(f, "upload {repo}/{id} {size} bytes"),
            Garbage::Staged { name, size } => write!(f, "staged {name} {size} bytes"),
            Garbage::Tag { repo, tag } => write!(f, "tag {repo}:{tag}"),
        }?;
        write!(f, ": {}", self.reason())
    }
}

/// What a collection found.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Deleted, or with `dry_run` to be deleted.
    pub garbage: Vec<Garbage>,
    /// Blobs kept because a live manifest names them.
    pub live_blobs: usize,
    /// Manifests kept, over all repositories.
    pub live_manifests: usize,
}

impl GcReport {
    pub fn bytes(&self) -> u64 {
        self.garbage.iter().map(Garbage::size).sum()
    }
}

/// What one manifest names.
#[derive(Default)]
struct Names {
    manifests: Vec<Digest>,
    blobs: Vec<Digest>,
    subject: Option<Digest>,
}

fn digests(list: Option<&Value>, skip_foreign: bool) -> Vec<Digest> {
    let Some(Value::Array(items)) = list else {
        return Vec::new();
    };
    items
        .iter()
        .filter(|d| !(skip_foreign && foreign(d)))
        .filter_map(|d| d.get("digest")?.as_str()?.parse().ok())
        .collect()
}

/// Non-distributable layers live elsewhere (their `urls`).
fn foreign(d: &Value) -> bool {
    d.get("urls")
        .and_then(Value::as_array)
        .is_some_and(|u| !u.is_empty())
        || d.get("mediaType")
            .and_then(Value::as_str)
            .is_some_and(|t| t.contains("nondistributable") || t.contains(".foreign."))
}

fn names(bytes: &[u8]) -> Names {
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return Names::default();
    };
    let mut blobs = digests(doc.get("layers"), true);
    if let Some(c) = doc.get("config") {
        blobs.extend(digests(Some(&Value::Array(vec![c.clone()])), true));
    }
    Names {
        manifests: digests(doc.get("manifests"), false),
        blobs,
        subject: doc
            .get("subject")
            .and_then(|s| s.get("digest")?.as_str()?.parse().ok()),
    }
}

/// Marks one repository: its live manifests and the blobs they keep; the
/// manifests that are not live go to `dead` (with their sizes).
fn mark_repo(
    storage: &dyn Storage,
    repo: &str,
    options: &GcOptions,
    cutoff: SystemTime,
    live_blobs: &mut HashSet<Digest>,
    dead: &mut Vec<(Digest, u64, Names)>,
) -> Result<usize, StorageError> {
    let entries = storage.list_manifests(repo)?;
    let mut docs: HashMap<Digest, (u64, Names)> = HashMap::new();
    let mut referrers: HashMap<Digest, Vec<Digest>> = HashMap::new();
    for e in &entries {
        // Removed since the listing: nothing to keep, nothing to delete.
        let Some((_, bytes)) = storage.manifest(repo, &e.digest)? else {
            continue;
        };
        let n = names(&bytes);
        if let Some(s) = &n.subject {
            referrers
                .entry(s.clone())
                .or_default()
                .push(e.digest.clone());
        }
        docs.insert(e.digest.clone(), (bytes.len() as u64, n));
    }
    let mut stack: Vec<Digest> = Vec::new();
    if options.delete_untagged {
        for tag in storage.tags(repo)?.unwrap_or_default() {
            stack.extend(storage.resolve_tag(repo, &tag)?);
        }
        stack.extend(
            entries
                .iter()
                .filter(|e| e.modified >= cutoff)
                .map(|e| e.digest.clone()),
        );
    } else {
        stack.extend(entries.iter().map(|e| e.digest.clone()));
    }
    let mut live: HashSet<Digest> = HashSet::new();
    while let Some(d) = stack.pop() {
        if !live.insert(d.clone()) {
            continue;
        }
        if let Some((_, n)) = docs.get(&d) {
            stack.extend(n.manifests.iter().cloned());
        }
        stack.extend(referrers.get(&d).into_iter().flatten().cloned());
    }
    for d in &live {
        live_blobs.insert(d.clone());
        if let Some((_, n)) = docs.get(d) {
            live_blobs.extend(n.blobs.iter().cloned());
        }
    }
    for (d, (size, n)) in docs {
        if !live.contains(&d) {
            dead.push((d, size, n));
        }
    }
    Ok(live.len())
}

/// Runs one collection over `storage` (blocking: call it off the async
/// runtime).
/// Applies tag retention to `repo` (or, dry, lists what it would drop).
fn retain(
    storage: &dyn Storage,
    options: &GcOptions,
    repo: &str,
    report: &mut GcReport,
) -> Result<(), StorageError> {
    let immutable = options
        .immutable_tags
        .iter()
        .any(|p| crate::policy::glob(p.as_bytes(), repo.as_bytes()));
    if options.retention.is_empty() || immutable {
        return Ok(());
    }
    let dropped = match options.dry_run {
        true => crate::retention::tags_to_drop(&options.retention, repo, &storage.tag_times(repo)?),
        false => crate::retention::apply(storage, &options.retention, false, repo)?,
    };
    report
        .garbage
        .extend(dropped.into_iter().map(|tag| Garbage::Tag {
            repo: repo.to_string(),
            tag,
        }));
    Ok(())
}

pub fn collect(storage: &dyn Storage, options: &GcOptions) -> Result<GcReport, StorageError> {
    let start = SystemTime::now();
    let cutoff = start.checked_sub(options.grace).unwrap_or(start);
    let mut report = GcReport::default();
    let mut live_blobs: HashSet<Digest> = HashSet::new();
    for repo in storage.repositories()? {
        retain(storage, options, &repo, &mut report)?;
        let mut dead = Vec::new();
        report.live_manifests +=
            mark_repo(storage, &repo, options, cutoff, &mut live_blobs, &mut dead)?;
        for (digest, size, n) in dead {
            let gone =
                options.dry_run || storage.delete_manifest_if_older(&repo, &digest, cutoff)?;
            if gone {
                report.garbage.push(Garbage::Manifest {
                    repo: repo.clone(),
                    digest,
                    size,
                });
            } else {
                // Refreshed since the mark (put again, named by a new
                // index): it and what it names stay.
                report.live_manifests += 1;
                live_blobs.insert(digest);
                live_blobs.extend(n.blobs);
            }
        }
    }
    for blob in storage.list_blobs()? {
        if live_blobs.contains(&blob.digest) {
            report.live_blobs += 1;
            continue;
        }
        if blob.modified >= cutoff {
            continue;
        }
        if options.dry_run || storage.delete_blob(&blob.digest, cutoff)? {
            report.garbage.push(Garbage::Blob {
                digest: blob.digest,
                size: blob.size,
            });
        }
    }
    for upload in storage.list_uploads()? {
        if upload.modified >= cutoff {
            continue;
        }
        if options.dry_run || storage.cancel_upload(&upload.repo, &upload.id, "")? {
            report.garbage.push(Garbage::Upload {
                repo: upload.repo,
                id: upload.id,
                size: upload.size,
            });
        }
    }
    for staged in storage.list_staged()? {
        if staged.modified >= cutoff {
            continue;
        }
        if options.dry_run || storage.remove_staged(&staged.name)? {
            report.garbage.push(Garbage::Staged {
                name: staged.name,
                size: staged.size,
            });
        }
    }
    Ok(report)
}

/// Collects every `interval` while the registry serves, until the returned
/// task is aborted; each run is logged and counted (in [`gc_runs`] and in
/// `metrics`, the server's `/metrics` handle).
pub fn spawn(
    storage: Arc<dyn Storage>,
    options: GcOptions,
    interval: Duration,
    metrics: crate::Metrics,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let (s, o) = (storage.clone(), options.clone());
            match tokio::task::spawn_blocking(move || collect(&*s, &o)).await {
                Ok(Ok(report)) => {
                    GC_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    metrics.gc_run();
                    tracing::info!(
                        deleted = report.garbage.len(),
                        bytes = report.bytes(),
                        live_blobs = report.live_blobs,
                        live_manifests = report.live_manifests,
                        "garbage collection"
                    );
                }
                Ok(Err(e)) => {
                    tracing::error!("garbage collection: {}", kiln_core::error_chain(&e))
                }
                Err(e) => tracing::error!("garbage collection: {e}"),
            }
        }
    })
}

static GC_RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Collections completed by [`spawn`]ed tasks in this process (for
/// `/metrics`).
pub fn gc_runs() -> u64 {
    GC_RUNS.load(std::sync::atomic::Ordering::Relaxed)
}
