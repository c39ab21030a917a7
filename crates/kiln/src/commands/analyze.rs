//! `kiln image analyze IMAGE` (alias `kiln dive`): where an image's bytes
//! go and which are wasted, with dive's numbers (`kiln-analyze`).
//!
//! On a terminal it opens the explorer; otherwise it prints a report (text,
//! or kiln's JSON with `--format json`). `--ci` (or `CI=true`) checks dive's
//! rules and prints dive's report, exiting 1 on a failure or a rule it
//! cannot read; `--json FILE` writes dive's export and stops, as dive does.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kiln_analyze::{analyze, ci, export, summary, CiConfig, Source};
use kiln_store::Store;

/// The output when not exploring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    Text,
    Json,
}

/// What `kiln build --analyze` prints after the image is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AfterBuild {
    Off,
    Summary,
    Full,
}

/// Waste under this many bytes is not worth a line after a build.
const BUILD_WASTE_THRESHOLD: u64 = 1_000_000;

/// The build's hook: analyses the image just built and prints, on stderr,
/// the efficiency and waste line and the largest waste with its steps
/// (three groups for `summary`, all for `full`) when the waste is over
/// 1 MB (always for `full`). An analysis that fails is a warning, never a
/// failed build.
pub(crate) fn after_build(store: &Store, entry: &kiln_store::IndexEntry, mode: AfterBuild) {
    if mode == AfterBuild::Off {
        return;
    }
    let analysis = store
        .load_image(entry)
        .map_err(kiln_analyze::AnalyzeError::from)
        .and_then(|image| kiln_analyze::source::from_image(store, "the image", image))
        .and_then(|source| analyze(&source));
    let a = match analysis {
        Ok(a) => a,
        Err(e) => {
            eprintln!("#analyze skipped: {e}");
            return;
        }
    };
    let waste = a.wasted_bytes.max(a.waste.total);
    if mode == AfterBuild::Summary && waste <= BUILD_WASTE_THRESHOLD {
        return;
    }
    eprintln!("#analyze {}", summary::one_line(&a));
    let n = if mode == AfterBuild::Full {
        usize::MAX
    } else {
        3
    };
    for line in summary::top_waste(&a, n) {
        for l in line.lines() {
            eprintln!("#analyze {l}");
        }
    }
}

/// dive's `--source` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SourceKind {
    /// The kiln store
    Kiln,
    /// A `docker save` tar
    DockerArchive,
    /// A tar of an OCI layout
    OciArchive,
    /// An OCI layout directory
    Oci,
    /// A registry
    Docker,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Image: a name in the store, docker-archive:PATH, oci-archive:PATH,
    /// oci:DIR[:REF] or docker://REF
    image: String,
    /// Read IMAGE from this kind of source (dive's --source); without it
    /// the transport prefix of IMAGE decides
    #[arg(long, value_enum, value_name = "KIND")]
    source: Option<SourceKind>,
    /// Check dive's CI rules instead of exploring (also when CI=true)
    #[arg(long)]
    ci: bool,
    /// The CI rules file (dive's YAML `.dive-ci`)
    #[arg(long, value_name = "FILE", default_value = ".dive-ci")]
    ci_config: PathBuf,
    /// CI rule: lowest allowed efficiency (0-1, or `disabled`) [default: 0.9]
    #[arg(long = "lowestEfficiency", value_name = "RATIO")]
    lowest_efficiency: Option<String>,
    /// CI rule: highest allowed wasted bytes (`20MB`, or `disabled`) [default: disabled]
    #[arg(long = "highestWastedBytes", value_name = "BYTES")]
    highest_wasted_bytes: Option<String>,
    /// CI rule: highest allowed wasted/user-added ratio (0-1, or `disabled`) [default: 0.1]
    #[arg(long = "highestUserWastedPercent", value_name = "RATIO")]
    highest_user_wasted_percent: Option<String>,
    /// Write dive's JSON export of the analysis to FILE (and explore nothing)
    #[arg(short = 'j', long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Report format when not exploring: text, or json (kiln's report with
    /// waste by cause and step)
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<ReportFormat>,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

/// `CI` as Go's `strconv.ParseBool` reads it (dive's rule).
pub(crate) fn ci_from_env() -> bool {
    matches!(
        std::env::var("CI").as_deref(),
        Ok("1" | "t" | "T" | "TRUE" | "true" | "True")
    )
}

fn source_of(args: &Args) -> Source {
    let i = args.image.clone();
    match args.source {
        None => Source::parse(&i),
        Some(SourceKind::Kiln) => Source::Store(i),
        Some(SourceKind::DockerArchive) => Source::parse(&format!("docker-archive:{i}")),
        Some(SourceKind::OciArchive) => Source::parse(&format!("oci-archive:{i}")),
        Some(SourceKind::Oci) => Source::parse(&format!("oci:{i}")),
        Some(SourceKind::Docker) => Source::Registry(i),
    }
}

fn ci_config(args: &Args, out: &mut impl Write) -> anyhow::Result<CiConfig> {
    let mut config = CiConfig::default();
    if args.ci_config.exists() {
        writeln!(out, "  Using CI config: {}", args.ci_config.display())?;
        let text = std::fs::read_to_string(&args.ci_config)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.ci_config.display()))?;
        config = config.apply_file(&text)?;
    } else {
        writeln!(out, "  Using default CI config")?;
    }
    // Flags given on the command line win over the file (viper's order).
    for (flag, slot) in [
        (&args.lowest_efficiency, &mut config.lowest_efficiency),
        (&args.highest_wasted_bytes, &mut config.highest_wasted_bytes),
        (
            &args.highest_user_wasted_percent,
            &mut config.highest_user_wasted_percent,
        ),
    ] {
        if let Some(v) = flag {
            slot.clone_from(v);
        }
    }
    Ok(config)
}

fn transport(s: &Source) -> &'static str {
    match s {
        Source::Store(_) => "kiln",
        Source::DockerArchive(..) => "docker-archive",
        Source::OciArchive(..) => "oci-archive",
        Source::OciDir(..) => "oci",
        Source::Registry(_) => "docker",
    }
}

pub(crate) fn run(store: &Store, args: Args, ci_env: bool) -> anyhow::Result<ExitCode> {
    let is_ci = args.ci || ci_env;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let config = if is_ci {
        Some(ci_config(&args, &mut out)?)
    } else {
        None
    };
    let source = source_of(&args);
    let image = match &source {
        Source::Registry(r) => kiln_analyze::open_registry(args.registry.client()?, r)?,
        s => kiln_analyze::open(s, Some(store))?,
    };
    if is_ci {
        // dive's progress lines, so the report reads as dive's does.
        writeln!(out, "Image Source: {}", args.image)?;
        writeln!(
            out,
            "Extracting image from {}... (this can take a while for large images)",
            transport(&source)
        )?;
        writeln!(out, "Analyzing image...")?;
    }
    crate::memory::release_startup_code();
    let analysis = analyze(&image)?;

    if let Some(path) = &args.json {
        let doc = serde_json::to_vec_pretty(&export::dive_export(&analysis))?;
        std::fs::write(path, doc).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(config) = config {
        out.write_all(ci::summary_lines(&analysis).as_bytes())?;
        let outcome = ci::evaluate(&analysis, &config);
        out.write_all(outcome.report.as_bytes())?;
        writeln!(out)?;
        return Ok(if outcome.pass {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    match args.format {
        Some(ReportFormat::Json) => {
            serde_json::to_writer_pretty(&mut out, &export::report(&analysis))?;
            writeln!(out)?;
        }
        Some(ReportFormat::Text) => out.write_all(summary::text_report(&analysis).as_bytes())?,
        None if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() => {
            drop(out);
            kiln_analyze::tui::run(&analysis)?;
        }
        None => out.write_all(summary::text_report(&analysis).as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
