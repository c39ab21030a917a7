//! [`Executor`]: bundles under a state directory and the runtime that runs
//! them; [`Container`]: one container's operations; [`Executor::run`] for
//! a process that runs to its end.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{ContainerRuntime, OciCli, ProcessIo, Runtime, State};
use crate::console::ConsoleSocket;
use crate::error::{io, ExecError, Result};
use crate::spec::ProcessSpec;

/// Runs processes in containers: writes their bundles under a state
/// directory and drives a [`ContainerRuntime`].
#[derive(Debug, Clone)]
pub struct Executor {
    pub(super) runtime: Arc<dyn ContainerRuntime>,
    /// `bundles/<id>/` (config.json and support files) and the runtime's
    /// own state (`runtime/`) live here.
    pub(super) state: PathBuf,
}

/// How a process ended, with the tail of what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    /// The last lines of stdout and stderr, interleaved.
    pub tail: Vec<String>,
}

const TAIL_LINES: usize = 20;

/// A process started in a running container without waiting for it
/// ([`Container::exec_detached`], [`Container::exec_with_terminal`]).
#[derive(Debug)]
pub struct ExecProcess {
    runtime: Arc<dyn ContainerRuntime>,
    pid: i32,
}

impl ExecProcess {
    /// Its pid on the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for it to end: its exit code (128 + signal when killed),
    /// `None` when this process could not collect it.
    pub fn wait(&self) -> Result<Option<i32>> {
        self.runtime.wait_process(self.pid)
    }
}

/// A container created by an [`Executor`]; operations go to its runtime.
#[derive(Debug)]
pub struct Container {
    runtime: Arc<dyn ContainerRuntime>,
    id: String,
    bundle: PathBuf,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Executor {
    /// An executor for the runc or builtin backend, with its state under
    /// `state` (the store's `exec/`).
    pub fn new(runtime: Runtime, state: &Path) -> Result<Executor> {
        let cli = OciCli::new(&runtime, &state.join("runtime"));
        Executor::with_runtime(Arc::new(cli), state)
    }

    /// An executor over any runtime (tests pass a
    /// [`FakeRuntime`](crate::testing::FakeRuntime)).
    pub fn with_runtime(runtime: Arc<dyn ContainerRuntime>, state: &Path) -> Result<Executor> {
        std::fs::create_dir_all(state.join("bundles")).map_err(io("create", state))?;
        let exec = Executor {
            runtime,
            state: state.to_path_buf(),
        };
        exec.remove_orphans();
        Ok(exec)
    }
    /// Creates container `id` running `spec` in `rootfs` (already
    /// mounted), its stdio being `stdio`. It waits for
    /// [`Container::start`]. A spec with `terminal` needs
    /// [`create_with_terminal`](Self::create_with_terminal).
    pub fn create(
        &self,
        id: &str,
        spec: &ProcessSpec,
        rootfs: &Path,
        stdio: ProcessIo,
    ) -> Result<Container> {
        if spec.terminal {
            return Err(ExecError::Terminal {
                id: id.to_string(),
                reason: "a terminal process is created with create_with_terminal".into(),
            });
        }
        self.create_inner(id, spec, rootfs, stdio, false)
            .map(|(c, _)| c)
    }

    /// Creates container `id` as [`create`](Self::create) does, its process
    /// on a new pseudo-terminal (`spec.terminal` is implied): the container
    /// and the terminal's master, which the caller reads the process's
    /// output from and writes its input to.
    pub fn create_with_terminal(
        &self,
        id: &str,
        spec: &ProcessSpec,
        rootfs: &Path,
    ) -> Result<(Container, OwnedFd)> {
        let mut spec = spec.clone();
        spec.terminal = true;
        let stdio = ProcessIo::null().map_err(io("open", "/dev/null"))?;
        let (c, master) = self.create_inner(id, &spec, rootfs, stdio, true)?;
        match master {
            Some(m) => Ok((c, m)),
            // create_inner returns a master whenever asked for one.
            None => Err(ExecError::Terminal {
                id: id.to_string(),
                reason: "none was received".into(),
            }),
        }
    }

    fn create_inner(
        &self,
        id: &str,
        spec: &ProcessSpec,
        rootfs: &Path,
        stdio: ProcessIo,
        terminal: bool,
    ) -> Result<(Container, Option<OwnedFd>)> {
        if !valid_id(id) {
            return Err(ExecError::InvalidId(id.to_string()));
        }
        // Before the bundle exists: a bad capability name or profile
        // leaves nothing behind.
        spec.validate()?;
        let bundle = self.state.join("bundles").join(id);
        match std::fs::create_dir(&bundle) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ExecError::AlreadyExists(id.to_string()))
            }
            Err(e) => return Err(io("create", &bundle)(e)),
        }
        let remove_bundle = |e: ExecError| {
            if let Err(r) = std::fs::remove_dir_all(&bundle) {
                tracing::warn!("removing bundle {}: {r}", bundle.display());
            }
            e
        };
        self.write_bundle(id, spec, rootfs, &bundle)
            .map_err(remove_bundle)?;
        let console = if terminal {
            Some(ConsoleSocket::bind(&bundle, "console.sock").map_err(remove_bundle)?)
        } else {
            None
        };
        let socket = console.as_ref().map(|c| c.path());
        // Copies of the stdio for a second try, closed when this returns.
        let spare = stdio.try_clone().ok();
        let created = match (self.runtime.create(id, &bundle, stdio, socket), spare) {
            // The bundle directory was free, so no live container of ours
            // has this id: what the runtime still holds is a stopped
            // one's state that its delete raced with (a restart right
            // after a stop). It goes, and the create is tried again.
            (Err(ExecError::Runtime { message, .. }), Some(spare))
                if message.contains("already exists") =>
            {
                tracing::warn!("removing the runtime's stale state of {id}: {message}");
                self.runtime
                    .delete(id, true)
                    .and_then(|()| self.runtime.create(id, &bundle, spare, socket))
            }
            (r, _) => r,
        };
        created.map_err(remove_bundle)?;
        let container = Container {
            runtime: self.runtime.clone(),
            id: id.to_string(),
            bundle,
        };
        let master = match console.map(|c| c.receive(id)).transpose() {
            Ok(m) => m,
            Err(e) => {
                if let Err(d) = container.delete_with(true) {
                    tracing::warn!("removing container {id}: {d}");
                }
                return Err(e);
            }
        };
        Ok((container, master))
    }

    fn write_bundle(
        &self,
        id: &str,
        spec: &ProcessSpec,
        rootfs: &Path,
        bundle: &Path,
    ) -> Result<()> {
        for (name, content) in spec.support_files() {
            let p = bundle.join(name);
            std::fs::write(&p, content).map_err(io("write", p))?;
        }
        let config = spec.runtime_spec(rootfs, bundle)?;
        let json = serde_json::to_vec(&config).map_err(|e| ExecError::Spec {
            id: id.to_string(),
            source: oci_spec::OciSpecError::SerDe(e),
        })?;
        let path = bundle.join("config.json");
        std::fs::write(&path, json).map_err(io("write", &path))
    }

    /// A container created earlier (perhaps by another kiln process).
    pub fn container(&self, id: &str) -> Result<Container> {
        if !valid_id(id) {
            return Err(ExecError::InvalidId(id.to_string()));
        }
        let bundle = self.state.join("bundles").join(id);
        if !bundle.join("config.json").is_file() {
            return Err(ExecError::NotFound(id.to_string()));
        }
        Ok(Container {
            runtime: self.runtime.clone(),
            id: id.to_string(),
            bundle,
        })
    }

    /// Runs `spec` in `rootfs` (already mounted) to its end, in a
    /// container of its own: create, start, read, wait, delete. Every
    /// output line goes to `on_line` as it comes.
    pub fn run(
        &self,
        spec: &ProcessSpec,
        rootfs: &Path,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (mut reader, container) = loop {
            // A crashed kiln with this pid may have left its bundle: the
            // next number then.
            let id = format!(
                "kiln-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let (reader, stdio) =
                ProcessIo::pipe().map_err(io("create a pipe for", &self.state))?;
            match self.create(&id, spec, rootfs, stdio) {
                Ok(c) => break (reader, c),
                Err(ExecError::AlreadyExists(_)) => continue,
                Err(e) => return Err(e),
            }
        };
        let id = container.id.clone();
        if let Err(e) = container.start() {
            if let Err(d) = container.runtime.delete(&id, true) {
                tracing::warn!("removing container {id}: {d}");
            }
            container.remove_bundle();
            return Err(e);
        }
        let mut tail: std::collections::VecDeque<String> = Default::default();
        let read = read_lines(&mut reader, &mut |line| {
            on_line(&line);
            tail.push_back(line);
            if tail.len() > TAIL_LINES {
                tail.pop_front();
            }
        });
        if read.is_err() {
            // Nobody will read what it writes: stop it rather than let it
            // block on a full pipe.
            if let Err(e) = container.kill(9) {
                tracing::warn!("stopping container {id}: {e}");
            }
        }
        let code = container.wait();
        if let Err(e) = container.delete_with(true) {
            tracing::warn!("removing container {id}: {e}");
        }
        read.map_err(io("read the output of container", &id))?;
        let code = code?.ok_or_else(|| ExecError::Runtime {
            action: "wait for",
            id: id.clone(),
            message: "its exit code went to another process".into(),
        })?;
        Ok(Output {
            code,
            tail: tail.into_iter().collect(),
        })
    }
}

/// Calls `line` with each line `reader` gives until its end (a last line
/// without a newline included).
fn read_lines(reader: &mut impl Read, line: &mut dyn FnMut(String)) -> std::io::Result<()> {
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            line(String::from_utf8_lossy(&pending[..i]).into_owned());
            pending.drain(..=i);
        }
    }
    if !pending.is_empty() {
        line(String::from_utf8_lossy(&pending).into_owned());
    }
    Ok(())
}

impl Container {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The bundle directory (`config.json`, hosts, resolv.conf, hostname).
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    pub fn start(&self) -> Result<()> {
        self.runtime.start(&self.id)
    }

    pub fn kill(&self, signal: i32) -> Result<()> {
        self.runtime.kill(&self.id, signal)
    }

    pub fn state(&self) -> Result<State> {
        self.runtime.state(&self.id)
    }

    /// The init's pid right after `start`: the one `create` reported if
    /// the runtime kept it (no run of the runtime), else from `state`.
    pub fn started_pid(&self) -> Option<i32> {
        self.runtime
            .created_pid(&self.id)
            .or_else(|| self.state().ok().and_then(|s| s.pid))
    }

    /// The init's pid on the host, while it exists.
    pub fn pid(&self) -> Result<Option<i32>> {
        Ok(self.state()?.pid)
    }

    /// See [`ContainerRuntime::wait`].
    pub fn wait(&self) -> Result<Option<i32>> {
        self.runtime.wait(&self.id)
    }

    /// Runs a second process in the running container; its exit code.
    /// `spec.terminal` is ignored: see [`exec_with_terminal`](Self::exec_with_terminal).
    pub fn exec(&self, spec: &ProcessSpec, io: ProcessIo) -> Result<i32> {
        let mut process = spec.process()?;
        process.set_terminal(Some(false));
        self.runtime.exec(&self.id, &process, io)
    }

    /// Starts a second process in the running container and returns at
    /// once (`docker exec -d`, or a caller that waits itself).
    pub fn exec_detached(&self, spec: &ProcessSpec, io: ProcessIo) -> Result<ExecProcess> {
        let mut process = spec.process()?;
        process.set_terminal(Some(false));
        let pid = self.runtime.exec_detached(&self.id, &process, io, None)?;
        Ok(self.exec_process(pid))
    }

    /// Starts a second process on a new pseudo-terminal (`docker exec
    /// -t`): the terminal's master and the process.
    pub fn exec_with_terminal(&self, spec: &ProcessSpec) -> Result<(OwnedFd, ExecProcess)> {
        let mut process = spec.process()?;
        process.set_terminal(Some(true));
        let dir = tempfile::Builder::new()
            .prefix(".exec-")
            .tempdir_in(&self.bundle)
            .map_err(io("create a directory in", &self.bundle))?;
        let console = ConsoleSocket::bind(dir.path(), "console.sock")?;
        let stdio = ProcessIo::null().map_err(io("open", "/dev/null"))?;
        let pid = self
            .runtime
            .exec_detached(&self.id, &process, stdio, Some(console.path()))?;
        let master = console.receive(&self.id)?;
        Ok((master, self.exec_process(pid)))
    }

    fn exec_process(&self, pid: i32) -> ExecProcess {
        ExecProcess {
            runtime: self.runtime.clone(),
            pid,
        }
    }

    /// Removes the container (`force`: even if it still runs) and its
    /// bundle.
    pub fn delete(self, force: bool) -> Result<()> {
        self.delete_with(force)
    }

    fn delete_with(&self, force: bool) -> Result<()> {
        let cgroup = self.cgroups_path();
        self.runtime.delete(&self.id, force)?;
        // The runtime's delete removes the cgroup, except when a runtime
        // was killed half-way or its delete failed before: what it left
        // goes too (an empty cgroup is kernel memory held for nothing).
        if let Some(path) = cgroup {
            crate::cgroup::remove(&path);
        }
        self.remove_bundle();
        Ok(())
    }

    /// `linux.cgroupsPath` of the bundle's spec, if it names one.
    fn cgroups_path(&self) -> Option<String> {
        let spec = std::fs::read(self.bundle.join("config.json")).ok()?;
        let spec: serde_json::Value = serde_json::from_slice(&spec).ok()?;
        spec["linux"]["cgroupsPath"].as_str().map(str::to_string)
    }

    fn remove_bundle(&self) {
        if let Err(e) = std::fs::remove_dir_all(&self.bundle) {
            tracing::warn!("removing bundle {}: {e}", self.bundle.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_cannot_name_other_paths() {
        for ok in ["kiln-1-2", "web", "a.b_c"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
