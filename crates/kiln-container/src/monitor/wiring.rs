//! How a container's standard streams are wired, by the monitor: pipes
//! (stdout and stderr apart, stdin the attached caller's or a pipe kept
//! open for `-i`) or a terminal (one stream; the caller's keystrokes
//! copied in, its window size passed on, again on SIGWINCH). Every byte
//! out goes to the json-file log, and to the caller when attached: copied
//! by threads of this process, or by the lean monitor the streams are
//! handed over to.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use kiln_exec::{Container, Executor, ProcessIo, ProcessSpec};

use crate::error::{io, ContainerError, Result};
use crate::logs::{write_entry, Entry, LineSplitter, Stream};
use crate::terminal::{copy_stdin, pass_window_size};

/// What the caller asked for.
pub(super) struct Wiring {
    /// The caller waits, its stdio inherited by this monitor.
    pub attached: bool,
    /// `-i`: stdin stays open even when nobody is attached.
    pub open_stdin: bool,
    /// The first start (a restart has no caller's keystrokes to pass).
    pub first: bool,
}

/// The threads copying the container's output; joined once it ended.
pub(super) struct Pumps {
    threads: Vec<JoinHandle<()>>,
    /// The write end of a `-i` stdin nobody attached to: held so the
    /// container's stdin stays open, as docker keeps it.
    _stdin_keeper: Option<OwnedFd>,
}

impl Pumps {
    pub(super) fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// The container's output as the runtime left it, not yet copied
/// anywhere: pumped by this process ([`Streams::pump`]) or handed over to
/// the lean monitor ([`Streams::hand_over`]).
pub(super) struct Streams {
    output: Output,
    /// See [`Pumps`].
    stdin_keeper: Option<OwnedFd>,
    attached: bool,
    first: bool,
}

enum Output {
    Pipes { out: OwnedFd, err: OwnedFd },
    Terminal { master: OwnedFd },
}

impl Streams {
    /// Copies the output into the log (and to the caller) on threads of
    /// this process; an attached terminal gets the caller's keystrokes
    /// and window size too.
    pub(super) fn pump(self, log: &Arc<Mutex<File>>) -> Result<Pumps> {
        let pipe_err = |e| io("copy the output of", "a container")(e);
        let threads = match self.output {
            Output::Terminal { master } => {
                let reader = File::from(master.try_clone().map_err(pipe_err)?);
                let threads = vec![pump(reader, Stream::Stdout, log.clone(), self.attached)];
                if self.attached && self.first {
                    let writer = File::from(master.try_clone().map_err(pipe_err)?);
                    // Blocked on the caller's stdin until it ends or this
                    // process exits: never joined.
                    drop(copy_stdin(writer));
                    watch_window_size(master);
                }
                // `threads` holds the only joinable ones; `master` itself
                // may go: the pump's copy keeps the terminal open.
                threads
            }
            Output::Pipes { out, err } => vec![
                pump(File::from(out), Stream::Stdout, log.clone(), self.attached),
                pump(File::from(err), Stream::Stderr, log.clone(), self.attached),
            ],
        };
        Ok(Pumps {
            threads,
            _stdin_keeper: self.stdin_keeper,
        })
    }

    /// Fills in what the lean monitor takes over, the descriptors left
    /// open across `execve` (they stay owned here, should the exec fail).
    pub(super) fn hand_over(&self, h: &mut kiln_monitor::Handover) -> std::io::Result<()> {
        let inherit = |fd: &OwnedFd| -> std::io::Result<RawFd> {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(fd.as_raw_fd())
        };
        match &self.output {
            Output::Pipes { out, err } => {
                h.out = Some(inherit(out)?);
                h.err = Some(inherit(err)?);
            }
            Output::Terminal { master } => {
                h.pty = Some(inherit(master)?);
                h.copy_stdin = self.attached && self.first;
                h.winch = self.attached && self.first;
            }
        }
        if let Some(k) = &self.stdin_keeper {
            h.keep.push(inherit(k)?);
        }
        h.attached = self.attached;
        Ok(())
    }
}

/// Creates and starts the container's process with its streams wired;
/// `before_start` runs between the two (what may overlap the runtime's
/// create, such as the network's wiring, must be done by then).
pub(super) fn launch(
    exec: &Executor,
    id: &str,
    spec: &ProcessSpec,
    rootfs: &Path,
    w: Wiring,
    before_start: impl FnOnce() -> Result<()>,
) -> Result<(Container, Streams)> {
    let pipe_err = |e| io("create a pipe for", id)(e);
    let (container, output, keeper) = if spec.terminal {
        let (container, master) = exec.create_with_terminal(id, spec, rootfs)?;
        if w.attached {
            pass_window_size(&master);
        }
        (container, Output::Terminal { master }, None)
    } else {
        let (out_r, out_w) = std::io::pipe().map_err(pipe_err)?;
        let (err_r, err_w) = std::io::pipe().map_err(pipe_err)?;
        let (stdin, keeper) = if w.attached {
            let fd = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(pipe_err)?;
            (Some(fd), None)
        } else if w.open_stdin {
            let (r, wr) = std::io::pipe().map_err(pipe_err)?;
            (Some(OwnedFd::from(r)), Some(OwnedFd::from(wr)))
        } else {
            (None, None)
        };
        let container = exec.create(
            id,
            spec,
            rootfs,
            ProcessIo {
                stdout: out_w.into(),
                stderr: err_w.into(),
                stdin,
            },
        )?;
        let output = Output::Pipes {
            out: out_r.into(),
            err: err_r.into(),
        };
        (container, output, keeper)
    };
    if let Err(e) = before_start() {
        let _ = container.delete(true);
        return Err(e);
    }
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(ContainerError::from(e));
    }
    let streams = Streams {
        output,
        stdin_keeper: keeper,
        attached: w.attached,
        first: w.first,
    };
    Ok((container, streams))
}

/// The attached caller sends SIGWINCH here when its window changes
/// (this monitor has no terminal of its own to be told by): pass the new
/// size on.
fn watch_window_size(master: OwnedFd) {
    crate::signal::watch(&[WINCH], move |_| pass_window_size(&master));
}

/// SIGWINCH's number on Linux.
const WINCH: i32 = 28;

/// Copies one output stream of the container into the log, and to this
/// process's own stdout/stderr when attached. A terminal's end reads as
/// an error (EIO): the end of the stream too.
fn pump(
    mut from: impl Read + Send + 'static,
    stream: Stream,
    log: Arc<Mutex<File>>,
    attached: bool,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut split = LineSplitter::new(stream);
        let mut buf = vec![0u8; 32 * 1024];
        let mut write_log = |e: Entry| {
            let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(err) = write_entry(&mut *f, &e) {
                tracing::warn!("writing the container log: {err}");
            }
        };
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if attached {
                // The caller may have gone: its terminal is not ours to
                // wait for.
                let _ = match stream {
                    Stream::Stdout => {
                        let mut o = std::io::stdout().lock();
                        o.write_all(&buf[..n]).and_then(|_| o.flush())
                    }
                    Stream::Stderr => std::io::stderr().lock().write_all(&buf[..n]),
                };
            }
            split.feed(&buf[..n], &mut write_log);
        }
        split.finish(&mut write_log);
    })
}
