//! Which platform each stage is built for, and whether this host can run
//! its RUN steps.
//!
//! A stage is built for its `FROM --platform=…` when it has one (after
//! global ARG expansion, so `$BUILDPLATFORM` names the host), else for its
//! parent stage's platform (`FROM stage`), else for the build's target
//! platform. Its base is resolved for that platform (the matching manifest
//! of an index) and `FROM scratch` says that platform in its config. A
//! stage of another CPU architecture runs its RUN steps through QEMU user
//! emulation: the kernel's binfmt_misc handler with the `F` flag does that
//! transparently, so nothing else about the step changes; the emulation
//! check makes sure the handler is there before any step of the build
//! runs (for a multi-platform build, before any platform's build starts:
//! [`check_emulation`]).

use std::path::Path;

use kiln_core::Platform;
use kiln_dockerfile::{Command, Dockerfile, GlobalScope, Stage};
use kiln_exec::binfmt;

use crate::engine::{BuildRequest, Engine};
use crate::error::{BuildError, Result};

/// The platform `stage` is built for.
fn stage_platform(
    df: &Dockerfile,
    global: &GlobalScope,
    req: &BuildRequest,
    stage: &Stage,
) -> Result<Platform> {
    let from = df.resolve_from(stage, global)?;
    match from.platform {
        // A stage on an earlier stage goes on in that stage's files.
        None => match df.stage_named(&from.base, stage.index) {
            Some(parent) => stage_platform(df, global, req, parent),
            None => Ok(req.platform.clone()),
        },
        Some(p) => p.parse::<Platform>().map_err(|e| BuildError::Step {
            line: stage.span.line,
            instruction: format!("FROM {}", stage.base),
            message: format!("--platform={p}: {e}"),
        }),
    }
}

/// Fails when one of `stages` has RUN steps for a platform this host can
/// neither run nor emulate, saying what to install or run (kiln_exec's
/// binfmt check, which also mounts binfmt_misc when it is not mounted).
fn check_stages(
    df: &Dockerfile,
    global: &GlobalScope,
    req: &BuildRequest,
    stages: impl Iterator<Item = usize>,
) -> Result<()> {
    let mut checked = std::collections::BTreeSet::new();
    for i in stages {
        let stage = &df.stages[i];
        let runs = stage
            .instructions
            .iter()
            .any(|i| matches!(i.command, Command::Run(_)));
        if !runs {
            continue;
        }
        let platform = stage_platform(df, global, req, stage)?;
        if !checked.insert(platform.to_string()) {
            continue;
        }
        binfmt::check(
            &platform,
            &req.build_platform,
            Path::new(binfmt::BINFMT_DIR),
        )
        .map_err(|e| {
            BuildError::Unsupported(format!(
                "building for {platform} (stage {}, line {}): {e}",
                stage
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("stage-{}", stage.index)),
                stage.span.line
            ))
        })?;
    }
    Ok(())
}

/// The emulation check of a request before its build starts: every stage
/// up to the target (the graph that prunes unneeded ones needs the whole
/// engine; a stage before the target that is not needed is checked too).
pub(crate) fn check_emulation(req: &BuildRequest) -> Result<()> {
    let df = kiln_dockerfile::parse(&req.dockerfile)?;
    let opts = kiln_dockerfile::BuildOptions {
        build_args: req.build_args.clone(),
        build_platform: req.build_platform.clone(),
        target_platform: req.platform.clone(),
    };
    let global = df.global_scope(&opts)?;
    let last = match &req.target {
        Some(t) => df
            .stage_named(t, df.stages.len())
            .map_or(df.stages.len().saturating_sub(1), |s| s.index),
        None => df.stages.len().saturating_sub(1),
    };
    check_stages(
        &df,
        &global,
        req,
        0..=last.min(df.stages.len().saturating_sub(1)),
    )
}

impl Engine<'_> {
    /// The platform `stage` is built for.
    pub(crate) fn stage_platform(&self, stage: &Stage) -> Result<Platform> {
        stage_platform(&self.df, &self.global, self.req, stage)
    }

    /// [`check_emulation`] of the stages the target needs, before any of
    /// this build's steps run.
    pub(crate) fn check_emulation(
        &self,
        needed: &std::collections::BTreeMap<usize, std::collections::BTreeSet<usize>>,
    ) -> Result<()> {
        check_stages(&self.df, &self.global, self.req, needed.keys().copied())
    }
}
