//! [`OciCli`]: the OCI runtime command line (runc's), the backend of both
//! runc and kiln's builtin runtime; and reaping a container's init.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_spec::runtime::Process;

use super::{ContainerRuntime, ProcessIo, Runtime, State, Status, BUILTIN_CHILD_ARG};
use crate::error::{io, ExecError, Result};

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
    /// `fails_as`: the action a failed run is an error of (`None` for a
    /// foreground exec, whose status is the process's).
    fn call_with_io(
        &self,
        verb: &'static str,
        fails_as: Option<&'static str>,
        id: &str,
        args: &[&std::ffi::OsStr],
        stdio: ProcessIo,
    ) -> Result<std::process::ExitStatus> {
        let log = tempfile::Builder::new()
            .prefix(".log-")
            .tempfile_in(&self.root)
            .map_err(io("create a log file in", &self.root))?;
        let mut c = self.command();
        c.arg("--log").arg(log.path()).arg(verb).args(args).arg(id);
        c.stdin(stdio.stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(Stdio::from(stdio.stdout))
            .stderr(Stdio::from(stdio.stderr));
        let status = c.status().map_err(|source| ExecError::Spawn {
            program: self.program.clone(),
            source,
        });
        // The child has its copies; ours must close so a reader sees EOF.
        drop(c);
        let status = status?;
        if let Some(action) = fails_as.filter(|_| !status.success()) {
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

/// Processes a runtime leaves behind (a container's init, a detached
/// exec) are re-parented when the runtime command exits: to us, so that
/// their exit codes can be collected.
fn become_subreaper() {
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        tracing::warn!("cannot become a child subreaper ({e}): exit codes will be unknown");
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
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: ProcessIo,
        console_socket: Option<&Path>,
    ) -> Result<()> {
        if self.builtin && !rustix::process::geteuid().is_root() {
            return Err(ExecError::Unsupported(
                "running a process in a container needs root: run kiln as root (rootless containers are not supported yet)",
            ));
        }
        std::fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        become_subreaper();
        let pid_file = bundle.join("init.pid");
        let mut args = vec![
            std::ffi::OsStr::new("--bundle"),
            bundle.as_os_str(),
            std::ffi::OsStr::new("--pid-file"),
            pid_file.as_os_str(),
        ];
        if let Some(socket) = console_socket {
            args.extend([std::ffi::OsStr::new("--console-socket"), socket.as_os_str()]);
        }
        self.call_with_io("create", Some("create"), id, &args, stdio)?;
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

    fn created_pid(&self, id: &str) -> Option<i32> {
        self.inits().get(id).copied()
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
        let file = self.process_file(id, process)?;
        let args = [std::ffi::OsStr::new("--process"), file.path().as_os_str()];
        let status = self.call_with_io("exec", None, id, &args, stdio)?;
        Ok(status.code().unwrap_or(128 + 9))
    }

    fn exec_detached(
        &self,
        id: &str,
        process: &Process,
        stdio: ProcessIo,
        console_socket: Option<&Path>,
    ) -> Result<i32> {
        become_subreaper();
        let file = self.process_file(id, process)?;
        let pid_file = tempfile::Builder::new()
            .prefix(".exec-pid-")
            .tempfile_in(&self.root)
            .map_err(io("create a pid file in", &self.root))?;
        let mut args = vec![
            std::ffi::OsStr::new("--detach"),
            std::ffi::OsStr::new("--process"),
            file.path().as_os_str(),
            std::ffi::OsStr::new("--pid-file"),
            pid_file.path().as_os_str(),
        ];
        if let Some(socket) = console_socket {
            args.extend([std::ffi::OsStr::new("--console-socket"), socket.as_os_str()]);
        }
        self.call_with_io("exec", Some("exec in"), id, &args, stdio)?;
        let text = std::fs::read_to_string(pid_file.path()).map_err(io("read", pid_file.path()))?;
        text.trim().parse().map_err(|_| ExecError::Runtime {
            action: "exec in",
            id: id.to_string(),
            message: format!("the runtime wrote no pid ({text:?})"),
        })
    }

    fn wait_process(&self, pid: i32) -> Result<Option<i32>> {
        wait_child(pid).map_err(io("wait for process", Path::new(&pid.to_string())))
    }
}

impl OciCli {
    /// `process.json` for `exec --process`, removed when dropped.
    fn process_file(&self, id: &str, process: &Process) -> Result<tempfile::NamedTempFile> {
        std::fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
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
        Ok(file)
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
}
