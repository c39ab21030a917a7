//! Block-parallel gzip, deterministic for a given level and block size.
//!
//! flate2 compresses on one core, which makes gzip the slowest stage of
//! layer writing. This encoder uses pigz's scheme: the input is cut into
//! fixed-size blocks, each compressed independently as raw deflate primed
//! with the previous 32 KiB of input as its dictionary and ended with a
//! sync flush (so blocks concatenate), then one empty final block. The
//! output depends only on the input, the level and the block size — never
//! on the number of threads — so every machine writes the same bytes.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress};

pub(crate) const BLOCK_SIZE: usize = 1 << 20;
const WINDOW: usize = 32 * 1024;
/// An empty final fixed-Huffman deflate block: ends the stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];
/// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

pub(crate) struct ParGzEncoder<W: Write> {
    out: W,
    level: u32,
    threads: usize,
    block: Vec<u8>,
    /// The last WINDOW bytes before the current block.
    dict: Vec<u8>,
    in_flight: VecDeque<JoinHandle<io::Result<Vec<u8>>>>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> ParGzEncoder<W> {
    pub(crate) fn new(mut out: W, level: u32, threads: usize) -> io::Result<ParGzEncoder<W>> {
        out.write_all(&HEADER)?;
        Ok(ParGzEncoder {
            out,
            level,
            threads: threads.max(1),
            block: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            in_flight: VecDeque::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
        })
    }

    fn dispatch(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        let dict = std::mem::take(&mut self.dict);
        let tail = block.len().saturating_sub(WINDOW);
        self.dict = block[tail..].to_vec();
        let level = self.level;
        while self.in_flight.len() >= self.threads {
            self.write_oldest()?;
        }
        self.in_flight.push_back(std::thread::spawn(move || {
            compress_block(&block, &dict, level)
        }));
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(h) = self.in_flight.pop_front() {
            let bytes = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("gzip worker panicked")))?;
            self.out.write_all(&bytes)?;
        }
        Ok(())
    }

    /// Writes the remaining blocks and the gzip trailer; returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch()?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        self.out.write_all(&FINAL_BLOCK)?;
        self.out
            .write_all(&self.crc.clone().finalize().to_le_bytes())?;
        self.out.write_all(&(self.len as u32).to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn compress_block(block: &[u8], dict: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(block.len() / 2 + 1024);
    loop {
        if out.len() == out.capacity() {
            out.reserve(64 * 1024);
        }
        let done = c.total_in() as usize;
        c.compress_vec(&block[done..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // A sync flush is complete once all input is in and output space
        // was left over.
        if c.total_in() as usize == block.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&data[..n]);
        self.crc.update(&data[..n]);
        self.len += n as u64;
        if self.block.len() == BLOCK_SIZE {
            self.dispatch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn data(n: usize) -> Vec<u8> {
        // Compressible but not trivial: words with a drifting pattern.
        (0..n)
            .map(|i| b"kiln layers "[i % 12].wrapping_add((i / 4096) as u8 % 3))
            .collect()
    }

    fn gz(d: &[u8], threads: usize) -> Vec<u8> {
        let mut e = ParGzEncoder::new(Vec::new(), 6, threads).unwrap();
        for piece in d.chunks(100_003) {
            e.write_all(piece).unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn decodes_with_standard_gzip_and_is_thread_count_independent() {
        for n in [0, 1, 5000, BLOCK_SIZE, 3 * BLOCK_SIZE + 12345] {
            let d = data(n);
            let one = gz(&d, 1);
            let four = gz(&d, 4);
            assert_eq!(one, four, "{n} bytes: output depends on thread count");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, d, "{n} bytes round trip");
        }
    }

    #[test]
    fn compresses_about_as_well_as_single_stream_gzip() {
        let d = data(4 * BLOCK_SIZE);
        let par = gz(&d, 2).len();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&d).unwrap();
        let single = e.finish().unwrap().len();
        assert!(
            par as f64 <= single as f64 * 1.02 + 64.0,
            "{par} vs {single}"
        );
    }
}
