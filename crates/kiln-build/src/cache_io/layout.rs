//! The cache in the store and in an OCI layout (`type=local`): the
//! artifact's config and manifest written as blobs beside the layers, a
//! layout written and read as buildx's local cache is (`index.json` +
//! `blobs/`, the manifest named `latest`, layers compressed), and a plain
//! layer made from a compressed one (an exported cache's layers travel
//! compressed; an inline cache's are the pushed image's).

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use kiln_core::content::{Ingester, Provider, Tags};
use kiln_core::image::{Descriptor, RawManifest, MAX_MANIFEST_BYTES};
use kiln_core::Digest;
use kiln_layer::Compression;
use kiln_store::{Layout, Store};

use super::format::{carried_layers, is_cache_manifest, CacheMetadata, MAX_METADATA_BYTES};
use super::import::{CacheSource, ImportedCache};
use crate::error::{BuildError, Result};

/// The name the manifest has in a layout's `index.json`.
const LATEST: &str = "latest";

/// Writes the artifact's config and manifest into the store (its layers
/// are there already); returns the manifest's descriptor, the entry a
/// push sends.
pub fn store_artifact(store: &Store, meta: &CacheMetadata) -> Result<Descriptor> {
    let (manifest, config) = meta.artifact();
    store.blobs().put(&config, Some(&manifest.config.digest))?;
    let bytes = manifest.to_bytes();
    store.blobs().put(&bytes, None)?;
    let mut d = Descriptor::of(kiln_core::media_types::OCI_MANIFEST, &bytes);
    d.artifact_type = manifest.artifact_type.clone();
    Ok(d)
}

fn cache_err(dir: &Path, problem: impl std::fmt::Display) -> BuildError {
    BuildError::Cache {
        source_name: dir.display().to_string(),
        problem: problem.to_string(),
    }
}

/// `--cache-to type=local,dest=DIR`: the artifact into the layout at
/// `dir`, named `latest`, its layers compressed with `compression` (as a
/// registry export sends them, so the layout is what the registry would
/// hold). Blobs the layout has are kept; each new one is verified as it
/// is copied.
pub fn write_layout(
    store: &Store,
    meta: &CacheMetadata,
    dir: &Path,
    compression: Compression,
) -> Result<Descriptor> {
    let layout = Layout::create(dir)?;
    let (mut manifest, config) = meta.artifact();
    for l in &mut manifest.layers {
        *l = write_layer(store, &layout, l, compression).map_err(|e| cache_err(dir, e))?;
    }
    let bytes = manifest.to_bytes();
    let mut desc = Descriptor::of(kiln_core::media_types::OCI_MANIFEST, &bytes);
    desc.artifact_type = manifest.artifact_type.clone();
    for (blob, d) in [(&config, &manifest.config), (&bytes, &desc)] {
        if !layout.blob_path(&d.digest).exists() {
            let mut w = layout.writer(None).map_err(|e| cache_err(dir, e))?;
            w.write_all(blob).map_err(|e| cache_err(dir, e))?;
            w.commit(Some(&d.digest), Some(d.size))
                .map_err(|e| cache_err(dir, e))?;
        }
    }
    layout.tag(LATEST, &desc).map_err(|e| cache_err(dir, e))?;
    Ok(desc)
}

/// The stored plain layer `l` into `layout`, compressed with `c` by the
/// push's compressor (the same bytes a push sends); its descriptor there.
/// A compressed form the store knows (from an image push or an earlier
/// export) that the layout has is not made again.
fn write_layer(
    store: &Store,
    layout: &Layout,
    l: &Descriptor,
    c: Compression,
) -> std::result::Result<Descriptor, String> {
    let carried = |digest: Digest, size| Descriptor::new(c.oci_media_type(), digest, size);
    let known = match c {
        Compression::None => Some((l.digest.clone(), l.size)),
        _ => store
            .compressed_layer(&l.digest, c.name())
            .map(|k| (k.digest, k.size)),
    };
    if let Some((digest, size)) = known {
        if layout.blob_path(&digest).exists() {
            return Ok(carried(digest, size));
        }
    }
    let from = store.blobs().open(&l.digest).map_err(|e| e.to_string())?;
    let w = layout.writer(None).map_err(|e| e.to_string())?;
    let (found, w) = kiln_layer::recompress(BufReader::with_capacity(1 << 20, from), c, w)
        .map_err(|e| format!("compress layer {}: {e}", l.digest))?;
    if found != Compression::None {
        return Err(format!("stored layer {} is not a plain tar", l.digest));
    }
    // Uncompressed, the copy must be the stored layer itself.
    let expected = (c == Compression::None).then_some(&l.digest);
    let digest = w.commit(expected, None).map_err(|e| e.to_string())?;
    let size = std::fs::metadata(layout.blob_path(&digest))
        .map_err(|e| e.to_string())?
        .len();
    if c != Compression::None {
        store
            .record_compressed_layer(
                &l.digest,
                c.name(),
                &kiln_store::CompressedLayer {
                    digest: digest.clone(),
                    size,
                },
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(carried(digest, size))
}

/// `--cache-from type=local,src=DIR`: the metadata read now, layers when
/// the build asks.
pub fn open_layout(dir: &Path) -> Result<ImportedCache> {
    let layout = Layout::open(dir)?;
    let entry = match layout.resolve(LATEST).map_err(|e| cache_err(dir, e))? {
        Some(d) => d,
        None => {
            let index = layout.index()?;
            match index.manifests.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(cache_err(
                        dir,
                        "no manifest named latest in index.json (write it with --cache-to type=local,dest=DIR)",
                    ))
                }
            }
        }
    };
    let bytes = layout
        .read_capped(&entry.digest, MAX_MANIFEST_BYTES)
        .map_err(|e| cache_err(dir, e))?;
    let raw = RawManifest::new(bytes, Some(&entry.media_type), "build cache manifest")
        .map_err(|e| cache_err(dir, e))?;
    let manifest = raw.manifest("build cache").map_err(|e| cache_err(dir, e))?;
    if !is_cache_manifest(&manifest) {
        return Err(cache_err(
            dir,
            format!(
                "{} is not a kiln build cache (artifactType {:?})",
                entry.digest,
                manifest.artifact_type.unwrap_or_default()
            ),
        ));
    }
    let config = layout
        .read_capped(&manifest.config.digest, MAX_METADATA_BYTES)
        .map_err(|e| cache_err(dir, e))?;
    let metadata = CacheMetadata::parse(&config).map_err(|e| cache_err(dir, e))?;
    let carried = carried_layers(&metadata, &manifest).map_err(|e| cache_err(dir, e))?;
    Ok(ImportedCache {
        metadata,
        source: std::sync::Arc::new(LayoutSource { layout, carried }),
    })
}

struct LayoutSource {
    layout: Layout,
    /// Plain layer → the blob the layout holds it as.
    carried: HashMap<Digest, Descriptor>,
}

impl CacheSource for LayoutSource {
    fn name(&self) -> String {
        self.layout.root().display().to_string()
    }

    fn fetch(&self, layer: &Descriptor, store: &Store) -> std::result::Result<(), String> {
        let blob = self.carried.get(&layer.digest).unwrap_or(layer);
        let mut from = self.layout.open(&blob.digest).map_err(|e| e.to_string())?;
        let mut w = store.blobs().ingest().map_err(|e| e.to_string())?;
        std::io::copy(&mut from, &mut w).map_err(|e| e.to_string())?;
        // Verified as carried, then (decompressed) as the record names it.
        w.commit(Some(&blob.digest), Some(blob.size))
            .map_err(|e| e.to_string())?;
        if blob.digest != layer.digest {
            store_plain_layer(store, &blob.digest, &layer.digest).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Stores the plain tar of the compressed layer blob `compressed` (in the
/// store) as its own blob, verified against `diff_id`: an inline cache
/// names layers as the image's config does, by diff_id.
pub fn store_plain_layer(store: &Store, compressed: &Digest, diff_id: &Digest) -> Result<u64> {
    let file = store.blobs().open(compressed)?;
    let (_, mut plain) = kiln_layer::decompress(BufReader::with_capacity(1 << 20, file))?;
    let mut w = store.blobs().ingest()?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = plain
            .read(&mut buf)
            .map_err(|e| cache_err(Path::new(&compressed.to_string()), e))?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])
            .map_err(|e| cache_err(Path::new(&compressed.to_string()), e))?;
    }
    Ok(w.commit(Some(diff_id), None)?.1)
}
