use std::io::{self, Write};

use kiln_core::{Digest, Sha256Writer};

use crate::compression::{Compression, FinishWrite};
use crate::pipe::PipeWriter;

/// What a finished layer is, apart from its compressed digest (which the
/// receiving blob writer computes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenLayer {
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    pub compression: Compression,
}

type Encoder<W> = Box<dyn FinishWrite<W> + Send>;

enum Sink<W: Write + Send + 'static> {
    /// Uncompressed: hashing and writing on this thread.
    Direct(W),
    /// Compressed on a worker thread while this thread hashes.
    Piped(PipeWriter<Encoder<W>>),
}

/// Writes an uncompressed tar stream as a compressed layer into `W`,
/// computing the diff_id on the way.
pub struct LayerWriter<W: Write + Send + 'static> {
    hasher: Sha256Writer<SinkWriter<W>>,
    compression: Compression,
}

struct SinkWriter<W: Write + Send + 'static>(Sink<W>);

impl<W: Write + Send + 'static> Write for SinkWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Sink::Direct(w) => w.write(buf),
            Sink::Piped(p) => p.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Sink::Direct(w) => w.flush(),
            Sink::Piped(p) => p.flush(),
        }
    }
}

impl<W: Write + Send + 'static> LayerWriter<W> {
    /// `threads` is the compressor's own thread count (zstd); the pipe adds
    /// one more stage.
    pub fn new(out: W, compression: Compression, threads: u32) -> io::Result<LayerWriter<W>> {
        let sink = match compression {
            Compression::None => Sink::Direct(out),
            c => Sink::Piped(PipeWriter::spawn(c.encoder(out, threads)?)?),
        };
        Ok(LayerWriter {
            hasher: Sha256Writer::new(SinkWriter(sink)),
            compression,
        })
    }

    /// Finishes compression; returns the layer facts and the inner writer.
    pub fn finish(self) -> io::Result<(WrittenLayer, W)> {
        let (diff_id, uncompressed_size, sink) = self.hasher.finish();
        let out = match sink.0 {
            Sink::Direct(w) => w,
            Sink::Piped(p) => p.finish()?.finish_into()?,
        };
        Ok((
            WrittenLayer {
                diff_id,
                uncompressed_size,
                compression: self.compression,
            },
            out,
        ))
    }
}

impl<W: Write + Send + 'static> Write for LayerWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.hasher.flush()
    }
}

/// Writes the layer for `changes` (content from `upper`) compressed into
/// `out`, computing its diff_id on the way.
pub fn write_layer<W: Write + Send + 'static>(
    upper: &std::path::Path,
    changes: &[crate::Change],
    opts: &crate::TarOptions,
    compression: Compression,
    threads: u32,
    out: W,
) -> io::Result<(WrittenLayer, W)> {
    let mut layer = LayerWriter::new(out, compression, threads)?;
    crate::write_layer_tar(upper, changes, opts, &mut layer)?;
    layer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::decompress;
    use std::io::Read;

    #[test]
    fn diff_id_is_digest_of_uncompressed_bytes() {
        let data = b"pretend this is a tar stream".repeat(1000);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut w = LayerWriter::new(Vec::new(), c, 2).unwrap();
            w.write_all(&data).unwrap();
            let (layer, out) = w.finish().unwrap();
            assert_eq!(layer.diff_id, Digest::sha256(&data));
            assert_eq!(layer.uncompressed_size, data.len() as u64);
            let (_, mut r) = decompress(&out[..]).unwrap();
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, data);
        }
    }
}
