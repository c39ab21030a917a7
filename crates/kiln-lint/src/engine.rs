//! One lint run: parse, then each family of rules over the same parse,
//! collecting warnings through one [`Ctx`] that applies the `# check=`
//! directive and BuildKit's ordering.

use std::collections::BTreeMap;

use kiln_core::Platform;
use kiln_dockerfile::lines::{logical_lines, LogicalLine};
use kiln_dockerfile::Dockerfile;

use crate::check::CheckConfig;
use crate::report::{BuildError, Report, Warning};
use crate::rules::{Level, Origin, Rule};

/// What the caller knows about the build the Dockerfile is for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Shown in the output (`Dockerfile`, `app/Dockerfile.dev`…).
    pub filename: String,
    /// `--build-arg`s; `BUILDKIT_DOCKERFILE_CHECK` replaces the `# check=`
    /// directive, as in BuildKit.
    pub build_args: BTreeMap<String, String>,
    pub build_platform: Platform,
    pub target_platform: Platform,
    /// The `.dockerignore` text, for CopyIgnoredFile (`None`: no file).
    pub dockerignore: Option<String>,
    /// The build has a `SOURCE_DATE_EPOCH` (environment or build
    /// argument): it asks for reproducibility, whatever the file says.
    pub reproducible: bool,
}

impl Options {
    /// Defaults for a Dockerfile linted on its own on this machine.
    pub fn new(filename: impl Into<String>) -> Options {
        Options {
            filename: filename.into(),
            build_args: BTreeMap::new(),
            build_platform: Platform::host(),
            target_platform: Platform::host(),
            dockerignore: None,
            reproducible: false,
        }
    }
}

/// What kiln knows about a base image (from its store), for the rules
/// that need more than the Dockerfile: UndefinedVar (the base's Env),
/// JSONArgsRecommended (its SHELL) and InvalidBaseImagePlatform.
#[derive(Debug, Clone, Default)]
pub struct BaseImage {
    /// `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// The config has a `Shell`.
    pub shell: bool,
    /// The image's platform; `None` skips InvalidBaseImagePlatform.
    pub platform: Option<Platform>,
}

/// Looks base images up: the seam between the linter and the store.
pub trait BaseImages {
    /// The image `reference` (as the FROM line names it, expanded) for
    /// `platform`, if known.
    fn lookup(&self, reference: &str, platform: &Platform) -> Option<BaseImage>;
}

/// Knows no image: `kiln lint` on its own. Rules that need a base image's
/// config skip stages built on unknown images.
pub struct NoBaseImages;

impl BaseImages for NoBaseImages {
    fn lookup(&self, _: &str, _: &Platform) -> Option<BaseImage> {
        None
    }
}

/// Where warnings go while the rules run.
pub(crate) struct Ctx<'a> {
    pub df: &'a Dockerfile,
    pub lines: &'a [LogicalLine],
    pub opts: &'a Options,
    pub bases: &'a dyn BaseImages,
    check: CheckConfig,
    pub warnings: Vec<Warning>,
}

/// One range per line from `start` to `end`, as BuildKit locates a node.
pub(crate) fn node(start: usize, end: usize) -> Vec<(usize, usize)> {
    (start..=end.max(start)).map(|l| (l, l)).collect()
}

impl Ctx<'_> {
    pub(crate) fn warn(
        &mut self,
        rule: &'static Rule,
        detail: String,
        ranges: Vec<(usize, usize)>,
    ) {
        let mut level = rule.level;
        if rule.origin == Origin::BuildKit {
            if self.check.skips(rule.name) {
                return;
            }
            if self.check.error {
                level = Level::Error;
            }
        }
        self.warnings.push(Warning {
            rule,
            detail,
            level,
            ranges,
        });
    }

    /// The logical line that starts on `line`.
    pub(crate) fn line_at(&self, line: usize) -> Option<&LogicalLine> {
        self.lines.iter().find(|l| l.span.line == line)
    }

    /// The last line of the instruction starting on `line`.
    pub(crate) fn end_of(&self, line: usize) -> usize {
        self.line_at(line).map_or(line, |l| l.end_line)
    }

    /// BuildKit's location of the instruction starting on `line`.
    pub(crate) fn at(&self, line: usize) -> Vec<(usize, usize)> {
        node(line, self.end_of(line))
    }
}

/// Lints one Dockerfile. A Dockerfile that does not parse gives a report
/// with its error (BuildKit's `buildError`) and no warnings.
pub fn lint(text: &str, opts: &Options, bases: &dyn BaseImages) -> Report {
    let mut report = Report {
        filename: opts.filename.clone(),
        source: text.to_string(),
        warnings: Vec::new(),
        error: None,
        buildkit_error: false,
    };
    let fail = |report: &mut Report, message: String, line: usize| {
        report.error = Some(BuildError { message, line });
    };
    let (directives, lines) = match logical_lines(text) {
        Ok(v) => v,
        Err(e) => {
            fail(&mut report, e.message.clone(), e.span.line);
            return report;
        }
    };
    let check_text = opts
        .build_args
        .get("BUILDKIT_DOCKERFILE_CHECK")
        .cloned()
        .or(directives.check.clone())
        .unwrap_or_default();
    let check = match CheckConfig::parse(&check_text) {
        Ok(c) => c,
        Err(e) => {
            fail(
                &mut report,
                format!("failed to parse check options: {e}"),
                0,
            );
            return report;
        }
    };
    let df = match kiln_dockerfile::parse_lenient(text) {
        Ok(df) => df,
        Err(e) => {
            let mut message = e.message.clone();
            if let Some(h) = &e.hint {
                message.push_str(&format!(" ({h})"));
            }
            fail(&mut report, message, e.span.line);
            return report;
        }
    };
    let mut ctx = Ctx {
        df: &df,
        lines: &lines,
        opts,
        bases,
        check,
        warnings: Vec::new(),
    };
    crate::buildkit::check(&mut ctx);
    crate::hadolint::check(&mut ctx);
    crate::waste::check(&mut ctx);
    crate::pinning::check(&mut ctx, text);
    let error_on_warn = ctx.check.error;
    let mut warnings = ctx.warnings;
    // BuildKit's order: by first line (those without a line first), the
    // order found kept among equals.
    warnings.sort_by_key(Warning::line);
    report.buildkit_error =
        error_on_warn && warnings.iter().any(|w| w.rule.origin == Origin::BuildKit);
    report.warnings = warnings;
    report
}
