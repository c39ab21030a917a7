//! Overlay mounts that unmount themselves.

use std::path::{Path, PathBuf};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use crate::error::{Result, SnapshotError};

/// A mounted directory; unmounted (lazily) when dropped. `Mounted::plain`
/// wraps a directory that needs no mount (native backend).
#[derive(Debug)]
pub struct Mounted {
    path: PathBuf,
    mounted: bool,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn plain(path: PathBuf) -> Mounted {
        Mounted {
            path,
            mounted: false,
        }
    }

    /// `lowers` top first; without `upper` the mount is read-only.
    pub(crate) fn overlay(
        target: &Path,
        lowers: &[PathBuf],
        upper: Option<(&Path, &Path)>,
    ) -> Result<Mounted> {
        let mut data = String::from("lowerdir=");
        data.push_str(
            &lowers
                .iter()
                .map(|p| escape(&p.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(":"),
        );
        if let Some((upper, work)) = upper {
            data.push_str(&format!(
                ",upperdir={},workdir={}",
                escape(&upper.to_string_lossy()),
                escape(&work.to_string_lossy())
            ));
        }
        // Without an upper, a single lower must be given twice: overlayfs
        // wants two lowers for a read-only mount.
        if upper.is_none() && lowers.len() == 1 {
            data.push(':');
            data.push_str(&escape(&lowers[0].to_string_lossy()));
        }
        let flags = if upper.is_none() {
            MountFlags::RDONLY
        } else {
            MountFlags::empty()
        };
        let data = std::ffi::CString::new(data).map_err(|e| SnapshotError::Mount {
            path: target.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        mount("overlay", target, "overlay", flags, Some(data.as_c_str())).map_err(|e| {
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
}

/// overlayfs splits options on `,` and lower dirs on `:`; both can be
/// escaped with a backslash.
fn escape(p: &str) -> String {
    p.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(':', "\\:")
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
