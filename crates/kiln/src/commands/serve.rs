//! `kiln serve`: an OCI distribution registry (`kiln_registry`) on
//! `--addr`, its content under `<root>/registry` (or `--data DIR`), or in
//! an S3 bucket (`--storage s3://...`, credentials from
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`) shared by replicas that
//! share `--upload-secret-file`; configured by `--config
//! kiln-registry.toml` (see docs/serve.md) with flags overriding the file.
//! Stops on SIGINT or SIGTERM once the requests in flight have finished.
//! `--proxy URL` makes it a pull-through cache of another registry.
//! `--gc-interval` collects garbage while serving; `kiln serve gc DATADIR`
//! collects once and prints what it deleted (or, `--dry-run`, would).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kiln_registry::{Config, FsStorage, LogFormat, ObjectStorage, S3Config, Storage};

const CONFIG_HELP: &str = "\
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
Endpoints besides /v2/: /token, /metrics (Prometheus), /healthz, /readyz.
See docs/serve.md for the whole format.";

#[derive(clap::Args)]
#[command(after_long_help = CONFIG_HELP)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<Command>,
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

impl Args {
    /// The file's settings with the flags given laid over them.
    fn config(&self) -> anyhow::Result<Config> {
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
            c.tls = Some(kiln_registry::TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        if self.no_delete {
            c.policy.delete = false;
        }
        if let Some(f) = &self.log_format {
            c.log_format = Some(f.parse().map_err(anyhow::Error::msg)?);
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
        c.check().map_err(anyhow::Error::msg)?;
        Ok(c)
    }
}

#[derive(clap::Subcommand)]
enum Command {
    /// Delete blobs no manifest names, idle uploads and leftovers of a
    /// registry directory (safe while a server uses it)
    Gc(GcArgs),
}

#[derive(clap::Args)]
struct GcArgs {
    /// Print what would be deleted; delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Delete nothing younger than this (`10m`, `1h`): it must cover the
    /// longest pause of a client mid-upload [default: the file's [gc]
    /// grace, else 1h]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    grace: Option<Duration>,
    /// The server's TOML file: its data, [gc] and [policy] retention
    /// (applied before collecting) are used; flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also delete untagged manifests that no index or live subject reaches
    #[arg(long)]
    delete_untagged: bool,
    /// Registry content directory (serve's --data) [default: <root>/registry]
    #[arg(value_name = "DATADIR")]
    datadir: Option<PathBuf>,
}

fn duration(s: &str) -> Result<Duration, String> {
    kiln_container::logs::parse_duration(s)
        .ok_or_else(|| format!("invalid duration {s:?}: write it as 30s, 10m, 1h or 1h30m"))
}

/// `kiln serve gc`: one collection, each deletion on a line, then totals.
fn gc(root: &Path, args: GcArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let dir = args
        .datadir
        .or_else(|| config.data.clone())
        .unwrap_or_else(|| root.join("registry"));
    if !dir.join("blobs").is_dir() {
        anyhow::bail!(
            "{} is not a registry directory (no blobs/): give the directory `kiln serve --data` uses",
            dir.display()
        );
    }
    let storage =
        FsStorage::open(&dir).with_context(|| format!("open registry at {}", dir.display()))?;
    let mut options = config.gc.options(&config.policy);
    if let Some(g) = args.grace {
        options.grace = g;
    }
    options.delete_untagged |= args.delete_untagged;
    options.dry_run = args.dry_run;
    let report = kiln_registry::gc::collect(&storage, &options)
        .with_context(|| format!("collect garbage in {}", dir.display()))?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for g in &report.garbage {
        println!("{verb} {g}");
    }
    println!(
        "{verb} {} items, {} bytes; kept {} blobs and {} manifests",
        report.garbage.len(),
        report.bytes(),
        report.live_blobs,
        report.live_manifests
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(root: &Path, mut args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Command::Gc(gc_args)) = args.command.take() {
        return gc(root, gc_args);
    }
    crate::memory::limit_arenas();
    let config = args.config()?;
    let dir = config.data.clone().unwrap_or_else(|| root.join("registry"));
    let addr = config
        .addr
        .clone()
        .unwrap_or_else(|| "127.0.0.1:5000".into());
    let (storage, place): (Arc<dyn Storage>, String) = match &config.storage.url {
        Some(url) => {
            let mut s3 = S3Config::parse(url)?;
            // Credentials never sit in the URL (it is printed and logged).
            s3.access_key_id = std::env::var("AWS_ACCESS_KEY_ID").ok();
            s3.secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY").ok();
            let storage =
                ObjectStorage::s3(&s3).with_context(|| format!("open the bucket of {url}"))?;
            (Arc::new(storage), format!("bucket {}", s3.bucket))
        }
        None => {
            let storage = FsStorage::open(&dir)
                .with_context(|| format!("open registry at {}", dir.display()))?;
            (Arc::new(storage), dir.display().to_string())
        }
    };
    let mut options = config.options(&dir)?;
    options.access_log =
        kiln_registry::AccessLog::stderr(config.log_format.unwrap_or(LogFormat::Text));
    options.upload_secret = upload_secret(config.storage.upload_secret_file.as_deref())?;
    let tls = match &config.tls {
        Some(t) => Some(kiln_registry::server_config(&t.cert, &t.key)?),
        None => None,
    };
    options.https = tls.is_some();
    // A registry's handlers are short (metadata and streamed bodies), so a
    // current-thread runtime with a few blocking threads serves the
    // filesystem; a worker per core would mostly add idle threads and
    // memory. The object store's synchronous bridge waits with
    // `block_in_place`, which only a multi-thread runtime allows.
    let mut builder = if config.storage.url.is_some() {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = builder
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        // main resets SIGPIPE to its default (a CLI piped into `head` must
        // die quietly); a server must not die when a client hangs up
        // mid-response. A handler makes writes fail with EPIPE instead.
        let _sigpipe = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe())
            .context("handle SIGPIPE")?;
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| {
                format!(
                    "listen on {addr}: is another server there? choose another address with --addr"
                )
            })?;
        let local = listener.local_addr().context("listening address")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Tests and scripts read the address (port 0 picks one).
        println!("kiln serve: listening on {scheme}://{local}, content in {place}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let collector = config.gc.interval.map(|secs| {
            let gc = config.gc.options(&config.policy);
            let interval = Duration::from_secs(secs);
            kiln_registry::gc::spawn(storage.clone(), gc, interval, options.metrics.clone())
        });
        crate::memory::release_startup_code();
        match tls {
            Some(config) => {
                let listener =
                    kiln_registry::TlsListener::new(listener, config).context("listen")?;
                kiln_registry::serve(listener, storage, options, shutdown()).await
            }
            None => {
                let listener = kiln_registry::tcp_nodelay(listener);
                kiln_registry::serve(listener, storage, options, shutdown()).await
            }
        }
        .context("serve")?;
        if let Some(c) = collector {
            c.abort();
        }
        println!("kiln serve: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The secret that signs upload state in `Location` URLs, from `path`
/// (replicas sharing a bucket share it); `None`: a random one per process.
fn upload_secret(path: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let secret = std::fs::read(path)
        .with_context(|| format!("read the upload secret {}", path.display()))?;
    let secret = secret.trim_ascii().to_vec();
    if secret.len() < 16 {
        anyhow::bail!(
            "the upload secret in {} has {} bytes: use at least 16 (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            secret.len(),
            path.display()
        );
    }
    Ok(Some(secret))
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default actions stop the process.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
