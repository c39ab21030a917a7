//! Running a command line under a pseudo-terminal, typing answers as
//! prompts appear: for tests of what users see at a terminal.

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a shell command line under a pseudo-terminal (`script`, from
/// util-linux), typing each answer of `dialog` (newline included) once its
/// prompt has appeared (so an answer never races the program's terminal
/// settings). Returns
/// whether the command succeeded and everything the terminal showed.
pub(crate) fn under_pty(command: &str, dialog: &[(&str, &str)]) -> (bool, String) {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    // `script` runs the line with $SHELL. A user's interactive shell is
    // never in the terminal's foreground group with kiln, so a Ctrl-C
    // reaches kiln alone; bash's cooperative wait comes closest to that
    // (dash, CI's default /bin/sh, dies of the same SIGINT first).
    let mut child = Command::new("timeout")
        .env("SHELL", "/bin/bash")
        .args(["30", "script", "-qec", command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) is needed for terminal tests");
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = shown.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let text = || String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = 0;
    for (prompt, answer) in dialog {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = text();
            if let Some(at) = t[seen..].find(prompt) {
                seen += at + prompt.len();
                break;
            }
            assert!(Instant::now() < deadline, "no prompt {prompt:?} in {t:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        write!(stdin, "{answer}").unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    (status.success(), text())
}
