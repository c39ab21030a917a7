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

use crate::cache::{CacheRecord, Made, SnapshotOnly};
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
    /// `COPY --from`'s input key ([`crate::cache::copy_input_key`]),
    /// recorded as leading to `key`.
    pub input_key: Option<String>,
}

/// A step's keys and history line once it is resolved (hit or run).
struct Resolved {
    /// The key of the state it ran on.
    parent: String,
    key: String,
    history: String,
    input_key: Option<String>,
}

impl Engine<'_> {
    /// Whether `stage`'s new layers stay snapshots only.
    fn snapshot_only(&self, stage: &Stage) -> bool {
        self.snapshot_only
            .get()
            .is_some_and(|s| s.contains(&stage.index))
    }

    /// A step that may make a layer: from the cache, or by running `work`
    /// on a writable snapshot (mounted at the path it gets, with the
    /// active snapshot's key) of the current state.
    pub(crate) fn layer_step(
        &self,
        state: &mut StageState,
        step: &Step<'_>,
        plan: LayerPlan<'_>,
        work: impl FnOnce(&Path, &str) -> Result<()>,
    ) -> Result<()> {
        let LayerPlan {
            key,
            history,
            mountpoints,
            input_key,
        } = plan;
        let key = crate::cache::clamped_key(key, self.clamp.then_some(self.epoch));
        // `--no-cache` refuses what earlier builds made, not what another
        // platform of this build has just made (BuildKit solves the
        // platforms as one graph: a shared step runs once).
        let may_hit = || !step.no_cache || self.made_here.is_some_and(|m| m.contains(&key));
        if may_hit() && self.try_hit(state, step, &key, &history, input_key.as_deref())? {
            return Ok(());
        }
        let lazy = self.snapshot_only(step.stage);
        // Held until the record is written: a build of another platform
        // running the same step waits, then hits (see `once`). So look
        // again once it is ours: the miss above may predate that record.
        let lock = crate::once::key_lock(&key);
        let _one = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _one_of_all = crate::once::file_lock(&self.cache.locks_dir(), &key);
        if may_hit() && self.try_hit(state, step, &key, &history, input_key.as_deref())? {
            return Ok(());
        }
        let parent = state.key.clone();
        let made = self.make_layer(state, &key, mountpoints, lazy, work)?;
        if let Some(m) = self.made_here {
            m.note(&key);
        }
        let done = Resolved {
            parent,
            key,
            history,
            input_key,
        };
        self.finish_step(state, step, done, made, false);
        Ok(())
    }

    /// The step of `key` from the local cache, else from the imported
    /// ones, onto `state`; whether it hit. `input_key` is the input key
    /// that led here (`COPY --from`), recorded with the hit.
    pub(crate) fn try_hit(
        &self,
        state: &mut StageState,
        step: &Step<'_>,
        key: &str,
        history: &str,
        input_key: Option<&str>,
    ) -> Result<bool> {
        let lazy = self.snapshot_only(step.stage);
        let parent = state.key.clone();
        let cached = match self
            .cache
            .get(key)
            .map(|rec| self.use_record(state, key, rec, lazy))
            .transpose()?
            .flatten()
        {
            Some(made) => Some(made),
            // Then the imported caches (`--cache-from`).
            None => self.remote_hit(state, key, history)?,
        };
        let Some(made) = cached else {
            return Ok(false);
        };
        let done = Resolved {
            parent,
            key: key.to_string(),
            history: history.to_string(),
            input_key: input_key.map(str::to_string),
        };
        self.finish_step(state, step, done, made, true);
        Ok(true)
    }

    /// A resolved step onto `state`: its history line, its record for
    /// export, its key as the state's; progress.
    fn finish_step(
        &self,
        state: &mut StageState,
        step: &Step<'_>,
        done: Resolved,
        made: bool,
        hit: bool,
    ) {
        let Resolved {
            parent,
            key,
            history,
            input_key,
        } = done;
        if let Some(i) = &input_key {
            self.cache.put_input(i, &key);
        }
        state.history(&step.created, history, made);
        self.remote.note(crate::cache_io::UsedStep {
            stage: step.stage.index,
            key: key.clone(),
            input_key,
            parent,
            history: state.config["history"]
                .as_array()
                .and_then(|h| h.last().cloned())
                .unwrap_or_default(),
        });
        state.key = key;
        self.progress.done(step.id, hit, step.t0.elapsed());
    }

    /// A cache hit onto `state`: whether it made a layer, or `None` when
    /// the record cannot be used (its snapshot-only layer's snapshot is
    /// gone): a miss. A snapshot-only layer wanted by a stage an image
    /// contains is written now, and the record keeps it from then on.
    fn use_record(
        &self,
        state: &mut StageState,
        key: &str,
        rec: CacheRecord,
        lazy: bool,
    ) -> Result<Option<bool>> {
        let snapshot = rec.snapshot.clone();
        let held = |s: &Option<String>| -> Result<Option<String>> {
            match s {
                Some(s) if self.snaps.hold(s)? => Ok(Some(s.clone())),
                _ => Ok(None),
            }
        };
        Ok(match rec.layer {
            None => Some(false),
            // A written layer on top of snapshot-only ones: the stage goes
            // on from the record's snapshot (the same files).
            Some(Made::Blob(..)) if state.snapshot_top.is_some() => held(&snapshot)?.map(|s| {
                state.snapshot_top = Some(s);
                true
            }),
            Some(Made::Blob(l, diff_id)) => {
                state.push_layer(*l, diff_id);
                Some(true)
            }
            Some(Made::SnapshotOnly(_)) => {
                let Some(s) = held(&snapshot)? else {
                    return Ok(None);
                };
                if lazy || state.snapshot_top.is_some() {
                    state.snapshot_top = Some(s);
                } else if let Some(Made::Blob(l, diff_id)) =
                    self.write_snapshot_layer(key, rec, &s)?.layer
                {
                    state.push_layer(*l, diff_id);
                }
                Some(true)
            }
        })
    }

    /// Writes the layer of a snapshot-only record from its committed
    /// snapshot `s` (held by the caller); the record keeps the blob from
    /// then on. Returns the new record.
    pub(crate) fn write_snapshot_layer(
        &self,
        key: &str,
        rec: CacheRecord,
        s: &str,
    ) -> Result<CacheRecord> {
        let blob = kiln_snapshot::layer_of_committed(
            &self.snaps,
            self.store,
            s,
            &self.tar_options(),
            |changes| filter_mountpoints(changes, &rec.left_out),
        )?;
        let made = CacheRecord {
            layer: Some(Made::Blob(Box::new(blob.descriptor), blob.diff_id)),
            snapshot: Some(s.to_string()),
            left_out: rec.left_out,
        };
        self.cache.put(key, &made)?;
        Ok(made)
    }

    fn tar_options(&self) -> TarOptions {
        TarOptions {
            clamp_mtime: self.clamp.then_some(self.epoch),
        }
    }

    /// Runs `work` on a writable snapshot of `state` and records what it
    /// changed (minus mountpoints) as the layer of `key` (snapshot only
    /// when `lazy`), onto `state`; whether it changed anything.
    fn make_layer(
        &self,
        state: &mut StageState,
        key: &str,
        mountpoints: &[String],
        lazy: bool,
        work: impl FnOnce(&Path, &str) -> Result<()>,
    ) -> Result<bool> {
        let parent = self.ensure_snapshots(state)?;
        let snap = self.snaps.new_key("step");
        let mounts = self.snaps.prepare(&snap, parent.as_deref())?;
        let keep = |changes| filter_mountpoints(changes, mountpoints);
        let made = (|| -> Result<CacheRecord> {
            {
                let at = tempfile::Builder::new()
                    .prefix("rootfs")
                    .tempdir_in(&self.tmp)
                    .map_err(io("create", &self.tmp))?;
                let mounted = kiln_snapshot::mount(&mounts, at.path())?;
                work(mounted.path(), &snap)?;
            }
            let lazy = lazy || state.snapshot_top.is_some();
            if lazy {
                let name = snapshot_only_name(key);
                let made = kiln_snapshot::commit_snapshot(&self.snaps, &snap, &name, keep)?;
                return Ok(CacheRecord {
                    layer: made.then_some(Made::SnapshotOnly(SnapshotOnly::Marker)),
                    snapshot: made.then_some(name),
                    left_out: if made {
                        mountpoints.to_vec()
                    } else {
                        Vec::new()
                    },
                });
            }
            let made = kiln_snapshot::commit_layer(
                &self.snaps,
                self.store,
                &snap,
                &self.tar_options(),
                keep,
            )?;
            Ok(match made {
                Some(l) => CacheRecord {
                    layer: Some(Made::Blob(Box::new(l.descriptor), l.diff_id)),
                    snapshot: Some(l.snapshot),
                    left_out: mountpoints.to_vec(),
                },
                None => CacheRecord {
                    layer: None,
                    snapshot: None,
                    left_out: Vec::new(),
                },
            })
        })();
        let rec = made.inspect_err(|_| {
            // A failed step's snapshot goes now, not at the next prune.
            let _ = self.snaps.remove(&snap);
        })?;
        self.cache.put(key, &rec)?;
        Ok(match rec.layer {
            None => false,
            Some(Made::Blob(l, diff_id)) => {
                state.push_layer(*l, diff_id);
                true
            }
            Some(Made::SnapshotOnly(_)) => {
                state.snapshot_top = rec.snapshot;
                true
            }
        })
    }
}

/// A new name for a snapshot-only layer's snapshot: hex like the chain
/// ids other snapshots are named by, unique to this commit (a `--no-cache`
/// rebuild of the same step may make other files).
fn snapshot_only_name(key: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(nanos.to_le_bytes());
    hex::encode(h.finalize())
}
