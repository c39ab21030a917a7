//! Container networks: the default bridge `kiln0`, a network namespace
//! and veth pair per container, addresses from a locked IPAM file,
//! outbound NAT and DNAT in kiln's own nftables table, `/etc/resolv.conf`
//! and `/etc/hosts` as docker writes them, published-port specs, the
//! host sockets kiln binds for them and the userland proxy.
//!
//! Main types: [`Networks`] (attach, detach, sweep over a [`NetHost`]),
//! [`PortSpec`]/[`PortMapping`] (`-p` parsed and bound), [`Subnet`],
//! [`ipam::State`].
//!
//! How the host is changed, behind the [`NetHost`] trait ([`HostNet`];
//! a fake in [`testing`]): links, addresses, routes and namespaces
//! through rtnetlink, written by kiln itself (`netlink.rs`, `netns.rs`):
//! about ten fixed messages per container, sent without a process run
//! (three runs of `ip` were most of a `run`'s network cost, one of them
//! before the runtime could start; see `netlink.rs` for why no crate).
//! Rules through `nft -f -`: nftables has no maintained pure-Rust netlink
//! writer (the `nftnl`/`rustables` crates bind libnftnl), while `nft -f -`
//! applies a whole table in one atomic transaction, which is what lets
//! kiln rewrite its table from the IPAM state instead of tracking rule
//! handles; it runs only when the table changes (a published port that
//! needs DNAT, a bridge made or removed), once per change. The host's routes are read (a
//! netlink dump, no `ip route` run) only when a bridge is made.
//!
//! NAT: one table, `ip kiln`, rewritten whole under the IPAM lock from
//! the leases (see [`nat`]), so docker's and podman's tables are never
//! touched and a stale rule cannot survive the next change. Published
//! ports: kiln binds the host socket itself, the monitor holds it and
//! proxies loopback and hairpin clients (see [`proxy`]); remote clients
//! are DNATed to the container, their source address kept.
//!
//! FORWARD: forwarded traffic (container to container under
//! `br_netfilter`, outbound, DNATed clients) also passes iptables'
//! `filter FORWARD`, whose policy docker sets to DROP; a drop there is
//! final whatever kiln's table says, so kiln keeps its own chain
//! `KILN-FORWARD` (accepts per bridge) jumped to from FORWARD, made and
//! removed with the bridges, as CNI does with `CNI-FORWARD`. docker's
//! chains are never touched.
//!
//! User networks ([`Networks::create_network`]) have a bridge each and a
//! DNS responder ([`dns`]), one small process per network while containers
//! are on it.

mod bridge;
pub mod dns;
mod error;
pub mod files;
mod host;
pub mod ipam;
pub mod nat;
mod netlink;
mod netns;
pub mod ports;
pub mod proxy;
pub mod testing;
mod user;

pub use bridge::{mac_for, Attachment, Join, Networks, Pending, DEFAULT_BRIDGE, DEFAULT_STATE_DIR};
pub use error::{NetworkError, Result};
pub use host::{netns_path, Endpoint, HostNet, NetHost};
pub use ipam::{Owner, Subnet, UserNetwork};
pub use ports::{parse_publish, publish_all, PortMapping, PortSpec, Proto};
