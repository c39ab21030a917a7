//! Ending containers: `kill`, the forwarded `signal`, `stop` (stop
//! signal, timeout, SIGKILL), `wait`, and `remove` with everything a
//! container holds (`destroy`).

use std::time::{Duration, Instant};

use kiln_store::Store;

use super::{gc_root_name, monitor_alive, open_snapshotter, Engine, POLL};
use crate::containers::Container;
use crate::error::{ContainerError, Result};
use crate::record::{MountConfig, Status};

impl Engine {
    /// Sends `signal` to container `id`'s process; a user's kill or stop
    /// is never followed by a restart.
    pub fn kill(&self, id: &str, signal: i32) -> Result<()> {
        let c = self.reconciled(id)?;
        if c.state.status != Status::Running {
            return Err(ContainerError::NotRunning(id.to_string()));
        }
        self.containers
            .update_state(id, |s| s.stopped_by_user = true)?;
        let exec = self.executor(&c.config.host)?;
        match exec.container(id) {
            Ok(container) => container.kill(signal)?,
            // Ended since the state was read (see `stop_with`).
            Err(kiln_exec::ExecError::NotFound(_)) => {
                return Err(ContainerError::NotRunning(id.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Passes `signal` to container `id`'s process as an attached `run`
    /// forwards what it gets (no user stop: the restart policy applies).
    pub fn signal(&self, id: &str, signal: i32) -> Result<()> {
        let c = self.containers.load(id)?;
        if c.state.status != Status::Running {
            return Err(ContainerError::NotRunning(id.to_string()));
        }
        self.executor(&c.config.host)?.container(id)?.kill(signal)?;
        Ok(())
    }

    /// docker's `stop`: the stop signal, `timeout` to end, then SIGKILL.
    pub fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<()> {
        let c = self.reconciled(id)?;
        let signal = c
            .config
            .process
            .stop_signal
            .as_deref()
            .map(crate::signal::parse)
            .transpose()
            .map_err(ContainerError::InvalidConfig)?
            .unwrap_or(15);
        self.stop_with(id, signal, timeout)
    }

    /// `stop` with `signal` first (`stop -s`).
    pub fn stop_with(&self, id: &str, signal: i32, timeout: Option<Duration>) -> Result<()> {
        let c = self.reconciled(id)?;
        if !matches!(c.state.status, Status::Running | Status::Restarting) {
            // docker: stopping a stopped container is not an error.
            return Ok(());
        }
        self.containers
            .update_state(id, |s| s.stopped_by_user = true)?;
        if c.state.status == Status::Restarting {
            return self.wait_stopped(id, Duration::from_secs(70)).map(drop);
        }
        let timeout = timeout.unwrap_or_else(|| {
            Duration::from_secs(c.config.process.stop_timeout.unwrap_or(10).max(0) as u64)
        });
        let exec = self.executor(&c.config.host)?;
        let container = match exec.container(id) {
            Ok(container) => container,
            // It ended since the state was read, and its monitor deleted
            // the runtime's container (the lean monitor's exec back into
            // kiln makes that moment longer): nothing left to signal.
            Err(kiln_exec::ExecError::NotFound(_)) => {
                return self.wait_stopped(id, Duration::from_secs(30)).map(drop)
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = container.kill(signal) {
            tracing::debug!("stop signal to {id}: {e}");
        }
        if self.wait_stopped(id, timeout)? {
            return Ok(());
        }
        if let Err(e) = container.kill(9) {
            tracing::debug!("SIGKILL to {id}: {e}");
        }
        self.wait_stopped(id, Duration::from_secs(30)).map(drop)
    }

    /// Waits up to `limit` for container `id` to stop running; whether it
    /// did.
    fn wait_stopped(&self, id: &str, limit: Duration) -> Result<bool> {
        let end = Instant::now() + limit;
        loop {
            let c = self.reconciled(id)?;
            // A live monitor still has work after the process ended: the
            // restart decision, `--rm`.
            if !matches!(c.state.status, Status::Running | Status::Restarting)
                && !monitor_alive(c.state.monitor)
            {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }

    /// docker's `wait`: blocks until container `id` stops; its exit code.
    /// A container removed meanwhile (`--rm`) gives its last code.
    pub fn wait(&self, id: &str) -> Result<i32> {
        let mut last = 0;
        loop {
            match self.reconciled(id) {
                Ok(c) => {
                    last = c.state.exit_code;
                    let done = match c.state.status {
                        Status::Exited | Status::Dead => !monitor_alive(c.state.monitor),
                        // Never started: docker's wait blocks until it is;
                        // a failed start has its code already.
                        Status::Created => !c.state.error.is_empty(),
                        _ => false,
                    };
                    if done {
                        return Ok(c.state.exit_code);
                    }
                }
                Err(ContainerError::NotFound(_)) => return Ok(last),
                Err(e) => return Err(e),
            }
            std::thread::sleep(POLL);
        }
    }

    /// docker's `rm`: refused while it runs unless `force` (then killed
    /// first); `volumes` also removes its anonymous volumes. Named volumes
    /// always stay.
    pub fn remove(&self, store: &Store, id: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.reconciled(id)?;
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            if !force {
                return Err(ContainerError::Running {
                    id: c.config.id.clone(),
                    state: if c.state.status == Status::Running {
                        "running"
                    } else {
                        "restarting"
                    },
                });
            }
            self.containers
                .update_state(id, |s| s.stopped_by_user = true)?;
            if c.state.status == Status::Running {
                if let Ok(container) = self.executor(&c.config.host)?.container(id) {
                    let _ = container.kill(9);
                }
            }
            if !self.wait_stopped(id, Duration::from_secs(10))? {
                // A monitor in its restart back-off: end it; the clean-up
                // below does its work.
                if let Some((pid, _)) = c.state.monitor {
                    if monitor_alive(c.state.monitor) {
                        if let Some(p) = rustix::process::Pid::from_raw(pid) {
                            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                        }
                    }
                }
            }
        }
        self.destroy(store, &c, volumes)
    }

    /// Removes everything of a stopped container: the runtime's record,
    /// its mounted root, its writable layer, the GC root on its image,
    /// anonymous volumes when asked, and the record last.
    pub(crate) fn destroy(&self, store: &Store, c: &Container, volumes: bool) -> Result<()> {
        let id = c.id();
        self.containers
            .update_state(id, |s| s.status = Status::Removing)?;
        if let Ok(exec) = self.executor(&c.config.host) {
            if let Ok(container) = exec.container(id) {
                if let Err(e) = container.delete(true) {
                    tracing::warn!("removing the runtime container of {id}: {e}");
                }
            }
        }
        crate::monitor::unmount_rootfs(&self.containers.dir_of(id));
        let snaps = open_snapshotter(&self.root)?;
        match snaps.remove(&c.config.snapshot) {
            Ok(()) | Err(kiln_snapshot::SnapshotError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        store.remove_gc_root(&gc_root_name(id))?;
        if volumes {
            let anonymous: Vec<String> = c
                .config
                .host
                .mounts
                .iter()
                .filter_map(|m| match m {
                    MountConfig::Volume {
                        name,
                        anonymous: true,
                        ..
                    } => Some(name.clone()),
                    _ => None,
                })
                .collect();
            self.remove_volumes(&anonymous);
        }
        self.containers.remove_record(id)
    }
}
