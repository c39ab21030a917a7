//! The default bridge `kiln0` and the containers on it: attach (address
//! from the IPAM file, namespace, veth, rules), detach, and the sweep of
//! what dead monitors left. The bridge is made by the first attach and
//! removed, with its rules, when its last lease goes (detach, sweep,
//! `network disconnect`). Everything happens under the IPAM lock, so
//! two kiln processes never make the bridge twice or remove it under a
//! container that is joining it: a lease is written in the same locked
//! section that makes (or finds) the bridge.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::error::{NetworkError, Result};
use crate::host::{netns_path, Endpoint, NetHost};
use crate::ipam::{self, Bridge, Lease, Locked, Owner, Subnet};
use crate::ports::PortMapping;

/// The default bridge's name.
pub const DEFAULT_BRIDGE: &str = "kiln0";

/// Where the host-wide network state lives by default.
pub const DEFAULT_STATE_DIR: &str = "/run/kiln/net";

/// Where and how a container joins (see [`Networks::attach_to`]).
#[derive(Debug, Clone, Default)]
pub struct Join {
    pub network: String,
    pub ports: Vec<PortMapping>,
    /// Names in the network's DNS (user networks).
    pub names: Vec<String>,
    /// `--ip` (user networks only).
    pub ip: Option<Ipv4Addr>,
    /// `--mac-address`.
    pub mac: Option<String>,
    /// `--dns`: the upstreams of this container's names (user networks).
    pub dns: Vec<String>,
}

/// What [`Networks::wire`] has left to make of a reserved attachment.
#[derive(Debug)]
pub struct Pending {
    key: String,
    ep: Endpoint,
}

/// A container on the bridge: what its spec and files need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub ip: Ipv4Addr,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// The namespace the container joins.
    pub netns: PathBuf,
}

pub struct Networks<H: NetHost> {
    host: H,
    dir: PathBuf,
    bridge: String,
}

/// Names derived from a container id (at most 15 bytes for links): its
/// namespace, and the host end of its `index`th interface's veth.
fn link_names(id: &str, index: u32) -> (String, String) {
    let short = &id[..id.len().min(12)];
    let veth = if index == 0 {
        format!("kv{short}")
    } else {
        let mut v = format!("k{index}{short}");
        v.truncate(15);
        v
    };
    (format!("kiln-{short}"), veth)
}

/// The bridges iptables' FORWARD must let through: (name, internal).
fn forwarded(state: &ipam::State) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = state
        .networks
        .values()
        .map(|n| (n.bridge.clone(), n.internal))
        .collect();
    out.extend(state.bridge.as_ref().map(|b| (b.name.clone(), false)));
    out
}

/// The default bridge's name when it is recorded but no lease is on it.
fn idle_bridge(state: &ipam::State) -> Option<String> {
    let b = state.bridge.as_ref()?;
    (!state.leases.values().any(|x| x.network == "bridge")).then(|| b.name.clone())
}

/// docker's MAC for an address: `02:42` and the address's bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

impl<H: NetHost> Networks<H> {
    pub fn new(host: H, dir: impl Into<PathBuf>) -> Networks<H> {
        Networks {
            host,
            dir: dir.into(),
            bridge: DEFAULT_BRIDGE.to_string(),
        }
    }

    /// With another bridge name (tests that must not meet a real kiln0).
    pub fn with_bridge(mut self, name: &str) -> Networks<H> {
        self.bridge = name.to_string();
        self
    }

    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    /// Puts container `id` on the default bridge for `owner` (its
    /// monitor) with `ports` published, making the bridge if it is the
    /// first.
    pub fn attach(&self, id: &str, owner: Owner, ports: Vec<PortMapping>) -> Result<Attachment> {
        let join = Join {
            network: "bridge".into(),
            ports,
            ..Join::default()
        };
        self.attach_to(id, owner, join)
    }

    /// Puts container `id` on `join.network` (`bridge`, or a user
    /// network): [`reserve`](Self::reserve) then [`wire`](Self::wire).
    pub fn attach_to(&self, id: &str, owner: Owner, join: Join) -> Result<Attachment> {
        let (a, pending) = self.reserve(id, owner, join)?;
        self.wire(pending)?;
        Ok(a)
    }

    /// The first half of an attach, what a runtime needs to create the
    /// container: under the lock, the address leased and the namespace
    /// made (the bridge too, if it is the first). The veth, addresses and
    /// rules ([`wire`](Self::wire)) can then be made while the runtime
    /// creates the container, as long as they are done before its process
    /// starts.
    pub fn reserve(&self, id: &str, owner: Owner, join: Join) -> Result<(Attachment, Pending)> {
        let Join {
            network,
            ports,
            names,
            ip: wanted,
            mac,
            dns,
        } = join;
        let network = network.as_str();
        let key = ipam::lease_key(id, network);
        let mut l = ipam::lock(&self.dir)?;
        self.sweep_locked(&mut l);
        // An earlier life on this network (a restart): replaced.
        if l.state.leases.contains_key(&key) {
            self.remove_locked(&mut l, &key);
        }
        let (bridge, subnet, internal) = if network == "bridge" {
            (self.bridge.clone(), self.ensure_bridge(&mut l)?, false)
        } else {
            let n = l
                .state
                .networks
                .get(network)
                .cloned()
                .ok_or_else(|| NetworkError::NoSuchNetwork(network.to_string()))?;
            if !self.host.link_exists(&n.bridge) {
                self.host.create_bridge(&n.bridge, &n.subnet)?;
            }
            (n.bridge, n.subnet, n.internal)
        };
        let ip = match wanted {
            Some(_) if network == "bridge" => {
                return Err(NetworkError::InvalidNetwork(
                    "user specified IP address is supported on user defined networks only".into(),
                ))
            }
            Some(ip) if !subnet.contains(ip) || ip == subnet.gateway() => {
                return Err(NetworkError::InvalidNetwork(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )))
            }
            Some(ip) if l.state.leases.values().any(|x| x.ip == ip) => {
                return Err(NetworkError::InvalidNetwork(
                    "Address already in use".into(),
                ))
            }
            Some(ip) => ip,
            None => l
                .state
                .free_address(&subnet)
                .ok_or_else(|| NetworkError::NoAddress {
                    bridge: bridge.clone(),
                    subnet: subnet.to_string(),
                })?,
        };
        // The container's other networks share its namespace; the new
        // one gets the lowest free `ethN` and takes the default route
        // only if none of them has it.
        let others: Vec<Lease> = l
            .state
            .leases_of(id)
            .into_iter()
            .map(|(_, x)| x.clone())
            .collect();
        let index = (0..)
            .find(|n| !others.iter().any(|x| x.ifname == format!("eth{n}")))
            .unwrap_or(0);
        let (netns, veth) = link_names(id, index);
        let ep = Endpoint {
            netns: netns.clone(),
            veth: veth.clone(),
            ifname: format!("eth{index}"),
            bridge: bridge.clone(),
            ip,
            subnet,
            mac: mac.unwrap_or_else(|| mac_for(ip)),
            default_route: !internal && !others.iter().any(|x| x.default_route),
        };
        // Leftovers of an earlier life of this id (a crash mid-attach);
        // looked up first, as a spawn of `ip` costs milliseconds.
        if self.host.link_exists(&veth) {
            let _ = self.host.delete_link(&veth);
        }
        let fresh = others.is_empty();
        if fresh {
            let _ = self.host.delete_netns(&netns);
        }
        l.state.leases.insert(
            key.clone(),
            Lease {
                ip,
                owner,
                veth: veth.clone(),
                netns: netns.clone(),
                ports,
                network: network.to_string(),
                names,
                mac: ep.mac.clone(),
                ifname: ep.ifname.clone(),
                default_route: ep.default_route,
                dns,
            },
        );
        let made = if fresh {
            self.host.create_netns(&netns)
        } else {
            Ok(())
        };
        if let Err(e) = made.and_then(|()| l.save()) {
            self.remove_locked(&mut l, &key);
            let _ = self.finish(&mut l);
            return Err(e);
        }
        let a = Attachment {
            ip,
            subnet,
            gateway: subnet.gateway(),
            mac: ep.mac.clone(),
            netns: netns_path(&netns),
        };
        Ok((a, Pending { key, ep }))
    }

    /// The second half of an attach: the veth into the reserved
    /// namespace, its address and route, and the rules. On failure the
    /// container is taken off again.
    pub fn wire(&self, p: Pending) -> Result<()> {
        let made = self.host.create_endpoint(&p.ep).and_then(|()| {
            let mut l = ipam::lock(&self.dir)?;
            // Swept or detached meanwhile (its owner died, or `rm -f`
            // ran while the veth was being made): nothing to add rules
            // for, and the remover may have looked for the veth before
            // it existed, so it is removed here, with the namespace if
            // the container has no other lease. Nothing else could
            // remove them: no lease names them any more.
            if l.state.leases.get(&p.key).map(|x| x.ip) != Some(p.ep.ip) {
                if !l.state.leases.contains_key(&p.key) {
                    let _ = self.host.delete_link(&p.ep.veth);
                    if l.state.leases_of(ipam::key_container(&p.key)).is_empty() {
                        let _ = self.host.delete_netns(&p.ep.netns);
                    }
                }
                return Ok(());
            }
            let synced = self.sync_rules(&mut l);
            l.save().and(synced)
        });
        if let Err(e) = made {
            let mut l = ipam::lock(&self.dir)?;
            if l.state.leases.get(&p.key).map(|x| x.ip) == Some(p.ep.ip) {
                self.remove_locked(&mut l, &p.key);
                let _ = self.finish(&mut l);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Takes container `id` off every network it is on (nothing if none);
    /// its rules go with it, and the default bridge if it was its last
    /// container (see [`finish`](Self::finish)).
    pub fn detach(&self, id: &str) -> Result<()> {
        let mut l = ipam::lock(&self.dir)?;
        let keys: Vec<String> = l
            .state
            .leases_of(id)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        for k in keys {
            self.remove_locked(&mut l, &k);
        }
        // A dead monitor's lease (another root's container, SIGKILLed)
        // would keep the bridge up for no one.
        self.sweep_locked(&mut l);
        self.finish(&mut l)
    }

    /// Takes container `id` off `network` only (`network disconnect`);
    /// whether it was on it.
    pub fn detach_from(&self, id: &str, network: &str) -> Result<bool> {
        let mut l = ipam::lock(&self.dir)?;
        let key = ipam::lease_key(id, network);
        if !l.state.leases.contains_key(&key) {
            return Ok(false);
        }
        self.remove_locked(&mut l, &key);
        self.sweep_locked(&mut l);
        self.finish(&mut l).map(|()| true)
    }

    /// Removes what monitors that died left: their namespaces, veths,
    /// leases and rules, and the default bridge if no container is left
    /// on it (also one an older kiln left lingering).
    pub fn sweep(&self) -> Result<()> {
        let mut l = ipam::lock(&self.dir)?;
        if self.sweep_locked(&mut l) || idle_bridge(&l.state).is_some() {
            self.finish(&mut l)?;
        }
        Ok(())
    }

    /// Removes the default bridge when no container is on it (`network
    /// prune`: normally there is none, as the last detach removes it);
    /// whether it did.
    pub fn remove_idle_bridge(&self) -> Result<bool> {
        let mut l = ipam::lock(&self.dir)?;
        self.sweep_locked(&mut l);
        let idle = idle_bridge(&l.state).is_some();
        self.finish(&mut l)?;
        Ok(idle && l.state.bridge.is_none())
    }

    /// Container `id`'s leases, its first network first, read without
    /// the lock.
    pub fn leases(&self, id: &str) -> Vec<Lease> {
        let state = ipam::read(&self.dir);
        state
            .leases_of(id)
            .into_iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Removes the default bridge if no lease is on it any more, brings
    /// the rules in line with the state (its masquerade and FORWARD
    /// accepts go with it; kiln's table and chain too when no kiln
    /// network is left) and saves it. Called under the lock by whatever
    /// removed a lease, so the next attach finds either a whole bridge or
    /// none (and makes it). User networks keep theirs until `network rm`,
    /// as docker keeps `br-…` while the network exists.
    pub(crate) fn finish(&self, l: &mut Locked) -> Result<()> {
        if let Some(name) = idle_bridge(&l.state) {
            // Kept in the state if the link cannot go, so that the next
            // finish tries again.
            match self.host.delete_link(&name) {
                Ok(()) => l.state.bridge = None,
                Err(e) => tracing::warn!("removing the idle bridge {name}: {e}"),
            }
        }
        let synced = self.sync_rules(l);
        l.save()?;
        synced
    }

    /// Applies kiln's nft table and FORWARD chain when they differ from
    /// what was last applied (recorded in the state): a container without
    /// published ports joining a bridge that exists changes neither, and
    /// spawns no `nft` or `iptables`.
    fn sync_rules(&self, l: &mut Locked) -> Result<()> {
        let rules = crate::nat::ruleset(&l.state);
        if rules != l.state.applied.rules {
            l.state.applied.rules = None;
            self.host.apply_rules(rules.as_deref())?;
            l.state.applied.rules = rules;
        }
        let forward = forwarded(&l.state);
        if forward != l.state.applied.forward {
            l.state.applied.forward = Vec::new();
            self.host.allow_forward(&forward)?;
            l.state.applied.forward = forward;
        }
        Ok(())
    }

    /// Leases of dead owners removed (with their links); whether any was.
    fn sweep_locked(&self, l: &mut Locked) -> bool {
        let dead: Vec<String> = l
            .state
            .leases
            .iter()
            .filter(|(_, lease)| !lease.owner.alive())
            .map(|(id, _)| id.clone())
            .collect();
        for key in &dead {
            tracing::info!("removing the network endpoint {key}: its container's monitor is gone");
            self.remove_locked(l, key);
        }
        !dead.is_empty()
    }

    /// Removes the lease `key` and its veth; the namespace too when it
    /// was the container's last network, else the default route moves to
    /// another network if it went through this one.
    pub(crate) fn remove_locked(&self, l: &mut Locked, key: &str) {
        let Some(lease) = l.state.leases.remove(key) else {
            return;
        };
        // The namespace may outlive its mount (a process still in it):
        // removing the host end takes the pair down at once.
        if let Err(e) = self.host.delete_link(&lease.veth) {
            tracing::warn!("removing {}: {e}", lease.veth);
        }
        let id = ipam::key_container(key).to_string();
        let rest: Vec<String> = l
            .state
            .leases_of(&id)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect();
        if rest.is_empty() {
            if let Err(e) = self.host.delete_netns(&lease.netns) {
                tracing::warn!("removing namespace {}: {e}", lease.netns);
            }
            return;
        }
        if !lease.default_route || !lease.owner.alive() {
            return;
        }
        let next = rest.iter().find_map(|k| {
            let x = &l.state.leases[k];
            let internal = l.state.networks.get(&x.network).is_some_and(|n| n.internal);
            let subnet = match x.network.as_str() {
                "bridge" => l.state.bridge.as_ref().map(|b| b.subnet),
                n => l.state.networks.get(n).map(|n| n.subnet),
            };
            subnet
                .filter(|_| !internal)
                .map(|s| (k.clone(), s.gateway()))
        });
        if let Some((k, via)) = next {
            match self.host.set_default_route(&lease.netns, via) {
                Ok(()) => {
                    if let Some(x) = l.state.leases.get_mut(&k) {
                        x.default_route = true;
                    }
                }
                Err(e) => tracing::warn!("moving the default route of {}: {e}", lease.netns),
            }
        }
    }

    /// The bridge's subnet, the bridge made first if it is not there.
    fn ensure_bridge(&self, l: &mut Locked) -> Result<Subnet> {
        if let Some(b) = &mut l.state.bridge {
            if b.name == self.bridge && self.host.link_exists(&b.name) {
                // Made by a kiln that kept no id.
                if b.id.is_empty() {
                    b.id = ipam::new_id()?;
                }
                return Ok(b.subnet);
            }
        }
        // A bridge with no record (a state directory lost) is remade.
        if self.host.link_exists(&self.bridge) {
            self.host.delete_link(&self.bridge)?;
        }
        let mut routes = self.host.routes()?;
        routes.extend(l.state.networks.values().map(|n| n.subnet));
        let subnet = ipam::free_subnet(&routes).ok_or_else(|| NetworkError::NoSubnet {
            bridge: self.bridge.clone(),
        })?;
        self.host.create_bridge(&self.bridge, &subnet)?;
        l.state.bridge = Some(Bridge {
            name: self.bridge.clone(),
            subnet,
            id: ipam::new_id()?,
        });
        Ok(subnet)
    }
}

#[cfg(test)]
mod tests;
