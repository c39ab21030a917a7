//! `kiln build`: a Dockerfile and a context in, an image in the store out.
//!
//! The pieces, in the order a build uses them:
//!
//! - [`kiln_dockerfile`] parses and expands instructions;
//! - [`context`]: the context files minus `.dockerignore`, with content
//!   checksums behind a metadata cache;
//! - [`engine`]: the stage graph (independent stages run in parallel,
//!   stages the target does not need are skipped) and each step: metadata
//!   steps edit the config ([`meta`]), COPY/ADD plan a tar stream
//!   ([`copy`]) laid onto a snapshot (ADD of a URL first fetches the file,
//!   `download`), RUN runs in a container ([`run`], via `kiln-exec`); a
//!   step's change set becomes a layer; a FROM image missing from the store
//!   is fetched through [`BuildRequest::fetch_base`] (the CLI pulls it);
//! - every layer step has a cache key: the parent's key and the step's
//!   inputs (the expanded instruction, the environment and ARGs it sees,
//!   the checksums of the files it copies). A hit reuses the layer;
//! - [`state`]: the image config being built, with history as BuildKit
//!   writes it; timestamps kiln writes are `SOURCE_DATE_EPOCH` (or 0), so
//!   builds are reproducible by default.

pub mod archive;
pub mod context;
pub mod copy;
mod download;
pub mod engine;
pub mod epoch;
mod error;
pub mod meta;
pub mod prune;
pub mod run;
pub mod state;

pub use engine::{build, BuildRequest, BuildResult, FetchBase, Progress};
pub use error::{BuildError, Result};
