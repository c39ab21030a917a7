//! `kiln save`: images → one tar that is both an OCI image layout and a
//! docker archive (the layout docker ≥ 25 writes):
//!
//! ```text
//! blobs/sha256/<hex>   every manifest, config and layer, once
//! index.json           OCI index; per name: io.containerd.image.name (full
//!                      reference) and org.opencontainers.image.ref.name (tag)
//! manifest.json        docker's list of {Config, RepoTags, Layers} paths
//! oci-layout
//! repositories         docker's legacy {name: {tag: top layer}}
//! ```
//! Entries are written in path order with fixed headers, so saving the same
//! images twice gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use kiln_core::image::{reachable, Descriptor, Index};
use kiln_core::{Digest, ImageRef};
use kiln_store::{Image, Store};
use serde_json::{json, Value};

use crate::error::{ArchiveError, Result};
use crate::tar_out::TarOut;

/// One image to save and the names to save it under (none: by ID only).
pub struct SaveItem {
    pub image: Image,
    pub names: Vec<ImageRef>,
}

/// `d` as an `index.json` entry of image `name`: containerd's full name
/// and the OCI ref name (its tag), which docker and skopeo read.
pub(crate) fn named(d: &Descriptor, name: &ImageRef) -> Descriptor {
    let mut d = d.clone();
    d.annotations
        .insert("io.containerd.image.name".into(), name.to_string());
    d.annotations.insert(
        kiln_store::REF_NAME.into(),
        name.tag().unwrap_or("latest").to_string(),
    );
    d
}

/// An OCI layout's `blobs/` in `tar`: each of `blobs` from the store.
pub(crate) fn write_blobs<W: Write>(
    tar: &mut TarOut<W>,
    store: &Store,
    blobs: &BTreeSet<Digest>,
) -> Result<()> {
    let io = |what: &str| ArchiveError::io(format!("write archive ({what})"));
    tar.dir("blobs/").map_err(io("blobs/"))?;
    tar.dir("blobs/sha256/").map_err(io("blobs/sha256/"))?;
    for digest in blobs {
        let mut file = store.blobs().open(digest)?;
        let size = store.blobs().size(digest)?;
        let path = blob_path(digest);
        tar.file(&path, &mut file, size).map_err(io(&path))?;
    }
    Ok(())
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

pub fn save<W: Write>(store: &Store, items: &[SaveItem], out: W) -> Result<W> {
    let mut blobs = BTreeSet::new();
    let mut index_entries = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

    for SaveItem { image, names } in items {
        let layers = image.layer_digests();
        let manifest_size = store.blobs().size(&image.manifest_digest)?;
        let manifest = Descriptor::new(
            &image.manifest_media_type,
            image.manifest_digest.clone(),
            manifest_size,
        );
        // The one walk: the manifest, its config and layers.
        blobs.extend(reachable(store, &manifest)?.into_iter().map(|d| d.digest));
        if names.is_empty() {
            index_entries.push(manifest.clone());
        }
        for name in names {
            index_entries.push(named(&manifest, name));
            if let (Some(tag), Some(top)) = (name.tag(), layers.last()) {
                repositories
                    .entry(name.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), top.hex().to_string());
            }
        }
        docker_manifest.push(json!({
            "Config": blob_path(&image.config_digest),
            "RepoTags": names.iter().map(ImageRef::familiar).collect::<Vec<_>>(),
            "Layers": layers.iter().map(blob_path).collect::<Vec<_>>(),
        }));
    }

    let json_bytes =
        |v: &Value| serde_json::to_vec(v).map_err(|e| ArchiveError::Invalid(e.to_string()));
    // Through a Value, whose keys are sorted: the bytes `save` has always
    // written for index.json (the model's own order is the wire order of
    // manifests kiln writes, which are content-addressed).
    let index = serde_json::to_value(Index::oci(index_entries))
        .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    let index = json_bytes(&index)?;
    let io = |what: &str| ArchiveError::io(format!("write archive ({what})"));

    let mut tar = TarOut::new(out);
    write_blobs(&mut tar, store, &blobs)?;
    tar.bytes("index.json", &index).map_err(io("index.json"))?;
    tar.bytes("manifest.json", &json_bytes(&Value::from(docker_manifest))?)
        .map_err(io("manifest.json"))?;
    tar.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io("oci-layout"))?;
    if !repositories.is_empty() {
        tar.bytes("repositories", &json_bytes(&json!(repositories))?)
            .map_err(io("repositories"))?;
    }
    tar.finish().map_err(io("end of archive"))
}
