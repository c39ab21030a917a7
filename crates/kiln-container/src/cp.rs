//! `docker cp`: files between a container (running or not) and the host,
//! or a tar stream, with docker's rules for what lands where:
//!
//! - a file onto a directory goes into it; onto a file or a free name, it
//!   is that file (a free name ending in `/` is an error: "no such
//!   directory");
//! - a directory onto a free name becomes it; into an existing directory
//!   it goes in under its own name, or only its contents with `SRC/.`; a
//!   directory onto a file is an error;
//! - the destination's parent must exist.
//!
//! Container paths resolve inside the container's root only
//! (`openat2(RESOLVE_IN_ROOT)`: a link in the container never leads to
//! the host), and writes go through kiln-layer's safe apply, rooted at the
//! destination directory. A running container is reached through its
//! init's `/proc/PID/root` (its volumes, binds and tmpfs included, as
//! docker sees them); a stopped one through its writable layer, mounted
//! for the copy, or through the volume or bind a path falls under.
//!
//! Files copied into a container are owned by root unless `archive`
//! (docker's `-a`) keeps the source's owners; files copied to the host are
//! owned by the caller; a tar stream keeps what it says.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

// docker cleans container paths as image paths are: `.`, `..` and empty
// parts taken lexically.
use kiln_dockerfile::config::clean_abs as clean;
use kiln_layer::ApplyOptions;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::containers::Container;
use crate::engine::{open_snapshotter, Engine};
use crate::error::{io, ContainerError, Result};
use crate::record::{MountConfig, Status};

/// Where `cp` reads from when the container is the destination.
pub enum CopySource {
    /// A host path (`kiln cp ./x c:/y`).
    Host(PathBuf),
    /// A tar stream to extract (`kiln cp - c:/dir`).
    Tar(Box<dyn Read + Send>),
}

/// Where `cp` writes when the container is the source.
pub enum CopyDest {
    /// A host path (`kiln cp c:/x ./y`).
    Host(PathBuf),
    /// A tar stream of the source (`kiln cp c:/x -`).
    Tar(Box<dyn Write + Send>),
}

/// A directory tree one side of the copy happens in, held as long as the
/// copy needs it (a mounted writable layer is unmounted on drop).
struct Root {
    path: PathBuf,
    _mounted: Option<kiln_snapshot::Mounted>,
    _dir: Option<tempfile::TempDir>,
}

impl Root {
    fn plain(path: PathBuf) -> Root {
        Root {
            path,
            _mounted: None,
            _dir: None,
        }
    }
}

/// What a path named in the copy is, after resolution.
struct Found {
    /// An `O_PATH` descriptor of it; `/proc/self/fd/N` reaches it.
    fd: OwnedFd,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Symlink,
    Other,
}

impl Found {
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// `path` inside the tree at `root`, links resolved as if `root` were `/`
/// (the last one only when `follow`); `None` when there is nothing there.
fn resolve(root: &Path, path: &str, follow: bool) -> Result<Option<Found>> {
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", root)(e.into()))?;
    // A trailing `/` is checked by the callers (what is there is known).
    let rel = path.trim_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let fd = match rustix::fs::openat2(&dir, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(io("open", root.join(rel))(e.into())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| io("stat", root.join(rel))(e.into()))?;
    let kind = match st.st_mode & 0o170000 {
        0o040000 => Kind::Dir,
        0o120000 => Kind::Symlink,
        _ => Kind::Other,
    };
    Ok(Some(Found { fd, kind }))
}

/// The parent and last name of a cleaned path (`/` has no name).
fn split(path: &str) -> (String, String) {
    match path.rsplit_once('/') {
        Some((parent, name)) => (clean(parent), name.to_string()),
        None => ("/".into(), path.to_string()),
    }
}

/// A host path made absolute against the working directory, as typed
/// otherwise (a trailing `/` or `/.` means something to `cp`).
fn host_absolute(path: &Path) -> Result<String> {
    let s = path.to_string_lossy().into_owned();
    if path.is_absolute() {
        return Ok(s);
    }
    let cwd = std::env::current_dir().map_err(io("find the working directory for", path))?;
    Ok(format!(
        "{}/{s}",
        cwd.to_string_lossy().trim_end_matches('/')
    ))
}

/// Whether `path` asks for a directory's contents (`SRC/.`).
fn wants_contents(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

impl Engine {
    /// The tree container `c`'s `path` is in, and the path inside it.
    fn root_for(&self, c: &Container, path: &str) -> Result<(Root, String)> {
        let cleaned = clean(path);
        if let (Status::Running, Some(pid)) = (c.state.status, c.state.pid) {
            return Ok((Root::plain(format!("/proc/{pid}/root").into()), path.into()));
        }
        // Stopped: the volume or bind the path falls under holds it.
        let mut mounts: Vec<&MountConfig> = c.config.host.mounts.iter().collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.target().len()));
        for m in mounts {
            let target = clean(m.target());
            let rest = if cleaned == target {
                Some("/")
            } else {
                cleaned
                    .strip_prefix(&target)
                    .filter(|r| r.starts_with('/') || target == "/")
            };
            let Some(rest) = rest else { continue };
            let host = match m {
                MountConfig::Volume { name, .. } => self.volumes.data(name),
                MountConfig::Bind { source, .. } => source.clone(),
                // Nothing outlives a stopped container's tmpfs.
                MountConfig::Tmpfs { .. } => continue,
            };
            let inside = if wants_contents(path) {
                format!("{rest}/.")
            } else {
                rest.to_string()
            };
            return Ok((Root::plain(host), inside));
        }
        let snaps = open_snapshotter(&self.root)?;
        let mounts = snaps.mounts(&c.config.snapshot)?;
        if let [m] = mounts.as_slice() {
            if m.kind == "bind" {
                return Ok((Root::plain(m.source.clone()), path.into()));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(".cp-")
            .tempdir_in(self.containers.dir_of(c.id()))
            .map_err(io("create a mountpoint in", self.containers.dir_of(c.id())))?;
        let mounted = kiln_snapshot::mount(&mounts, dir.path())?;
        Ok((
            Root {
                path: mounted.path().to_path_buf(),
                _mounted: Some(mounted),
                _dir: Some(dir),
            },
            path.into(),
        ))
    }

    /// `kiln cp CONTAINER:SRC DEST`.
    pub fn copy_from(&self, input: &str, src: &str, dest: CopyDest, follow: bool) -> Result<()> {
        let c = self.get(input)?;
        let (root, inside) = self.root_for(&c, src)?;
        let missing = || ContainerError::NoSuchPath(format!("{input}:{src}"));
        let found = resolve(&root.path, &inside, follow)?.ok_or_else(missing)?;
        if src.ends_with('/') && found.kind != Kind::Dir {
            return Err(ContainerError::InvalidConfig(format!(
                "{input}:{src}: not a directory"
            )));
        }
        let name = split(&clean(src)).1;
        match dest {
            CopyDest::Tar(out) => {
                let name = if wants_contents(src) { "" } else { &name };
                write_tar(&found, name, None, out)
            }
            CopyDest::Host(dest) => {
                let dest_str = host_absolute(&dest)?;
                let me = (
                    rustix::process::geteuid().as_raw(),
                    rustix::process::getegid().as_raw(),
                );
                let shown = dest.to_string_lossy();
                copy_tree(
                    &found,
                    src,
                    &name,
                    Path::new("/"),
                    &dest_str,
                    &shown,
                    Some(me),
                    false,
                )
            }
        }
    }

    /// `kiln cp SRC CONTAINER:DEST`.
    pub fn copy_into(
        &self,
        input: &str,
        src: CopySource,
        dest: &str,
        archive: bool,
        follow: bool,
    ) -> Result<()> {
        let c = self.get(input)?;
        let (root, inside) = self.root_for(&c, dest)?;
        let shown = format!("{input}:{dest}");
        match src {
            CopySource::Tar(stream) => {
                let found = resolve(&root.path, &inside, true)?
                    .ok_or_else(|| ContainerError::NoSuchPath(shown.clone()))?;
                if found.kind != Kind::Dir {
                    return Err(ContainerError::InvalidConfig(format!(
                        "{shown}: the destination of a tar stream must be a directory"
                    )));
                }
                extract(BufReader::new(stream), &found.path())
            }
            CopySource::Host(path) => {
                let s = host_absolute(&path)?;
                let found = resolve(Path::new("/"), &s, follow)?.ok_or_else(|| {
                    ContainerError::InvalidConfig(format!("lstat {s}: no such file or directory"))
                })?;
                if s.ends_with('/') && found.kind != Kind::Dir {
                    return Err(ContainerError::InvalidConfig(format!(
                        "{s}: not a directory"
                    )));
                }
                let name = split(&clean(&s)).1;
                let owner = (!archive).then_some((0, 0));
                copy_tree(&found, &s, &name, &root.path, &inside, &shown, owner, true)
            }
        }
    }
}

/// Copies `src` (found; `src_arg` as typed, `name` its last part) to
/// `dest` inside the tree at `root` by docker's rules (see the module).
#[allow(clippy::too_many_arguments)]
fn copy_tree(
    src: &Found,
    src_arg: &str,
    name: &str,
    root: &Path,
    dest: &str,
    shown: &str,
    owner: Option<(u32, u32)>,
    into_container: bool,
) -> Result<()> {
    let missing = || {
        if into_container {
            ContainerError::NoSuchPath(shown.to_string())
        } else {
            ContainerError::InvalidConfig(format!("{shown}: no such file or directory"))
        }
    };
    let target = resolve(root, dest, true)?;
    // The directory stays open (its /proc path is its descriptor's) until
    // the copy is done.
    let (dir, entry_name): (Found, String) = match target {
        Some(t) if t.kind == Kind::Dir => {
            let name = if src.kind == Kind::Dir && wants_contents(src_arg) {
                ""
            } else {
                name
            };
            (t, name.to_string())
        }
        Some(_) if dest.ends_with('/') => {
            return Err(ContainerError::InvalidConfig(format!(
                "{shown}: not a directory"
            )))
        }
        Some(_) if src.kind == Kind::Dir => {
            return Err(ContainerError::InvalidConfig(format!(
                "cannot copy directory: {shown} is not a directory"
            )))
        }
        None if src.kind != Kind::Dir && dest.ends_with('/') => {
            return Err(ContainerError::InvalidConfig(format!(
                "no such directory: {shown}"
            )))
        }
        // A file over a file, or anything onto a free name in an
        // existing directory.
        _ => {
            let (parent, last) = split(&clean(dest));
            let parent = resolve(root, &parent, true)?
                .filter(|p| p.kind == Kind::Dir)
                .ok_or_else(missing)?;
            (parent, last)
        }
    };
    if entry_name.is_empty() && src.kind != Kind::Dir {
        return Err(ContainerError::InvalidConfig(format!(
            "cannot copy {src_arg} onto {shown}"
        )));
    }
    let dir_path = dir.path();
    let (reader, writer) = std::io::pipe().map_err(io("create a pipe for", &dir_path))?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || write_tar(src, &entry_name, owner, Box::new(writer)));
        let applied = extract(BufReader::new(reader), &dir_path);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(ContainerError::InvalidConfig("the copy failed".into())));
        produced.and(applied)
    })
}

/// Extracts a tar stream into directory `dir`, never writing outside it.
fn extract<R: std::io::BufRead + Send>(stream: R, dir: &Path) -> Result<()> {
    let root = rustix::process::geteuid().is_root();
    let opts = ApplyOptions {
        ownership: root,
        devices: root,
        overlay_whiteouts: false,
        diff_id: false,
    };
    kiln_layer::apply(stream, dir, &opts)?;
    Ok(())
}

/// Writes `src` as a tar stream to `out`: under `name`, or (`name` empty)
/// its directory's contents alone; owners replaced by `owner` when given.
fn write_tar(
    src: &Found,
    name: &str,
    owner: Option<(u32, u32)>,
    out: Box<dyn Write + Send>,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let fail = |e: std::io::Error| ContainerError::Io {
        action: "copy",
        path: PathBuf::from(name),
        source: e,
    };
    if src.kind == Kind::Symlink {
        // The link itself (an O_PATH descriptor of a link is read with
        // readlinkat on an empty path).
        let target = rustix::fs::readlinkat(&src.fd, "", Vec::new()).map_err(|e| fail(e.into()))?;
        let st = rustix::fs::fstat(&src.fd).map_err(|e| fail(e.into()))?;
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_uid(owner.map_or(st.st_uid, |o| o.0) as u64);
        h.set_gid(owner.map_or(st.st_gid, |o| o.1) as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        let target: std::ffi::OsString =
            std::os::unix::ffi::OsStringExt::from_vec(target.into_bytes());
        tar.append_link(&mut h, name, target).map_err(fail)?;
    } else {
        let mut links = HashMap::new();
        append(
            &mut tar,
            &src.path(),
            Path::new(name),
            owner,
            true,
            &mut links,
        )
        .map_err(fail)?;
    }
    tar.into_inner().and_then(|mut w| w.flush()).map_err(fail)
}

/// Appends `path` (and what is below it) as `name`; an empty `name` (the
/// top only) stands for the contents alone. A file already appended under
/// another name (`links`: by device and inode) is a hard link to that
/// name, as docker's archive keeps them, so extraction links them again.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    owner: Option<(u32, u32)>,
    top: bool,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> std::io::Result<()> {
    // The top is a descriptor's /proc path: stat follows it to the file.
    let meta = if top {
        fs::metadata(path)?
    } else {
        fs::symlink_metadata(path)?
    };
    let ft = meta.file_type();
    let skip_self = top && name.as_os_str().is_empty();
    if !skip_self {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        if let Some((uid, gid)) = owner {
            h.set_uid(uid as u64);
            h.set_gid(gid as u64);
        }
        let first = (ft.is_file() && meta.nlink() > 1)
            .then(|| links.entry((meta.dev(), meta.ino())))
            .and_then(|e| match e {
                std::collections::hash_map::Entry::Occupied(o) => Some(o.get().clone()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(name.to_path_buf());
                    None
                }
            });
        if let Some(first) = first {
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            tar.append_link(&mut h, name, first)?;
        } else if ft.is_file() {
            tar.append_data(&mut h, name, fs::File::open(path)?)?;
        } else if ft.is_symlink() {
            tar.append_link(&mut h, name, fs::read_link(path)?)?;
        } else if ft.is_dir() {
            tar.append_data(&mut h, name, std::io::empty())?;
        } else {
            if ft.is_char_device() || ft.is_block_device() {
                let dev = meta.rdev();
                h.set_device_major(rustix::fs::major(dev))?;
                h.set_device_minor(rustix::fs::minor(dev))?;
            }
            h.set_size(0);
            tar.append_data(&mut h, name, std::io::empty())?;
        }
    }
    if ft.is_dir() {
        let mut children: Vec<_> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        children.sort();
        for child in children {
            append(
                tar,
                &path.join(&child),
                &name.join(&child),
                owner,
                false,
                links,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean_and_split_as_docker_reads_them() {
        assert_eq!(clean("a/./b/../c/"), "/a/c");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(split("/a/b"), ("/a".to_string(), "b".to_string()));
        assert_eq!(split("/a"), ("/".to_string(), "a".to_string()));
        assert!(wants_contents("/x/.") && wants_contents(".") && !wants_contents("/x/"));
    }

    #[test]
    fn a_link_in_the_root_never_leads_out_of_it() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("/etc", t.path().join("out")).unwrap_or_else(|e| panic!("{e}"));
        // /etc inside the root does not exist: the link resolves there.
        assert!(resolve(t.path(), "/out/passwd", true)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none());
        let link = resolve(t.path(), "/out", false).unwrap_or_else(|e| panic!("{e}"));
        assert!(link.is_some_and(|f| f.kind == Kind::Symlink));
    }
}
