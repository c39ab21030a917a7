//! A multi-platform image (an image index) as an OCI image layout tar, as
//! buildx's `-o type=oci` writes one: `index.json` names the index (with
//! the image's names as annotations), `blobs/` holds the index, every
//! manifest it lists (attestations too), their configs and layers. There
//! is no `manifest.json`: docker's archive format cannot describe an index
//! (`docker load` of it needs the containerd store, which reads the
//! layout). Same fixed-header, path-ordered tar as [`crate::save`].

use std::collections::BTreeSet;
use std::io::Write;

use kiln_core::image::{reachable, Descriptor, Index};
use kiln_core::ImageRef;
use kiln_store::Store;

use crate::error::{ArchiveError, Result};
use crate::tar_out::TarOut;

/// Writes the index `index` (in the store) named `names` to `out`.
pub fn save_index<W: Write>(
    store: &Store,
    index: &Descriptor,
    names: &[ImageRef],
    out: W,
) -> Result<W> {
    let blobs: BTreeSet<_> = reachable(store, index)?
        .into_iter()
        .map(|d| d.digest)
        .collect();
    let top = Descriptor::new(&index.media_type, index.digest.clone(), index.size);
    let mut entries = Vec::new();
    for name in names {
        entries.push(crate::save::named(&top, name));
    }
    if entries.is_empty() {
        entries.push(top);
    }
    let index_json = serde_json::to_value(Index::oci(entries))
        .and_then(|v| serde_json::to_vec(&v))
        .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    let io = |what: &str| ArchiveError::io(format!("write archive ({what})"));
    let mut tar = TarOut::new(out);
    crate::save::write_blobs(&mut tar, store, &blobs)?;
    tar.bytes("index.json", &index_json)
        .map_err(io("index.json"))?;
    tar.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io("oci-layout"))?;
    tar.finish().map_err(io("end of archive"))
}
