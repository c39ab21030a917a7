//! `kiln-registry.toml`: what an operator writes to configure `kiln serve`.
//!
//! The file is read into [`Config`] (serde over the `toml` crate); every
//! table refuses keys it does not know, so a typo (`[auht]`,
//! `keep_lats`) is an error naming the key and its line instead of a
//! setting silently ignored. [`Config::options`] then reads the files the
//! config names (htpasswd, token key, TLS certificate) and builds the
//! server's [`Options`]. Command-line flags override the file: the `kiln`
//! binary applies them to the `Config` before calling `options`.
//!
//! ```toml
//! addr = "0.0.0.0:5000"
//! [auth]
//! htpasswd = "/etc/kiln/htpasswd"
//! anonymous = true
//! [auth.token]
//! issuer = "kiln"
//! [[access]]
//! repository = "team-a/*"
//! users = ["alice"]
//! actions = ["pull", "push", "delete"]
//! [tls]
//! cert = "/etc/kiln/cert.pem"
//! key = "/etc/kiln/key.pem"
//! [policy]
//! immutable_tags = ["prod/*"]
//! delete = true
//! [[policy.retention]]
//! repository = "ci/*"
//! keep_last = 10
//! keep = ["latest", "v*"]
//! ```
//!
//! `[proxy]` makes the registry a pull-through cache (`crate::proxy`);
//! `[storage]` names an S3 bucket and the upload secret; `[gc]` runs
//! garbage collection while serving.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::access::Rule;
use crate::policy::{Htpasswd, Options};
use crate::proxy::{Proxy, ProxySettings};
use crate::retention::RetentionRule;
use crate::token::{SigningKey, TokenAuth};
use kiln_registry_client::Credentials;

/// The whole file. Every field is optional; an empty file is an open
/// registry on the default address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`HOST:PORT`); `--addr` overrides it.
    pub addr: Option<String>,
    /// Content directory; `--data` overrides it.
    pub data: Option<PathBuf>,
    /// Who may talk to the registry.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Per-repository grants, in order; see [`Rule`].
    #[serde(default)]
    pub access: Vec<Rule>,
    /// Serve https with this certificate and key.
    pub tls: Option<TlsConfig>,
    /// Tag and delete policies.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `text` or `json` access log lines on stderr, or `off`.
    pub log_format: Option<crate::access_log::LogFormat>,
    /// Serve as a pull-through cache of another registry; `--proxy URL`
    /// overrides its `url`.
    pub proxy: Option<ProxyConfig>,
    /// Where content lives besides `data`; `--storage` and
    /// `--upload-secret-file` override it.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Online garbage collection; the `--gc-*` flags override it.
    #[serde(default)]
    pub gc: GcConfig,
    /// Per-client request limits (429 `TOO_MANY_REQUESTS` beyond them).
    #[serde(default)]
    pub limits: crate::LimitsConfig,
}

/// `[storage]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// An S3 bucket instead of `data`:
    /// `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME[&part_size=BYTES]`
    /// (credentials from the environment, never the file).
    pub url: Option<String>,
    /// The file holding the secret that signs upload state in `Location`
    /// URLs; replicas sharing a bucket share it.
    pub upload_secret_file: Option<PathBuf>,
}

/// `[gc]`: garbage collection while serving (see `crate::gc`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// Seconds between collections; none (the default) means no online
    /// collection.
    pub interval: Option<u64>,
    /// Seconds: nothing younger is deleted; default 3600. It must cover
    /// the longest pause of a client mid-upload.
    pub grace: Option<u64>,
    /// Also delete untagged manifests no index or live subject reaches.
    #[serde(default)]
    pub delete_untagged: bool,
}

impl GcConfig {
    /// The collection's options, with `policy`'s retention and immutable
    /// tags (retention runs on every collection, not only after a push).
    pub fn options(&self, policy: &PolicyConfig) -> crate::GcOptions {
        crate::GcOptions {
            grace: std::time::Duration::from_secs(self.grace.unwrap_or(3600)),
            delete_untagged: self.delete_untagged,
            dry_run: false,
            retention: policy.retention.clone(),
            immutable_tags: policy.immutable_tags.clone(),
        }
    }
}

/// `[proxy]`: a pull-through cache of another registry (see `crate::proxy`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// `https://HOST[:PORT][/PREFIX]` (`http://` for a registry without
    /// TLS); repository `NAME` here is `PREFIX/NAME` upstream.
    pub url: String,
    /// User name for upstream (with `password` or `password_file`).
    pub username: Option<String>,
    /// Its password or token.
    pub password: Option<String>,
    /// A file holding it (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    /// A docker `config.json` whose entry for upstream's host gives the
    /// credentials (helpers included), instead of `username`.
    pub credentials_file: Option<PathBuf>,
    /// Seconds a tag is served from the cache before upstream is asked
    /// again (by HEAD); default 300.
    pub tag_ttl: Option<u64>,
    /// Extra PEM CA certificate trusted for upstream's TLS.
    pub ca_cert: Option<PathBuf>,
}

/// Default of `[proxy] tag_ttl`, in seconds.
pub const DEFAULT_TAG_TTL: u64 = 300;

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// An htpasswd file (bcrypt entries, `htpasswd -B`): the users and
    /// passwords the registry (Basic) or its token server accepts.
    pub htpasswd: Option<PathBuf>,
    /// Whether requests without credentials are served, as the user
    /// `anonymous` (what they may do is the `[[access]]` rules' business;
    /// without rules anonymous may pull). Default false.
    #[serde(default)]
    pub anonymous: bool,
    /// Bearer tokens instead of Basic auth on every request.
    pub token: Option<TokenConfig>,
}

/// `[auth.token]`: docker's token flow, with the server's own `/token`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Where clients get tokens; default `<scheme>://<Host>/token`, the
    /// built-in token server.
    pub realm: Option<String>,
    /// The `iss` of the tokens; default `kiln-registry`.
    pub issuer: Option<String>,
    /// The `service` of the challenge and the tokens' `aud`; default
    /// `kiln-registry`.
    pub service: Option<String>,
    /// PKCS#8 PEM of the ECDSA P-256 key tokens are signed with; default
    /// `<data>/token-key.pem`, made at first start.
    pub key: Option<PathBuf>,
    /// Token lifetime in seconds; default 300.
    pub expires_in: Option<u64>,
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Repository patterns whose tags never change once pushed.
    #[serde(default)]
    pub immutable_tags: Vec<String>,
    /// Whether manifests and blobs may be deleted (405 UNSUPPORTED when
    /// not, as distribution answers). Default true.
    #[serde(default = "yes")]
    pub delete: bool,
    /// Which tags are kept per repository pattern; see [`RetentionRule`].
    #[serde(default)]
    pub retention: Vec<RetentionRule>,
}

fn yes() -> bool {
    true
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            immutable_tags: Vec::new(),
            delete: true,
            retention: Vec::new(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ConfigError {
    fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub fn kind(&self) -> kiln_core::ErrorKind {
        match self {
            ConfigError::Read { .. } => kiln_core::ErrorKind::Io,
            ConfigError::Invalid { .. } => kiln_core::ErrorKind::InvalidInput,
        }
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(&read(path)?).map_err(|message| ConfigError::invalid(path, message))
    }

    /// Parses a file's text; the message names the offending key and line.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    /// Checks what the fields say together (done by `parse`; again after
    /// changing fields).
    pub fn check(&self) -> Result<(), String> {
        for p in self
            .policy
            .immutable_tags
            .iter()
            .chain(self.access.iter().map(|r| &r.repository))
            .chain(self.policy.retention.iter().map(|r| &r.repository))
        {
            if p.is_empty() {
                return Err("empty repository pattern (use \"*\" for every repository)".into());
            }
        }
        if self.auth.token.is_some() && self.auth.htpasswd.is_none() && !self.auth.anonymous {
            return Err(
                "token auth ([auth.token], --token) needs users (auth.htpasswd, \
                 --htpasswd) or anonymous access (anonymous = true, --anonymous), \
                 else nobody can get a token"
                    .into(),
            );
        }
        for r in &self.access {
            if r.users.is_empty() {
                return Err(format!(
                    "[[access]] for {:?} names no users (add users = [\"name\"], \"*\" or \"anonymous\")",
                    r.repository
                ));
            }
        }
        self.limits.check()?;
        if self.gc.interval == Some(0) {
            return Err(
                "[gc] interval = 0: give seconds between collections, or leave it out for none"
                    .into(),
            );
        }
        if let Some(url) = &self.storage.url {
            crate::S3Config::parse(url).map_err(|e| format!("[storage] url: {e}"))?;
            if self.data.is_some() {
                return Err(
                    "both data and [storage] url are set: content lives in one place; keep one"
                        .into(),
                );
            }
        }
        if let Some(p) = &self.proxy {
            crate::proxy::parse_url(&p.url)?;
            match (&p.username, &p.password, &p.password_file) {
                (Some(_), Some(_), Some(_)) => {
                    return Err("[proxy] has both password and password_file: keep one".into())
                }
                (Some(_), None, None) => {
                    return Err("[proxy] username needs password or password_file".into())
                }
                (None, Some(_), _) | (None, _, Some(_)) => {
                    return Err("[proxy] password needs a username".into())
                }
                _ => {}
            }
            if p.username.is_some() && p.credentials_file.is_some() {
                return Err("[proxy] has both username and credentials_file: keep one".into());
            }
        }
        Ok(())
    }

    /// The server's options: reads the htpasswd file and the token key
    /// (making one under `data` at first start when none is configured).
    pub fn options(&self, data: &Path) -> Result<Options, ConfigError> {
        let htpasswd = match &self.auth.htpasswd {
            None => None,
            Some(path) => Some(
                Htpasswd::parse(&read(path)?)
                    .map_err(|e| ConfigError::invalid(path, e.to_string()))?,
            ),
        };
        let token = match &self.auth.token {
            None => None,
            Some(t) => {
                let key = match &t.key {
                    Some(path) => SigningKey::from_pem(&read(path)?)
                        .map_err(|m| ConfigError::invalid(path, m))?,
                    None => {
                        let path = data.join("token-key.pem");
                        SigningKey::load_or_create(&path).map_err(|m| ConfigError::Invalid {
                            path: path.clone(),
                            message: m,
                        })?
                    }
                };
                Some(TokenAuth {
                    realm: t.realm.clone(),
                    issuer: t.issuer.clone().unwrap_or_else(|| "kiln-registry".into()),
                    service: t.service.clone().unwrap_or_else(|| "kiln-registry".into()),
                    expires_in: t.expires_in.unwrap_or(300),
                    key,
                })
            }
        };
        let proxy = match &self.proxy {
            None => None,
            Some(p) => Some(std::sync::Arc::new(proxy(p, data)?)),
        };
        Ok(Options {
            proxy,
            immutable_tags: self.policy.immutable_tags.clone(),
            htpasswd,
            token: token.map(std::sync::Arc::new),
            anonymous: self.auth.anonymous,
            access: self.access.clone(),
            delete_disabled: !self.policy.delete,
            retention: self.policy.retention.clone(),
            limits: crate::Limits::new(&self.limits),
            ..Options::default()
        })
    }
}

/// The pull-through cache `[proxy]` describes; blobs are staged under
/// `<data>/proxy-staging` while they download.
fn proxy(p: &ProxyConfig, data: &Path) -> Result<Proxy, ConfigError> {
    let password = match (&p.password, &p.password_file) {
        (Some(pw), _) => Some(pw.clone()),
        (None, Some(path)) => Some(read(path)?.trim_end_matches(['\r', '\n']).to_string()),
        (None, None) => None,
    };
    let credentials = match (&p.username, password) {
        (Some(u), Some(secret)) => Some(Credentials {
            username: u.clone(),
            secret,
        }),
        _ => None,
    };
    Proxy::new(ProxySettings {
        url: p.url.clone(),
        credentials,
        docker_config: p.credentials_file.clone(),
        tag_ttl: std::time::Duration::from_secs(p.tag_ttl.unwrap_or(DEFAULT_TAG_TTL)),
        ca_certificates: p.ca_cert.iter().cloned().collect(),
        staging: data.join("proxy-staging"),
    })
    .map_err(|m| ConfigError::Invalid {
        path: PathBuf::from("[proxy]"),
        message: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Action;

    #[test]
    fn an_empty_file_is_an_open_registry() {
        let c = Config::parse("").unwrap();
        assert!(c.addr.is_none());
        assert!(c.policy.delete);
        assert!(c.auth.token.is_none());
        assert!(c.access.is_empty());
    }

    #[test]
    fn every_section_parses() {
        let c = Config::parse(
            r#"
addr = "127.0.0.1:5000"
log_format = "json"
[auth]
htpasswd = "/h"
anonymous = true
[auth.token]
issuer = "me"
expires_in = 60
[[access]]
repository = "team-a/*"
users = ["alice", "bob"]
actions = ["pull", "push"]
[[access]]
users = ["anonymous"]
actions = ["pull", "catalog"]
[tls]
cert = "c.pem"
key = "k.pem"
[policy]
immutable_tags = ["prod/*"]
delete = false
[[policy.retention]]
repository = "ci/*"
keep_last = 3
keep = ["latest"]
"#,
        )
        .unwrap();
        assert_eq!(c.addr.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(c.auth.token.as_ref().unwrap().expires_in, Some(60));
        assert_eq!(c.access.len(), 2);
        assert_eq!(c.access[1].repository, "*");
        assert_eq!(c.access[1].actions, vec![Action::Pull, Action::Catalog]);
        assert_eq!(c.tls.unwrap().key, PathBuf::from("k.pem"));
        assert!(!c.policy.delete);
        assert_eq!(c.policy.retention[0].keep_last, Some(3));
        assert_eq!(c.log_format, Some(crate::access_log::LogFormat::Json));
    }

    #[test]
    fn storage_gc_and_proxy_sections() {
        let c = Config::parse(
            "[storage]\nurl = \"s3://b/p?endpoint=http://127.0.0.1:3900&region=garage\"\n\
             upload_secret_file = \"/s\"\n[gc]\ninterval = 60\ngrace = 120\n\
             delete_untagged = true\n[policy]\nimmutable_tags = [\"prod/*\"]\n\
             [[policy.retention]]\nrepository = \"*\"\nkeep_last = 2\n\
             [proxy]\nurl = \"https://r.example/library\"\ntag_ttl = 5\n",
        )
        .unwrap();
        assert_eq!(c.storage.upload_secret_file, Some(PathBuf::from("/s")));
        let gc = c.gc.options(&c.policy);
        assert_eq!(gc.grace, std::time::Duration::from_secs(120));
        assert!(gc.delete_untagged && !gc.dry_run);
        assert_eq!(gc.retention[0].keep_last, Some(2));
        assert_eq!(gc.immutable_tags, vec!["prod/*".to_string()]);
        assert_eq!(c.proxy.as_ref().unwrap().tag_ttl, Some(5));
        let e = Config::parse("[gc]\ninterval = 0\n").unwrap_err();
        assert!(e.contains("interval"), "{e}");
        let e = Config::parse("data = \"/d\"\n[storage]\nurl = \"s3://b?endpoint=http://h\"\n")
            .unwrap_err();
        assert!(e.contains("keep one"), "{e}");
        let e = Config::parse("[storage]\nurl = \"ftp://b\"\n").unwrap_err();
        assert!(e.contains("[storage] url"), "{e}");
        let e = Config::parse("[proxy]\nurl = \"r.example\"\n").unwrap_err();
        assert!(e.contains("https://HOST"), "{e}");
        let e = Config::parse("[proxy]\nurl = \"https://r\"\nusername = \"u\"\n").unwrap_err();
        assert!(e.contains("password"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("[storage]\nkind = \"s3\"\n").unwrap_err();
        assert!(e.contains("kind"), "{e}");
        let e = Config::parse("[gc]\ngrace_period = 3\n").unwrap_err();
        assert!(e.contains("grace_period") && e.contains("line 2"), "{e}");
        let e = Config::parse("[proxy]\nurl = \"https://r\"\nttl = 3\n").unwrap_err();
        assert!(e.contains("ttl"), "{e}");
        let e = Config::parse("[policy]\nkeep_lats = 3\n").unwrap_err();
        assert!(e.contains("keep_lats") && e.contains("line 2"), "{e}");
        let e = Config::parse("[[access]]\nusers=[\"a\"]\nactions=[\"fly\"]\n").unwrap_err();
        assert!(e.contains("fly"), "{e}");
    }

    #[test]
    fn rules_without_users_and_tokens_without_users_are_refused() {
        let e = Config::parse("[[access]]\nrepository=\"a\"\nusers=[]\nactions=[\"pull\"]\n")
            .unwrap_err();
        assert!(e.contains("names no users"), "{e}");
        let e = Config::parse("[auth.token]\n").unwrap_err();
        assert!(e.contains("nobody can get a token"), "{e}");
    }

    #[test]
    fn options_read_the_files_and_make_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("htpasswd");
        let hash = bcrypt::hash("pw", 4).unwrap();
        std::fs::write(&h, format!("alice:{hash}\n")).unwrap();
        let text = format!(
            "[auth]\nhtpasswd = {:?}\n[auth.token]\n[policy]\ndelete = false\n",
            h.to_str().unwrap()
        );
        let c = Config::parse(&text).unwrap();
        let o = c.options(dir.path()).unwrap();
        assert!(o.htpasswd.unwrap().check("alice", "pw"));
        assert!(o.delete_disabled);
        let key = dir.path().join("token-key.pem");
        let first = std::fs::read(&key).unwrap();
        // The key made at first start is the one used at the next.
        c.options(dir.path()).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), first);
        let missing = Config::parse("[auth]\nhtpasswd = \"/nonexistent/h\"\n").unwrap();
        let e = missing.options(dir.path()).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/h"), "{e}");
    }
}
