//! `--output`: where a built image goes besides the store. `type=oci` and
//! `type=docker` write an archive (both layouts at once, as `kiln save`),
//! `type=local` the image's root filesystem into a directory (layers laid
//! with the safe apply, whiteouts honoured), `type=tar` that root
//! filesystem as a tar file.
//!
//! With several platforms ([`export_index`]) they do what buildx does:
//! `type=oci` writes an OCI layout tar whose `index.json` names the image
//! index; `type=docker` is refused (docker's archive cannot carry an
//! index); `type=local` and `type=tar` put each platform's root filesystem
//! under a directory named for it (`linux_amd64/`, `linux_arm_v7/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kiln_core::image::Descriptor;
use kiln_core::{ImageRef, Platform};
use kiln_store::{Image, Store};

use crate::error::{io, BuildError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An archive file: `type=oci`, or `type=docker` (`docker` set; the
    /// same bytes for one image, refused for an index).
    Archive { dest: PathBuf, docker: bool },
    /// A directory to hold the root filesystem (`type=local`).
    Local(PathBuf),
    /// The root filesystem as a tar file (`type=tar`).
    Tar(PathBuf),
}

impl FromStr for Output {
    type Err = BuildError;

    /// `type=oci|docker|tar,dest=FILE` or `type=local,dest=DIR`.
    fn from_str(spec: &str) -> Result<Output> {
        let usage = || {
            BuildError::BadOption(format!(
                "--output {spec:?}: use type=oci|docker|tar,dest=FILE or type=local,dest=DIR"
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
            "oci" => Ok(Output::Archive {
                dest,
                docker: false,
            }),
            "docker" => Ok(Output::Archive { dest, docker: true }),
            "local" => Ok(Output::Local(dest)),
            "tar" => Ok(Output::Tar(dest)),
            other => Err(BuildError::BadOption(format!(
                "--output type={other}: use oci, docker, tar or local"
            ))),
        }
    }
}

/// Writes a file at `dest` through `write`: it appears complete or not
/// at all (written beside it, synced, renamed).
fn write_atomically(
    dest: &Path,
    write: impl FnOnce(std::io::BufWriter<std::fs::File>) -> Result<std::io::BufWriter<std::fs::File>>,
) -> Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("create a file in", dir))?;
    let file = tmp.reopen().map_err(io("open", tmp.path()))?;
    let written = write(std::io::BufWriter::new(file))?;
    let file = written
        .into_inner()
        .map_err(|e| io("write", dest)(e.into_error()))?;
    // Temporary files are private (0600); an export is not.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(io("set the mode of", tmp.path()))?;
    file.sync_all().map_err(io("sync", dest))?;
    tmp.persist(dest)
        .map_err(|e| io("rename into place", dest)(e.error))?;
    Ok(())
}

/// Lays `image`'s layers into `dest`.
fn unpack(store: &Store, image: &Image, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(io("create", dest))?;
    for layer in image.layer_digests() {
        let f = store.blobs().open(&layer)?;
        kiln_layer::apply(
            std::io::BufReader::new(f),
            dest,
            &kiln_layer::ApplyOptions::for_current_user(),
        )?;
    }
    Ok(())
}

/// `type=tar`: each `(prefix, image)`'s root filesystem, unpacked into a
/// scratch directory beside `dest` (so the safe apply decides what the
/// files are), then tarred under `prefix` (empty: at the top).
fn write_rootfs_tar(store: &Store, images: &[(String, &Image)], dest: &Path) -> Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let scratch = tempfile::tempdir_in(dir).map_err(io("create a directory in", dir))?;
    for (prefix, image) in images {
        unpack(store, image, &scratch.path().join(prefix))?;
    }
    write_atomically(dest, |w| {
        let mut tar = tar::Builder::new(w);
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Complete);
        tar.append_dir_all(".", scratch.path())
            .map_err(io("write", dest))?;
        let mut w = tar.into_inner().map_err(io("write", dest))?;
        w.flush().map_err(io("write", dest))?;
        Ok(w)
    })
}

/// Writes `image` (named `names` in an archive) to `output`. An archive
/// appears complete or not at all (written beside it, synced, renamed).
pub fn export(store: &Store, image: &Image, names: &[ImageRef], output: &Output) -> Result<()> {
    match output {
        Output::Archive { dest, .. } => write_atomically(dest, |w| {
            let items = [kiln_archive::SaveItem {
                image: image.clone(),
                names: names.to_vec(),
            }];
            Ok(kiln_archive::save(store, &items, w)?)
        }),
        Output::Local(dest) => unpack(store, image, dest),
        Output::Tar(dest) => write_rootfs_tar(store, &[(String::new(), image)], dest),
    }
}

/// The directory buildx names a platform's files by: `linux_amd64`,
/// `linux_arm_v7`.
pub fn platform_dir(p: &Platform) -> String {
    p.to_string().replace('/', "_")
}

/// Fails for an output that cannot hold several platforms (`type=docker`),
/// naming what can; a build checks this before it starts.
pub fn check_index_output(output: &Output) -> Result<()> {
    match output {
        Output::Archive { docker: true, .. } => Err(BuildError::BadOption(
            "docker exporter does not currently support exporting manifest lists: use -o type=oci,dest=FILE (an OCI layout tar holding the index, which kiln load and docker load with the containerd store read), or --push".into(),
        )),
        _ => Ok(()),
    }
}

/// Writes a multi-platform image: the index `index` over `images` (each
/// platform's image), named `names`, to `output`, as buildx does.
pub fn export_index(
    store: &Store,
    index: &Descriptor,
    images: &[(Platform, Image)],
    names: &[ImageRef],
    output: &Output,
) -> Result<()> {
    check_index_output(output)?;
    match output {
        Output::Archive { dest, .. } => write_atomically(dest, |w| {
            Ok(kiln_archive::save_index(store, index, names, w)?)
        }),
        Output::Local(dest) => {
            for (p, image) in images {
                unpack(store, image, &dest.join(platform_dir(p)))?;
            }
            Ok(())
        }
        Output::Tar(dest) => {
            let prefixed: Vec<(String, &Image)> =
                images.iter().map(|(p, i)| (platform_dir(p), i)).collect();
            write_rootfs_tar(store, &prefixed, dest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs() {
        let o: Output = "type=oci,dest=a.tar".parse().unwrap();
        assert_eq!(
            o,
            Output::Archive {
                dest: "a.tar".into(),
                docker: false
            }
        );
        let o: Output = "type=docker,dest=a.tar".parse().unwrap();
        assert!(matches!(o, Output::Archive { docker: true, .. }));
        assert_eq!(
            "type=tar,dest=r.tar".parse::<Output>().unwrap(),
            Output::Tar("r.tar".into())
        );
        assert!("type=zip,dest=x".parse::<Output>().is_err());
    }

    #[test]
    fn platform_dirs_are_buildx_names() {
        assert_eq!(platform_dir(&"linux/amd64".parse().unwrap()), "linux_amd64");
        assert_eq!(
            platform_dir(&"linux/arm/v7".parse().unwrap()),
            "linux_arm_v7"
        );
    }
}
