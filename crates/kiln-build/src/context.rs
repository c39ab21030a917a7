//! The build context: the files COPY and ADD may read, minus what
//! `.dockerignore` excludes, and their content checksums.
//!
//! Checksums go through a metadata cache (device, inode, size, mtime,
//! ctime → sha256) kept under the store root, so an unchanged context is
//! stat'ed, not re-read, on the next build.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_dockerfile::ignore::Matcher;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{io, BuildError, Result};

/// One entry of the context, by its `/`-separated relative path.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub path: String,
    pub meta: fs::Metadata,
}

pub(crate) struct Context {
    pub root: PathBuf,
    /// Every included path, sorted (directories too).
    pub entries: Vec<Entry>,
    cache: Mutex<FileCache>,
    cache_path: PathBuf,
}

#[derive(Default, Serialize, Deserialize)]
struct FileCache {
    /// "dev:ino:size:mtime_ns:ctime_ns" → hex sha256
    files: BTreeMap<String, String>,
    #[serde(skip)]
    dirty: bool,
}

const MAX_CACHED_FILES: usize = 500_000;

fn stat_key(m: &fs::Metadata) -> String {
    format!(
        "{}:{}:{}:{}.{}:{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    )
}

impl Context {
    /// Walks `root`, leaving out what `ignore` excludes (excluded
    /// directories are not entered unless an exception could re-include
    /// something below them).
    pub(crate) fn load(root: &Path, ignore: &Matcher, cache_path: &Path) -> Result<Context> {
        let mut entries = Vec::new();
        walk(root, "", ignore, &mut entries)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let mut cache = fs::read(cache_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<FileCache>(&b).ok())
            .unwrap_or_default();
        // Entries of files long gone pile up across contexts: past a bound,
        // start over (the cost is one re-read of each context).
        if cache.files.len() > MAX_CACHED_FILES {
            cache.files.clear();
            cache.dirty = true;
        }
        Ok(Context {
            root: root.to_path_buf(),
            entries,
            cache: Mutex::new(cache),
            cache_path: cache_path.to_path_buf(),
        })
    }

    /// sha256 of a regular file's content, cached by its metadata.
    pub(crate) fn file_digest(&self, e: &Entry) -> Result<String> {
        let key = stat_key(&e.meta);
        if let Some(d) = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.files.get(&key).cloned())
        {
            return Ok(d);
        }
        let p = self.root.join(&e.path);
        let mut f = fs::File::open(&p).map_err(io("read", &p))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(io("read", &p))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let d = hex::encode(h.finalize());
        if let Ok(mut c) = self.cache.lock() {
            c.files.insert(key, d.clone());
            c.dirty = true;
        }
        Ok(d)
    }

    /// Writes the metadata cache back when it learned something.
    pub(crate) fn save_cache(&self) {
        let Ok(c) = self.cache.lock() else { return };
        if !c.dirty {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(&*c) {
            // One temporary name per writer: a multi-platform build saves
            // from several threads, and kiln processes may run side by side.
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = self
                .cache_path
                .with_extension(format!("tmp.{}.{n}", std::process::id()));
            if fs::write(&tmp, bytes).is_ok() {
                let _ = fs::rename(&tmp, &self.cache_path);
            }
        }
    }
}

fn walk(root: &Path, rel: &str, ignore: &Matcher, out: &mut Vec<Entry>) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let rd = fs::read_dir(&dir).map_err(io("read directory", &dir))?;
    for ent in rd {
        let ent = ent.map_err(io("read directory", &dir))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else {
            return Err(BuildError::Context(format!(
                "{}: file names must be UTF-8",
                ent.path().display()
            )));
        };
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta = ent.metadata().map_err(io("stat", ent.path()))?;
        let excluded = ignore.excludes(&path);
        if meta.is_dir() {
            if excluded && !ignore.has_exceptions() {
                continue;
            }
            if !excluded {
                out.push(Entry {
                    path: path.clone(),
                    meta,
                });
            }
            walk(root, &path, ignore, out)?;
        } else if !excluded {
            out.push(Entry { path, meta });
        }
    }
    Ok(())
}
