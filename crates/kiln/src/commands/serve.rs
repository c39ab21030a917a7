//! `kiln serve`: an OCI distribution registry (`kiln_registry`) on
//! `--addr`, its content under `<root>/registry` (or `--data DIR`), or in
//! an S3 bucket (`--storage s3://...`, credentials from
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`) shared by replicas that
//! share `--upload-secret-file`. Stops on SIGINT or SIGTERM once the
//! requests in flight have finished.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use kiln_registry::{FsStorage, ObjectStorage, S3Config, Storage};

#[derive(clap::Args)]
pub(crate) struct Args {
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
}

pub(crate) fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let (storage, place): (Arc<dyn Storage>, String) = match &args.storage {
        Some(url) => {
            let mut config = S3Config::parse(url)?;
            // Credentials never sit in the URL (it is printed and logged).
            config.access_key_id = std::env::var("AWS_ACCESS_KEY_ID").ok();
            config.secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY").ok();
            let storage = ObjectStorage::s3(&config)
                .with_context(|| format!("open the bucket of {url}"))?;
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
        kiln_registry::serve(listener, storage, options, shutdown())
            .await
            .context("serve")?;
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
