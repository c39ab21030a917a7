//! Snapshots: the root filesystems build steps and containers run in, to
//! containerd's snapshotter contract.
//!
//! A *committed* snapshot is immutable and named (images' layers are
//! named by chain id, so one stack of layers is unpacked once and shared
//! by every image and build that has it). An *active* snapshot is a
//! writable layer over a committed parent, by key: [`Snapshotter::prepare`]
//! makes it and returns its [`Mount`]s as data (the caller mounts them;
//! [`mount`] does it for callers that want a directory), and it lives,
//! across processes, until [`Snapshotter::commit`] makes it a committed
//! snapshot or [`Snapshotter::remove`] removes it. A *view* is a
//! read-only active snapshot. [`Snapshotter::usage`], `stat` and `walk`
//! read them.
//!
//! Nothing in use is removed: a committed snapshot with a child, an active
//! snapshot or a view on it, or held by a live lease stays, under the
//! `snapshots/lock` flock (shared while snapshots are made and held,
//! exclusive while removed). A lease ([`Snapshotter::leased`]) is a file
//! its process keeps locked: it owns that process's active snapshots (a
//! prune that finds the lock free removes them: the owner died) and holds
//! what the process unpacked and committed. [`Snapshotter::prune`] removes
//! the rest of what the caller does not keep.
//!
//! Two backends behind one [`Snapshotter`]:
//!
//! - [`Backend::Overlay`]: each committed snapshot holds only its own
//!   layer, unpacked in overlayfs format (whiteout devices, opaque
//!   xattrs); an active snapshot is an overlay mount with the parent chain
//!   as lower directories and a fresh upper. Preparing is O(1).
//! - [`Backend::Native`]: for file systems without overlay support; each
//!   committed snapshot is a full tree and preparing copies the parent.
//!
//! [`layers`] joins snapshots to the store: unpack an image's layers,
//! commit an active snapshot as a layer (or write its layer and leave it
//! active: `kiln commit` of a container).
//!
//! Layout under the store root, `snapshots/`:
//!
//! - `backend`: which backend made them; `lock`: the lock above;
//! - `<name>/fs`, `<name>/parent`: committed snapshots;
//! - `active/<key>/info` (`kind=active|view`, `parent=`, `owner=`) with
//!   `upper/` and `work/` (overlay) or `fs/` (native) for an active one;
//! - `leases/<id>`: one per owner, locked by it, the names it holds;
//! - `empty/` (the lower of a snapshot without parent), `tmp/` (staging,
//!   renamed into place), `trash/` (discarded trees, deleted
//!   after the command by [`empty_trash`], off its critical path).
//!
//! Modules, one job each:
//!
//! - `snapshotter`: the [`Snapshotter`] type, opening a store's
//!   snapshots, names and parent chains; under it `active` (prepare,
//!   view, mounts, commit, remove, diff), `unpack` (making committed
//!   snapshots), `lease` (references, leases, the lock), `prune` (GC),
//!   `inspect` (stat, walk, list, usage) and `trees` ([`copy_tree`], the
//!   trash);
//! - [`layers`]: unpacking and committing layers through the store;
//! - `mount`: [`Mount`] as data and [`mount`] to mount it;
//! - `error`: [`SnapshotError`].

mod error;
pub mod layers;
mod mount;
mod snapshotter;

pub use error::{Result, SnapshotError};
pub use layers::{
    chain_id, chain_ids, commit_layer, commit_snapshot, layer_from_active, layer_of_committed,
    unpack_layers, LayerBlob, NewLayer,
};
pub use mount::{mount, Mount, Mounted};
pub use snapshotter::{
    copy_tree, empty_trash, trash_pending, Backend, Info, Kind, PruneReport, Snapshotter, Usage,
};
