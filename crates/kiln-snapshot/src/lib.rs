//! Snapshots: the root filesystems build steps and containers run in.
//!
//! A *committed* snapshot is immutable and named by the caller (the build
//! uses layer chain ids, so the same stack of layers is unpacked once and
//! shared by every image and build that has it). An *active* snapshot is a
//! writable layer over a committed parent; after use it is diffed against
//! its parent (the change set becomes a layer) and committed or removed.
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
//! Layout under the store root: `snapshots/<id>/{fs,parent}` committed,
//! `snapshots/active/<n>/` in use, `snapshots/empty/` (the lower of a
//! snapshot without parent).

mod error;
mod mount;
mod snapshotter;

pub use error::{Result, SnapshotError};
pub use mount::Mounted;
pub use snapshotter::{copy_tree, Active, Backend, Snapshotter};
