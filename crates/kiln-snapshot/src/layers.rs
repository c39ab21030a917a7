//! Snapshots and image layers, the part build, commit and run share: an
//! image's layer chain unpacked into committed snapshots named by chain id
//! (containerd's unpacker convention: one stack of layers is unpacked
//! once, whatever image or build has it), and an active snapshot's changes
//! made into a layer in the store and committed as the next chain id.
//!
//! This is the one place kiln-snapshot reads and writes the store; the
//! store knows nothing of snapshots.

use std::io::BufReader;

use kiln_core::image::Descriptor;
use kiln_core::image::{ChainId, DiffId};
use kiln_core::{media_types, Digest};
use kiln_layer::{Change, TarOptions};
use kiln_store::{LayerInfo, Store};

use crate::error::{io, Result, SnapshotError};
use crate::snapshotter::Snapshotter;

/// The chain ids of a stack of layers (bottom first), as snapshot names:
/// hex, without the `sha256:` prefix.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<String> {
    let ids: Vec<DiffId> = diff_ids.iter().cloned().map(DiffId).collect();
    ChainId::chain(&ids)
        .into_iter()
        .map(|c| c.0.hex().to_string())
        .collect()
}

/// The chain id of `diff_id` on the chain `parent` (a snapshot name).
/// A parent that is not a chain id is an error, never a silent base layer.
pub fn chain_id(parent: Option<&str>, diff_id: &Digest) -> Result<String> {
    // Snapshot names are the chain id's hex; the model computes it.
    let parent = match parent {
        Some(p) => Some(ChainId(
            Digest::from_parts(kiln_core::Algorithm::Sha256, p).map_err(|_| {
                SnapshotError::InvalidKey {
                    key: p.to_string(),
                    reason: "a layer's parent snapshot must be named by its chain id",
                }
            })?,
        )),
        None => None,
    };
    Ok(ChainId::next(parent.as_ref(), &DiffId(diff_id.clone()))
        .0
        .hex()
        .to_string())
}

/// Makes sure the image layers `layers` (bottom first, with their
/// `diff_ids`) are committed snapshots, unpacking from the store the ones
/// that are not, and holds the top one in `snaps`' lease; returns its
/// name (none for no layers). The caller's store lease keeps the blobs.
pub fn unpack_layers(
    snaps: &Snapshotter,
    store: &Store,
    layers: &[Descriptor],
    diff_ids: &[Digest],
) -> Result<Option<String>> {
    if layers.len() != diff_ids.len() {
        return Err(SnapshotError::LayerCount {
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let ids = chain_ids(diff_ids);
    let Some(top) = ids.last() else {
        return Ok(None);
    };
    // A committed snapshot's parents exist while it does (nothing removes
    // a parent before its children): the top alone tells.
    if snaps.hold(top)? {
        return Ok(Some(top.clone()));
    }
    let _one_at_a_time = snaps.unpacking.lock().unwrap_or_else(|e| e.into_inner());
    // One lock over the whole chain: a prune cannot take the bottom while
    // the top is unpacked on it.
    let _lock = snaps.lock(false)?;
    for (i, id) in ids.iter().enumerate() {
        if snaps.exists(id) {
            continue;
        }
        let f = store.blobs().open(&layers[i].digest)?;
        let parent = i.checked_sub(1).map(|p| ids[p].as_str());
        snaps.unpack_locked(id, parent, BufReader::with_capacity(1 << 20, f))?;
    }
    snaps.reference(top)?;
    Ok(Some(top.clone()))
}

/// A layer made by [`commit_layer`].
#[derive(Debug, Clone)]
pub struct NewLayer {
    /// As stored: uncompressed, so the digest is the diff_id.
    pub descriptor: Descriptor,
    pub diff_id: Digest,
    /// The committed snapshot (the new chain id).
    pub snapshot: String,
}

/// A layer written by [`layer_from_active`]: in the store, recorded with
/// its diff_id, the active snapshot it came from left as it was.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// As stored: uncompressed, so the digest is the diff_id.
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

/// Active snapshot `key`'s changes (what `filter` keeps of them) as a
/// layer: a reproducible tar ingested into the store uncompressed (like
/// docker's local store; push compresses), recorded with its diff_id, and
/// the active snapshot committed as the chain id on its parent. No changes:
/// no layer, and the active snapshot is removed. Call with nothing
/// mounted, holding a store lease until the layer is named somewhere.
pub fn commit_layer(
    snaps: &Snapshotter,
    store: &Store,
    key: &str,
    opts: &TarOptions,
    filter: impl FnOnce(Vec<Change>) -> Vec<Change>,
) -> Result<Option<NewLayer>> {
    let parent = snaps.stat(key)?.parent;
    let Some(kept) = kept_changes(snaps, key, filter)? else {
        return Ok(None);
    };
    let blob = write_layer(store, &snaps.changes_root(key), opts, &kept)?;
    let snapshot = chain_id(parent.as_deref(), &blob.diff_id)?;
    snaps.commit(&snapshot, key)?;
    Ok(Some(NewLayer {
        descriptor: blob.descriptor,
        diff_id: blob.diff_id,
        snapshot,
    }))
}

/// [`commit_layer`] without the layer: active snapshot `key`, less what
/// `filter` leaves out, committed as `name` with no tar written and
/// nothing hashed (a build step no exported image contains yet; BuildKit
/// keeps such steps as snapshots only). [`layer_of_committed`] writes the
/// layer later, byte for byte the one [`commit_layer`] would have written.
/// No changes: false, and the active snapshot is removed. Call with
/// nothing mounted.
pub fn commit_snapshot(
    snaps: &Snapshotter,
    key: &str,
    name: &str,
    filter: impl FnOnce(Vec<Change>) -> Vec<Change>,
) -> Result<bool> {
    if kept_changes(snaps, key, filter)?.is_none() {
        return Ok(false);
    }
    snaps.commit(name, key)?;
    Ok(true)
}

/// The layer of committed snapshot `name`, one [`commit_snapshot`] made
/// (`filter` as it was then): the tar [`commit_layer`] would have written
/// for it, into the store and recorded with its diff_id. Hold a store
/// lease until the layer is named somewhere.
pub fn layer_of_committed(
    snaps: &Snapshotter,
    store: &Store,
    name: &str,
    opts: &TarOptions,
    filter: impl FnOnce(Vec<Change>) -> Vec<Change>,
) -> Result<LayerBlob> {
    let changes = filter(snaps.diff_committed(name)?);
    write_layer(store, &snaps.committed_changes_root(name), opts, &changes)
}

/// What active snapshot `key` changed, less what `filter` leaves out,
/// which also goes from the snapshot; `None` (and the snapshot removed)
/// when nothing is left.
fn kept_changes(
    snaps: &Snapshotter,
    key: &str,
    filter: impl FnOnce(Vec<Change>) -> Vec<Change>,
) -> Result<Option<Vec<Change>>> {
    let changes = snaps.diff(key)?;
    let added: Vec<std::path::PathBuf> = changes
        .iter()
        .filter(|c| c.kind == kiln_layer::ChangeKind::Added)
        .map(|c| c.path.clone())
        .collect();
    let kept = filter(changes);
    if kept.is_empty() {
        snaps.remove(key)?;
        return Ok(None);
    }
    // The committed snapshot must hold exactly parent + layer: what the
    // filter left out of the layer (a RUN --mount's file stub) goes from
    // the snapshot too, or later steps and COPY --from would see it.
    drop_left_out(&snaps.changes_root(key), &added, &kept)?;
    Ok(Some(kept))
}

/// [`commit_layer`]'s layer without the commit: active snapshot `key`
/// stays active and unchanged (a container's writable layer, which
/// `kiln commit` must not consume). No changes: no layer. It may be
/// mounted meanwhile (the layer reads its upper directory, as docker's
/// commit of a running container does); hold a store lease until the layer
/// is named somewhere.
pub fn layer_from_active(
    snaps: &Snapshotter,
    store: &Store,
    key: &str,
    opts: &TarOptions,
    filter: impl FnOnce(Vec<Change>) -> Vec<Change>,
) -> Result<Option<LayerBlob>> {
    let changes = filter(snaps.diff(key)?);
    if changes.is_empty() {
        return Ok(None);
    }
    write_layer(store, &snaps.changes_root(key), opts, &changes).map(Some)
}

/// Removes from `root` the added paths the layer leaves out (shallowest
/// first: a removed directory takes what is below it).
fn drop_left_out(
    root: &std::path::Path,
    added: &[std::path::PathBuf],
    kept: &[Change],
) -> Result<()> {
    let kept: std::collections::HashSet<&std::path::Path> =
        kept.iter().map(|c| c.path.as_path()).collect();
    let mut gone: Vec<&std::path::PathBuf> = added
        .iter()
        .filter(|p| !kept.contains(p.as_path()))
        .collect();
    gone.sort_by_key(|p| p.components().count());
    for rel in gone {
        let p = root.join(rel);
        let removed = match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
            Ok(_) => std::fs::remove_file(&p),
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove mount stub", &p)(e)),
        }
    }
    Ok(())
}

/// `changes` under `root` as a layer in the store, recorded with its
/// diff_id.
fn write_layer(
    store: &Store,
    root: &std::path::Path,
    opts: &TarOptions,
    changes: &[Change],
) -> Result<LayerBlob> {
    // The stream is hashed once, by the store's verified ingest.
    let mut blob = store.blobs().ingest()?;
    // Overlap the blob's disk writes with writing it.
    blob.set_writeback(16 << 20);
    // The hash and the blob's writes on a thread of their own, while this
    // one walks the tree (stat, open, read of every changed file).
    let pipe = kiln_layer::PipeWriter::spawn(blob).map_err(io("start writing layer from", root))?;
    let (_, pipe) = kiln_layer::write_layer_tar(root, changes, opts, pipe)
        .map_err(io("write layer from", root))?;
    let blob = pipe.finish().map_err(io("write layer from", root))?;
    // Published in the background: the fsync leaves the step's critical
    // path, and the store waits for it before anything makes the layer
    // reachable (kiln-store's `publish` module has the crash argument).
    let (digest, size) = blob.finish()?.publish()?;
    store.record_layer(
        &digest,
        &LayerInfo {
            diff_id: digest.clone(),
            uncompressed_size: size,
            content_size: None,
        },
    )?;
    Ok(LayerBlob {
        descriptor: Descriptor::new(media_types::OCI_LAYER_TAR, digest.clone(), size),
        diff_id: digest,
    })
}
