//! `/etc/resolv.conf` and `/etc/hosts` for a container with a network
//! namespace of its own, as docker writes them.

use std::net::Ipv4Addr;

/// The host's resolv.conf made fit for a namespace: loopback
/// nameservers (a local stub such as systemd-resolved's 127.0.0.53) are
/// unreachable from the container and removed; with none left, Google's
/// public resolvers, as docker does. `dns`/`search` (`--dns`,
/// `--dns-search`) replace the host's.
pub fn resolv_conf(host: &str, dns: &[String], search: &[String]) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let ip = words.next().unwrap_or("");
                let loopback = ip
                    .parse::<std::net::IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false);
                if dns.is_empty() && !loopback {
                    out.push_str(line);
                    out.push('\n');
                    servers += 1;
                }
            }
            Some("search" | "domain") if !search.is_empty() => {}
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for ip in dns {
        out.push_str(&format!("nameserver {ip}\n"));
        servers += 1;
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// docker's `/etc/hosts` for a container on a bridge: localhost lines,
/// `--add-host` entries, then the container's address and hostname.
pub fn hosts(ip: Ipv4Addr, hostname: &str, extra: &[(String, String)]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, addr) in extra {
        out.push_str(&format!("{addr}\t{name}\n"));
    }
    out.push_str(&format!("{ip}\t{hostname}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_replaced() {
        let host = "# generated\nnameserver 127.0.0.53\noptions edns0\nsearch lan\n";
        assert_eq!(
            resolv_conf(host, &[], &[]),
            "# generated\noptions edns0\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let host = "nameserver 10.255.255.53\nnameserver ::1\n";
        assert_eq!(resolv_conf(host, &[], &[]), "nameserver 10.255.255.53\n");
        assert_eq!(
            resolv_conf(host, &["1.1.1.1".into()], &["example.com".into()]),
            "nameserver 1.1.1.1\nsearch example.com\n"
        );
    }

    #[test]
    fn hosts_name_the_container() {
        let h = hosts(
            Ipv4Addr::new(172, 18, 0, 2),
            "abc",
            &[("db".into(), "10.0.0.9".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.9\tdb\n172.18.0.2\tabc\n"), "{h}");
    }
}
