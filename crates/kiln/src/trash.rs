//! Emptying the snapshot trash after a command, in a niced process of its
//! own: a `--no-cache` rebuild discards a context-sized duplicate tree per
//! COPY, and deleting it beside the build slowed cold builds by ~150 ms on
//! two cores. The command leaves it in `snapshots/trash`; this process
//! deletes it once the command is done (see `kiln_snapshot::empty_trash`).

use std::path::Path;
use std::process::{Command, Stdio};

/// kiln re-executed as the trash emptier: `kiln __kiln-empty-trash ROOT`.
pub(crate) const EMPTY_TRASH_ARG: &str = "__kiln-empty-trash";

/// Starts the emptier for store `root` if its trash holds anything; does
/// not wait for it (it outlives this process, in its own process group so
/// the terminal's Ctrl-C is not its business).
pub(crate) fn empty_after(root: &Path, exe: &Path) {
    if !kiln_snapshot::trash_pending(root) {
        return;
    }
    use std::os::unix::process::CommandExt;
    let spawned = Command::new(exe)
        .arg(EMPTY_TRASH_ARG)
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = spawned {
        tracing::debug!("starting the trash emptier: {e}");
    }
}

/// The emptier's body: lowest CPU priority, then delete. Exit code 0, or 1
/// when the trash could not be read (what is left waits for the next run).
pub(crate) fn run_emptier(args: &[String]) -> u8 {
    let [root] = args else {
        eprintln!("usage: kiln {EMPTY_TRASH_ARG} ROOT");
        return 125;
    };
    // Nice 19: a build started meanwhile gets the CPU.
    let _ = rustix::process::setpriority_process(None, 19);
    match kiln_snapshot::empty_trash(Path::new(root)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {}", kiln_core::error_chain(&e));
            1
        }
    }
}
