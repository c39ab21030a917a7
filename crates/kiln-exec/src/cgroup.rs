//! Reading a container's cgroup: whether the kernel OOM-killed in it, and
//! the figures `kiln stats` shows. `cgroups_path` is the spec's
//! `linux.cgroupsPath` (`/kiln/<id>`), found under `/sys/fs/cgroup` on
//! cgroup v2, or under each controller's hierarchy on v1 (and hybrid
//! hosts, where runc and libcontainer use v1 too).

use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// v1 reports "no limit" as a huge page-aligned number (2^63 - 4096).
const V1_UNLIMITED: u64 = 1 << 62;

/// One reading of a container's cgroup; a figure the kernel does not
/// offer is 0 (`memory_limit`: `None`, no limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Bytes in use, less the inactive file cache (as `docker stats`
    /// counts it).
    pub memory_usage: u64,
    /// Bytes, or `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Tasks in the cgroup.
    pub pids: u64,
    /// CPU time used, in nanoseconds.
    pub cpu_usage_nsec: u64,
}

/// Whether the kernel killed a process of the cgroup for lack of memory
/// (`oom_kill` in v2's `memory.events` or v1's `memory.oom_control`; on
/// v1 kernels without that line, whether the limit was ever hit).
pub fn oom_killed(cgroups_path: &str) -> bool {
    oom_killed_in(Path::new(CGROUP_ROOT), cgroups_path)
}

/// See [`CgroupStats`].
pub fn stats(cgroups_path: &str) -> CgroupStats {
    stats_in(Path::new(CGROUP_ROOT), cgroups_path)
}

/// Removes the container's (empty) cgroup directories in every
/// hierarchy: the runtime's delete normally does, but a runtime killed
/// half-way or a failed delete leaves them, and each one left costs the
/// kernel memory. A cgroup with processes in it is refused by the kernel
/// and kept.
pub(crate) fn remove(cgroups_path: &str) {
    remove_in(Path::new(CGROUP_ROOT), cgroups_path)
}

fn remove_in(root: &Path, cgroups_path: &str) {
    let rel = cgroups_path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|p| p == ".." || p.is_empty()) {
        return;
    }
    let dirs: Vec<PathBuf> = if is_v2(root) {
        vec![root.join(rel)]
    } else {
        std::fs::read_dir(root)
            .map(|rd| rd.flatten().map(|e| e.path().join(rel)).collect())
            .unwrap_or_default()
    };
    for d in dirs {
        match std::fs::remove_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::debug!("removing cgroup {}: {e}", d.display()),
        }
    }
}

fn is_v2(root: &Path) -> bool {
    root.join("cgroup.controllers").is_file()
}

/// The cgroup's directory for `controller` (v1) or the unified one.
fn dir(root: &Path, controller: &str, cgroups_path: &str) -> PathBuf {
    let rel = cgroups_path.trim_start_matches('/');
    if is_v2(root) {
        root.join(rel)
    } else {
        root.join(controller).join(rel)
    }
}

fn read(path: PathBuf) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn number(path: PathBuf) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// The value of `key` in a flat keyed file (`memory.events`, `memory.stat`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn oom_killed_in(root: &Path, cgroups_path: &str) -> bool {
    let mem = dir(root, "memory", cgroups_path);
    if is_v2(root) {
        return read(mem.join("memory.events"))
            .and_then(|t| keyed(&t, "oom_kill"))
            .is_some_and(|n| n > 0);
    }
    match read(mem.join("memory.oom_control")).and_then(|t| keyed(&t, "oom_kill")) {
        Some(n) => n > 0,
        None => number(mem.join("memory.failcnt")).is_some_and(|n| n > 0),
    }
}

fn stats_in(root: &Path, cgroups_path: &str) -> CgroupStats {
    let mem = dir(root, "memory", cgroups_path);
    let pids = number(dir(root, "pids", cgroups_path).join("pids.current")).unwrap_or(0);
    if is_v2(root) {
        let usage = number(mem.join("memory.current")).unwrap_or(0);
        let inactive = read(mem.join("memory.stat"))
            .and_then(|t| keyed(&t, "inactive_file"))
            .unwrap_or(0);
        let limit = read(mem.join("memory.max")).and_then(|t| t.trim().parse().ok());
        let cpu = read(mem.join("cpu.stat"))
            .and_then(|t| keyed(&t, "usage_usec"))
            .unwrap_or(0);
        return CgroupStats {
            memory_usage: usage.saturating_sub(inactive),
            memory_limit: limit,
            pids,
            cpu_usage_nsec: cpu.saturating_mul(1000),
        };
    }
    let usage = number(mem.join("memory.usage_in_bytes")).unwrap_or(0);
    let inactive = read(mem.join("memory.stat"))
        .and_then(|t| keyed(&t, "total_inactive_file"))
        .unwrap_or(0);
    let limit = number(mem.join("memory.limit_in_bytes")).filter(|l| *l < V1_UNLIMITED);
    let cpu = number(dir(root, "cpuacct", cgroups_path).join("cpuacct.usage")).unwrap_or(0);
    CgroupStats {
        memory_usage: usage.saturating_sub(inactive),
        memory_limit: limit,
        pids,
        cpu_usage_nsec: cpu,
    }
}

#[cfg(test)]
mod tests {

    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn leftover_cgroups_are_removed_in_every_hierarchy_but_never_outside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for c in ["memory", "pids"] {
            std::fs::create_dir_all(r.join(c).join("kiln/c")).unwrap();
        }
        std::fs::create_dir_all(r.join("memory/kiln/busy/child")).unwrap();
        remove_in(r, "/kiln/c");
        assert!(!r.join("memory/kiln/c").exists() && !r.join("pids/kiln/c").exists());
        assert!(r.join("memory/kiln").is_dir());
        // Not empty: kept. Escapes: ignored.
        remove_in(r, "/kiln/busy");
        assert!(r.join("memory/kiln/busy").is_dir());
        remove_in(r, "/kiln/../kiln");
        assert!(r.join("memory/kiln").is_dir());
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn v2_files_are_read_from_the_unified_tree() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(r, "cgroup.controllers", "cpu memory pids\n");
        write(
            r,
            "kiln/c/memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        write(r, "kiln/c/memory.current", "1048576\n");
        write(r, "kiln/c/memory.stat", "anon 1\ninactive_file 4096\n");
        write(r, "kiln/c/memory.max", "max\n");
        write(r, "kiln/c/cpu.stat", "usage_usec 250\nuser_usec 200\n");
        write(r, "kiln/c/pids.current", "3\n");
        assert!(oom_killed_in(r, "/kiln/c"));
        assert!(!oom_killed_in(r, "/kiln/other"));
        assert_eq!(
            stats_in(r, "/kiln/c"),
            CgroupStats {
                memory_usage: 1048576 - 4096,
                memory_limit: None,
                pids: 3,
                cpu_usage_nsec: 250_000,
            }
        );
        write(r, "kiln/c/memory.max", "6291456\n");
        assert_eq!(stats_in(r, "/kiln/c").memory_limit, Some(6291456));
    }

    #[test]
    fn v1_files_are_read_per_controller() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(
            r,
            "memory/kiln/c/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        );
        write(r, "memory/kiln/c/memory.usage_in_bytes", "8192\n");
        write(
            r,
            "memory/kiln/c/memory.stat",
            "cache 0\ntotal_inactive_file 4096\n",
        );
        write(
            r,
            "memory/kiln/c/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(r, "cpuacct/kiln/c/cpuacct.usage", "777\n");
        write(r, "pids/kiln/c/pids.current", "2\n");
        assert!(!oom_killed_in(r, "/kiln/c"));
        assert_eq!(
            stats_in(r, "kiln/c"),
            CgroupStats {
                memory_usage: 4096,
                memory_limit: None,
                pids: 2,
                cpu_usage_nsec: 777,
            }
        );
        write(
            r,
            "memory/kiln/c/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        assert!(oom_killed_in(r, "/kiln/c"));
        // Older kernels: no oom_kill line, the limit's fail count.
        write(
            r,
            "memory/kiln/d/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\n",
        );
        write(r, "memory/kiln/d/memory.failcnt", "5\n");
        assert!(oom_killed_in(r, "/kiln/d"));
    }
}
