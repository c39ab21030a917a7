//! Trusting images, cosign-compatible and offline: key-based signatures,
//! in-toto attestations, and a policy of which images may run.
//!
//! - [`keys`]: cosign's encrypted private key file and PKIX public keys
//!   (ECDSA P-256), import of plain PEM keys;
//! - [`payload`]: the simple-signing payload, byte for byte as cosign
//!   writes it;
//! - [`dsse`]: in-toto statements in DSSE envelopes (signed over the PAE);
//! - [`layout`]: how cosign stores them (the `sha256-<hex>.sig`/`.att` tag
//!   scheme, or OCI 1.1 referrers);
//! - [`target`]: where they are read and written — the kiln store (as
//!   referrers of the image) or a registry repository — behind one trait;
//! - [`ops`]: sign, verify, attest, verify attestations, and carrying a
//!   stored image's signatures along a push;
//! - [`policy`]: a subset of containers/image's `policy.json`.
//!
//! Verification is offline: no transparency log (Rekor) and no
//! certificates (Fulcio); a signature is trusted when the given public key
//! verifies it and its claims name the image.

pub mod dsse;
mod error;
pub mod keys;
pub mod layout;
pub mod ops;
pub mod payload;
pub mod policy;
pub mod target;

pub use error::{Result, SignError};
pub use keys::{PrivateKey, PublicKey};
pub use ops::{ReferrersMode, Subject};
pub use policy::{Policy, Requirement};
pub use target::{RegistryTarget, StoreTarget, Target};
