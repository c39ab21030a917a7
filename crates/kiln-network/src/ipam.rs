//! Addresses: subnets, and the IPAM file every kiln process shares.
//!
//! The network state is host-wide (a bridge is a host resource whatever
//! `--root` a kiln uses): `state.json` in the state directory
//! (`/run/kiln/net` by default: tmpfs, gone with the bridges and
//! namespaces at reboot), read and written only under an exclusive
//! `flock` of `lock` beside it, and replaced atomically.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{io, NetworkError, Result};
use crate::ports::PortMapping;

/// An IPv4 network, `172.18.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The `n`th address of the network (1 is the gateway).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        // Neither the network's address nor its broadcast.
        (n > 0 && u64::from(n) < size - 1)
            .then(|| Ipv4Addr::from((u32::from(self.addr) & self.mask()) + n))
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.nth(1).unwrap_or(self.addr)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Subnet, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("invalid subnet {s:?}"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("invalid subnet {s:?}"))?;
        let net = Subnet { addr, prefix };
        Ok(Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & net.mask()),
            prefix,
        })
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Subnet, String> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// Where the default bridge goes when nothing says: docker's
/// 172.17.0.0/16 first, then the next private /16s, then /20s of
/// 192.168.0.0/16, the first that overlaps no route of the host.
pub fn candidate_subnets() -> impl Iterator<Item = Subnet> {
    let b = (17..=31).map(|b| Subnet {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let c = (0..16).map(|i| Subnet {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    b.chain(c)
}

pub fn free_subnet(routes: &[Subnet]) -> Option<Subnet> {
    candidate_subnets().find(|s| !routes.iter().any(|r| r.overlaps(s)))
}

/// A process that holds something: pid and start time (so a recycled pid
/// is not mistaken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: i32,
    pub start: u64,
}

impl Owner {
    pub fn me() -> Owner {
        Owner::of(std::process::id() as i32)
    }

    /// Process `pid` (a child just spawned).
    pub fn of(pid: i32) -> Owner {
        Owner {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Field 22 of `/proc/PID/stat`; `None` for a process that is gone or a
/// zombie (a killed monitor nobody reaped yet is dead).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// A container's place on the bridge, held by its monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub owner: Owner,
    /// Host end of the veth pair.
    pub veth: String,
    /// Name of the namespace under `/run/netns`.
    pub netns: String,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The network's name (`bridge`: the default one).
    #[serde(default = "default_network")]
    pub network: String,
    /// What the network's DNS answers with this address: the
    /// container's name and `--network-alias`es (user networks only).
    #[serde(default)]
    pub names: Vec<String>,
    /// The interface's MAC address (docker's from the address, or
    /// `--mac-address`).
    #[serde(default)]
    pub mac: String,
    /// The interface inside the container: `eth0` for its first network,
    /// `eth1`… for those connected after.
    #[serde(default = "default_ifname")]
    pub ifname: String,
    /// Whether the container's default route goes through this network.
    #[serde(default = "default_true")]
    pub default_route: bool,
    /// `--dns`: where the network's responder forwards this container's
    /// other names (the host's resolvers when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
}

fn default_ifname() -> String {
    "eth0".into()
}

fn default_true() -> bool {
    true
}

/// A lease's key in [`State::leases`]: a container has one per network
/// it is on.
pub fn lease_key(container: &str, network: &str) -> String {
    format!("{container}/{network}")
}

/// The container of a lease's key.
pub fn key_container(key: &str) -> &str {
    key.split_once('/').map_or(key, |(c, _)| c)
}

fn default_network() -> String {
    "bridge".into()
}

/// A user-defined network (`network create`): its own bridge, kept until
/// `network rm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNetwork {
    pub id: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
    pub created: String,
    /// The process answering its DNS while containers are on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Owner>,
}

/// The bridge as made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    pub name: String,
    pub subnet: Subnet,
    /// Its network id (64 hex digits, as docker's `bridge` has one), new
    /// each time the bridge is made.
    #[serde(default)]
    pub id: String,
}

/// A new network id: 32 random bytes in hex.
pub fn new_id() -> Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(io("read", Path::new("/dev/urandom")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub bridge: Option<Bridge>,
    /// By container and network ([`lease_key`]).
    pub leases: BTreeMap<String, Lease>,
    /// By name.
    #[serde(default)]
    pub networks: BTreeMap<String, UserNetwork>,
    /// What was last applied to the host's firewall.
    #[serde(default)]
    pub applied: Applied,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// kiln's nft table.
    pub rules: Option<String>,
    /// The bridges in `KILN-FORWARD` (name, internal).
    pub forward: Vec<(String, bool)>,
}

impl State {
    /// Container `id`'s leases (one per network it is on): key and lease,
    /// the first network first.
    pub fn leases_of<'a>(&'a self, id: &'a str) -> Vec<(&'a String, &'a Lease)> {
        let mut v: Vec<_> = self
            .leases
            .iter()
            .filter(|(k, _)| key_container(k) == id)
            .collect();
        v.sort_by_key(|a| ifindex(&a.1.ifname));
        v
    }

    /// Keys of state files written when a container had one lease, keyed
    /// by its id alone, moved to [`lease_key`].
    fn rekey(&mut self) {
        let old: Vec<String> = self
            .leases
            .keys()
            .filter(|k| !k.contains('/'))
            .cloned()
            .collect();
        for k in old {
            if let Some(l) = self.leases.remove(&k) {
                self.leases.insert(lease_key(&k, &l.network), l);
            }
        }
    }

    /// The lowest free address after the gateway.
    pub fn free_address(&self, subnet: &Subnet) -> Option<Ipv4Addr> {
        (2..)
            .map_while(|n| subnet.nth(n))
            .find(|ip| !self.leases.values().any(|l| l.ip == *ip))
    }
}

/// `ethN`'s N, for ordering.
fn ifindex(ifname: &str) -> u32 {
    ifname
        .strip_prefix("eth")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The state file, locked for as long as this lives.
pub struct Locked {
    _lock: File,
    path: PathBuf,
    pub state: State,
}

pub fn lock(dir: &Path) -> Result<Locked> {
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let lock_path = dir.join("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("open", &lock_path))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io("lock", &lock_path)(e.into()))?;
    let path = dir.join("state.json");
    let mut state: State = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| NetworkError::State {
            path: path.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
        Err(e) => return Err(io("read", &path)(e)),
    };
    state.rekey();
    Ok(Locked {
        _lock: lock,
        path,
        state,
    })
}

impl Locked {
    pub fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let bytes =
            serde_json::to_vec_pretty(&self.state).map_err(|source| NetworkError::State {
                path: self.path.clone(),
                source,
            })?;
        std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io("rename", &self.path))
    }
}

/// Reads the state without the lock (a snapshot for `port` and `ps`).
pub fn read(dir: &Path) -> State {
    let mut s: State = std::fs::read(dir.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    s.rekey();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().expect("subnet")
    }

    #[test]
    fn subnets() {
        let s = net("172.18.5.0/16");
        assert_eq!(s.to_string(), "172.18.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 18, 0, 1));
        assert!(s.contains(Ipv4Addr::new(172, 18, 255, 1)));
        assert!(!s.contains(Ipv4Addr::new(172, 19, 0, 1)));
        assert!(net("10.0.0.0/8").overlaps(&net("10.88.0.0/16")));
        assert_eq!(net("10.0.0.0/30").nth(3), None);
    }

    #[test]
    fn a_free_subnet_skips_routes() {
        let routes = [
            net("172.17.0.0/16"),
            net("10.88.0.0/16"),
            net("192.0.2.0/24"),
        ];
        assert_eq!(free_subnet(&routes), Some(net("172.18.0.0/16")));
        let all: Vec<Subnet> = vec![net("172.16.0.0/12")];
        assert_eq!(free_subnet(&all), Some(net("192.168.0.0/20")));
    }

    #[test]
    fn addresses_are_distinct_and_reused() {
        let s = net("10.1.0.0/29");
        let mut st = State::default();
        let mut got = Vec::new();
        while let Some(ip) = st.free_address(&s) {
            got.push(ip);
            st.leases.insert(
                ip.to_string(),
                Lease {
                    ip,
                    owner: Owner::me(),
                    veth: String::new(),
                    netns: String::new(),
                    ports: Vec::new(),
                    network: default_network(),
                    names: Vec::new(),
                    mac: String::new(),
                    ifname: default_ifname(),
                    default_route: true,
                    dns: Vec::new(),
                },
            );
        }
        assert_eq!(got.len(), 5, "{got:?}"); // .2 to .6
        st.leases.remove("10.1.0.4");
        assert_eq!(st.free_address(&s), Some(Ipv4Addr::new(10, 1, 0, 4)));
    }

    #[test]
    fn the_state_file_round_trips_under_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = lock(dir.path()).expect("lock");
        l.state.bridge = Some(Bridge {
            name: "kiln0".into(),
            subnet: net("172.18.0.0/16"),
            id: new_id().expect("id"),
        });
        l.save().expect("save");
        drop(l);
        assert_eq!(
            read(dir.path()).bridge.map(|b| b.subnet),
            Some(net("172.18.0.0/16"))
        );
        assert!(Owner::me().alive());
    }
}
