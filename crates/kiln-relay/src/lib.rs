//! The userland proxy of published ports: every TCP connection accepted
//! (or UDP datagram received) on a host socket is relayed to a
//! container's address.
//!
//! kiln binds the host sockets itself (`kiln_network::proxy`) and hands
//! them to the container's monitor, which relays with [`serve`]: kiln's
//! full monitor while it starts the container, then the lean
//! `kiln-monitor` it execs into for the rest of the container's life.
//! That is why this crate is std only: the lean monitor is what stays
//! resident for every running container. Threads, not an event loop:
//! a connection's two copy loops run on threads kept from earlier
//! connections ([`pool`]), which costs little resident memory when idle
//! and keeps the code short.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod pool;

/// A bound host socket of a published port.
#[derive(Debug)]
pub enum HostSocket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl HostSocket {
    /// `fd` as a socket of protocol `udp` or TCP.
    pub fn from_fd(fd: OwnedFd, udp: bool) -> HostSocket {
        if udp {
            HostSocket::Udp(UdpSocket::from(fd))
        } else {
            HostSocket::Tcp(TcpListener::from(fd))
        }
    }

    pub fn is_udp(&self) -> bool {
        matches!(self, HostSocket::Udp(_))
    }

    /// Another descriptor of the same socket (close-on-exec).
    pub fn try_clone(&self) -> std::io::Result<HostSocket> {
        Ok(match self {
            HostSocket::Tcp(s) => HostSocket::Tcp(s.try_clone()?),
            HostSocket::Udp(s) => HostSocket::Udp(s.try_clone()?),
        })
    }
}

impl AsFd for HostSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            HostSocket::Tcp(s) => s.as_fd(),
            HostSocket::Udp(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for HostSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl From<HostSocket> for OwnedFd {
    fn from(s: HostSocket) -> OwnedFd {
        match s {
            HostSocket::Tcp(s) => s.into(),
            HostSocket::Udp(s) => s.into(),
        }
    }
}

/// Relays `socket` to `to` on a thread named `name` that lives as long as
/// the process.
pub fn serve(socket: HostSocket, to: SocketAddr, name: &str) {
    let thread = std::thread::Builder::new().name(name.to_string());
    let _ = match socket {
        HostSocket::Tcp(l) => thread.spawn(move || tcp_accept(l, to)),
        HostSocket::Udp(u) => thread.spawn(move || udp_relay(u, to)),
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

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
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        serve(tcp, at(echo_port), "test-tcp");
        serve(udp, at(uecho_port), "test-udp");
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
