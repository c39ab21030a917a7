//! `kiln lint` and `kiln build --check`: kiln-lint's rules over
//! Dockerfiles, printed as docker's `build --check` text, BuildKit's lint
//! JSON or SARIF, with hadolint's `--failure-threshold` for the exit
//! status. Also what `kiln build` prints before it builds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use kiln_core::Platform;
use kiln_lint::{output, BaseImage, BaseImages, Level, NoBaseImages, Options, Report};
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Dockerfiles to check (default: ./Dockerfile; "-" reads standard input)
    files: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    /// Set a build-time variable (NAME=VALUE, or NAME to take it from the environment); BUILDKIT_DOCKERFILE_CHECK=… replaces the # check= directive
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    build_args: Vec<String>,
}

/// How findings are printed and when they fail the command.
#[derive(clap::Args, Clone)]
pub(crate) struct OutputArgs {
    /// Output format: text (docker build --check's), json (BuildKit's lint result) or sarif (SARIF 2.1.0)
    #[arg(long, value_enum, default_value = "text")]
    format: LintFormat,
    /// Exit 1 when a finding at or above this level fires: error, warning, info, style or none
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    failure_threshold: String,
}

impl Default for OutputArgs {
    fn default() -> OutputArgs {
        OutputArgs {
            format: LintFormat::Text,
            failure_threshold: "info".into(),
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LintFormat {
    Text,
    Json,
    Sarif,
}

fn threshold(s: &str) -> anyhow::Result<Option<Level>> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    s.parse::<Level>()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("--failure-threshold: {e} (or none)"))
}

/// Prints the reports and says how the command exits.
pub(crate) fn finish(reports: &[Report], out: &OutputArgs) -> anyhow::Result<ExitCode> {
    let level = threshold(&out.failure_threshold)?;
    let doc = match out.format {
        LintFormat::Text => output::text(reports),
        LintFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&output::json(reports))?
        ),
        LintFormat::Sarif => format!(
            "{}\n",
            serde_json::to_string_pretty(&output::sarif(reports))?
        ),
    };
    print!("{doc}");
    let failed = reports.iter().any(|r| r.fails(level));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The `.dockerignore` a build of `dockerfile` in `context` would use.
fn dockerignore(dockerfile: &Path, context: &Path) -> Option<String> {
    kiln_dockerfile::ignore::ignore_file_for(dockerfile, context)
        .into_iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
}

fn options(
    name: &str,
    build_args: &[String],
    dockerignore: Option<String>,
) -> anyhow::Result<Options> {
    let mut opts = Options::new(name);
    opts.build_args = super::dockerfile::build_args(build_args)?;
    opts.dockerignore = dockerignore;
    opts.reproducible =
        opts.build_args.contains_key("SOURCE_DATE_EPOCH") || super::source_date_epoch()?.is_some();
    Ok(opts)
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let files = if args.files.is_empty() {
        vec![PathBuf::from("Dockerfile")]
    } else {
        args.files.clone()
    };
    let mut reports = Vec::new();
    for f in &files {
        let (text, name) = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("read the Dockerfile from standard input")?;
            (s, "Dockerfile".to_string())
        } else {
            let text = std::fs::read_to_string(f).with_context(|| {
                format!(
                    "read {} (name a Dockerfile, or - for standard input)",
                    f.display()
                )
            })?;
            (text, f.display().to_string())
        };
        let context = f
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let ignore = (f.as_os_str() != "-")
            .then(|| dockerignore(f, context))
            .flatten();
        let opts = options(&name, &args.build_args, ignore)?;
        reports.push(kiln_lint::lint(&text, &opts, &NoBaseImages));
    }
    finish(&reports, &args.output)
}

/// Base images from the store: their Env, SHELL and platform, for the
/// rules that need them (UndefinedVar, JSONArgsRecommended,
/// InvalidBaseImagePlatform).
struct StoreBases<'a>(&'a Store);

impl BaseImages for StoreBases<'_> {
    fn lookup(&self, reference: &str, _: &Platform) -> Option<BaseImage> {
        let (_, image) = self.0.resolve(reference).ok()?;
        let config = &image.config;
        let platform = match (&config.os, &config.architecture) {
            (Some(os), Some(arch)) => Some(Platform::new(os, arch, config.variant.as_deref())),
            _ => None,
        };
        let container = config.container();
        Some(BaseImage {
            env: container.env().to_vec(),
            shell: container.shell.as_ref().is_some_and(|s| !s.is_empty()),
            platform,
        })
    }
}

/// What `kiln build` asks: lint the Dockerfile it is about to build, with
/// the store's base images. `Ok(Some(code))`: `--check` was given, the
/// build stops there with this exit status.
pub(crate) fn before_build(
    store: &Store,
    dockerfile: &str,
    path: &Path,
    context: &Path,
    build_args: &[String],
    check: Option<&OutputArgs>,
    quiet: bool,
) -> anyhow::Result<Option<ExitCode>> {
    let name = path
        .file_name()
        .map_or("Dockerfile".into(), |n| n.to_string_lossy().into_owned());
    let opts = options(&name, build_args, dockerignore(path, context))?;
    let report = kiln_lint::lint(dockerfile, &opts, &StoreBases(store));
    if let Some(out) = check {
        return finish(std::slice::from_ref(&report), out).map(Some);
    }
    // As BuildKit does: the findings on one line each, the build goes on
    // unless the Dockerfile says error=true.
    let lines = output::short(std::slice::from_ref(&report));
    if !quiet && !lines.is_empty() {
        match lines.len() {
            1 => eprintln!(" 1 warning found (use kiln build --check to expand):"),
            n => eprintln!(" {n} warnings found (use kiln build --check to expand):"),
        }
        for l in &lines {
            eprintln!(" - {l}");
        }
    }
    if let Some(m) = report.violation_message() {
        anyhow::bail!("{m} (the Dockerfile's # check=error=true; fix them or set error=false)");
    }
    Ok(None)
}
