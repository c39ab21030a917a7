//! Volumes: directories under `<store>/volumes/<name>/_data` that outlive
//! the containers using them (docker's `local` driver). A new, empty
//! volume is filled once from the image's content at the path it is
//! mounted on (docker's copy-up); bind mounts never are.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::containers::write_atomic;
use crate::error::{io, ContainerError, Result};

#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

/// What `volume inspect` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub name: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image VOLUME): removed with
    /// it by `rm -v` and `--rm`.
    pub anonymous: bool,
}

const META: &str = "volume.json";
const COPIED_UP: &str = ".copied-up";

impl Volumes {
    pub fn open(store_root: &Path) -> Result<Volumes> {
        let dir = store_root.join("volumes");
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(Volumes { dir })
    }

    /// The directory a container mounts.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Creates volume `name` unless it exists; returns it and whether it
    /// is new.
    pub fn ensure(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(Volume, bool)> {
        if !crate::containers::valid_name(name) {
            return Err(ContainerError::InvalidConfig(format!(
                "create {name}: includes invalid characters for a local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        if let Ok(v) = self.get(name) {
            return Ok((v, false));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(&self.dir)
            .map_err(io("create a volume in", &self.dir))?;
        fs::create_dir(tmp.path().join("_data")).map_err(io("create", tmp.path()))?;
        let v = Volume {
            name: name.to_string(),
            created: kiln_core::rfc3339(std::time::SystemTime::now()),
            labels,
            anonymous,
        };
        let json = serde_json::to_vec_pretty(&v).unwrap_or_default();
        write_atomic(&tmp.path().join(META), &json)?;
        let target = self.dir.join(name);
        match fs::rename(tmp.path(), &target) {
            Ok(()) => {
                let _ = tmp.keep();
                Ok((v, true))
            }
            // Made by someone else meanwhile: theirs.
            Err(_) if target.join(META).is_file() => Ok((self.get(name)?, false)),
            Err(e) => Err(io("create volume", &target)(e)),
        }
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        let p = self.dir.join(name).join(META);
        let bytes = fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ContainerError::NoSuchVolume(name.to_string()),
            _ => io("read", &p)(e),
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ContainerError::InvalidConfig(format!("{}: {e}", p.display())))
    }

    pub fn list(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)
            .map_err(io("read", &self.dir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(v) = self.get(&name) {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes volume `name` and its data (the caller checked no container
    /// uses it). Renamed away first: a crash never leaves half a volume
    /// under its name.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.get(name)?;
        let dir = self.dir.join(name);
        let gone = self.dir.join(format!(".removing-{name}"));
        fs::rename(&dir, &gone).map_err(io("remove", &dir))?;
        fs::remove_dir_all(&gone).map_err(io("remove", &gone))
    }

    /// docker's copy-up: the first time volume `name` is mounted at a
    /// path where the image has content, and the volume is empty, that
    /// content is copied into it (owners and modes kept).
    pub fn copy_up(&self, name: &str, image_dir: &Path) -> Result<()> {
        let marker = self.dir.join(name).join(COPIED_UP);
        if marker.exists() {
            return Ok(());
        }
        let data = self.data(name);
        let empty = fs::read_dir(&data)
            .map_err(io("read", &data))?
            .next()
            .is_none();
        if empty && image_dir.is_dir() {
            // The directory's own owner and mode come along (cp -T).
            kiln_snapshot::copy_tree(image_dir, &data)?;
        }
        fs::write(&marker, b"").map_err(io("write", &marker))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn volumes_are_made_once_and_filled_once() {
        let t = tempfile::tempdir().unwrap();
        let vols = Volumes::open(t.path()).unwrap();
        let (v, new) = vols.ensure("data", Default::default(), false).unwrap();
        assert!(new && !v.anonymous);
        assert!(!vols.ensure("data", Default::default(), true).unwrap().1);
        assert!(vols.ensure("a/b", Default::default(), false).is_err());
        let image = t.path().join("img");
        fs::create_dir_all(image.join("sub")).unwrap();
        fs::write(image.join("sub/f"), "x").unwrap();
        vols.copy_up("data", &image).unwrap();
        assert_eq!(
            fs::read_to_string(vols.data("data").join("sub/f")).unwrap(),
            "x"
        );
        // Never twice: what the container deleted stays deleted.
        fs::remove_dir_all(vols.data("data").join("sub")).unwrap();
        vols.copy_up("data", &image).unwrap();
        assert!(!vols.data("data").join("sub").exists());
        assert_eq!(vols.list().unwrap().len(), 1);
        vols.remove("data").unwrap();
        assert!(vols.list().unwrap().is_empty());
    }
}
