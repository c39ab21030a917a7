//! Host sockets for published ports and the userland proxy.
//!
//! `kiln run`/`start` binds every published port itself
//! ([`bind_ports`]): a taken port fails the start with docker's "port is
//! already allocated" before the container runs. The sockets go to the
//! container's monitor, which holds them for the container's life: the
//! starting kiln writes a handoff file (its pid and each socket's fd) and
//! keeps the sockets open until the monitor has said it runs; the
//! monitor duplicates them out of the starter with `pidfd_getfd(2)`
//! ([`take_handoff`]), which needs no inherited descriptors and no fd
//! numbers agreed on the command line. The monitor then proxies
//! ([`serve`], the `kiln_relay` crate, which the lean monitor carries
//! too): every TCP connection accepted (or UDP datagram received) on the
//! host socket is relayed to the container's address. That path
//! carries loopback and hairpin clients; remote clients are DNATed by
//! the kernel before they reach the socket (see `nat`).

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{io, NetworkError, Result};
use crate::ports::{host_addr, PortMapping, PortSpec, Proto};

pub use kiln_relay::HostSocket;

/// Binds a socket for each spec (`endpoint` names the container in
/// docker's message). Ports taken by anyone fail with
/// [`NetworkError::PortAllocated`]; `-p` needs root.
pub fn bind_ports(specs: &[PortSpec], endpoint: &str) -> Result<Vec<(PortMapping, HostSocket)>> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    if !rustix::process::geteuid().is_root() {
        return Err(NetworkError::NeedsRoot);
    }
    let mut out = Vec::new();
    for spec in specs {
        let ip = spec.bind_ip();
        let (lo, hi) = spec.host_ports.unwrap_or((0, 0));
        let mut last = None;
        for port in lo..=hi {
            match bind_one(spec.proto, SocketAddr::new(ip, port)) {
                Ok(s) => {
                    last = None;
                    out.push(s);
                    break;
                }
                Err(e) => last = Some((port, e)),
            }
        }
        if let Some((port, e)) = last {
            let addr = if lo == hi {
                host_addr(ip, port)
            } else {
                format!("{}-{hi}", host_addr(ip, lo))
            };
            return Err(if e.kind() == std::io::ErrorKind::AddrInUse {
                NetworkError::PortAllocated {
                    endpoint: endpoint.to_string(),
                    addr,
                }
            } else {
                NetworkError::Bind { addr, source: e }
            });
        }
    }
    specs
        .iter()
        .zip(out)
        .map(|(spec, s)| {
            let local = match &s {
                HostSocket::Tcp(l) => l.local_addr(),
                HostSocket::Udp(u) => u.local_addr(),
            }
            .map_err(|source| NetworkError::Bind {
                addr: host_addr(spec.bind_ip(), 0),
                source,
            })?;
            Ok((
                PortMapping {
                    container_port: spec.container_port,
                    proto: spec.proto,
                    host_ip: spec.bind_ip(),
                    host_port: local.port(),
                },
                s,
            ))
        })
        .collect()
}

fn bind_one(proto: Proto, addr: SocketAddr) -> std::io::Result<HostSocket> {
    Ok(match proto {
        Proto::Tcp => HostSocket::Tcp(TcpListener::bind(addr)?),
        Proto::Udp => HostSocket::Udp(UdpSocket::bind(addr)?),
    })
}

#[derive(Serialize, Deserialize)]
struct Handoff {
    pid: i32,
    ports: Vec<(PortMapping, i32)>,
}

fn handoff_path(dir: &Path, id: &str) -> PathBuf {
    dir.join("handoff").join(format!("{id}.json"))
}

/// Tells container `id`'s monitor where its sockets are: this process
/// must keep them open until the monitor has taken them.
pub fn write_handoff(dir: &Path, id: &str, sockets: &[(PortMapping, HostSocket)]) -> Result<()> {
    let path = handoff_path(dir, id);
    if sockets.is_empty() {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let h = Handoff {
        pid: std::process::id() as i32,
        ports: sockets.iter().map(|(m, s)| (*m, s.as_raw_fd())).collect(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    let bytes = serde_json::to_vec(&h).map_err(|source| NetworkError::State {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, bytes).map_err(io("write", &path))
}

/// The sockets the starter of container `id` left for its monitor
/// (none without a handoff file), duplicated into this process.
pub fn take_handoff(dir: &Path, id: &str) -> Result<Vec<(PortMapping, HostSocket)>> {
    let path = handoff_path(dir, id);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", &path)(e)),
    };
    let _ = std::fs::remove_file(&path);
    let h: Handoff = serde_json::from_slice(&bytes).map_err(|source| NetworkError::State {
        path: path.clone(),
        source,
    })?;
    let pid = rustix::process::Pid::from_raw(h.pid).ok_or_else(|| {
        io("read", &path)(std::io::Error::other("no starter process in the handoff"))
    })?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| io("open the starting process of", &path)(e.into()))?;
    h.ports
        .into_iter()
        .map(|(m, fd)| {
            let owned: OwnedFd =
                rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
                    .map_err(|e| io("take a published port's socket from", &path)(e.into()))?;
            Ok((
                m,
                match m.proto {
                    Proto::Tcp => HostSocket::Tcp(TcpListener::from(owned)),
                    Proto::Udp => HostSocket::Udp(UdpSocket::from(owned)),
                },
            ))
        })
        .collect()
}

/// Relays each host socket to `target`'s container port, on threads
/// that live as long as the process ([`kiln_relay`]).
pub fn serve(sockets: Vec<(PortMapping, HostSocket)>, target: IpAddr) {
    for (m, s) in sockets {
        let to = SocketAddr::new(target, m.container_port);
        kiln_relay::serve(s, to, &format!("proxy-{}", m.host_port));
    }
}

/// Whether `addr` accepts a TCP connection now (tests and readiness).
pub fn tcp_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Reads one reply of at most `limit` bytes (tests).
pub fn read_some(mut s: impl Read, limit: usize) -> Vec<u8> {
    let mut buf = vec![0; limit];
    let n = s.read(&mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}
