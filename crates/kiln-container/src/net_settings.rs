//! docker's `NetworkSettings` of `inspect CONTAINER`: the running
//! container's address, gateway, MAC and aliases under `Networks.<name>`
//! for each network it is on,
//! the published and exposed ports under `Ports`, and for the default
//! bridge the same address at the top level (docker's legacy fields, which
//! it leaves empty for user networks). A container that is not running,
//! or has no network of its own (`host`, `none`, `container:`), gets the
//! same shape with empty values, as docker's does.

use serde_json::{json, Map, Value};

use crate::containers::Container;
use crate::net::Endpoint;

/// The `NetworkSettings` object of container `c`.
pub(crate) fn network_settings(c: &Container) -> Value {
    let mode = match c.config.host.network.as_str() {
        "" => "none",
        m => m,
    };
    let eps = crate::net::endpoints(c);
    let ports = ports(c, !eps.is_empty());
    let mut networks = Map::new();
    for e in &eps {
        networks.insert(e.network.clone(), network_entry(Some(e)));
    }
    if eps.is_empty() {
        networks.insert(mode.to_string(), network_entry(None));
    }
    // docker's top-level fields describe the default bridge only.
    let top = eps.iter().find(|e| e.network == "bridge");
    let ep = eps.first();
    let s = |f: fn(&Endpoint) -> String| top.map(f).unwrap_or_default();
    json!({
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SandboxKey": ep.map(|e| e.sandbox.clone()).unwrap_or_default(),
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": "",
        "Gateway": s(|e| e.gateway.to_string()),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": s(|e| e.ip.to_string()),
        "IPPrefixLen": top.map_or(0, |e| e.prefix),
        "IPv6Gateway": "",
        "MacAddress": s(|e| e.mac.clone()),
        "Networks": networks,
    })
}

/// One entry of `Networks`.
fn network_entry(ep: Option<&Endpoint>) -> Value {
    let s = |f: fn(&Endpoint) -> String| ep.map(f).unwrap_or_default();
    let aliases = ep
        .filter(|e| !e.aliases.is_empty())
        .map_or(Value::Null, |e| json!(e.aliases));
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": aliases,
        "NetworkID": s(|e| e.network_id.clone()),
        "EndpointID": "",
        "Gateway": s(|e| e.gateway.to_string()),
        "IPAddress": s(|e| e.ip.to_string()),
        "IPPrefixLen": ep.map_or(0, |e| e.prefix),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": s(|e| e.mac.clone()),
        "DriverOpts": null
    })
}

/// docker's `Ports` map: `"80/tcp": [{"HostIp", "HostPort"}]` for each
/// published port, `null` for one only exposed; empty unless running.
fn ports(c: &Container, running: bool) -> Value {
    let mut m = Map::new();
    if !running {
        return Value::Object(m);
    }
    for p in &c.config.process.exposed_ports {
        let key = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        m.insert(key, Value::Null);
    }
    for p in crate::net::ports(c) {
        let key = format!("{}/{}", p.container_port, p.proto);
        let binding = json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()});
        match m.get_mut(&key) {
            Some(Value::Array(list)) => list.push(binding),
            _ => {
                m.insert(key, json!([binding]));
            }
        }
    }
    Value::Object(m)
}
