//! `docker diff`: what a container changed in its writable layer, without
//! what the runtime and the container's mounts made only to mount over
//! (docker keeps those in an init layer it never shows).

use std::path::PathBuf;

use kiln_layer::Change;

use crate::containers::Container;
use crate::engine::{open_snapshotter, Engine};
use crate::error::Result;
use crate::record::ContainerConfig;
use crate::spec::{DOCKER_INIT_FILES, INIT_PATH};

/// The paths container `c` mounts over (its volumes, binds and tmpfs, and
/// `--init`'s program) and the files docker's init layer holds
/// (`spec::DOCKER_INIT_FILES`).
pub(crate) fn mount_targets(c: &ContainerConfig) -> Vec<String> {
    let mut targets: Vec<String> = c
        .host
        .mounts
        .iter()
        .map(|m| m.target().to_string())
        .chain(DOCKER_INIT_FILES.iter().map(|f| f.to_string()))
        .collect();
    if c.host.init {
        targets.push(INIT_PATH.to_string());
    }
    targets
}

/// `changes` without the runtime's mountpoints and `c`'s mount targets
/// (see `kiln_exec::filter_mountpoints`), and without the existing
/// directories that only changed because one was created in them (`/etc`
/// when the runtime made `/etc/hosts`).
pub(crate) fn without_mountpoints(changes: Vec<Change>, c: &ContainerConfig) -> Vec<Change> {
    let before: Vec<PathBuf> = changes.iter().map(|c| c.path.clone()).collect();
    let mut kept = kiln_exec::filter_mountpoints(changes, &mount_targets(c));
    let dropped: Vec<PathBuf> = before
        .into_iter()
        .filter(|p| !kept.iter().any(|k| &k.path == p))
        .collect();
    if dropped.is_empty() {
        return kept;
    }
    loop {
        let snapshot: Vec<PathBuf> = kept.iter().map(|c| c.path.clone()).collect();
        kept.retain(|c| {
            let held_dropped = dropped
                .iter()
                .any(|d| d.starts_with(&c.path) && *d != c.path);
            let holds_kept = snapshot
                .iter()
                .any(|p| p.starts_with(&c.path) && *p != c.path);
            !held_dropped || holds_kept
        });
        if kept.len() == snapshot.len() {
            return kept;
        }
    }
}

/// docker diff's order: by path as a string (`/etc` < `/etc-x` <
/// `/etc/x`).
pub fn sort_as_docker(changes: &mut [Change]) {
    changes.sort_by(|a, b| {
        use std::os::unix::ffi::OsStrExt;
        a.path
            .as_os_str()
            .as_bytes()
            .cmp(b.path.as_os_str().as_bytes())
    });
}

impl Engine {
    /// What container `c` changed, as `docker diff` lists it (running or
    /// not).
    pub fn diff(&self, c: &Container) -> Result<Vec<Change>> {
        let snaps = open_snapshotter(&self.root)?;
        let changes = snaps.diff(&c.config.snapshot)?;
        let mut changes = without_mountpoints(changes, &c.config);
        sort_as_docker(&mut changes);
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_layer::ChangeKind;

    fn ch(p: &str, kind: ChangeKind) -> Change {
        Change {
            path: PathBuf::from(p),
            kind,
        }
    }

    #[test]
    fn runtime_files_and_the_directories_they_touched_are_left_out() {
        use ChangeKind::*;
        let mut c = ContainerConfig {
            id: String::new(),
            name: String::new(),
            created: String::new(),
            image: String::new(),
            image_id: String::new(),
            image_manifest: String::new(),
            parent_snapshot: None,
            snapshot: String::new(),
            process: Default::default(),
            host: Default::default(),
        };
        c.host.mounts.push(crate::record::MountConfig::Tmpfs {
            target: "/data/cache".into(),
            size: None,
            exec: false,
        });
        let changes = vec![
            ch("data", Modified),
            ch("data/cache", Added),
            ch("dev", Added),
            ch("etc", Modified),
            ch("etc/hosts", Added),
            ch("etc-x", Added),
            ch("root", Modified),
            ch("root/.ash_history", Added),
        ];
        let mut kept = without_mountpoints(changes, &c);
        sort_as_docker(&mut kept);
        let lines: Vec<String> = kept.iter().map(|c| c.to_string()).collect();
        assert_eq!(lines, ["A /etc-x", "C /root", "A /root/.ash_history"]);
    }
}
