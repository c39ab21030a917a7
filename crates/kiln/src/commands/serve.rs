//! `kiln serve`: an OCI distribution registry (`kiln_registry`) on
//! `--addr`, its content under `<root>/registry` (or `--data DIR`), or in
//! an S3 bucket (`--storage s3://...`, credentials from
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`) shared by replicas that
//! share `--upload-secret-file`. Stops on SIGINT or SIGTERM once the
//! requests in flight have finished.
//! `--gc-interval` collects garbage while serving; `kiln serve gc DATADIR`
//! collects once and prints what it deleted (or, `--dry-run`, would).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kiln_registry::{FsStorage, ObjectStorage, S3Config, Storage};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on (port 0: any free port; the address is printed)
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "HOST:PORT")]
    addr: String,
    /// Registry content directory [default: <root>/registry]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Tags of repositories matching PATTERN (`*`, `?`) never change once
    /// pushed (repeatable)
    #[arg(long = "immutable-tags", value_name = "PATTERN")]
    immutable_tags: Vec<String>,
    /// Require Basic auth by the users of this htpasswd file (bcrypt, as
    /// `htpasswd -B` writes)
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
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
    /// Collect garbage every INTERVAL while serving (`1h`, `10m`, `30s`);
    /// off by default
    #[arg(long, value_name = "INTERVAL", value_parser = duration)]
    gc_interval: Option<Duration>,
    /// The online collection deletes nothing younger than this: it must
    /// cover the longest pause of a client mid-upload
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration)]
    gc_grace: Duration,
    /// The online collection also deletes untagged manifests that no index
    /// or live subject reaches
    #[arg(long)]
    gc_delete_untagged: bool,
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
    /// longest pause of a client mid-upload
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration)]
    grace: Duration,
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
    let dir = args.datadir.unwrap_or_else(|| root.join("registry"));
    if !dir.join("blobs").is_dir() {
        anyhow::bail!(
            "{} is not a registry directory (no blobs/): give the directory `kiln serve --data` uses",
            dir.display()
        );
    }
    let storage =
        FsStorage::open(&dir).with_context(|| format!("open registry at {}", dir.display()))?;
    let options = kiln_registry::GcOptions {
        grace: args.grace,
        delete_untagged: args.delete_untagged,
        dry_run: args.dry_run,
    };
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

pub(crate) fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Command::Gc(gc_args)) = args.command {
        return gc(root, gc_args);
    }
    let (storage, place): (Arc<dyn Storage>, String) = match &args.storage {
        Some(url) => {
            let mut config = S3Config::parse(url)?;
            // Credentials never sit in the URL (it is printed and logged).
            config.access_key_id = std::env::var("AWS_ACCESS_KEY_ID").ok();
            config.secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY").ok();
            let storage =
                ObjectStorage::s3(&config).with_context(|| format!("open the bucket of {url}"))?;
            (Arc::new(storage), format!("bucket {}", config.bucket))
        }
        None => {
            let dir = args.data.unwrap_or_else(|| root.join("registry"));
            let storage = FsStorage::open(&dir)
                .with_context(|| format!("open registry at {}", dir.display()))?;
            (Arc::new(storage), dir.display().to_string())
        }
    };
    let upload_secret = match &args.upload_secret_file {
        None => None,
        Some(path) => {
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
            Some(secret)
        }
    };
    let htpasswd = match &args.htpasswd {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            let parsed = kiln_registry::Htpasswd::parse(&text)
                .with_context(|| format!("read {}", path.display()))?;
            Some(parsed)
        }
    };
    let options = kiln_registry::Options {
        immutable_tags: args.immutable_tags,
        htpasswd,
        upload_secret,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        // main resets SIGPIPE to its default (a CLI piped into `head` must
        // die quietly); a server must not die when a client hangs up
        // mid-response. A handler makes writes fail with EPIPE instead.
        let _sigpipe = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe())
            .context("handle SIGPIPE")?;
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| {
                format!(
                    "listen on {}: is another server there? choose another address with --addr",
                    args.addr
                )
            })?;
        let addr = listener.local_addr().context("listening address")?;
        // Tests and scripts read the address (port 0 picks one).
        println!("kiln serve: listening on http://{addr}, content in {place}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let collector = args.gc_interval.map(|interval| {
            let gc = kiln_registry::GcOptions {
                grace: args.gc_grace,
                delete_untagged: args.gc_delete_untagged,
                dry_run: false,
            };
            kiln_registry::gc::spawn(storage.clone(), gc, interval)
        });
        kiln_registry::serve(listener, storage, options, shutdown())
            .await
            .context("serve")?;
        if let Some(c) = collector {
            c.abort();
        }
        println!("kiln serve: stopped");
        Ok(ExitCode::SUCCESS)
    })
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
