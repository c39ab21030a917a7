//! A process's terminal seen from this process's own stdio: keystrokes
//! copied in, the window size passed on. The monitor does this for
//! `run -it`, the caller itself for `exec -it`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;

/// This process's stdin copied into `to` (a pty master) on a thread of its
/// own, until stdin or the terminal ends.
pub(crate) fn copy_stdin(mut to: File) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    })
}

/// This process's terminal size (its stdin's, else its stdout's) onto the
/// pty `master`.
pub(crate) fn pass_window_size(master: &OwnedFd) {
    let size = rustix::termios::tcgetwinsize(std::io::stdin())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdout()));
    if let Ok(size) = size {
        if let Err(e) = rustix::termios::tcsetwinsize(master, size) {
            tracing::debug!("setting the window size of a terminal: {e}");
        }
    }
}
