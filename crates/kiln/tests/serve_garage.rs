//! Real `kiln serve` processes as replicas of one registry in a Garage
//! bucket (a 3-node cluster on 127.0.0.1, started by the test; `garage`
//! must be installed, see `scripts/setup.sh`), killed with SIGKILL:
//!
//! - right after a `kiln push` through it: another replica serves the tag;
//! - in the middle of a `kiln push`: the push fails, nothing of it is
//!   visible, and pushing again through another replica works;
//! - in the middle of a chunk of a hand-driven upload: another replica
//!   reports where the upload stands, the client resumes there and
//!   finishes, and the dead request's stale `Location` gets a clean 4xx.
//!
//! Every tag pushed is then pulled through a replica on another node and
//! verified, every blob in the bucket hashes to its name, and a replica
//! collecting garbage removes what the killed pushes left (their uploads,
//! their multipart uploads in Garage, blobs no manifest names).
#![allow(clippy::unwrap_used)]

#[path = "../../kiln-registry/tests/garage/cluster.rs"]
mod cluster;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cluster::Cluster;
use common::{sha256_digest, Kiln};
use kiln_registry::Storage;

/// A `kiln serve --storage s3://…` process on Garage node `node`.
struct Replica {
    child: Child,
    host: String,
}

impl Replica {
    fn start(kiln: &Kiln, cluster: &Cluster, node: usize, name: &str, extra: &[&str]) -> Replica {
        let log = kiln.path(&format!("{name}.log"));
        let (child, host) = common::serve::listening(
            kiln.cmd()
                .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "off"])
                .args(["--storage", &cluster.url(node, "reg")])
                .arg("--upload-secret-file")
                .arg(kiln.path("upload-secret"))
                .args(extra)
                .env("AWS_ACCESS_KEY_ID", &cluster.key_id)
                .env("AWS_SECRET_ACCESS_KEY", &cluster.secret)
                .stderr(std::fs::File::create(&log).unwrap()),
            Some(&log),
        );
        Replica { child, host }
    }

    /// `kill -9`: no shutdown, no request finishes.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on its own connection: status, head (as sent: signed
/// upload state in `Location` is case-sensitive), body.
fn http(
    host: &str,
    method_path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut c = TcpStream::connect(host).unwrap();
    let mut head = format!(
        "{method_path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(body).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    (
        head[9..12].parse().unwrap(),
        head,
        out[split + 4..].to_vec(),
    )
}

/// The value of header `name` (lowercase) in `head`.
fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Bytes no compressor shrinks (an xorshift stream), so a push of them
/// takes a while.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Pulls `image` into a fresh store and checks it is `source`'s `name`.
fn pulls_the_same(source: &Kiln, name: &str, image: &str) {
    let p = Kiln::new();
    p.ok(&["pull", image]);
    assert_eq!(
        p.inspect(image)["Id"],
        source.inspect(name)["Id"],
        "{image}"
    );
}

/// Reads every blob in the bucket and checks it hashes to its name.
fn every_blob_verifies(storage: &kiln_registry::ObjectStorage) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let blobs = storage.list_blobs().unwrap();
    for b in &blobs {
        let mut reader = storage.open_blob(&b.digest, 0).unwrap();
        let mut bytes = Vec::new();
        rt.block_on(tokio::io::AsyncReadExt::read_to_end(
            &mut reader,
            &mut bytes,
        ))
        .unwrap();
        assert_eq!(
            sha256_digest(&bytes),
            b.digest.to_string(),
            "a blob in the bucket is not what its name says"
        );
        assert_eq!(bytes.len() as u64, b.size);
    }
    blobs.len()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replicas_killed_mid_push_lose_nothing_and_show_nothing_half_written() {
    let cluster = Cluster::start();
    let k = Kiln::new();
    std::fs::write(
        k.path("upload-secret"),
        "replicas share this upload secret\n",
    )
    .unwrap();
    // The test's own view of the bucket (node 0), for what no API shows.
    let bucket = cluster.storage(0, "reg");
    for n in 1..3 {
        cluster.storage(n, "reg");
    }
    let a = Replica::start(&k, &cluster, 0, "a", &[]);
    let b = Replica::start(&k, &cluster, 1, "b", &[]);
    let c = Replica::start(&k, &cluster, 2, "c", &[]);

    // 1. Killed right after a push: the other replicas serve the tag.
    k.import_busybox("one", &[("etc/one", b"one\n")], &[]);
    let on_a = format!("{}/app:one", a.host);
    k.ok(&["tag", "one", &on_a]);
    k.ok(&["push", &on_a]);
    a.kill9();
    pulls_the_same(&k, "one", &format!("{}/app:one", b.host));

    // 2. Killed in the middle of a `kiln push` of a 48 MiB layer.
    let big = noise(48 << 20, 3);
    k.import_busybox("two", &[("big.bin", &big)], &[]);
    let a2 = Replica::start(&k, &cluster, 0, "a2", &[]);
    let on_a2 = format!("{}/app:two", a2.host);
    k.ok(&["tag", "two", &on_a2]);
    wait_for(
        "Garage to count no multipart upload open",
        Duration::from_secs(30),
        || cluster.unfinished_multipart_uploads() == 0,
    );
    let before: Vec<String> = bucket
        .list_uploads()
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    let push = k
        .cmd()
        .args(["push", &on_a2])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once the layer's bytes stream into a multipart upload.
    wait_for(
        "the push's multipart upload in Garage",
        Duration::from_secs(120),
        || cluster.unfinished_multipart_uploads() > 0,
    );
    a2.kill9();
    let out = push.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "the push finished before its replica was killed: make the layer bigger"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Error"), "{stderr}");
    let (code, _, body) = http(&b.host, "HEAD /v2/app/manifests/two", &[], b"");
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&body));
    let left = bucket.list_uploads().unwrap();
    assert!(cluster.unfinished_multipart_uploads() > 0);
    assert!(
        left.iter().any(|u| !before.contains(&u.id)),
        "the killed push's upload is still in the bucket, for GC: {left:?}"
    );
    // Pushed again through another replica, it is whole.
    let on_b = format!("{}/app:two", b.host);
    k.ok(&["tag", "two", &on_b]);
    k.ok(&["push", &on_b]);
    pulls_the_same(&k, "two", &format!("{}/app:two", c.host));

    // 3. Killed in the middle of a chunk; the client resumes elsewhere.
    let layer = noise(3 << 20, 5);
    let digest = sha256_digest(&layer);
    let (c1, rest) = layer.split_at(1_200_000);
    let (c2, c3) = rest.split_at(1_200_000);
    let a3 = Replica::start(&k, &cluster, 0, "a3", &[]);
    let (code, head, _) = http(&a3.host, "POST /v2/app/blobs/uploads/", &[], b"");
    assert_eq!(code, 202, "{head}");
    let range = format!("0-{}", c1.len() - 1);
    let (code, head, _) = http(
        &a3.host,
        &format!("PATCH {}", header(&head, "location")),
        &[("Content-Range", &range)],
        c1,
    );
    assert_eq!(code, 202, "{head}");
    let l1 = header(&head, "location");
    let mut cut = TcpStream::connect(&a3.host).unwrap();
    write!(
        cut,
        "PATCH {l1} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        a3.host,
        c2.len()
    )
    .unwrap();
    cut.write_all(&c2[..700_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    a3.kill9();
    let _ = cut.write_all(&c2[700_000..]);
    let mut answer = Vec::new();
    let _ = cut.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 2"),
        "a chunk through a killed replica cannot succeed"
    );
    let (code, _, _) = http(&c.host, &format!("HEAD /v2/app/blobs/{digest}"), &[], b"");
    assert_eq!(code, 404, "nothing half-written is visible");
    // Replica B says where the upload stands; the client goes on from there.
    let (code, head, _) = http(&b.host, &format!("GET {l1}"), &[], b"");
    assert_eq!(code, 204, "{head}");
    assert_eq!(header(&head, "range"), range);
    let (code, head, body) = http(
        &b.host,
        &format!("PATCH {l1}"),
        &[(
            "Content-Range",
            &format!("{}-{}", c1.len(), c1.len() + c2.len() - 1),
        )],
        c2,
    );
    assert_eq!(code, 202, "{head}{}", String::from_utf8_lossy(&body));
    let l2 = header(&head, "location");
    let (code, head, body) = http(
        &b.host,
        &format!("PUT {}", with_digest(&l2, &digest)),
        &[],
        c3,
    );
    assert_eq!(code, 201, "{head}{}", String::from_utf8_lossy(&body));
    // The dead request's Location is stale now: a clean 4xx, nothing written.
    let (code, _, body) = http(
        &c.host,
        &format!("PATCH {l1}"),
        &[(
            "Content-Range",
            &format!("{}-{}", c1.len(), c1.len() + c2.len() - 1),
        )],
        c2,
    );
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!((400..500).contains(&code), "{code} {body}");
    assert!(body.contains("BLOB_UPLOAD_UNKNOWN"), "{body}");
    // An image of that layer, tagged through B.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = sha256_digest(config);
    let (code, head, _) = http(
        &b.host,
        &format!("POST /v2/app/blobs/uploads/?digest={config_digest}"),
        &[],
        config,
    );
    assert_eq!(code, 201, "{head}");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let (code, head, body) = http(
        &b.host,
        "PUT /v2/app/manifests/three",
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.as_bytes(),
    );
    assert_eq!(code, 201, "{head}{}", String::from_utf8_lossy(&body));

    // 4. Every pushed tag, through a replica on another node, verified.
    let check_three = |host: &str| {
        let (code, head, body) = http(host, "GET /v2/app/manifests/three", &[], b"");
        assert_eq!((code, body), (200, manifest.clone().into_bytes()), "{head}");
        let (code, _, body) = http(host, &format!("GET /v2/app/blobs/{digest}"), &[], b"");
        assert!(code == 200 && sha256_digest(&body) == digest);
    };
    check_three(&c.host);
    pulls_the_same(&k, "one", &format!("{}/app:one", c.host));
    pulls_the_same(&k, "two", &format!("{}/app:two", c.host));
    let before_gc = every_blob_verifies(&bucket);

    // 5. A replica collecting garbage removes what the killed pushes left.
    let g = Replica::start(
        &k,
        &cluster,
        1,
        "g",
        &["--gc-interval", "1s", "--gc-grace", "2s"],
    );
    wait_for(
        "GC to remove the killed uploads",
        Duration::from_secs(60),
        || bucket.list_uploads().unwrap().is_empty(),
    );
    wait_for(
        "Garage to count no unfinished multipart upload",
        Duration::from_secs(30),
        || cluster.unfinished_multipart_uploads() == 0,
    );
    drop(g);
    let after_gc = every_blob_verifies(&bucket);
    assert!(after_gc <= before_gc);
    check_three(&b.host);
    pulls_the_same(&k, "one", &format!("{}/app:one", b.host));
    pulls_the_same(&k, "two", &format!("{}/app:two", c.host));
}
