//! Where blobs came from: the registry repositories (`host/path`) a blob
//! was pulled from or pushed to. A push to another repository of the same
//! registry uses this to mount the blob instead of uploading it again
//! (docker keeps the same record in its distribution metadata). Advisory
//! only: a stale entry costs one failed mount attempt.

use std::fs;
use std::path::PathBuf;

use kiln_core::Digest;

use crate::error::Result;
use crate::Store;

/// At most this many repositories are remembered per blob.
const MAX_SOURCES: usize = 16;

impl Store {
    fn sources_path(&self, blob: &Digest) -> PathBuf {
        self.root()
            .join("metadata/sources")
            .join(blob.algorithm().as_str())
            .join(blob.hex())
    }

    /// Repositories known to hold `blob`, most recent first.
    pub fn blob_sources(&self, blob: &Digest) -> Vec<String> {
        fs::read_to_string(self.sources_path(blob))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Records that `repository` (`host/path`) holds `blob`.
    pub fn record_blob_source(&self, blob: &Digest, repository: &str) -> Result<()> {
        let mut list = self.blob_sources(blob);
        if list.first().map(String::as_str) == Some(repository) {
            return Ok(());
        }
        list.retain(|r| r != repository);
        list.insert(0, repository.to_string());
        list.truncate(MAX_SOURCES);
        // A temporary name per process was not enough: the parallel
        // platform builds of one `kiln build` pull the same base at once.
        crate::pushed::write_atomically(
            self.sources_path(blob),
            (list.join("\n") + "\n").as_bytes(),
        )
    }

    pub(crate) fn forget_sources(&self, blob: &Digest) {
        let _ = fs::remove_file(self.sources_path(blob));
    }
}
