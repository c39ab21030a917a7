//! Orphan cleanup: the RUN containers of kiln processes that died before
//! removing them.

use super::Executor;

/// The pid of the kiln process whose [`Executor::run`] made container `id`.
fn run_owner(id: &str) -> Option<i32> {
    let (pid, n) = id.strip_prefix("kiln-")?.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

impl Executor {
    /// Removes the RUN containers (and bundles) of kiln processes that
    /// died (killed, interrupted) before removing them: [`run`](Self::run)
    /// names them `kiln-<pid>-<n>`, so a dead pid means no one owns them.
    /// Containers with other names (`kiln run`'s) are not touched.
    pub(super) fn remove_orphans(&self) {
        let bundles = self.state.join("bundles");
        let Ok(entries) = std::fs::read_dir(&bundles) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = run_owner(&name) else {
                continue;
            };
            let alive = rustix::process::Pid::from_raw(pid).is_some_and(|p| {
                rustix::process::test_kill_process(p) != Err(rustix::io::Errno::SRCH)
            });
            if alive {
                continue;
            }
            match self.runtime.delete(&name, true) {
                Ok(()) => {
                    if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                        tracing::warn!("removing bundle {}: {e}", entry.path().display());
                    }
                }
                Err(e) => tracing::warn!("removing the orphaned container {name}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_containers_name_their_owner() {
        assert_eq!(run_owner("kiln-4242-7"), Some(4242));
        assert_eq!(run_owner("kiln-web"), None);
        assert_eq!(run_owner("kiln-1-x"), None);
        assert_eq!(run_owner("web"), None);
    }
}
