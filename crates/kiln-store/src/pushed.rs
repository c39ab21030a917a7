//! What kiln knows about its images on registries, recorded at push time:
//!
//! - the compressed form of each layer stored uncompressed (kiln build and
//!   import keep layers as plain tar, like docker's local store), so a
//!   second push of the layer is a HEAD of the known digest rather than a
//!   recompression (docker keeps the same mapping in its distribution
//!   metadata);
//! - the manifest digest each repository holds for a local image: the
//!   pushed manifest names the compressed layers, so its digest differs
//!   from the local one, and `inspect` shows the registry's (RepoDigests).
//!
//! Advisory, like the blob sources: a lost record costs one recompression
//! (deterministic, so it gives the same digest again).

use std::fs;
use std::path::PathBuf;

use kiln_core::{Digest, ImageRef};
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::index::IndexEntryExt;
use crate::{ImageRecord, Store};

/// A compressed form of a stored layer, as pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedLayer {
    pub digest: Digest,
    pub size: u64,
}

/// At most this many repositories are remembered per image.
const MAX_PUSHED: usize = 64;

impl Store {
    fn compressed_path(&self, blob: &Digest, compression: &str) -> PathBuf {
        self.root()
            .join("metadata/compressed")
            .join(blob.algorithm().as_str())
            .join(format!("{}.{compression}", blob.hex()))
    }

    /// The recorded `compression` form ("gzip", "zstd") of layer `blob`.
    pub fn compressed_layer(&self, blob: &Digest, compression: &str) -> Option<CompressedLayer> {
        let bytes = fs::read(self.compressed_path(blob, compression)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn record_compressed_layer(
        &self,
        blob: &Digest,
        compression: &str,
        layer: &CompressedLayer,
    ) -> Result<()> {
        let path = self.compressed_path(blob, compression);
        let bytes = serde_json::to_vec(layer)
            .map_err(std::io::Error::other)
            .ctx("encode", &path)?;
        write_atomically(path, &bytes)
    }

    fn pushed_path(&self, manifest: &Digest) -> PathBuf {
        self.root()
            .join("metadata/pushed")
            .join(manifest.algorithm().as_str())
            .join(manifest.hex())
    }

    /// `repository@digest` for each repository (`host/path`) the image
    /// whose local manifest is `manifest` was pushed to, most recent first.
    pub fn pushed_digests(&self, manifest: &Digest) -> Vec<(String, Digest)> {
        fs::read_to_string(self.pushed_path(manifest))
            .map(|t| {
                t.lines()
                    .filter_map(|l| {
                        let (repo, d) = l.split_once('@')?;
                        Some((repo.to_string(), d.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records that `repository` holds the image of local manifest
    /// `manifest` under manifest digest `pushed`.
    pub fn record_pushed(
        &self,
        manifest: &Digest,
        repository: &str,
        pushed: &Digest,
    ) -> Result<()> {
        let mut list = self.pushed_digests(manifest);
        list.retain(|(r, _)| r != repository);
        list.insert(0, (repository.to_string(), pushed.clone()));
        list.truncate(MAX_PUSHED);
        let text: String = list.iter().map(|(r, d)| format!("{r}@{d}\n")).collect();
        write_atomically(self.pushed_path(manifest), text.as_bytes())
    }

    /// docker's RepoDigests, `name@digest` sorted: per repository the
    /// manifest digest a push left there, else (for the repositories of the
    /// image's names) the digest it was pulled by.
    pub fn repo_digests(&self, record: &ImageRecord) -> Vec<String> {
        let pushed = self.pushed_digests(&record.entry.digest);
        let mut out = std::collections::BTreeSet::new();
        for (repo, digest) in &pushed {
            let name = repo
                .parse::<ImageRef>()
                .map_or(repo.clone(), |r| r.familiar_name());
            out.insert(format!("{name}@{digest}"));
        }
        if let Some(pulled) = record.entry.pulled_digest() {
            for n in &record.names {
                if !pushed.iter().any(|(repo, _)| *repo == n.name()) {
                    out.insert(format!("{}@{pulled}", n.familiar_name()));
                }
            }
        }
        out.into_iter().collect()
    }

    pub(crate) fn forget_pushed(&self, blob: &Digest) {
        let _ = fs::remove_file(self.pushed_path(blob));
        for c in ["gzip", "zstd"] {
            let _ = fs::remove_file(self.compressed_path(blob, c));
        }
    }
}

/// A small metadata record written via a rename, so a reader never sees
/// half of it; the temporary name is unique, because two threads (parallel
/// stages, concurrent pushes) or two kiln processes may write the same
/// record at once.
pub(crate) fn write_atomically(path: PathBuf, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    fs::create_dir_all(dir).ctx("create directory", dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".record")
        .tempfile_in(dir)
        .ctx("create a temporary file in", dir)?;
    std::io::Write::write_all(&mut tmp, bytes).ctx("write", tmp.path())?;
    tmp.persist(&path)
        .map_err(|e| e.error)
        .ctx("rename", &path)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_compressed_forms_and_pushed_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = Digest::sha256(b"layer");
        assert_eq!(store.compressed_layer(&layer, "gzip"), None);
        let gz = CompressedLayer {
            digest: Digest::sha256(b"gz"),
            size: 2,
        };
        store.record_compressed_layer(&layer, "gzip", &gz).unwrap();
        assert_eq!(store.compressed_layer(&layer, "gzip"), Some(gz));
        assert_eq!(store.compressed_layer(&layer, "zstd"), None);

        let manifest = Digest::sha256(b"manifest");
        let (a, b) = (Digest::sha256(b"a"), Digest::sha256(b"b"));
        store.record_pushed(&manifest, "r/one", &a).unwrap();
        store.record_pushed(&manifest, "r/two", &a).unwrap();
        // A later push to the same repository replaces its record.
        store.record_pushed(&manifest, "r/one", &b).unwrap();
        assert_eq!(
            store.pushed_digests(&manifest),
            vec![("r/one".to_string(), b), ("r/two".to_string(), a)]
        );
        store.forget_pushed(&manifest);
        store.forget_pushed(&layer);
        assert!(store.pushed_digests(&manifest).is_empty());
        assert_eq!(store.compressed_layer(&layer, "gzip"), None);
    }
}
