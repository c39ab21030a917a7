//! `kiln serve`'s `[limits]`: a client over its request rate or its
//! concurrent uploads gets 429 with the spec's `TOO_MANY_REQUESTS` body and
//! a `Retry-After` header; within the limits nothing is refused; health
//! probes are never limited; and `kiln push` against a limited registry
//! retries as told and succeeds. Servers listen on 127.0.0.1 and are
//! stopped when a test ends.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use common::Kiln;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kiln serve` with `limits` as its `[limits]` section; the access log
/// goes to `log`.
fn serve(kiln: &Kiln, limits: &str) -> (Server, String, std::path::PathBuf) {
    let config = kiln.dir.path().join("kiln-registry.toml");
    std::fs::write(&config, format!("[limits]\n{limits}\n")).unwrap();
    let log = kiln.dir.path().join("serve.log");
    let (child, host) = common::serve::listening(
        kiln.cmd()
            .args(["serve", "--addr", "127.0.0.1:0", "--config"])
            .arg(&config)
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap())),
        Some(&log),
    );
    (Server(child), host, log)
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// A 429 as the spec and RFC 6585 describe it.
    fn assert_too_many(&self) {
        assert_eq!(self.status, 429, "{}{}", self.head, self.body);
        let body: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        assert_eq!(
            body["errors"][0]["code"], "TOO_MANY_REQUESTS",
            "{}",
            self.body
        );
        let retry: u64 = self.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    }
}

fn request(host: &str, method: &str, path: &str) -> Answer {
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_answer(&mut s)
}

fn read_answer(s: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

#[test]
fn a_burst_over_the_rate_gets_429_with_retry_after_and_probes_pass() {
    let kiln = Kiln::new();
    let (_server, host, _log) = serve(&kiln, "requests_per_second = 1\nburst = 3");
    // Ten requests at once from one address: the bucket holds three (one
    // more may refill while they run); the rest are refused.
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| s.spawn(|| request(&host, "GET", "/v2/")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert!((3..=4).contains(&ok), "{ok} of 10 served");
    for a in answers.iter().filter(|a| a.status != 200) {
        a.assert_too_many();
    }
    // Health probes and scrapes are not limited, even now.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(request(&host, "GET", path).status, 200, "{path}");
    }
    let metrics = request(&host, "GET", "/metrics").body;
    assert!(metrics.contains("429"), "{metrics}");
    // After Retry-After the client is served again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(request(&host, "GET", "/v2/").status, 200);
}

#[test]
fn within_the_limits_nothing_is_refused() {
    let kiln = Kiln::new();
    let (_server, host, _log) = serve(
        &kiln,
        "requests_per_second = 50\nburst = 50\nmax_concurrent_uploads = 4",
    );
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(request(&host, "GET", "/v2/").status, 200);
                }
            });
        }
    });
    // Four uploads at once: each starts (202).
    let started: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| request(&host, "POST", "/v2/a/blobs/uploads/").status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(started, [202; 4]);
}

#[test]
fn uploads_in_flight_over_the_limit_get_429() {
    let kiln = Kiln::new();
    let (_server, host, _log) = serve(&kiln, "max_concurrent_uploads = 1");
    let start = request(&host, "POST", "/v2/a/blobs/uploads/");
    assert_eq!(start.status, 202, "{}", start.head);
    let location = start.header("location").unwrap();
    let path = location
        .strip_prefix(&format!("http://{host}"))
        .unwrap_or(&location)
        .to_string();
    // An upload in flight: a PATCH whose body has not all arrived.
    let mut slow = TcpStream::connect(&host).unwrap();
    write!(
        slow,
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 8\r\nConnection: close\r\n\r\nhalf"
    )
    .unwrap();
    slow.flush().unwrap();
    // The server has the PATCH once its handler runs; then a second upload
    // from the same address is refused, other requests are not.
    let mut refused = None;
    for _ in 0..50 {
        let a = request(&host, "POST", "/v2/b/blobs/uploads/");
        if a.status == 429 {
            refused = Some(a);
            break;
        }
        assert_eq!(a.status, 202);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let refused = refused.expect("a second upload while one is in flight was not refused");
    refused.assert_too_many();
    assert!(
        refused.body.contains("max_concurrent_uploads"),
        "{}",
        refused.body
    );
    assert_eq!(request(&host, "GET", "/v2/").status, 200);
    // The first upload finishes; uploads are accepted again.
    slow.write_all(b"half").unwrap();
    let done = read_answer(&mut slow);
    assert_eq!(done.status, 202, "{}{}", done.head, done.body);
    assert_eq!(request(&host, "POST", "/v2/b/blobs/uploads/").status, 202);
}

#[test]
fn kiln_push_and_pull_retry_on_429_and_succeed() {
    let kiln = Kiln::new();
    let (server, host, log) = serve(&kiln, "requests_per_second = 4\nburst = 4");
    let k = Kiln::new();
    k.import_busybox("bb", &[("etc/motd", b"limited\n")], &[]);
    let name = format!("{host}/limited/app:1");
    k.ok(&["tag", "bb", &name]);
    k.ok(&["push", &name]);
    let k2 = Kiln::new();
    k2.ok(&["pull", &name]);
    // The pull verified every digest; the image is the one pushed.
    let id = |k: &Kiln| k.ok(&["inspect", "--format", "{{.Id}}", &name]);
    assert_eq!(id(&k2), id(&k));
    drop(server);
    // The server did refuse some of them: the client waited and retried.
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("status=429"), "no request was limited:\n{log}");
}
