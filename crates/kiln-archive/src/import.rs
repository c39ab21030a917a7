//! `kiln import`: a root filesystem tarball becomes a one-layer image.

use std::io::{BufReader, Read};

use kiln_core::image::Descriptor;
use kiln_core::image::ImageConfig;
use kiln_core::{Digest, ImageRef, Platform};
use kiln_layer::{copy_checked_tar, decompress, Compression, LayerWriter};
use kiln_store::{LayerInfo, Store};
use serde_json::json;

use crate::changes::apply_changes;
use crate::error::{ArchiveError, Result};

pub struct ImportOptions {
    /// Tags for the new image; empty keeps it untagged.
    pub names: Vec<ImageRef>,
    /// Dockerfile instructions applied to the config (`--change`).
    pub changes: Vec<String>,
    /// History comment; docker's default is "Imported from SOURCE".
    pub message: Option<String>,
    /// What the input was, for the default message: `-` for any local
    /// input (stdin or a file), as docker records it.
    pub source: String,
    pub platform: Platform,
    pub compression: Compression,
    /// RFC 3339 creation time.
    pub created: String,
}

#[derive(Debug)]
pub struct Imported {
    /// The image ID (config digest).
    pub id: Digest,
    pub manifest: Digest,
    pub diff_id: Digest,
    pub entries: u64,
}

/// Compressor threads: the pipe already overlaps hashing with compression,
/// so zstd gets the cores left.
fn compressor_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

pub fn import<R: Read + Send>(store: &Store, input: R, opts: &ImportOptions) -> Result<Imported> {
    // Validate the cheap things before reading gigabytes.
    let mut edited = ImageConfig::default();
    apply_changes(&mut edited, &opts.changes)?;

    let _lease = store.lease()?;
    let (_, plain) = decompress(BufReader::with_capacity(1 << 20, input))?;
    let blob = store.blobs().ingest()?;
    let (diff_id, uncompressed_size, digest, size, entries) =
        if opts.compression == Compression::None {
            // Uncompressed, the blob digest is the diff_id: hash once, in the blob writer.
            let mut blob = blob;
            let summary = copy_checked_tar(plain, &mut blob)?;
            let (digest, size) = blob.commit(None, None)?;
            (digest.clone(), size, digest, size, summary.entries)
        } else {
            let mut layer = LayerWriter::new(blob, opts.compression, compressor_threads())
                .map_err(ArchiveError::io("start compressor"))?;
            let summary = copy_checked_tar(plain, &mut layer)?;
            let (written, blob) = layer.finish().map_err(ArchiveError::io("write layer"))?;
            let (digest, size) = blob.commit(None, None)?;
            (
                written.diff_id,
                written.uncompressed_size,
                digest,
                size,
                summary.entries,
            )
        };
    store.record_layer(
        &digest,
        &LayerInfo {
            diff_id: diff_id.clone(),
            uncompressed_size,
            content_size: None,
        },
    )?;

    let message = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", opts.source));
    let mut config = json!({
        "architecture": opts.platform.architecture,
        "os": opts.platform.os,
        "created": opts.created,
        "comment": message,
        "config": edited.container().to_value(),
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": opts.created, "comment": message}],
    });
    if let Some(variant) = &opts.platform.variant {
        config["variant"] = json!(variant);
    }
    // serde_json's map is ordered by key: the same inputs give the same bytes.
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    let entry = store.write_image(
        &config_bytes,
        &[Descriptor::new(
            opts.compression.oci_media_type(),
            digest,
            size,
        )],
    )?;
    store.name_image(&entry, &opts.names)?;
    Ok(Imported {
        id: Digest::sha256(&config_bytes),
        manifest: entry.digest,
        diff_id,
        entries,
    })
}
