//! Layers as tar streams.
//!
//! - [`Compression`] and [`decompress`]: detect gzip / zstd / plain by magic
//!   bytes and read any of them as a plain tar.
//! - [`LayerWriter`]: takes an uncompressed tar stream and writes it
//!   compressed, computing the layer's diff_id (sha256 of the uncompressed
//!   tar) and uncompressed size in the same pass; the compressed digest is
//!   computed by whoever receives the bytes (the store's ingest), so no byte
//!   is hashed twice and no temporary uncompressed copy is made.
//! - [`copy_checked_tar`]: copies a tar stream byte for byte while parsing
//!   it, so malformed archives and entries that would escape the root are
//!   rejected before anything is committed.
//! - [`apply`]: a layer onto a directory, with OCI whiteouts, never
//!   writing outside it (`openat2(RESOLVE_IN_ROOT)` and `*at` calls). Its
//!   module splits by job: the options and entry loop (`apply.rs`), then
//!   under `apply/` resolution and removal inside the root (`root.rs`),
//!   one entry of each kind (`entry.rs`), whiteouts (`whiteout.rs`) and
//!   owners, modes, times and xattrs (`metadata.rs`).
//! - [`diff_trees`] / [`diff_overlay`]: the change set between a lower and
//!   an upper tree (or an overlayfs upper dir), as `docker diff` lists it;
//!   [`write_layer_tar`] writes it as a reproducible layer tar.
//! - [`PipeWriter`]: runs a writer (typically a compressor) on its own
//!   thread, so reading/hashing and compressing use both cores.

mod apply;
mod check;
mod compression;
mod diff;
mod error;
mod fsmeta;
mod measure;
mod pgzip;
mod pipe;
mod tar_writer;
mod writer;

pub use apply::{
    apply, apply_local, apply_local_linked, ApplyOptions, ApplyReport, Links, LocalFile,
    LocalFiles, LOCAL_FILE_PAX,
};
pub use check::{clean_entry_path, copy_checked_tar, TarSummary};
pub use compression::{decompress, recompress, Compression, FinishWrite};
pub use diff::{diff_overlay, diff_trees, Change, ChangeKind};
pub use error::LayerError;
pub use measure::content_size;
pub use pipe::PipeWriter;
pub use tar_writer::{write_layer_tar, TarOptions};
pub use writer::{write_layer, LayerWriter, WrittenLayer};
