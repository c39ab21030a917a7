//! What the registry commands (pull, push, login, copy, and build's base
//! pulls) share: the client flags, the async runtime, and the progress view
//! (a bar per blob on a terminal, docker's status lines otherwise).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_core::Digest;
use kiln_registry_client::{BlobEvent, Client, ClientOptions, Credentials, Progress};

/// Flags every command that talks to a registry takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct RegistryArgs {
    /// Speak plain HTTP to this registry (host[:port]); repeatable.
    /// localhost and 127.0.0.1 always use HTTP
    #[arg(
        long = "insecure-registry",
        value_name = "HOST",
        env = "KILN_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure: Vec<String>,
    /// Trust this PEM CA certificate too; repeatable
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,
    /// Credentials file [default: $DOCKER_CONFIG/config.json or ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Use these credentials (USER:PASSWORD) instead of the stored ones
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Blobs transferred at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_concurrent: usize,
}

impl RegistryArgs {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let credentials = match &self.creds {
            Some(c) => {
                let (u, p) = c
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--creds takes USER:PASSWORD (got no ':')"))?;
                Some(Credentials {
                    username: u.to_string(),
                    secret: p.to_string(),
                })
            }
            None => None,
        };
        Ok(Client::new(ClientOptions {
            insecure_registries: self.insecure.clone(),
            ca_certificates: self.ca_certs.clone(),
            docker_config: self
                .authfile
                .clone()
                .unwrap_or_else(super::docker_config_path),
            credentials,
            concurrency: self.max_concurrent.max(1),
            ..ClientOptions::default()
        })?)
    }
}

/// Runs transfer code on a small multi-threaded runtime (the machine's
/// cores; network transfers are mostly waiting and hashing).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// Docker's short blob name: the first 12 hex digits.
pub(crate) fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

/// The progress view.
pub(crate) struct View {
    bars: Option<(MultiProgress, Mutex<HashMap<Digest, ProgressBar>>)>,
    quiet: bool,
}

impl View {
    /// Bars when stderr is a terminal and not `quiet`; lines otherwise.
    pub(crate) fn new(quiet: bool) -> View {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Mutex::new(HashMap::new()),
            )
        });
        View { bars, quiet }
    }

    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((m, _)) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Progress for View {
    fn blob(&self, digest: &Digest, event: BlobEvent<'_>) {
        let id = short(digest);
        let Some((multi, bars)) = &self.bars else {
            match event {
                BlobEvent::AlreadyExists => self.line(format!("{id}: Already exists")),
                BlobEvent::Mounted { from } => self.line(format!("{id}: Mounted from {from}")),
                BlobEvent::Done(word) => self.line(format!("{id}: {word}")),
                BlobEvent::Start { .. } | BlobEvent::Bytes { .. } => {}
            }
            return;
        };
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            BlobEvent::Start { total } => {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(id.to_string());
                bar.set_message("Transferring");
                bars.insert(digest.clone(), bar);
            }
            BlobEvent::Bytes { done } => {
                if let Some(bar) = bars.get(digest) {
                    bar.set_position(done);
                }
            }
            BlobEvent::AlreadyExists | BlobEvent::Mounted { .. } | BlobEvent::Done(_) => {
                let word = match event {
                    BlobEvent::AlreadyExists => "Already exists".to_string(),
                    BlobEvent::Mounted { from } => format!("Mounted from {from}"),
                    BlobEvent::Done(w) => w.to_string(),
                    _ => String::new(),
                };
                if let Some(bar) = bars.remove(digest) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(format!("{id}: {word}"));
            }
        }
    }
}
