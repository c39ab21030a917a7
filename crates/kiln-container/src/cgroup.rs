//! A container's cgroup, found from its init (`/proc/<pid>/cgroup`) on a
//! cgroup v1 or v2 host, and freezing it: `stats` reads it, `commit
//! --pause` freezes it (the runtime interface has no pause; the cgroup
//! freezer stops every process without a signal they could see).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{io, ContainerError, Result};

/// The cgroup directories of process `pid`: each v1 controller's (by
/// controller name) and the v2 one (name "").
pub(crate) fn cgroup_dirs(pid: i32) -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            let unified = if base.join("cgroup.controllers").exists() {
                base.to_path_buf()
            } else {
                base.join("unified")
            };
            dirs.push((String::new(), unified.join(rel)));
            continue;
        }
        for c in controllers.split(',') {
            // Mounted alone (`cpuacct`) or with its co-mounted ones
            // (`cpu,cpuacct`).
            let alone = base.join(c).join(rel);
            let together = base.join(controllers).join(rel);
            let dir = if alone.is_dir() { alone } else { together };
            dirs.push((c.to_string(), dir));
        }
    }
    dirs
}

/// A frozen cgroup, thawed when dropped.
#[derive(Debug)]
pub(crate) struct Frozen {
    /// The file written to thaw, and what is written.
    control: PathBuf,
    thaw: &'static str,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        tracing::debug!("thawing {}", self.control.display());
        if let Err(e) = std::fs::write(&self.control, self.thaw) {
            tracing::warn!("thawing {}: {e}", self.control.display());
        }
    }
}

/// Freezes the cgroup of the container whose init is `pid` and waits
/// until every process in it is stopped; `None` when it has no freezer
/// of its own (it shares the caller's cgroup: freezing that would stop
/// kiln too).
pub(crate) fn freeze(pid: i32) -> Result<Option<Frozen>> {
    let dirs = cgroup_dirs(pid);
    let mine = cgroup_dirs(std::process::id() as i32);
    let own = |name: &str| {
        let theirs = dirs.iter().find(|(c, _)| c == name).map(|(_, d)| d);
        let ours = mine.iter().find(|(c, _)| c == name).map(|(_, d)| d);
        theirs.filter(|t| Some(*t) != ours).cloned()
    };
    let (control, freeze, thaw, state, frozen) = match own("freezer") {
        Some(d) if d.join("freezer.state").exists() => (
            d.join("freezer.state"),
            "FROZEN",
            "THAWED",
            d.join("freezer.state"),
            "FROZEN",
        ),
        _ => match own("") {
            Some(d) if d.join("cgroup.freeze").exists() => (
                d.join("cgroup.freeze"),
                "1",
                "0",
                d.join("cgroup.events"),
                "frozen 1",
            ),
            _ => return Ok(None),
        },
    };
    std::fs::write(&control, freeze).map_err(io("freeze", &control))?;
    let guard = Frozen { control, thaw };
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let now = std::fs::read_to_string(&state).map_err(io("read", &state))?;
        if now.lines().any(|l| l.trim() == frozen) {
            tracing::debug!("froze {}", guard.control.display());
            return Ok(Some(guard));
        }
        if Instant::now() >= end {
            return Err(ContainerError::InvalidConfig(format!(
                "the container's processes did not freeze in 10s ({}: {})",
                state.display(),
                now.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_cgroup_is_never_frozen() {
        let me = std::process::id() as i32;
        assert!(!cgroup_dirs(me).is_empty());
        assert!(matches!(freeze(me), Ok(None)));
    }
}
