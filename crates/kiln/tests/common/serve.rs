//! `kiln serve` started by a test: the child process and the `host:port`
//! it prints once it listens (`--addr 127.0.0.1:0` picks a free port).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Spawns `cmd` (a `kiln serve` command line) and waits for its
/// "listening on SCHEME://HOST:PORT, …" line. `log` is where its stderr
/// goes, quoted when no address comes.
pub(crate) fn listening(cmd: &mut Command, log: Option<&Path>) -> (Child, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.split("://").nth(1).and_then(|s| s.split(',').next()) {
        Some(host) => (child, host.to_string()),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = log
                .map(|p| std::fs::read_to_string(p).unwrap_or_default())
                .unwrap_or_default();
            panic!("no address in {line:?}; stderr: {stderr}")
        }
    }
}

/// `kiln serve` with default options on a free loopback port, in a store
/// of its own; killed on drop.
pub(crate) struct Serve {
    pub child: Child,
    pub host: String,
    _kiln: super::Kiln,
}

impl Serve {
    pub(crate) fn start() -> Serve {
        let kiln = super::Kiln::new();
        let (child, host) = listening(kiln.cmd().args(["serve", "--addr", "127.0.0.1:0"]), None);
        Serve {
            child,
            host,
            _kiln: kiln,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
