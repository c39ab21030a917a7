//! Per-layer facts kept beside the blobs: the diff_id (digest of the
//! uncompressed tar) and uncompressed size of a layer blob. Both are known
//! when kiln writes or verifies a layer, and costly to recompute (a full
//! decompression), so they are recorded then. A missing record is not an
//! error: callers fall back to the blob itself.

use std::fs;
use std::path::PathBuf;

use kiln_core::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::Store;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    pub uncompressed_size: u64,
}

impl Store {
    fn layer_info_path(&self, blob: &Digest) -> PathBuf {
        self.root()
            .join("metadata/layers")
            .join(blob.algorithm().as_str())
            .join(blob.hex())
    }

    pub fn record_layer(&self, blob: &Digest, info: &LayerInfo) -> Result<()> {
        let bytes = serde_json::to_vec(info)
            .map_err(std::io::Error::other)
            .ctx("encode", self.layer_info_path(blob))?;
        crate::pushed::write_atomically(self.layer_info_path(blob), &bytes)
    }

    pub fn layer_info(&self, blob: &Digest) -> Option<LayerInfo> {
        let bytes = fs::read(self.layer_info_path(blob)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Uncompressed size of a layer blob: the recorded fact, else the blob's
    /// own size (exact for uncompressed layers, an underestimate otherwise).
    pub fn layer_size(&self, blob: &Digest) -> Result<u64> {
        match self.layer_info(blob) {
            Some(info) => Ok(info.uncompressed_size),
            None => self.blobs().size(blob),
        }
    }

    pub(crate) fn forget_layer(&self, blob: &Digest) {
        let _ = fs::remove_file(self.layer_info_path(blob));
    }
}
