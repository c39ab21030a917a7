//! A container's networking, from kiln-network: its ports bound by the
//! starting kiln, its place on the `kiln0` bridge held by its monitor,
//! and what `ps` and `port` show of it.
//!
//! Who does what: [`publish`] (in `Engine::start`, before the monitor is
//! spawned) binds the host sockets, so a taken port fails the start with
//! docker's message; the monitor's [`attach`] takes them over, puts the
//! container on the bridge and proxies them; dropping the [`OnBridge`]
//! it returns (the container is done) takes the container off. A
//! monitor killed leaves a lease whose owner is dead: [`sweep`] (run when
//! a dead monitor is noticed, and by every attach) removes it.

use std::path::Path;

use kiln_exec::{JoinedNetwork, Network};
use kiln_network::proxy::{self, HostSocket};
use kiln_network::{IpCommands, Networks, Owner, PortMapping, DEFAULT_STATE_DIR};

use crate::containers::Container;
use crate::error::{io, ContainerError, Result};
use crate::record::{ContainerConfig, Status};

fn networks() -> Networks<IpCommands> {
    Networks::new(IpCommands, DEFAULT_STATE_DIR)
}

/// On the default bridge or a user network: a namespace of its own.
fn on_bridge(c: &ContainerConfig) -> bool {
    !matches!(c.host.network.as_str(), "host" | "none" | "") && shared(c).is_none()
}

/// `--network container:NAME`: the container whose namespace it joins.
fn shared(c: &ContainerConfig) -> Option<&str> {
    c.host.network.strip_prefix("container:")
}

fn user_network(c: &ContainerConfig) -> bool {
    on_bridge(c) && c.host.network != "bridge"
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

/// The container is on the bridge while this lives.
pub struct OnBridge {
    id: String,
    /// The wiring of the namespace (veth, address, rules), made on a
    /// thread while the runtime creates the container; joined by
    /// [`ready`](Self::ready) before its process starts.
    wiring: Option<std::thread::JoinHandle<kiln_network::Result<()>>>,
}

impl OnBridge {
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
            tracing::warn!("taking container {} off the bridge: {e}", self.id);
        }
    }
}

/// Whether the container's monitor must stay kiln while it runs: the
/// userland proxy of its published ports and its user network's DNS
/// responder are threads of the monitor, which the lean `kiln-monitor`
/// (exec'd over it) does not have.
pub(crate) fn needs_full_monitor(c: &ContainerConfig) -> bool {
    on_bridge(c) && (user_network(c) || !c.host.publish.is_empty())
}

/// In a monitor the lean one handed back to (the container ended): the
/// attachment made before the hand-over still stands; this guard takes the
/// container off the bridge when the monitor is done with it.
pub(crate) fn still_attached(c: &ContainerConfig) -> Option<OnBridge> {
    on_bridge(c).then(|| OnBridge {
        id: c.id.clone(),
        wiring: None,
    })
}

/// In the monitor: the container's namespace on the bridge, its ports
/// proxied; `None` for `host` and `none`. The namespace exists on return;
/// its wiring goes on while the runtime creates the container (call
/// [`OnBridge::ready`] before starting it).
pub fn attach(c: &ContainerConfig) -> Result<Option<OnBridge>> {
    if !on_bridge(c) {
        return Ok(None);
    }
    let sockets = proxy::take_handoff(Path::new(DEFAULT_STATE_DIR), &c.id)?;
    let ports = sockets.iter().map(|(m, _)| *m).collect();
    let network = c.host.network.as_str();
    // Names are answered only by user networks' DNS; the default
    // bridge's are kept for `--network container:NAME`.
    let names = std::iter::once(c.name.clone())
        .chain(c.host.network_aliases.iter().cloned())
        .collect();
    let join = kiln_network::Join {
        network: network.to_string(),
        ports,
        names,
        ip: c.host.ip,
        mac: c.host.mac_address.clone(),
    };
    let (a, pending) = networks().reserve(&c.id, Owner::me(), join)?;
    let wiring = std::thread::Builder::new()
        .name("net-wiring".into())
        .spawn(move || networks().wire(pending))
        .map_err(|e| io("start a thread for", "the network")(e))?;
    let guard = OnBridge {
        id: c.id.clone(),
        wiring: Some(wiring),
    };
    proxy::serve(sockets, a.ip.into());
    if user_network(c) {
        let upstream = if c.host.dns.is_empty() {
            kiln_network::dns::nameservers(&host_resolv())
        } else {
            kiln_network::dns::nameservers(
                &c.host
                    .dns
                    .iter()
                    .map(|d| format!("nameserver {d}\n"))
                    .collect::<String>(),
            )
        };
        // Another container's responder may already answer: a failure
        // here leaves name resolution to it.
        if let Err(e) = kiln_network::dns::serve(
            DEFAULT_STATE_DIR.into(),
            network.to_string(),
            a.gateway,
            upstream,
        ) {
            tracing::warn!("the DNS responder of network {network}: {e}");
        }
    }
    Ok(Some(guard))
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

/// The containers on a network: id and address.
pub type Endpoints = Vec<(String, std::net::Ipv4Addr)>;

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
                .map(|(id, l)| (id.clone(), l.ip))
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
        let (id, lease) = state
            .leases
            .iter()
            .find(|(id, l)| {
                l.owner.alive()
                    && (id.starts_with(target) || l.names.first().is_some_and(|n| n == target))
            })
            .ok_or_else(|| {
                ContainerError::InvalidConfig(format!(
                    "cannot join the network namespace of container {target}: it is not running on a kiln network"
                ))
            })?;
        tracing::debug!("joining the network namespace of container {id}");
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
    let lease = networks().lease(&c.id).ok_or_else(|| {
        ContainerError::InvalidConfig(format!(
            "container {} is not on the bridge network (its monitor has not attached it)",
            c.id
        ))
    })?;
    // A user network's containers ask its responder on the gateway.
    let gateway = networks()
        .state()
        .networks
        .get(&lease.network)
        .map(|n| n.subnet.gateway().to_string());
    let dns = match gateway {
        Some(g) => vec![g],
        None => c.host.dns.clone(),
    };
    Ok(Network::Joined(JoinedNetwork {
        netns: kiln_network::netns_path(&lease.netns),
        hosts: kiln_network::files::hosts(lease.ip, &c.process.hostname, &c.host.extra_hosts),
        resolv_conf: kiln_network::files::resolv_conf(&host_resolv(), &dns, &c.host.dns_search),
    }))
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
    let mut p = networks()
        .lease(c.id())
        .map(|l| l.ports)
        .unwrap_or_default();
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

/// A running container's place on its network, as `inspect` shows it.
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

/// Where a running container is on its network; `None` for one that is
/// not running or has no network of its own.
pub fn endpoint(c: &Container) -> Option<Endpoint> {
    if !matches!(c.state.status, Status::Running | Status::Restarting) || !on_bridge(&c.config) {
        return None;
    }
    let state = networks().state();
    let lease = state.leases.get(c.id())?;
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
}

/// The address a container has on the bridge, while it runs.
pub fn address(c: &Container) -> Option<std::net::Ipv4Addr> {
    on_bridge(&c.config)
        .then(|| networks().lease(c.id()).map(|l| l.ip))
        .flatten()
}
