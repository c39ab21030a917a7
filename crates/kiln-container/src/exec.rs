//! `docker exec`: a second process in a running container, through the
//! runtime's exec (kiln_exec), with the container's environment, user and
//! working directory unless the caller overrides them.
//!
//! A detached exec (`-d`) must outlive the kiln that asked for it: the
//! runtime's exec waits for the process, so kiln re-executes itself as
//! `kiln __kiln-exec ROOT ID REQUEST-JSON` in a session of its own, which
//! runs the exec and waits for it; the caller returns once that helper has
//! checked what can be checked (the container runs, the program exists).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use kiln_exec::{ProcessIo, ProcessSpec};
use kiln_store::Store;
use serde::{Deserialize, Serialize};

use crate::command::check_executable;
use crate::containers::Container;
use crate::engine::Engine;
use crate::error::{io, ContainerError, Result};
use crate::record::Status;

/// The hidden first argument of a detached exec's helper:
/// `kiln __kiln-exec ROOT ID REQUEST-JSON`.
pub const EXEC_ARG: &str = "__kiln-exec";

/// What `docker exec` was asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The program and its arguments.
    pub cmd: Vec<String>,
    /// `-u USER[:GROUP]`; the container's user when `None`.
    pub user: Option<String>,
    /// `-w DIR`; the container's working directory when `None`.
    pub workdir: Option<String>,
    /// `-e K=V` (and `--env-file`), over the container's environment.
    pub env: Vec<String>,
}

/// The environment docker gives an exec: `PATH` and `HOSTNAME` as the
/// daemon sets them, the container's `Env`, then the exec's `-e` (a key
/// given again replaces the earlier value, in its place).
pub fn exec_env(hostname: &str, container_env: &[String], extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: &str| {
        let key = kv.split_once('=').map_or(kv, |(k, _)| k);
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => *slot = kv.to_string(),
            None => env.push(kv.to_string()),
        }
    };
    set(&format!("HOSTNAME={hostname}"));
    for e in container_env.iter().chain(extra) {
        set(e);
    }
    env
}

impl Engine {
    /// Container `input` if it runs, and its init's pid; docker's `Container
    /// ID is not running` otherwise.
    pub fn running(&self, input: &str) -> Result<(Container, i32)> {
        let c = self.get(input)?;
        match (c.state.status, c.state.pid) {
            (Status::Running, Some(pid)) => Ok((c, pid)),
            _ => Err(ContainerError::NotRunning(c.config.id.clone())),
        }
    }

    /// The process an exec runs, checked against the container's root as
    /// the container sees it (`/proc/PID/root`: its volumes included).
    fn exec_spec(&self, c: &Container, pid: i32, req: &ExecRequest) -> Result<ProcessSpec> {
        if req.cmd.is_empty() {
            return Err(ContainerError::InvalidConfig(
                "exec needs a command to run".into(),
            ));
        }
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let p = &c.config.process;
        let user = req.user.clone().unwrap_or_else(|| p.user.clone());
        // docker: an unknown user fails the exec as a program that cannot
        // be run does (126), where `run` fails to create (125).
        let user = crate::spec::container_user(&user, &root).map_err(|e| match e {
            ContainerError::Exec(e @ kiln_exec::ExecError::User { .. }) => {
                ContainerError::CannotRun {
                    code: 126,
                    message: e.to_string(),
                }
            }
            e => e,
        })?;
        let cwd = match req.workdir.as_deref().unwrap_or(&p.working_dir) {
            "" => "/".to_string(),
            w => w.to_string(),
        };
        let env = exec_env(&p.hostname, &p.env, &req.env);
        check_executable(&root, &req.cmd[0], &env, &cwd).map_err(|n| {
            ContainerError::CannotRun {
                code: n.code,
                message: n.message,
            }
        })?;
        let mut spec = crate::spec::container_process(&c.config)?;
        spec.args = req.cmd.clone();
        spec.env = env;
        spec.cwd = cwd;
        spec.user = user;
        Ok(spec)
    }

    /// Runs `req` in running container `input`, its output on `stdout` and
    /// `stderr`; waits for it and returns its exit code.
    pub fn exec(
        &self,
        input: &str,
        req: &ExecRequest,
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<i32> {
        let (c, pid) = self.running(input)?;
        let spec = self.exec_spec(&c, pid, req)?;
        let container = self.executor(&c.config.host)?.container(c.id())?;
        Ok(container.exec(
            &spec,
            ProcessIo {
                stdout,
                stderr,
                stdin,
            },
        )?)
    }

    /// `exec -t`: `req` in a terminal of its own, attached to this
    /// process's stdin and stdout (its window size passed on); waits for
    /// it and returns its exit code.
    pub fn exec_terminal(&self, input: &str, req: &ExecRequest) -> Result<i32> {
        let (c, pid) = self.running(input)?;
        let mut spec = self.exec_spec(&c, pid, req)?;
        spec.terminal = true;
        if !spec.env.iter().any(|e| e.starts_with("TERM=")) {
            spec.env.push("TERM=xterm".into());
        }
        let container = self.executor(&c.config.host)?.container(c.id())?;
        let (master, process) = container.exec_with_terminal(&spec)?;
        crate::terminal::pass_window_size(&master);
        let to = std::fs::File::from(master.try_clone().map_err(io("attach to", c.id()))?);
        // Blocked on our stdin until it ends or this process exits.
        drop(crate::terminal::copy_stdin(to));
        let mut from = std::fs::File::from(master);
        let mut out = std::io::stdout();
        let mut buf = [0u8; 32 * 1024];
        // The terminal's end reads as EIO.
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                break;
            }
        }
        Ok(process.wait()?.unwrap_or(255))
    }

    /// `exec -d`: checks what it can here, then leaves the exec to a helper
    /// process of its own session and returns once it runs the exec.
    pub fn exec_detached(&self, input: &str, req: &ExecRequest) -> Result<()> {
        let (c, pid) = self.running(input)?;
        self.exec_spec(&c, pid, req)?;
        let json = serde_json::to_string(req).unwrap_or_default();
        let mut cmd = std::process::Command::new(&self.helper);
        cmd.arg(EXEC_ARG)
            .arg(&self.root)
            .arg(c.id())
            .arg(json)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        // Its own session: the caller's terminal closing does not end it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .map_err(io("start the exec helper", &self.helper))?;
        let mut said = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = out.take(256).read_to_string(&mut said);
        }
        match said.strip_prefix("ok") {
            // Reaped by whoever adopts it once this process exits.
            Some(_) => Ok(()),
            None => {
                let _ = child.wait();
                Err(ContainerError::InvalidConfig(match said.trim() {
                    "" => "the exec helper ended before the exec started".to_string(),
                    why => why.to_string(),
                }))
            }
        }
    }
}

/// The helper of a detached exec (the arguments after [`EXEC_ARG`]): says
/// `ok` on its stdout (or why not) and lets go of it, then runs the exec
/// with its output thrown away, as docker's detached exec does.
pub fn run_exec_helper(args: &[String], helper: PathBuf) -> i32 {
    let [root, id, json] = args else {
        eprintln!("usage: kiln {EXEC_ARG} ROOT ID REQUEST-JSON");
        return 125;
    };
    let _ = rustix::process::setsid();
    let answer = |text: &str| {
        let mut out = std::io::stdout();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    let prepared = (|| -> Result<(Engine, ExecRequest, OwnedFd, OwnedFd)> {
        let req: ExecRequest = serde_json::from_str(json)
            .map_err(|e| ContainerError::InvalidConfig(format!("bad exec request: {e}")))?;
        let store = Store::open(Path::new(root))?;
        let engine = Engine::new(&store, helper)?;
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(io("open", "/dev/null"))?;
        let out = OwnedFd::from(null);
        let err = out
            .as_fd()
            .try_clone_to_owned()
            .map_err(io("open", "/dev/null"))?;
        Ok((engine, req, out, err))
    })();
    let (engine, req, out, err) = match prepared {
        Ok(p) => p,
        Err(e) => {
            answer(&kiln_core::error_chain(&e));
            return 125;
        }
    };
    answer("ok\n");
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
    match engine.exec(id, &req, None, out, err) {
        Ok(code) => code,
        Err(e) => {
            tracing::debug!("detached exec in {id}: {e}");
            125
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_env_is_hostname_then_container_then_flags() {
        let env = exec_env(
            "abc",
            &["PATH=/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into(), "HOSTNAME=mine".into()],
        );
        assert_eq!(env, ["HOSTNAME=mine", "PATH=/bin", "A=2", "B=3"]);
    }
}
