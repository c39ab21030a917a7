//! A writer that hands its bytes to another thread.
//!
//! Layer writing is two CPU-heavy stages in a row: hashing the uncompressed
//! tar and compressing it. Putting the compressor (and everything after it)
//! on its own thread lets the two stages overlap on two cores.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

const CHUNK: usize = 256 * 1024;
/// Chunks in flight: enough to absorb jitter, small enough to bound memory.
const DEPTH: usize = 8;

pub struct PipeWriter<W: Write + Send + 'static> {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    worker: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> PipeWriter<W> {
    pub fn spawn(mut inner: W) -> io::Result<PipeWriter<W>> {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let worker = std::thread::Builder::new()
            .name("kiln-pipe".into())
            .spawn(move || {
                for chunk in rx {
                    inner.write_all(&chunk)?;
                }
                inner.flush()?;
                Ok(inner)
            })?;
        Ok(PipeWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk).is_ok());
        if sent == Some(true) {
            Ok(())
        } else {
            // The worker stopped: its error is the real one.
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("pipe worker stopped")))
        }
    }

    fn join(&mut self) -> io::Result<W> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("pipe worker panicked"))),
            None => Err(io::Error::other("pipe writer already finished")),
        }
    }

    /// Flushes everything through the worker and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.send()?;
        self.join()
    }
}

impl<W: Write + Send + 'static> Write for PipeWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Data is flushed by `finish`; an intermediate flush would only
        // fragment chunks.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_every_byte_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut p = PipeWriter::spawn(Vec::new()).unwrap();
        for piece in data.chunks(7919) {
            p.write_all(piece).unwrap();
        }
        assert_eq!(p.finish().unwrap(), data);
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reports_the_workers_error() {
        let mut p = PipeWriter::spawn(Failing).unwrap();
        let data = vec![0u8; CHUNK * (DEPTH + 4)];
        let err = p.write_all(&data).and_then(|_| p.finish().map(|_| ()));
        assert!(err.unwrap_err().to_string().contains("disk full"));
    }
}
