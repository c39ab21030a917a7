//! Mountpoints are not content: a process's change set loses what the
//! runtime and the extra mounts created only to mount over. It lives
//! beside [`RUNTIME_MOUNTPOINTS`] because the runtime knows what it mounts;
//! RUN steps, and the coming `kiln diff`/`commit`, filter with it.

use std::path::{Path, PathBuf};

use crate::spec::RUNTIME_MOUNTPOINTS;
use kiln_layer::{Change, ChangeKind};

/// Drops what the runtime (or a RUN --mount) created only as mountpoints:
/// `/proc`, `/dev`, `/sys`, `/etc/hosts`… and the `--mount` targets, when
/// they appear as additions (with everything below them), then the
/// directories that were added only to hold them.
pub fn filter_mountpoints(changes: Vec<Change>, extra: &[String]) -> Vec<Change> {
    let extra: Vec<PathBuf> = extra
        .iter()
        .map(|t| PathBuf::from(t.trim_start_matches('/')))
        .collect();
    let is_mountpoint = |p: &Path| {
        extra.iter().any(|t| p == t)
            || RUNTIME_MOUNTPOINTS.iter().any(|m| {
                p == Path::new(m) || (matches!(*m, "proc" | "dev" | "sys") && p.starts_with(m))
            })
    };
    let added_mountpoints: Vec<PathBuf> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Added && is_mountpoint(&c.path))
        .map(|c| c.path.clone())
        .collect();
    let mut kept: Vec<Change> = changes
        .into_iter()
        .filter(|c| !added_mountpoints.iter().any(|m| c.path.starts_with(m)))
        .collect();
    // Parents added only for a mountpoint: nothing else left below them.
    // (Checked only for the few changes that hold a mountpoint.)
    if added_mountpoints.is_empty() {
        return kept;
    }
    loop {
        let before = kept.len();
        let snapshot = kept.clone();
        kept.retain(|c| {
            let holds_mountpoint = c.kind == ChangeKind::Added
                && added_mountpoints
                    .iter()
                    .any(|m| m.starts_with(&c.path) && *m != c.path);
            !holds_mountpoint
                || snapshot
                    .iter()
                    .any(|o| o.path != c.path && o.path.starts_with(&c.path))
        });
        if kept.len() == before {
            break;
        }
    }
    kept
}
