//! The offline database: osv-scanner's layout, `DIR/<Ecosystem>/all.zip`,
//! each zip a set of OSV JSON records. A distro release's records are read
//! from its own zip (`Debian:12/all.zip`) or, failing that, from the
//! distro's (`Debian/all.zip`, which holds every release). Only the
//! ecosystems and names asked about are kept in memory; records are read
//! as hostile input (each capped in size, never written out).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::osv::Record;
use crate::query::{normalize_name, Query};
use crate::Error;

/// A record's package names and withdrawal, nothing else.
#[derive(serde::Deserialize)]
struct Light {
    #[serde(default)]
    withdrawn: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    affected: Vec<LightAffected>,
}

#[derive(serde::Deserialize)]
struct LightAffected {
    #[serde(default)]
    package: Option<LightPackage>,
}

#[derive(serde::Deserialize)]
struct LightPackage {
    ecosystem: String,
    name: String,
}

/// The largest OSV record read (the biggest real ones are ~1 MiB).
const MAX_RECORD: u64 = 16 << 20;

/// An OSV database directory.
#[derive(Debug, Clone)]
pub struct Database {
    dir: PathBuf,
}

/// The records that name a package, by (ecosystem, normalised name).
pub type Index = HashMap<(String, String), Vec<Arc<Record>>>;

impl Database {
    /// Opens `dir`; an error naming the fix when it holds no `all.zip`.
    pub fn open(dir: &Path) -> Result<Database, Error> {
        let has_zip = std::fs::read_dir(dir)
            .map(|rd| rd.flatten().any(|e| e.path().join("all.zip").is_file()))
            .unwrap_or(false);
        if !has_zip {
            return Err(Error::NoDatabase(dir.to_path_buf()));
        }
        Ok(Database {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The zip holding `ecosystem`'s records, if any.
    pub fn zip_for(&self, ecosystem: &str) -> Option<PathBuf> {
        let own = self.dir.join(ecosystem).join("all.zip");
        if own.is_file() {
            return Some(own);
        }
        let base = ecosystem.split(':').next()?;
        let shared = self.dir.join(base).join("all.zip");
        shared.is_file().then_some(shared)
    }

    /// Reads the records that name any of `queries`' packages.
    pub fn index(&self, queries: &[Query]) -> Result<Index, Error> {
        let mut wanted: HashMap<PathBuf, HashSet<(String, String)>> = HashMap::new();
        for q in queries {
            let Some(zip) = self.zip_for(&q.ecosystem) else {
                continue;
            };
            let (name, _) = q.lookup();
            wanted
                .entry(zip)
                .or_default()
                .insert((q.ecosystem.clone(), normalize_name(&q.ecosystem, name)));
        }
        let mut index = Index::new();
        for (zip, keys) in wanted {
            read_zip(&zip, &keys, &mut index)?;
        }
        Ok(index)
    }
}

fn read_zip(path: &Path, keys: &HashSet<(String, String)>, index: &mut Index) -> Result<(), Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| Error::invalid(path.display(), format!("not a zip: {e}")))?;
    let mut buf = Vec::new();
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| Error::invalid(path.display(), format!("entry {i}: {e}")))?;
        let name = match entry.name() {
            Ok(n) => n.into_owned(),
            Err(e) => return Err(Error::invalid(path.display(), format!("entry {i}: {e}"))),
        };
        if entry.is_dir() || !name.ends_with(".json") {
            continue;
        }
        buf.clear();
        entry
            .take(MAX_RECORD + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::invalid(format!("{}:{name}", path.display()), e))?;
        if buf.len() as u64 > MAX_RECORD {
            return Err(Error::invalid(
                format!("{}:{name}", path.display()),
                format!("record larger than {MAX_RECORD} bytes"),
            ));
        }
        let bad = |e: serde_json::Error| {
            Error::invalid(
                format!("{}:{name}", path.display()),
                format!("not an OSV record: {e}"),
            )
        };
        // Most records name none of the packages asked about: a first
        // pass reads only the package names (no strings kept but those).
        let light: Light = serde_json::from_slice(&buf).map_err(bad)?;
        if light.withdrawn.is_some() {
            continue;
        }
        let mut hits = Vec::new();
        for a in light.affected {
            let Some(p) = a.package else { continue };
            let name = normalize_name(&p.ecosystem, &p.name);
            let key = (p.ecosystem, name);
            if keys.contains(&key) && !hits.contains(&key) {
                hits.push(key);
            }
        }
        if hits.is_empty() {
            continue;
        }
        let record: Record = serde_json::from_slice(&buf).map_err(bad)?;
        let record = Arc::new(record);
        for key in hits {
            index.entry(key).or_default().push(Arc::clone(&record));
        }
    }
    Ok(())
}
