//! The container lifecycle: a [`ContainerRuntime`] trait (the OCI runtime
//! operations, by container id), its real backend [`OciCli`] (runc's
//! command line, spoken by runc itself or by kiln's builtin libcontainer
//! child), and the [`Executor`]/[`Container`] pair that callers use: bundle
//! writing, stdio, and `run` (create, start, read output, wait, delete) for
//! RUN steps.
//!
//! This module holds the trait and its types; the rest, by job:
//!
//! - [`oci_cli`]: [`OciCli`], runc's command line, and reaping a
//!   container's init;
//! - [`executor`]: [`Executor`] and [`Container`];
//! - [`orphans`]: removing the RUN containers of kiln processes that died.

mod executor;
mod oci_cli;
mod orphans;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::error::Result;

pub use executor::{Container, ExecProcess, Executor, Output};
pub(crate) use oci_cli::wait_child;
pub use oci_cli::OciCli;

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

/// A container process's stdio (without a terminal).
#[derive(Debug)]
pub struct ProcessIo {
    /// What it reads; `None` is `/dev/null`.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl ProcessIo {
    /// Copies of the same descriptors.
    pub(crate) fn try_clone(&self) -> std::io::Result<ProcessIo> {
        Ok(ProcessIo {
            stdin: self.stdin.as_ref().map(OwnedFd::try_clone).transpose()?,
            stdout: self.stdout.try_clone()?,
            stderr: self.stderr.try_clone()?,
        })
    }

    /// One pipe for both stdout and stderr (interleaved, as a terminal
    /// shows them): its read end, and the io to give the container.
    pub fn pipe() -> std::io::Result<(std::io::PipeReader, ProcessIo)> {
        let (reader, writer) = std::io::pipe()?;
        let writer2 = writer.try_clone()?;
        let stdio = ProcessIo {
            stdin: None,
            stdout: writer.into(),
            stderr: writer2.into(),
        };
        Ok((reader, stdio))
    }

    /// Everything to and from `/dev/null`: the runtime's own stdio when
    /// the process has a terminal instead.
    pub fn null() -> std::io::Result<ProcessIo> {
        let null = || {
            std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
        };
        Ok(ProcessIo {
            stdin: None,
            stdout: null()?.into(),
            stderr: null()?.into(),
        })
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
    /// its init exists, in its namespaces, waiting for `start`. With
    /// `console_socket` (the spec asks for a terminal) the runtime sends
    /// the pty master to that unix socket.
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        io: ProcessIo,
        console_socket: Option<&Path>,
    ) -> Result<()>;
    /// Runs the user's program in a created container.
    fn start(&self, id: &str) -> Result<()>;
    /// Sends `signal` to the container's init.
    fn kill(&self, id: &str, signal: i32) -> Result<()>;
    fn state(&self, id: &str) -> Result<State>;
    /// The init's pid as `create` reported it (its pid file), without
    /// asking the runtime again: `start` runs the user's program in that
    /// same process. `None` when this runtime kept none.
    fn created_pid(&self, _id: &str) -> Option<i32> {
        None
    }
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
    /// Starts `process` in the running container `id` and returns without
    /// waiting: its pid on the host, for [`wait_process`](Self::wait_process).
    /// With `console_socket` (`process.terminal`) the runtime sends the pty
    /// master there.
    fn exec_detached(
        &self,
        id: &str,
        process: &Process,
        io: ProcessIo,
        console_socket: Option<&Path>,
    ) -> Result<i32>;
    /// Waits for a process [`exec_detached`](Self::exec_detached) started:
    /// its exit code, `None` when this process cannot collect it.
    fn wait_process(&self, pid: i32) -> Result<Option<i32>>;
}
