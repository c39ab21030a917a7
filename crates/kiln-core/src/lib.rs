//! The shared vocabulary of kiln.
//!
//! Every other kiln crate speaks in these types, so that no crate needs
//! another crate's internals to describe an image:
//!
//! - [`ImageRef`]: an image reference parsed and normalized by docker's rules
//!   (`nginx` → `docker.io/library/nginx:latest`).
//! - [`Digest`]: a content digest (`sha256:<hex>`), and [`Sha256Writer`] to
//!   compute one while bytes stream past.
//! - [`Platform`]: os/architecture/variant, and the host's.
//! - [`ErrorKind`]: the coarse classes every crate's error maps to; the binary
//!   turns them into exit codes.
//! - [`media_types`]: the OCI and Docker media type strings.
//! - [`rfc3339`] / [`parse_rfc3339`]: timestamps as image configs hold them.
//!
//! - [`image`]: the one OCI model (descriptors, manifests, indexes, raw
//!   manifests, the typed image config, diff/chain ids, the graph walk).
//! - [`content`]: the content-store traits (read blobs, ingest, tags) that
//!   the filesystem store, OCI layouts and registries implement.
//!
//! `oci-spec` is re-exported as [`oci`] for the runtime spec's users; image
//! documents go through [`image`].

pub mod content;
mod digest;
mod error;
pub mod gofmt;
pub mod image;
pub mod media_types;
pub mod pep503;
mod platform;
mod reference;
pub mod signal;
mod time;

pub use digest::{Algorithm, Digest, DigestError, Sha256Writer};
pub use error::{error_chain, ErrorKind};
pub use oci_spec::image as oci;
pub use platform::Platform;
pub use reference::{
    valid_repository_name, ImageRef, ReferenceError, DEFAULT_REGISTRY, DEFAULT_TAG,
};
pub use time::{parse_go_duration, parse_rfc3339, rfc3339};
