//! Sharing the step cache between machines (`--cache-to`, `--cache-from`),
//! as buildx does: the records of a build's steps exported as an OCI
//! artifact (to a registry, an OCI layout, or inline in the image config)
//! and imported by another build, which reuses every step whose key
//! matches and fetches only the layers it needs. The format is documented
//! in `docs/build-cache.md`.
//!
//! - `spec`: the flags' buildx CSV syntax;
//! - `format`: the metadata document and the artifact around it;
//! - `import`: imported records looked up on a local miss, layers fetched
//!   lazily through a [`CacheSource`] (the CLI's registry client, or a
//!   layout);
//! - `export`: the records of the steps this build resolved, by mode;
//! - `layout`: the artifact in the store and in an OCI layout.

mod export;
mod format;
mod import;
mod layout;
mod spec;

pub use format::{
    carried_layers, is_cache_manifest, CacheMetadata, StepRecord, CACHE_MEDIA_TYPE, INLINE_KEY,
    MAX_METADATA_BYTES,
};
pub use import::{CacheSource, ImportedCache};
pub(crate) use import::{Remote, UsedStep};
pub use layout::{open_layout, store_artifact, store_plain_layer, write_layout};
pub use spec::{CacheFrom, CacheTo, Mode};
