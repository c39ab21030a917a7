//! Container networking end to end (as root): the default `kiln0`
//! bridge, published ports through kiln's host sockets and the userland
//! proxy, `port` and `ps`, outbound traffic to a host address, the files
//! docker writes, and cleanup after a killed monitor. Test traffic goes
//! only to 127.0.0.0/8 and to addresses of the host and of the
//! namespaces kiln makes; nothing leaves the machine.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::Kiln as Store;

/// A store whose containers are removed (forcibly) when the test ends,
/// passed or failed, so no bridge, veth or rule outlives the test.
struct Kiln(Store);

impl std::ops::Deref for Kiln {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.0
    }
}

impl Drop for Kiln {
    fn drop(&mut self) {
        let ids = self.0.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.0.run(&["rm", "-f", id]);
        }
    }
}

/// A store with a busybox image `bb` (EXPOSE 80) and a web root.
fn setup() -> (Kiln, String) {
    let k = Kiln(Store::new());
    k.import_busybox("bb", &[], &["--change", "EXPOSE 80"]);
    let www = k.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from kiln\n").unwrap();
    (k, www.to_str().unwrap().to_string())
}

fn run(k: &Kiln, args: &[&str]) -> (i32, String, String) {
    let out = k.run(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `run -d … bb busybox httpd` serving `www`; the container's id.
fn httpd(k: &Kiln, www: &str, extra: &[&str]) -> String {
    let vol = format!("{www}:/www:ro");
    let mut args = vec!["run", "-d", "-v", &vol];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["bb", "busybox", "httpd", "-f", "-p", "80", "-h", "/www"]);
    k.ok(&args).trim().to_string()
}

/// GET `path` from `addr`: the body of a 200, else `None`.
fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_string())
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn net_state() -> serde_json::Value {
    std::fs::read("/run/kiln/net/state.json")
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Container `id`'s leases in the network state (one per network).
fn leases_of(id: &str) -> Vec<serde_json::Value> {
    net_state()["leases"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with(&format!("{id}/")))
                .map(|(_, v)| v.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn links() -> String {
    let out = std::process::Command::new("ip")
        .args(["-br", "link"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Tests of this binary run in parallel and share the host's `kiln0`;
/// those that check it is gone after their last container take this
/// lock alone, the others share it. (Declared first in a test, the
/// guard is dropped last, after its containers are removed.)
static BRIDGE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    BRIDGE.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    BRIDGE.write().unwrap_or_else(|e| e.into_inner())
}

/// Whether a link of that name exists (`ip link show NAME` succeeds).
fn link_exists(name: &str) -> bool {
    std::process::Command::new("ip")
        .args(["link", "show", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Whether kiln's nft table exists at all.
fn nft_table_exists() -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", "ip", "kiln"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// iptables' FORWARD chain as `iptables -S` prints it.
fn forward_chain() -> String {
    let out = std::process::Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Nothing of the default bridge is left: no `kiln0` link, no rule of
/// it in kiln's table (no table at all when `alone` is the only network
/// user left) and no bridge or lease in the IPAM file.
fn bridge_gone(table_too: bool) {
    assert!(!link_exists("kiln0"), "{}", links());
    assert!(!nft_table().contains("kiln0"), "{}", nft_table());
    let state = net_state();
    assert!(state["bridge"].is_null(), "{state}");
    assert_eq!(
        state["leases"].as_object().map(|m| m.len()),
        Some(0),
        "{state}"
    );
    if table_too {
        assert!(!nft_table_exists(), "{}", nft_table());
        assert!(
            !forward_chain().contains("KILN-FORWARD"),
            "{}",
            forward_chain()
        );
        assert_eq!(
            state["networks"].as_object().map(|m| m.len()),
            Some(0),
            "{state}"
        );
    }
}

fn nft_table() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", "kiln"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The program name of container `name`'s monitor (its init's parent),
/// once it runs.
fn monitor_of(k: &Kiln, name: &str) -> String {
    wait_for("the container to run", || {
        let pid = k.inspect(name)["State"]["Pid"]
            .as_i64()
            .filter(|p| *p > 0)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:"))?.trim();
        let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).ok()?;
        Some(comm.trim().to_string())
    })
}

#[test]
fn a_published_port_serves_across_restarts_of_its_process() {
    let _bridge = shared();
    let (k, www) = setup();
    // The server lives two seconds; the restart policy starts it again.
    // The lean monitor hands the port back to kiln at each end and gets
    // it again with the restart.
    let vol = format!("{www}:/www:ro");
    k.ok(&[
        "run",
        "-d",
        "--name",
        "blinking",
        "--restart",
        "always",
        "-p",
        "127.0.0.1:18082:80",
        "-v",
        &vol,
        "bb",
        "busybox",
        "sh",
        "-c",
        "busybox httpd -p 80 -h /www; busybox sleep 2",
    ]);
    let restarted = || k.inspect("blinking")["RestartCount"].as_i64().unwrap_or(0);
    for round in 0..2 {
        wait_for("a restart", || (restarted() > round).then_some(()));
        let body = wait_for("the port after a restart", || {
            get("127.0.0.1:18082", "/index.html")
        });
        assert_eq!(body, "hello from kiln\n");
        assert_eq!(monitor_of(&k, "blinking"), "kiln-monitor");
    }
    k.ok(&["rm", "-f", "blinking"]);
    wait_for("the port to be free", || {
        TcpListener::bind("127.0.0.1:18082").ok()
    });
}

#[test]
fn a_published_port_serves_until_the_container_goes() {
    let _bridge = shared();
    let (k, www) = setup();
    let id = httpd(&k, &www, &["--name", "web", "-p", "127.0.0.1:18080:80"]);
    let body = wait_for("the published port", || {
        get("127.0.0.1:18080", "/index.html")
    });
    assert_eq!(body, "hello from kiln\n");

    // docker's lines and column.
    assert_eq!(k.ok(&["port", "web"]), "80/tcp -> 127.0.0.1:18080\n");
    assert_eq!(k.ok(&["port", "web", "80"]), "127.0.0.1:18080\n");
    let ps = k.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps.trim(), "127.0.0.1:18080->80/tcp");

    // 200 sequential requests through the userland proxy, all answered.
    for i in 0..200 {
        assert!(
            get("127.0.0.1:18080", "/index.html").is_some(),
            "request {i}"
        );
    }

    // Relayed by the lean monitor, not by kiln's full one.
    assert_eq!(monitor_of(&k, "web"), "kiln-monitor");

    // The same port again: docker's message, exit 125, nothing started.
    let vol = format!("{www}:/www:ro");
    let (code, _, err) = run(
        &k,
        &[
            "run",
            "-d",
            "--name",
            "web2",
            "-p",
            "127.0.0.1:18080:80",
            "-v",
            &vol,
            "bb",
            "true",
        ],
    );
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("Bind for 127.0.0.1:18080 failed: port is already allocated"),
        "{err}"
    );
    assert_eq!(
        k.ok(&[
            "ps",
            "-a",
            "--filter",
            "name=web2",
            "--format",
            "{{.State}}"
        ])
        .trim(),
        "created"
    );

    // The container's address answers directly too, from the host.
    let state = net_state();
    let ip = state["leases"][format!("{id}/bridge")]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        get(&format!("{ip}:80"), "/index.html").as_deref(),
        Some("hello from kiln\n")
    );

    k.ok(&["rm", "-f", "web"]);
    wait_for("the port to be free", || {
        TcpListener::bind("127.0.0.1:18080").ok()
    });
    assert!(leases_of(&id).is_empty());
    assert!(!links().contains(&format!("kv{}", &id[..12])));
}

#[test]
fn random_host_ports_for_p_and_publish_all() {
    let _bridge = shared();
    let (k, www) = setup();
    let (lo, hi) = {
        let r = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let mut w = r.split_whitespace().map(|p| p.parse::<u16>().unwrap());
        (w.next().unwrap(), w.next().unwrap())
    };
    for flags in [&["-p", "80"][..], &["-P"][..]] {
        let id = httpd(&k, &www, flags);
        let line = k.ok(&["port", &id]);
        let (head, addr) = line.trim().split_once(" -> ").unwrap();
        assert_eq!(head, "80/tcp", "{flags:?}: {line}");
        let port: u16 = addr.strip_prefix("0.0.0.0:").unwrap().parse().unwrap();
        assert!(
            (lo..=hi).contains(&port),
            "{flags:?}: {port} outside {lo}-{hi}"
        );
        let local = format!("127.0.0.1:{port}");
        let body = wait_for("the random port", || get(&local, "/index.html"));
        assert_eq!(body, "hello from kiln\n");
        assert!(k
            .ok(&[
                "ps",
                "--format",
                "{{.Ports}}",
                "--filter",
                &format!("id={id}")
            ])
            .contains(&format!("0.0.0.0:{port}->80/tcp")));
        k.ok(&["rm", "-f", &id]);
    }
}

#[test]
fn a_container_on_the_bridge_reaches_the_host_and_gets_dockers_files() {
    let _bridge = shared();
    let (k, _) = setup();
    // A server on every host address; the container asks the host's
    // global address (routed to the host itself: nothing leaves it).
    let server = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in server.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nfrom host");
        }
    });
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&out.stdout).into_owned();
    let host_ip = addrs
        .lines()
        .filter(|l| !l.contains("kiln") && !l.contains("docker") && !l.contains("cni"))
        .find_map(|l| l.split_whitespace().nth(3))
        .and_then(|a| a.split('/').next())
        .expect("a global IPv4 address on the host")
        .to_string();
    let url = format!("http://{host_ip}:{port}/");
    let out = k.ok(&[
        "run", "--rm", "--name", "curious", "--add-host", "db:10.9.8.7", "--dns-search", "example.test",
        "bb", "sh", "-c",
        &format!("busybox wget -qO- {url}; echo; cat /etc/hosts /etc/resolv.conf; busybox ip -4 -o addr show eth0; busybox ip route"),
    ]);
    assert!(out.starts_with("from host\n"), "{out}");
    assert!(out.contains("127.0.0.1\tlocalhost\n"), "{out}");
    assert!(out.contains("10.9.8.7\tdb\n"), "{out}");
    assert!(out.contains("search example.test\n"), "{out}");
    assert!(!out.contains("nameserver 127."), "{out}");
    assert!(out.contains("default via "), "{out}");
    // The hosts file names the container by its address on the bridge.
    let ip = out
        .lines()
        .find(|l| l.contains("eth0") && l.contains("inet "))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|a| a.split('/').next())
        .unwrap();
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{ip}\t"))),
        "{out}"
    );
    // --network none has only loopback.
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn a_killed_monitor_leaves_nothing_after_the_next_command() {
    let _bridge = alone();
    let (k, www) = setup();
    let nets = Nets(&k, vec!["killnet"]);
    let net_id = k.ok(&["network", "create", "--subnet", "10.123.45.0/24", "killnet"]);
    let id = httpd(
        &k,
        &www,
        &[
            "-p",
            "127.0.0.1:18081:80",
            "--network",
            "killnet",
            "--ip",
            "10.123.45.67",
            "--mac-address",
            "02:00:00:00:45:67",
        ],
    );
    wait_for("the published port", || {
        get("127.0.0.1:18081", "/index.html")
    });
    assert!(nft_table().contains("masquerade"));
    assert_eq!(
        net_state()["leases"][format!("{id}/killnet")]["ip"],
        "10.123.45.67"
    );
    // On a second network too, connected while it runs.
    k.ok(&["network", "connect", "bridge", &id]);
    assert_eq!(leases_of(&id).len(), 2);
    assert!(links().contains(&format!("k1{}", &id[..12])), "{}", links());
    let responder = net_state()["networks"]["killnet"]["dns"]["pid"]
        .as_i64()
        .expect("killnet's DNS responder");
    let mac = std::process::Command::new("ip")
        .args([
            "-n",
            &format!("kiln-{}", &id[..12]),
            "-br",
            "link",
            "show",
            "eth0",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&mac.stdout).contains("02:00:00:00:45:67"));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(k.root.join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let monitor = state["monitor"][0].as_i64().unwrap();
    let ip = net_state()["leases"][format!("{id}/killnet")]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    wait_for("the monitor to die", || {
        (!std::path::Path::new(&format!("/proc/{monitor}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    let st = k.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("id={id}"),
        "--format",
        "{{.State}}",
    ]);
    assert_eq!(st.trim(), "exited");
    assert!(
        !links().contains(&format!("kv{}", &id[..12])),
        "{}",
        links()
    );
    assert!(
        !links().contains(&format!("k1{}", &id[..12])),
        "{}",
        links()
    );
    assert!(leases_of(&id).is_empty());
    assert!(!nft_table().contains(&ip), "{}", nft_table());
    // The network's DNS responder saw it empty and went.
    wait_for("killnet's DNS responder to exit", || {
        (!std::path::Path::new(&format!("/proc/{responder}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{responder}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    assert!(TcpListener::bind("127.0.0.1:18081").is_ok());
    // It was the default bridge's last container: the sweep `ps` ran
    // took the bridge and its rules too; killnet keeps its bridge, as a
    // docker network does until removed.
    bridge_gone(false);
    assert!(link_exists(&format!("kb-{}", &net_id[..12])), "{}", links());
    // Nothing holds the network any more.
    k.ok(&["network", "rm", "killnet"]);
    drop(nets);
    assert!(
        !links().contains(&format!("kb-{}", &net_id[..12])),
        "{}",
        links()
    );
    bridge_gone(true);

    // The next `run -p` makes the bridge again and serves; `rm -f` of
    // every container on it (one with a port, one without) takes it away.
    let web = httpd(&k, &www, &["-p", "127.0.0.1:18081:80"]);
    let idle = k.ok(&["run", "-d", "bb", "busybox", "sleep", "60"]);
    assert!(link_exists("kiln0"), "{}", links());
    assert!(nft_table().contains("\"kiln0\""), "{}", nft_table());
    let body = wait_for("the published port", || {
        get("127.0.0.1:18081", "/index.html")
    });
    assert_eq!(body, "hello from kiln\n");
    k.ok(&["rm", "-f", &web]);
    assert!(link_exists("kiln0"), "still used: {}", links());
    k.ok(&["rm", "-f", idle.trim()]);
    bridge_gone(true);
    assert!(TcpListener::bind("127.0.0.1:18081").is_ok());
}

#[test]
fn parallel_containers_get_distinct_addresses() {
    let _bridge = shared();
    let k = std::sync::Arc::new(setup().0);
    // Named: generated names can collide under parallel creates (a
    // known race of name generation, not of networking).
    let ids: Vec<String> = (0..20)
        .map(|i| {
            let k = k.clone();
            std::thread::spawn(move || {
                let name = format!("par{i}");
                k.ok(&["run", "-d", "--name", &name, "bb", "busybox", "sleep", "60"])
                    .trim()
                    .to_string()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let state = net_state();
    let ips: std::collections::BTreeSet<String> = ids
        .iter()
        .map(|id| {
            state["leases"][format!("{id}/bridge")]["ip"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ips.len(), 20, "{ips:?}");
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids);
    k.ok(&rm);
}

/// The host's global IPv4 address (not a bridge's): routed to the host
/// itself from a container, so nothing leaves the machine.
fn host_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            !l.contains("kiln") && !l.contains("docker") && !l.contains("cni") && !l.contains("kb-")
        })
        .find_map(|l| l.split_whitespace().nth(3))
        .and_then(|a| a.split('/').next())
        .expect("a global IPv4 address on the host")
        .to_string()
}

/// Removes the test's networks even when it fails.
struct Nets<'a>(&'a Kiln, Vec<&'static str>);

impl Drop for Nets<'_> {
    fn drop(&mut self) {
        let ids = self.0.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.0.run(&["rm", "-f", id]);
        }
        for n in &self.1 {
            let _ = self.0.run(&["network", "rm", n]);
        }
    }
}

#[test]
fn user_networks_resolve_names_and_internal_ones_have_no_way_out() {
    let _bridge = shared();
    let (k, www) = setup();
    let _nets = Nets(&k, vec!["appnet", "innernet"]);
    let id = k.ok(&["network", "create", "appnet"]).trim().to_string();
    assert_eq!(id.len(), 64);
    let (code, _, err) = run(&k, &["network", "create", "appnet"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("network with name appnet already exists"),
        "{err}"
    );
    assert!(k.ok(&["network", "ls"]).contains(" appnet "));
    httpd(
        &k,
        &www,
        &[
            "--name",
            "srv",
            "--network",
            "appnet",
            "--network-alias",
            "web.alias",
        ],
    );
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "bb",
        "sh",
        "-c",
        "busybox wget -qO- http://srv/index.html && busybox wget -qO- http://web.alias/index.html",
    ]);
    assert_eq!(out, "hello from kiln\nhello from kiln\n");
    // The same from a process `exec`'d into a running member.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "appnet",
        "bb",
        "busybox",
        "sleep",
        "120",
    ]);
    let out = k.ok(&[
        "exec",
        "cli",
        "busybox",
        "wget",
        "-qO-",
        "http://srv/index.html",
    ]);
    assert_eq!(out, "hello from kiln\n");
    k.ok(&["rm", "-f", "cli"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["network", "inspect", "appnet"])).unwrap();
    assert_eq!(inspect[0]["Containers"].as_object().unwrap().len(), 1);
    let (code, _, err) = run(&k, &["network", "rm", "appnet"]);
    assert_ne!(code, 0);
    assert!(err.contains("has active endpoints"), "{err}");

    // The default bridge has no name resolution: nothing answers on its
    // gateway, and its resolv.conf is the host's.
    let out = k.ok(&[
        "run", "--rm", "bb", "sh", "-c",
        "gw=$(busybox ip route | busybox awk '/default/ {print $3}'); busybox nslookup srv $gw >/dev/null 2>&1; echo nslookup=$?; cat /etc/resolv.conf",
    ]);
    assert!(out.starts_with("nslookup=1\n"), "{out}");
    assert!(!out.contains("nameserver 172."), "{out}");

    // --internal: no default route, the host unreachable.
    k.ok(&["network", "create", "--internal", "innernet"]);
    let url = format!("http://{}:1/", host_address());
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        "innernet",
        "bb",
        "sh",
        "-c",
        // Not `wget -T`: Debian's busybox-static 1.35 crashes on it (a
        // NULL store in getopt32, on the host too), and a crash is no
        // evidence of "no way out". `timeout` bounds it instead.
        &format!("busybox ip route; busybox timeout 5 busybox wget -qO- {url} 2>&1; echo wget=$?"),
    ]);
    assert!(!out.contains("default"), "{out}");
    // wget's own failure (exit 1: no route to the host), not a signal.
    assert!(out.contains("wget=1"), "{out}");
    assert!(out.contains("unreachable"), "{out}");

    k.ok(&["rm", "-f", "srv"]);
    assert_eq!(
        k.ok(&["network", "rm", "appnet", "innernet"]),
        "appnet\ninnernet\n"
    );
    assert!(!k.ok(&["network", "ls"]).contains("appnet"));
    let links = links();
    assert!(!links.contains(&format!("kb-{}", &id[..12])), "{links}");
}

#[test]
fn remote_clients_are_dnated_with_their_address_kept() {
    let _bridge = shared();
    let (k, www) = setup();
    let _nets = Nets(&k, vec!["clients"]);
    // The server on the default bridge publishes on every address; a
    // client on another network asks the host's address, which is the
    // path a remote client takes (prerouting DNAT, forwarded).
    let vol = format!("{www}:/www:ro");
    let id = k
        .ok(&[
            "run", "-d", "-p", "18090:80", "-v", &vol, "bb", "busybox", "httpd", "-f", "-v", "-p",
            "80", "-h", "/www",
        ])
        .trim()
        .to_string();
    // kiln's table holds the DNAT rule while the container runs.
    assert!(
        nft_table().contains("dport 18090 dnat to"),
        "{}",
        nft_table()
    );
    wait_for("the proxy", || get("127.0.0.1:18090", "/index.html"));
    k.ok(&["network", "create", "clients"]);
    let url = format!("http://{}:18090/index.html", host_address());
    let out = k.ok(&[
        "run", "--rm", "--network", "clients", "bb", "sh", "-c",
        &format!("ok=0; for i in $(busybox seq 200); do busybox wget -qO- {url} >/dev/null && ok=$((ok+1)); done; echo ok=$ok; busybox ip -4 -o addr show eth0"),
    ]);
    assert!(out.starts_with("ok=200\n"), "{out}");
    let client_ip = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|a| a.split('/').next())
        .unwrap()
        .to_string();
    // The ports' path is DNAT, not the proxy: busybox httpd -v logs the
    // client's own address.
    let out = k.run(&["logs", &id]);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let from_client = logs.matches(&format!("{client_ip}]:")).count();
    assert!(
        from_client >= 200,
        "{from_client} requests logged from {client_ip}: {logs}"
    );
    k.ok(&["rm", "-f", &id]);
}

#[test]
fn network_container_shares_the_namespace() {
    let _bridge = shared();
    let (k, www) = setup();
    httpd(&k, &www, &["--name", "host-of-ns"]);
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        "container:host-of-ns",
        "bb",
        "busybox",
        "wget",
        "-qO-",
        "http://127.0.0.1:80/index.html",
    ]);
    assert_eq!(out, "hello from kiln\n");
    let (code, _, err) = run(
        &k,
        &[
            "run",
            "--rm",
            "--network",
            "container:host-of-ns",
            "-p",
            "80",
            "bb",
            "true",
        ],
    );
    assert_eq!(code, 125);
    assert!(err.contains("conflicting options"), "{err}");
}

/// `kiln exec NAME sh -c SCRIPT`'s output.
fn sh(k: &Kiln, name: &str, script: &str) -> String {
    k.ok(&["exec", name, "sh", "-c", script])
}

#[test]
fn network_connect_and_disconnect_as_docker_does() {
    let _bridge = shared();
    let (k, www) = setup();
    let _nets = Nets(&k, vec!["frontnet", "backnet"]);
    k.ok(&[
        "network",
        "create",
        "--subnet",
        "10.123.46.0/24",
        "frontnet",
    ]);
    k.ok(&["network", "create", "--subnet", "10.123.47.0/24", "backnet"]);
    let srv = httpd(&k, &www, &["--name", "srv", "--network", "backnet"]);
    let cli = k
        .ok(&[
            "run",
            "-d",
            "--name",
            "cli",
            "--network",
            "frontnet",
            "bb",
            "busybox",
            "sleep",
            "120",
        ])
        .trim()
        .to_string();
    // How many lines of srv's page `wget` under `exec` gets back.
    let fetch = "busybox timeout 5 busybox wget -qO- http://srv/index.html 2>/dev/null | busybox grep -c 'hello from kiln'; true";
    let out = sh(&k, "cli", fetch);
    assert_eq!(out.trim(), "0", "not on backnet yet");

    // Connected while it runs: a second interface at once, and the
    // names of both its networks resolve.
    k.ok(&["network", "connect", "--alias", "api", "backnet", "cli"]);
    let addrs = sh(&k, "cli", "busybox ip -4 -o addr");
    assert!(
        addrs.contains("eth0") && addrs.contains("10.123.46."),
        "{addrs}"
    );
    assert!(
        addrs.contains("eth1") && addrs.contains("10.123.47."),
        "{addrs}"
    );
    assert_eq!(sh(&k, "cli", fetch).trim(), "1");
    assert!(
        sh(&k, "cli", "cat /etc/resolv.conf").contains("nameserver 10.123.46.1"),
        "asks its first user network's responder"
    );
    // srv, on backnet only, resolves cli's alias there.
    let cli_back = wait_for("cli's backnet lease", || {
        leases_of(&cli)
            .into_iter()
            .find(|l| l["network"] == "backnet")
            .and_then(|l| l["ip"].as_str().map(str::to_string))
    });
    let looked = sh(&k, "srv", "busybox nslookup api 2>&1; true");
    assert!(looked.contains(&cli_back), "{looked}");

    // docker's message for a second connect of a running container.
    let (code, _, err) = run(&k, &["network", "connect", "backnet", "cli"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("endpoint with name cli already exists in network backnet"),
        "{err}"
    );

    // inspect shows both networks; network inspect both containers.
    let doc: serde_json::Value = serde_json::from_str(&k.ok(&["inspect", "cli"])).unwrap();
    let nets = &doc[0]["NetworkSettings"]["Networks"];
    assert!(nets["frontnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .starts_with("10.123.46."));
    assert_eq!(nets["backnet"]["IPAddress"], cli_back.as_str());
    assert_eq!(nets["backnet"]["Aliases"][0], "api");
    let doc: serde_json::Value =
        serde_json::from_str(&k.ok(&["network", "inspect", "backnet"])).unwrap();
    let on = doc[0]["Containers"].as_object().unwrap();
    assert_eq!(on.len(), 2, "{on:?}");
    assert_eq!(on[&cli]["Name"], "cli");
    assert_eq!(on[&srv]["Name"], "srv");

    // Disconnected: the interface goes at once; a second time is docker's error.
    k.ok(&["network", "disconnect", "backnet", "cli"]);
    assert!(!sh(&k, "cli", "busybox ip -4 -o addr").contains("10.123.47."));
    let out = sh(&k, "cli", fetch);
    assert_eq!(out.trim(), "0", "off backnet");
    let (code, _, err) = run(&k, &["network", "disconnect", "backnet", "cli"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "container {cli} is not connected to the network backnet"
        )),
        "{err}"
    );
    assert_eq!(leases_of(&cli).len(), 1);

    // Leaving its first network: the default route moves to the next.
    k.ok(&["network", "connect", "bridge", "cli"]);
    k.ok(&["network", "disconnect", "frontnet", "cli"]);
    let route = sh(&k, "cli", "busybox ip route");
    let bridge_gw = wait_for("cli's bridge lease", || {
        leases_of(&cli)
            .into_iter()
            .find(|l| l["network"] == "bridge")
            .and_then(|l| l["ip"].as_str().map(str::to_string))
    });
    let prefix = &bridge_gw[..bridge_gw.rfind('.').unwrap()];
    assert!(route.contains(&format!("default via {prefix}")), "{route}");

    // A stopped container gets the network at its next start.
    k.ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "frontnet",
        "bb",
        "busybox",
        "sleep",
        "120",
    ]);
    k.ok(&["network", "connect", "backnet", "later"]);
    k.ok(&["start", "later"]);
    let addrs = sh(&k, "later", "busybox ip -4 -o addr");
    assert!(
        addrs.contains("10.123.46.") && addrs.contains("10.123.47."),
        "{addrs}"
    );
    assert_eq!(sh(&k, "later", fetch).trim(), "1");

    // docker's refusals.
    k.ok(&[
        "create",
        "--name",
        "lonely",
        "--network",
        "none",
        "bb",
        "true",
    ]);
    let (code, _, err) = run(&k, &["network", "connect", "backnet", "lonely"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("one of the networks in private (none) mode"),
        "{err}"
    );
    let (code, _, err) = run(&k, &["network", "connect", "nonet", "cli"]);
    assert_ne!(code, 0);
    assert!(err.contains("network nonet not found"), "{err}");

    // Nothing of them left after rm -f.
    let later = k
        .ok(&["inspect", "-f", "{{.Id}}", "later"])
        .trim()
        .to_string();
    k.ok(&["rm", "-f", "cli", "later", "srv", "lonely"]);
    for id in [&cli, &later, &srv] {
        assert!(leases_of(id).is_empty(), "{id}");
        let links = links();
        assert!(!links.contains(&id[..12]), "{links}");
        assert!(!std::path::Path::new(&format!("/run/netns/kiln-{}", &id[..12])).exists());
    }
    wait_for("the responders to go", || {
        let st = net_state();
        (st["networks"]["frontnet"]["dns"].is_null() && st["networks"]["backnet"]["dns"].is_null())
            .then_some(())
    });
}
