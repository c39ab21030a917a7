//! `kiln build`: a Dockerfile and a context in, an image in the store out.
//!
//! The pieces, in the order a build uses them (modules are private unless
//! the binary uses them):
//!
//! - [`kiln_dockerfile`] parses and expands instructions;
//! - `engine`: [`build`] and its [`BuildRequest`]; the engine every part
//!   shares, and a stage's steps in order;
//! - `context`: the context files minus `.dockerignore`, with content
//!   checksums behind a metadata cache;
//! - `graph`: the target stage and the stages it needs (others are
//!   skipped), every instruction of them checked before any step runs;
//! - `schedule`: each stage on its own thread as soon as the stages it
//!   needs are done;
//! - `platform`: each stage's platform (`FROM --platform`, else the
//!   target's) and the QEMU check for foreign RUN steps, before any step;
//!   `once`: a step key runs once at a time in the process, so parallel
//!   builds of several platforms share a platform-independent stage;
//! - `source`: where a stage starts (FROM scratch, a stage, or an image
//!   from the store, fetched through [`BuildRequest::fetch_base`] when
//!   missing or on `--pull`) and what `--from` names; layers unpacked into
//!   snapshots;
//! - `step`: one module per kind of step, each planning its cache key and
//!   history line before it runs: `step::run` (RUN in a container via
//!   `kiln-exec`; `--mount`s resolved by `run`), `step::copy` (COPY/ADD:
//!   the plan from `copy`, URLs fetched by `download`, archives unpacked by
//!   [`archive`]), `step::workdir`, `step::meta` (config-only
//!   instructions, applied by `meta`), with paths inside the image
//!   resolved by `paths`; a step's change set minus mountpoints
//!   (`mountpoints`) becomes a layer;
//! - `cache`: the cache key of each kind of step (the parent's key and
//!   what the step reads: the expanded instruction, the environment and
//!   ARGs it sees, the checksums of the files it copies) and the record a
//!   key names; a hit reuses the layer. [`prune`] reads the same records;
//! - [`cache_io`]: the step cache shared between machines (`--cache-to`,
//!   `--cache-from`): an OCI artifact of step records, imported records
//!   used on a local miss with their layers fetched only when needed;
//! - `state`: the image config being built, with history as BuildKit
//!   writes it; timestamps kiln writes are `SOURCE_DATE_EPOCH` (or 0, see
//!   [`epoch`]), so builds are reproducible by default;
//! - `finish`: labels and the image's timestamp, then the image into the
//!   store under its tags;
//! - [`multi`]: several target platforms, one build each in parallel,
//!   joined in an image index under the tags, with each platform's
//!   [`attestation`]s (SBOM, provenance) in it as BuildKit lists them.

pub mod archive;
pub mod attestation;
mod cache;
pub mod cache_io;
mod context;
mod copy;
mod download;
mod engine;
pub mod epoch;
mod error;
pub mod export;
mod finish;
mod graph;
mod meta;
pub mod multi;
mod once;
mod paths;
mod platform;
pub mod prune;
mod run;
mod schedule;
mod source;
mod state;
mod step;

pub use engine::{build, BuildRequest, BuildResult, FetchBase, Progress};
pub use error::{BuildError, Result};
/// The snapshotter choice of [`BuildRequest::backend`].
pub use kiln_snapshot::Backend;
