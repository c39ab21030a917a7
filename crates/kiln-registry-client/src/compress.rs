//! Push-time compression. kiln build and import keep layers as plain tar
//! (like docker's local store: fastest to write and to apply); registries
//! get them compressed, as docker pushes them. The compressors are
//! deterministic (fixed levels, block-parallel gzip whose output does not
//! depend on the thread count), so a layer always compresses to the same
//! digest; the store records that digest so a second push is a HEAD.

use std::io::BufReader;

use kiln_core::{media_types as mt, Digest};
use kiln_layer::{recompress, Compression};
use kiln_store::{PendingBlob, Store};

use crate::error::{RegistryError, Result};
use crate::manifest::Descriptor;

/// How layers go to the registry.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    /// Compression for layers stored uncompressed (gzip or zstd).
    pub compression: Compression,
    /// Also recompress layers stored with another compression.
    pub force_compression: bool,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            compression: Compression::Gzip,
            force_compression: false,
        }
    }
}

impl PushOptions {
    /// The compression the registry gets stored layer `d` in, when it is
    /// not the stored one; `None`: pushed as stored (configs, artifacts,
    /// layers already compressed).
    pub(crate) fn convert(&self, d: &Descriptor) -> Option<(Compression, Compression)> {
        let have = Compression::of_media_type(&d.media_type)?;
        let want = self.compression;
        if want == Compression::None || have == want {
            return None;
        }
        (have == Compression::None || self.force_compression).then_some((have, want))
    }
}

/// The media type of a layer of type `original` once compressed with `c`:
/// docker's own type in a docker manifest where docker has one, else OCI's.
pub(crate) fn media_type(original: &str, c: Compression) -> &'static str {
    if original.starts_with("application/vnd.docker.") && c == Compression::Gzip {
        mt::DOCKER_LAYER_GZIP
    } else {
        c.oci_media_type()
    }
}

/// Compresses the stored layer `blob` (in `from`) to `to` into an ingest
/// file that is never published: the store keeps the layer as it was, the
/// registry gets this. Blocking: run it off the async workers.
pub(crate) fn compress_layer(
    store: &Store,
    blob: &Digest,
    from: Compression,
    to: Compression,
) -> Result<PendingBlob> {
    let io = |source| RegistryError::Compress {
        digest: blob.clone(),
        source,
    };
    let file = store.blobs().open(blob)?;
    let (found, out) = recompress(
        BufReader::with_capacity(1 << 20, file),
        to,
        store.blobs().ingest()?,
    )
    .map_err(io)?;
    if found != from {
        return Err(RegistryError::Config(format!(
            "stored layer {blob} is {} but its manifest says {}: run `kiln system check`",
            found.name(),
            from.name()
        )));
    }
    Ok(out.finish()?)
}
