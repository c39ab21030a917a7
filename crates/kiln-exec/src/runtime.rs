//! The two backends: youki's libcontainer in a re-exec'd kiln, or an
//! external OCI runtime binary. Both run the same bundle.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{io, ExecError, Result};
use crate::spec::ProcessSpec;

/// The hidden first argument that makes kiln act as the builtin runtime's
/// child (see [`run_builtin_child`]).
pub const BUILTIN_CHILD_ARG: &str = "__kiln-run-container";

#[derive(Debug, Clone)]
pub enum Runtime {
    /// libcontainer, run by re-executing `helper` (the kiln binary) with
    /// [`BUILTIN_CHILD_ARG`].
    Builtin { helper: PathBuf },
    /// An OCI runtime CLI (runc): `RUNTIME --root STATE run --bundle B ID`.
    Binary(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Executor {
    runtime: Runtime,
    /// Bundles and runtime state live here.
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

impl Executor {
    pub fn new(runtime: Runtime, state: &Path) -> Result<Executor> {
        std::fs::create_dir_all(state.join("bundles")).map_err(io("create", state))?;
        Ok(Executor {
            runtime,
            state: state.to_path_buf(),
        })
    }

    /// Runs `spec` in `rootfs` (already mounted). Every output line goes
    /// to `on_line` as it comes.
    pub fn run(
        &self,
        spec: &ProcessSpec,
        rootfs: &Path,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output> {
        // The built-in runtime makes namespaces and mounts as root; without
        // root it needs user namespaces, which kiln does not set up yet.
        if matches!(self.runtime, Runtime::Builtin { .. }) && !rustix::process::geteuid().is_root()
        {
            return Err(ExecError::Runtime(
                "running a process in a container needs root: run kiln as root (rootless RUN steps are not supported yet)"
                    .into(),
            ));
        }
        let bundles = self.state.join("bundles");
        let bundle = tempfile::Builder::new()
            .prefix("b")
            .tempdir_in(&bundles)
            .map_err(io("create bundle in", &bundles))?;
        for (name, content) in spec.support_files() {
            let p = bundle.path().join(name);
            std::fs::write(&p, content).map_err(io("write", p))?;
        }
        let config = spec.runtime_spec(rootfs, bundle.path());
        let config_path = bundle.path().join("config.json");
        std::fs::write(&config_path, config.to_string()).map_err(io("write", &config_path))?;
        let id = format!(
            "kiln-{}",
            bundle
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let runtime_root = self.state.join("runtime");
        let mut cmd = match &self.runtime {
            Runtime::Builtin { helper } => {
                let mut c = Command::new(helper);
                c.arg(BUILTIN_CHILD_ARG);
                c
            }
            Runtime::Binary(path) => {
                let mut c = Command::new(path);
                c.arg("--root").arg(&runtime_root).arg("run");
                c
            }
        };
        if let Runtime::Builtin { .. } = self.runtime {
            cmd.arg(&runtime_root);
        }
        cmd.arg("--bundle").arg(bundle.path()).arg(&id);
        let (mut reader, writer) = std::io::pipe().map_err(io("create pipe for", bundle.path()))?;
        let writer2 = writer
            .try_clone()
            .map_err(io("create pipe for", bundle.path()))?;
        cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
        let mut child = cmd.spawn().map_err(|e| {
            ExecError::Runtime(format!("cannot start {:?}: {e}", cmd.get_program()))
        })?;
        // The child holds the write ends now; ours must go for EOF.
        drop(cmd);
        let mut tail: std::collections::VecDeque<String> = Default::default();
        let mut pending = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io("read output of", bundle.path())(e)),
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(&pending[..i]).into_owned();
                pending.drain(..=i);
                on_line(&line);
                tail.push_back(line);
                if tail.len() > TAIL_LINES {
                    tail.pop_front();
                }
            }
        }
        if !pending.is_empty() {
            let line = String::from_utf8_lossy(&pending).into_owned();
            on_line(&line);
            tail.push_back(line);
        }
        let status = child.wait().map_err(io("wait for", bundle.path()))?;
        let code = status.code().unwrap_or(128 + 9);
        Ok(Output {
            code,
            tail: tail.into_iter().collect(),
        })
    }
}

/// The builtin runtime's child: `kiln __kiln-run-container STATE --bundle
/// B ID`. Runs the container with libcontainer in this (single-threaded,
/// freshly exec'd) process, waits for it, removes it, and returns the exit
/// code to exit with.
pub fn run_builtin_child(args: &[String]) -> i32 {
    match builtin_child(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kiln: container runtime: {e}");
            125
        }
    }
}

fn builtin_child(args: &[String]) -> std::result::Result<i32, String> {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;

    let [state, flag, bundle, id] = args else {
        return Err(format!(
            "usage: kiln {BUILTIN_CHILD_ARG} STATE --bundle DIR ID"
        ));
    };
    if flag != "--bundle" {
        return Err(format!("expected --bundle, got {flag:?}"));
    }
    let mut container = ContainerBuilder::new(id.clone(), SyscallType::Linux)
        .with_root_path(PathBuf::from(state))
        .map_err(|e| e.to_string())?
        .as_init(PathBuf::from(bundle))
        .with_systemd(false)
        .with_detach(false)
        .build()
        .map_err(|e| format!("create: {e}"))?;
    let started = container.start().map_err(|e| format!("start: {e}"));
    let code = match (&started, container.pid()) {
        (Ok(()), Some(pid)) => wait_for(pid.as_raw()),
        _ => 125,
    };
    if let Err(e) = container.delete(true) {
        tracing::warn!("removing container {id}: {e}");
    }
    started?;
    Ok(code)
}

/// Waits for the container's init and maps its end to an exit code
/// (128 + signal, as shells do).
fn wait_for(pid: i32) -> i32 {
    use rustix::process::{waitpid, Pid, WaitOptions};
    let Some(pid) = Pid::from_raw(pid) else {
        return 125;
    };
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return code;
                }
                if let Some(sig) = status.terminating_signal() {
                    return 128 + sig;
                }
            }
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return 125,
        }
    }
}
