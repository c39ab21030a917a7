//! [`Engine`]: containers' lifecycle over the store, the snapshotter and
//! the runtime — create (record, writable layer, volumes), start (spawn
//! the monitor), stop, kill, wait, remove — and the reconciliation that
//! turns a container whose monitor died into an exited one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kiln_exec::{Executor, Runtime};
use kiln_snapshot::{Backend, Snapshotter};
use kiln_store::{Image, Store};

use crate::containers::{new_id, Container, Containers};
use crate::error::{ContainerError, Result};
use crate::names::random_name;
use crate::record::{ContainerConfig, HostConfig, MountConfig, ProcessConfig, Status};
use crate::volumes::Volumes;

mod stop;

/// The hidden first argument that makes kiln a container's monitor:
/// `kiln __kiln-monitor STORE_ROOT ID [--attach]`.
pub const MONITOR_ARG: &str = kiln_monitor::MONITOR_ARG;

/// How often state is polled while waiting for a change another process
/// makes.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Containers of one store.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) root: PathBuf,
    pub(crate) containers: Containers,
    pub(crate) volumes: Volumes,
    /// The kiln binary: the monitor and the builtin runtime re-exec it.
    pub(crate) helper: PathBuf,
}

/// What `create` needs besides the image.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    /// What the user typed for the image.
    pub image: String,
    pub process: ProcessConfig,
    pub host: HostConfig,
    /// `-v NAME:/path` volumes to create when missing, with labels.
    pub volume_labels: BTreeMap<String, String>,
}

/// How `start` connects the caller to the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Return once the process runs (`run -d`, `start`).
    Detached,
    /// The monitor writes the container's output to this process's stdout
    /// and stderr (and reads its stdin with `-i`); the caller waits for
    /// the returned child, whose exit code is the container's.
    Foreground { stdin: bool },
}

pub(crate) fn open_snapshotter(root: &Path) -> Result<Snapshotter> {
    let backend = Backend::recorded(root).unwrap_or_else(|| Backend::detect(root));
    Ok(Snapshotter::open(root, backend)?)
}

pub(crate) fn gc_root_name(id: &str) -> String {
    format!("container-{id}")
}

impl Engine {
    /// `helper` is the kiln binary (the monitor runs it).
    pub fn new(store: &Store, helper: PathBuf) -> Result<Engine> {
        let root = store.root().to_path_buf();
        Ok(Engine {
            containers: Containers::open(&root)?,
            volumes: Volumes::open(&root)?,
            root,
            helper,
        })
    }

    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    pub fn volumes(&self) -> &Volumes {
        &self.volumes
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn executor(&self, host: &HostConfig) -> Result<Executor> {
        let runtime = match &host.runtime {
            Some(p) => Runtime::Binary(p.clone()),
            None => Runtime::Builtin {
                helper: self.helper.clone(),
            },
        };
        Ok(Executor::new(runtime, &self.root.join("exec"))?)
    }

    /// `docker create`: the record, a writable layer on the image's
    /// layers, its volumes. Nothing is left behind when it fails.
    pub fn create(&self, store: &Store, image: &Image, req: CreateRequest) -> Result<Container> {
        // Bad security options fail now, not at every start.
        crate::spec::security_options(&req.host)?;
        let id = new_id()?;
        let name = match req.name {
            Some(n) => n,
            None => self.free_name()?,
        };
        let snapshot = format!("container-{id}");
        let snaps = open_snapshotter(&self.root)?;
        // Both leases are held to the end of create: until the writable
        // layer holds the chain and the GC root the blobs, a prune beside
        // us must not take them.
        let _blobs = store.lease()?;
        let leased = snaps.leased()?;
        let diff_ids: Vec<_> = image.config.diff_ids().into_iter().map(|d| d.0).collect();
        let parent =
            kiln_snapshot::unpack_layers(&leased, store, &image.manifest.layers, &diff_ids)?;
        // Unleased: the writable layer stays until the container is removed.
        snaps.prepare(&snapshot, parent.as_deref())?;
        let undo_snapshot = |e: ContainerError| {
            if let Err(r) = snaps.remove(&snapshot) {
                tracing::warn!("removing snapshot {snapshot}: {r}");
            }
            e
        };
        let mut keep = vec![image.manifest_digest.clone(), image.config_digest.clone()];
        keep.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
        store
            .add_gc_root(&gc_root_name(&id), &keep)
            .map_err(|e| undo_snapshot(e.into()))?;
        let undo = |e: ContainerError| {
            let _ = store.remove_gc_root(&gc_root_name(&id));
            undo_snapshot(e)
        };
        let mut host = req.host;
        let mut made = Vec::new();
        for m in &mut host.mounts {
            if let MountConfig::Volume {
                name, anonymous, ..
            } = m
            {
                if name.is_empty() {
                    *name = new_id()?;
                }
                let labels = if *anonymous {
                    BTreeMap::new()
                } else {
                    req.volume_labels.clone()
                };
                match self.volumes.ensure(name, labels, *anonymous) {
                    Ok((_, true)) => made.push(name.clone()),
                    Ok(_) => {}
                    Err(e) => {
                        self.remove_volumes(&made);
                        return Err(undo(e));
                    }
                }
            }
        }
        let mut process = req.process;
        if process.hostname.is_empty() {
            process.hostname = id[..12].to_string();
        }
        let config = ContainerConfig {
            id: id.clone(),
            name,
            created: crate::logs::fixed_nanos(SystemTime::now()),
            image: req.image,
            image_id: image.config_digest.to_string(),
            image_manifest: image.manifest_digest.to_string(),
            parent_snapshot: parent,
            snapshot: snapshot.clone(),
            process,
            host,
        };
        if let Err(e) = self.containers.create(&config) {
            self.remove_volumes(&made);
            return Err(undo(e));
        }
        self.containers.load(&id)
    }

    fn remove_volumes(&self, names: &[String]) {
        for n in names {
            if let Err(e) = self.volumes.remove(n) {
                tracing::warn!("removing volume {n}: {e}");
            }
        }
    }

    /// docker's `adjective_surname` names, retried until one is free.
    fn free_name(&self) -> Result<String> {
        let taken: Vec<String> = self
            .containers
            .list()?
            .into_iter()
            .map(|c| c.config.name)
            .collect();
        for attempt in 0.. {
            let n = random_name(attempt)?;
            if !taken.contains(&n) {
                return Ok(n);
            }
        }
        unreachable!("the loop returns")
    }

    /// Container `input` (ID, prefix or name), its state reconciled with
    /// the processes that exist.
    pub fn get(&self, input: &str) -> Result<Container> {
        let id = self.containers.find(input)?;
        self.reconciled(&id)
    }

    /// Every container, newest first, reconciled.
    pub fn list(&self) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for c in self.containers.list()? {
            match self.reconcile(c) {
                Ok(c) => out.push(c),
                Err(ContainerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn reconciled(&self, id: &str) -> Result<Container> {
        let c = self.containers.load(id)?;
        self.reconcile(c)
    }

    /// A container the records say runs, whose monitor is gone (killed,
    /// or the machine restarted): its process is stopped, its root
    /// unmounted, and it is exited (255, as docker shows it).
    fn reconcile(&self, c: Container) -> Result<Container> {
        let live = matches!(c.state.status, Status::Running | Status::Restarting)
            || (c.state.status == Status::Created && c.state.monitor.is_some());
        if !live || monitor_alive(c.state.monitor) {
            return Ok(c);
        }
        let id = c.config.id.clone();
        if let Ok(exec) = self.executor(&c.config.host) {
            if let Ok(container) = exec.container(&id) {
                if let Err(e) = container.delete(true) {
                    tracing::warn!("removing the runtime container of {id}: {e}");
                }
            }
        }
        crate::monitor::unmount_rootfs(&self.containers.dir_of(&id));
        crate::net::sweep();
        let state = self.containers.update_state(&id, |s| {
            if s.status == Status::Created {
                s.monitor = None;
                return;
            }
            if monitor_alive(s.monitor) {
                return;
            }
            s.status = Status::Exited;
            s.exit_code = if s.exit_code == 0 { 255 } else { s.exit_code };
            s.error = "the container's monitor stopped (killed, or the machine restarted)".into();
            s.finished_at = Some(crate::logs::fixed_nanos(SystemTime::now()));
            s.pid = None;
            s.monitor = None;
        })?;
        Ok(Container {
            config: c.config,
            state,
        })
    }

    /// Starts container `id`'s monitor (see [`Attach`]). Detached: returns
    /// once the process runs (`None`), or the start's error. Foreground:
    /// the monitor process to wait for.
    pub fn start(&self, id: &str, attach: Attach) -> Result<Option<std::process::Child>> {
        let c = self.reconciled(id)?;
        match c.state.status {
            Status::Running | Status::Restarting => return Ok(None),
            Status::Removing | Status::Dead => {
                return Err(ContainerError::InvalidConfig(format!(
                    "container {} is {}: it cannot be started",
                    c.short_id(),
                    c.state.status.as_str()
                )))
            }
            Status::Created | Status::Exited => {}
        }
        // A fresh start: no user stop pending, no old error.
        self.containers.update_state(id, |s| {
            s.stopped_by_user = false;
            s.error.clear();
        })?;
        if crate::monitor::lean_monitor(&self.helper).is_none() {
            tracing::warn!(
                "{} is not next to {}: the container is monitored by kiln itself, which holds more memory",
                kiln_monitor::BINARY,
                self.helper.display()
            );
        }
        // Published ports are bound here, so a taken one fails the start
        // before the container runs; the monitor takes the sockets over.
        let published = crate::net::publish(&c.config, &c.config.name)?;
        let mut cmd = std::process::Command::new(&self.helper);
        cmd.arg(MONITOR_ARG).arg(&self.root).arg(id);
        match attach {
            Attach::Detached => {
                cmd.stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null());
            }
            Attach::Foreground { stdin } => {
                cmd.arg("--attach");
                if !stdin {
                    cmd.stdin(std::process::Stdio::null());
                }
            }
        }
        let mut child = cmd.spawn().map_err(|source| ContainerError::Io {
            action: "start the monitor",
            path: self.helper.clone(),
            source,
        })?;
        if let Attach::Foreground { .. } = attach {
            // The monitor takes the sockets as it starts, and this
            // process lives as long as the container: kept until exit.
            std::mem::forget(published);
            return Ok(Some(child));
        }
        // The monitor says `ok` once the process runs, then lets go of the
        // pipe; an end without it is a failed start, told in the state.
        let mut said = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut std::io::Read::take(out, 64), &mut said);
        }
        drop(published);
        if said.starts_with("ok") {
            // Reaped by whoever adopts it once this process exits.
            drop(child);
            return Ok(None);
        }
        let _ = child.wait();
        Err(self.start_error(id))
    }

    /// The error a failed start left in the state.
    pub fn start_error(&self, id: &str) -> ContainerError {
        match self.containers.load(id) {
            Ok(c) if !c.state.error.is_empty() => ContainerError::Start {
                id: c.short_id().to_string(),
                message: c.state.error.clone(),
            },
            Ok(c) => ContainerError::Start {
                id: c.short_id().to_string(),
                message: "the monitor ended before the process started".into(),
            },
            Err(e) => e,
        }
    }

    /// The containers (any state) created from image `image_id`.
    pub fn image_users(&self, image_id: &str) -> Result<Vec<Container>> {
        Ok(self
            .containers
            .list()?
            .into_iter()
            .filter(|c| c.config.image_id == image_id)
            .collect())
    }

    /// Names of the volumes any container mounts.
    pub fn volumes_in_use(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in self.containers.list()? {
            for m in &c.config.host.mounts {
                if let MountConfig::Volume { name, .. } = m {
                    used.entry(name.clone())
                        .or_default()
                        .push(c.config.id.clone());
                }
            }
        }
        Ok(used)
    }
}

/// Whether `monitor` (pid, start time) is a living process: the same pid
/// with the same start time (a recycled pid has another).
pub(crate) fn monitor_alive(monitor: Option<(i32, u64)>) -> bool {
    let Some((pid, start)) = monitor else {
        return false;
    };
    process_start_time(pid) == Some(start)
}

/// Field 22 of `/proc/PID/stat` (after the parenthesised name, which may
/// hold spaces); `None` for a process that is gone or a zombie.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_monitor_is_alive_only_with_its_start_time() {
        let me = std::process::id() as i32;
        let start = process_start_time(me).unwrap();
        assert!(monitor_alive(Some((me, start))));
        assert!(!monitor_alive(Some((me, start + 1))));
        assert!(!monitor_alive(None));
        assert!(!monitor_alive(Some((i32::MAX, 1))));
    }
}
