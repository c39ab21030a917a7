//! `--output`: where a built image goes besides the store. `type=oci` and
//! `type=docker` write an archive (both layouts at once, as `kiln save`),
//! `type=local` the image's root filesystem into a directory (layers laid
//! with the safe apply, whiteouts honoured).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use kiln_core::ImageRef;
use kiln_store::{Image, Store};

use crate::error::{io, BuildError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An archive file (`type=oci` or `type=docker`).
    Archive(PathBuf),
    /// A directory to hold the root filesystem (`type=local`).
    Local(PathBuf),
}

impl FromStr for Output {
    type Err = BuildError;

    /// `type=oci|docker,dest=FILE` or `type=local,dest=DIR`.
    fn from_str(spec: &str) -> Result<Output> {
        let usage = || {
            BuildError::BadOption(format!(
                "--output {spec:?}: use type=oci|docker,dest=FILE or type=local,dest=DIR"
            ))
        };
        let mut kind = None;
        let mut dest = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_string()),
                Some(("dest", v)) => dest = Some(PathBuf::from(v)),
                _ => return Err(usage()),
            }
        }
        let (Some(kind), Some(dest)) = (kind, dest) else {
            return Err(BuildError::BadOption(format!(
                "--output {spec:?}: type= and dest= are both needed"
            )));
        };
        match kind.as_str() {
            "oci" | "docker" => Ok(Output::Archive(dest)),
            "local" => Ok(Output::Local(dest)),
            other => Err(BuildError::BadOption(format!(
                "--output type={other}: use oci, docker or local"
            ))),
        }
    }
}

/// Writes `image` (named `names` in an archive) to `output`. An archive
/// appears complete or not at all (written beside it, synced, renamed).
pub fn export(store: &Store, image: &Image, names: &[ImageRef], output: &Output) -> Result<()> {
    match output {
        Output::Archive(dest) => {
            let dir = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("create a file in", dir))?;
            let file = tmp.reopen().map_err(io("open", tmp.path()))?;
            let items = [kiln_archive::SaveItem {
                image: image.clone(),
                names: names.to_vec(),
            }];
            let written = kiln_archive::save(store, &items, std::io::BufWriter::new(file))?;
            written
                .into_inner()
                .map_err(|e| io("write", dest)(e.into_error()))?
                .sync_all()
                .map_err(io("sync", dest))?;
            tmp.persist(dest)
                .map_err(|e| io("rename into place", dest)(e.error))?;
        }
        Output::Local(dest) => {
            std::fs::create_dir_all(dest).map_err(io("create", dest))?;
            for layer in image.layer_digests() {
                let f = store.blobs().open(&layer)?;
                kiln_layer::apply(
                    std::io::BufReader::new(f),
                    dest,
                    &kiln_layer::ApplyOptions::for_current_user(),
                )?;
            }
        }
    }
    Ok(())
}
