//! A 3-node Garage cluster on 127.0.0.1 for tests: three config files
//! (replication factor 3, sqlite metadata, rpc and S3 ports picked free),
//! the nodes connected, a layout assigned and applied, a bucket and a key
//! allowed on it. Every node is killed and its directory removed on drop,
//! also when a test fails. `garage` must be on PATH (`scripts/setup.sh`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Cluster {
    /// The nodes' configs, data and logs; removed on drop.
    _dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
    /// Node 0's config, for `garage` commands.
    config: std::path::PathBuf,
    /// Each node's S3 endpoint, `http://127.0.0.1:PORT`.
    pub(crate) endpoints: Vec<String>,
    pub(crate) bucket: String,
    pub(crate) key_id: String,
    pub(crate) secret: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn garage(config: &Path, args: &[&str]) -> String {
    let out = Command::new("garage")
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run garage ({e}): install it with scripts/setup.sh"));
    assert!(
        out.status.success(),
        "garage {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `garage` with retries while the cluster settles (nodes connecting,
/// the layout spreading).
fn garage_retry(config: &Path, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("garage")
            .arg("-c")
            .arg(config)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run garage ({e}): install it with scripts/setup.sh"));
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "garage {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim_start_matches(':').trim())
        .unwrap_or_else(|| panic!("no {name:?} in garage's output:\n{text}"))
}

impl Cluster {
    pub(crate) fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + 11) as u8 ^ std::process::id() as u8))
            .collect();
        let mut nodes = Vec::new();
        let mut endpoints = Vec::new();
        let mut configs = Vec::new();
        for n in 0..3 {
            let (rpc, s3) = (free_port(), free_port());
            let root = dir.path().join(format!("node{n}"));
            std::fs::create_dir_all(&root).unwrap();
            let config = root.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
                    root = root.display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(root.join("log")).unwrap();
            let child = Command::new("garage")
                .arg("-c")
                .arg(&config)
                .arg("server")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start garage ({e}): install it with scripts/setup.sh"));
            nodes.push(Some(child));
            endpoints.push(format!("http://127.0.0.1:{s3}"));
            configs.push(config);
        }
        let mut cluster = Cluster {
            _dir: dir,
            nodes,
            config: configs[0].clone(),
            endpoints,
            bucket: "kiln".into(),
            key_id: String::new(),
            secret: String::new(),
        };
        let first = &configs[0];
        let ids: Vec<String> = configs
            .iter()
            .map(|c| garage_retry(c, &["node", "id", "-q"]).trim().to_string())
            .collect();
        for id in &ids[1..] {
            garage_retry(first, &["node", "connect", id]);
        }
        for id in &ids {
            let short = id.split('@').next().unwrap();
            garage_retry(first, &["layout", "assign", "-z", "dc1", "-c", "1G", short]);
        }
        garage(first, &["layout", "apply", "--version", "1"]);
        garage_retry(first, &["bucket", "create", &cluster.bucket]);
        let key = garage(first, &["key", "create", "kiln-test"]);
        cluster.key_id = field(&key, "Key ID").to_string();
        cluster.secret = field(&key, "Secret key").to_string();
        garage(
            first,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                "kiln",
                "--key",
                "kiln-test",
            ],
        );
        cluster
    }

    /// The `--storage` URL of node `n`'s S3 endpoint, objects under `prefix`.
    pub(crate) fn url(&self, n: usize, prefix: &str) -> String {
        format!(
            "s3://{}/{prefix}?endpoint={}&region=garage&part_size=1048576",
            self.bucket, self.endpoints[n]
        )
    }

    /// A storage on node `n`'s endpoint, under `prefix`; waits until the
    /// cluster answers S3 requests there.
    pub(crate) fn storage(&self, n: usize, prefix: &str) -> kiln_registry::ObjectStorage {
        let mut config = kiln_registry::S3Config::parse(&self.url(n, prefix)).unwrap();
        config.access_key_id = Some(self.key_id.clone());
        config.secret_access_key = Some(self.secret.clone());
        let storage = kiln_registry::ObjectStorage::s3(&config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        use kiln_registry::Storage as _;
        while let Err(e) = storage.repositories() {
            assert!(
                Instant::now() < deadline,
                "garage node {n} never answered: {e}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        storage
    }

    /// Multipart uploads in the bucket neither completed nor aborted, as
    /// Garage counts them (`garage bucket info`, which leaves the line
    /// out at zero; its counters settle a moment after a change).
    #[allow(dead_code)] // garage.rs has no use for it, serve_garage.rs has
    pub(crate) fn unfinished_multipart_uploads(&self) -> u64 {
        let info = garage(&self.config, &["bucket", "info", &self.bucket]);
        info.lines()
            .find_map(|l| l.strip_prefix("Unfinished uploads:"))
            .map(|v| {
                let n = v.split_whitespace().next().unwrap_or_default();
                n.parse()
                    .unwrap_or_else(|_| panic!("garage bucket info: {l:?}", l = v))
            })
            .unwrap_or(0)
    }

    /// Kills node `n` (SIGKILL).
    pub(crate) fn kill(&mut self, n: usize) {
        if let Some(mut child) = self.nodes[n].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in 0..self.nodes.len() {
            self.kill(n);
        }
    }
}
