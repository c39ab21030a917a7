//! The stage graph: the target stage, the stages it needs (the others are
//! skipped), and a check of every instruction of them before any step
//! runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kiln_dockerfile::{Command, Stage, StageScope};

use crate::engine::Engine;
use crate::error::{BuildError, Result};

impl Engine<'_> {
    pub(crate) fn target(&self) -> Result<usize> {
        match &self.req.target {
            None => Ok(self.df.stages.len() - 1),
            Some(t) => self
                .df
                .stage_named(t, self.df.stages.len())
                .map(|s| s.index)
                .ok_or_else(|| {
                    let names: Vec<&str> = self
                        .df
                        .stages
                        .iter()
                        .filter_map(|s| s.name.as_deref())
                        .collect();
                    BuildError::NotFound(format!(
                        "target stage {t:?} could not be found; stages: {}",
                        names.join(", ")
                    ))
                }),
        }
    }

    /// The stages a stage needs first: its FROM, COPY --from and RUN
    /// --mount from= that name earlier stages.
    fn deps(&self, stage: &Stage) -> Result<BTreeSet<usize>> {
        let mut out = BTreeSet::new();
        let from = self.df.resolve_from(stage, &self.global)?;
        if let Some(s) = self.df.stage_named(&from.base, stage.index) {
            out.insert(s.index);
        }
        for n in self.copied_from(stage) {
            if let Some(s) = self.df.stage_named(&n, stage.index) {
                out.insert(s.index);
            } else if let Ok(i) = n.parse::<usize>() {
                // A number names a stage, never an image: BuildKit's
                // errors, before any step runs.
                return Err(BuildError::BadOption(if i >= self.df.stages.len() {
                    format!("--from={n}: invalid stage index {i}")
                } else if i == stage.index {
                    format!(
                        "--from={n}: circular dependency detected on stage: {}",
                        stage.name.as_deref().unwrap_or(&n)
                    )
                } else {
                    format!("--from={n} names a later stage; stages are built in order: move it before stage {}", stage.index)
                }));
            }
        }
        Ok(out)
    }

    /// What the stage's COPY and RUN --mount `from=` name (stages or
    /// images), expanded with the global ARGs.
    pub(crate) fn copied_from(&self, stage: &Stage) -> Vec<String> {
        let mut names = Vec::new();
        for i in &stage.instructions {
            match &i.command {
                Command::Copy(c) => names.extend(c.from.clone()),
                Command::Run(r) => names.extend(r.mounts.iter().filter_map(|m| m.from.clone())),
                _ => {}
            }
        }
        names
            .into_iter()
            .map(|n| {
                kiln_dockerfile::expand::expand_word(&n, &self.global, self.df.directives.escape)
                    .unwrap_or(n)
            })
            .collect()
    }

    /// The stages the target needs (itself included), each with the
    /// stages it needs first.
    pub(crate) fn needed(&self, target: usize) -> Result<BTreeMap<usize, BTreeSet<usize>>> {
        let mut deps: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if let std::collections::btree_map::Entry::Vacant(slot) = deps.entry(i) {
                let d = self.deps(&self.df.stages[i])?;
                todo.extend(d.iter().copied());
                slot.insert(d);
            }
        }
        Ok(deps)
    }

    /// The needed stages whose new layers may stay snapshots only: those
    /// the target image does not contain, which are the stages off the
    /// target's FROM chain (read by `COPY --from` and `RUN --mount from=`
    /// alone). BuildKit writes no layer for them either.
    pub(crate) fn snapshot_only_stages(
        &self,
        target: usize,
        needed: &BTreeMap<usize, BTreeSet<usize>>,
    ) -> Result<BTreeSet<usize>> {
        let mut lazy: BTreeSet<usize> = needed.keys().copied().collect();
        let mut at = Some(target);
        while let Some(i) = at {
            lazy.remove(&i);
            let stage = &self.df.stages[i];
            let from = self.df.resolve_from(stage, &self.global)?;
            at = self
                .df
                .stage_named(&from.base, stage.index)
                .map(|s| s.index);
        }
        Ok(lazy)
    }

    /// Checks every instruction of the stages to build before any step
    /// runs, as BuildKit converts the whole Dockerfile first: a bad EXPOSE
    /// or expansion, or an insecure RUN that was not allowed, fails the
    /// build with nothing run. Instructions are expanded with the
    /// environment known up front (base images in the store, earlier
    /// stages' ENV); a stage whose base must still be pulled is checked
    /// when it runs.
    pub(crate) fn validate(&self, needed: &BTreeMap<usize, BTreeSet<usize>>) -> Result<()> {
        let mut envs: HashMap<usize, Vec<String>> = HashMap::new();
        // Stages only depend on earlier ones: index order is a valid order.
        for &i in needed.keys() {
            let stage = &self.df.stages[i];
            let from = self.df.resolve_from(stage, &self.global)?;
            let env = if from.base.eq_ignore_ascii_case("scratch") {
                Vec::new()
            } else if let Some(s) = self.df.stage_named(&from.base, stage.index) {
                match envs.get(&s.index) {
                    Some(env) => env.clone(),
                    None => continue,
                }
            } else {
                match self.store.resolve(&from.base) {
                    Ok((_, image)) => {
                        serde_json::from_slice::<serde_json::Value>(&image.config_bytes)
                            .map(|c| crate::state::strings(&c["config"]["Env"]))
                            .unwrap_or_default()
                    }
                    Err(_) => continue,
                }
            };
            let mut scope = StageScope::new(
                &self.global,
                &self.opts.build_args,
                self.df.directives.escape,
                &env,
            );
            for instruction in &stage.instructions {
                let expanded = scope.expand(instruction)?;
                let in_step = |message: String| BuildError::Step {
                    line: instruction.span.line,
                    instruction: expanded.original.lines().next().unwrap_or("").to_string(),
                    message,
                };
                match &expanded.command {
                    Command::Run(r) => {
                        crate::step::run::check_security(r, self.req.allow_insecure)
                            .map_err(|e| in_step(e.to_string()))?;
                    }
                    Command::StopSignal(sig) => {
                        kiln_core::signal::parse(sig).map_err(in_step)?;
                    }
                    _ => {}
                }
            }
            envs.insert(i, scope.env());
        }
        Ok(())
    }
}
