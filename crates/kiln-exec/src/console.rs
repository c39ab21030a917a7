//! Console sockets: how a runtime hands over a container's terminal. The
//! runtime (runc's `--console-socket`, libcontainer's
//! `with_console_socket`) connects to a unix socket kiln listens on and
//! sends the pty master as an `SCM_RIGHTS` message; kiln keeps the master
//! and the container's process has the slave as its stdio.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::error::{io, ExecError, Result};

/// `sun_path` holds 108 bytes with its NUL; longer paths cannot be bound.
const MAX_SOCKET_PATH: usize = 100;

/// How long a runtime that has returned may take to send the master: the
/// connection is normally queued before the runtime command exits.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listening console socket, removed when dropped.
#[derive(Debug)]
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
    /// Holds a short directory elsewhere when `dir` was too deep.
    _short: Option<tempfile::TempDir>,
}

impl ConsoleSocket {
    /// Listens at `dir/name`, or in a fresh directory under `/tmp` when that
    /// path is too long for a unix socket (deep state directories).
    pub(crate) fn bind(dir: &Path, name: &str) -> Result<ConsoleSocket> {
        let mut path = dir.join(name);
        let mut short = None;
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            let d = tempfile::Builder::new()
                .prefix("kiln-console-")
                .tempdir_in("/tmp")
                .map_err(io("create a console socket directory in", "/tmp"))?;
            path = d.path().join(name);
            short = Some(d);
        }
        let listener = UnixListener::bind(&path).map_err(io("listen on", &path))?;
        listener
            .set_nonblocking(true)
            .map_err(io("listen on", &path))?;
        Ok(ConsoleSocket {
            listener,
            path,
            _short: short,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the runtime sent for container `id`.
    pub(crate) fn receive(&self, id: &str) -> Result<OwnedFd> {
        let fail = |reason: String| ExecError::Terminal {
            id: id.to_string(),
            reason,
        };
        let started = Instant::now();
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if started.elapsed() > RECEIVE_TIMEOUT {
                        return Err(fail(
                            "the runtime never connected to the console socket".into(),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(fail(format!("accept: {e}"))),
            }
        };
        stream
            .set_nonblocking(false)
            .map_err(|e| fail(e.to_string()))?;
        stream
            .set_read_timeout(Some(RECEIVE_TIMEOUT))
            .map_err(|e| fail(e.to_string()))?;
        receive_fd(&stream)
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("the runtime sent no file descriptor".into()))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        // Only the name: a connection already made stays usable.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn receive_fd(stream: &UnixStream) -> std::io::Result<Option<OwnedFd>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    // runc sends the master's name ("/dev/ptmx" or "/dev/pts/ptmx").
    let mut name = [0u8; 256];
    recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut name)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut received = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for fd in fds {
                received.get_or_insert(fd);
            }
        }
    }
    Ok(received)
}

/// Sends `fd` to the console socket at `path`, as a runtime does (for the
/// fake runtime).
pub(crate) fn send_fd(path: &Path, fd: impl AsFd) -> std::io::Result<()> {
    let stream = UnixStream::connect(path)?;
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(
        &stream,
        &[IoSlice::new(b"/dev/ptmx")],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}
