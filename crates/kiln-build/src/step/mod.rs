//! The steps of a stage, one module per kind: `run` (RUN), `copy` (COPY
//! and ADD), `workdir` (WORKDIR), `meta` (the instructions that only edit
//! the config). Each plans its cache key and history line from the
//! expanded instruction first; the steps that can change files then go
//! through [`Engine::layer_step`], here: a cache hit reuses the recorded
//! layer, a miss runs the step on a writable snapshot and turns the change
//! set into a layer.

pub(crate) mod copy;
pub(crate) mod meta;
pub(crate) mod run;
pub(crate) mod workdir;

use std::path::Path;
use std::time::Instant;

use kiln_dockerfile::Stage;
use kiln_layer::TarOptions;

use crate::cache::CacheRecord;
use crate::engine::Engine;
use crate::error::{io, BuildError, Result};
use crate::state::StageState;
use kiln_exec::filter_mountpoints;

/// A step under way: where it is in the Dockerfile and the build.
pub(crate) struct Step<'s> {
    pub stage: &'s Stage,
    /// Numbers steps across the build (for progress).
    pub id: usize,
    pub t0: Instant,
    /// The history time.
    pub created: String,
    /// `--no-cache`, or `--no-cache-filter` names the stage.
    pub no_cache: bool,
    /// The Dockerfile line, for errors.
    pub line: usize,
    /// The instruction's first line, expanded.
    pub shown: String,
}

impl Step<'_> {
    /// An error of this step, naming its line.
    pub(crate) fn fail(&self, message: String) -> BuildError {
        BuildError::Step {
            line: self.line,
            instruction: self.shown.clone(),
            message,
        }
    }

    /// An error from inside the step, as an error naming the step (an
    /// error that already names a step keeps its own).
    pub(crate) fn in_step(&self, e: BuildError) -> BuildError {
        match e {
            e @ BuildError::Step { .. } => e,
            // Keep the causes (an exec error's own reason, an I/O error's
            // errno) in the step's message.
            e => self.fail(kiln_core::error_chain(&e)),
        }
    }
}

/// What a step that may make a layer will do, decided before it runs.
pub(crate) struct LayerPlan<'m> {
    pub key: String,
    pub history: String,
    /// Paths mounted over during the step (RUN --mount targets): not
    /// content of the layer.
    pub mountpoints: &'m [String],
}

impl Engine<'_> {
    /// A step that may make a layer: from the cache, or by running `work`
    /// on a writable snapshot (mounted at the path it gets) of the
    /// current state.
    pub(crate) fn layer_step(
        &self,
        state: &mut StageState,
        step: &Step<'_>,
        plan: LayerPlan<'_>,
        work: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let LayerPlan {
            key,
            history,
            mountpoints,
        } = plan;
        let key = crate::cache::clamped_key(key, self.clamp.then_some(self.epoch));
        let cached = if step.no_cache {
            None
        } else {
            self.cache.get(&key)
        };
        let hit = cached.is_some();
        let rec = match cached {
            Some(rec) => rec,
            None => self.make_layer(state, &key, mountpoints, work)?,
        };
        let made = rec.layer.is_some();
        if let Some((l, diff_id)) = rec.layer {
            state.push_layer(l, diff_id);
        }
        state.history(&step.created, history, made);
        state.key = key;
        self.progress.done(step.id, hit, step.t0.elapsed());
        Ok(())
    }

    /// Runs `work` on a writable snapshot of `state` and records what it
    /// changed (minus mountpoints) as the layer of `key`: none when it
    /// changed nothing.
    fn make_layer(
        &self,
        state: &StageState,
        key: &str,
        mountpoints: &[String],
        work: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<CacheRecord> {
        let parent = self.ensure_snapshots(state)?;
        let snap = self.snaps.new_key("step");
        let mounts = self.snaps.prepare(&snap, parent.as_deref())?;
        let made = (|| -> Result<Option<kiln_snapshot::NewLayer>> {
            {
                let at = tempfile::Builder::new()
                    .prefix("rootfs")
                    .tempdir_in(&self.tmp)
                    .map_err(io("create", &self.tmp))?;
                let mounted = kiln_snapshot::mount(&mounts, at.path())?;
                work(mounted.path())?;
            }
            let opts = TarOptions {
                clamp_mtime: self.clamp.then_some(self.epoch),
            };
            Ok(kiln_snapshot::commit_layer(
                &self.snaps,
                self.store,
                &snap,
                &opts,
                |changes| filter_mountpoints(changes, mountpoints),
            )?)
        })();
        let made = made.inspect_err(|_| {
            // A failed step's snapshot goes now, not at the next prune.
            let _ = self.snaps.remove(&snap);
        })?;
        let rec = match made {
            Some(l) => CacheRecord {
                layer: Some((l.descriptor, l.diff_id)),
                snapshot: Some(l.snapshot),
            },
            None => CacheRecord {
                layer: None,
                snapshot: None,
            },
        };
        self.cache.put(key, &rec)?;
        Ok(rec)
    }
}
