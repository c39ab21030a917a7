//! COPY and ADD: which files, where they go, with which owner and mode,
//! as a tar stream that `kiln_layer::apply` lays onto the step's root
//! filesystem (so destination paths resolve safely inside the root, with
//! the same code that unpacks hostile layers).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kiln_dockerfile::ignore::{glob_match, has_wildcards, Matcher};
use kiln_dockerfile::Files;

use crate::context::Context;
use crate::error::{io, BuildError, Result};
use crate::paths::{clean_abs, resolve_in_root};

/// Where the sources come from.
pub(crate) enum Source<'a> {
    Context(&'a Context),
    /// A mounted root filesystem (another stage, or an image).
    Tree(&'a Path),
}

#[derive(Debug, Clone)]
enum Content {
    Dir,
    File(PathBuf),
    Symlink(PathBuf),
    Data(Vec<u8>),
}

#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Destination, relative to the root, no leading `/`.
    dest: String,
    content: Content,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    /// For the cache key: content digest of files from the context.
    digest: Option<String>,
    /// Fetched by ADD from a URL: never extracted.
    downloaded: bool,
    /// The source file's `st_dev`, from the stat the plan was made with
    /// (for `kiln_layer::LocalFile`).
    dev: Option<u64>,
}

/// How ownership and modes are set.
pub(crate) struct Attrs {
    /// `--chown`, resolved; `None`: 0:0 from the context, kept from a tree.
    pub chown: Option<(u32, u32)>,
    pub chmod: Option<String>,
    /// Timestamp for content kiln makes (heredoc files).
    pub epoch: u64,
}

/// Applies `--chmod` (octal, or symbolic like `u=rwx,g=rx,o-w`) to a mode.
pub(crate) fn chmod(spec: &str, mode: u32, is_dir: bool) -> Result<u32> {
    if let Ok(bits) = u32::from_str_radix(spec, 8) {
        if bits > 0o7777 {
            return Err(BuildError::BadOption(format!(
                "--chmod={spec}: mode out of range"
            )));
        }
        return Ok(bits);
    }
    let mut m = mode & 0o7777;
    for clause in spec.split(',') {
        let op_at = clause.find(['=', '+', '-']).ok_or_else(|| {
            BuildError::BadOption(format!(
                "--chmod={spec}: use an octal mode or u/g/o=rwx clauses"
            ))
        })?;
        let (who, rest) = clause.split_at(op_at);
        let op = rest.as_bytes()[0];
        let mut bits = 0u32;
        for c in rest[1..].chars() {
            bits |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || m & 0o111 != 0 => 0o111,
                'X' => 0,
                _ => {
                    return Err(BuildError::BadOption(format!(
                        "--chmod={spec}: bad permission {c:?}"
                    )))
                }
            };
        }
        let mut mask = 0u32;
        for c in if who.is_empty() {
            "a".chars()
        } else {
            who.chars()
        } {
            mask |= match c {
                'u' => 0o700,
                'g' => 0o070,
                'o' => 0o007,
                'a' => 0o777,
                _ => {
                    return Err(BuildError::BadOption(format!(
                        "--chmod={spec}: bad target {c:?}"
                    )))
                }
            };
        }
        match op {
            b'=' => m = (m & !mask) | (bits & mask),
            b'+' => m |= bits & mask,
            _ => m &= !(bits & mask),
        }
    }
    Ok(m)
}

/// Plans a COPY/ADD. `workdir` resolves a relative destination;
/// `dest_root` is the step's root filesystem as it is before the copy
/// (`None`: empty), which decides, as in BuildKit, whether a destination
/// without a trailing slash is a directory to copy into (it is one on
/// disk) and which directories the copy creates (with `--chown`'s owner).
pub(crate) fn plan(
    files: &Files,
    source: &Source<'_>,
    workdir: &str,
    attrs: &Attrs,
    parents: bool,
    downloads: &[crate::download::Download],
    dest_root: Option<&Path>,
) -> Result<Vec<Planned>> {
    let dest_raw = &files.dest;
    let dest = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        format!("{}/{dest_raw}", workdir.trim_end_matches('/'))
    };
    let many = files.sources.len() + files.inline.len() + downloads.len() > 1
        || files.sources.iter().any(|s| has_wildcards(s));
    let dest = clean_abs(&dest);
    let exists_as_dir = |p: &str| dest_root.is_some_and(|r| resolve_in_root(r, p).is_dir());
    let dest_is_dir = dest_raw.ends_with('/')
        || dest_raw.ends_with("/.")
        || dest_raw == "."
        || many
        || exists_as_dir(&dest);
    let exclude = if files.exclude.is_empty() {
        None
    } else {
        Some(
            Matcher::parse(&files.exclude.join("\n"))
                .map_err(|e| BuildError::BadOption(format!("--exclude: {e}")))?,
        )
    };
    let mut out = created_dirs(&dest, dest_is_dir, attrs, dest_root);
    let join = |base: &str, rel: &str| -> String {
        let base = base.trim_start_matches('/');
        match (base.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (_, true) => base.to_string(),
            _ => format!("{base}/{rel}"),
        }
    };
    for inline in &files.inline {
        let target = if dest_is_dir {
            join(&dest, &inline.name)
        } else {
            dest.trim_start_matches('/').to_string()
        };
        let mode = match &attrs.chmod {
            Some(c) => chmod(c, 0o644, false)?,
            None => 0o644,
        };
        let (uid, gid) = attrs.chown.unwrap_or((0, 0));
        out.push(Planned {
            dest: target,
            content: Content::Data(inline.data.clone().into_bytes()),
            mode,
            uid: uid.into(),
            gid: gid.into(),
            mtime: attrs.epoch,
            digest: Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                inline.data.as_bytes(),
            ))),
            downloaded: false,
            dev: None,
        });
    }
    for d in downloads {
        let target = if dest_is_dir {
            if d.name.is_empty() {
                return Err(BuildError::BadOption(format!(
                    "{dest_raw}: cannot name the downloaded file from its URL; give a file name as the destination"
                )));
            }
            join(&dest, &d.name)
        } else {
            dest.trim_start_matches('/').to_string()
        };
        let mode = match &attrs.chmod {
            Some(c) => chmod(c, 0o600, false)?,
            None => 0o600,
        };
        let (uid, gid) = attrs.chown.unwrap_or((0, 0));
        out.push(Planned {
            dest: target,
            content: Content::File(d.path.clone()),
            mode,
            uid: uid.into(),
            gid: gid.into(),
            mtime: d.mtime,
            digest: Some(d.digest.clone()),
            downloaded: true,
            dev: None,
        });
    }
    for src in &files.sources {
        let pattern = clean_abs(src).trim_start_matches('/').to_string();
        // The source roots this word names: (relative path in the source).
        let roots: Vec<String> = match source {
            Source::Context(ctx) => {
                if has_wildcards(&pattern) {
                    ctx.entries
                        .iter()
                        .filter(|e| glob_match(&pattern, &e.path).unwrap_or(false))
                        .map(|e| e.path.clone())
                        .collect()
                } else if pattern.is_empty() || ctx.entries.iter().any(|e| e.path == pattern) {
                    vec![pattern.clone()]
                } else {
                    Vec::new()
                }
            }
            Source::Tree(root) => {
                if has_wildcards(&pattern) {
                    let (dir, _) = pattern.rsplit_once('/').unwrap_or(("", &pattern));
                    let base = resolve_in_root(root, dir);
                    let mut found = Vec::new();
                    if let Ok(rd) = fs::read_dir(&base) {
                        for e in rd.flatten() {
                            let rel = join(dir, &e.file_name().to_string_lossy());
                            if glob_match(&pattern, &rel).unwrap_or(false) {
                                found.push(rel);
                            }
                        }
                    }
                    found.sort();
                    found
                } else if resolve_in_root(root, &pattern).symlink_metadata().is_ok() {
                    vec![pattern.clone()]
                } else {
                    Vec::new()
                }
            }
        };
        // BuildKit allows a wildcard to match nothing (AllowEmptyWildcard);
        // a plain path that is missing is an error.
        if roots.is_empty() && has_wildcards(&pattern) {
            continue;
        }
        if roots.is_empty() {
            let where_ = match source {
                Source::Context(_) => "in the build context (or excluded by .dockerignore)",
                Source::Tree(_) => "in the source stage or image",
            };
            return Err(BuildError::NotFound(format!(
                "{src}: no such file or directory {where_}"
            )));
        }
        for root_rel in roots {
            let entries = list(source, &root_rel)?;
            let root_is_dir = entries
                .first()
                .is_some_and(|(rel, m, _)| rel.is_empty() && m.is_dir());
            for (rel, meta, host) in entries {
                let full_src = join(&root_rel, &rel);
                if let Some(m) = &exclude {
                    if !full_src.is_empty() && m.excludes(&full_src) {
                        continue;
                    }
                }
                // Where it lands.
                let target = if parents {
                    join(&join(&dest, &root_rel), &rel)
                } else if root_is_dir {
                    if rel.is_empty() {
                        // The directory itself: its contents go into dest.
                        // An existing dest keeps its owner and mode; one
                        // the copy creates takes the source directory's
                        // mode (BuildKit's copier), owned like the files.
                        if dest_is_dir || exists_as_dir(&dest) || dest == "/" {
                            continue;
                        }
                        dest.trim_start_matches('/').to_string()
                    } else {
                        join(&dest, &rel)
                    }
                } else if dest_is_dir {
                    let name = root_rel.rsplit('/').next().unwrap_or(&root_rel);
                    join(&dest, name)
                } else {
                    dest.trim_start_matches('/').to_string()
                };
                if target.is_empty() {
                    continue;
                }
                let is_dir = meta.is_dir();
                let content = if is_dir {
                    Content::Dir
                } else if meta.file_type().is_symlink() {
                    Content::Symlink(fs::read_link(&host).map_err(io("read link", &host))?)
                } else if meta.is_file() {
                    Content::File(host.clone())
                } else {
                    continue; // sockets, devices: docker skips them in contexts
                };
                let mut mode = meta.permissions().mode() & 0o7777;
                if let Some(c) = &attrs.chmod {
                    if !matches!(content, Content::Symlink(_)) {
                        mode = chmod(c, mode, is_dir)?;
                    }
                }
                let (uid, gid) = match (attrs.chown, source) {
                    (Some((u, g)), _) => (u.into(), g.into()),
                    (None, Source::Context(_)) => (0, 0),
                    (None, Source::Tree(_)) => (meta.uid().into(), meta.gid().into()),
                };
                let digest = match (&content, source) {
                    (Content::File(_), Source::Context(ctx)) => {
                        // Entries are sorted by path.
                        match ctx
                            .entries
                            .binary_search_by(|e| e.path.as_str().cmp(&full_src))
                        {
                            Ok(i) => Some(ctx.file_digest(&ctx.entries[i])?),
                            Err(_) => None,
                        }
                    }
                    (Content::Symlink(t), _) => Some(t.to_string_lossy().into_owned()),
                    _ => None,
                };
                out.push(Planned {
                    dest: target,
                    content,
                    mode,
                    uid,
                    gid,
                    mtime: meta.mtime().max(0) as u64,
                    digest,
                    downloaded: false,
                    dev: Some(meta.dev()),
                });
            }
        }
    }
    Ok(out)
}

/// The directories a copy must create above what it writes: the
/// destination directory (when the destination is one) or the
/// destination's parent, and every missing ancestor. BuildKit makes them
/// 0755 and owned by `--chown`'s user (root without it); existing ones are
/// left alone. Listed top-down, before the entries that go inside.
fn created_dirs(
    dest: &str,
    dest_is_dir: bool,
    attrs: &Attrs,
    dest_root: Option<&Path>,
) -> Vec<Planned> {
    let ensure = if dest_is_dir {
        dest
    } else {
        dest.rsplit_once('/').map_or("", |(parent, _)| parent)
    };
    let (uid, gid) = attrs.chown.unwrap_or((0, 0));
    let mut out = Vec::new();
    let mut path = String::new();
    for part in ensure.split('/').filter(|p| !p.is_empty()) {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(part);
        let exists =
            dest_root.is_some_and(|r| resolve_in_root(r, &path).symlink_metadata().is_ok());
        if exists {
            continue;
        }
        out.push(Planned {
            dest: path.clone(),
            content: Content::Dir,
            mode: 0o755,
            uid: uid.into(),
            gid: gid.into(),
            mtime: attrs.epoch,
            digest: None,
            downloaded: false,
            dev: None,
        });
    }
    out
}

/// Everything at and below `rel` in the source: (path relative to `rel`,
/// metadata, host path). The root itself comes first with an empty path.
fn list(source: &Source<'_>, rel: &str) -> Result<Vec<(String, fs::Metadata, PathBuf)>> {
    match source {
        Source::Context(ctx) => {
            let host = ctx.root.join(rel);
            let meta = fs::metadata(&host).map_err(io("stat", &host))?;
            let mut out = vec![(String::new(), meta, host)];
            let prefix = if rel.is_empty() {
                String::new()
            } else {
                format!("{rel}/")
            };
            for e in &ctx.entries {
                if let Some(sub) = e.path.strip_prefix(&prefix) {
                    if !sub.is_empty() && (rel.is_empty() || e.path.starts_with(&prefix)) {
                        out.push((sub.to_string(), e.meta.clone(), ctx.root.join(&e.path)));
                    }
                }
            }
            Ok(out)
        }
        Source::Tree(root) => {
            // The named path itself follows symlinks; inside, links are
            // copied as links.
            let host = resolve_in_root(root, rel);
            let meta = fs::metadata(&host).map_err(io("stat", &host))?;
            let mut out = vec![(String::new(), meta.clone(), host.clone())];
            if meta.is_dir() {
                walk_tree(&host, "", &mut out)?;
            }
            Ok(out)
        }
    }
}

fn walk_tree(dir: &Path, rel: &str, out: &mut Vec<(String, fs::Metadata, PathBuf)>) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io("read directory", dir))?
        .filter_map(|e| e.ok())
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let host = e.path();
        let meta = fs::symlink_metadata(&host).map_err(io("stat", &host))?;
        let is_dir = meta.is_dir();
        out.push((path.clone(), meta, host.clone()));
        if is_dir {
            walk_tree(&host, &path, out)?;
        }
    }
    Ok(())
}

impl Planned {
    /// The host file it copies, if it is one.
    pub(crate) fn host_path(&self) -> Option<&Path> {
        match &self.content {
            Content::File(p) => Some(p),
            _ => None,
        }
    }

    /// A local tar archive (plain, gzip, bzip2, xz or zstd) that ADD
    /// extracts.
    pub(crate) fn is_archive(&self) -> bool {
        let Some(p) = self.host_path().filter(|_| !self.downloaded) else {
            return false;
        };
        let mut head = [0u8; 512];
        let n = fs::File::open(p)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        crate::archive::looks_like_archive(&head[..n])
    }
}

/// The part of the cache key that describes what the copy writes.
pub(crate) fn describe(plan: &[Planned]) -> String {
    let mut s = String::new();
    for p in plan {
        let kind = match &p.content {
            Content::Dir => "d",
            Content::File(_) => "f",
            Content::Symlink(_) => "l",
            Content::Data(_) => "h",
        };
        s.push_str(&format!(
            "{kind} {} {:o} {}:{} {}\n",
            p.dest,
            p.mode,
            p.uid,
            p.gid,
            p.digest.as_deref().unwrap_or("-")
        ));
    }
    s
}

/// Writes the planned entries as a tar stream. With `local`, files are
/// not in it: each is an empty entry marked with its index in `plan`
/// (`kiln_layer::LOCAL_FILE_PAX`) for `kiln_layer::apply_local` to copy
/// in the kernel through [`open_local`].
pub(crate) fn write_tar<W: Write>(plan: &[Planned], out: W, local: bool) -> Result<W> {
    let mut tar = tar::Builder::new(out);
    for (i, p) in plan.iter().enumerate() {
        let mut h = tar::Header::new_gnu();
        h.set_mode(p.mode);
        h.set_uid(p.uid);
        h.set_gid(p.gid);
        h.set_mtime(p.mtime);
        let err = |e: std::io::Error| BuildError::Io {
            what: "write copy stream for",
            path: PathBuf::from(&p.dest),
            source: e,
        };
        match &p.content {
            Content::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, format!("{}/", p.dest), std::io::empty())
                    .map_err(err)?;
            }
            Content::File(_) if local => {
                let id = i.to_string();
                tar.append_pax_extensions([(kiln_layer::LOCAL_FILE_PAX, id.as_bytes())])
                    .map_err(err)?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(0);
                tar.append_data(&mut h, &p.dest, std::io::empty())
                    .map_err(err)?;
            }
            Content::File(host) => {
                let f = fs::File::open(host).map_err(io("read", host))?;
                let len = f.metadata().map_err(io("stat", host))?.len();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(len);
                tar.append_data(&mut h, &p.dest, f).map_err(err)?;
            }
            Content::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &p.dest, target).map_err(err)?;
            }
            Content::Data(bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, &p.dest, &bytes[..]).map_err(err)?;
            }
        }
    }
    tar.into_inner().map_err(io("finish copy stream", "/"))
}

/// Opens the file of `plan[id]`, for a stream [`write_tar`] wrote with
/// `local`.
pub(crate) fn open_local(plan: &[Planned], id: u64) -> std::io::Result<kiln_layer::LocalFile> {
    let planned = usize::try_from(id).ok().and_then(|i| plan.get(i));
    let path = planned
        .and_then(Planned::host_path)
        .ok_or_else(|| std::io::Error::other(format!("no local file {id} in the copy")))?;
    Ok(kiln_layer::LocalFile {
        file: fs::File::open(path)?,
        dev: planned.and_then(|p| p.dev),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chmod_forms() {
        assert_eq!(chmod("755", 0o644, false).unwrap(), 0o755);
        assert_eq!(chmod("u=rwx,g=rx", 0o600, false).unwrap(), 0o750);
        assert_eq!(chmod("o+r", 0o640, false).unwrap(), 0o644);
        assert_eq!(chmod("a-w", 0o666, false).unwrap(), 0o444);
        assert!(chmod("u=q", 0o644, false).is_err());
    }
}
