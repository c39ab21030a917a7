//! A fake [`ContainerRuntime`] for tests that need no root and no
//! runtime: it reads each bundle's `config.json` (so tests can check the
//! spec a RUN step produced), and "runs" processes by a script the test
//! gives, writing the script's output to the container's stdout.
//!
//! ```
//! use std::sync::Arc;
//! use kiln_exec::testing::{FakeRun, FakeRuntime};
//! let fake = FakeRuntime::new(|p| FakeRun::exit(0).with_output([format!("ran {:?}", p.args())]));
//! let exec = kiln_exec::Executor::with_runtime(fake.clone(), &std::env::temp_dir().join("kiln-fake-doc")).unwrap();
//! # let _ = exec;
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use oci_spec::runtime::{Process, Spec};

use crate::console::send_fd;
use crate::error::{io, ExecError, Result};
use crate::runtime::{ContainerRuntime, ProcessIo, State, Status};

/// What a faked process does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeRun {
    /// Lines written to stdout.
    pub output: Vec<String>,
    pub code: i32,
    /// Keep running after `start` until killed (for `kill`/`exec` tests).
    pub until_killed: bool,
}

impl FakeRun {
    pub fn exit(code: i32) -> FakeRun {
        FakeRun {
            code,
            ..FakeRun::default()
        }
    }
    pub fn with_output<S: Into<String>>(mut self, lines: impl IntoIterator<Item = S>) -> FakeRun {
        self.output = lines.into_iter().map(Into::into).collect();
        self
    }
    pub fn until_killed(mut self) -> FakeRun {
        self.until_killed = true;
        self
    }
}

/// Every call the runtime received, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Create(String),
    Start(String),
    Kill(String, i32),
    State(String),
    Wait(String),
    Delete { id: String, force: bool },
    Exec { id: String, args: Vec<String> },
    ExecDetached { id: String, args: Vec<String> },
    WaitProcess(i32),
}

type Script = dyn Fn(&Process) -> FakeRun + Send + Sync;

struct FakeContainer {
    spec: Spec,
    bundle: PathBuf,
    status: Status,
    io: Option<ProcessIo>,
    code: Option<i32>,
}

#[derive(Default)]
struct Inner {
    containers: BTreeMap<String, FakeContainer>,
    calls: Vec<Call>,
    specs: Vec<(String, Spec)>,
    /// Exit codes of detached execs, by their fake pid.
    execs: BTreeMap<i32, i32>,
    next_pid: i32,
}

/// See the module documentation.
pub struct FakeRuntime {
    script: Box<Script>,
    inner: Mutex<Inner>,
    stopped: Condvar,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRuntime").finish_non_exhaustive()
    }
}

impl FakeRuntime {
    /// A runtime whose processes (inits and execs) do what `script` says.
    pub fn new(script: impl Fn(&Process) -> FakeRun + Send + Sync + 'static) -> Arc<FakeRuntime> {
        Arc::new(FakeRuntime {
            script: Box::new(script),
            inner: Mutex::default(),
            stopped: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has failed already;
        // the data is still good for its report.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The runtime spec of every container created, by id, in order.
    pub fn specs(&self) -> Vec<(String, Spec)> {
        self.lock().specs.clone()
    }

    /// Ids of the containers that exist (created, not deleted).
    pub fn containers(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }
}

fn write_lines(io: &ProcessIo, lines: &[String]) {
    if let Ok(fd) = io.stdout.try_clone() {
        let mut f = std::fs::File::from(fd);
        for l in lines {
            // A reader that went away is the test's business.
            let _ = writeln!(f, "{l}");
        }
    }
}

fn missing(id: &str) -> ExecError {
    ExecError::NotFound(id.to_string())
}

/// A terminal stand-in: a pipe whose read end goes to the console socket
/// as a runtime sends a pty master; the process's output goes to its
/// write end.
fn fake_terminal(socket: &Path) -> Result<ProcessIo> {
    let (reader, writer) = std::io::pipe().map_err(io("create a pipe for", socket))?;
    send_fd(socket, &reader).map_err(io("send a terminal to", socket))?;
    let writer2 = writer
        .try_clone()
        .map_err(io("create a pipe for", socket))?;
    Ok(ProcessIo {
        stdin: None,
        stdout: writer.into(),
        stderr: writer2.into(),
    })
}

/// An exec needs its container running.
fn require_running(inner: &Inner, id: &str) -> Result<()> {
    let c = inner.containers.get(id).ok_or_else(|| missing(id))?;
    if c.status != Status::Running {
        return Err(ExecError::Runtime {
            action: "exec in",
            id: id.to_string(),
            message: "it is not running".into(),
        });
    }
    Ok(())
}

impl ContainerRuntime for FakeRuntime {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        io: ProcessIo,
        console_socket: Option<&Path>,
    ) -> Result<()> {
        let io = match console_socket {
            Some(socket) => fake_terminal(socket)?,
            None => io,
        };
        let path = bundle.join("config.json");
        let spec = Spec::load(&path).map_err(|source| ExecError::Spec {
            id: id.to_string(),
            source,
        })?;
        let mut inner = self.lock();
        inner.calls.push(Call::Create(id.to_string()));
        if inner.containers.contains_key(id) {
            return Err(ExecError::AlreadyExists(id.to_string()));
        }
        inner.specs.push((id.to_string(), spec.clone()));
        inner.containers.insert(
            id.to_string(),
            FakeContainer {
                spec,
                bundle: bundle.to_path_buf(),
                status: Status::Created,
                io: Some(io),
                code: None,
            },
        );
        Ok(())
    }

    fn start(&self, id: &str) -> Result<()> {
        let mut inner = self.lock();
        inner.calls.push(Call::Start(id.to_string()));
        let c = inner.containers.get_mut(id).ok_or_else(|| missing(id))?;
        if c.status != Status::Created {
            return Err(ExecError::Runtime {
                action: "start",
                id: id.to_string(),
                message: format!("it is {:?}, not created", c.status),
            });
        }
        let run = c
            .spec
            .process()
            .as_ref()
            .map(|p| (self.script)(p))
            .unwrap_or_default();
        if let Some(io) = &c.io {
            write_lines(io, &run.output);
        }
        if run.until_killed {
            c.status = Status::Running;
        } else {
            c.status = Status::Stopped;
            c.code = Some(run.code);
            c.io = None;
            self.stopped.notify_all();
        }
        Ok(())
    }

    fn kill(&self, id: &str, signal: i32) -> Result<()> {
        let mut inner = self.lock();
        inner.calls.push(Call::Kill(id.to_string(), signal));
        let c = inner.containers.get_mut(id).ok_or_else(|| missing(id))?;
        if matches!(c.status, Status::Running | Status::Created) {
            c.status = Status::Stopped;
            c.code = Some(128 + signal);
            c.io = None;
            self.stopped.notify_all();
        }
        Ok(())
    }

    fn state(&self, id: &str) -> Result<State> {
        let mut inner = self.lock();
        inner.calls.push(Call::State(id.to_string()));
        let c = inner.containers.get(id).ok_or_else(|| missing(id))?;
        Ok(State {
            id: id.to_string(),
            status: c.status,
            pid: (c.status != Status::Stopped).then_some(4242),
            bundle: c.bundle.clone(),
        })
    }

    fn wait(&self, id: &str) -> Result<Option<i32>> {
        let mut inner = self.lock();
        inner.calls.push(Call::Wait(id.to_string()));
        loop {
            let c = inner.containers.get(id).ok_or_else(|| missing(id))?;
            if c.status == Status::Stopped {
                return Ok(c.code);
            }
            if c.status == Status::Created {
                return Err(ExecError::Runtime {
                    action: "wait for",
                    id: id.to_string(),
                    message: "it was never started".into(),
                });
            }
            inner = self.stopped.wait(inner).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut inner = self.lock();
        inner.calls.push(Call::Delete {
            id: id.to_string(),
            force,
        });
        match inner.containers.get(id) {
            None if force => Ok(()),
            None => Err(missing(id)),
            Some(c) if c.status != Status::Stopped && !force => Err(ExecError::Runtime {
                action: "delete",
                id: id.to_string(),
                message: "it is still running".into(),
            }),
            Some(_) => {
                inner.containers.remove(id);
                self.stopped.notify_all();
                Ok(())
            }
        }
    }

    fn exec(&self, id: &str, process: &Process, io: ProcessIo) -> Result<i32> {
        let mut inner = self.lock();
        inner.calls.push(Call::Exec {
            id: id.to_string(),
            args: process.args().clone().unwrap_or_default(),
        });
        require_running(&inner, id)?;
        drop(inner);
        let run = (self.script)(process);
        write_lines(&io, &run.output);
        Ok(run.code)
    }

    fn exec_detached(
        &self,
        id: &str,
        process: &Process,
        io: ProcessIo,
        console_socket: Option<&Path>,
    ) -> Result<i32> {
        let mut inner = self.lock();
        inner.calls.push(Call::ExecDetached {
            id: id.to_string(),
            args: process.args().clone().unwrap_or_default(),
        });
        require_running(&inner, id)?;
        let io = match console_socket {
            Some(socket) => fake_terminal(socket)?,
            None => io,
        };
        let run = (self.script)(process);
        write_lines(&io, &run.output);
        inner.next_pid += 1;
        let pid = 5000 + inner.next_pid;
        inner.execs.insert(pid, run.code);
        Ok(pid)
    }

    fn wait_process(&self, pid: i32) -> Result<Option<i32>> {
        let mut inner = self.lock();
        inner.calls.push(Call::WaitProcess(pid));
        Ok(inner.execs.remove(&pid))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Executor, ProcessSpec};

    fn spec(args: &[&str]) -> ProcessSpec {
        ProcessSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            hostname: "h".into(),
            ..ProcessSpec::default()
        }
    }

    #[test]
    fn run_goes_through_the_lifecycle_without_root() {
        let fake = FakeRuntime::new(|p| {
            let args = p.args().clone().unwrap_or_default();
            FakeRun::exit(if args[0] == "fail" { 2 } else { 0 })
                .with_output(args.iter().map(|a| format!("arg {a}")))
        });
        let dir = tempfile::tempdir().unwrap();
        let exec = Executor::with_runtime(fake.clone(), dir.path()).unwrap();
        let mut lines = Vec::new();
        let out = exec
            .run(&spec(&["echo", "hi"]), dir.path(), &mut |l| {
                lines.push(l.to_string())
            })
            .unwrap();
        assert_eq!(
            (out.code, lines.clone()),
            (0, vec!["arg echo".to_string(), "arg hi".into()])
        );
        assert_eq!(out.tail, lines);
        assert_eq!(
            exec.run(&spec(&["fail"]), dir.path(), &mut |_| {})
                .unwrap()
                .code,
            2
        );

        let specs = fake.specs();
        assert_eq!(specs.len(), 2);
        let process = specs[0].1.process().clone().unwrap();
        assert_eq!(process.args().clone().unwrap(), ["echo", "hi"]);
        let id = specs[0].0.clone();
        let calls = fake.calls();
        assert_eq!(calls[0], Call::Create(id.clone()));
        assert_eq!(calls[1], Call::Start(id.clone()));
        assert_eq!(calls[2], Call::Wait(id.clone()));
        assert_eq!(calls[3], Call::Delete { id, force: true });
        // Nothing is left behind: no container, no bundle.
        assert!(fake.containers().is_empty());
        assert_eq!(
            std::fs::read_dir(dir.path().join("bundles"))
                .unwrap()
                .count(),
            0
        );
    }

    /// A kiln that died mid-step left a container and its bundle: the next
    /// executor on that state removes them, and leaves other names alone.
    #[test]
    fn orphans_of_dead_kiln_processes_are_removed() {
        let fake = FakeRuntime::new(|_| FakeRun::exit(0).until_killed());
        let dir = tempfile::tempdir().unwrap();
        let exec = Executor::with_runtime(fake.clone(), dir.path()).unwrap();
        // No process has pid 0x7ffffffe (above pid_max's ceiling).
        for id in ["kiln-2147483646-0", "web"] {
            let c = exec
                .create(id, &spec(&["x"]), dir.path(), ProcessIo::pipe().unwrap().1)
                .unwrap();
            c.start().unwrap();
        }
        let mine = format!("kiln-{}-99", std::process::id());
        exec.create(
            &mine,
            &spec(&["x"]),
            dir.path(),
            ProcessIo::pipe().unwrap().1,
        )
        .unwrap();
        Executor::with_runtime(fake.clone(), dir.path()).unwrap();
        assert_eq!(fake.containers(), [mine.clone(), "web".to_string()]);
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("bundles"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [mine, "web".to_string()]);
    }

    #[test]
    fn a_long_running_container_is_killed_and_waited() {
        let fake = FakeRuntime::new(|p| {
            if p.args()
                .as_deref()
                .unwrap_or_default()
                .first()
                .map(String::as_str)
                == Some("serve")
            {
                FakeRun::exit(0).until_killed()
            } else {
                FakeRun::exit(5).with_output(["exec'd"])
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let exec = Executor::with_runtime(fake.clone(), dir.path()).unwrap();
        let (_out, io) = ProcessIo::pipe().unwrap();
        let c = exec
            .create("web", &spec(&["serve"]), dir.path(), io)
            .unwrap();
        assert_eq!(c.state().unwrap().status, Status::Created);
        c.start().unwrap();
        assert_eq!(c.state().unwrap().status, Status::Running);
        let (mut r, io) = ProcessIo::pipe().unwrap();
        assert_eq!(
            exec.container("web")
                .unwrap()
                .exec(&spec(&["sh"]), io)
                .unwrap(),
            5
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut r, &mut text).unwrap();
        assert_eq!(text, "exec'd\n");
        assert!(exec.container("web").unwrap().delete(false).is_err());
        c.kill(15).unwrap();
        assert_eq!(c.wait().unwrap(), Some(143));
        c.delete(false).unwrap();
        assert!(matches!(exec.container("web"), Err(ExecError::NotFound(_))));
    }

    /// A terminal comes back through the console socket; a detached exec
    /// is waited for by its pid.
    #[test]
    fn terminals_and_detached_execs_without_root() {
        let fake = FakeRuntime::new(|p| {
            let args = p.args().clone().unwrap_or_default();
            if args[0] == "serve" {
                FakeRun::exit(0).with_output(["on the tty"]).until_killed()
            } else {
                FakeRun::exit(4).with_output([format!("tty={}", p.terminal().unwrap_or(false))])
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let exec = Executor::with_runtime(fake.clone(), dir.path()).unwrap();
        let mut tty = spec(&["serve"]);
        tty.terminal = true;
        assert!(matches!(
            exec.create("t", &tty, dir.path(), ProcessIo::pipe().unwrap().1),
            Err(ExecError::Terminal { .. })
        ));
        let (c, master) = exec
            .create_with_terminal("t", &spec(&["serve"]), dir.path())
            .unwrap();
        let spec_of_t = &fake.specs()[0].1;
        assert_eq!(spec_of_t.process().as_ref().unwrap().terminal(), Some(true));
        c.start().unwrap();
        assert_eq!(c.pid().unwrap(), Some(4242));

        let (master2, p) = c.exec_with_terminal(&spec(&["sh"])).unwrap();
        assert_eq!(p.wait().unwrap(), Some(4));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(master2), &mut text).unwrap();
        assert_eq!(text, "tty=true\n");

        let (mut r, io) = ProcessIo::pipe().unwrap();
        let p = c.exec_detached(&spec(&["sh"]), io).unwrap();
        assert_eq!(p.wait().unwrap(), Some(4));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut r, &mut text).unwrap();
        assert_eq!(text, "tty=false\n");

        c.kill(9).unwrap();
        assert_eq!(c.wait().unwrap(), Some(137));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(master), &mut text).unwrap();
        assert_eq!(text, "on the tty\n");
        c.delete(false).unwrap();
    }
}
