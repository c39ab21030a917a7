//! Where a stage's files come from: FROM (scratch, an earlier stage, or
//! an image from the store, pulled through `BuildRequest::fetch_base` when
//! missing or when `--pull` asks), `--from` of COPY and RUN --mount
//! (stages and images alike), and unpacking an image's layers into
//! snapshots the steps can mount.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kiln_core::image::Descriptor;
use kiln_core::{Digest, Platform};
use kiln_dockerfile::Stage;

use crate::engine::Engine;
use crate::error::{BuildError, Result};
use crate::state::StageState;

impl Engine<'_> {
    /// The state a FROM starts with.
    pub(crate) fn base(&self, stage: &Stage) -> Result<(StageState, Vec<String>)> {
        let from = self.df.resolve_from(stage, &self.global)?;
        let platform = self.stage_platform(stage)?;
        if from.base.eq_ignore_ascii_case("scratch") {
            let p = &platform;
            return Ok((
                StageState::scratch(&p.os, &p.architecture, p.variant.as_deref()),
                Vec::new(),
            ));
        }
        if let Some(s) = self.df.stage_named(&from.base, stage.index) {
            return Ok((self.finished_stage(s.index)?, Vec::new()));
        }
        // A base that cannot be had is the FROM line's fault.
        self.image_state(&from.base, &platform)
            .map_err(|e| match e {
                BuildError::BaseImage(message) => BuildError::Step {
                    line: stage.span.line,
                    instruction: format!("FROM {}", stage.base),
                    message,
                },
                e => e,
            })
    }

    /// An image from the store as a starting state for `platform` (its
    /// manifest of a multi-platform image), with its ONBUILD triggers (to
    /// run now and drop from the config).
    /// Errors are `BaseImage`: the caller names the line (FROM, or the COPY
    /// or RUN whose `--from` names the image). Resolved once per build:
    /// a tag moved or removed while the build runs (an `image prune -a`
    /// beside it) does not change what the build started from.
    fn image_state(&self, name: &str, platform: &Platform) -> Result<(StageState, Vec<String>)> {
        let key = format!("{name}\0{platform}");
        if let Some(found) = self.images.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(found);
        }
        let found = self.resolve_image(name, platform)?;
        if let Ok(mut m) = self.images.lock() {
            m.insert(key, found.clone());
        }
        Ok(found)
    }

    fn resolve_image(&self, name: &str, platform: &Platform) -> Result<(StageState, Vec<String>)> {
        let step_error = BuildError::BaseImage;
        if let (true, Some(fetch)) = (self.req.always_pull, &self.req.fetch_base) {
            let mut pulled = self.pull_lock.lock().unwrap_or_else(|p| p.into_inner());
            if pulled.insert(format!("{name}\0{platform}")) {
                fetch(name, platform)
                    .map_err(|m| step_error(format!("--pull: pulling {name} failed: {m}")))?;
            }
        }
        let resolved = match (self.store.resolve(name), &self.req.fetch_base) {
            (Ok(found), _) => Ok(found),
            (Err(e), Some(fetch)) if e.kind() == kiln_core::ErrorKind::NotFound => {
                // Parallel stages may want the same base: pull it once.
                let _one = self.pull_lock.lock().unwrap_or_else(|p| p.into_inner());
                match self.store.resolve(name) {
                    Ok(found) => Ok(found),
                    Err(_) => {
                        fetch(name, platform).map_err(|m| {
                            step_error(format!(
                                "{name} is not in the store and pulling it failed: {m}; or kiln load or kiln import it"
                            ))
                        })?;
                        self.store
                            .resolve(name)
                            .map_err(|e| step_error(e.to_string()))
                    }
                }
            }
            (Err(e), _) => Err(step_error(format!(
                "{e}: the base image must be in the store: kiln pull, load or import it"
            ))),
        };
        let (record, image) = resolved?;
        let image = if kiln_core::media_types::is_index(&record.entry.media_type) {
            self.store
                .load_image_for(&record.entry, platform)
                .map_err(|e| step_error(format!("{name}: {e}")))?
        } else {
            let have = kiln_store::platform_of(&image);
            // A single-platform image of another architecture cannot be
            // the base of a build for this one (its binaries and config
            // say the wrong CPU); the native case keeps working with
            // images whose config says little.
            if platform != &self.req.build_platform
                && !have.architecture.is_empty()
                && !platform.matches(&have)
            {
                return Err(step_error(format!(
                    "{name} in the store is a {have} image, not {platform}: make it a multi-platform image (kiln pull --platform {platform}, or kiln manifest create joining an image of each platform)"
                )));
            }
            image
        };
        let mut config: serde_json::Value = serde_json::from_slice(&image.config_bytes)
            .map_err(|e| BuildError::BaseImage(format!("config of {name}: {e}")))?;
        let diff_ids: Vec<Digest> = crate::state::strings(&config["rootfs"]["diff_ids"])
            .iter()
            .map(|d| {
                d.parse::<Digest>()
                    .map_err(|e| BuildError::BaseImage(format!("{name}: {e}")))
            })
            .collect::<Result<_>>()?;
        // The three facts a new manifest names a layer by (a base's layer
        // annotations or URLs are not carried into images built on it).
        let layers: Vec<Descriptor> = image
            .manifest
            .layers
            .iter()
            .map(|l| Descriptor::new(&l.media_type, l.digest.clone(), l.size))
            .collect();
        // What describes the base image only (docker's top-level comment,
        // "Imported from …", and the container it was committed from) is
        // not the new image's: BuildKit keeps none of it.
        if let Some(top) = config.as_object_mut() {
            for key in ["comment", "container", "container_config", "docker_version"] {
                top.remove(key);
            }
        }
        crate::state::set_target_variant(&mut config, platform);
        let triggers = crate::state::strings(&config["config"]["OnBuild"]);
        if !triggers.is_empty() {
            config["config"]["OnBuild"] = serde_json::Value::Null;
        }
        Ok((
            StageState {
                config,
                layers,
                diff_ids,
                key: crate::cache::image_key(&image.manifest_digest),
                snapshot_top: None,
                cmd_set: false,
            },
            triggers,
        ))
    }

    /// Resolves the base image of every stage to build, and every image a
    /// `--from` names, before any step runs, as BuildKit does (bases in
    /// parallel: some may be pulled), so later stages start from what the
    /// store held when the build began and a missing image fails the build
    /// with nothing run, naming the line that wants it.
    pub(crate) fn resolve_bases(&self, needed: &BTreeMap<usize, BTreeSet<usize>>) -> Result<()> {
        for &i in needed.keys() {
            self.resolve_images_copied_from(&self.df.stages[i])?;
        }
        let stages: Vec<&Stage> = needed
            .keys()
            .map(|&i| &self.df.stages[i])
            .filter(|s| {
                self.df.resolve_from(s, &self.global).is_ok_and(|f| {
                    !f.base.eq_ignore_ascii_case("scratch")
                        && self.df.stage_named(&f.base, s.index).is_none()
                })
            })
            .collect();
        std::thread::scope(|scope| {
            let running: Vec<_> = stages
                .iter()
                .map(|s| scope.spawn(move || self.base(s).map(|_| ())))
                .collect();
            running.into_iter().try_for_each(|r| {
                r.join().unwrap_or_else(|_| {
                    Err(BuildError::Internal("resolving a base panicked".into()))
                })
            })
        })
    }

    /// Resolves (pulling when missing) the images, not stages, that the
    /// stage's COPY and RUN --mount `from=` name; an error names the line.
    fn resolve_images_copied_from(&self, stage: &Stage) -> Result<()> {
        for instruction in &stage.instructions {
            let names: Vec<&String> = match &instruction.command {
                kiln_dockerfile::Command::Copy(c) => c.from.iter().collect(),
                kiln_dockerfile::Command::Run(r) => {
                    r.mounts.iter().filter_map(|m| m.from.as_ref()).collect()
                }
                _ => continue,
            };
            for raw in names {
                let name = kiln_dockerfile::expand::expand_word(
                    raw,
                    &self.global,
                    self.df.directives.escape,
                )
                .unwrap_or_else(|_| raw.clone());
                if self.df.stage_named(&name, stage.index).is_some()
                    || name.parse::<usize>().is_ok()
                {
                    continue;
                }
                let platform = self.stage_platform(stage)?;
                self.image_state(&name, &platform)
                    .map_err(|e| BuildError::Step {
                        line: instruction.span.line,
                        instruction: instruction.original.clone(),
                        message: format!("--from={name}: {}", kiln_core::error_chain(&e)),
                    })?;
            }
        }
        Ok(())
    }

    /// Cache keys of the stages and images RUN --mount from= names: their
    /// states only, nothing unpacked (a cache hit mounts none of them).
    pub(crate) fn mount_stage_keys(
        &self,
        stage: &Stage,
        r: &kiln_dockerfile::Run,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for m in &r.mounts {
            if let Some(f) = &m.from {
                out.push(self.source_state(stage, f)?.key);
            }
        }
        Ok(out)
    }

    /// A `--from` (stage name or index, or an image): its state, which is
    /// what a cache key needs; its layers are not unpacked.
    pub(crate) fn source_state(&self, stage: &Stage, from: &str) -> Result<StageState> {
        match self.df.stage_named(from, stage.index) {
            Some(s) => self.finished_stage(s.index),
            None => self
                .image_state(from, &self.stage_platform(stage)?)
                .map(|(state, _)| state)
                .map_err(|e| match e {
                    BuildError::BaseImage(m) => BuildError::NotFound(format!(
                        "--from={from}: no stage of that name before this one, and no such image: {m}"
                    )),
                    e => e,
                }),
        }
    }

    /// A `--from` to read files from: its cache key and its top snapshot
    /// (unpacked if need be).
    pub(crate) fn source_of(&self, stage: &Stage, from: &str) -> Result<(String, Option<String>)> {
        let state = self.source_state(stage, from)?;
        let top = self.ensure_snapshots(&state)?;
        Ok((state.key, top))
    }

    /// Makes sure every layer of `state` is unpacked as a snapshot, held
    /// by the build's lease; returns the top one.
    pub(crate) fn ensure_snapshots(&self, state: &StageState) -> Result<Option<String>> {
        // Held by the build's lease since it was committed or hit.
        if let Some(top) = &state.snapshot_top {
            return Ok(Some(top.clone()));
        }
        self.fetch_imported(&state.layers)?;
        Ok(kiln_snapshot::unpack_layers(
            &self.snaps,
            self.store,
            &state.layers,
            &state.diff_ids,
        )?)
    }

    /// A read-only view of committed snapshot `top`, mounted at `at` while
    /// the result lives.
    pub(crate) fn view(&self, top: &str, at: &Path) -> Result<View<'_>> {
        let key = self.snaps.new_key("view");
        let mounts = self.snaps.view(&key, top)?;
        let mounted = kiln_snapshot::mount(&mounts, at).inspect_err(|_| {
            let _ = self.snaps.remove(&key);
        })?;
        Ok(View {
            mounted: Some(mounted),
            snaps: &self.snaps,
            key,
        })
    }
}

/// A mounted view; unmounted and removed when dropped.
pub(crate) struct View<'a> {
    mounted: Option<kiln_snapshot::Mounted>,
    snaps: &'a kiln_snapshot::Snapshotter,
    key: String,
}

impl View<'_> {
    pub(crate) fn path(&self) -> &Path {
        self.mounted
            .as_ref()
            .map_or(Path::new("/nonexistent"), |m| m.path())
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        drop(self.mounted.take());
        if let Err(e) = self.snaps.remove(&self.key) {
            tracing::warn!("removing view {}: {e}", self.key);
        }
    }
}
