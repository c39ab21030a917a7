//! Mountpoints are not content: a process's change set loses what the
//! runtime and the extra mounts created only to mount over. It lives
//! beside [`RUNTIME_MOUNTPOINTS`] because the runtime knows what it mounts;
//! RUN steps, and the coming `kiln diff`/`commit`, filter with it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::spec::RUNTIME_MOUNTPOINTS;
use kiln_layer::{Change, ChangeKind};

/// Drops what the runtime (or a RUN --mount) created only as mountpoints:
/// `/proc`, `/dev`, `/sys`, `/etc/hosts`… and the `--mount` targets, when
/// they appear as additions (with everything below them), then the
/// directories that were added only to hold them.
///
/// Linear in the changes times their depth: each question ("is an
/// ancestor a mountpoint?", "is something kept below?") is answered by
/// walking a path's ancestors through hash sets, as change sets of big
/// steps hold hundreds of thousands of paths.
pub fn filter_mountpoints(changes: Vec<Change>, extra: &[String]) -> Vec<Change> {
    let extra: HashSet<PathBuf> = extra
        .iter()
        .map(|t| PathBuf::from(t.trim_start_matches('/')))
        .collect();
    let is_mountpoint = |p: &Path| {
        extra.contains(p)
            || RUNTIME_MOUNTPOINTS.iter().any(|m| {
                p == Path::new(m) || (matches!(*m, "proc" | "dev" | "sys") && p.starts_with(m))
            })
    };
    let added_mountpoints: HashSet<&Path> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Added && is_mountpoint(&c.path))
        .map(|c| c.path.as_path())
        .collect();
    if added_mountpoints.is_empty() {
        return changes;
    }
    // Directories above a mountpoint (not the mountpoint itself).
    let above_mountpoint: HashSet<&Path> = added_mountpoints
        .iter()
        .flat_map(|m| m.ancestors().skip(1))
        .collect();
    let under_mountpoint = |p: &Path| p.ancestors().any(|a| added_mountpoints.contains(a));
    // An added directory above a mountpoint goes when nothing else stays
    // below it: what stays is what is neither under a mountpoint nor such
    // a directory itself, and it keeps every directory above it.
    let holds_mountpoint =
        |c: &Change| c.kind == ChangeKind::Added && above_mountpoint.contains(c.path.as_path());
    let mut needed: HashSet<PathBuf> = HashSet::new();
    for c in &changes {
        if under_mountpoint(&c.path) || holds_mountpoint(c) {
            continue;
        }
        for a in c.path.ancestors().skip(1) {
            // Its ancestors were marked by an earlier change already.
            if !needed.insert(a.to_path_buf()) {
                break;
            }
        }
    }
    let drop: Vec<bool> = changes
        .iter()
        .map(|c| under_mountpoint(&c.path) || (holds_mountpoint(c) && !needed.contains(&c.path)))
        .collect();
    changes
        .into_iter()
        .zip(drop)
        .filter_map(|(c, drop)| (!drop).then_some(c))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            path: PathBuf::from(path),
            kind,
        }
    }

    fn paths(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.path.to_str().unwrap()).collect()
    }

    /// The rule as first written (quadratic): the oracle the linear
    /// version must agree with.
    fn reference(changes: Vec<Change>, extra: &[String]) -> Vec<Change> {
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
        let added: Vec<PathBuf> = changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Added && is_mountpoint(&c.path))
            .map(|c| c.path.clone())
            .collect();
        let mut kept: Vec<Change> = changes
            .into_iter()
            .filter(|c| !added.iter().any(|m| c.path.starts_with(m)))
            .collect();
        loop {
            let before = kept.len();
            let snapshot = kept.clone();
            kept.retain(|c| {
                let holds = c.kind == ChangeKind::Added
                    && added.iter().any(|m| m.starts_with(&c.path) && *m != c.path);
                !holds
                    || snapshot
                        .iter()
                        .any(|o| o.path != c.path && o.path.starts_with(&c.path))
            });
            if kept.len() == before {
                return kept;
            }
        }
    }

    #[test]
    fn mountpoints_and_the_directories_made_for_them_go() {
        use ChangeKind::*;
        let changes = vec![
            change("proc", Added),
            change("proc/self", Added),
            change("etc", Modified),
            change("etc/hosts", Added),
            change("mnt", Added),
            change("mnt/a", Added),
            change("mnt/a/cache", Added),
            change("mnt/a/cache/junk", Added),
            change("run", Added),
            change("run/secrets", Added),
            change("run/secrets/s", Added),
            change("run/kept.txt", Added),
            change("srv", Modified),
            change("srv/data", Added),
            change("srv/data/x", Deleted),
            change("tmp/out", Added),
        ];
        let extra = vec![
            "/mnt/a/cache".to_string(),
            "/run/secrets/s".to_string(),
            "/srv/data".to_string(),
        ];
        let out = filter_mountpoints(changes.clone(), &extra);
        assert_eq!(
            paths(&out),
            ["etc", "run", "run/kept.txt", "srv", "tmp/out"],
            "run stays for kept.txt; srv was there before"
        );
        assert_eq!(out, reference(changes, &extra));
    }

    #[test]
    fn many_mountpoints_are_filtered_in_linear_time() {
        use ChangeKind::*;
        // 30,000 mount targets in 3,000 added directories, beside 60,000
        // files that stay: the quadratic rule took minutes on this.
        let mut changes = Vec::new();
        let mut extra = Vec::new();
        for d in 0..3_000 {
            changes.push(change(&format!("m/{d}"), Added));
            for t in 0..10 {
                changes.push(change(&format!("m/{d}/t{t}"), Added));
                extra.push(format!("/m/{d}/t{t}"));
            }
            if d % 2 == 0 {
                changes.push(change(&format!("m/{d}/file"), Added));
            }
        }
        changes.insert(0, change("m", Added));
        for f in 0..60_000 {
            changes.push(change(&format!("data/{}/{f}", f % 100), Added));
        }
        let started = std::time::Instant::now();
        let out = filter_mountpoints(changes, &extra);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        // m, the 1,500 directories with a file (and the files), the data.
        assert_eq!(out.len(), 1 + 1_500 * 2 + 60_000);
        assert!(out.iter().all(|c| !c.path.to_str().unwrap().contains("/t")));
        assert!(!out.iter().any(|c| c.path == Path::new("m/1")));
        assert!(out.iter().any(|c| c.path == Path::new("m/2/file")));
    }

    #[test]
    fn agrees_with_the_quadratic_rule() {
        use ChangeKind::*;
        // Every combination of kinds on a small tree, with mountpoints at
        // several depths.
        let tree = [
            "a", "a/b", "a/b/c", "a/b/c/d", "a/e", "f", "f/g", "proc", "proc/1",
        ];
        let kinds = [Added, Modified, Deleted];
        let extra = vec!["/a/b/c".to_string(), "f/g".to_string(), "/a/e".to_string()];
        for seed in 0..3u32.pow(tree.len() as u32 - 3) {
            let mut n = seed;
            let changes: Vec<Change> = tree
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    // The last three vary with the first ones.
                    let k = if i < tree.len() - 3 {
                        let k = kinds[(n % 3) as usize];
                        n /= 3;
                        k
                    } else {
                        kinds[(seed as usize + i) % 3]
                    };
                    change(p, k)
                })
                .collect();
            assert_eq!(
                filter_mountpoints(changes.clone(), &extra),
                reference(changes.clone(), &extra),
                "{changes:?}"
            );
        }
    }
}
