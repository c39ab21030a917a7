//! A container's networking, from kiln-network: its ports bound by the
//! starting kiln, its places on the `kiln0` bridge and user networks
//! (its first network and those `network connect` added) held by its
//! monitor, `network connect`/`disconnect`, and what `ps`, `port` and
//! `inspect` show of it.
//!
//! Who does what: [`publish`] (in `Engine::start`, before the monitor is
//! spawned) binds the host sockets, so a taken port fails the start with
//! docker's message; the monitor's [`attach`] takes them over and puts
//! the container on the bridge, and the monitor relays them (itself, or
//! the lean monitor it hands them to); dropping the [`OnBridge`]
//! it returns (the container is done) takes the container off. A
//! monitor killed leaves a lease whose owner is dead: [`sweep`] (run when
//! a dead monitor is noticed, and by every attach) removes it.

use std::path::Path;

use kiln_exec::{JoinedNetwork, Network};
use kiln_network::ipam::Lease;
use kiln_network::proxy::{self, HostSocket};
use kiln_network::{HostNet, Join, Networks, Owner, PortMapping, DEFAULT_STATE_DIR};

use crate::containers::Container;
use crate::error::{io, ContainerError, Result};
use crate::record::{Connection, ContainerConfig, Status};

/// The first argument of kiln that makes it a network's DNS responder
/// (`kiln __kiln-dns NETWORK`), started by [`attach`] and [`connect`].
pub const DNS_ARG: &str = "__kiln-dns";

fn networks() -> Networks<HostNet> {
    Networks::new(HostNet, DEFAULT_STATE_DIR)
}

/// On the default bridge or a user network: a namespace of its own.
fn on_bridge(c: &ContainerConfig) -> bool {
    !matches!(c.host.network.as_str(), "host" | "none" | "") && shared(c).is_none()
}

/// `--network container:NAME`: the container whose namespace it joins.
fn shared(c: &ContainerConfig) -> Option<&str> {
    c.host.network.strip_prefix("container:")
}

/// Host sockets bound for a start; kept open until the monitor has taken
/// them (see `kiln_network::proxy`).
pub struct Published(#[allow(dead_code)] Vec<(PortMapping, HostSocket)>);

/// Binds container `c`'s published ports and leaves them for its
/// monitor. Nothing for networks without ports (`host` ignores `-p`, as
/// docker does after its warning).
pub fn publish(c: &ContainerConfig, name: &str) -> Result<Published> {
    if !on_bridge(c) || c.host.publish.is_empty() {
        return Ok(Published(Vec::new()));
    }
    let endpoint = format!("{name} ({})", c.id);
    let sockets = proxy::bind_ports(&c.host.publish, &endpoint)?;
    proxy::write_handoff(Path::new(DEFAULT_STATE_DIR), &c.id, &sockets)?;
    Ok(Published(sockets))
}

/// The container is on its networks while this lives.
pub struct OnBridge {
    id: String,
    /// The published ports' host sockets and where each goes, for the
    /// monitor to relay ([`take_relays`](Self::take_relays)).
    relays: Vec<(HostSocket, std::net::SocketAddr)>,
    /// The wiring of the namespace (veths, addresses, rules), made on a
    /// thread while the runtime creates the container; joined by
    /// [`ready`](Self::ready) before its process starts.
    wiring: Option<std::thread::JoinHandle<kiln_network::Result<()>>>,
}

impl OnBridge {
    /// The published ports' sockets and their container addresses, once.
    pub(crate) fn take_relays(&mut self) -> Vec<(HostSocket, std::net::SocketAddr)> {
        std::mem::take(&mut self.relays)
    }

    /// Waits for the namespace's wiring: the container's process must not
    /// start before its network is up.
    pub(crate) fn ready(&mut self) -> Result<()> {
        match self.wiring.take().map(|t| t.join()) {
            None => Ok(()),
            Some(Ok(r)) => Ok(r?),
            Some(Err(_)) => Err(ContainerError::InvalidConfig(format!(
                "wiring the network of container {} panicked",
                self.id
            ))),
        }
    }
}

impl Drop for OnBridge {
    fn drop(&mut self) {
        if let Some(t) = self.wiring.take() {
            let _ = t.join();
        }
        if let Err(e) = networks().detach(&self.id) {
            tracing::warn!("taking container {} off its networks: {e}", self.id);
        }
    }
}

/// In a monitor the lean one handed back to (the container ended): the
/// attachment made before the hand-over still stands; this guard takes the
/// container off its networks when the monitor is done with it.
pub(crate) fn still_attached(c: &ContainerConfig) -> Option<OnBridge> {
    on_bridge(c).then(|| OnBridge {
        id: c.id.clone(),
        relays: Vec::new(),
        wiring: None,
    })
}

/// Where container `c` joins network `conn` (its names in the DNS: its
/// name, then the aliases).
fn join_for(c: &ContainerConfig, conn: &Connection, ports: Vec<PortMapping>) -> Join {
    Join {
        network: conn.network.clone(),
        ports,
        names: std::iter::once(c.name.clone())
            .chain(conn.aliases.iter().cloned())
            .collect(),
        ip: conn.ip,
        mac: None,
        dns: c.host.dns.clone(),
    }
}

/// Container `c`'s networks: its first (`--network`) and those connected.
fn connections(c: &ContainerConfig) -> Vec<Connection> {
    let first = Connection {
        network: c.host.network.clone(),
        aliases: c.host.network_aliases.clone(),
        ip: c.host.ip,
    };
    std::iter::once(first)
        .chain(c.host.connected.iter().cloned())
        .collect()
}

/// In the monitor: the container's namespace on its networks, its ports'
/// sockets ready to relay ([`OnBridge::take_relays`]); `None` for `host`
/// and `none`. The namespace exists on return;
/// its wiring goes on while the runtime creates the container (call
/// [`OnBridge::ready`] before starting it). `kiln` is the kiln binary
/// (for the networks' DNS responders).
pub fn attach(c: &ContainerConfig, kiln: &Path) -> Result<Option<OnBridge>> {
    if !on_bridge(c) {
        return Ok(None);
    }
    let sockets = proxy::take_handoff(Path::new(DEFAULT_STATE_DIR), &c.id)?;
    let ports: Vec<PortMapping> = sockets.iter().map(|(m, _)| *m).collect();
    let mut pendings = Vec::new();
    let mut first = None;
    let mut guard = OnBridge {
        id: c.id.clone(),
        relays: Vec::new(),
        wiring: None,
    };
    for (i, conn) in connections(c).iter().enumerate() {
        // Published ports and `--mac-address` belong to the first network.
        let mut join = join_for(c, conn, if i == 0 { ports.clone() } else { Vec::new() });
        if i == 0 {
            join.mac = c.host.mac_address.clone();
        }
        let (a, pending) = networks().reserve(&c.id, Owner::me(), join)?;
        first.get_or_insert(a);
        pendings.push(pending);
        start_responder(&conn.network, kiln);
    }
    let wiring = std::thread::Builder::new()
        .name("net-wiring".into())
        .spawn(move || pendings.into_iter().try_for_each(|p| networks().wire(p)))
        .map_err(|e| io("start a thread for", "the network")(e))?;
    guard.wiring = Some(wiring);
    if let Some(a) = first {
        guard.relays = sockets
            .into_iter()
            .map(|(m, s)| (s, std::net::SocketAddr::new(a.ip.into(), m.container_port)))
            .collect();
    }
    Ok(Some(guard))
}

/// Makes sure user network `network` has its DNS responder (a process
/// of its own: `kiln __kiln-dns NETWORK`); a failure leaves the network
/// without name resolution, with a warning.
fn start_responder(network: &str, kiln: &Path) {
    let started = networks().ensure_responder(network, || {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(kiln)
            .arg(DNS_ARG)
            .arg(network)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Out of the caller's process group: a ^C of `kiln run` is not
            // the network's.
            .process_group(0)
            .spawn()
            .map_err(|e| kiln_network::NetworkError::Command {
                program: "kiln",
                args: format!("{DNS_ARG} {network}"),
                message: e.to_string(),
            })?;
        let owner = Owner::of(child.id() as i32);
        // Reaped when it ends (a monitor lives longer than the network's
        // use, a CLI does not: then init reaps it).
        let _ = std::thread::Builder::new()
            .name("dns-reaper".into())
            .spawn(move || child.wait());
        Ok(owner)
    });
    if let Err(e) = started {
        tracing::warn!("the DNS responder of network {network}: {e}");
    }
}

/// `kiln __kiln-dns NETWORK`: answers network `NETWORK`'s DNS until no
/// container is on it.
pub fn run_dns_responder(args: &[String]) -> i32 {
    let Some(network) = args.first() else {
        eprintln!("usage: kiln {DNS_ARG} NETWORK");
        return 2;
    };
    let upstream = kiln_network::dns::nameservers(&host_resolv());
    match kiln_network::dns::run(&networks(), network, upstream) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kiln: the DNS responder of network {network}: {e}");
            1
        }
    }
}

fn host_resolv() -> String {
    std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

/// Whether `name` is a network a container can join.
pub fn network_exists(name: &str) -> bool {
    matches!(name, "bridge" | "host" | "none")
        || name
            .strip_prefix("container:")
            .is_some_and(|t| !t.is_empty())
        || networks().state().networks.contains_key(name)
}

/// `network create`: a new user network, its id.
pub fn create_network(
    name: &str,
    subnet: Option<&str>,
    internal: bool,
) -> Result<kiln_network::UserNetwork> {
    let subnet = subnet
        .map(|s| s.parse::<kiln_network::Subnet>())
        .transpose()
        .map_err(ContainerError::InvalidConfig)?;
    let id = crate::containers::new_id()?;
    let created = crate::logs::fixed_nanos(std::time::SystemTime::now());
    Ok(networks().create_network(name, subnet, internal, id, created)?)
}

pub fn remove_network(name: &str) -> Result<()> {
    sweep();
    Ok(networks().remove_network(name)?)
}

pub fn prune_networks() -> Result<Vec<String>> {
    sweep();
    Ok(networks().prune_networks()?)
}

/// The containers on a network: id and lease.
pub type Endpoints = Vec<(String, Lease)>;

/// The user networks and the containers on them.
pub fn user_networks() -> Vec<(String, kiln_network::UserNetwork, Endpoints)> {
    let state = networks().state();
    state
        .networks
        .iter()
        .map(|(name, n)| {
            let on = state
                .leases
                .iter()
                .filter(|(_, l)| &l.network == name && l.owner.alive())
                .map(|(key, l)| {
                    (
                        kiln_network::ipam::key_container(key).to_string(),
                        l.clone(),
                    )
                })
                .collect();
            (name.clone(), n.clone(), on)
        })
        .collect()
}

/// The namespace (and files) a process of container `c` joins.
pub(crate) fn joined(c: &ContainerConfig) -> Result<Network> {
    if let Some(target) = shared(c) {
        // The running container of that name or id, on a kiln network.
        let state = networks().state();
        let (key, lease) = state
            .leases
            .iter()
            .find(|(key, l)| {
                l.owner.alive()
                    && (kiln_network::ipam::key_container(key).starts_with(target)
                        || l.names.first().is_some_and(|n| n == target))
            })
            .ok_or_else(|| {
                ContainerError::InvalidConfig(format!(
                    "cannot join the network namespace of container {target}: it is not running on a kiln network"
                ))
            })?;
        tracing::debug!("joining the network namespace of {key}");
        let ns = lease.netns.clone();
        return Ok(Network::Joined(JoinedNetwork {
            netns: kiln_network::netns_path(&ns),
            hosts: kiln_network::files::hosts(lease.ip, &c.process.hostname, &c.host.extra_hosts),
            resolv_conf: kiln_network::files::resolv_conf(
                &host_resolv(),
                &c.host.dns,
                &c.host.dns_search,
            ),
        }));
    }
    let leases = networks().leases(&c.id);
    let lease = primary(c, &leases).ok_or_else(|| {
        ContainerError::InvalidConfig(format!(
            "container {} is not on the bridge network (its monitor has not attached it)",
            c.id
        ))
    })?;
    Ok(Network::Joined(JoinedNetwork {
        netns: kiln_network::netns_path(&lease.netns),
        hosts: kiln_network::files::hosts(lease.ip, &c.process.hostname, &c.host.extra_hosts),
        resolv_conf: resolv_conf(c, &leases),
    }))
}

/// The lease of container `c`'s first network (`--network`), or of the
/// first it is on when it left that one.
fn primary<'a>(c: &ContainerConfig, leases: &'a [Lease]) -> Option<&'a Lease> {
    leases
        .iter()
        .find(|l| l.network == c.host.network)
        .or_else(|| leases.first())
}

/// Container `c`'s resolv.conf on `leases`: a user network's containers
/// ask its responder on the gateway (the first user network's: it
/// answers for every network the container is on); on the default bridge
/// only, the host's resolvers or `--dns`.
fn resolv_conf(c: &ContainerConfig, leases: &[Lease]) -> String {
    let state = networks().state();
    let mut order: Vec<&Lease> = primary(c, leases).into_iter().collect();
    order.extend(leases.iter());
    let gateway = order
        .iter()
        .find_map(|l| state.networks.get(&l.network))
        .map(|n| n.subnet.gateway().to_string());
    let dns = match gateway {
        Some(g) => vec![g],
        None => c.host.dns.clone(),
    };
    kiln_network::files::resolv_conf(&host_resolv(), &dns, &c.host.dns_search)
}

/// Removes what dead monitors left on the bridge (as root; nothing to do
/// otherwise).
pub(crate) fn sweep() {
    if !Path::new(DEFAULT_STATE_DIR).join("state.json").exists() {
        return;
    }
    if let Err(e) = networks().sweep() {
        tracing::warn!("cleaning up the bridge network: {e}");
    }
}

/// The published ports of a running container, as bound.
pub fn ports(c: &Container) -> Vec<PortMapping> {
    if !matches!(c.state.status, Status::Running | Status::Restarting) || !on_bridge(&c.config) {
        return Vec::new();
    }
    let mut p: Vec<PortMapping> = networks()
        .leases(c.id())
        .into_iter()
        .flat_map(|l| l.ports)
        .collect();
    p.sort();
    p
}

/// docker's `ps` PORTS column.
pub fn ps_column(c: &Container) -> String {
    if !matches!(c.state.status, Status::Running | Status::Restarting) {
        return String::new();
    }
    kiln_network::ports::ps_column(&ports(c), &c.config.process.exposed_ports)
}

/// A running container's place on one of its networks, as `inspect`
/// shows it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The network's name (`bridge` for the default one).
    pub network: String,
    pub network_id: String,
    pub ip: std::net::Ipv4Addr,
    pub prefix: u8,
    pub gateway: std::net::Ipv4Addr,
    pub mac: String,
    /// docker's: the `--network-alias`es and the short id (user networks).
    pub aliases: Vec<String>,
    /// The namespace's path.
    pub sandbox: String,
}

/// Where a running container is on each of its networks (its first
/// network first); empty for one that is not running or has no network
/// of its own.
pub fn endpoints(c: &Container) -> Vec<Endpoint> {
    if !matches!(c.state.status, Status::Running | Status::Restarting) || !on_bridge(&c.config) {
        return Vec::new();
    }
    let state = networks().state();
    let leases: Vec<Lease> = networks().leases(c.id());
    let Some(first) = primary(&c.config, &leases) else {
        return Vec::new();
    };
    std::iter::once(first)
        .chain(leases.iter().filter(|l| l.network != first.network))
        .filter_map(|lease| {
            let (network_id, subnet, aliases) = match state.networks.get(&lease.network) {
                Some(n) => {
                    // The lease's names are the container's name, then its aliases.
                    let mut aliases: Vec<String> = lease.names.iter().skip(1).cloned().collect();
                    aliases.push(c.id()[..12.min(c.id().len())].to_string());
                    (n.id.clone(), n.subnet, aliases)
                }
                None => {
                    let b = state.bridge.as_ref()?;
                    (b.id.clone(), b.subnet, Vec::new())
                }
            };
            Some(Endpoint {
                network: lease.network.clone(),
                network_id,
                ip: lease.ip,
                prefix: subnet.prefix,
                gateway: subnet.gateway(),
                mac: if lease.mac.is_empty() {
                    kiln_network::mac_for(lease.ip)
                } else {
                    lease.mac.clone()
                },
                aliases,
                sandbox: kiln_network::netns_path(&lease.netns)
                    .to_string_lossy()
                    .into_owned(),
            })
        })
        .collect()
}

/// The address a container has on its first network, while it runs.
pub fn address(c: &Container) -> Option<std::net::Ipv4Addr> {
    if !on_bridge(&c.config) {
        return None;
    }
    let leases = networks().leases(c.id());
    primary(&c.config, &leases).map(|l| l.ip)
}

/// `network connect [--alias A] [--ip IP] NETWORK CONTAINER`, docker's
/// rules: recorded in the container (a start puts it on the network), and
/// for a running container its new interface made at once, its
/// resolv.conf pointed at a user network's responder if it had none.
pub fn connect(
    engine: &crate::Engine,
    network: &str,
    container: &str,
    aliases: Vec<String>,
    ip: Option<std::net::Ipv4Addr>,
) -> Result<()> {
    let c = engine.get(container)?;
    check_connectable(&c.config, network)?;
    let conn = Connection {
        network: network.to_string(),
        aliases,
        ip,
    };
    let running = matches!(c.state.status, Status::Running | Status::Restarting);
    let on_it = connections(&c.config).iter().any(|x| x.network == network);
    if on_it && running {
        return Err(kiln_network::NetworkError::EndpointExists {
            name: c.config.name.clone(),
            network: network.to_string(),
        }
        .into());
    }
    if ip.is_some() && network == "bridge" {
        return Err(kiln_network::NetworkError::InvalidNetwork(
            "user specified IP address is supported on user defined networks only".into(),
        )
        .into());
    }
    // The monitor's claim on the container's other networks: the new
    // lease is its too, so it goes when the monitor does.
    let owner = networks().leases(c.id()).first().map(|l| l.owner);
    let live = running.then_some(owner).flatten();
    if let Some(owner) = live {
        let join = join_for(&c.config, &conn, Vec::new());
        let (_, pending) = networks().reserve(c.id(), owner, join)?;
        networks().wire(pending)?;
        start_responder(network, &engine.helper);
    }
    let config = engine.containers().update_config(c.id(), |cfg| {
        // Connected again while stopped: the new options replace the old
        // (docker's too).
        if cfg.host.network == network {
            cfg.host.network_aliases = conn.aliases.clone();
            cfg.host.ip = conn.ip;
        } else {
            cfg.host.connected.retain(|x| x.network != network);
            cfg.host.connected.push(conn.clone());
        }
        Ok(())
    });
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            if live.is_some() {
                let _ = networks().detach_from(c.id(), network);
            }
            return Err(e);
        }
    };
    if live.is_some() {
        rewrite_resolv_conf(engine, &config);
    }
    Ok(())
}

/// docker's refusals of a connect: a container that shares a namespace
/// (`host`, `container:`) or has none (`none`) joins no other network;
/// the network must exist.
fn check_connectable(c: &ContainerConfig, network: &str) -> Result<()> {
    let refuse = |m: &str| Err(kiln_network::NetworkError::InvalidNetwork(m.to_string()).into());
    if network == "host" || c.host.network == "host" {
        return refuse(
            "container cannot be disconnected from host network or connected to host network",
        );
    }
    if shared(c).is_some() {
        return refuse("container sharing network namespace with another container or host cannot be connected to any other network");
    }
    if matches!(c.host.network.as_str(), "none" | "") || network == "none" {
        return refuse("container cannot be connected to multiple networks with one of the networks in private (none) mode");
    }
    if !network_exists(network) || network.starts_with("container:") {
        return Err(kiln_network::NetworkError::NoSuchNetwork(network.to_string()).into());
    }
    Ok(())
}

/// `network disconnect [-f] NETWORK CONTAINER`: off the network at once
/// if it runs, and out of its record. Leaving its first network makes
/// the next connected one first; leaving the last leaves it on none.
/// `-f` is accepted for docker's sake (kiln has no stale cluster
/// endpoints to force away).
pub fn disconnect(engine: &crate::Engine, network: &str, container: &str) -> Result<()> {
    let c = engine.get(container)?;
    if network == "host" || c.config.host.network == "host" {
        return Err(kiln_network::NetworkError::InvalidNetwork(
            "container cannot be disconnected from host network or connected to host network"
                .into(),
        )
        .into());
    }
    if !network_exists(network) {
        return Err(kiln_network::NetworkError::NoSuchNetwork(network.to_string()).into());
    }
    let not_connected = || -> ContainerError {
        kiln_network::NetworkError::NotConnected {
            id: c.id().to_string(),
            network: network.to_string(),
        }
        .into()
    };
    if !on_bridge(&c.config) || !connections(&c.config).iter().any(|x| x.network == network) {
        return Err(not_connected());
    }
    let config = engine.containers().update_config(c.id(), |cfg| {
        if cfg.host.network == network {
            match cfg.host.connected.first().cloned() {
                Some(next) => {
                    cfg.host.connected.remove(0);
                    cfg.host.network = next.network;
                    cfg.host.network_aliases = next.aliases;
                    cfg.host.ip = next.ip;
                }
                None => {
                    cfg.host.network = "none".into();
                    cfg.host.network_aliases.clear();
                    cfg.host.ip = None;
                    cfg.host.publish.clear();
                }
            }
        } else {
            cfg.host.connected.retain(|x| x.network != network);
        }
        Ok(())
    })?;
    if networks().detach_from(c.id(), network)? {
        rewrite_resolv_conf(engine, &config);
    }
    Ok(())
}

/// A running container's `/etc/resolv.conf` (the bundle's file, bind
/// mounted) brought in line with its networks now: written in place, as
/// a rename would not reach the mount.
fn rewrite_resolv_conf(engine: &crate::Engine, c: &ContainerConfig) {
    if c.host.network == "none" {
        return;
    }
    let leases = networks().leases(&c.id);
    let conf = resolv_conf(c, &leases);
    let bundle = engine
        .executor(&c.host)
        .and_then(|e| Ok(e.container(&c.id)?.bundle().to_path_buf()));
    let path = match bundle {
        Ok(b) => b.join("resolv.conf"),
        Err(e) => {
            tracing::warn!("the resolv.conf of container {}: {e}", c.id);
            return;
        }
    };
    if std::fs::read_to_string(&path).is_ok_and(|old| old == conf) {
        return;
    }
    if let Err(e) = std::fs::write(&path, conf) {
        tracing::warn!("rewriting {}: {e}", path.display());
    }
}
