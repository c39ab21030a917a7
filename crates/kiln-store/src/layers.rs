//! Per-layer facts kept beside the blobs: the diff_id (digest of the
//! uncompressed tar) and uncompressed size of a layer blob, known when kiln
//! writes or verifies a layer and costly to recompute (a full
//! decompression), so recorded then; and docker's size of the layer (what
//! it holds, `kiln_layer::content_size`), measured the first time it is
//! asked for and recorded with them. A missing record is not an error:
//! callers fall back to the blob itself.

use std::fs;
use std::path::PathBuf;

use kiln_core::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::Store;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    /// docker's size of the layer (files and link targets, no tar
    /// headers), once measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_size: Option<u64>,
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

    /// A layer's size as docker shows it (`images`, `history`, `system
    /// df`): what the layer holds, measured once by reading the blob
    /// (decompressed) and recorded; a blob that is no readable tar counts
    /// its uncompressed bytes when known, else its stored bytes.
    pub fn layer_size(&self, blob: &Digest) -> Result<u64> {
        self.layer_size_with(blob, self.layer_info(blob))
    }

    /// [`layer_size`](Store::layer_size) for a caller that has read the
    /// layer's facts already.
    pub(crate) fn layer_size_with(&self, blob: &Digest, info: Option<LayerInfo>) -> Result<u64> {
        if let Some(size) = info.as_ref().and_then(|i| i.content_size) {
            return Ok(size);
        }
        let measured = self
            .blobs()
            .open(blob)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                let r = std::io::BufReader::with_capacity(1 << 20, f);
                let (_, plain) = kiln_layer::decompress(r).map_err(|e| e.to_string())?;
                kiln_layer::content_size(plain).map_err(|e| e.to_string())
            });
        match measured {
            Ok(size) => {
                if let Some(mut info) = info {
                    info.content_size = Some(size);
                    // Advisory: a lost record is measured again.
                    let _ = self.record_layer(blob, &info);
                }
                Ok(size)
            }
            Err(e) => {
                tracing::debug!("measuring layer {blob}: {e}");
                match info {
                    Some(info) => Ok(info.uncompressed_size),
                    None => self.blobs().size(blob),
                }
            }
        }
    }

    pub(crate) fn forget_layer(&self, blob: &Digest) {
        let _ = fs::remove_file(self.layer_info_path(blob));
    }
}
