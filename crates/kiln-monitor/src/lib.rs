//! The lean per-container monitor: what stays resident for each running
//! container once kiln has started it.
//!
//! kiln's full monitor (`kiln __kiln-monitor ROOT ID`, in kiln-container)
//! does everything heavy to start a container — leaves the caller's
//! session, becomes a child subreaper, mounts the root, fills volumes,
//! creates and starts the process through the runtime, tells a detached
//! caller `ok` — and, once the process has run 50 ms, `execve`s this program (the `kiln-monitor`
//! binary next to `kiln`), keeping its pid (so the container's recorded
//! monitor, pid and start time, stays true), its subreaper attribute (it
//! survives `execve`) and the descriptors it names on the command line
//! ([`Handover`]): the output pipes or the terminal's master, a `-i`
//! stdin kept open, and descriptors held for the container's life.
//!
//! This program only waits: one thread polls the output and a self-pipe
//! woken by SIGCHLD (and SIGWINCH for an attached terminal), copies every
//! byte into docker's json-file log (and to the attached caller's stdio),
//! and reaps what is re-parented to it. When the container's init ends it
//! `execve`s back into kiln (`kiln __kiln-monitor ROOT ID --exited CODE
//! …`, [`Back`]), which reads the OOM flag, deletes the runtime's
//! container, writes the exit code and `FinishedAt`, and applies the
//! restart policy (execing here again) or `--rm`. A healthcheck's timer
//! is held here too: every interval after the last probe ended, a kiln
//! runs one probe (`kiln __kiln-monitor ROOT ID --probe --rootfs PATH`)
//! and records it. Should kiln not run, the
//! exit is written here ([`update_state`], under the same `flock` as
//! kiln-container's state writes) and the root unmounted, so the exit
//! code is never lost.
//!
//! Published ports are relayed here too ([`Relay`], `kiln_relay`): the
//! host sockets kiln bound are handed over with the rest and back at the
//! end, and their relay threads (the only threads, and only with `-p`)
//! go with the `execve` back into kiln.
//!
//! No tokio, serde_json or tracing: the JSON written is a log line and a
//! few state fields ([`json`]), and the idle resident set stays near that
//! of a bare std program (bench/results/run.md).

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

mod args;
pub mod json;
mod sys;
mod time;

pub use args::{Back, Handover, Relay};

pub use json::{LineSplitter, Stream};
pub use time::fixed_nanos;

/// The hidden first argument that makes kiln a container's monitor (and
/// the verb this program execs back into kiln with).
pub const MONITOR_ARG: &str = "__kiln-monitor";

/// This program's file name, looked for next to `kiln`.
pub const BINARY: &str = "kiln-monitor";

/// The container directory's state file and the lock its writers take
/// (kiln-container's `containers.rs` names them the same).
pub const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = ".lock";

/// The program: `kiln-monitor` with [`Handover`]'s arguments. Returns
/// only when kiln could not be exec'd back into: the container's exit
/// code, after writing it to the state itself.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let h = match Handover::parse(args) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("kiln-monitor: {e} (this program is started by kiln, not by hand)");
            return 125;
        }
    };
    let held = relay(&h.relays);
    let code = watch(&h);
    let back = Back {
        code,
        rootfs: h.rootfs.clone(),
        delay_ms: h.delay_ms,
        relays: held.iter().map(|(r, _)| *r).collect(),
        attached: h.attached,
    };
    for (_, fd) in &held {
        if let Err(e) = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()) {
            eprintln!("kiln-monitor: keeping a held descriptor across exec: {e}");
        }
    }
    let e = std::process::Command::new(&h.kiln)
        .arg(MONITOR_ARG)
        .arg(&h.root)
        .arg(&h.id)
        .args(back.to_args())
        .exec();
    // kiln is gone (upgraded away, removed): the exit is recorded here;
    // the runtime's container stays for `rm` to delete.
    eprintln!("kiln-monitor: cannot run {} ({e})", h.kiln.display());
    let finished = format!("\"{}\"", fixed_nanos(SystemTime::now()));
    let code_text = code.to_string();
    if let Err(e) = update_state(
        &h.dir,
        &[
            ("status", "\"exited\""),
            ("exit_code", &code_text),
            ("pid", "null"),
            ("finished_at", &finished),
            ("monitor", "null"),
        ],
    ) {
        eprintln!("kiln-monitor: recording the exit of {}: {e}", h.id);
    }
    let _ = rustix::mount::unmount(h.dir.join("rootfs"), rustix::mount::UnmountFlags::DETACH);
    code
}

impl Back {
    /// The published ports' sockets this program handed back, taken over
    /// by number (call once: each number gets one owner), close-on-exec
    /// again; those not open are left out.
    pub fn take_relays(&self) -> Vec<(Relay, OwnedFd)> {
        self.relays
            .iter()
            .filter_map(|r| sys::adopt(r.fd).map(|fd| (*r, fd)))
            .collect()
    }
}

/// Starts relaying each published port's socket to the container
/// ([`kiln_relay::serve`], on a descriptor of its own that `execve`
/// closes) and returns the sockets held to hand back to kiln.
fn relay(relays: &[Relay]) -> Vec<(Relay, OwnedFd)> {
    let mut held = Vec::new();
    for r in relays {
        let Some(fd) = sys::adopt(r.fd) else { continue };
        match fd.try_clone() {
            Ok(copy) => {
                let name = format!("proxy-{}", r.to.port());
                kiln_relay::serve(kiln_relay::HostSocket::from_fd(copy, r.udp), r.to, &name);
            }
            Err(e) => eprintln!("kiln-monitor: relaying to {}: {e}", r.to),
        }
        held.push((*r, fd));
    }
    held
}

/// Sets top-level `fields` (raw JSON values) of `dir`'s `state.json`
/// under its `flock` (an exclusive `flock` on `.lock`, as
/// kiln-container's `Containers::update_state` takes it), written to a
/// temporary file and renamed over: readers see the old state or the new.
pub fn update_state(dir: &Path, fields: &[(&str, &str)]) -> std::io::Result<()> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path)?;
    let new = json::set_fields(&text, fields).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: not a JSON object", path.display()),
        )
    })?;
    let tmp = dir.join(format!(".tmp-monitor-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(new.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, &path)
}

/// One output stream of the container.
struct Source {
    from: File,
    split: LineSplitter,
}

const SIGCHLD: i32 = 17;
const SIGWINCH: i32 = 28;

/// Waits for the init to end while copying its output; its exit code
/// (128 + the signal when killed, 255 when it could not be known).
fn watch(h: &Handover) -> i32 {
    let wake = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    );
    let wake = match wake {
        Ok((r, w)) => {
            let mut signals = vec![SIGCHLD];
            if h.winch {
                signals.push(SIGWINCH);
            }
            if let Err(e) = sys::wake_on(&signals, &w) {
                eprintln!("kiln-monitor: signal handlers: {e}");
            }
            Some((r, w))
        }
        Err(e) => {
            eprintln!("kiln-monitor: a pipe: {e}");
            None
        }
    };
    let log_path = h.dir.join(format!("{}-json.log", h.id));
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| eprintln!("kiln-monitor: {}: {e}", log_path.display()))
        .ok();
    let mut sources = Vec::new();
    for (fd, stream) in [(h.out, Stream::Stdout), (h.err, Stream::Stderr)] {
        if let Some(fd) = fd.and_then(sys::adopt) {
            sources.push(Source {
                from: File::from(fd),
                split: LineSplitter::new(stream),
            });
        }
    }
    // The terminal's master: read as stdout, written with keystrokes.
    let mut master: Option<File> = None;
    if let Some(fd) = h.pty.and_then(sys::adopt) {
        let f = File::from(fd);
        master = f.try_clone().ok();
        sources.push(Source {
            from: f,
            split: LineSplitter::new(Stream::Stdout),
        });
    }
    if h.winch {
        if let Some(m) = &master {
            pass_window_size(m);
        }
    }
    let _keep: Vec<OwnedFd> = h.keep.iter().filter_map(|&n| sys::adopt(n)).collect();
    let mut stdin_open = h.copy_stdin && master.is_some();
    // Start-up is over: what it mapped of the binaries goes (see
    // `trim_file_pages`); the loop maps back the little it runs.
    sys::trim_file_pages();
    let probe_every = (h.probe_ms > 0).then(|| Duration::from_millis(h.probe_ms));
    let mut next_probe = probe_every.map(|d| Instant::now() + d);
    let mut probing: Option<i32> = None;
    let mut code = None;
    let mut orphaned = false;
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = Vec::new();
    loop {
        let was_probing = probing.is_some();
        let ended = reap(h.pid, &mut probing, &mut orphaned);
        code = code.or(ended);
        if let (true, None, Some(every)) = (was_probing, probing, probe_every) {
            // docker's interval runs from the end of the last probe.
            next_probe = Some(Instant::now() + every);
        }
        // A probe in flight is waited for (its own timeout bounds it):
        // no result lands after kiln recorded the end.
        if code.is_some() && sources.is_empty() && probing.is_none() {
            break;
        }
        let now = Instant::now();
        if let (None, None, Some(at)) = (code, probing, next_probe) {
            if now >= at {
                probing = spawn_probe(h);
                next_probe = None;
                if probing.is_none() {
                    next_probe = probe_every.map(|d| now + d);
                }
            }
        }
        let mut fds = Vec::with_capacity(sources.len() + 2);
        let in_flags = rustix::event::PollFlags::IN;
        if let Some((r, _)) = &wake {
            fds.push(rustix::event::PollFd::new(r, in_flags));
        }
        for s in &sources {
            fds.push(rustix::event::PollFd::new(&s.from, in_flags));
        }
        let stdin = std::io::stdin();
        if stdin_open {
            fds.push(rustix::event::PollFd::new(&stdin, in_flags));
        }
        // Without SIGCHLD (the init is not our child, or no handler) the
        // init's end is looked for every second.
        let tick = rustix::event::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        let until_probe = match (code, probing, next_probe) {
            (None, None, Some(at)) => {
                let d = at.saturating_duration_since(Instant::now());
                Some(rustix::event::Timespec {
                    tv_sec: d.as_secs() as i64,
                    tv_nsec: i64::from(d.subsec_nanos()),
                })
            }
            _ => None,
        };
        let timeout = if wake.is_none() || orphaned || code.is_some() {
            Some(until_probe.map_or(tick, |t| if t.tv_sec < 1 { t } else { tick }))
        } else {
            until_probe
        };
        let timeout = timeout.as_ref();
        match rustix::event::poll(&mut fds, timeout) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                eprintln!("kiln-monitor: poll: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 0;
        if let Some((r, _)) = &wake {
            if ready[0] {
                let mut signals = [0u8; 64];
                while let Ok(n @ 1..) = rustix::io::read(r, &mut signals) {
                    if signals[..n].contains(&(SIGWINCH as u8)) {
                        if let Some(m) = &master {
                            pass_window_size(m);
                        }
                    }
                }
            }
            i += 1;
        }
        let mut ended = Vec::new();
        for (n, s) in sources.iter_mut().enumerate() {
            if !ready[i + n] {
                continue;
            }
            lines.clear();
            let done = match s.from.read(&mut buf) {
                Ok(0) => true,
                Ok(len) => {
                    if h.attached {
                        echo(s.split.stream, &buf[..len]);
                    }
                    s.split.feed(&buf[..len], &mut lines);
                    false
                }
                Err(e) => e.kind() != std::io::ErrorKind::Interrupted,
            };
            // A terminal's end reads as EIO: the end of the stream too.
            if done {
                s.split.finish(&mut lines);
                ended.push(n);
            }
            if let (Some(f), false) = (&mut log, lines.is_empty()) {
                if let Err(e) = f.write_all(&lines) {
                    eprintln!("kiln-monitor: writing the container log: {e}");
                }
            }
        }
        i += sources.len();
        for n in ended.into_iter().rev() {
            sources.remove(n);
        }
        if stdin_open && ready.get(i) == Some(&true) {
            stdin_open = copy_keystrokes(&mut buf, master.as_mut());
        }
    }
    code.unwrap_or(255)
}

/// Runs one health probe in a kiln of its own; its pid.
fn spawn_probe(h: &Handover) -> Option<i32> {
    let child = std::process::Command::new(&h.kiln)
        .arg(MONITOR_ARG)
        .arg(&h.root)
        .arg(&h.id)
        .arg("--probe")
        .arg("--rootfs")
        .arg(&h.rootfs)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn();
    match child {
        // Reaped by `reap` (dropping a `Child` does not wait).
        Ok(c) => Some(c.id() as i32),
        Err(e) => {
            eprintln!("kiln-monitor: running a health probe: {e}");
            None
        }
    }
}

/// Reaps every ended child (orphans re-parented to this subreaper too);
/// the init's exit code once it ended; `probe` cleared when it ended.
/// `orphaned` is set when this process has no children at all: the init
/// is then watched in `/proc`.
fn reap(init: i32, probe: &mut Option<i32>, orphaned: &mut bool) -> Option<i32> {
    use rustix::process::{wait, WaitOptions};
    let mut code = None;
    loop {
        match wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                let pid = pid.as_raw_nonzero().get();
                if Some(pid) == *probe {
                    *probe = None;
                }
                if pid == init {
                    code = status
                        .exit_status()
                        .or_else(|| status.terminating_signal().map(|s| 128 + s));
                }
            }
            Ok(None) => return code,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => {
                *orphaned = true;
                if code.is_none() && !Path::new(&format!("/proc/{init}")).exists() {
                    return Some(255);
                }
                return code;
            }
        }
    }
}

/// Copies what the attached caller printed to this process's own stdout
/// or stderr; a caller that went away is not waited for.
fn echo(stream: Stream, bytes: &[u8]) {
    let _ = match stream {
        Stream::Stdout => {
            let mut o = std::io::stdout().lock();
            o.write_all(bytes).and_then(|_| o.flush())
        }
        Stream::Stderr => std::io::stderr().write_all(bytes),
    };
}

/// One read of this process's stdin into the terminal; false at its end.
fn copy_keystrokes(buf: &mut [u8], master: Option<&mut File>) -> bool {
    let Some(master) = master else {
        return false;
    };
    match std::io::stdin().read(buf) {
        Ok(0) => false,
        Ok(n) => master.write_all(&buf[..n]).is_ok(),
        Err(e) => e.kind() == std::io::ErrorKind::Interrupted,
    }
}

/// This process's terminal size (stdin's, else stdout's) onto the
/// container's terminal.
fn pass_window_size(master: &File) {
    let size = rustix::termios::tcgetwinsize(std::io::stdin())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdout()));
    if let Ok(size) = size {
        let _ = rustix::termios::tcsetwinsize(master.as_fd(), size);
    }
}

#[cfg(test)]
mod tests;
