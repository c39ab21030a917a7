//! Mounts as data (what a snapshot needs mounted, for the caller to mount:
//! a container runtime puts them in its spec), and a helper that mounts
//! them for callers that just want a directory.

use std::path::{Path, PathBuf};

use rustix::mount::{mount as sys_mount, unmount, MountFlags, UnmountFlags};

use crate::error::{Result, SnapshotError};

/// One mount, as containerd's snapshotters return them: `kind` is the
/// file system type (`overlay`, or `bind`), `options` the mount options
/// (`ro`, `rbind`, overlayfs' `lowerdir=`/`upperdir=`/`workdir=`, with
/// `,` and `:` in paths escaped by a backslash as overlayfs reads them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub source: PathBuf,
    pub options: Vec<String>,
}

impl Mount {
    /// A bind of `dir` (read-only with `ro`).
    pub(crate) fn bind(dir: PathBuf, ro: bool) -> Mount {
        let mut options = vec!["rbind".to_string()];
        options.push(if ro { "ro" } else { "rw" }.to_string());
        Mount {
            kind: "bind".into(),
            source: dir,
            options,
        }
    }

    /// An overlay of `lowers` (top first) with a writable `upper` and its
    /// work dir, or read-only without one (then at least two lowers:
    /// overlayfs refuses a read-only mount of one; a single lower is a
    /// bind instead).
    pub(crate) fn overlay(lowers: &[PathBuf], upper: Option<(&Path, &Path)>) -> Mount {
        let lowerdir = lowers
            .iter()
            .map(|p| escape(&p.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(":");
        let mut options = Vec::new();
        if upper.is_none() {
            options.push("ro".to_string());
        }
        options.push(format!("lowerdir={lowerdir}"));
        if let Some((upper, work)) = upper {
            options.push(format!("upperdir={}", escape(&upper.to_string_lossy())));
            options.push(format!("workdir={}", escape(&work.to_string_lossy())));
        }
        Mount {
            kind: "overlay".into(),
            source: PathBuf::from("overlay"),
            options,
        }
    }
}

/// overlayfs splits options on `,` and lower dirs on `:`; both can be
/// escaped with a backslash.
fn escape(p: &str) -> String {
    p.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(':', "\\:")
}

/// A mounted directory; unmounted (lazily) when dropped.
#[derive(Debug)]
pub struct Mounted {
    path: PathBuf,
    mounted: bool,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Mounts what a snapshot returned at `target` (an existing directory).
/// A bind is not mounted: its source directory is the result (binding
/// needs privileges the native backend must not need, and a build step
/// only needs the path); a runtime that wants a real bind mounts the
/// [`Mount`] itself.
pub fn mount(mounts: &[Mount], target: &Path) -> Result<Mounted> {
    let [m] = mounts else {
        return Err(SnapshotError::Mount {
            path: target.to_path_buf(),
            source: std::io::Error::other(format!("expected one mount, got {}", mounts.len())),
        });
    };
    match m.kind.as_str() {
        "bind" => Ok(Mounted {
            path: m.source.clone(),
            mounted: false,
        }),
        "overlay" => {
            let ro = m.options.iter().any(|o| o == "ro");
            let data = m
                .options
                .iter()
                .filter(|o| *o != "ro" && *o != "rw")
                .cloned()
                .collect::<Vec<_>>()
                .join(",");
            let flags = if ro {
                MountFlags::RDONLY
            } else {
                MountFlags::empty()
            };
            let data = std::ffi::CString::new(data).map_err(|e| SnapshotError::Mount {
                path: target.to_path_buf(),
                source: std::io::Error::other(e),
            })?;
            sys_mount("overlay", target, "overlay", flags, Some(data.as_c_str())).map_err(|e| {
                SnapshotError::Mount {
                    path: target.to_path_buf(),
                    source: e.into(),
                }
            })?;
            Ok(Mounted {
                path: target.to_path_buf(),
                mounted: true,
            })
        }
        other => Err(SnapshotError::Mount {
            path: target.to_path_buf(),
            source: std::io::Error::other(format!("unknown mount type {other}")),
        }),
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = unmount(&self.path, UnmountFlags::DETACH) {
                tracing::warn!("unmount {}: {e}", self.path.display());
            }
        }
    }
}
