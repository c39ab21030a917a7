//! User-defined networks (`network create/rm/prune`): a bridge of their
//! own each, on a subnet given or free, kept until removed, recorded in
//! the same state file as the default bridge.

use crate::bridge::Networks;
use crate::error::{NetworkError, Result};
use crate::host::NetHost;
use crate::ipam::{self, Subnet, UserNetwork};

/// Names that are not user networks.
const RESERVED: &[&str] = &["bridge", "host", "none", "default"];

impl<H: NetHost> Networks<H> {
    /// `network create [--subnet S] [--internal] NAME`.
    pub fn create_network(
        &self,
        name: &str,
        subnet: Option<Subnet>,
        internal: bool,
        id: String,
        created: String,
    ) -> Result<UserNetwork> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(NetworkError::InvalidNetwork(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let mut l = ipam::lock(self.state_dir())?;
        if RESERVED.contains(&name) {
            return Err(NetworkError::InvalidNetwork(format!(
                "{name} is a pre-defined network and cannot be created"
            )));
        }
        if l.state.networks.contains_key(name) {
            return Err(NetworkError::NetworkExists(name.to_string()));
        }
        let mut taken: Vec<Subnet> = l.state.networks.values().map(|n| n.subnet).collect();
        taken.extend(l.state.bridge.as_ref().map(|b| b.subnet));
        let subnet = match subnet {
            Some(s) => {
                if taken.iter().any(|t| t.overlaps(&s)) {
                    return Err(NetworkError::InvalidNetwork(format!(
                        "Pool overlaps with other one on this address space: {s}"
                    )));
                }
                s
            }
            None => {
                taken.extend(self.host().routes()?);
                ipam::free_subnet(&taken).ok_or_else(|| NetworkError::NoSubnet {
                    bridge: name.to_string(),
                })?
            }
        };
        let net = UserNetwork {
            bridge: format!("kb-{}", &id[..id.len().min(12)]),
            id,
            subnet,
            internal,
            created,
            dns: None,
        };
        self.host().create_bridge(&net.bridge, &subnet)?;
        l.state.networks.insert(name.to_string(), net.clone());
        self.finish(&mut l)?;
        Ok(net)
    }

    /// `network rm NAME`: refused while a container is on it.
    pub fn remove_network(&self, name: &str) -> Result<()> {
        let mut l = ipam::lock(self.state_dir())?;
        let Some(net) = l.state.networks.get(name).cloned() else {
            return Err(NetworkError::NoSuchNetwork(name.to_string()));
        };
        if l.state
            .leases
            .values()
            .any(|x| x.network == name && x.owner.alive())
        {
            return Err(NetworkError::NetworkInUse {
                name: name.to_string(),
                id: net.id,
            });
        }
        let stale: Vec<String> = l
            .state
            .leases
            .iter()
            .filter(|(_, x)| x.network == name)
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            self.remove_locked(&mut l, &key);
        }
        self.host().delete_link(&net.bridge)?;
        l.state.networks.remove(name);
        self.finish(&mut l)
    }

    /// `network prune`: every user network without containers; their
    /// names. An idle default bridge goes too (normally there is none:
    /// it goes with its last container, see `Networks::finish`),
    /// unlisted, as docker lists only user networks.
    pub fn prune_networks(&self) -> Result<Vec<String>> {
        self.remove_idle_bridge()?;
        let state = ipam::read(self.state_dir());
        let mut removed = Vec::new();
        for name in state.networks.keys() {
            if !state.leases.values().any(|x| &x.network == name)
                && self.remove_network(name).is_ok()
            {
                removed.push(name.clone());
            }
        }
        Ok(removed)
    }

    /// The state as it is now (for `ls`, `inspect`).
    pub fn state(&self) -> ipam::State {
        ipam::read(self.state_dir())
    }
}
