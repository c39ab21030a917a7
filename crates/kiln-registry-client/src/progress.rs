//! Progress reporting: the transfer code says what happens to each blob;
//! the CLI draws bars on a terminal or prints docker-style lines.

use kiln_core::Digest;

/// What happened to one blob.
#[derive(Debug, Clone, Copy)]
pub enum BlobEvent<'a> {
    /// A transfer of `total` bytes starts.
    Start { total: u64 },
    /// `done` bytes moved so far (may go back to 0 on a restart).
    Bytes { done: u64 },
    /// Nothing to move: the other side has it.
    AlreadyExists,
    /// Finished, with docker's word for how ("Pull complete", "Pushed",
    /// "Layer already exists").
    Done(&'static str),
    /// Mounted from another repository (its path) of the same registry.
    Mounted { from: &'a str },
}

pub trait Progress: Sync {
    fn blob(&self, digest: &Digest, event: BlobEvent<'_>);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn blob(&self, _: &Digest, _: BlobEvent<'_>) {}
}
