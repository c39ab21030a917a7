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
//!
//! While the process runs, this 100 MB program is not what waits: once
//! the process has run [`HAND_OVER_AFTER`] (the caller was told at its
//! start), kiln `execve`s the lean
//! monitor, `kiln-monitor` next to it (the `kiln-monitor` crate), handing
//! over the output descriptors and the published ports' sockets, which
//! it relays from then on ([`Monitor::relays`]); the pid stays, so the recorded monitor stays true,
//! and so does the subreaper attribute. When the process ends the lean
//! monitor execs back into kiln (`kiln __kiln-monitor ROOT ID --exited
//! CODE …`), which carries on here after the wait: OOM flag, runtime
//! delete, exit state, restart (handing over again) or `--rm`. Health
//! probes need kiln's runtime code: the lean monitor holds the timer and
//! runs `kiln __kiln-monitor ROOT ID --probe --rootfs PATH` for each
//! probe ([`Monitor::probe`]). Without the lean binary, every container
//! is monitored in kiln throughout.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
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
    let usage = || {
        eprintln!("usage: kiln {} ROOT ID [--attach]", crate::MONITOR_ARG);
        125
    };
    let [root, id, flags @ ..] = args else {
        return usage();
    };
    // The lean monitor's health probe: one, recorded, then exit.
    if let [probe, flag, rootfs] = flags {
        if probe == "--probe" && flag == "--rootfs" {
            let probed = Monitor::open(Path::new(root), id, helper, false)
                .and_then(|m| m.probe(Path::new(rootfs)));
            if let Err(e) = probed {
                eprintln!("Error: {}", kiln_core::error_chain(&e));
                return 125;
            }
            return 0;
        }
    }
    // Back from the lean monitor: the process ended with a code.
    let back = match kiln_monitor::Back::parse(flags) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Error: {e}");
            return usage();
        }
    };
    let attached = match (&back, flags) {
        (Some(b), _) => b.attached,
        (None, []) => false,
        (None, [flag]) if flag == "--attach" => true,
        _ => return usage(),
    };
    let result = Monitor::open(Path::new(root), id, helper, attached).and_then(|m| match back {
        Some(b) => m.resume(b),
        None => {
            // Out of the caller's session: its Ctrl-C and hang-up are the
            // caller's to forward, not ours to die of.
            let _ = rustix::process::setsid();
            m.run()
        }
    });
    match result {
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
    /// The published ports' host sockets, held for the container's life
    /// (across restarts and hand-overs to the lean monitor, which relays
    /// them): see [`Monitor::hold_relays`].
    relays: Vec<(kiln_monitor::Relay, OwnedFd)>,
    /// Whether this process relays them already (monitoring in kiln).
    relaying: bool,
    /// The lean monitor to hand over to, when there is one.
    lean: Option<PathBuf>,
    /// The container's json-file log, opened by its first start here.
    log: Option<Arc<Mutex<std::fs::File>>>,
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
        let lean = lean_monitor(&helper);
        let engine = Engine::new(&store, helper)?;
        Ok(Monitor {
            store,
            engine,
            id: id.to_string(),
            attached,
            told: false,
            relays: Vec::new(),
            relaying: false,
            lean,
            log: None,
        })
    }

    /// Keeps the published ports' sockets open for as long as the
    /// container lives (this process and the lean monitor it hands over
    /// to, across `execve`: see [`Monitor::hand_over`]).
    fn hold_relays(&mut self, sockets: Vec<(kiln_relay::HostSocket, std::net::SocketAddr)>) {
        for (socket, to) in sockets {
            let udp = socket.is_udp();
            let fd = OwnedFd::from(socket);
            let relay = kiln_monitor::Relay {
                udp,
                fd: fd.as_raw_fd(),
                to,
            };
            self.relays.push((relay, fd));
        }
    }

    /// Relays the published ports from this process (the container is
    /// monitored here, not in the lean monitor), once: on threads that
    /// an `execve` ends, each on a descriptor of its own.
    fn relay_here(&mut self) {
        if std::mem::replace(&mut self.relaying, true) {
            return;
        }
        for (r, fd) in &self.relays {
            match fd.try_clone() {
                Ok(copy) => kiln_relay::serve(
                    kiln_relay::HostSocket::from_fd(copy, r.udp),
                    r.to,
                    &format!("proxy-{}", r.to.port()),
                ),
                Err(e) => tracing::warn!("relaying to {}: {e}", r.to),
            }
        }
    }

    /// Runs one health probe of the running container (the lean
    /// monitor's timer asks for each).
    fn probe(self, rootfs: &Path) -> Result<()> {
        let c = self.engine.containers.load(&self.id)?;
        if c.state.status != Status::Running {
            return Ok(());
        }
        let spec = crate::spec::process_spec(&c.config, rootfs, &self.engine.volumes)?;
        let target = crate::health::ProbeTarget {
            containers: self.engine.containers.clone(),
            executor: self.engine.executor(&c.config.host)?,
            id: self.id.clone(),
            process: spec,
        };
        crate::health::probe_once(target, c.config.process.healthcheck.as_ref(), &c.state);
        Ok(())
    }

    /// Carries on after the lean monitor saw the process end with
    /// `back.code`: the root is still mounted and the caller was told.
    fn resume(mut self, back: kiln_monitor::Back) -> Result<i32> {
        self.told = true;
        self.relays = back.take_relays();
        let c = self.engine.containers.load(&self.id)?;
        let delay = Duration::from_millis(back.delay_ms);
        let code = self.supervise(&back.rootfs, Some(back.code), delay);
        self.finish(c, code, None)
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
        // An `rm -f` since the record was read marks it removing before it
        // unmounts, so one of the two sees the other: if it unmounted
        // before this mount, this mount is undone here (else it would
        // stay mounted under a record that is gone).
        let removing = match self.engine.containers.load(&id) {
            Ok(now) => now.state.status == Status::Removing,
            Err(_) => true,
        };
        if removing {
            drop(mounted);
            return Err(ContainerError::InvalidConfig(format!(
                "container {} is being removed: it cannot be started",
                &id[..id.len().min(12)]
            )));
        }
        let rootfs = mounted.path().to_path_buf();
        let code = self.supervise(&rootfs, None, Duration::from_millis(100));
        self.finish(c, code, Some(mounted))
    }

    /// The end of the monitor: a failed start recorded, the root
    /// unmounted, the monitor cleared, `--rm`.
    fn finish(
        &mut self,
        c: crate::containers::Container,
        code: Result<i32, Failed>,
        mounted: Option<kiln_snapshot::Mounted>,
    ) -> Result<i32> {
        let id = self.id.clone();
        let code = match code {
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
        match mounted {
            Some(m) => drop(m),
            // Mounted before a hand-over to the lean monitor: by path.
            None => unmount_rootfs(&self.engine.containers.dir_of(&id)),
        }
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
    /// exit code. `exited`: the process already ran and ended so (back
    /// from the lean monitor); `delay`: the restart back-off so far.
    fn supervise(
        &mut self,
        rootfs: &Path,
        mut exited: Option<i32>,
        mut delay: Duration,
    ) -> Result<i32, Failed> {
        let fail = |e: ContainerError| Failed(125, kiln_core::error_chain(&e));
        let id = self.id.clone();
        let c = self.engine.containers.load(&id).map_err(fail)?;
        if exited.is_none() {
            for m in &c.config.host.mounts {
                if let MountConfig::Volume { name, target, .. } = m {
                    if let Some(inside) = inside_root(rootfs, target) {
                        self.engine.volumes.copy_up(name, &inside).map_err(fail)?;
                    }
                }
            }
        }
        // On the bridge until the container is done for good (attached
        // already when the lean monitor hands back an ended container).
        let mut network = if exited.is_some() {
            crate::net::still_attached(&c.config)
        } else {
            crate::net::attach(&c.config, &self.engine.helper).map_err(fail)?
        };
        if let Some(n) = network.as_mut() {
            let relays = n.take_relays();
            self.hold_relays(relays);
        }
        let exec = self.engine.executor(&c.config.host).map_err(fail)?;
        let mut restarts = c.state.restart_count;
        loop {
            let code = match exited.take() {
                Some(code) => code,
                None => self.launch_and_wait(&c, &exec, rootfs, restarts, delay, &mut network)?,
            };
            // Read before the runtime removes the cgroup.
            let oom = kiln_exec::cgroup::oom_killed(&crate::spec::cgroups_path(&id));
            match exec.container(&id) {
                Ok(container) => {
                    if let Err(e) = container.delete(true) {
                        tracing::warn!("removing the runtime container of {id}: {e}");
                    }
                }
                Err(kiln_exec::ExecError::NotFound(_)) => {}
                Err(e) => tracing::warn!("removing the runtime container of {id}: {e}"),
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
            let up = state
                .started_at
                .as_deref()
                .and_then(kiln_core::parse_rfc3339)
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            if up >= Duration::from_secs(10) {
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

    /// Starts the process (the `restarts`-th restart) and waits for its
    /// end: here, or in the lean monitor this process becomes (then it
    /// does not return: kiln comes back with the exit code).
    fn launch_and_wait(
        &mut self,
        c: &crate::containers::Container,
        exec: &kiln_exec::Executor,
        rootfs: &Path,
        restarts: u32,
        delay: Duration,
        network: &mut Option<crate::net::OnBridge>,
    ) -> Result<i32, Failed> {
        let fail = |e: ContainerError| Failed(125, kiln_core::error_chain(&e));
        let id = self.id.clone();
        let spec =
            crate::spec::process_spec(&c.config, rootfs, &self.engine.volumes).map_err(fail)?;
        let p = &c.config.process;
        crate::command::ensure_dir(rootfs, &spec.cwd)
            .map_err(|e| fail(io("create the working directory", &spec.cwd)(e)))?;
        check_executable(rootfs, &p.path, &spec.env, &spec.cwd)
            .map_err(|n| Failed(n.code, n.message))?;
        let (container, streams) = wiring::launch(
            exec,
            &id,
            &spec,
            rootfs,
            wiring::Wiring {
                attached: self.attached,
                open_stdin: p.open_stdin,
                first: !self.told,
            },
            || network.as_mut().map_or(Ok(()), |n| n.ready()),
        )
        .map_err(fail)?;
        // From create's pid file: a `state` run of the runtime here was
        // one more exec of kiln before `run -d` could return.
        let pid = container.started_pid();
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
        // A server's published ports are relayed by whichever monitor
        // watches it, and this one's relay threads would end with its
        // `execve` (cutting what they carry): with ports, hand over at
        // once, so connections wait in the listener's backlog only for
        // the exec.
        let wait = if self.relays.is_empty() {
            HAND_OVER_AFTER
        } else {
            Duration::ZERO
        };
        let lean = (self.lean.clone().zip(pid)).filter(|(_, pid)| !ends_within(*pid, wait));
        if let Some((lean, pid)) = lean {
            let probe_every = crate::health::interval(p.healthcheck.as_ref());
            let e = self.hand_over(&lean, &streams, rootfs, pid, delay, probe_every);
            tracing::warn!(
                "cannot run the lean monitor {} ({e}): monitoring in kiln",
                lean.display()
            );
        }
        self.relay_here();
        let log = match &self.log {
            Some(log) => log.clone(),
            None => {
                let path = self.engine.containers.log_path(&id);
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| fail(io("open", &path)(e)))?;
                self.log.insert(Arc::new(Mutex::new(file))).clone()
            }
        };
        let pumps = streams.pump(&log).map_err(fail)?;
        let prober = Prober::for_process(&self.engine.containers, exec, &c.config, &spec);
        let code = container.wait().map_err(|e| fail(e.into()))?.unwrap_or(255);
        drop(prober);
        pumps.join();
        Ok(code)
    }

    /// Becomes the lean monitor (`execve`), which waits for init `pid`
    /// with `streams`; returns only the reason that failed.
    fn hand_over(
        &self,
        lean: &Path,
        streams: &wiring::Streams,
        rootfs: &Path,
        pid: i32,
        delay: Duration,
        probe_every: Option<Duration>,
    ) -> std::io::Error {
        let mut h = kiln_monitor::Handover {
            root: self.engine.root.clone(),
            id: self.id.clone(),
            kiln: self.engine.helper.clone(),
            dir: self.engine.containers.dir_of(&self.id),
            rootfs: rootfs.to_path_buf(),
            pid,
            relays: self.relays.iter().map(|(r, _)| *r).collect(),
            delay_ms: delay.as_millis() as u64,
            probe_ms: probe_every.map_or(0, |d| d.as_millis().max(1) as u64),
            ..Default::default()
        };
        if let Err(e) = streams.hand_over(&mut h) {
            return e;
        }
        // The published ports' sockets stay open across the exec; every
        // other descriptor of this process is close-on-exec (std and
        // rustix open them so): the log, the store's, the locks'.
        for (r, fd) in &self.relays {
            if let Err(e) = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()) {
                tracing::warn!("keeping the published port to {} across exec: {e}", r.to);
            }
        }
        std::process::Command::new(lean).args(h.to_args()).exec()
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

/// How long a process runs before the lean monitor takes over. One that
/// ends sooner (`run --rm IMG true`, a failing command) is waited for
/// here: the two execs, into the lean monitor and back into kiln, would
/// cost it milliseconds for no memory saved. Its output waits in the
/// pipe meanwhile; a detached caller was already told `ok`.
const HAND_OVER_AFTER: Duration = Duration::from_millis(50);

/// Whether process `pid` (a child of this one, not reaped) ends within
/// `limit`; false when that cannot be watched.
fn ends_within(pid: i32, limit: Duration) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
        return false;
    };
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(n) => return n > 0,
            Err(rustix::io::Errno::INTR) if !left.is_zero() => {}
            Err(_) => return false,
        }
    }
}

/// The lean monitor next to kiln (`helper`), if it is there.
pub(crate) fn lean_monitor(helper: &Path) -> Option<PathBuf> {
    let p = helper.parent()?.join(kiln_monitor::BINARY);
    p.is_file().then_some(p)
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
