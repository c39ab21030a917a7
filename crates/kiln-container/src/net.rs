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
use crate::error::{ContainerError, Result};
use crate::record::{ContainerConfig, Status};

fn networks() -> Networks<IpCommands> {
    Networks::new(IpCommands, DEFAULT_STATE_DIR)
}

fn on_bridge(c: &ContainerConfig) -> bool {
    c.host.network == "bridge"
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
}

impl Drop for OnBridge {
    fn drop(&mut self) {
        if let Err(e) = networks().detach(&self.id) {
            tracing::warn!("taking container {} off the bridge: {e}", self.id);
        }
    }
}

/// In the monitor: the container's namespace on the bridge, its ports
/// proxied; `None` for `host` and `none`.
pub fn attach(c: &ContainerConfig) -> Result<Option<OnBridge>> {
    if !on_bridge(c) {
        return Ok(None);
    }
    let sockets = proxy::take_handoff(Path::new(DEFAULT_STATE_DIR), &c.id)?;
    let ports = sockets.iter().map(|(m, _)| *m).collect();
    let a = networks().attach(&c.id, Owner::me(), ports)?;
    proxy::serve(sockets, a.ip.into());
    Ok(Some(OnBridge { id: c.id.clone() }))
}

/// The namespace (and files) a process of container `c` joins.
pub(crate) fn joined(c: &ContainerConfig) -> Result<Network> {
    let lease = networks().lease(&c.id).ok_or_else(|| {
        ContainerError::InvalidConfig(format!(
            "container {} is not on the bridge network (its monitor has not attached it)",
            c.id
        ))
    })?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    Ok(Network::Joined(JoinedNetwork {
        netns: kiln_network::netns_path(&lease.netns),
        hosts: kiln_network::files::hosts(lease.ip, &c.process.hostname, &c.host.extra_hosts),
        resolv_conf: kiln_network::files::resolv_conf(
            &host_resolv,
            &c.host.dns,
            &c.host.dns_search,
        ),
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

/// The address a container has on the bridge, while it runs.
pub fn address(c: &Container) -> Option<std::net::Ipv4Addr> {
    on_bridge(&c.config)
        .then(|| networks().lease(c.id()).map(|l| l.ip))
        .flatten()
}
