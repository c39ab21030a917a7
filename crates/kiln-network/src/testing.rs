//! A [`NetHost`] in memory: links, namespaces and the ruleset as the
//! real one would leave them, for tests without root.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::error::{NetworkError, Result};
use crate::host::{Endpoint, NetHost};
use crate::ipam::Subnet;

#[derive(Debug, Default)]
pub struct FakeHost {
    pub routes: Vec<Subnet>,
    pub links: Mutex<BTreeSet<String>>,
    pub namespaces: Mutex<BTreeSet<String>>,
    pub rules: Mutex<Option<String>>,
    pub forward: Mutex<Vec<(String, bool)>>,
    /// Default routes set after a namespace was made: (namespace, via).
    pub default_routes: Mutex<Vec<(String, std::net::Ipv4Addr)>>,
    /// Endpoint creation fails (a host without `ip`).
    pub fail_endpoints: bool,
    /// Run once inside the next endpoint creation, after its namespace
    /// was found and before its link exists: another kiln process acting
    /// in that window.
    pub during_endpoint: Hook,
}

/// A closure run once at a chosen point of the fake.
#[derive(Default)]
pub struct Hook(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl Hook {
    pub fn set(&self, f: impl FnOnce() + Send + 'static) {
        *lock(&self.0) = Some(Box::new(f));
    }
    fn run(&self) {
        let f = lock(&self.0).take();
        if let Some(f) = f {
            f();
        }
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeHost {
    pub fn links(&self) -> Vec<String> {
        lock(&self.links).iter().cloned().collect()
    }
    pub fn namespaces(&self) -> Vec<String> {
        lock(&self.namespaces).iter().cloned().collect()
    }
    pub fn rules(&self) -> Option<String> {
        lock(&self.rules).clone()
    }
    /// The bridges FORWARD lets through, as last applied.
    pub fn forwarded(&self) -> Vec<(String, bool)> {
        lock(&self.forward).clone()
    }
}

impl NetHost for FakeHost {
    fn routes(&self) -> Result<Vec<Subnet>> {
        Ok(self.routes.clone())
    }
    fn link_exists(&self, name: &str) -> bool {
        lock(&self.links).contains(name)
    }
    fn create_bridge(&self, name: &str, _subnet: &Subnet) -> Result<()> {
        lock(&self.links).insert(name.to_string());
        Ok(())
    }
    fn delete_link(&self, name: &str) -> Result<()> {
        lock(&self.links).remove(name);
        Ok(())
    }
    fn create_endpoint(&self, ep: &Endpoint) -> Result<()> {
        if self.fail_endpoints {
            return Err(NetworkError::Command {
                program: "ip",
                args: "link add".into(),
                message: "fake failure".into(),
            });
        }
        if !lock(&self.namespaces).contains(&ep.netns) {
            return Err(NetworkError::Command {
                program: "ip",
                args: "link add".into(),
                message: format!("no namespace {}", ep.netns),
            });
        }
        self.during_endpoint.run();
        lock(&self.links).insert(ep.veth.clone());
        Ok(())
    }
    fn set_default_route(&self, netns: &str, via: std::net::Ipv4Addr) -> Result<()> {
        lock(&self.default_routes).push((netns.to_string(), via));
        Ok(())
    }
    fn create_netns(&self, name: &str) -> Result<()> {
        lock(&self.namespaces).insert(name.to_string());
        Ok(())
    }
    fn delete_netns(&self, name: &str) -> Result<()> {
        lock(&self.namespaces).remove(name);
        Ok(())
    }
    fn allow_forward(&self, bridges: &[(String, bool)]) -> Result<()> {
        *lock(&self.forward) = bridges.to_vec();
        Ok(())
    }
    fn apply_rules(&self, ruleset: Option<&str>) -> Result<()> {
        *lock(&self.rules) = ruleset.map(str::to_string);
        Ok(())
    }
}
