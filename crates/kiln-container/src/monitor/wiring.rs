//! How a container's standard streams are wired, by the monitor: pipes
//! (stdout and stderr apart, stdin the attached caller's or a pipe kept
//! open for `-i`) or a terminal (one stream; the caller's keystrokes
//! copied in, its window size passed on, again on SIGWINCH). Every byte
//! out goes to the json-file log, and to the caller when attached.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
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

/// Creates and starts the container's process with its streams wired.
pub(super) fn launch(
    exec: &Executor,
    id: &str,
    spec: &ProcessSpec,
    rootfs: &Path,
    log: &Arc<Mutex<File>>,
    w: Wiring,
) -> Result<(Container, Pumps)> {
    let pipe_err = |e| io("create a pipe for", id)(e);
    let (container, pumps) = if spec.terminal {
        let (container, master) = exec.create_with_terminal(id, spec, rootfs)?;
        let reader = File::from(master.try_clone().map_err(pipe_err)?);
        let threads = vec![pump(reader, Stream::Stdout, log.clone(), w.attached)];
        if w.attached {
            pass_window_size(&master);
            if w.first {
                let writer = File::from(master.try_clone().map_err(pipe_err)?);
                // Blocked on the caller's stdin until it ends or this
                // process exits: never joined.
                drop(copy_stdin(writer));
                watch_window_size(master.try_clone().map_err(pipe_err)?);
            }
        }
        // `threads` holds the only joinable ones; `master` itself may go:
        // the pump's copy keeps the terminal open.
        (
            container,
            Pumps {
                threads,
                _stdin_keeper: None,
            },
        )
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
        let threads = vec![
            pump(out_r, Stream::Stdout, log.clone(), w.attached),
            pump(err_r, Stream::Stderr, log.clone(), w.attached),
        ];
        (
            container,
            Pumps {
                threads,
                _stdin_keeper: keeper,
            },
        )
    };
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(ContainerError::from(e));
    }
    Ok((container, pumps))
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
