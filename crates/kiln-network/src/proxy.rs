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
//! ([`serve`]): every TCP connection accepted (or UDP datagram received)
//! on the host socket is relayed to the container's address. That path
//! carries loopback and hairpin clients; remote clients are DNATed by
//! the kernel before they reach the socket (see `nat`).

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{io, NetworkError, Result};
use crate::ports::{host_addr, PortMapping, PortSpec, Proto};

/// A bound host socket.
#[derive(Debug)]
pub enum HostSocket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl HostSocket {
    fn fd(&self) -> i32 {
        match self {
            HostSocket::Tcp(s) => s.as_raw_fd(),
            HostSocket::Udp(s) => s.as_raw_fd(),
        }
    }
}

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
        ports: sockets.iter().map(|(m, s)| (*m, s.fd())).collect(),
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
/// that live as long as the process.
pub fn serve(sockets: Vec<(PortMapping, HostSocket)>, target: IpAddr) {
    for (m, s) in sockets {
        let to = SocketAddr::new(target, m.container_port);
        let _ = match s {
            HostSocket::Tcp(l) => std::thread::Builder::new()
                .name(format!("proxy-{}", m.host_port))
                .spawn(move || tcp_accept(l, to)),
            HostSocket::Udp(u) => std::thread::Builder::new()
                .name(format!("proxy-{}", m.host_port))
                .spawn(move || udp_relay(u, to)),
        };
    }
}

fn tcp_accept(listener: TcpListener, to: SocketAddr) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        crate::pool::spawn(move || tcp_relay(client, to));
    }
}

fn tcp_relay(client: TcpStream, to: SocketAddr) {
    let Ok(server) = TcpStream::connect_timeout(&to, Duration::from_secs(5)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    crate::pool::spawn(move || pipe(c2, s2));
    pipe(server, client);
}

/// Copies until end of stream, then passes the half-close on.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// One socket towards the container per client address; replies go back
/// from the host socket.
fn udp_relay(host: UdpSocket, to: SocketAddr) {
    let host = Arc::new(host);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = host.recv_from(&mut buf) else {
            continue;
        };
        let flow = {
            let mut map = flows.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = map.get(&client) {
                Some(f.clone())
            } else {
                let any: SocketAddr = match to {
                    SocketAddr::V4(_) => "0.0.0.0:0",
                    SocketAddr::V6(_) => "[::]:0",
                }
                .parse()
                .unwrap_or(to);
                let made = UdpSocket::bind(any).and_then(|s| s.connect(to).map(|()| s));
                made.ok().map(|s| {
                    let s = Arc::new(s);
                    map.insert(client, s.clone());
                    let (s2, host2, flows2) = (s.clone(), host.clone(), flows.clone());
                    let _ = std::thread::Builder::new()
                        .name("proxy-udp".into())
                        .spawn(move || udp_back(&s2, &host2, client, &flows2));
                    s
                })
            }
        };
        if let Some(f) = flow {
            let _ = f.send(&buf[..n]);
        }
    }
}

fn udp_back(
    flow: &UdpSocket,
    host: &UdpSocket,
    client: SocketAddr,
    flows: &Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>,
) {
    // A flow idle for a minute is forgotten, as docker-proxy does.
    let _ = flow.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = flow.recv(&mut buf) {
        let _ = host.send_to(&buf[..n], client);
    }
    flows
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&client);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_proxy_relays_tcp_and_udp_on_loopback() {
        // An echo server stands in for the container.
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let echo_port = echo.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for c in echo.incoming().flatten() {
                let mut r = c.try_clone().expect("clone");
                let mut w = c;
                std::thread::spawn(move || std::io::copy(&mut r, &mut w));
            }
        });
        let uecho = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let uecho_port = uecho.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let mut b = [0u8; 100];
            while let Ok((n, from)) = uecho.recv_from(&mut b) {
                let _ = uecho.send_to(&b[..n], from);
            }
        });
        let tcp = HostSocket::Tcp(TcpListener::bind("127.0.0.1:0").expect("bind"));
        let udp = HostSocket::Udp(UdpSocket::bind("127.0.0.1:0").expect("bind"));
        let (HostSocket::Tcp(t), HostSocket::Udp(u)) = (&tcp, &udp) else {
            unreachable!()
        };
        let (tp, up) = (t.local_addr().expect("a"), u.local_addr().expect("a"));
        let m = |c, proto| PortMapping {
            container_port: c,
            proto,
            host_ip: "127.0.0.1".parse().expect("ip"),
            host_port: 0,
        };
        serve(
            vec![(m(echo_port, Proto::Tcp), tcp)],
            "127.0.0.1".parse().expect("ip"),
        );
        serve(
            vec![(m(uecho_port, Proto::Udp), udp)],
            "127.0.0.1".parse().expect("ip"),
        );
        for _ in 0..50 {
            let mut c = TcpStream::connect(tp).expect("connect");
            c.write_all(b"hello").expect("write");
            c.shutdown(Shutdown::Write).expect("shutdown");
            let mut got = Vec::new();
            c.read_to_end(&mut got).expect("read");
            assert_eq!(got, b"hello");
        }
        let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        c.send_to(b"ping", up).expect("send");
        let mut b = [0u8; 10];
        let (n, from) = c.recv_from(&mut b).expect("reply");
        assert_eq!((&b[..n], from), (&b"ping"[..], up));
    }
}
