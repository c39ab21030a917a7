//! HEALTHCHECK probes, as docker 20.10 runs them: the monitor starts a
//! [`Prober`] thread when the process starts and stops it when the
//! process ends. Every `interval` (counted from the end of the last
//! probe, the first one `interval` after the start) the test runs inside
//! the container (`CMD-SHELL cmd` as `/bin/sh -c cmd`, `CMD` as its argv)
//! with the container's user, environment and working directory, and is
//! given up after `timeout` (its processes killed). Exit 0 makes the
//! container `healthy`; `retries` failures in a row make it `unhealthy`;
//! failures inside the start period do not count while it is still
//! `starting`. The last five results stay in `State.health`, outputs cut
//! at 4 KiB as docker cuts them.

use std::io::Read;
use std::os::fd::AsFd;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use kiln_exec::{Executor, ProcessIo, ProcessSpec};

use crate::containers::Containers;
use crate::logs::fixed_nanos;
use crate::record::{ContainerConfig, Health, HealthResult, Healthcheck, State, Status};

/// docker's `maxOutputLen`.
const MAX_OUTPUT: usize = 4096;
/// docker's `maxLogEntries`.
const MAX_LOG: usize = 5;

/// docker's health statuses.
pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// Resets the health of a container whose process starts (docker's
/// `initHealthMonitor`): `starting`, no failures, the old log kept. A
/// container without a healthcheck has no health.
pub fn on_start(state: &mut State, check: Option<&Healthcheck>) {
    if probe_argv(check).is_none() {
        state.health = None;
        return;
    }
    let h = state.health.get_or_insert_with(Health::default);
    h.status = STARTING.into();
    h.failing_streak = 0;
}

/// The argv a healthcheck runs; `None` when there is nothing to run
/// (no check, `NONE`, an empty test).
fn probe_argv(check: Option<&Healthcheck>) -> Option<Vec<String>> {
    let test = &check?.test;
    match test.split_first()? {
        (kind, [cmd]) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()])
        }
        (kind, argv) if kind == "CMD" && !argv.is_empty() => Some(argv.to_vec()),
        _ => None,
    }
}

/// A running prober; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Prober {
    /// Dropping the sender wakes the thread and ends it.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What a probe thread needs: where to record, what to run, how often.
pub(crate) struct ProbeTarget {
    pub(crate) containers: Containers,
    pub(crate) executor: Executor,
    pub(crate) id: String,
    /// The container's process: the probe runs with its user, env and cwd.
    pub(crate) process: ProcessSpec,
}

impl Prober {
    /// The prober of container `config`'s process (`spec`), started by
    /// the monitor once the process runs; `None` without a healthcheck.
    pub(crate) fn for_process(
        containers: &Containers,
        executor: &Executor,
        config: &ContainerConfig,
        spec: &ProcessSpec,
    ) -> Option<Prober> {
        let target = ProbeTarget {
            containers: containers.clone(),
            executor: executor.clone(),
            id: config.id.clone(),
            process: spec.clone(),
        };
        Prober::start(target, config.process.healthcheck.as_ref())
    }

    /// Starts probing container `target.id` per `check`; `None` when it
    /// has nothing to run.
    pub(crate) fn start(target: ProbeTarget, check: Option<&Healthcheck>) -> Option<Prober> {
        let argv = probe_argv(check)?;
        let check = check?.clone();
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || probe_loop(target, argv, check, rx));
        Some(Prober {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

/// Dropping a prober stops it, waiting for a probe in flight (bounded by
/// its timeout) so no result lands after the process's end.
impl Drop for Prober {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn nanos(n: i64, default: Duration) -> Duration {
    if n > 0 {
        Duration::from_nanos(n as u64)
    } else {
        default
    }
}

/// docker's timing of a check: interval, timeout, start period, retries
/// (its defaults for what is unset).
struct Timing {
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    retries: u32,
}

impl Timing {
    fn of(check: &Healthcheck) -> Timing {
        Timing {
            interval: nanos(check.interval, Duration::from_secs(30)),
            timeout: nanos(check.timeout, Duration::from_secs(30)),
            start_period: nanos(check.start_period, Duration::ZERO),
            retries: if check.retries > 0 {
                check.retries as u32
            } else {
                3
            },
        }
    }
}

/// How often the lean monitor runs [`probe_once`] (counted from the end
/// of the last probe); `None` without probes.
pub(crate) fn interval(check: Option<&Healthcheck>) -> Option<Duration> {
    probe_argv(check)?;
    Some(Timing::of(check?).interval)
}

/// One probe of `target`'s container, now, recorded in its state: what
/// the lean monitor has a kiln run every interval (the prober thread's
/// loop body). The start period counts from the process's `StartedAt`.
pub(crate) fn probe_once(target: ProbeTarget, check: Option<&Healthcheck>, state: &State) {
    let (Some(argv), Some(check)) = (probe_argv(check), check) else {
        return;
    };
    let t = Timing::of(check);
    let up = state
        .started_at
        .as_deref()
        .and_then(kiln_core::parse_rfc3339)
        .and_then(|s| SystemTime::now().duration_since(s).ok())
        .unwrap_or_default();
    let in_start_period = up < t.start_period;
    let mut process = target.process.clone();
    process.args = argv;
    let result = run_probe(&target, &process, t.timeout);
    let recorded = target.containers.update_state(&target.id, |s| {
        record(s, result, t.retries, in_start_period)
    });
    if let Err(e) = recorded {
        tracing::warn!("recording the health of {}: {e}", target.id);
    }
}

fn probe_loop(
    target: ProbeTarget,
    argv: Vec<String>,
    check: Healthcheck,
    stop: mpsc::Receiver<()>,
) {
    let Timing {
        interval,
        timeout,
        start_period,
        retries,
    } = Timing::of(&check);
    let started = Instant::now();
    let mut process = target.process.clone();
    process.args = argv;
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            // Stopped (the sender went) or told to.
            _ => return,
        }
        let in_start_period = started.elapsed() < start_period;
        let result = run_probe(&target, &process, timeout);
        // A result that comes after the stop is not the container's any
        // more (docker drops it too).
        if !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
            return;
        }
        let recorded = target
            .containers
            .update_state(&target.id, |s| record(s, result, retries, in_start_period));
        if let Err(e) = recorded {
            tracing::warn!("recording the health of {}: {e}", target.id);
            return;
        }
    }
}

/// docker's `handleProbeResult`.
pub(crate) fn record(s: &mut State, result: HealthResult, retries: u32, in_start_period: bool) {
    if s.status != Status::Running {
        return;
    }
    let h = s.health.get_or_insert_with(|| Health {
        status: STARTING.into(),
        ..Health::default()
    });
    let ok = result.exit_code == 0;
    h.log.push(result);
    if h.log.len() > MAX_LOG {
        let extra = h.log.len() - MAX_LOG;
        h.log.drain(..extra);
    }
    if ok {
        h.failing_streak = 0;
        h.status = HEALTHY.into();
    } else if !(h.status == STARTING && in_start_period) {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = UNHEALTHY.into();
        }
    }
}

/// Runs one probe: its exit code and output (stdout and stderr as they
/// came), or docker's `-1` results for a probe that could not run or
/// timed out.
fn run_probe(target: &ProbeTarget, process: &ProcessSpec, timeout: Duration) -> HealthResult {
    let start = fixed_nanos(SystemTime::now());
    let failed = |output: String| HealthResult {
        start: start.clone(),
        end: fixed_nanos(SystemTime::now()),
        exit_code: -1,
        output,
    };
    let container = match target.executor.container(&target.id) {
        Ok(c) => c,
        Err(e) => return failed(kiln_core::error_chain(&e)),
    };
    // A program that cannot start is docker's -1 with the runtime's words
    // (the runtime's own exit status would read as the probe's).
    if let Ok(Some(pid)) = container.pid() {
        let root = std::path::PathBuf::from(format!("/proc/{pid}/root"));
        let program = process.args.first().map_or("", String::as_str);
        if let Err(n) = crate::command::check_executable(&root, program, &process.env, &process.cwd)
        {
            return failed(format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown",
                n.message
            ));
        }
    }
    let (reader, io) = match ProcessIo::pipe() {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot create a pipe for the probe: {e}")),
    };
    let pipe = rustix::fs::fstat(reader.as_fd()).map(|st| st.st_ino).ok();
    let output = read_limited(reader);
    let (tx, rx) = mpsc::channel();
    let process = process.clone();
    std::thread::spawn(move || {
        let _ = tx.send(container.exec(&process, io));
    });
    let (exit_code, error) = match rx.recv_timeout(timeout) {
        Ok(Ok(code)) => (code, None),
        Ok(Err(e)) => (-1, Some(kiln_core::error_chain(&e))),
        Err(_) => {
            // Every process writing to the probe's pipe is the probe (or
            // its runtime command): they go, so none pile up.
            if let Some(ino) = pipe {
                kill_pipe_writers(ino);
            }
            let _ = rx.recv_timeout(Duration::from_secs(5));
            let message = format!(
                "Health check exceeded timeout ({})",
                kiln_core::gofmt::duration(timeout.as_nanos() as i64)
            );
            return failed(message);
        }
    };
    // A probe that left a process holding the pipe does not hold us.
    let text = output
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
    HealthResult {
        start,
        end: fixed_nanos(SystemTime::now()),
        exit_code,
        output: error.unwrap_or(text),
    }
}

/// Reads `from` to its end in a thread; the first 4 KiB, with `...` when
/// there was more (docker's `limitedBuffer`).
fn read_limited(mut from: std::io::PipeReader) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = MAX_OUTPUT - kept.len();
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    truncated |= n > room;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let mut text = String::from_utf8_lossy(&kept).into_owned();
        if truncated {
            text.push_str("...");
        }
        let _ = tx.send(text);
    });
    rx
}

/// SIGKILLs every process but this one with an open descriptor on pipe
/// `ino`.
fn kill_pipe_writers(ino: u64) {
    let me = std::process::id();
    let want = format!("pipe:[{ino}]");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()));
        if holds {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn result(code: i32) -> HealthResult {
        HealthResult {
            exit_code: code,
            ..HealthResult::default()
        }
    }

    fn running() -> State {
        let mut s = State {
            status: Status::Running,
            ..State::default()
        };
        on_start(
            &mut s,
            Some(&Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                ..Healthcheck::default()
            }),
        );
        s
    }

    #[test]
    fn tests_become_argv_as_docker_runs_them() {
        let check = |t: &[&str]| Healthcheck {
            test: t.iter().map(|s| s.to_string()).collect(),
            ..Healthcheck::default()
        };
        assert_eq!(
            probe_argv(Some(&check(&["CMD-SHELL", "exit 1"]))).unwrap(),
            ["/bin/sh", "-c", "exit 1"]
        );
        assert_eq!(
            probe_argv(Some(&check(&["CMD", "ls", "/"]))).unwrap(),
            ["ls", "/"]
        );
        assert!(probe_argv(Some(&check(&["NONE"]))).is_none());
        assert!(probe_argv(Some(&check(&["CMD"]))).is_none());
        assert!(probe_argv(None).is_none());
    }

    #[test]
    fn failures_in_a_row_make_it_unhealthy_and_one_success_healthy() {
        let mut s = running();
        assert_eq!(s.health.as_ref().unwrap().status, STARTING);
        record(&mut s, result(1), 2, false);
        assert_eq!(s.health.as_ref().unwrap().status, STARTING);
        record(&mut s, result(1), 2, false);
        let h = s.health.as_ref().unwrap();
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        record(&mut s, result(0), 2, false);
        let h = s.health.as_ref().unwrap();
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        for _ in 0..7 {
            record(&mut s, result(1), 9, false);
        }
        assert_eq!(s.health.as_ref().unwrap().log.len(), MAX_LOG);
    }

    #[test]
    fn the_start_period_forgives_failures_only_while_starting() {
        let mut s = running();
        record(&mut s, result(1), 1, true);
        assert_eq!(s.health.as_ref().unwrap().status, STARTING);
        assert_eq!(s.health.as_ref().unwrap().failing_streak, 0);
        record(&mut s, result(0), 1, true);
        record(&mut s, result(1), 1, true);
        assert_eq!(s.health.as_ref().unwrap().status, UNHEALTHY);
        // A result for a process that ended is dropped.
        let mut s = running();
        s.status = Status::Exited;
        record(&mut s, result(0), 1, false);
        assert!(s.health.as_ref().unwrap().log.is_empty());
    }
}
