//! The server of `kiln serve` (run by the `kiln-serve` binary): an OCI distribution registry (`kiln_registry`) on
//! `--addr`, its content under `<root>/registry` (or `--data DIR`), or in
//! an S3 bucket (`--storage s3://...`, credentials from
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`) shared by replicas that
//! share `--upload-secret-file`; configured by `--config
//! kiln-registry.toml` (see docs/serve.md) with flags overriding the file.
//! Stops on SIGINT or SIGTERM once the requests in flight have finished.
//! `--proxy URL` makes it a pull-through cache of another registry.
//! `--gc-interval` collects garbage while serving; `kiln serve gc DATADIR`
//! collects once and prints what it deleted (or, `--dry-run`, would).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kiln_registry::cli::{GcArgs, ServeArgs, ServeCommand};
use kiln_registry::{Config, FsStorage, LogFormat, ObjectStorage, S3Config, Storage};

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

pub(crate) fn run(root: &Path, mut args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(ServeCommand::Gc(gc_args)) = args.command.take() {
        return gc(root, gc_args);
    }
    crate::memory::limit_arenas();
    let config = args.config().map_err(anyhow::Error::from_boxed)?;
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
