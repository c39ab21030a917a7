//! Published ports: docker's `-p`/`--publish` syntax read into
//! [`PortSpec`]s, `-P` from the image's exposed ports, and the bound
//! result, [`PortMapping`], printed as `kiln port` and `ps` print it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One `-p` after ranges are expanded: a container port and where on the
/// host to publish it. `host_ports` is a range to pick the first free
/// port from (`-p 8000-8010:80`), one port, or `None` for any port the
/// kernel gives (`-p 80`, `-P`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub host_ip: Option<IpAddr>,
    pub host_ports: Option<(u16, u16)>,
    pub container_port: u16,
    pub proto: Proto,
}

/// A published port as bound: what `kiln port` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub host_port: u16,
}

impl PortSpec {
    /// The address to bind: docker's default is every IPv4 address.
    pub fn bind_ip(&self) -> IpAddr {
        self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

impl fmt::Display for PortMapping {
    /// `80/tcp -> 127.0.0.1:18080`, `kiln port`'s line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}",
            self.container_port,
            self.proto,
            host_addr(self.host_ip, self.host_port)
        )
    }
}

/// `IP:PORT`, IPv6 in brackets.
pub fn host_addr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

fn invalid(spec: &str, reason: String) -> NetworkError {
    NetworkError::InvalidPort {
        spec: spec.to_string(),
        reason,
    }
}

/// `-p` values, docker's forms: `PORT`, `HOSTPORT:PORT`,
/// `IP:HOSTPORT:PORT`, `IP::PORT`, each port maybe a range `A-B`, with
/// `/tcp` or `/udp`. Equal ranges pair up port by port; a host range with
/// one container port means the first free port of the range.
pub fn parse_publish(spec: &str) -> Result<Vec<PortSpec>> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Proto::Tcp),
        Some((rest, "udp")) => (rest, Proto::Udp),
        Some((_, p)) => return Err(invalid(spec, format!("Invalid proto: {p}"))),
        None => (spec, Proto::Tcp),
    };
    let (ip, host, container) = split_spec(rest);
    let host_ip = match ip {
        "" => None,
        ip => Some(
            ip.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| invalid(spec, format!("Invalid ip address: {ip}")))?,
        ),
    };
    if container.is_empty() {
        return Err(invalid(spec, format!("No port specified: {spec}<empty>")));
    }
    let (c0, c1) = port_range(container)
        .ok_or_else(|| invalid(spec, format!("Invalid containerPort: {container}")))?;
    let hosts = match host {
        "" => None,
        h => Some(port_range(h).ok_or_else(|| invalid(spec, format!("Invalid hostPort: {h}")))?),
    };
    if let Some((h0, h1)) = hosts {
        if h1 - h0 != c1 - c0 && c1 != c0 {
            return Err(invalid(
                spec,
                format!(
                    "Invalid ranges specified for container and host Ports: {container} and {host}"
                ),
            ));
        }
    }
    Ok((c0..=c1)
        .map(|c| PortSpec {
            host_ip,
            host_ports: match hosts {
                Some((h0, h1)) if c1 == c0 => Some((h0, h1)),
                Some((h0, _)) => Some((h0 + (c - c0), h0 + (c - c0))),
                None => None,
            },
            container_port: c,
            proto,
        })
        .collect())
}

/// `ip:host:container` with an IPv6 address in brackets; fewer parts
/// leave the first ones empty.
fn split_spec(s: &str) -> (&str, &str, &str) {
    if let Some(end) = s.starts_with('[').then(|| s.find(']')).flatten() {
        let ip = &s[..=end];
        let rest = s[end + 1..].trim_start_matches(':');
        return match rest.split_once(':') {
            Some((h, c)) => (ip, h, c),
            None => (ip, "", rest),
        };
    }
    match s.rsplit_once(':') {
        None => ("", "", s),
        Some((left, c)) => match left.rsplit_once(':') {
            None => ("", left, c),
            Some((ip, h)) => (ip, h, c),
        },
    }
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    let one = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            (a <= b).then_some((a, b))
        }
        None => one(s).map(|p| (p, p)),
    }
}

/// `-P`: every exposed port (`80/tcp` keys of the image's config and
/// `--expose`) on any host port of every address.
pub fn publish_all(exposed: &[String]) -> Vec<PortSpec> {
    exposed
        .iter()
        .filter_map(|e| parse_publish(e).ok())
        .flatten()
        .map(|mut s| {
            s.host_ports = None;
            s.host_ip = None;
            s
        })
        .collect()
}

/// docker's `ps` PORTS column: published ports as `IP:HOST->PORT/PROTO`,
/// runs of consecutive ports folded into ranges, then exposed ports that
/// are not published as `PORT/PROTO`; comma-separated.
pub fn ps_column(mappings: &[PortMapping], exposed: &[String]) -> String {
    let mut m = mappings.to_vec();
    m.sort_by_key(|p| (p.host_ip, p.proto, p.container_port, p.host_port));
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < m.len() {
        let mut j = i;
        while j + 1 < m.len()
            && m[j + 1].host_ip == m[i].host_ip
            && m[j + 1].proto == m[i].proto
            && m[j + 1].container_port == m[j].container_port + 1
            && m[j + 1].host_port == m[j].host_port + 1
        {
            j += 1;
        }
        let (a, b) = (m[i], m[j]);
        let ip = match a.host_ip {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        out.push(if i == j {
            format!("{ip}:{}->{}/{}", a.host_port, a.container_port, a.proto)
        } else {
            format!(
                "{ip}:{}-{}->{}-{}/{}",
                a.host_port, b.host_port, a.container_port, b.container_port, a.proto
            )
        });
        i = j + 1;
    }
    let mut unpublished: Vec<(u16, Proto)> = publish_all(exposed)
        .into_iter()
        .map(|s| (s.container_port, s.proto))
        .filter(|(p, proto)| {
            !mappings
                .iter()
                .any(|m| m.container_port == *p && m.proto == *proto)
        })
        .collect();
    unpublished.sort();
    unpublished.dedup();
    out.extend(
        unpublished
            .into_iter()
            .map(|(p, proto)| format!("{p}/{proto}")),
    );
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortSpec {
        let mut v = parse_publish(s).expect("parses");
        assert_eq!(v.len(), 1, "{s}");
        v.remove(0)
    }

    #[test]
    fn docker_forms() {
        let p = one("80");
        assert_eq!(
            (p.host_ip, p.host_ports, p.container_port),
            (None, None, 80)
        );
        let p = one("8080:80");
        assert_eq!((p.host_ports, p.container_port), (Some((8080, 8080)), 80));
        let p = one("127.0.0.1:18080:80/udp");
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(p.proto, Proto::Udp);
        let p = one("127.0.0.1::80");
        assert_eq!((p.host_ports, p.container_port), (None, 80));
        let p = one("[::1]:8080:80");
        assert_eq!(p.host_ip, Some("::1".parse().expect("ip")));
        let p = one("8000-8010:80");
        assert_eq!(p.host_ports, Some((8000, 8010)));
        let v = parse_publish("8000-8001:80-81").expect("parses");
        assert_eq!(v[1].host_ports, Some((8001, 8001)));
        assert_eq!(v[1].container_port, 81);
    }

    #[test]
    fn docker_errors() {
        let err = |s: &str| parse_publish(s).expect_err(s).to_string();
        assert!(err("80/sctpx").contains("Invalid proto: sctpx"));
        assert!(err("x:80").contains("Invalid hostPort: x"));
        assert!(err("80:x").contains("Invalid containerPort: x"));
        assert!(err("1.2.3:80:80").contains("Invalid ip address: 1.2.3"));
        assert!(err("8000-8002:80-81").contains("Invalid ranges"));
        assert!(err("0").contains("Invalid containerPort"));
    }

    #[test]
    fn printing() {
        let m = |c, h| PortMapping {
            container_port: c,
            proto: Proto::Tcp,
            host_ip: "0.0.0.0".parse().expect("ip"),
            host_port: h,
        };
        assert_eq!(m(80, 49153).to_string(), "80/tcp -> 0.0.0.0:49153");
        assert_eq!(
            ps_column(
                &[m(81, 8001), m(80, 8000)],
                &["80/tcp".into(), "53/udp".into()]
            ),
            "0.0.0.0:8000-8001->80-81/tcp, 53/udp"
        );
        assert_eq!(publish_all(&["80/tcp".into()])[0].host_ports, None);
    }
}
