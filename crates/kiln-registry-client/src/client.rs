//! The HTTP side: one [`Client`] per command, holding the connection pool,
//! what each registry asked for (basic or bearer auth), cached tokens, and
//! the retry policy. Every request goes through [`Client::send`], which adds
//! auth, answers a 401 challenge once, and retries connection errors, 429
//! (honouring `Retry-After`) and 5xx with exponential backoff.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
pub(crate) use kiln_core::error_chain;
use kiln_core::ImageRef;
use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::auth::{parse_challenge, Challenge, Token, TokenResponse};
use crate::credentials::{Credentials, DockerConfig};
use crate::error::{RegistryError, Result};

/// How the client behaves; [`ClientOptions::default`] is what the CLI uses.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (host[:port]) spoken to over plain HTTP. `localhost`,
    /// `127.0.0.1` and `[::1]` always are, as with docker.
    pub insecure_registries: Vec<String>,
    /// Extra PEM CA certificates trusted besides the system's roots.
    pub ca_certificates: Vec<PathBuf>,
    /// docker's config.json, for stored credentials.
    pub docker_config: PathBuf,
    /// Credentials that override the config file (e.g. `--creds`).
    pub credentials: Option<Credentials>,
    /// Blobs transferred at once.
    pub concurrency: usize,
    /// Tries per request for connection errors, 429 and 5xx.
    pub max_attempts: u32,
    /// First backoff delay; doubles per retry.
    pub retry_delay: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            ca_certificates: Vec::new(),
            docker_config: DockerConfig::path_for(None, None),
            credentials: None,
            concurrency: 4,
            max_attempts: 5,
            retry_delay: Duration::from_millis(200),
        }
    }
}

pub const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));

/// A repository on a registry: what every API call addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repo {
    /// host[:port] as the user wrote it (`docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub path: String,
}

impl Repo {
    pub fn of(r: &ImageRef) -> Repo {
        Repo {
            registry: r.domain().to_string(),
            path: r.path().to_string(),
        }
    }

    pub fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.path)
    }

    pub fn push_scope(&self) -> String {
        format!("repository:{}:pull,push", self.path)
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

#[derive(Debug, Clone)]
enum Scheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A registry client. Cheap to share by reference across tasks.
pub struct Client {
    http: reqwest::Client,
    opts: ClientOptions,
    schemes: Mutex<HashMap<String, Scheme>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    creds: Mutex<HashMap<String, Option<Credentials>>>,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(opts.concurrency.max(1) * 2)
            // Registries redirect blob downloads to storage hosts; reqwest
            // drops the Authorization header when the host changes.
            .redirect(reqwest::redirect::Policy::limited(10));
        for path in &opts.ca_certificates {
            let pem = std::fs::read(path).map_err(|e| {
                RegistryError::Config(format!("read CA certificate {}: {e}", path.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                RegistryError::Config(format!("{} is not a PEM certificate: {e}", path.display()))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| RegistryError::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            opts,
            schemes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            creds: Mutex::new(HashMap::new()),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `https://host` or, for local and insecure registries, `http://host`.
    /// Docker Hub's API lives on `registry-1.docker.io`.
    pub fn base_url(&self, registry: &str) -> String {
        let host = match registry {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        let bare = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let local =
            matches!(bare, "localhost" | "127.0.0.1" | "[::1]") || bare.ends_with(".localhost");
        let insecure = self.opts.insecure_registries.iter().any(|r| r == registry);
        if local || insecure {
            format!("http://{host}")
        } else {
            format!("https://{host}")
        }
    }

    pub(crate) fn url(&self, repo: &Repo, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base_url(&repo.registry), repo.path)
    }

    fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(c) = &self.opts.credentials {
            return Ok(Some(c.clone()));
        }
        let mut cache = self.creds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(registry) {
            return Ok(c.clone());
        }
        let c = DockerConfig::load(&self.opts.docker_config)?.credentials(registry)?;
        cache.insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// Checks that `registry` speaks the distribution API and that the
    /// credentials are accepted (what `kiln login` does). The token is
    /// requested without a repository scope, as docker does.
    pub async fn ping(&self, registry: &str) -> Result<()> {
        let url = format!("{}/v2/", self.base_url(registry));
        let resp = self.send(registry, &[], || self.http.get(&url)).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                detail: "the registry refused the credentials".into(),
            }),
            s => Err(RegistryError::Status {
                url,
                status: s.as_u16(),
                detail: "not an OCI distribution registry?".into(),
            }),
        }
    }

    /// Sends a request built by `make` (called again for each attempt),
    /// with auth for `scopes`, retries, and one answer to a 401 challenge.
    /// Statuses other than 401/429/5xx are the caller's to interpret.
    pub(crate) async fn send(
        &self,
        registry: &str,
        scopes: &[String],
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response> {
        self.send_with(registry, scopes, self.opts.max_attempts, make)
            .await
    }

    pub(crate) async fn send_with(
        &self,
        registry: &str,
        scopes: &[String],
        max_attempts: u32,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response> {
        let mut attempt = 0;
        let mut answered_challenge = false;
        loop {
            attempt += 1;
            let mut request = make();
            if let Some(value) = self.auth_header(registry, scopes).await? {
                request = request.header(AUTHORIZATION, value);
            }
            let resp = match request.send().await {
                Ok(resp) => resp,
                Err(e) => {
                    let detail = error_chain(&e);
                    // A certificate problem does not go away by retrying.
                    let untrusted = detail.contains("certificate");
                    if attempt < max_attempts && retryable(&e) && !untrusted {
                        tracing::debug!("{registry}: {detail}; retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(RegistryError::Connect {
                        registry: registry.to_string(),
                        detail: if untrusted {
                            format!("{detail}; the registry's TLS certificate is not trusted here: add its CA with --ca-cert FILE")
                        } else {
                            detail
                        },
                    });
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !answered_challenge {
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if let Some(challenge) = challenge {
                    answered_challenge = true;
                    attempt -= 1;
                    self.learn(registry, scopes, challenge);
                    continue;
                }
                return Ok(resp);
            }
            let transient = status == StatusCode::TOO_MANY_REQUESTS
                || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
            if transient {
                if attempt >= max_attempts {
                    let url = resp.url().to_string();
                    return Err(RegistryError::GaveUp {
                        url,
                        status: status.as_u16(),
                        attempts: attempt,
                        detail: error_detail(resp).await,
                    });
                }
                let delay = retry_after(&resp).unwrap_or_else(|| self.backoff(attempt));
                tracing::debug!("{registry}: {status}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                continue;
            }
            return Ok(resp);
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let d = self.opts.retry_delay * 2u32.saturating_pow(attempt.saturating_sub(1).min(8));
        d.min(Duration::from_secs(30))
    }

    /// Remembers what the registry asked for, dropping any cached token for
    /// these scopes (a 401 with a token means it expired or lacks a scope).
    fn learn(&self, registry: &str, scopes: &[String], challenge: Challenge) {
        let scheme = match challenge {
            Challenge::Basic => Scheme::Basic,
            Challenge::Bearer { realm, service, .. } => Scheme::Bearer { realm, service },
        };
        self.schemes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry.to_string(), scheme);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(registry.to_string(), scopes.join(" ")));
    }

    async fn auth_header(&self, registry: &str, scopes: &[String]) -> Result<Option<HeaderValue>> {
        let scheme = self
            .schemes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(registry)
            .cloned();
        let value = match scheme {
            None => return Ok(None),
            Some(Scheme::Basic) => {
                let Some(c) = self.credentials(registry)? else {
                    return Err(RegistryError::Unauthorized {
                        registry: registry.to_string(),
                        detail: "the registry wants a user name and password".into(),
                    });
                };
                basic(&c)
            }
            Some(Scheme::Bearer { realm, service }) => {
                let key = (registry.to_string(), scopes.join(" "));
                let cached = self
                    .tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    .filter(|t| t.fresh())
                    .cloned();
                let token = match cached {
                    Some(t) => t,
                    None => {
                        let t = self
                            .fetch_token(registry, &realm, service.as_deref(), scopes)
                            .await?;
                        self.tokens
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key, t.clone());
                        t
                    }
                };
                format!("Bearer {}", token.value)
            }
        };
        HeaderValue::from_str(&value).map(Some).map_err(|_| {
            RegistryError::Credentials(
                "credentials hold characters not allowed in an HTTP header".into(),
            )
        })
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        for s in scopes {
            query.push(("scope", s));
        }
        let creds = self.credentials(registry)?;
        let mut request = self.http.get(realm).query(&query);
        if let Some(c) = &creds {
            request = request.header(AUTHORIZATION, basic(c));
        }
        let resp = request.send().await.map_err(|e| RegistryError::Connect {
            registry: format!("{registry}'s token server {realm}"),
            detail: error_chain(&e),
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                detail: if creds.is_some() {
                    format!("the token server {realm} refused the stored credentials")
                } else {
                    format!("the token server {realm} wants credentials")
                },
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                url: realm.to_string(),
                status: status.as_u16(),
                detail: error_detail(resp).await,
            });
        }
        let body = resp.bytes().await.map_err(|e| RegistryError::Connect {
            registry: realm.to_string(),
            detail: error_chain(&e),
        })?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
                what: format!("token from {realm}"),
                reason: e.to_string(),
            })?;
        Token::from_response(parsed).ok_or_else(|| RegistryError::Invalid {
            what: format!("token from {realm}"),
            reason: "no token in the answer".into(),
        })
    }
}

fn basic(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.secret);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn retryable(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

/// `Retry-After` in seconds (the HTTP-date form is rare for registries and
/// falls back to backoff). Capped so a hostile value cannot stall a pull.
fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

/// The distribution spec's error body (`{"errors":[{"code","message"}]}`)
/// as one line, or the start of whatever else the body holds.
pub(crate) async fn error_detail(resp: Response) -> String {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let body = &body[..body.len().min(4096)];
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(errors) = v.get("errors").and_then(|e| e.as_array()) {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    format!("{code}: {msg}")
                })
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status.to_string()
    } else {
        text.chars().take(200).collect()
    }
}
