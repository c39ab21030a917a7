//! The per-container monitor: kiln re-executed as `kiln __kiln-monitor
//! ROOT ID [--attach]`, one per running container, like podman's conmon.
//!
//! It leaves the caller's session (`setsid`), becomes a child subreaper
//! (the container's init is re-parented to it, so it collects the exit
//! code), mounts the writable root, fills new volumes from the image,
//! creates and starts the process through the runtime, and then owns it:
//! its output goes to docker's json-file log (and to the caller's
//! terminal when attached), its exit code and `FinishedAt` are written
//! atomically, the restart policy is applied (back-off from 100 ms
//! doubling to a minute, reset after 10 s up), and `--rm` removes the
//! container at the end. A detached caller is told `ok` on the monitor's
//! stdout once the process runs; a start that fails leaves its reason in
//! the state (`.State.Error`) and the exit code docker gives (125, 126,
//! 127).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use kiln_store::Store;

use crate::command::check_executable;
use crate::engine::{open_snapshotter, process_start_time, Engine};
use crate::error::{io, ContainerError, Result};
use crate::health::Prober;
use crate::logs::fixed_nanos;
use crate::record::{MountConfig, Status};

mod wiring;

/// Runs a monitor with the arguments after [`MONITOR_ARG`](crate::MONITOR_ARG);
/// returns the process's exit code (what a foreground `run` exits with).
pub fn run_monitor(args: &[String], helper: PathBuf) -> i32 {
    let (root, id, attached) = match args {
        [root, id] => (root, id, false),
        [root, id, flag] if flag == "--attach" => (root, id, true),
        _ => {
            eprintln!("usage: kiln {} ROOT ID [--attach]", crate::MONITOR_ARG);
            return 125;
        }
    };
    // Out of the caller's session: its Ctrl-C and hang-up are the
    // caller's to forward, not ours to die of.
    let _ = rustix::process::setsid();
    match Monitor::open(Path::new(root), id, helper, attached).and_then(|m| m.run()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", kiln_core::error_chain(&e));
            125
        }
    }
}

struct Monitor {
    store: Store,
    engine: Engine,
    id: String,
    attached: bool,
    /// Told `ok` when the process first runs (detached only).
    told: bool,
}

/// Lazily unmounts the container's root under `dir` if a monitor that
/// died left it mounted.
pub(crate) fn unmount_rootfs(dir: &Path) {
    let rootfs = dir.join("rootfs");
    match rustix::mount::unmount(&rootfs, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => {}
        Err(e) => tracing::warn!("unmounting {}: {e}", rootfs.display()),
    }
}

/// A start that failed: its exit code and reason.
struct Failed(i32, String);

impl Monitor {
    fn open(root: &Path, id: &str, helper: PathBuf, attached: bool) -> Result<Monitor> {
        let store = Store::open(root)?;
        let engine = Engine::new(&store, helper)?;
        Ok(Monitor {
            store,
            engine,
            id: id.to_string(),
            attached,
            told: false,
        })
    }

    fn run(mut self) -> Result<i32> {
        let id = self.id.clone();
        let me = std::process::id() as i32;
        let start = process_start_time(me).unwrap_or(0);
        self.engine
            .containers
            .update_state(&id, |s| s.monitor = Some((me, start)))?;
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::warn!("cannot become a child subreaper ({e}): exit codes will be unknown");
        }
        let c = self.engine.containers.load(&id)?;
        let dir = self.engine.containers.dir_of(&id);
        let target = dir.join("rootfs");
        std::fs::create_dir_all(&target).map_err(io("create", &target))?;
        unmount_rootfs(&dir);
        let snaps = open_snapshotter(&self.engine.root)?;
        let mounted = kiln_snapshot::mount(&snaps.mounts(&c.config.snapshot)?, &target)?;
        let rootfs = mounted.path().to_path_buf();
        let code = match self.supervise(&rootfs) {
            Ok(code) => code,
            Err(Failed(code, message)) => {
                let first = !self.told;
                self.engine.containers.update_state(&id, |s| {
                    s.error = message.clone();
                    s.exit_code = code;
                    s.pid = None;
                    if !first {
                        s.status = Status::Exited;
                        s.finished_at = Some(fixed_nanos(SystemTime::now()));
                    }
                })?;
                if self.attached {
                    eprintln!("Error: {message}");
                }
                code
            }
        };
        drop(mounted);
        let state = self
            .engine
            .containers
            .update_state(&id, |s| s.monitor = None)?;
        if c.config.host.auto_remove {
            let c = crate::containers::Container {
                config: c.config,
                state,
            };
            self.engine.destroy(&self.store, &c, true)?;
        }
        Ok(code)
    }

    /// Runs the process, and again as the restart policy says; its last
    /// exit code.
    fn supervise(&mut self, rootfs: &Path) -> Result<i32, Failed> {
        let fail = |e: ContainerError| Failed(125, kiln_core::error_chain(&e));
        let id = self.id.clone();
        let c = self.engine.containers.load(&id).map_err(fail)?;
        for m in &c.config.host.mounts {
            if let MountConfig::Volume { name, target, .. } = m {
                if let Some(inside) = inside_root(rootfs, target) {
                    self.engine.volumes.copy_up(name, &inside).map_err(fail)?;
                }
            }
        }
        // On the bridge until the container is done for good.
        let _network = crate::net::attach(&c.config).map_err(fail)?;
        let exec = self.engine.executor(&c.config.host).map_err(fail)?;
        let log_path = self.engine.containers.log_path(&id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| fail(io("open", &log_path)(e)))?;
        let log = Arc::new(Mutex::new(log));
        let mut restarts = c.state.restart_count;
        let mut delay = Duration::from_millis(100);
        loop {
            let spec =
                crate::spec::process_spec(&c.config, rootfs, &self.engine.volumes).map_err(fail)?;
            let p = &c.config.process;
            crate::command::ensure_dir(rootfs, &spec.cwd)
                .map_err(|e| fail(io("create the working directory", &spec.cwd)(e)))?;
            check_executable(rootfs, &p.path, &spec.env, &spec.cwd)
                .map_err(|n| Failed(n.code, n.message))?;
            let (container, pumps) = wiring::launch(
                &exec,
                &id,
                &spec,
                rootfs,
                &log,
                wiring::Wiring {
                    attached: self.attached,
                    open_stdin: p.open_stdin,
                    first: !self.told,
                },
            )
            .map_err(fail)?;
            let started = Instant::now();
            let pid = container.state().ok().and_then(|s| s.pid);
            self.engine
                .containers
                .update_state(&id, |s| {
                    s.status = Status::Running;
                    s.pid = pid;
                    s.exit_code = 0;
                    s.error.clear();
                    s.oom_killed = false;
                    s.restart_count = restarts;
                    s.started_at = Some(fixed_nanos(SystemTime::now()));
                    crate::health::on_start(s, p.healthcheck.as_ref());
                })
                .map_err(fail)?;
            self.tell_ok();
            let prober = Prober::for_process(&self.engine.containers, &exec, &c.config, &spec);
            let code = container.wait().map_err(|e| fail(e.into()))?.unwrap_or(255);
            drop(prober);
            // Read before the runtime removes the cgroup.
            let oom = kiln_exec::cgroup::oom_killed(&crate::spec::cgroups_path(&id));
            pumps.join();
            if let Err(e) = container.delete(true) {
                tracing::warn!("removing the runtime container of {id}: {e}");
            }
            let state = self
                .engine
                .containers
                .update_state(&id, |s| {
                    s.status = Status::Exited;
                    s.exit_code = code;
                    s.oom_killed = oom;
                    s.pid = None;
                    s.finished_at = Some(fixed_nanos(SystemTime::now()));
                })
                .map_err(fail)?;
            if !c
                .config
                .host
                .restart
                .restarts(code, restarts, state.stopped_by_user)
            {
                return Ok(code);
            }
            restarts += 1;
            if started.elapsed() >= Duration::from_secs(10) {
                delay = Duration::from_millis(100);
            }
            self.engine
                .containers
                .update_state(&id, |s| s.status = Status::Restarting)
                .map_err(fail)?;
            if self.back_off(delay).map_err(fail)? {
                self.engine
                    .containers
                    .update_state(&id, |s| s.status = Status::Exited)
                    .map_err(fail)?;
                return Ok(code);
            }
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    }

    /// Sleeps `delay` before a restart; true when a user stopped the
    /// container meanwhile.
    fn back_off(&self, delay: Duration) -> Result<bool> {
        let end = Instant::now() + delay;
        loop {
            if self.engine.containers.load(&self.id)?.state.stopped_by_user {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= end {
                return Ok(false);
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    /// Tells a detached caller the process runs, and lets go of its pipe.
    fn tell_ok(&mut self) {
        if self.told {
            return;
        }
        self.told = true;
        if self.attached {
            return;
        }
        let mut out = std::io::stdout();
        let _ = out.write_all(b"ok\n");
        let _ = out.flush();
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = rustix::stdio::dup2_stdout(&null);
        }
    }
}

/// `target` inside `rootfs` when it resolves there (an image's link
/// pointing out of the root gives nothing to copy up).
fn inside_root(rootfs: &Path, target: &str) -> Option<PathBuf> {
    let root = rootfs.canonicalize().ok()?;
    let p = root
        .join(target.trim_start_matches('/'))
        .canonicalize()
        .ok()?;
    p.starts_with(&root).then_some(p)
}
