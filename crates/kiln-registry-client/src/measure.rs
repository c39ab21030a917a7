//! Measuring a layer while it downloads: the compressed bytes also go
//! through a decoder into a hasher, giving the layer's diff_id and
//! uncompressed size (what `images` reports) without reading the blob a
//! second time.

use std::io::{self, Write};

use kiln_core::{Digest, Sha256Writer};
use kiln_layer::{Compression, FinishWrite};

type Decoder = Box<dyn FinishWrite<Sha256Writer<io::Sink>> + Send>;

pub(crate) struct LayerMeasure {
    compression: Compression,
    /// `None` once the content failed to decode: the blob is still
    /// verified by its digest, it just goes unmeasured.
    decoder: Option<Decoder>,
}

impl LayerMeasure {
    pub(crate) fn new(compression: Compression) -> LayerMeasure {
        LayerMeasure {
            compression,
            decoder: compression.decoder(Sha256Writer::new(io::sink())).ok(),
        }
    }

    /// Starts over (the download restarted from byte 0).
    pub(crate) fn reset(&mut self) {
        *self = LayerMeasure::new(self.compression);
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if let Some(d) = &mut self.decoder {
            if let Err(e) = d.write_all(bytes) {
                tracing::debug!("layer does not decode as {}: {e}", self.compression.name());
                self.decoder = None;
            }
        }
    }

    /// The diff_id and uncompressed size, if the whole content decoded.
    pub(crate) fn finish(self) -> Option<(Digest, u64)> {
        let (digest, size, _) = self.decoder?.finish_into().ok()?.finish();
        Some((digest, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_compressed_content() {
        let data = b"layer bytes ".repeat(10_000);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut enc = c.encoder(Vec::new(), 1).unwrap();
            enc.write_all(&data).unwrap();
            let blob = enc.finish_into().unwrap();
            let mut m = LayerMeasure::new(c);
            m.feed(b"garbage that a restart throws away");
            m.reset();
            for chunk in blob.chunks(1000) {
                m.feed(chunk);
            }
            assert_eq!(m.finish(), Some((Digest::sha256(&data), data.len() as u64)));
        }
    }

    #[test]
    fn undecodable_content_is_unmeasured() {
        let mut m = LayerMeasure::new(Compression::Gzip);
        m.feed(b"not gzip at all");
        assert_eq!(m.finish(), None);
    }
}
