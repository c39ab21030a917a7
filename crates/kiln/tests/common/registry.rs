//! The real distribution registry (Debian's `docker-registry`) started on
//! 127.0.0.1 for a test, anonymous or with htpasswd or token auth; the token
//! server for the latter (RS256 JWTs signed with openssl, the key's
//! certificate in the registry's root bundle); and a fault-injecting proxy.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

use super::http::{self, Reply, Request};

pub(crate) const USER: &str = "kiln";
pub(crate) const PASSWORD: &str = "s3cret-pass";

pub(crate) enum Auth {
    Anonymous,
    Htpasswd,
    /// Token auth; anonymous clients get no token at all.
    Token,
}

pub(crate) struct Registry {
    pub port: u16,
    /// The loopback address it listens on.
    pub ip: &'static str,
    child: Child,
    _dir: tempfile::TempDir,
    /// Token requests served (token auth only).
    pub token_requests: Arc<AtomicUsize>,
}

impl Registry {
    pub(crate) fn start(auth: Auth) -> Registry {
        Registry::start_on("127.0.0.1", auth, false)
    }

    /// A registry speaking TLS with a self-signed certificate for
    /// 127.0.0.2 (kiln speaks plain HTTP only to 127.0.0.1 and localhost);
    /// returns it and its CA certificate's PEM file.
    pub(crate) fn start_tls() -> (Registry, PathBuf) {
        let reg = Registry::start_on("127.0.0.2", Auth::Anonymous, true);
        let ca = reg._dir.path().join("tls-ca.pem");
        (reg, ca)
    }

    fn start_on(ip: &'static str, auth: Auth, tls: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let tls_yaml = if tls {
            // A CA and a server certificate it signs (rustls refuses a CA
            // certificate used as the server's own).
            let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
            super::tool(
                "openssl",
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=kiln-test-ca",
                    "-keyout",
                    &p("ca-key.pem"),
                    "-out",
                    &p("tls-ca.pem"),
                ],
            );
            super::tool(
                "openssl",
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    &format!("/CN={ip}"),
                    "-keyout",
                    &p("tls-key.pem"),
                    "-out",
                    &p("tls.csr"),
                ],
            );
            std::fs::write(
                dir.path().join("ext.cnf"),
                format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"),
            )
            .unwrap();
            super::tool(
                "openssl",
                &[
                    "x509",
                    "-req",
                    "-in",
                    &p("tls.csr"),
                    "-CA",
                    &p("tls-ca.pem"),
                    "-CAkey",
                    &p("ca-key.pem"),
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &p("ext.cnf"),
                    "-out",
                    &p("tls-cert.pem"),
                ],
            );
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                p("tls-cert.pem"),
                p("tls-key.pem")
            )
        } else {
            String::new()
        };
        let port = free_port();
        let token_requests = Arc::new(AtomicUsize::new(0));
        let auth_yaml = match auth {
            Auth::Anonymous => String::new(),
            Auth::Htpasswd => {
                let file = dir.path().join("htpasswd");
                let out = super::tool("htpasswd", &["-Bbn", USER, PASSWORD]);
                std::fs::write(&file, out).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token => {
                let token_port = start_token_server(dir.path(), token_requests.clone());
                format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: kiln-test\n    issuer: kiln-test-issuer\n    rootcertbundle: {}\n",
                    dir.path().join("cert.pem").display()
                )
            }
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n{tls_yaml}{auth_yaml}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("docker-registry (Debian package docker-registry) is required: {e}")
            });
        let reg = Registry {
            port,
            ip,
            child,
            _dir: dir,
            token_requests,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect((self.ip, self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self._dir.path().join("log")).unwrap_or_default();
        panic!("docker-registry did not start on port {}: {log}", self.port);
    }

    /// `IP:PORT`
    /// Every blob the registry stores (manifests too), as digests: read
    /// from its storage directory, so a test sees exactly what was
    /// uploaded, referenced or not.
    pub(crate) fn stored_blobs(&self) -> std::collections::BTreeSet<String> {
        let root = self
            ._dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256");
        let mut out = std::collections::BTreeSet::new();
        for prefix in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            for blob in std::fs::read_dir(prefix.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if blob.path().join("data").is_file() {
                    out.insert(format!("sha256:{}", blob.file_name().to_string_lossy()));
                }
            }
        }
        out
    }

    pub(crate) fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A docker-style token server: checks basic auth against USER/PASSWORD and
/// grants exactly the scopes asked for.
fn start_token_server(dir: &Path, counter: Arc<AtomicUsize>) -> u16 {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    super::tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=kiln-test-token",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    let der = dir.join("cert.der");
    super::tool(
        "openssl",
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-outform",
            "der",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    let x5c = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&der).unwrap());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let handler = move |req: &Request| -> Reply {
        counter.fetch_add(1, Ordering::SeqCst);
        if req.header("authorization") != Some(expected.as_str()) {
            return Reply::new(401, r#"{"details":"bad or missing credentials"}"#);
        }
        let access: Vec<serde_json::Value> = req
            .query("scope")
            .iter()
            .filter_map(|s| {
                let (rest, actions) = s.rsplit_once(':')?;
                let (kind, name) = rest.split_once(':')?;
                Some(serde_json::json!({
                    "type": kind, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
        let claims = serde_json::json!({
            "iss": "kiln-test-issuer", "sub": USER, "aud": "kiln-test",
            "exp": now + 300, "nbf": now - 10, "iat": now - 10,
            "jti": format!("{now}-{}", rand_suffix()), "access": access,
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = sign(&key, input.as_bytes());
        let token = format!("{input}.{}", b64url(&sig));
        Reply::new(
            200,
            serde_json::json!({"token": token, "expires_in": 300}).to_string(),
        )
        .header("Content-Type", "application/json")
    };
    http::serve(Arc::new(handler))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish()
}

fn sign(key: &PathBuf, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// What the fault proxy does to blob downloads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The first GET of each blob is cut off halfway through its body.
    CutOnce,
    /// Every blob body has one byte flipped.
    Corrupt,
}

/// A proxy in front of `upstream` that injects `fault` into blob bodies.
/// Returns its port and the log of requests (method, path, Range header).
pub(crate) fn fault_proxy(upstream: u16, fault: Fault) -> (u16, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let cut = Arc::new(Mutex::new(HashSet::new()));
    let log2 = log.clone();
    let handler = move |req: &Request| -> Reply {
        log2.lock().unwrap().push(format!(
            "{} {} {}",
            req.method,
            req.path(),
            req.header("range").unwrap_or("-")
        ));
        let raw = http::forward(req, upstream);
        let is_blob = req.method == "GET" && req.path().contains("/blobs/sha256:");
        let (status, head, mut body) = http::split_response(&raw);
        if !is_blob || status != 200 || body.len() < 1000 {
            return Reply::Raw(raw);
        }
        match fault {
            Fault::CutOnce => {
                if cut.lock().unwrap().insert(req.path().to_string()) {
                    let mut out = head;
                    out.extend_from_slice(&body[..body.len() / 2]);
                    return Reply::Raw(out);
                }
                Reply::Raw(raw)
            }
            Fault::Corrupt => {
                let mid = body.len() / 2;
                body[mid] ^= 0xff;
                let mut out = head;
                out.extend_from_slice(&body);
                Reply::Raw(out)
            }
        }
    };
    (http::serve(Arc::new(handler)), log)
}
