//! A small rtnetlink writer: the handful of messages a container's end
//! of the bridge needs (a veth pair with its peer born in the
//! container's namespace, an address, a link up, a default route, a
//! link removed), sent on a `NETLINK_ROUTE` socket and answered by the
//! kernel's ACK; and one dump, the host's IPv4 route destinations, read
//! when a bridge is made (it must overlap none).
//!
//! Why not `ip`: each run of it was a fork and exec of a dynamically
//! linked program (about 5 ms each, more under load), three of them on
//! every `run`, one before the runtime could even start. Why not a
//! crate: `rtnetlink` brings tokio and futures; `netlink-packet-route`
//! (in the tree through youki's libcontainer) is a typed model of every
//! attribute whose names change between its releases and would tie this
//! crate to libcontainer's pin, for six fixed messages whose only reply
//! kiln reads is an error code and one interface index.
//!
//! A socket opened inside a network namespace stays bound to it
//! ([`Socket::open_in`] opens it on a short-lived thread that joined the
//! namespace), so the container's side is configured without entering
//! the namespace from kiln's own threads.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::net;

// From <linux/netlink.h> and <linux/rtnetlink.h>.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTA_DST: u16 = 1;
// <linux/if_link.h>, <linux/veth.h>, <linux/if_addr.h>.
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 0x1;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// One request being written: the netlink header (its length filled in
/// at the end), the fixed family header, then attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set in send
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
        buf.extend_from_slice(fixed);
        Msg { buf }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Msg {
        let len = u16::try_from(4 + data.len()).expect("netlink attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// A NUL-terminated string attribute (interface names, link kinds).
    fn attr_str(&mut self, ty: u16, s: &str) -> &mut Msg {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(ty, &data)
    }

    fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// Opens a nested attribute; [`end`](Self::end) closes it.
    fn begin(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = u16::try_from(self.buf.len() - at).expect("nested attribute under 64 KiB");
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Writes raw bytes (a nested family header).
    fn raw(&mut self, data: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }
}

/// `struct ifinfomsg`: family, type, index, flags and the flags' mask.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// A MAC written `02:42:ac:11:00:02`.
fn parse_mac(mac: &str) -> io::Result<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for byte in &mut out {
        *byte = parts
            .next()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .ok_or_else(|| invalid(format!("{mac:?} is not a MAC address")))?;
    }
    if parts.next().is_some() {
        return Err(invalid(format!("{mac:?} is not a MAC address")));
    }
    Ok(out)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// A `NETLINK_ROUTE` socket in one network namespace.
pub(crate) struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// In kiln's own (the host's) namespace.
    pub(crate) fn open() -> io::Result<Socket> {
        let fd = net::socket_with(
            net::AddressFamily::NETLINK,
            net::SocketType::RAW,
            net::SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE
        )?;
        Ok(Socket { fd, seq: 0 })
    }

    /// In the namespace mounted at `netns`: opened on a thread that joins
    /// it and ends, so no thread of kiln's stays in a container's
    /// namespace.
    pub(crate) fn open_in(netns: &Path) -> io::Result<Socket> {
        let ns = File::open(netns)?;
        std::thread::scope(|s| {
            s.spawn(|| {
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                Socket::open()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("netlink thread panicked")))
        })
    }

    /// Sends `msg` and reads until its ACK; the payloads of the replies
    /// before it (a GET's answer). A kernel error comes back as its errno.
    fn request(&mut self, mut msg: Msg) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len =
            u32::try_from(msg.buf.len()).map_err(|_| invalid("netlink message too long".into()))?;
        msg.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        msg.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        net::send(&self.fd, &msg.buf, net::SendFlags::empty())?;
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match net::recv(&self.fd, &mut buf[..], net::RecvFlags::empty()) {
                Ok((_, n)) => n.min(buf.len()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let rest = &buf[off..n];
                let word =
                    |at: usize| u32::from_ne_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
                let mlen = word(0) as usize;
                let ty = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
                if mlen < NLMSG_HDRLEN || mlen > rest.len() {
                    return Err(io::Error::other("truncated netlink reply"));
                }
                let body = &rest[NLMSG_HDRLEN..mlen];
                if word(8) == seq {
                    // A dump ends with DONE (its body an errno), not an ACK.
                    if ty == NLMSG_DONE {
                        let code = body
                            .get(0..4)
                            .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                        return if code < 0 {
                            Err(io::Error::from_raw_os_error(-code))
                        } else {
                            Ok(replies)
                        };
                    }
                    if ty == NLMSG_ERROR {
                        let code = body
                            .get(0..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                            .ok_or_else(|| io::Error::other("short netlink error"))?;
                        return if code == 0 {
                            Ok(replies)
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    replies.push(body.to_vec());
                }
                off += (mlen + 3) & !3;
            }
        }
    }

    /// The index of link `name`, if there is one.
    pub(crate) fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut m = Msg::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        match self.request(m) {
            Ok(replies) => Ok(replies.first().and_then(|r| {
                r.get(4..8)
                    .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
            })),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NODEV.raw_os_error()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A veth pair in one message: `host` on this socket's side, up and a
    /// port of bridge `master`; `peer` (with `mac`) made directly in the
    /// namespace open at `peer_netns`, left down.
    pub(crate) fn add_veth(
        &mut self,
        host: &str,
        master: u32,
        peer: &str,
        mac: &str,
        peer_netns: &File,
    ) -> io::Result<()> {
        let mac = parse_mac(mac)?;
        let ns_fd = u32::try_from(peer_netns.as_raw_fd()).map_err(|_| invalid("bad fd".into()))?;
        let mut m = Msg::new(
            RTM_NEWLINK,
            NLM_F_CREATE | NLM_F_EXCL,
            &ifinfomsg(0, IFF_UP, IFF_UP),
        );
        m.attr_str(IFLA_IFNAME, host).attr_u32(IFLA_MASTER, master);
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin(IFLA_INFO_DATA);
        let p = m.begin(VETH_INFO_PEER);
        m.raw(&ifinfomsg(0, 0, 0))
            .attr_str(IFLA_IFNAME, peer)
            .attr(IFLA_ADDRESS, &mac)
            .attr_u32(IFLA_NET_NS_FD, ns_fd);
        m.end(p);
        m.end(data);
        m.end(info);
        self.request(m).map(drop)
    }

    /// A bridge with a fixed MAC, down.
    pub(crate) fn add_bridge(&mut self, name: &str, mac: &str) -> io::Result<()> {
        let mac = parse_mac(mac)?;
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name).attr(IFLA_ADDRESS, &mac);
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end(info);
        self.request(m).map(drop)
    }

    pub(crate) fn set_up(&mut self, index: u32) -> io::Result<()> {
        let m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(index, IFF_UP, IFF_UP));
        self.request(m).map(drop)
    }

    /// `ip addr add IP/PREFIX dev INDEX`.
    pub(crate) fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut fixed = [0u8; 8];
        fixed[0] = AF_INET;
        fixed[1] = prefix;
        fixed[4..8].copy_from_slice(&index.to_ne_bytes());
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        m.attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets());
        self.request(m).map(drop)
    }

    /// The default route via `gateway`: added, or put in place of the
    /// one there (`replace`).
    pub(crate) fn default_route(&mut self, gateway: Ipv4Addr, replace: bool) -> io::Result<()> {
        let fixed = [
            AF_INET,
            0, // destination prefix: the default route
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        let flags = NLM_F_CREATE | if replace { NLM_F_REPLACE } else { NLM_F_EXCL };
        let mut m = Msg::new(RTM_NEWROUTE, flags, &fixed);
        m.attr(RTA_GATEWAY, &gateway.octets());
        self.request(m).map(drop)
    }

    /// The destinations of the host's IPv4 routes in every table, what
    /// `ip -4 route show table all` lists: (address, prefix length);
    /// default routes (no destination) left out.
    pub(crate) fn ipv4_routes(&mut self) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        // An rtmsg asking for nothing but the family: every table.
        let fixed = [AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let replies = self.request(Msg::new(RTM_GETROUTE, NLM_F_DUMP, &fixed))?;
        Ok(replies
            .iter()
            .filter_map(|r| route_destination(r))
            .collect())
    }

    /// Removes link `name`; whether it was there.
    pub(crate) fn delete_link(&mut self, name: &str) -> io::Result<bool> {
        let mut m = Msg::new(RTM_DELLINK, 0, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        match self.request(m) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NODEV.raw_os_error()) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// A route's destination from an RTM_NEWROUTE body: the rtmsg (family,
/// destination prefix length, … 12 bytes), then attributes.
fn route_destination(r: &[u8]) -> Option<(Ipv4Addr, u8)> {
    let (&family, &prefix) = (r.first()?, r.get(1)?);
    if family != AF_INET {
        return None;
    }
    let mut off = 12;
    while off + 4 <= r.len() {
        let len = usize::from(u16::from_ne_bytes([r[off], r[off + 1]]));
        let ty = u16::from_ne_bytes([r[off + 2], r[off + 3]]);
        if len < 4 || off + len > r.len() {
            return None;
        }
        if ty == RTA_DST && len == 8 {
            let a: [u8; 4] = r[off + 4..off + 8].try_into().ok()?;
            return Some((Ipv4Addr::from(a), prefix));
        }
        off += (len + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_measured() {
        let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(7, IFF_UP, IFF_UP));
        m.attr_str(IFLA_IFNAME, "kv1");
        let at = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.end(at);
        let b = &m.buf;
        assert_eq!(b.len() % 4, 0);
        // Header, ifinfomsg, then "kv1\0" (8 bytes with its header).
        assert_eq!(&b[32..34], &8u16.to_ne_bytes());
        assert_eq!(&b[36..40], b"kv1\0");
        // The nest holds its own header and "veth\0" padded to 12.
        assert_eq!(&b[40..42], &(4u16 + 12).to_ne_bytes());
        assert_eq!(b.len(), 40 + 16);
        assert_eq!(&b[20..24], &7u32.to_ne_bytes());
    }

    #[test]
    fn route_destinations_are_read_from_the_attributes() {
        // 10.1.0.0/16 in table main: rtmsg, RTA_TABLE (u32), RTA_DST.
        let mut r = vec![
            AF_INET,
            16,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            0,
            RTN_UNICAST,
        ];
        r.extend_from_slice(&0u32.to_ne_bytes());
        r.extend_from_slice(&8u16.to_ne_bytes());
        r.extend_from_slice(&15u16.to_ne_bytes());
        r.extend_from_slice(&254u32.to_ne_bytes());
        r.extend_from_slice(&8u16.to_ne_bytes());
        r.extend_from_slice(&RTA_DST.to_ne_bytes());
        r.extend_from_slice(&[10, 1, 0, 0]);
        assert_eq!(
            route_destination(&r),
            Some((Ipv4Addr::new(10, 1, 0, 0), 16))
        );
        // A default route has no destination; a truncated one is skipped.
        assert_eq!(route_destination(&r[..20]), None);
        assert_eq!(route_destination(&r[..26]), None);
        r[0] = 10; // AF_INET6
        assert_eq!(route_destination(&r), None);
    }

    #[test]
    fn macs_are_parsed_strictly() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("02:42:ac:11:00").is_err());
        assert!(parse_mac("02:42:ac:11:00:02:03").is_err());
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
    }
}
