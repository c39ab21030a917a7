//! Images in and out of the store as files.
//!
//! - [`import`]: a root filesystem tarball (plain, gzip or zstd) becomes a
//!   one-layer image, like `docker import`; `--change` instructions adjust
//!   its config ([`apply_changes`], the one config editor of
//!   `kiln_dockerfile::config`).
//! - [`save`]: images to one tar archive that is at once an OCI image layout
//!   (for skopeo `oci-archive:`) and a docker archive (`manifest.json` and
//!   `repositories`, for `docker load` and skopeo `docker-archive:`).
//! - [`save_index`]: a multi-platform image (an index) as an OCI layout
//!   tar whose `index.json` names the index (buildx's `type=oci` output).
//! - [`load`]: the reverse, accepting archives from `docker save` (legacy
//!   and OCI layouts), skopeo and kiln itself.
//!
//! Every byte taken from an archive is verified (blob digests, layer
//! diff_ids against the config) before anything is committed, and all
//! names are set in one index update at the end, so a bad archive leaves
//! the store exactly as it was.

mod changes;
mod error;
mod import;
mod load;
mod save;
mod save_index;
mod tar_out;

pub use changes::apply_changes;
pub use error::ArchiveError;
pub use import::{import, ImportOptions, Imported};
pub use load::{load, Loaded};
pub use save::{save, SaveItem};
pub use save_index::save_index;

/// Timestamps kiln writes into images: `epoch` (the caller's
/// `SOURCE_DATE_EPOCH`, for reproducible output) when given, else now;
/// RFC 3339 in UTC as docker writes them.
pub fn created_timestamp(epoch: Option<u64>) -> String {
    let now = epoch
        .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap_or_else(std::time::SystemTime::now);
    kiln_core::rfc3339(now)
}
