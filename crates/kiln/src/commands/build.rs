//! `kiln build`: docker build's flags, a daemonless build into the store.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use kiln_build::{build, BuildRequest, Progress};

use super::build_progress::{PlainProgress, TtyProgress};
use kiln_core::ImageRef;
use kiln_dockerfile::ignore::{ignore_file_for, Matcher};
use kiln_exec::{Network, Runtime};
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Name (and optionally tag) the image, NAME[:TAG]; repeatable
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; "-" reads standard input)
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Set a build-time variable (NAME=VALUE, or NAME to take it from the environment)
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    build_args: Vec<String>,
    /// Build this stage (and what it needs) instead of the last one
    #[arg(long)]
    target: Option<String>,
    /// Do not use the cache
    #[arg(long)]
    no_cache: bool,
    /// Do not use the cache for this stage; repeatable
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    no_cache_filter: Vec<String>,
    /// Set a label on the image (KEY=VALUE); repeatable
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    secrets: Vec<String>,
    /// Network for RUN steps: default (the host's), host or none
    #[arg(long, default_value = "default")]
    network: String,
    /// Write the image ID to this file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Target platforms, comma-separated (linux/amd64,linux/arm64): one image
    /// each (foreign ones' RUN steps through QEMU), joined in an image index
    /// under the tags
    #[arg(long)]
    platform: Option<String>,
    /// Also export: type=oci,dest=FILE | type=docker,dest=FILE | type=local,dest=DIR |
    /// type=tar,dest=FILE | type=registry (as --push); with several platforms,
    /// oci holds the index, local and tar a directory per platform (linux_amd64/)
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// Push the image (a multi-platform index with all its images) to the
    /// registry of each tag after the build
    #[arg(long)]
    push: bool,
    /// Progress output: auto, plain or tty
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Print only the image ID
    #[arg(short = 'q', long)]
    quiet: bool,
    /// An OCI runtime binary to run RUN steps with (e.g. runc) instead of the built-in one
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// Always pull FROM images from their registry, even when the store has them
    #[arg(long)]
    pull: bool,
    /// Add a line to /etc/hosts of RUN steps: HOST:IP (repeatable)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    add_hosts: Vec<String>,
    /// Allow extra privileges: security.insecure (RUN --security=insecure), network.host
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    allow: Vec<String>,
    /// Remove intermediate containers (always: kiln keeps none; accepted for docker's scripts)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    rm: bool,
    /// Always remove intermediate containers (always: kiln keeps none)
    #[arg(long)]
    force_rm: bool,
    /// After naming the image: its waste summary when over 1 MB (summary),
    /// every waste group (full), or nothing (off)
    #[arg(long, value_enum, default_value = "summary", value_name = "MODE")]
    analyze: super::analyze::AfterBuild,
    /// Record a SLSA provenance (v0.2) attestation beside the image in the store: base image digests, context digest, build arguments
    #[arg(long)]
    provenance: bool,
    /// Sign the provenance with this key (cosign's key file), so kiln verify-attestation checks it
    #[arg(long, value_name = "FILE", requires = "provenance")]
    provenance_key: Option<PathBuf>,
    /// Attach an SBOM to the image (as BuildKit's --sbom): an in-toto SPDX
    /// statement stored as an artifact referring to it
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    sbom: bool,
    /// The build context: a directory; "-" reads a tar archive (plain, gzip, bzip2, xz, zstd) or a lone Dockerfile from standard input
    context: String,
    /// How base images missing from the store are pulled
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// Export the build cache: type=registry,ref=NAME[,mode=min|max][,compression=gzip|zstd|uncompressed],
    /// type=local,dest=DIR[,mode=…][,compression=…] or type=inline (see docs/build-cache.md)
    #[arg(long = "cache-to", value_name = "SPEC")]
    cache_to: Vec<String>,
    /// Reuse a build cache: type=registry,ref=NAME or type=local,src=DIR; repeatable
    #[arg(long = "cache-from", value_name = "SPEC")]
    cache_from: Vec<String>,
    /// Only check the Dockerfile (as docker build --check) and exit: build nothing
    #[arg(long)]
    check: bool,
    /// With --check: the output format and failure threshold
    #[command(flatten)]
    lint: super::lint::OutputArgs,
}

/// Pulls a FROM image that is not in the store, for the build engine: the
/// stage's platform, or (`whole`: a build of several platforms, whose
/// builds would otherwise each move the tag to their own platform's image)
/// every platform of the index.
fn fetch_base(store: &Store, args: &Args, whole: bool) -> anyhow::Result<kiln_build::FetchBase> {
    let client = args.registry.client()?;
    let store = store.clone();
    let quiet = args.quiet;
    Ok(Box::new(
        move |name: &str, platform: &kiln_core::Platform| {
            let reference: ImageRef = name.parse().map_err(|e| format!("{e}"))?;
            if !quiet {
                eprintln!("pulling {} (not in the store)", reference.familiar());
            }
            let opts = kiln_registry_client::PullOptions {
                platform: Some(platform.clone()),
                all_platforms: whole,
            };
            let view = super::registry::View::new(quiet);
            super::registry::block_on(kiln_registry_client::pull(
                &client, &store, &reference, &opts, &view,
            ))
            .map_err(|e| e.to_string())?
            .map(|_| ())
            .map_err(|e| e.to_string())
        },
    ))
}

fn key_values(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for i in items {
        let Some((k, v)) = i.split_once('=') else {
            bail!("{what} {i:?}: use KEY=VALUE");
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn secrets(items: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for s in items {
        let mut id = None;
        let mut src = None;
        for field in s.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => bail!("--secret {s:?}: use id=ID,src=FILE"),
            }
        }
        let (Some(id), Some(src)) = (id, src) else {
            bail!("--secret {s:?}: both id=ID and src=FILE are needed");
        };
        if !src.is_file() {
            bail!("--secret {s:?}: {} is not a readable file", src.display());
        }
        out.insert(id, src);
    }
    Ok(out)
}

/// `KILN_SNAPSHOTTER=overlay|native` overrides the snapshotter kiln picks
/// (overlay when it can mount one).
fn snapshotter() -> anyhow::Result<Option<kiln_build::Backend>> {
    match std::env::var("KILN_SNAPSHOTTER").as_deref() {
        Ok("native") => Ok(Some(kiln_build::Backend::Native)),
        Ok("overlay") => Ok(Some(kiln_build::Backend::Overlay)),
        Ok(other) => bail!("KILN_SNAPSHOTTER={other}: use overlay or native"),
        Err(_) => Ok(None),
    }
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let platforms = super::build_multi::platforms(args.platform.as_deref())?;
    let platform = platforms[0].clone();
    let network = match args.network.as_str() {
        "default" | "host" => Network::Host,
        "none" => Network::None,
        other => bail!("--network {other}: use default, host or none"),
    };
    if !matches!(args.progress.as_str(), "auto" | "plain" | "tty") {
        bail!("--progress {}: use auto, plain or tty", args.progress);
    }
    let mut allow_insecure = false;
    for a in &args.allow {
        match a.as_str() {
            "security.insecure" => allow_insecure = true,
            // kiln's RUN steps use the host's network unless told otherwise.
            "network.host" => {}
            other => bail!("--allow {other}: use security.insecure or network.host"),
        }
    }
    let add_hosts = args
        .add_hosts
        .iter()
        .map(|h| add_host(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let _ = (args.rm, args.force_rm); // no intermediate containers to keep
    let push = args.push || super::build_multi::is_registry_output(args.output.as_deref());
    let output: Option<kiln_build::export::Output> = args
        .output
        .as_deref()
        .filter(|o| !super::build_multi::is_registry_output(Some(o)))
        .map(str::parse)
        .transpose()?;
    if push && args.tags.is_empty() {
        bail!("--push (or -o type=registry) needs a name to push to: add -t REGISTRY/NAME[:TAG]");
    }
    let cache = super::build_cache::Specs::parse(&args.cache_to, &args.cache_from)?;
    let (stdin_context, stdin_dockerfile) = if args.context == "-" {
        if args.file.as_deref() == Some(Path::new("-")) {
            bail!("the context and the Dockerfile cannot both come from standard input");
        }
        let (dir, dockerfile) = stdin_context()?;
        if dockerfile.is_some() && args.file.is_some() {
            bail!("standard input holds a Dockerfile, not a context archive: -f cannot name another one; drop -f");
        }
        (Some(dir), dockerfile)
    } else {
        if is_remote(&args.context) {
            bail!(
                "context {}: remote contexts (git repositories and URLs) are not supported yet; clone or download it and pass the directory",
                args.context
            );
        }
        (None, None)
    };
    let context_dir: PathBuf = match &stdin_context {
        Some(dir) => dir.path().to_path_buf(),
        None => {
            let p = PathBuf::from(&args.context);
            if !p.is_dir() {
                bail!(
                    "context {}: not a directory (a directory, or - for standard input)",
                    p.display()
                );
            }
            p
        }
    };
    let (dockerfile, dockerfile_path) = match &args.file {
        _ if stdin_dockerfile.is_some() => (
            stdin_dockerfile.clone().unwrap_or_default(),
            context_dir.join("Dockerfile"),
        ),
        // With a context archive, -f names a file inside it.
        Some(f) if stdin_context.is_some() && f.as_os_str() != "-" => {
            let inside = context_dir.join(f.strip_prefix("/").unwrap_or(f));
            (
                std::fs::read_to_string(&inside).with_context(|| {
                    format!(
                        "read {} from the context archive on standard input",
                        f.display()
                    )
                })?,
                inside,
            )
        }
        Some(f) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("read the Dockerfile from standard input")?;
            (s, context_dir.join("Dockerfile"))
        }
        Some(f) => (
            std::fs::read_to_string(f)
                .with_context(|| format!("read Dockerfile {}", f.display()))?,
            f.clone(),
        ),
        None => {
            let f = context_dir.join("Dockerfile");
            (
                std::fs::read_to_string(&f).with_context(|| {
                    format!("read {} (use -f to name another Dockerfile)", f.display())
                })?,
                f,
            )
        }
    };
    let mut ignore = Matcher::default();
    for candidate in ignore_file_for(&dockerfile_path, &context_dir) {
        if let Ok(text) = std::fs::read_to_string(&candidate) {
            ignore = Matcher::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", candidate.display()))?;
            break;
        }
    }
    // The build checks (kiln-lint): --check stops here; else warnings.
    let check = args.check.then_some(&args.lint);
    if let Some(code) = super::lint::before_build(
        store,
        &dockerfile,
        &dockerfile_path,
        &context_dir,
        &args.build_args,
        check,
        args.quiet,
    )? {
        return Ok(code);
    }
    let tags = args
        .tags
        .iter()
        .map(|t| super::parse_tag_name(t))
        .collect::<anyhow::Result<Vec<ImageRef>>>()?;
    let runtime = match &args.runtime {
        Some(p) => Runtime::Binary(p.clone()),
        None => Runtime::Builtin {
            helper: std::env::current_exe()
                .context("find the kiln binary to run containers with")?,
        },
    };
    let (source_date_epoch, epoch_source) = epoch(&args, &context_dir, stdin_context.is_some())?;
    let mut req = BuildRequest {
        dockerfile,
        context_dir,
        ignore,
        build_args: super::dockerfile::build_args(&args.build_args)?,
        target: args.target.clone(),
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        labels: key_values(&args.labels, "--label")?,
        secrets: secrets(&args.secrets)?,
        network,
        tags: tags.clone(),
        runtime,
        platform: platform.clone(),
        build_platform: kiln_core::Platform::host(),
        backend: snapshotter()?,
        fetch_base: Some(fetch_base(store, &args, platforms.len() > 1)?),
        source_date_epoch,
        add_hosts,
        allow_insecure,
        always_pull: args.pull,
        cache_from: super::build_cache::import(&cache.from, &args.registry, args.quiet)?,
        cache_export: cache.export_mode(),
        inline_cache: cache.inline(),
    };
    // The live view needs a terminal; without one, tty falls back to plain.
    let tty = args.progress != "plain" && std::io::stderr().is_terminal();
    let progress: Box<dyn Progress> = if tty && !args.quiet {
        Box::new(TtyProgress::new())
    } else {
        Box::new(PlainProgress::new(args.quiet))
    };
    let t0 = Instant::now();
    // The build holds a store lease while it writes; this one reaches past
    // it to the export, so a prune beside the build cannot collect the
    // image's blobs before they are exported.
    let _lease = store.lease()?;
    if platforms.len() > 1 {
        if args.provenance_key.is_some() {
            bail!("--provenance-key signs one image's provenance: with several platforms the provenance goes unsigned into the index, as BuildKit puts it; drop --provenance-key, or build each platform on its own");
        }
        req.tags.clear();
        let mut reqs = vec![req];
        for p in &platforms[1..] {
            let mut r = super::build_multi::request_like(&reqs[0], p.clone());
            r.fetch_base = Some(fetch_base(store, &args, true)?);
            reqs.push(r);
        }
        let multi = super::build_multi::Multi {
            tags: &tags,
            iidfile: args.iidfile.as_deref(),
            quiet: args.quiet,
            push: push.then_some(&args.registry),
            cache_to: cache.export(),
            registry: &args.registry,
            output: output.as_ref(),
            sbom: args.sbom,
            provenance: args.provenance.then(|| super::provenance::Inputs {
                dockerfile_text: &reqs[0].dockerfile,
                dockerfile_name: dockerfile_name(&dockerfile_path),
                context_dir: &reqs[0].context_dir,
                build_args: &reqs[0].build_args,
                target: reqs[0].target.as_deref(),
            }),
        };
        return multi.run(store, &reqs, progress, t0);
    }
    let result = build(store, &req, progress.as_ref());
    drop(progress);
    let result = result?;
    if let Some(f) = &args.iidfile {
        std::fs::write(f, result.id.to_string())
            .with_context(|| format!("write {}", f.display()))?;
    }
    if let (Some(to), Some(meta)) = (cache.export(), &result.cache) {
        super::build_cache::export(store, to, meta, &args.registry, args.quiet)?;
    }
    if let Some(output) = &output {
        // From the build's own manifest, not by name: a prune beside the
        // build may have untagged it by now (its blobs are leased).
        let image = store.load_image(&result.entry)?;
        kiln_build::export::export(store, &image, &tags, output)?;
    }
    let sbom = if args.sbom {
        let name = tags
            .first()
            .map(ToString::to_string)
            .unwrap_or_else(|| result.id.to_string());
        Some(super::sbom::after_build(
            store,
            &result.entry,
            &name,
            result.epoch,
        )?)
    } else {
        None
    };
    if args.quiet {
        println!("{}", result.id);
    } else {
        eprintln!(
            "#done writing image {} in {:.1}s",
            result.id,
            t0.elapsed().as_secs_f64()
        );
        eprintln!(
            "#done dated {} ({}), from {}",
            kiln_core::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(result.epoch)
            ),
            result.epoch,
            epoch_source.describe()
        );
        for t in &tags {
            eprintln!("#done naming to {}", t);
        }
        if let Some(a) = &sbom {
            eprintln!("#done attaching SBOM attestation {}", a.digest);
        }
        super::analyze::after_build(store, &result.entry, args.analyze);
    }
    if args.provenance {
        let inputs = super::provenance::Inputs {
            dockerfile_text: &req.dockerfile,
            dockerfile_name: dockerfile_name(&dockerfile_path),
            context_dir: &req.context_dir,
            build_args: &req.build_args,
            target: req.target.as_deref(),
        };
        let at = super::provenance::record(
            store,
            &result.entry,
            tags.first(),
            &inputs,
            args.provenance_key.as_deref(),
        )?;
        if !args.quiet {
            eprintln!("#done recording provenance {at}");
        }
    }
    if push {
        super::push::push_tags(store, &args.registry, &result.entry, &tags, args.quiet)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The build's timestamp: `SOURCE_DATE_EPOCH` from the environment or a
/// build argument, else the commit time of a clean git context, else 0.
fn epoch(
    args: &Args,
    context: &Path,
    from_stdin: bool,
) -> anyhow::Result<(Option<u64>, kiln_build::epoch::EpochSource)> {
    use kiln_build::epoch::{git_commit_time, EpochSource};
    if let Some(secs) = super::source_date_epoch()? {
        return Ok((Some(secs), EpochSource::SourceDateEpoch));
    }
    if args.build_args.iter().any(|a| {
        a.split_once('=')
            .is_some_and(|(k, _)| k == "SOURCE_DATE_EPOCH")
    }) {
        // The engine reads (and checks) the build argument.
        return Ok((None, EpochSource::SourceDateEpoch));
    }
    match (!from_stdin).then(|| git_commit_time(context)).flatten() {
        Some(t) => Ok((Some(t), EpochSource::GitCommit)),
        None => Ok((None, EpochSource::Zero)),
    }
}

/// The Dockerfile's name, as provenance records its entry point.
fn dockerfile_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into())
}

/// `--add-host HOST:IP` (or `HOST=IP`, as newer docker also takes).
fn add_host(spec: &str) -> anyhow::Result<(String, String)> {
    let (host, ip) = spec
        .split_once('=')
        .or_else(|| spec.split_once(':'))
        .ok_or_else(|| anyhow::anyhow!("--add-host {spec:?}: use HOST:IP"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
        bail!("--add-host {spec:?}: use HOST:IP with an IPv4 or IPv6 address");
    }
    Ok((host.to_string(), ip.to_string()))
}

/// A context docker would fetch: a git repository or an http(s) URL.
fn is_remote(context: &str) -> bool {
    ["http://", "https://", "git://", "git@", "github.com/"]
        .iter()
        .any(|p| context.starts_with(p))
}

/// `kiln build -`: standard input is a context archive (plain tar or
/// gzip, bzip2, xz, zstd), unpacked safely into a temporary directory, or
/// a lone Dockerfile with an empty context, as docker decides from its
/// first bytes.
fn stdin_context() -> anyhow::Result<(tempfile::TempDir, Option<String>)> {
    let dir = tempfile::tempdir().context("create a directory for the context")?;
    let mut stdin = super::stdin_file()?;
    let mut head = Vec::with_capacity(512);
    (&mut stdin)
        .take(512)
        .read_to_end(&mut head)
        .context("read the context from standard input")?;
    if head.is_empty() {
        bail!("standard input is empty: pipe a Dockerfile or a context archive into kiln build -");
    }
    let rest = std::io::Cursor::new(head.clone()).chain(stdin);
    if kiln_build::archive::looks_like_archive(&head) {
        kiln_build::archive::unpack_context(std::io::BufReader::new(rest), dir.path())
            .context("unpack the context from standard input")?;
        return Ok((dir, None));
    }
    let mut text = String::new();
    std::io::BufReader::new(rest)
        .read_to_string(&mut text)
        .context("read the Dockerfile from standard input (it is not a tar archive either)")?;
    Ok((dir, Some(text)))
}
