//! A build from start to end: the request, the engine every part of a
//! build shares, and a stage's steps in order. The other jobs live beside
//! it: `graph` (which stages, checked up front), `schedule` (running them
//! as their needs finish), `source` (FROM and `--from`), `step` (one
//! module per kind of step), `cache` (keys and records), `finish` (the
//! image into the store).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use kiln_core::image::Descriptor;
use kiln_core::{Digest, ImageRef};
use kiln_dockerfile::ignore::Matcher;
use kiln_dockerfile::{Command, Dockerfile, GlobalScope, Instruction, Platform, Stage, StageScope};
use kiln_exec::{Executor, Network, Runtime};
use kiln_snapshot::{Backend, Snapshotter};
use kiln_store::{IndexEntry, Store};
use serde_json::json;

use crate::cache::StepCache;
use crate::context::Context;
use crate::error::{io, BuildError, Result};
use crate::schedule::{run_stages, StageRunner};
use crate::state::{StageState, DEFAULT_PATH};
use crate::step::Step;

/// What to build and how.
pub struct BuildRequest {
    pub dockerfile: String,
    pub context_dir: PathBuf,
    pub ignore: Matcher,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Stages whose steps are rebuilt even when cached.
    pub no_cache_filter: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `--secret id=ID,src=FILE`.
    pub secrets: BTreeMap<String, PathBuf>,
    pub network: Network,
    pub tags: Vec<ImageRef>,
    pub runtime: Runtime,
    /// The target platform (`TARGETPLATFORM`): what bases are resolved
    /// for and what the image's config says. One build makes one
    /// platform's image; a multi-platform build is one build per platform.
    pub platform: Platform,
    /// The platform the build runs on (`BUILDPLATFORM`, the host's): a
    /// stage `FROM --platform=$BUILDPLATFORM` runs natively, and steps of
    /// other platforms go through QEMU.
    pub build_platform: Platform,
    /// Overrides the snapshotter choice (default: overlay when usable;
    /// the CLI fills it from `KILN_SNAPSHOTTER`).
    pub backend: Option<Backend>,
    /// Fetches a base image missing from the store (the CLI pulls it from
    /// its registry); the error text is shown under the FROM line.
    pub fetch_base: Option<FetchBase>,
    /// The build's timestamp: image and history times, and the clamp for
    /// file times in new layers. `None`: the `SOURCE_DATE_EPOCH` build
    /// argument if given, else 0 with file times kept. (The CLI fills it
    /// from the environment or the context's git commit.)
    pub source_date_epoch: Option<u64>,
    /// `--add-host NAME:IP` entries for RUN steps' `/etc/hosts`.
    pub add_hosts: Vec<(String, String)>,
    /// `--allow security.insecure`: `RUN --security=insecure` may run
    /// privileged.
    pub allow_insecure: bool,
    /// `--pull`: fetch every FROM image through `fetch_base` even when the
    /// store has it (once per build).
    pub always_pull: bool,
    /// `--cache-from`: imported caches, their metadata read; a local miss
    /// looks here, in order.
    pub cache_from: Vec<crate::cache_io::ImportedCache>,
    /// `--cache-to type=registry|local`: collect the records of this mode
    /// into [`BuildResult::cache`].
    pub cache_export: Option<crate::cache_io::Mode>,
    /// `--cache-to type=inline`: the records of the image's steps in its
    /// config, under [`crate::cache_io::INLINE_KEY`].
    pub inline_cache: bool,
}

/// See [`BuildRequest::fetch_base`]: the image name and the platform the
/// stage wants.
pub type FetchBase = Box<dyn Fn(&str, &Platform) -> std::result::Result<(), String> + Send + Sync>;

pub struct BuildResult {
    /// The image ID (config digest).
    pub id: Digest,
    /// The timestamp the image was made with (seconds since 1970).
    pub epoch: u64,
    pub entry: IndexEntry,
    pub config: Vec<u8>,
    pub layers: Vec<Descriptor>,
    /// The records `cache_export` asked for, their layers in the store.
    pub cache: Option<crate::cache_io::CacheMetadata>,
}

/// Where a build reports what it does (the CLI draws it).
pub trait Progress: Sync {
    /// A step starts: `id` numbers steps across the build.
    fn step(&self, id: usize, stage: &str, text: &str);
    /// A step ended; `cached` when it was not run.
    fn done(&self, id: usize, cached: bool, took: Duration);
    /// A line printed by a RUN step.
    fn output(&self, id: usize, line: &str);
    fn warn(&self, message: &str);
}

/// What every part of one build shares.
pub(crate) struct Engine<'a> {
    pub store: &'a Store,
    pub req: &'a BuildRequest,
    pub df: Dockerfile,
    pub global: GlobalScope,
    pub opts: kiln_dockerfile::BuildOptions,
    pub snaps: Snapshotter,
    pub exec: Executor,
    pub ctx: Context,
    pub progress: &'a dyn Progress,
    /// SOURCE_DATE_EPOCH (env or build arg), else 0.
    pub epoch: u64,
    /// Whether file times in new layers are clamped to `epoch`.
    pub clamp: bool,
    pub cache_dir: PathBuf,
    pub cache: StepCache<'a>,
    pub tmp: PathBuf,
    /// Finished stages, read by the stages that need them.
    pub done: Mutex<HashMap<usize, StageState>>,
    pub step_ids: Mutex<usize>,
    /// Held while a base is pulled (parallel stages pull it once); the
    /// names (and platforms) `--pull` has pulled.
    pub pull_lock: Mutex<BTreeSet<String>>,
    /// Base and `--from` images as first resolved, by name and platform
    /// (see `image_state`).
    pub images: Mutex<HashMap<String, (StageState, Vec<String>)>>,
    /// The stages whose new layers stay snapshots only (set once the
    /// target is known; see `snapshot_only_stages`).
    pub snapshot_only: OnceLock<BTreeSet<usize>>,
    /// Imported cache records, and the steps this build resolved.
    pub remote: crate::cache_io::Remote,
    /// The steps the platforms of one multi-platform build have made so
    /// far (`None` for a build of one platform).
    pub made_here: Option<&'a crate::once::MadeHere>,
}

/// A time as the config and history write it.
pub(crate) fn rfc3339(secs: u64) -> String {
    kiln_core::rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Builds the request into the store.
pub fn build(store: &Store, req: &BuildRequest, progress: &dyn Progress) -> Result<BuildResult> {
    build_in(store, req, progress, None)
}

/// [`build`] as one platform's build of a multi-platform build, whose
/// platforms share the steps they make in `made_here` (see `once`).
pub(crate) fn build_in<'a>(
    store: &'a Store,
    req: &'a BuildRequest,
    progress: &'a dyn Progress,
    made_here: Option<&'a crate::once::MadeHere>,
) -> Result<BuildResult> {
    let df = kiln_dockerfile::parse(&req.dockerfile)?;
    let opts = kiln_dockerfile::BuildOptions {
        build_args: req.build_args.clone(),
        build_platform: req.build_platform.clone(),
        target_platform: req.platform.clone(),
    };
    for name in df.unused_build_args(&opts) {
        progress.warn(&format!("build arg {name} was not consumed by any ARG"));
    }
    let global = df.global_scope(&opts)?;
    let root = store.root().to_path_buf();
    // The backend the store's snapshots were made with, as `kiln run`
    // does: probing overlayfs mounts and unmounts one (an unmount waits
    // for an RCU grace period), once per platform of a build.
    let backend = req
        .backend
        .or_else(|| Backend::recorded(&root))
        .unwrap_or_else(|| Backend::detect(&root));
    // The build's own lease: it owns the build's active snapshots and
    // holds what the build unpacks and commits, so a prune running beside
    // the build never takes a lower directory from under a step.
    let snaps = Snapshotter::open(&root, backend)?.leased()?;
    let exec = Executor::new(req.runtime.clone(), &root.join("exec"))?;
    let cache_dir = root.join("buildcache");
    let cache = StepCache::new(store);
    for d in [
        cache.dir.clone(),
        cache_dir.join("mounts"),
        cache_dir.join("tmp"),
    ] {
        fs::create_dir_all(&d).map_err(io("create", &d))?;
    }
    let ctx = Context::load(&req.context_dir, &req.ignore, &cache_dir.join("files.json"))?;
    let epoch = match req.source_date_epoch {
        Some(e) => Some(e),
        None => match req.build_args.get("SOURCE_DATE_EPOCH") {
            Some(s) => Some(s.trim().parse::<u64>().map_err(|_| {
                BuildError::BadOption(format!(
                    "--build-arg SOURCE_DATE_EPOCH={s}: not a number of seconds since 1970"
                ))
            })?),
            None => None,
        },
    };
    let engine = Engine {
        store,
        req,
        global,
        opts,
        snaps,
        exec,
        ctx,
        progress,
        epoch: epoch.unwrap_or(0),
        clamp: epoch.is_some(),
        tmp: cache_dir.join("tmp"),
        cache_dir,
        cache,
        done: Mutex::new(HashMap::new()),
        step_ids: Mutex::new(0),
        pull_lock: Mutex::new(BTreeSet::new()),
        images: Mutex::new(HashMap::new()),
        snapshot_only: OnceLock::new(),
        remote: crate::cache_io::Remote::new(&req.cache_from),
        made_here,
        df,
    };
    // Blobs written by this build are not referenced by any tag until the
    // end: hold a lease so a concurrent prune leaves them alone.
    let _lease = store.lease()?;
    let target = engine.target()?;
    let needed = engine.needed(target)?;
    engine.validate(&needed)?;
    engine.check_emulation(&needed)?;
    let _ = engine
        .snapshot_only
        .set(engine.snapshot_only_stages(target, &needed)?);
    engine.resolve_bases(&needed)?;
    run_stages(&engine, &needed)?;
    engine.ctx.save_cache();
    let state = engine
        .done
        .lock()
        .map_err(|_| BuildError::Internal("a stage panicked".into()))?
        .remove(&target)
        .ok_or_else(|| BuildError::Internal("the target stage did not finish".into()))?;
    let mut result = engine.finish(state)?;
    if let Some(mode) = req.cache_export {
        result.cache = Some(engine.cache_metadata(mode)?);
    }
    Ok(result)
}

impl StageRunner for Engine<'_> {
    fn run_stage(&self, index: usize) -> Result<()> {
        let state = self.stage(index)?;
        if let Ok(mut done) = self.done.lock() {
            done.insert(index, state);
        }
        Ok(())
    }
}

impl Engine<'_> {
    fn stage_label(&self, stage: &Stage) -> String {
        stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index))
    }

    pub(crate) fn next_step_id(&self) -> usize {
        let mut n = self.step_ids.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    }

    pub(crate) fn finished_stage(&self, index: usize) -> Result<StageState> {
        self.done
            .lock()
            .ok()
            .and_then(|d| d.get(&index).cloned())
            .ok_or_else(|| BuildError::Internal(format!("stage {index} has not been built")))
    }

    /// One stage: its base, its base's ONBUILD triggers, its steps.
    fn stage(&self, index: usize) -> Result<StageState> {
        let stage = &self.df.stages[index];
        let (mut state, triggers) = self.base(stage)?;
        state.cmd_set = false;
        // BuildKit: every stage's Env has PATH, appended after the base's
        // variables when the base set none.
        let env = state.env();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            let mut env = env;
            env.push(DEFAULT_PATH.to_string());
            state.cfg().insert("Env".into(), json!(env));
        }
        let label = self.stage_label(stage);
        let id = self.next_step_id();
        let t0 = Instant::now();
        self.progress
            .step(id, &label, &format!("FROM {}", stage.base));
        self.progress.done(id, false, t0.elapsed());
        let env = state.env();
        let mut scope = StageScope::new(
            &self.global,
            &self.opts.build_args,
            self.df.directives.escape,
            &env,
        );
        let no_cache = self.req.no_cache
            || self
                .req
                .no_cache_filter
                .iter()
                .any(|f| stage.name.as_deref() == Some(f.to_ascii_lowercase().as_str()));
        for trigger in &triggers {
            let mut instruction = kiln_dockerfile::parse_line(trigger, '\\')?;
            instruction.span = stage.span;
            self.step(
                stage,
                &label,
                &mut state,
                &mut scope,
                &instruction,
                no_cache,
            )?;
        }
        for instruction in &stage.instructions {
            self.step(stage, &label, &mut state, &mut scope, instruction, no_cache)?;
        }
        Ok(state)
    }

    /// One instruction: expanded, announced, then done by its kind's
    /// module (each plans its cache key and history line first).
    fn step(
        &self,
        stage: &Stage,
        label: &str,
        state: &mut StageState,
        scope: &mut StageScope<'_>,
        instruction: &Instruction,
        no_cache: bool,
    ) -> Result<()> {
        let expanded = scope.expand(instruction)?;
        let shown = expanded.original.lines().next().unwrap_or("").to_string();
        let id = self.next_step_id();
        let t0 = Instant::now();
        self.progress.step(id, label, &shown);
        let step = Step {
            stage,
            id,
            t0,
            created: rfc3339(self.epoch),
            no_cache,
            line: instruction.span.line,
            shown,
        };
        match &expanded.command {
            Command::Run(run) => self.run_step(&step, state, scope, run),
            Command::Copy(c) => self.copy_step(&step, state, c),
            Command::Add(a) => self.add_step(&step, state, a),
            Command::Workdir(w) => self.workdir_step(&step, state, w),
            other => {
                self.meta_step(&step, state, scope, other);
                Ok(())
            }
        }
    }
}
