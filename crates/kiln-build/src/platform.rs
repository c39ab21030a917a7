//! Which platform each stage is built for, and whether this host can run
//! its RUN steps.
//!
//! A stage is built for its `FROM --platform=…` when it has one (after
//! global ARG expansion, so `$BUILDPLATFORM` names the host), else for its
//! parent stage's platform (`FROM stage`), else for the build's target
//! platform. Its base is resolved for that platform (the
//! matching manifest of an index) and `FROM scratch` says that platform in
//! its config. A stage of another CPU architecture runs its RUN steps
//! through QEMU user emulation: the kernel's binfmt_misc handler with the
//! `F` flag does that transparently, so nothing else about the step
//! changes; [`Engine::check_emulation`] makes sure the handler is there
//! before any step of the build runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kiln_core::Platform;
use kiln_dockerfile::{Command, Stage};
use kiln_exec::binfmt;

use crate::engine::Engine;
use crate::error::{BuildError, Result};

impl Engine<'_> {
    /// The platform `stage` is built for.
    pub(crate) fn stage_platform(&self, stage: &Stage) -> Result<Platform> {
        let from = self.df.resolve_from(stage, &self.global)?;
        match from.platform {
            // A stage on an earlier stage goes on in that stage's files.
            None => match self.df.stage_named(&from.base, stage.index) {
                Some(parent) => self.stage_platform(parent),
                None => Ok(self.req.platform.clone()),
            },
            Some(p) => p.parse::<Platform>().map_err(|e| BuildError::Step {
                line: stage.span.line,
                instruction: format!("FROM {}", stage.base),
                message: format!("--platform={p}: {e}"),
            }),
        }
    }

    /// Fails before any step runs when a stage to build has RUN steps for
    /// a platform this host can neither run nor emulate, with what to
    /// install or run (kiln_exec's binfmt check, which also mounts
    /// binfmt_misc when it is not mounted).
    pub(crate) fn check_emulation(&self, needed: &BTreeMap<usize, BTreeSet<usize>>) -> Result<()> {
        let mut checked = BTreeSet::new();
        for &i in needed.keys() {
            let stage = &self.df.stages[i];
            let runs = stage
                .instructions
                .iter()
                .any(|i| matches!(i.command, Command::Run(_)));
            if !runs {
                continue;
            }
            let platform = self.stage_platform(stage)?;
            if !checked.insert(platform.to_string()) {
                continue;
            }
            binfmt::check(
                &platform,
                &self.req.build_platform,
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
}
