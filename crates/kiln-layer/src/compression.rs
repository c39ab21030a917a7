use std::io::{self, BufRead, Read, Write};
use std::str::FromStr;

use kiln_core::media_types;

use crate::error::LayerError;

/// How a layer is (or is to be) compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// Fixed compression levels: the output of a given setting must not vary,
/// so that layers are reproducible.
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// Detects the compression of a stream from its first bytes. bzip2 and
    /// xz are recognized only to be refused with a clear message.
    pub fn detect(head: &[u8]) -> Result<Compression, LayerError> {
        if head.starts_with(GZIP_MAGIC) {
            Ok(Compression::Gzip)
        } else if head.starts_with(ZSTD_MAGIC) {
            Ok(Compression::Zstd)
        } else if head.starts_with(BZIP2_MAGIC) {
            Err(LayerError::UnsupportedCompression("bzip2"))
        } else if head.starts_with(XZ_MAGIC) {
            Err(LayerError::UnsupportedCompression("xz"))
        } else {
            Ok(Compression::None)
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => media_types::OCI_LAYER_TAR,
            Compression::Gzip => media_types::OCI_LAYER_GZIP,
            Compression::Zstd => media_types::OCI_LAYER_ZSTD,
        }
    }

    /// Wraps `w` in this compression's encoder, using up to `threads` cores.
    /// Neither gzip's block encoder nor zstd's multithreading makes the
    /// output depend on the thread count.
    pub fn encoder<'a, W: Write + Send + 'a>(
        self,
        w: W,
        threads: u32,
    ) -> io::Result<Box<dyn FinishWrite<W> + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(Plain(w)),
            // Always the block encoder, whatever the core count: the bytes
            // must not depend on the machine.
            Compression::Gzip => Box::new(crate::pgzip::ParGzEncoder::new(
                w,
                GZIP_LEVEL,
                threads.max(1) as usize,
            )?),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(w, ZSTD_LEVEL)?;
                // Always zstd's multithreaded mode, even with one worker: its
                // output does not depend on the worker count, but differs
                // from single-threaded mode's, so a one-core machine would
                // otherwise compress a layer to another digest.
                enc.multithread(threads.max(1))?;
                Box::new(enc)
            }
        })
    }
}

impl Compression {
    /// Wraps `w` in this compression's decoder: compressed bytes written in
    /// come out plain into `w`. For measuring a layer while it streams in
    /// (pull), where there is no reader to pull from.
    pub fn decoder<'a, W: Write + Send + 'a>(
        self,
        w: W,
    ) -> io::Result<Box<dyn FinishWrite<W> + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(Plain(w)),
            Compression::Gzip => Box::new(flate2::write::MultiGzDecoder::new(w)),
            Compression::Zstd => Box::new(ZstdDecoder(zstd::stream::write::Decoder::new(w)?)),
        })
    }

    /// The compression a layer media type names; `None` for a type that
    /// is not a tar layer.
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            media_types::OCI_LAYER_TAR | media_types::DOCKER_LAYER_TAR => Some(Compression::None),
            media_types::OCI_LAYER_GZIP | media_types::DOCKER_LAYER_GZIP => Some(Compression::Gzip),
            media_types::OCI_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

struct ZstdDecoder<'a, W: Write>(zstd::stream::write::Decoder<'a, W>);

impl<W: Write> Write for ZstdDecoder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite<W> for ZstdDecoder<'_, W> {
    fn finish_into(mut self: Box<Self>) -> io::Result<W> {
        self.0.flush()?;
        Ok(self.0.into_inner())
    }
}

impl<W: Write> FinishWrite<W> for flate2::write::MultiGzDecoder<W> {
    fn finish_into(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Compression, String> {
        match s {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression {other:?}: use gzip, zstd or none"
            )),
        }
    }
}

/// A writer that must be finished to flush its trailer, giving back the
/// inner writer.
pub trait FinishWrite<W>: Write {
    fn finish_into(self: Box<Self>) -> io::Result<W>;
}

struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite<W> for Plain<W> {
    fn finish_into(self: Box<Self>) -> io::Result<W> {
        Ok(self.0)
    }
}

impl<W: Write> FinishWrite<W> for crate::pgzip::ParGzEncoder<W> {
    fn finish_into(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

impl<W: Write> FinishWrite<W> for zstd::stream::write::Encoder<'_, W> {
    fn finish_into(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

/// Reads a possibly compressed stream as plain bytes; returns what the
/// compression was.
pub fn decompress<'a, R: BufRead + Send + 'a>(
    mut r: R,
) -> Result<(Compression, Box<dyn Read + Send + 'a>), LayerError> {
    let head = r.fill_buf().map_err(LayerError::io("read input"))?;
    let compression = Compression::detect(head)?;
    let reader: Box<dyn Read + Send + 'a> = match compression {
        Compression::None => Box::new(r),
        // Multi-member gzip (pigz, concatenated files) is one stream.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(r).map_err(LayerError::io("start zstd"))?,
        ),
    };
    Ok((compression, reader))
}

/// A layer stream `r` (of any compression, detected) compressed with
/// `to` into `w`: returns the compression `r` had and `w`. The one way
/// kiln compresses a stored layer (a push, a build cache export), so one
/// layer always compresses to the same bytes and digest, on every core
/// count.
pub fn recompress<'a, R: BufRead + Send + 'a, W: Write + Send + 'a>(
    r: R,
    to: Compression,
    w: W,
) -> io::Result<(Compression, W)> {
    let (found, mut plain) = decompress(r).map_err(|e| io::Error::other(e.to_string()))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let mut enc = to.encoder(w, threads)?;
    io::copy(&mut plain, &mut enc)?;
    let mut w = enc.finish_into()?;
    w.flush()?;
    Ok((found, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Compression) {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut enc = c.encoder(Vec::new(), 2).unwrap();
        enc.write_all(&data).unwrap();
        let compressed = enc.finish_into().unwrap();
        let (detected, mut r) = decompress(&compressed[..]).unwrap();
        assert_eq!(detected, c);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        // The write-side decoder gives the same bytes back.
        let mut dec = c.decoder(Vec::new()).unwrap();
        for chunk in compressed.chunks(777) {
            dec.write_all(chunk).unwrap();
        }
        assert_eq!(dec.finish_into().unwrap(), data);
    }

    #[test]
    fn round_trips() {
        round_trip(Compression::None);
        round_trip(Compression::Gzip);
        round_trip(Compression::Zstd);
    }

    #[test]
    fn refuses_bzip2_and_xz_clearly() {
        let e = Compression::detect(b"BZh91AY&SY").unwrap_err();
        assert!(e.to_string().contains("bzip2"));
        let e = Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]).unwrap_err();
        assert!(e.to_string().contains("xz"));
    }

    #[test]
    fn output_does_not_depend_on_the_thread_count() {
        // Several zstd jobs' worth of input that compresses, but not away.
        let mut x: u32 = 1;
        let data: Vec<u8> = (0..24 << 20)
            .map(|i: u32| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if i.is_multiple_of(3) {
                    (x >> 24) as u8
                } else {
                    b'k'
                }
            })
            .collect();
        for c in [Compression::Gzip, Compression::Zstd] {
            let enc = |threads: u32| {
                let mut e = c.encoder(Vec::new(), threads).unwrap();
                e.write_all(&data).unwrap();
                e.finish_into().unwrap()
            };
            assert!(enc(1) == enc(3), "{c:?}");
        }
    }

    #[test]
    fn gzip_output_is_deterministic() {
        let enc = |data: &[u8]| {
            let mut e = Compression::Gzip.encoder(Vec::new(), 1).unwrap();
            e.write_all(data).unwrap();
            e.finish_into().unwrap()
        };
        let a = enc(b"same bytes");
        let b = enc(b"same bytes");
        assert_eq!(a, b);
        // No mtime and no file name in the header.
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[3] & 0x08, 0);
    }
}
