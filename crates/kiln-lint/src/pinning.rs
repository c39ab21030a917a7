//! kiln's pinning rule: a Dockerfile that asks for a reproducible build
//! should name its base images by digest, since a tag can move and then
//! the same Dockerfile builds something else.
//!
//! A Dockerfile asks for reproducibility when it declares a
//! `SOURCE_DATE_EPOCH` ARG, when it carries a `# kiln: reproducible`
//! comment line, or when the build is given `SOURCE_DATE_EPOCH` (the
//! environment or a build argument: [`crate::Options::reproducible`]).

use kiln_dockerfile::expand::expand_word;
use kiln_dockerfile::Command;

use crate::buildkit::{set, Vars};
use crate::engine::Ctx;
use crate::hadolint::split_image;
use crate::rules::BASE_NOT_PINNED;

/// Why the Dockerfile asks for reproducibility, if it does.
fn reason(ctx: &Ctx, text: &str) -> Option<&'static str> {
    if ctx.opts.reproducible {
        return Some("the build sets SOURCE_DATE_EPOCH");
    }
    let df = ctx.df;
    let declares = df.global_args.iter().any(|a| a.name == "SOURCE_DATE_EPOCH")
        || df.stages.iter().flat_map(|s| &s.instructions).any(|i| {
            matches!(&i.command, Command::Arg(d) if d.iter().any(|a| a.name == "SOURCE_DATE_EPOCH"))
        });
    if declares {
        return Some("it declares ARG SOURCE_DATE_EPOCH");
    }
    let marked = text.lines().any(|l| {
        l.trim_start()
            .strip_prefix('#')
            .and_then(|c| c.trim().strip_prefix("kiln:"))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("reproducible"))
    });
    marked.then_some("it says # kiln: reproducible")
}

pub(crate) fn check(ctx: &mut Ctx, text: &str) {
    let Some(why) = reason(ctx, text) else { return };
    let df = ctx.df;
    let escape = df.directives.escape;
    // FROM lines see global ARG defaults and the build's values.
    let mut vars = Vars::default();
    for a in &df.global_args {
        let v = ctx.opts.build_args.get(&a.name).cloned().or_else(|| {
            a.default
                .as_ref()
                .and_then(|d| expand_word(d, &vars, escape).ok())
        });
        if let Some(v) = v {
            set(&mut vars, &a.name, &v);
        }
    }
    for (n, stage) in df.stages.iter().enumerate() {
        let base = expand_word(&stage.base, &vars, escape).unwrap_or_else(|_| stage.base.clone());
        let lower = base.to_ascii_lowercase();
        let is_stage = df.stages[..n]
            .iter()
            .any(|s| s.name.as_deref() == Some(lower.as_str()));
        if base == "scratch" || is_stage || base.is_empty() {
            continue;
        }
        let (image, _, digest) = split_image(&base);
        if digest.is_none() {
            let at = ctx.at(stage.span.line);
            ctx.warn(
                &BASE_NOT_PINNED,
                format!(
                    "Base image {base} is not pinned by digest, but this Dockerfile asks for a reproducible build ({why}): a tag can move; write FROM {image}@sha256:…"
                ),
                at,
            );
        }
    }
}
