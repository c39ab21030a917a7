//! The command lines of the hand-over: what kiln passes when it execs
//! this program ([`Handover`]) and what this program passes when it execs
//! kiln back ([`Back`]).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;

/// A published port's host socket, held for the container's life and
/// relayed to the container: `tcp:FD:ADDR` or `udp:FD:ADDR` on the
/// command lines (`ADDR` the container's `IP:PORT`, `[IPv6]:PORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    pub udp: bool,
    pub fd: RawFd,
    pub to: SocketAddr,
}

impl Relay {
    fn to_arg(self) -> OsString {
        let proto = if self.udp { "udp" } else { "tcp" };
        format!("{proto}:{}:{}", self.fd, self.to).into()
    }

    fn parse(arg: &str) -> Result<Relay, String> {
        let bad = || format!("--relay: bad value {arg:?} (PROTO:FD:ADDR)");
        let mut parts = arg.splitn(3, ':');
        let udp = match parts.next() {
            Some("tcp") => false,
            Some("udp") => true,
            _ => return Err(bad()),
        };
        let fd = parts.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
        let to = parts.next().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
        Ok(Relay { udp, fd, to })
    }
}

/// What kiln hands over when it execs this program, as its command line:
/// `ROOT ID --kiln PATH --dir DIR --rootfs PATH --pid PID [--attach]
/// [--out FD --err FD | --pty FD [--copy-stdin] [--winch]] [--keep FD]…
/// [--relay PROTO:FD:ADDR]… --delay-ms N [--probe-ms N]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handover {
    /// The store root and the container's ID (passed back to kiln).
    pub root: PathBuf,
    pub id: String,
    /// The kiln binary to exec back into.
    pub kiln: PathBuf,
    /// `containers/<id>/`: state, lock and log.
    pub dir: PathBuf,
    /// The container's root as mounted (passed back for a restart).
    pub rootfs: PathBuf,
    /// The container's init on the host.
    pub pid: i32,
    /// The caller waits with its stdio inherited: output goes there too.
    pub attached: bool,
    /// The read ends of the process's stdout and stderr pipes.
    pub out: Option<RawFd>,
    pub err: Option<RawFd>,
    /// The master of the process's terminal (one stream, stdout).
    pub pty: Option<RawFd>,
    /// Copy this process's stdin into the terminal (`run -it`).
    pub copy_stdin: bool,
    /// Pass this process's terminal size on at start and on SIGWINCH.
    pub winch: bool,
    /// Held while this process runs, closed when it ends (a `-i` stdin's
    /// write end nobody attached to).
    pub keep: Vec<RawFd>,
    /// Published ports' host sockets, relayed to the container while this
    /// program runs and held for the container's life, across restarts:
    /// handed back to kiln at the end, which hands them here again.
    pub relays: Vec<Relay>,
    /// The restart back-off kiln is at, passed back unread.
    pub delay_ms: u64,
    /// The healthcheck's interval (0: none): every interval after the
    /// last probe ended, `kiln __kiln-monitor ROOT ID --probe --rootfs
    /// PATH` runs one probe and records it.
    pub probe_ms: u64,
}

impl Handover {
    /// The command line after the program name.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![self.root.clone().into(), self.id.clone().into()];
        let mut flag = |name: &str, value: OsString| {
            a.push(name.into());
            a.push(value);
        };
        flag("--kiln", self.kiln.clone().into());
        flag("--dir", self.dir.clone().into());
        flag("--rootfs", self.rootfs.clone().into());
        flag("--pid", self.pid.to_string().into());
        flag("--delay-ms", self.delay_ms.to_string().into());
        if self.probe_ms > 0 {
            flag("--probe-ms", self.probe_ms.to_string().into());
        }
        for (name, fd) in [
            ("--out", self.out),
            ("--err", self.err),
            ("--pty", self.pty),
        ] {
            if let Some(fd) = fd {
                flag(name, fd.to_string().into());
            }
        }
        for fd in &self.keep {
            flag("--keep", fd.to_string().into());
        }
        for r in &self.relays {
            flag("--relay", r.to_arg());
        }
        for (name, on) in [
            ("--attach", self.attached),
            ("--copy-stdin", self.copy_stdin),
            ("--winch", self.winch),
        ] {
            if on {
                a.push(name.into());
            }
        }
        a
    }

    /// Reads [`to_args`](Self::to_args)'s command line.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Handover, String> {
        let mut it = args.into_iter();
        let mut h = Handover {
            root: it.next().ok_or("missing ROOT")?.into(),
            id: it
                .next()
                .ok_or("missing ID")?
                .into_string()
                .map_err(|_| "bad ID")?,
            ..Handover::default()
        };
        while let Some(flag) = it.next() {
            let flag = flag.to_string_lossy().into_owned();
            match flag.as_str() {
                "--attach" => h.attached = true,
                "--copy-stdin" => h.copy_stdin = true,
                "--winch" => h.winch = true,
                _ => {
                    let value = it.next().ok_or(format!("{flag} needs a value"))?;
                    let number = || -> Result<i64, String> {
                        value
                            .to_str()
                            .and_then(|v| v.parse().ok())
                            .ok_or(format!("{flag}: not a number"))
                    };
                    match flag.as_str() {
                        "--kiln" => h.kiln = value.into(),
                        "--dir" => h.dir = value.into(),
                        "--rootfs" => h.rootfs = value.into(),
                        "--pid" => h.pid = number()? as i32,
                        "--delay-ms" => h.delay_ms = number()? as u64,
                        "--probe-ms" => h.probe_ms = number()? as u64,
                        "--out" => h.out = Some(number()? as RawFd),
                        "--err" => h.err = Some(number()? as RawFd),
                        "--pty" => h.pty = Some(number()? as RawFd),
                        "--keep" => h.keep.push(number()? as RawFd),
                        "--relay" => h.relays.push(Relay::parse(&value.to_string_lossy())?),
                        _ => return Err(format!("unknown flag {flag}")),
                    }
                }
            }
        }
        if h.pid <= 0 || h.kiln.as_os_str().is_empty() || h.dir.as_os_str().is_empty() {
            return Err("--pid, --kiln and --dir are required".into());
        }
        Ok(h)
    }
}

/// What this program execs kiln with when the process ended: `kiln
/// __kiln-monitor ROOT ID --exited CODE --rootfs PATH --delay-ms N
/// [--relay PROTO:FD:ADDR]… [--attach]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Back {
    pub code: i32,
    pub rootfs: PathBuf,
    pub delay_ms: u64,
    pub relays: Vec<Relay>,
    pub attached: bool,
}

impl Back {
    /// The flags after `ROOT ID`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--exited".into(),
            self.code.to_string().into(),
            "--rootfs".into(),
            self.rootfs.clone().into(),
            "--delay-ms".into(),
            self.delay_ms.to_string().into(),
        ];
        for r in &self.relays {
            a.push("--relay".into());
            a.push(r.to_arg());
        }
        if self.attached {
            a.push("--attach".into());
        }
        a
    }

    /// Reads the flags after `ROOT ID`: `None` when they are not a
    /// [`Back`] (no `--exited`).
    pub fn parse(flags: &[String]) -> Result<Option<Back>, String> {
        if !flags.iter().any(|f| f == "--exited") {
            return Ok(None);
        }
        let mut b = Back::default();
        let mut it = flags.iter();
        while let Some(flag) = it.next() {
            if flag == "--attach" {
                b.attached = true;
                continue;
            }
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let bad = || format!("{flag}: bad value {value:?}");
            match flag.as_str() {
                "--exited" => b.code = value.parse().map_err(|_| bad())?,
                "--rootfs" => b.rootfs = value.into(),
                "--delay-ms" => b.delay_ms = value.parse().map_err(|_| bad())?,
                "--relay" => b.relays.push(Relay::parse(value)?),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(Some(b))
    }
}
