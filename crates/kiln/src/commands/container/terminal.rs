//! The caller's terminal while attached to a container's (`run -it`,
//! `start -ai`, `exec -it`): raw mode, so keystrokes (Ctrl-C included)
//! reach the container's terminal as typed, restored however kiln ends
//! the attachment.

use std::io::IsTerminal;

use rustix::termios::{tcgetattr, tcsetattr, OptionalActions, Termios};

/// docker's refusal of `-it` when stdin is no terminal (a pipe, a file):
/// there would be no keystrokes to pass and no terminal to restore.
pub(crate) fn require_tty_stdin() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("the input device is not a TTY");
    }
    Ok(())
}

/// Raw mode on stdin while it lives.
pub(crate) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode when stdin is a terminal; `None` otherwise.
    pub(crate) fn enable() -> anyhow::Result<Option<RawMode>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}
