//! `docker://REF`: an image read from a registry without importing it.
//!
//! The manifest (the host platform's, for an index) and the config are
//! fetched into memory; each layer is streamed: the client's blob download
//! (auth, retries, size and digest checks) writes into a pipe whose other
//! end the layer reader consumes, so nothing reaches the disk. The digest
//! is checked when the download ends; a mismatch fails the reader. A
//! download the client would resume from the middle cannot restart a
//! stream already consumed, so that case is an error naming `kiln pull`.

use std::io::{Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use kiln_core::content::{ContentError, ContentWriter, Ingester};
use kiln_core::image::ImageConfig;
use kiln_core::{Digest, ErrorKind, ImageRef, Platform, Sha256Writer};
use kiln_registry_client::{Client, Repo};

use crate::error::{AnalyzeError, Result};
use crate::source::{Fetch, ImageSource, LayerBytes, LayerSource};

type Chunk = std::io::Result<Vec<u8>>;

/// Chunks in flight between the download and the reader.
const PIPE_DEPTH: usize = 16;

/// Hands out one writer into the pipe.
struct PipeIngester {
    tx: Mutex<Option<SyncSender<Chunk>>>,
}

struct PipeWriter {
    tx: SyncSender<Chunk>,
    hash: Sha256Writer<std::io::Sink>,
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hash.write_all(buf)?;
        self.tx
            .send(Ok(buf.to_vec()))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "reader gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ContentWriter for PipeWriter {
    fn offset(&self) -> u64 {
        self.hash.len()
    }

    fn commit(
        self: Box<Self>,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> std::result::Result<Digest, ContentError> {
        let PipeWriter { tx, hash } = *self;
        let (actual, len, _) = hash.finish();
        let bad = expected.is_some_and(|e| *e != actual) || size.is_some_and(|s| s != len);
        if bad {
            let _ = tx.send(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the registry sent content with digest {actual} ({len} bytes)"),
            )));
            return Err(ContentError::DigestMismatch {
                expected: expected.cloned().unwrap_or_else(|| actual.clone()),
                actual,
                actual_size: len,
            });
        }
        Ok(actual)
    }
}

impl Ingester for PipeIngester {
    fn writer(
        &self,
        _name: Option<&str>,
    ) -> std::result::Result<Box<dyn ContentWriter>, ContentError> {
        let tx = self.tx.lock().ok().and_then(|mut t| t.take()).ok_or_else(|| {
            ContentError::other(
                ErrorKind::Io,
                "the layer download was interrupted and cannot restart a stream; run `kiln pull` and analyse the stored image",
            )
        })?;
        Ok(Box::new(PipeWriter {
            tx,
            hash: Sha256Writer::new(std::io::sink()),
        }))
    }
}

struct PipeReader {
    rx: Receiver<Chunk>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn registry_error(e: kiln_registry_client::RegistryError) -> AnalyzeError {
    AnalyzeError::Registry(Box::new(e))
}

/// Finds `reference` on its registry; layers are streamed when read.
pub fn open_registry(client: Client, reference: &str) -> Result<ImageSource> {
    let r: ImageRef = reference.parse().map_err(|e| {
        AnalyzeError::Usage(format!("docker://{reference}: not an image reference: {e}"))
    })?;
    let repo = Repo::of(&r);
    let tag = r
        .digest()
        .map(ToString::to_string)
        .unwrap_or_else(|| r.tag().unwrap_or("latest").to_string());
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(AnalyzeError::layer)?,
    );
    let client = Arc::new(client);
    let (manifest, config_bytes) = runtime.block_on(async {
        let mut raw = client
            .get_manifest(&repo, &tag)
            .await
            .map_err(registry_error)?;
        if raw.is_index() {
            let index = raw
                .index(reference)
                .map_err(|e| AnalyzeError::Invalid(e.to_string()))?;
            let d = kiln_registry_client::manifest::select_platform(
                &index,
                &Platform::host(),
                reference,
            )
            .map_err(registry_error)?;
            raw = client
                .get_manifest(&repo, &d.digest.to_string())
                .await
                .map_err(registry_error)?;
        }
        let manifest = raw
            .image(reference)
            .map_err(|e| AnalyzeError::Invalid(e.to_string()))?;
        // Configs are small: read into memory, capped and verified.
        let bytes = client
            .read_blob(
                &repo,
                &manifest.config.digest,
                kiln_registry_client::manifest::MAX_CONFIG_BYTES,
            )
            .await
            .map_err(registry_error)?;
        Ok::<_, AnalyzeError>((manifest, bytes))
    })?;
    let config = ImageConfig::from_slice(&config_bytes)
        .map_err(|e| AnalyzeError::Invalid(format!("{reference}: image config: {e}")))?;
    let layers = manifest
        .layers
        .iter()
        .map(|l| {
            let (client, runtime, repo) = (client.clone(), runtime.clone(), repo.clone());
            let (digest, size) = (l.digest.clone(), l.size);
            let fetch: Fetch = Arc::new(move || {
                let (tx, rx) = sync_channel::<Chunk>(PIPE_DEPTH);
                let errors = tx.clone();
                let ingester = PipeIngester {
                    tx: Mutex::new(Some(tx)),
                };
                let (client, repo, digest) = (client.clone(), repo.clone(), digest.clone());
                // The download future borrows the ingester (not Send): one
                // thread drives it on the shared runtime.
                let runtime = runtime.clone();
                std::thread::spawn(move || {
                    let r = runtime.block_on(client.fetch_blob(
                        &repo,
                        &digest,
                        size,
                        &ingester,
                        None,
                        &|_| {},
                    ));
                    drop(ingester);
                    if let Err(e) = r {
                        let _ = errors.send(Err(std::io::Error::other(kiln_core::error_chain(&e))));
                    }
                });
                Ok(Box::new(PipeReader {
                    rx,
                    chunk: Vec::new(),
                    pos: 0,
                }) as Box<dyn Read + Send>)
            });
            LayerSource {
                digest: Some(l.digest.clone()),
                archive_name: None,
                bytes: LayerBytes::Fetch(fetch),
            }
        })
        .collect();
    Ok(ImageSource {
        name: format!("docker://{reference}"),
        config,
        config_digest: Some(manifest.config.digest.clone()),
        layers,
    })
}
