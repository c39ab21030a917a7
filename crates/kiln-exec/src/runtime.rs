//! The container lifecycle: a [`ContainerRuntime`] trait (the OCI runtime
//! operations, by container id), its real backend [`OciCli`] (runc's
//! command line, spoken by runc itself or by kiln's builtin libcontainer
//! child), and the [`Executor`]/[`Container`] pair that callers use: bundle
//! writing, stdio, and `run` (create, start, read output, wait, delete) for
//! RUN steps.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oci_spec::runtime::Process;

use crate::error::{io, ExecError, Result};
use crate::spec::ProcessSpec;

/// The hidden first argument that makes kiln act as the builtin runtime
/// (see [`run_builtin_child`](crate::run_builtin_child)).
pub const BUILTIN_CHILD_ARG: &str = "__kiln-run-container";

/// Which runtime an [`Executor`] drives.
#[derive(Debug, Clone)]
pub enum Runtime {
    /// libcontainer, run by re-executing `helper` (the kiln binary) with
    /// [`BUILTIN_CHILD_ARG`].
    Builtin { helper: PathBuf },
    /// An OCI runtime CLI (runc): `RUNTIME --root STATE create …`.
    Binary(PathBuf),
}

/// Where a container's process writes (its stdin is `/dev/null`).
#[derive(Debug)]
pub struct ProcessIo {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl ProcessIo {
    /// One pipe for both stdout and stderr (interleaved, as a terminal
    /// shows them): its read end, and the io to give the container.
    pub fn pipe() -> std::io::Result<(std::io::PipeReader, ProcessIo)> {
        let (reader, writer) = std::io::pipe()?;
        let writer2 = writer.try_clone()?;
        let stdio = ProcessIo {
            stdout: writer.into(),
            stderr: writer2.into(),
        };
        Ok((reader, stdio))
    }
}

/// A container's status, as the OCI runtime spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

/// What `state` reports about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub id: String,
    pub status: Status,
    /// The init process on the host, while it exists.
    pub pid: Option<i32>,
    pub bundle: PathBuf,
}

/// The OCI runtime operations, by container id: what `runc create|start|
/// kill|state|delete|exec` and youki's `Container` offer. Implementations:
/// [`OciCli`] (runc, or kiln's builtin libcontainer child) and
/// [`testing::FakeRuntime`](crate::testing::FakeRuntime) for tests without
/// root.
pub trait ContainerRuntime: Send + Sync + std::fmt::Debug {
    /// Creates container `id` from the bundle at `bundle` (`config.json`):
    /// its init exists, in its namespaces, waiting for `start`.
    fn create(&self, id: &str, bundle: &Path, io: ProcessIo) -> Result<()>;
    /// Runs the user's program in a created container.
    fn start(&self, id: &str) -> Result<()>;
    /// Sends `signal` to the container's init.
    fn kill(&self, id: &str, signal: i32) -> Result<()>;
    fn state(&self, id: &str) -> Result<State>;
    /// Waits until the init has ended: its exit code (128 + signal when
    /// killed) when this process could collect it, `None` when the
    /// container stopped but its exit status belonged to another process
    /// (a container created by an earlier kiln invocation).
    fn wait(&self, id: &str) -> Result<Option<i32>>;
    /// Removes a stopped container (any container with `force`, killing
    /// it first).
    fn delete(&self, id: &str, force: bool) -> Result<()>;
    /// Runs `process` in the running container `id`, waits for it, and
    /// returns its exit code.
    fn exec(&self, id: &str, process: &Process, io: ProcessIo) -> Result<i32>;
}

/// An OCI runtime command line: `PROGRAM [PREFIX…] --root ROOT VERB …`, as
/// runc takes it. kiln's builtin runtime speaks the same verbs (its
/// libcontainer work happens in that re-exec'd, single-threaded process,
/// never in a fork of a threaded kiln), so both backends share this code.
///
/// A created container's init outlives the runtime command that made it
/// and is re-parented; this process makes itself a child subreaper so the
/// init becomes its child and `wait` can collect its exit code.
#[derive(Debug)]
pub struct OciCli {
    program: PathBuf,
    prefix: Vec<OsString>,
    root: PathBuf,
    /// The builtin runtime needs root (it makes namespaces and mounts
    /// without a user namespace).
    builtin: bool,
    /// Init pids of the containers this process created (its children
    /// once re-parented), for `wait`.
    inits: std::sync::Mutex<std::collections::HashMap<String, i32>>,
}

const POLL: std::time::Duration = std::time::Duration::from_millis(50);

impl OciCli {
    /// The backend for `runtime`, keeping its state under `root`.
    pub fn new(runtime: &Runtime, root: &Path) -> OciCli {
        let (program, prefix, builtin) = match runtime {
            Runtime::Builtin { helper } => (helper.clone(), vec![BUILTIN_CHILD_ARG.into()], true),
            Runtime::Binary(path) => (path.clone(), Vec::new(), false),
        };
        OciCli {
            program,
            prefix,
            root: root.to_path_buf(),
            builtin,
            inits: Default::default(),
        }
    }

    fn inits(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i32>> {
        // A panic elsewhere while holding it leaves the map usable.
        self.inits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The program with its global flags; the verb comes next.
    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.prefix).arg("--root").arg(&self.root);
        c.stdin(Stdio::null());
        c
    }

    /// Runs a verb whose output is the runtime's own (not a container's):
    /// `VERB FLAGS… ID ARGS…`; its stdout on success, its stderr in the
    /// error.
    fn call(
        &self,
        action: &'static str,
        flags: &[&str],
        id: &str,
        args: &[&str],
    ) -> Result<Vec<u8>> {
        let mut c = self.command();
        c.arg(action).args(flags).arg(id).args(args);
        let out = c.output().map_err(|source| ExecError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        // runc's words, and the builtin runtime's.
        if message.contains("does not exist") {
            return Err(ExecError::NotFound(id.to_string()));
        }
        Err(ExecError::Runtime {
            action,
            id: id.to_string(),
            message: if message.is_empty() {
                format!("{} exited with {}", self.program.display(), out.status)
            } else {
                message
            },
        })
    }

    /// Runs a verb whose stdio is the container process's: the runtime's
    /// own messages go to a log file (`--log`), read back on failure.
    fn call_with_io(
        &self,
        action: &'static str,
        id: &str,
        args: &[&std::ffi::OsStr],
        stdio: ProcessIo,
    ) -> Result<std::process::ExitStatus> {
        let log = tempfile::Builder::new()
            .prefix(".log-")
            .tempfile_in(&self.root)
            .map_err(io("create a log file in", &self.root))?;
        let mut c = self.command();
        c.arg("--log")
            .arg(log.path())
            .arg(action)
            .args(args)
            .arg(id);
        c.stdout(Stdio::from(stdio.stdout))
            .stderr(Stdio::from(stdio.stderr));
        let status = c.status().map_err(|source| ExecError::Spawn {
            program: self.program.clone(),
            source,
        });
        // The child has its copies; ours must close so a reader sees EOF.
        drop(c);
        let status = status?;
        if action == "create" && !status.success() {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            let message = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(log_message)
                .unwrap_or_default();
            return Err(ExecError::Runtime {
                action,
                id: id.to_string(),
                message: if message.is_empty() {
                    format!("{} exited with {status}", self.program.display())
                } else {
                    message
                },
            });
        }
        Ok(status)
    }
}

/// The message of a runtime's log line: runc logs `time=… level=error
/// msg="…"` (logrus' text format); the builtin runtime plain text.
fn log_message(line: &str) -> String {
    match line.split_once(" msg=\"") {
        Some((_, rest)) => rest.strip_suffix('"').unwrap_or(rest).replace("\\\"", "\""),
        None => line.trim().to_string(),
    }
}

/// The exit code a shell would show: the code, or 128 + the signal.
fn exit_code(status: rustix::process::WaitStatus) -> Option<i32> {
    status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|s| 128 + s))
}

/// Waits for `pid` if it is this process's child: `Ok(None)` when it is not.
pub(crate) fn wait_child(pid: i32) -> std::io::Result<Option<i32>> {
    use rustix::process::{waitpid, Pid, WaitOptions};
    let Some(pid) = Pid::from_raw(pid) else {
        return Ok(None);
    };
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = exit_code(status) {
                    return Ok(Some(code));
                }
            }
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CHILD) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

impl ContainerRuntime for OciCli {
    fn create(&self, id: &str, bundle: &Path, stdio: ProcessIo) -> Result<()> {
        if self.builtin && !rustix::process::geteuid().is_root() {
            return Err(ExecError::Unsupported(
                "running a process in a container needs root: run kiln as root (rootless containers are not supported yet)",
            ));
        }
        std::fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        // The init is re-parented when the runtime command exits: to us,
        // so that `wait` can reap it and read its exit code.
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::warn!("cannot become a child subreaper ({e}): exit codes will be unknown");
        }
        let pid_file = bundle.join("init.pid");
        let args = [
            std::ffi::OsStr::new("--bundle"),
            bundle.as_os_str(),
            std::ffi::OsStr::new("--pid-file"),
            pid_file.as_os_str(),
        ];
        self.call_with_io("create", id, &args, stdio)?;
        match std::fs::read_to_string(&pid_file).map(|s| s.trim().parse::<i32>()) {
            Ok(Ok(pid)) => {
                self.inits().insert(id.to_string(), pid);
            }
            _ => tracing::warn!(
                "no pid file from the runtime for {id}: its exit code will be unknown"
            ),
        }
        Ok(())
    }

    fn start(&self, id: &str) -> Result<()> {
        self.call("start", &[], id, &[]).map(|_| ())
    }

    fn kill(&self, id: &str, signal: i32) -> Result<()> {
        self.call("kill", &[], id, &[&signal.to_string()])
            .map(|_| ())
    }

    fn state(&self, id: &str) -> Result<State> {
        let out = self.call("state", &[], id, &[])?;
        // Read by hand: oci-spec 0.8's `State` has no `paused`, which runc
        // reports.
        let bad = |message: String| ExecError::Runtime {
            action: "read the state of",
            id: id.to_string(),
            message,
        };
        let state: serde_json::Value =
            serde_json::from_slice(&out).map_err(|e| bad(format!("unreadable state ({e})")))?;
        let status = match state["status"].as_str().unwrap_or("") {
            "creating" => Status::Creating,
            "created" => Status::Created,
            "running" => Status::Running,
            "stopped" => Status::Stopped,
            "paused" => Status::Paused,
            other => return Err(bad(format!("unknown status {other:?}"))),
        };
        Ok(State {
            id: state["id"].as_str().unwrap_or(id).to_string(),
            status,
            pid: state["pid"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p > 0),
            bundle: PathBuf::from(state["bundle"].as_str().unwrap_or("")),
        })
    }

    fn wait(&self, id: &str) -> Result<Option<i32>> {
        // The pid from creation: a stopped container's state has none.
        let pid = self.inits().get(id).copied();
        if let Some(pid) = pid {
            let waited = wait_child(pid).map_err(io("wait for container", Path::new(id)));
            self.inits().remove(id);
            if let Some(code) = waited? {
                return Ok(Some(code));
            }
        }
        // Not ours to reap: watch it stop.
        loop {
            if self.state(id)?.status == Status::Stopped {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        let args: &[&str] = if force { &["--force"] } else { &[] };
        match self.call("delete", args, id, &[]) {
            Err(ExecError::NotFound(_)) if force => Ok(()),
            r => r.map(|_| ()),
        }
    }

    fn exec(&self, id: &str, process: &Process, stdio: ProcessIo) -> Result<i32> {
        let file = tempfile::Builder::new()
            .prefix(".process-")
            .suffix(".json")
            .tempfile_in(&self.root)
            .map_err(io("create a process file in", &self.root))?;
        let json = serde_json::to_vec(process).map_err(|e| ExecError::Runtime {
            action: "exec in",
            id: id.to_string(),
            message: format!("cannot encode the process ({e})"),
        })?;
        std::fs::write(file.path(), json).map_err(io("write", file.path()))?;
        let args = [std::ffi::OsStr::new("--process"), file.path().as_os_str()];
        let status = self.call_with_io("exec", id, &args, stdio)?;
        Ok(status.code().unwrap_or(128 + 9))
    }
}

/// Runs processes in containers: writes their bundles under a state
/// directory and drives a [`ContainerRuntime`].
#[derive(Debug, Clone)]
pub struct Executor {
    runtime: Arc<dyn ContainerRuntime>,
    /// `bundles/<id>/` (config.json and support files) and the runtime's
    /// own state (`runtime/`) live here.
    state: PathBuf,
}

/// How a process ended, with the tail of what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    /// The last lines of stdout and stderr, interleaved.
    pub tail: Vec<String>,
}

const TAIL_LINES: usize = 20;

/// A container created by an [`Executor`]; operations go to its runtime.
#[derive(Debug)]
pub struct Container {
    runtime: Arc<dyn ContainerRuntime>,
    id: String,
    bundle: PathBuf,
}

/// The pid of the kiln process whose [`Executor::run`] made container `id`.
fn run_owner(id: &str) -> Option<i32> {
    let (pid, n) = id.strip_prefix("kiln-")?.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
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

    /// Removes the RUN containers (and bundles) of kiln processes that
    /// died (killed, interrupted) before removing them: [`run`](Self::run)
    /// names them `kiln-<pid>-<n>`, so a dead pid means no one owns them.
    /// Containers with other names (`kiln run`'s) are not touched.
    fn remove_orphans(&self) {
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

    /// Creates container `id` running `spec` in `rootfs` (already
    /// mounted), its output going to `io`. It waits for
    /// [`Container::start`].
    pub fn create(
        &self,
        id: &str,
        spec: &ProcessSpec,
        rootfs: &Path,
        stdio: ProcessIo,
    ) -> Result<Container> {
        if !valid_id(id) {
            return Err(ExecError::InvalidId(id.to_string()));
        }
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
        self.runtime
            .create(id, &bundle, stdio)
            .map_err(remove_bundle)?;
        Ok(Container {
            runtime: self.runtime.clone(),
            id: id.to_string(),
            bundle,
        })
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
        let config = spec.runtime_spec(rootfs, bundle);
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

    /// See [`ContainerRuntime::wait`].
    pub fn wait(&self) -> Result<Option<i32>> {
        self.runtime.wait(&self.id)
    }

    /// Runs a second process in the running container; its exit code.
    pub fn exec(&self, spec: &ProcessSpec, io: ProcessIo) -> Result<i32> {
        self.runtime.exec(&self.id, &spec.process(), io)
    }

    /// Removes the container (`force`: even if it still runs) and its
    /// bundle.
    pub fn delete(self, force: bool) -> Result<()> {
        self.delete_with(force)
    }

    fn delete_with(&self, force: bool) -> Result<()> {
        self.runtime.delete(&self.id, force)?;
        self.remove_bundle();
        Ok(())
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
    fn runtime_log_lines_give_their_message() {
        assert_eq!(
            log_message(
                r#"time="2026-12-06T12:36:23Z" level=error msg="runc create failed: exec: \"/x\": stat /x: no such file or directory""#
            ),
            r#"runc create failed: exec: "/x": stat /x: no such file or directory"#
        );
        assert_eq!(
            log_message("kiln: container runtime: create: no\n"),
            "kiln: container runtime: create: no"
        );
    }

    #[test]
    fn run_containers_name_their_owner() {
        assert_eq!(run_owner("kiln-4242-7"), Some(4242));
        assert_eq!(run_owner("kiln-web"), None);
        assert_eq!(run_owner("kiln-1-x"), None);
        assert_eq!(run_owner("web"), None);
    }

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
