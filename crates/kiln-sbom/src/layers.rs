//! Reading an image's layers for the catalogers and attributing each
//! package to the layer that installed it.
//!
//! Each layer is one tar stream (kiln-analyze finds and decompresses it;
//! nothing is unpacked). Only cataloged files are kept, already parsed
//! into packages; an ELF executable is read into one reused buffer and
//! dropped after detection. A layer becomes a [`Delta`] (whiteouts,
//! opaque directories, cataloged files written); layers are read in
//! parallel and their deltas applied in order to a map of cataloged
//! paths, which is the image's package state after each layer.
//!
//! Attribution: a package (type, name, version, file) belongs to the first
//! layer of its last unbroken presence. A later `apt-get install` rewrites
//! `var/lib/dpkg/status` with every older package in it; syft takes the
//! last layer that wrote the database (syft #435, #645), kiln the layer in
//! which the package at that version appeared.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use kiln_analyze::entry::{clean, tar_stream};
use kiln_analyze::source::{ImageSource, LayerSource};

use crate::catalog::{binary, Kind};
use crate::distro::Distro;
use crate::error::{Result, SbomError};
use crate::package::{Found, Package, PkgType};
use crate::purl;

/// A package database bigger than this is refused (an rpmdb of thousands
/// of packages is tens of MB).
const DB_CAP: u64 = 256 << 20;
/// Executables bigger than this are not inspected.
const BINARY_CAP: u64 = 1 << 30;

/// What one layer does to the cataloged files below it.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    /// Whiteouts: these paths and everything under them are gone.
    removes: Vec<String>,
    /// Opaque directories: what lower layers had under them is gone.
    opaques: Vec<String>,
    /// Cataloged files this layer wrote, with their packages (none: the
    /// path holds something that is not a package any more).
    puts: Vec<(String, Vec<Found>)>,
    /// os-release files written.
    os_release: Vec<(String, String)>,
}

fn read_all(r: &mut impl Read, size: u64, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    buf.reserve(usize::try_from(size).unwrap_or(0));
    r.take(size).read_to_end(buf)?;
    Ok(())
}

/// Reads one layer's tar stream into its delta.
pub(crate) fn read_layer(index: usize, layer: &LayerSource) -> Result<Delta> {
    let err = |source: std::io::Error| SbomError::Layer {
        layer: index,
        source,
    };
    let stream = tar_stream(layer.bytes.open()?)?;
    let mut archive = tar::Archive::new(stream);
    let mut delta = Delta::default();
    let mut buf = Vec::new();
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let raw = entry.path_bytes();
        let path = clean(&String::from_utf8_lossy(&raw))
            .trim_start_matches('/')
            .to_string();
        if path == "." || path.is_empty() || path.starts_with("..") {
            continue;
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden == ".wh..opq" {
                delta.opaques.push(dir.to_string());
            } else if dir.is_empty() {
                delta.removes.push(hidden.to_string());
            } else {
                delta.removes.push(format!("{dir}/{hidden}"));
            }
            continue;
        }
        let header = entry.header();
        let kind = Kind::of(&path);
        if !header.entry_type().is_file() {
            if kind.is_some() {
                delta.puts.push((path, Vec::new()));
            }
            continue;
        }
        let size = header.size().map_err(err)?;
        let mode = header.mode().unwrap_or(0);
        match kind {
            Some(Kind::OsRelease) => {
                read_all(&mut entry, size.min(64 << 10), &mut buf).map_err(err)?;
                delta
                    .os_release
                    .push((path, String::from_utf8_lossy(&buf).into_owned()));
            }
            Some(k) if size <= DB_CAP => {
                read_all(&mut entry, size, &mut buf).map_err(err)?;
                let found = k.parse(&path, &buf);
                delta.puts.push((path, found));
            }
            Some(_) => {
                eprintln!("warning: layer {index}: {path}: {size} bytes, too big to catalog");
            }
            None if mode & 0o111 != 0 && (64..=BINARY_CAP).contains(&size) => {
                let mut head = [0u8; 4];
                entry.read_exact(&mut head).map_err(err)?;
                if !binary::is_elf(&head) {
                    continue;
                }
                buf.clear();
                buf.extend_from_slice(&head);
                entry.read_to_end(&mut buf).map_err(err)?;
                delta.puts.push((path, binary::detect(&buf)));
            }
            None => {}
        }
    }
    Ok(delta)
}

/// Reads every layer with up to `jobs` threads; deltas bottom first.
pub(crate) fn read_layers(image: &ImageSource, jobs: usize) -> Result<Vec<Delta>> {
    let n = image.layers.len();
    let slots: Vec<Mutex<Option<Result<Delta>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        let r = read_layer(i, &image.layers[i]);
        if let Ok(mut slot) = slots[i].lock() {
            *slot = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, n.max(1)) {
            s.spawn(work);
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(SbomError::Usage("a layer reader panicked".into())))
        })
        .collect()
}

type Key = (PkgType, String, String, String);

/// The image's state after some layers: cataloged paths and the layer
/// since which each package has been present.
#[derive(Default)]
pub(crate) struct State {
    files: BTreeMap<String, Vec<Found>>,
    os_release: BTreeMap<String, String>,
    since: HashMap<Key, usize>,
}

fn remove_under<V>(map: &mut BTreeMap<String, V>, dir: &str, with_self: bool) {
    if dir.is_empty() {
        map.clear();
        return;
    }
    let prefix = format!("{dir}/");
    let doomed: Vec<String> = map
        .range(dir.to_string()..)
        .take_while(|(k, _)| k.starts_with(dir))
        .filter(|(k, _)| k.starts_with(&prefix) || (with_self && k.as_str() == dir))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        map.remove(&k);
    }
}

impl State {
    /// Applies layer `index`'s delta and updates when each package arrived.
    pub(crate) fn apply(&mut self, index: usize, delta: Delta) {
        for r in &delta.removes {
            remove_under(&mut self.files, r, true);
            remove_under(&mut self.os_release, r, true);
        }
        for d in &delta.opaques {
            remove_under(&mut self.files, d, false);
            remove_under(&mut self.os_release, d, false);
        }
        for (path, found) in delta.puts {
            if found.is_empty() {
                self.files.remove(&path);
            } else {
                self.files.insert(path, found);
            }
        }
        for (path, text) in delta.os_release {
            self.os_release.insert(path, text);
        }
        let mut since = HashMap::new();
        for (path, found) in &self.files {
            for f in found {
                let key = (f.ptype, f.name.clone(), f.version.clone(), path.clone());
                let at = self.since.get(&key).copied().unwrap_or(index);
                since.insert(key, at);
            }
        }
        self.since = since;
    }

    /// The distro the image's os-release names.
    pub(crate) fn distro(&self) -> Option<Distro> {
        ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|p| self.os_release.get(*p).and_then(|t| Distro::parse(t)))
    }

    /// The packages present now, with purls for `distro`, each attributed
    /// to its layer and that layer's step; sorted by type, name, version.
    pub(crate) fn packages(&self, layers: &[crate::LayerInfo]) -> Vec<Package> {
        let distro = self.distro();
        let mut out = Vec::new();
        for (path, found) in &self.files {
            for f in found {
                let key = (f.ptype, f.name.clone(), f.version.clone(), path.clone());
                let layer = self.since.get(&key).copied().unwrap_or(0);
                let info = layers.get(layer);
                out.push(Package {
                    ptype: f.ptype,
                    name: f.name.clone(),
                    version: f.version.clone(),
                    purl: purl::purl(f, distro.as_ref()),
                    arch: f.arch.clone(),
                    upstream: purl::upstream(f),
                    licenses: f.licenses.clone(),
                    path: format!("/{path}"),
                    layer,
                    layer_digest: info.and_then(|l| l.digest.clone()),
                    step: info.map(|l| l.step.clone()).unwrap_or_default(),
                });
            }
        }
        out.sort_by(|a, b| {
            (a.ptype, &a.name, &a.version, &a.path).cmp(&(b.ptype, &b.name, &b.version, &b.path))
        });
        out.dedup_by(|a, b| {
            (a.ptype, &a.name, &a.version, &a.path) == (b.ptype, &b.name, &b.version, &b.path)
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str) -> Found {
        Found::new(PkgType::Deb, name, version)
    }

    fn put(path: &str, found: Vec<Found>) -> Delta {
        Delta {
            puts: vec![(path.to_string(), found)],
            ..Delta::default()
        }
    }

    fn layers(n: usize) -> Vec<crate::LayerInfo> {
        (0..n)
            .map(|i| crate::LayerInfo {
                digest: None,
                diff_id: None,
                step: format!("step {i}"),
            })
            .collect()
    }

    #[test]
    fn first_layer_of_presence_not_last_rewrite() {
        let db = "var/lib/dpkg/status";
        let mut s = State::default();
        s.apply(0, put(db, vec![deb("libc6", "1")]));
        s.apply(1, put(db, vec![deb("libc6", "1"), deb("curl", "7")]));
        // An upgrade in layer 2: libc6 2 arrives there, curl stays layer 1's.
        s.apply(2, put(db, vec![deb("libc6", "2"), deb("curl", "7")]));
        s.apply(3, Delta::default());
        let p = s.packages(&layers(4));
        let got: Vec<(&str, &str, usize, &str)> = p
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.layer,
                    p.step.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [("curl", "7", 1, "step 1"), ("libc6", "2", 2, "step 2")]
        );
    }

    #[test]
    fn removed_then_reinstalled_counts_from_the_reinstall() {
        let f = "usr/lib/python3/dist-packages/six-1.0.dist-info/METADATA";
        let py = || vec![Found::new(PkgType::Python, "six", "1.0")];
        let mut s = State::default();
        s.apply(0, put(f, py()));
        s.apply(
            1,
            Delta {
                removes: vec!["usr/lib/python3/dist-packages/six-1.0.dist-info".into()],
                ..Delta::default()
            },
        );
        assert!(s.packages(&layers(2)).is_empty());
        s.apply(2, put(f, py()));
        assert_eq!(s.packages(&layers(3))[0].layer, 2);
        // An opaque directory hides what lower layers had under it.
        s.apply(
            3,
            Delta {
                opaques: vec!["usr/lib/python3".into()],
                ..Delta::default()
            },
        );
        assert!(s.packages(&layers(4)).is_empty());
    }
}
