//! The DNS responder of a user network: containers on it resolve each
//! other by name and `--network-alias` (and the containers of every other
//! network they share), other names are forwarded to the asking
//! container's `--dns` or the host's resolvers.
//!
//! One small process per network answers on the bridge's gateway address,
//! port 53: started by whoever puts the first container on the network
//! ([`Networks::ensure_responder`], under the IPAM lock, its owner
//! recorded in the network), it exits once no live container is on it
//! ([`Networks::responder_done`]). It is not a thread of the containers'
//! monitors, so a container connected to a network while it runs
//! (`network connect`) gets answers although its monitor never heard of
//! that network, and networked containers can use the lean monitor.
//! Answers come from the state file, read per query (a rename makes
//! every write atomic).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::bridge::Networks;
use crate::error::{NetworkError, Result};
use crate::host::NetHost;
use crate::ipam::{self, Owner};

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

/// How often the responder checks whether its network is still in use.
const POLL: Duration = Duration::from_millis(500);

/// The responder process's body: answers on `network`'s gateway until no
/// live container is on it, forwarding to `host_upstream` for containers
/// without `--dns`.
pub fn run<H: NetHost>(
    nets: &Networks<H>,
    network: &str,
    host_upstream: Vec<SocketAddr>,
) -> Result<()> {
    let state = nets.state();
    let net = state
        .networks
        .get(network)
        .ok_or_else(|| NetworkError::NoSuchNetwork(network.to_string()))?;
    serve(
        nets.state_dir().to_path_buf(),
        network.to_string(),
        net.subnet.gateway(),
        host_upstream,
    )?;
    let me = Owner::me();
    loop {
        std::thread::sleep(POLL);
        if nets.responder_done(network, me)? {
            return Ok(());
        }
    }
}

impl<H: NetHost> Networks<H> {
    /// Makes sure a responder answers for user network `network` (nothing
    /// for the default bridge, which has no name resolution): `start`
    /// spawns one and returns its owner, called under the lock only when
    /// none is alive.
    pub fn ensure_responder(
        &self,
        network: &str,
        start: impl FnOnce() -> Result<Owner>,
    ) -> Result<()> {
        let mut l = ipam::lock(self.state_dir())?;
        let Some(n) = l.state.networks.get(network) else {
            return Ok(());
        };
        if n.dns.is_some_and(|o| o.alive()) {
            return Ok(());
        }
        let owner = start()?;
        if let Some(n) = l.state.networks.get_mut(network) {
            n.dns = Some(owner);
        }
        l.save()
    }

    /// For the responder `me` of `network`: whether to stop (the network
    /// is gone, has no live container, or another responder took over);
    /// its record cleared when it stops.
    pub fn responder_done(&self, network: &str, me: Owner) -> Result<bool> {
        let mut l = ipam::lock(self.state_dir())?;
        let used = l
            .state
            .leases
            .values()
            .any(|x| x.network == network && x.owner.alive());
        let Some(n) = l.state.networks.get_mut(network) else {
            return Ok(true);
        };
        if n.dns != Some(me) {
            return Ok(true);
        }
        if used {
            return Ok(false);
        }
        n.dns = None;
        l.save().map(|()| true)
    }
}

/// Starts answering on `gateway:53` for `network` on a thread that lives
/// as long as the process.
pub fn serve(
    dir: PathBuf,
    network: String,
    gateway: Ipv4Addr,
    host_upstream: Vec<SocketAddr>,
) -> Result<()> {
    let addr = SocketAddrV4::new(gateway, 53);
    let bind_err = |e: std::io::Error| NetworkError::Bind {
        addr: addr.to_string(),
        source: e,
    };
    let fd = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .map_err(|e| bind_err(e.into()))?;
    // A responder of an earlier life of the network may still be closing.
    rustix::net::sockopt::set_socket_reuseport(&fd, true).map_err(|e| bind_err(e.into()))?;
    rustix::net::bind(&fd, &addr).map_err(|e| bind_err(e.into()))?;
    let sock = Arc::new(UdpSocket::from(fd));
    let _ = std::thread::Builder::new()
        .name("dns".into())
        .spawn(move || {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, client)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let query = buf[..n].to_vec();
                let state = ipam::read(&dir);
                let from = match client.ip() {
                    std::net::IpAddr::V4(ip) => Some(ip),
                    std::net::IpAddr::V6(_) => None,
                };
                if let Some(reply) = answer(&query, |name| lookup(&state, &network, from, name)) {
                    let _ = sock.send_to(&reply, client);
                    continue;
                }
                let upstream =
                    upstream(&state, &network, from).unwrap_or_else(|| host_upstream.clone());
                let sock = sock.clone();
                let _ = std::thread::Builder::new()
                    .name("dns-forward".into())
                    .spawn(move || {
                        if let Some(reply) = forward(&query, &upstream) {
                            let _ = sock.send_to(&reply, client);
                        }
                    });
            }
        });
    Ok(())
}

/// The `--dns` servers of the container at `client` on `network`, if it
/// was given any.
fn upstream(
    state: &ipam::State,
    network: &str,
    client: Option<Ipv4Addr>,
) -> Option<Vec<SocketAddr>> {
    let ip = client?;
    let lease = state
        .leases
        .values()
        .find(|l| l.network == network && l.ip == ip && !l.dns.is_empty())?;
    let conf: String = lease
        .dns
        .iter()
        .map(|d| format!("nameserver {d}\n"))
        .collect();
    Some(nameservers(&conf))
}

/// The address of `name` for a client at `client` asking the responder
/// of `network`: a container's name or alias on any network the client's
/// container is on (docker's scope: a container resolves the names of
/// every network it shares with the other), looked up on that network's
/// address.
pub fn lookup(
    state: &ipam::State,
    network: &str,
    client: Option<Ipv4Addr>,
    name: &str,
) -> Option<Ipv4Addr> {
    // The client's container, by its address on this network.
    let mine = client.and_then(|ip| {
        state
            .leases
            .iter()
            .find(|(_, l)| l.network == network && l.ip == ip)
            .map(|(k, _)| ipam::key_container(k))
    });
    let mut networks = vec![network];
    if let Some(id) = mine {
        networks.extend(
            state
                .leases_of(id)
                .into_iter()
                .map(|(_, l)| l.network.as_str()),
        );
    }
    // This network's answer first, then the client's other networks'.
    networks.iter().find_map(|net| {
        state
            .leases
            .values()
            .find(|l| {
                l.network == *net
                    && state.networks.contains_key(*net)
                    && l.names.iter().any(|n| n.eq_ignore_ascii_case(name))
            })
            .map(|l| l.ip)
    })
}

/// The question of a query: name (dotted, no trailing dot), type, and
/// where the question ends.
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    if q.len() < 12 || q[2] & 0x80 != 0 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).into_owned());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

/// A reply for a name `lookup` knows (an A record; no records for other
/// types of a known name), `None` to forward.
pub fn answer(query: &[u8], lookup: impl Fn(&str) -> Option<Ipv4Addr>) -> Option<Vec<u8>> {
    let (name, qtype, end) = question(query)?;
    let ip = lookup(&name)?;
    let mut r = query[..end].to_vec();
    // QR, opcode copied, AA, RD copied, RA; one question, no other sections.
    r[2] = 0x84 | (query[2] & 0x79);
    r[3] = 0x80;
    let count: u16 = if qtype == TYPE_A { 1 } else { 0 };
    r[6..8].copy_from_slice(&count.to_be_bytes());
    r[8..12].fill(0);
    if qtype == TYPE_A {
        r.extend_from_slice(&[0xc0, 0x0c]);
        r.extend_from_slice(&TYPE_A.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&600u32.to_be_bytes());
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&ip.octets());
    } else if qtype != TYPE_AAAA {
        // Anything but A/AAAA of a container name: no such data either.
    }
    Some(r)
}

fn forward(query: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let any: SocketAddr = if server.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let Ok(s) = UdpSocket::bind(any) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.connect(server).and_then(|()| s.send(query)).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = s.recv(&mut buf) {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

/// The nameservers of a resolv.conf, port 53.
pub fn nameservers(resolv: &str) -> Vec<SocketAddr> {
    resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn known_names_get_an_a_record() {
        let lookup = |n: &str| (n == "srv").then_some(Ipv4Addr::new(172, 19, 0, 2));
        let r = answer(&query("srv", TYPE_A), lookup).expect("answered");
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[172, 19, 0, 2]);
        let r = answer(&query("srv", TYPE_AAAA), lookup).expect("answered");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 0);
        assert!(answer(&query("example.com", TYPE_A), lookup).is_none());
        assert!(answer(&[1, 2, 3], lookup).is_none());
    }

    fn lease(ip: [u8; 4], network: &str, names: &[&str]) -> ipam::Lease {
        ipam::Lease {
            ip: Ipv4Addr::from(ip),
            owner: ipam::Owner::me(),
            veth: String::new(),
            netns: String::new(),
            ports: Vec::new(),
            network: network.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            mac: String::new(),
            ifname: "eth0".into(),
            default_route: true,
            dns: Vec::new(),
        }
    }

    #[test]
    fn names_resolve_on_every_network_the_client_shares() {
        let mut st = ipam::State::default();
        for (name, subnet) in [("a", "10.1.0.0/24"), ("b", "10.2.0.0/24")] {
            st.networks.insert(
                name.into(),
                ipam::UserNetwork {
                    id: String::new(),
                    bridge: format!("kb-{name}"),
                    subnet: subnet.parse().expect("subnet"),
                    internal: false,
                    created: String::new(),
                    dns: None,
                },
            );
        }
        // c1 on a and b; c2 on b only; c3 on a only; c4 on the bridge.
        let put = |st: &mut ipam::State, id: &str, l: ipam::Lease| {
            st.leases.insert(ipam::lease_key(id, &l.network.clone()), l);
        };
        put(&mut st, "c1", lease([10, 1, 0, 2], "a", &["one"]));
        put(&mut st, "c1", lease([10, 2, 0, 2], "b", &["one", "uno"]));
        put(&mut st, "c2", lease([10, 2, 0, 3], "b", &["two"]));
        put(&mut st, "c3", lease([10, 1, 0, 3], "a", &["three"]));
        put(&mut st, "c4", lease([172, 17, 0, 2], "bridge", &["four"]));
        let c1_on_a = Some(Ipv4Addr::new(10, 1, 0, 2));
        // c1 asks a's responder for c2, which is on b only: answered.
        assert_eq!(
            lookup(&st, "a", c1_on_a, "two"),
            Some(Ipv4Addr::new(10, 2, 0, 3))
        );
        assert_eq!(
            lookup(&st, "a", c1_on_a, "three"),
            Some(Ipv4Addr::new(10, 1, 0, 3))
        );
        // An alias given on b only is b's.
        assert_eq!(
            lookup(&st, "a", c1_on_a, "UNO"),
            Some(Ipv4Addr::new(10, 2, 0, 2))
        );
        // c3 shares only a with c1: it sees c1 on a, not c2.
        let c3 = Some(Ipv4Addr::new(10, 1, 0, 3));
        assert_eq!(
            lookup(&st, "a", c3, "one"),
            Some(Ipv4Addr::new(10, 1, 0, 2))
        );
        assert_eq!(lookup(&st, "a", c3, "two"), None);
        // The default bridge resolves nothing, and a stranger gets a's names only.
        assert_eq!(lookup(&st, "a", c1_on_a, "four"), None);
        assert_eq!(lookup(&st, "a", None, "two"), None);
    }

    #[test]
    fn upstreams_from_resolv_conf() {
        assert_eq!(
            nameservers("search x\nnameserver 10.0.0.1\nnameserver ::1\n"),
            vec![
                "10.0.0.1:53".parse::<SocketAddr>().expect("addr"),
                "[::1]:53".parse().expect("addr")
            ]
        );
    }
}
