//! `kiln serve`'s command line, shared by the `kiln` binary (which parses
//! and checks it, then execs the lean `kiln-serve` next to it) and
//! `kiln-serve` (which parses the same argv and serves): one definition,
//! so both agree on every flag, message and exit code. [`ServeArgs::config`]
//! lays the flags over the `--config` file. Environment variables are read
//! by the binaries, not here.

use std::path::PathBuf;
use std::time::Duration;

use crate::Config;

pub const CONFIG_HELP: &str = "\
Configuration file (--config FILE, TOML; every key optional; flags override it):
  addr = \"127.0.0.1:5000\"
  data = \"/srv/registry\"
  log_format = \"text\"              # text, json or off
  [auth]
  htpasswd = \"/etc/kiln/htpasswd\"  # bcrypt users (htpasswd -B)
  anonymous = false                # serve requests without credentials
  [auth.token]                     # Bearer tokens from the built-in /token
  issuer = \"kiln-registry\"         # also realm, service, expires_in (s),
  key = \"/etc/kiln/token-key.pem\"  # P-256 PKCS#8; default <data>/token-key.pem
  [[access]]                       # repeatable; grants add up
  repository = \"team-a/*\"          # glob; default \"*\"
  users = [\"alice\", \"*\", \"anonymous\"]
  actions = [\"pull\", \"push\", \"delete\", \"catalog\"]
  [tls]
  cert = \"/etc/kiln/cert.pem\"
  key = \"/etc/kiln/key.pem\"
  [policy]
  immutable_tags = [\"prod/*\"]
  delete = true                    # false: DELETE answers 405
  [[policy.retention]]             # repeatable; the first match applies
  repository = \"ci/*\"
  keep_last = 10
  keep = [\"latest\", \"v*\"]
  [storage]
  url = \"s3://bucket/prefix?endpoint=URL&region=NAME\"  # instead of data
  upload_secret_file = \"/etc/kiln/upload-secret\"   # shared by replicas
  [gc]                             # online garbage collection
  interval = 3600                  # seconds; none: no online collection
  grace = 3600                     # seconds; must cover a paused upload
  delete_untagged = false
  [proxy]                          # a pull-through cache (--proxy URL)
  url = \"https://registry-1.docker.io\"  # [/PREFIX]; http:// without TLS
  username = \"me\"                  # with password or password_file,
  password_file = \"/etc/kiln/hub\"  # or credentials_file (config.json)
  tag_ttl = 300                    # seconds before a tag is re-checked
  [limits]                         # per client address; beyond: 429
  requests_per_second = 20         # with burst = 100 (default: the rate)
  max_concurrent_uploads = 4       # upload requests in flight at once
Endpoints besides /v2/: /token, /metrics (Prometheus), /healthz, /readyz.
See docs/serve.md for the whole format.";

#[derive(clap::Args)]
#[command(after_long_help = CONFIG_HELP)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Address to listen on (port 0: any free port; the address is
    /// printed) [default: 127.0.0.1:5000]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Registry content directory [default: <root>/registry]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Read settings from this TOML file (see --help's end and
    /// docs/serve.md); the flags given override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Tags of repositories matching PATTERN (`*`, `?`) never change once
    /// pushed (repeatable; replaces the file's [policy] immutable_tags)
    #[arg(long = "immutable-tags", value_name = "PATTERN")]
    immutable_tags: Vec<String>,
    /// Require Basic auth by the users of this htpasswd file (bcrypt, as
    /// `htpasswd -B` writes); with --token, the users the token server
    /// accepts
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// Bearer token auth with the built-in token server at /token
    /// ([auth.token] with its defaults)
    #[arg(long)]
    token: bool,
    /// Serve requests without credentials, as the user `anonymous`
    #[arg(long)]
    anonymous: bool,
    /// Serve https with this PEM certificate chain (needs --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Refuse manifest and blob deletes (405 UNSUPPORTED)
    #[arg(long)]
    no_delete: bool,
    /// Access log lines on stderr: text, json or off [default: text]
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json", "off"])]
    log_format: Option<String>,
    /// Keep content in an S3 bucket instead of --data:
    /// s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME[&part_size=BYTES]
    /// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)
    #[arg(long, value_name = "URL", conflicts_with = "data")]
    storage: Option<String>,
    /// File holding the secret that signs upload state in Location URLs;
    /// replicas sharing a bucket must share it [default: a random secret
    /// per process]
    #[arg(long, value_name = "FILE")]
    upload_secret_file: Option<PathBuf>,
    /// Serve as a pull-through cache of this registry,
    /// https://HOST[:PORT][/PREFIX] (http:// for one without TLS): pulls
    /// fill the cache, pushes and deletes are refused; [proxy] in --config
    /// holds credentials and the tag TTL
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Collect garbage every INTERVAL while serving (`1h`, `10m`, `30s`);
    /// off by default
    #[arg(long, value_name = "INTERVAL", value_parser = duration)]
    gc_interval: Option<Duration>,
    /// The online collection deletes nothing younger than this: it must
    /// cover the longest pause of a client mid-upload [default: 1h]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    gc_grace: Option<Duration>,
    /// The online collection also deletes untagged manifests that no index
    /// or live subject reaches
    #[arg(long)]
    gc_delete_untagged: bool,
}

impl ServeArgs {
    /// The file's settings with the flags given laid over them.
    pub fn config(&self) -> Result<Config, Box<dyn std::error::Error + Send + Sync>> {
        let mut c = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(a) = &self.addr {
            c.addr = Some(a.clone());
        }
        if let Some(d) = &self.data {
            c.data = Some(d.clone());
        }
        if !self.immutable_tags.is_empty() {
            c.policy.immutable_tags = self.immutable_tags.clone();
        }
        if let Some(h) = &self.htpasswd {
            c.auth.htpasswd = Some(h.clone());
        }
        if self.token && c.auth.token.is_none() {
            c.auth.token = Some(Default::default());
        }
        if self.anonymous {
            c.auth.anonymous = true;
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            c.tls = Some(crate::TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        if self.no_delete {
            c.policy.delete = false;
        }
        if let Some(f) = &self.log_format {
            c.log_format = Some(f.parse()?);
        }
        if let Some(url) = &self.proxy {
            c.proxy.get_or_insert_with(Default::default).url = url.clone();
        }
        if let Some(url) = &self.storage {
            c.storage.url = Some(url.clone());
        }
        if let Some(f) = &self.upload_secret_file {
            c.storage.upload_secret_file = Some(f.clone());
        }
        if let Some(i) = self.gc_interval {
            c.gc.interval = Some(i.as_secs().max(1));
        }
        if let Some(g) = self.gc_grace {
            c.gc.grace = Some(g.as_secs());
        }
        if self.gc_delete_untagged {
            c.gc.delete_untagged = true;
        }
        // The flags may have made a combination the file alone did not.
        c.check()?;
        Ok(c)
    }
}

#[derive(clap::Subcommand)]
pub enum ServeCommand {
    /// Delete blobs no manifest names, idle uploads and leftovers of a
    /// registry directory (safe while a server uses it)
    Gc(GcArgs),
}

#[derive(clap::Args)]
pub struct GcArgs {
    /// Print what would be deleted; delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Delete nothing younger than this (`10m`, `1h`): it must cover the
    /// longest pause of a client mid-upload [default: the file's [gc]
    /// grace, else 1h]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub grace: Option<Duration>,
    /// The server's TOML file: its data, [gc] and [policy] retention
    /// (applied before collecting) are used; flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also delete untagged manifests that no index or live subject reaches
    #[arg(long)]
    pub delete_untagged: bool,
    /// Registry content directory (serve's --data) [default: <root>/registry]
    #[arg(value_name = "DATADIR")]
    pub datadir: Option<PathBuf>,
}

pub fn duration(s: &str) -> Result<Duration, String> {
    kiln_core::parse_go_duration(s)
        .ok_or_else(|| format!("invalid duration {s:?}: write it as 30s, 10m, 1h or 1h30m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(duration("10").unwrap_err().contains("write it as 30s"));
    }
}
