//! Talking to OCI registries (the distribution spec), for `kiln pull`,
//! `push`, `login` and `copy`.
//!
//! - [`Client`]: one HTTP connection pool, auth and retries. Auth follows
//!   the registry's `WWW-Authenticate` challenge: basic, or bearer tokens
//!   from the realm it names, cached per scope set and renewed on 401
//!   ([`auth`]). Credentials come from docker's `config.json` and its
//!   credential helpers ([`credentials`]). Local registries (`localhost`,
//!   `127.0.0.1`) and those marked insecure are spoken to over plain HTTP;
//!   the rest over TLS with the system's roots plus any extra CA.
//! - The API calls ([`api`], one file per job under `api/`): manifests
//!   capped in size and verified against their digest (`manifests.rs`);
//!   tag lists (`tags.rs`); blobs streamed into the store's ingest with
//!   digest and size checked on every byte, resumed with Range requests
//!   after a break (`blob_fetch.rs`); uploads monolithic, streamed or
//!   chunked, and cross-repository mounts (`upload.rs`).
//! - [`pull()`] and [`push()`]: whole images, blobs in parallel, skipping
//!   what the other side already has; nothing is tagged until everything
//!   it names is stored and verified. Push compresses layers stored plain
//!   ([`PushOptions`], gzip by default, deterministic) and the store
//!   remembers each compressed digest; pull decodes each layer as it
//!   streams in to learn its diff_id (checked against the config) and
//!   uncompressed size.
//!
//! Registries are hostile input: every size and digest they send is
//! checked, and errors say which registry, repository and blob failed.
//!
//! The transfer code is async (tokio + reqwest); callers run it on a
//! multi-threaded runtime.

pub mod api;
mod attest_push;
pub mod auth;
mod client;
mod compress;
pub mod credentials;
mod error;
pub mod manifest;
mod measure;
mod progress;
mod pull;
mod push;

pub use client::{Client, ClientOptions, Repo, USER_AGENT};
pub use compress::PushOptions;
pub use credentials::{Credentials, DockerConfig};
pub use error::{RegistryError, Result};
pub use progress::{BlobEvent, Progress, Silent};
pub use pull::{pull, PullOptions, Pulled};
pub use push::{push, Pushed};
