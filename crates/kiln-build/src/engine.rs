//! The solver and the steps: stages as a graph, each step cached by key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, UNIX_EPOCH};

use kiln_core::{media_types, Digest, ImageRef};
use kiln_dockerfile::ignore::Matcher;
use kiln_dockerfile::{Command, Dockerfile, GlobalScope, Instruction, Platform, Stage, StageScope};
use kiln_exec::{resolve_user, Executor, Network, Runtime, RUNTIME_MOUNTPOINTS};
use kiln_layer::{Change, ChangeKind, TarOptions};
use kiln_snapshot::{Active, Backend, Snapshotter};
use kiln_store::{IndexEntry, LayerDescriptor, LayerInfo, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::context::Context;
use crate::copy::{self, Attrs, Source};
use crate::download;
use crate::error::{io, BuildError, Result};
use crate::meta;
use crate::run;
use crate::state::{chain_ids, key_of, StageState, DEFAULT_PATH};

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
    pub platform: Platform,
    /// Overrides the snapshotter choice (default: overlay when usable).
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
}

/// See [`BuildRequest::fetch_base`].
pub type FetchBase = Box<dyn Fn(&str) -> std::result::Result<(), String> + Send + Sync>;

pub struct BuildResult {
    /// The image ID (config digest).
    pub id: Digest,
    /// The timestamp the image was made with (seconds since 1970).
    pub epoch: u64,
    pub entry: IndexEntry,
    pub config: Vec<u8>,
    pub layers: Vec<LayerDescriptor>,
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

#[derive(Serialize, Deserialize)]
struct CacheRecord {
    layer: Option<(LayerDescriptor, Digest)>,
}

struct Engine<'a> {
    store: &'a Store,
    req: &'a BuildRequest,
    df: Dockerfile,
    global: GlobalScope,
    opts: kiln_dockerfile::BuildOptions,
    snaps: Snapshotter,
    exec: Executor,
    ctx: Context,
    progress: &'a dyn Progress,
    /// SOURCE_DATE_EPOCH (env or build arg), else 0.
    epoch: u64,
    clamp: bool,
    cache_dir: PathBuf,
    tmp: PathBuf,
    done: Mutex<HashMap<usize, StageState>>,
    step_ids: Mutex<usize>,
    /// Parallel stages on one base unpack it once.
    unpacking: Mutex<()>,
    /// ... and pull it once.
    /// Held while a base is pulled; the names `--pull` has pulled.
    pull_lock: Mutex<BTreeSet<String>>,
}

fn rfc3339(secs: u64) -> String {
    kiln_core::rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Builds the request into the store.
pub fn build(store: &Store, req: &BuildRequest, progress: &dyn Progress) -> Result<BuildResult> {
    let df = kiln_dockerfile::parse(&req.dockerfile)?;
    let opts = kiln_dockerfile::BuildOptions {
        build_args: req.build_args.clone(),
        build_platform: req.platform.clone(),
        target_platform: req.platform.clone(),
    };
    for name in df.unused_build_args(&opts) {
        progress.warn(&format!("build arg {name} was not consumed by any ARG"));
    }
    let global = df.global_scope(&opts)?;
    let root = store.root().to_path_buf();
    let backend = match (req.backend, std::env::var("KILN_SNAPSHOTTER").as_deref()) {
        (Some(b), _) => b,
        (None, Ok("native")) => Backend::Native,
        (None, Ok("overlay")) => Backend::Overlay,
        (None, Ok(other)) => {
            return Err(BuildError::Invalid(format!(
                "KILN_SNAPSHOTTER={other}: use overlay or native"
            )))
        }
        (None, Err(_)) => Backend::detect(&root),
    };
    let snaps = Snapshotter::open(&root, backend)?;
    let exec = Executor::new(req.runtime.clone(), &root.join("exec"))?;
    let cache_dir = root.join("buildcache");
    for d in [
        cache_dir.join("steps"),
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
                BuildError::Invalid(format!(
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
        done: Mutex::new(HashMap::new()),
        step_ids: Mutex::new(0),
        unpacking: Mutex::new(()),
        pull_lock: Mutex::new(BTreeSet::new()),
        df,
    };
    // Blobs written by this build are not referenced by any tag until the
    // end: hold a lease so a concurrent prune leaves them alone.
    let _lease = store.lease()?;
    let target = engine.target()?;
    let needed = engine.needed(target)?;
    engine.validate(&needed)?;
    engine.solve(target, &needed)?;
    engine.ctx.save_cache();
    let state = engine
        .done
        .lock()
        .map_err(|_| BuildError::Invalid("a stage panicked".into()))?
        .remove(&target)
        .ok_or_else(|| BuildError::Invalid("the target stage did not finish".into()))?;
    engine.finish(state)
}

impl Engine<'_> {
    fn target(&self) -> Result<usize> {
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
                    BuildError::Invalid(format!(
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
        let mut names = Vec::new();
        for i in &stage.instructions {
            match &i.command {
                Command::Copy(c) => names.extend(c.from.clone()),
                Command::Run(r) => names.extend(r.mounts.iter().filter_map(|m| m.from.clone())),
                _ => {}
            }
        }
        for n in names {
            let n =
                kiln_dockerfile::expand::expand_word(&n, &self.global, self.df.directives.escape)
                    .unwrap_or(n);
            if let Some(s) = self.df.stage_named(&n, stage.index) {
                out.insert(s.index);
            }
        }
        Ok(out)
    }

    /// The stages the target needs (itself included), each with the
    /// stages it needs first.
    fn needed(&self, target: usize) -> Result<BTreeMap<usize, BTreeSet<usize>>> {
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

    /// Checks every instruction of the stages to build before any step
    /// runs, as BuildKit converts the whole Dockerfile first: a bad EXPOSE
    /// or expansion, or an insecure RUN that was not allowed, fails the
    /// build with nothing run. Instructions are expanded with the
    /// environment known up front (base images in the store, earlier
    /// stages' ENV); a stage whose base must still be pulled is checked
    /// when it runs.
    fn validate(&self, needed: &BTreeMap<usize, BTreeSet<usize>>) -> Result<()> {
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
                if let Command::Run(r) = &expanded.command {
                    self.check_security(r).map_err(|m| BuildError::Step {
                        line: instruction.span.line,
                        instruction: expanded.original.lines().next().unwrap_or("").to_string(),
                        message: m,
                    })?;
                }
            }
            envs.insert(i, scope.env());
        }
        Ok(())
    }

    /// `RUN --security=insecure` runs only when the build allows it.
    fn check_security(&self, r: &kiln_dockerfile::Run) -> std::result::Result<(), String> {
        if r.security == Some(kiln_dockerfile::Security::Insecure) && !self.req.allow_insecure {
            return Err("--security=insecure runs the step with every privilege; allow it with kiln build --allow security.insecure".into());
        }
        Ok(())
    }

    /// Runs the needed stages, independent ones in parallel.
    fn solve(&self, target: usize, deps: &BTreeMap<usize, BTreeSet<usize>>) -> Result<()> {
        let needed: BTreeSet<usize> = deps.keys().copied().collect();
        debug_assert!(needed.contains(&target));
        let mut finished: BTreeSet<usize> = BTreeSet::new();
        while finished.len() < needed.len() {
            let ready: Vec<usize> = needed
                .iter()
                .copied()
                .filter(|i| !finished.contains(i) && deps[i].iter().all(|d| finished.contains(d)))
                .collect();
            if ready.is_empty() {
                return Err(BuildError::Invalid(
                    "stages depend on each other in a cycle".into(),
                ));
            }
            let results: Vec<(usize, Result<StageState>)> = std::thread::scope(|s| {
                let handles: Vec<_> = ready
                    .iter()
                    .map(|&i| (i, s.spawn(move || self.run_stage(i))))
                    .collect();
                handles
                    .into_iter()
                    .map(|(i, h)| {
                        (
                            i,
                            h.join().unwrap_or_else(|_| {
                                Err(BuildError::Invalid("a stage panicked".into()))
                            }),
                        )
                    })
                    .collect()
            });
            for (i, r) in results {
                let state = r?;
                if let Ok(mut done) = self.done.lock() {
                    done.insert(i, state);
                }
                finished.insert(i);
            }
        }
        Ok(())
    }

    fn stage_label(&self, stage: &Stage) -> String {
        stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index))
    }

    fn next_step_id(&self) -> usize {
        let mut n = self.step_ids.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    }

    fn finished_stage(&self, index: usize) -> Result<StageState> {
        self.done
            .lock()
            .ok()
            .and_then(|d| d.get(&index).cloned())
            .ok_or_else(|| BuildError::Invalid(format!("stage {index} has not been built")))
    }

    /// The state a FROM starts with.
    fn base(&self, stage: &Stage) -> Result<(StageState, Vec<String>)> {
        let from = self.df.resolve_from(stage, &self.global)?;
        if from.base.eq_ignore_ascii_case("scratch") {
            let p = &self.req.platform;
            return Ok((
                StageState::scratch(&p.os, &p.architecture, p.variant.as_deref()),
                Vec::new(),
            ));
        }
        if let Some(s) = self.df.stage_named(&from.base, stage.index) {
            return Ok((self.finished_stage(s.index)?, Vec::new()));
        }
        // A base that cannot be had is the FROM line's fault.
        self.image_state(&from.base).map_err(|e| match e {
            BuildError::Invalid(message) => BuildError::Step {
                line: stage.span.line,
                instruction: format!("FROM {}", stage.base),
                message,
            },
            e => e,
        })
    }

    /// An image from the store as a starting state, with its ONBUILD
    /// triggers (to run now and drop from the config).
    /// Errors are `Invalid`: the caller names the line (FROM, or the COPY
    /// or RUN whose `--from` names the image).
    fn image_state(&self, name: &str) -> Result<(StageState, Vec<String>)> {
        let step_error = BuildError::Invalid;
        if let (true, Some(fetch)) = (self.req.always_pull, &self.req.fetch_base) {
            let mut pulled = self.pull_lock.lock().unwrap_or_else(|p| p.into_inner());
            if pulled.insert(name.to_string()) {
                fetch(name)
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
                        fetch(name).map_err(|m| {
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
        let (_, image) = resolved?;
        let mut config: serde_json::Value = serde_json::from_slice(&image.config_bytes)
            .map_err(|e| BuildError::Invalid(format!("config of {name}: {e}")))?;
        let diff_ids: Vec<Digest> = crate::state::strings(&config["rootfs"]["diff_ids"])
            .iter()
            .map(|d| {
                d.parse::<Digest>()
                    .map_err(|e| BuildError::Invalid(format!("{name}: {e}")))
            })
            .collect::<Result<_>>()?;
        let layers: Vec<LayerDescriptor> = image
            .manifest
            .layers()
            .iter()
            .map(|l| {
                Ok(LayerDescriptor {
                    media_type: l.media_type().to_string(),
                    digest: l
                        .digest()
                        .to_string()
                        .parse::<Digest>()
                        .map_err(|e| BuildError::Invalid(format!("{name}: {e}")))?,
                    size: l.size(),
                })
            })
            .collect::<Result<_>>()?;
        // What describes the base image only (docker's top-level comment,
        // "Imported from …", and the container it was committed from) is
        // not the new image's: BuildKit keeps none of it.
        if let Some(top) = config.as_object_mut() {
            for key in ["comment", "container", "container_config", "docker_version"] {
                top.remove(key);
            }
        }
        let triggers = crate::state::strings(&config["config"]["OnBuild"]);
        if !triggers.is_empty() {
            config["config"]["OnBuild"] = serde_json::Value::Null;
        }
        Ok((
            StageState {
                config,
                layers,
                diff_ids,
                key: key_of(&["image", &image.manifest_digest.to_string()]),
                cmd_set: false,
            },
            triggers,
        ))
    }

    fn run_stage(&self, index: usize) -> Result<StageState> {
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
            let instruction = kiln_dockerfile::parse_line(trigger, '\\')?;
            let mut instruction = instruction;
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
        let id = self.next_step_id();
        let t0 = Instant::now();
        let created = rfc3339(self.epoch);
        let shown = expanded.original.lines().next().unwrap_or("").to_string();
        self.progress.step(id, label, &shown);
        let fail = |message: String| BuildError::Step {
            line: instruction.span.line,
            instruction: shown.clone(),
            message,
        };
        match &expanded.command {
            Command::Run(run) => {
                self.check_security(run).map_err(&fail)?;
                let args = scope.args();
                let argv = run::argv(state, run);
                let env = run::environment(state, &args);
                let network = match run.network {
                    Some(kiln_dockerfile::Network::None) => Network::None,
                    Some(_) => Network::Host,
                    None => self.req.network,
                };
                let descriptor = json!({
                    "run": argv, "env": env, "user": state.user(), "cwd": state.working_dir(),
                    "network": format!("{network:?}"), "mounts": format!("{:?}", run.mounts),
                    "security": format!("{:?}", run.security), "hosts": self.req.add_hosts,
                    "from": self.mount_stage_keys(stage, run).map_err(|e| in_step(e, &fail))?,
                })
                .to_string();
                let key = key_of(&[&state.key, &descriptor]);
                let mut history = format!("RUN {}", argv.join(" "));
                let used = scope.run_history_args();
                if !used.is_empty() {
                    history = format!("RUN |{} {} {}", used.len(), used.join(" "), argv.join(" "));
                }
                history.push_str(" # buildkit");
                let before = state.clone();
                let cwd = state.working_dir();
                let targets = run
                    .mounts
                    .iter()
                    .map(|m| run::mount_target(m, &cwd))
                    .filter(|t| !t.as_ref().is_ok_and(String::is_empty))
                    .collect::<Result<Vec<String>>>()
                    .map_err(|e| in_step(e, &fail))?;
                self.layer_step(
                    state,
                    key,
                    no_cache,
                    id,
                    t0,
                    &created,
                    history,
                    &targets,
                    |_, root| {
                        self.run_in(
                            stage,
                            &before,
                            run,
                            argv.clone(),
                            env.clone(),
                            network,
                            root,
                            id,
                        )
                        .map_err(|e| in_step(e, &fail))
                    },
                )
            }
            Command::Copy(c) => {
                let (source_key, tree) = match &c.from {
                    None => (String::new(), None),
                    Some(f) => {
                        let (k, chain) = self.source_of(stage, f).map_err(|e| in_step(e, &fail))?;
                        (k, Some(chain))
                    }
                };
                self.copy_step(
                    state,
                    &c.files,
                    c.parents,
                    source_key,
                    tree,
                    no_cache,
                    id,
                    t0,
                    &created,
                    copy_history("COPY", &c.files),
                    false,
                    &[],
                )
                .map_err(|e| in_step(e, &fail))
            }
            Command::Add(a) => {
                if let Some(git) = a.files.sources.iter().find(|s| download::is_git(s)) {
                    return Err(fail(format!("{git}: ADD from git is not supported yet; clone in a RUN step or COPY a checkout")));
                }
                let (urls, local): (Vec<String>, Vec<String>) = a
                    .files
                    .sources
                    .iter()
                    .cloned()
                    .partition(|s| download::is_url(s));
                if a.checksum.is_some() && (urls.len() != 1 || !local.is_empty()) {
                    return Err(fail(
                        "--checksum needs exactly one source, an http(s) URL".into(),
                    ));
                }
                let fetch_dir = tempfile::Builder::new()
                    .prefix("add-url")
                    .tempdir_in(&self.tmp)
                    .map_err(io("create", &self.tmp))?;
                let mut downloads = Vec::new();
                for (i, url) in urls.iter().enumerate() {
                    let dir = fetch_dir.path().join(i.to_string());
                    fs::create_dir_all(&dir).map_err(io("create", &dir))?;
                    let d = download::download(
                        url,
                        &dir,
                        a.checksum.as_deref(),
                        self.epoch,
                        self.clamp,
                    )
                    .map_err(|e| fail(e.to_string()))?;
                    downloads.push(d);
                }
                let mut files = a.files.clone();
                files.sources = local;
                self.copy_step(
                    state,
                    &files,
                    false,
                    String::new(),
                    None,
                    no_cache,
                    id,
                    t0,
                    &created,
                    copy_history("ADD", &a.files),
                    true,
                    &downloads,
                )
                .map_err(|e| in_step(e, &fail))
            }
            Command::Workdir(w) => {
                let dir = copy::clean_abs(&if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{}/{w}", state.working_dir())
                });
                state.cfg().insert("WorkingDir".into(), json!(dir));
                let user = state.user();
                let key = key_of(&[&state.key, "WORKDIR", &dir, &user]);
                let epoch = self.epoch;
                self.layer_step(
                    state,
                    key,
                    no_cache,
                    id,
                    t0,
                    &created,
                    format!("WORKDIR {dir}"),
                    &[],
                    |_, root| {
                        // BuildKit makes the missing directories owned by
                        // the stage's USER (so `USER 1000` + `WORKDIR /w`
                        // gives 1000 a directory it can write to).
                        let owner = resolve_user(&user, root)?;
                        let mut tar = tar::Builder::new(Vec::new());
                        let mut path = String::new();
                        for part in dir.split('/').filter(|p| !p.is_empty()) {
                            if !path.is_empty() {
                                path.push('/');
                            }
                            path.push_str(part);
                            if copy::resolve_in_root(root, &path)
                                .symlink_metadata()
                                .is_ok()
                            {
                                continue;
                            }
                            let mut h = tar::Header::new_gnu();
                            h.set_entry_type(tar::EntryType::Directory);
                            h.set_mode(0o755);
                            h.set_uid(owner.uid.into());
                            h.set_gid(owner.gid.into());
                            h.set_mtime(epoch);
                            h.set_size(0);
                            tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                                .map_err(io("make", &dir))?;
                        }
                        let bytes = tar.into_inner().map_err(io("make", &dir))?;
                        kiln_layer::apply(
                            &bytes[..],
                            root,
                            &kiln_layer::ApplyOptions::for_current_user(),
                        )?;
                        Ok(())
                    },
                )
            }
            other => {
                let line = meta::apply(state, scope, other);
                state.key = key_of(&[
                    &state.key,
                    &serde_json::to_string(other).unwrap_or_default(),
                ]);
                if let Some(line) = line {
                    state.history(&created, line, false);
                }
                self.progress.done(id, false, t0.elapsed());
                Ok(())
            }
        }
    }

    /// Cache keys of the stages RUN --mount from= names.
    fn mount_stage_keys(&self, stage: &Stage, r: &kiln_dockerfile::Run) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for m in &r.mounts {
            if let Some(f) = &m.from {
                out.push(self.source_of(stage, f)?.0);
            }
        }
        Ok(out)
    }

    /// A `--from` (stage name or index, or an image): its cache key and its
    /// top snapshot (ensured).
    fn source_of(&self, stage: &Stage, from: &str) -> Result<(String, Option<String>)> {
        let state = match self.df.stage_named(from, stage.index) {
            Some(s) => self.finished_stage(s.index)?,
            None => self
                .image_state(from)
                .map_err(|e| match e {
                    BuildError::Invalid(m) => BuildError::Invalid(format!(
                        "--from={from}: no stage of that name before this one, and no such image: {m}"
                    )),
                    e => e,
                })?
                .0,
        };
        let top = self.ensure_snapshots(&state)?;
        Ok((state.key.clone(), top))
    }

    /// Makes sure every layer of `state` is unpacked as a snapshot;
    /// returns the top one.
    fn ensure_snapshots(&self, state: &StageState) -> Result<Option<String>> {
        let ids = chain_ids(&state.diff_ids);
        if ids.iter().all(|id| self.snaps.exists(id)) {
            return Ok(ids.last().cloned());
        }
        let _one_at_a_time = self.unpacking.lock().unwrap_or_else(|e| e.into_inner());
        for (i, id) in ids.iter().enumerate() {
            if self.snaps.exists(id) {
                continue;
            }
            let layer = &state.layers[i];
            let f = self.store.blobs().open(&layer.digest)?;
            let parent = if i == 0 {
                None
            } else {
                Some(ids[i - 1].as_str())
            };
            self.snaps
                .unpack(id, parent, BufReader::with_capacity(1 << 20, f))?;
        }
        Ok(ids.last().cloned())
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        self.cache_dir.join("steps").join(format!("{key}.json"))
    }

    fn cached(&self, key: &str) -> Option<CacheRecord> {
        let rec: CacheRecord =
            serde_json::from_slice(&fs::read(self.cache_path(key)).ok()?).ok()?;
        match &rec.layer {
            Some((l, _)) if !self.store.blobs().exists(&l.digest) => None,
            _ => Some(rec),
        }
    }

    /// A step that may make a layer: from the cache, or by running `work`
    /// on a writable snapshot of the current state.
    #[allow(clippy::too_many_arguments)]
    fn layer_step(
        &self,
        state: &mut StageState,
        key: String,
        no_cache: bool,
        id: usize,
        t0: Instant,
        created: &str,
        history: String,
        mountpoints: &[String],
        work: impl FnOnce(&Active, &Path) -> Result<()>,
    ) -> Result<()> {
        if !no_cache {
            if let Some(rec) = self.cached(&key) {
                let layer = rec.layer.is_some();
                if let Some((l, diff_id)) = rec.layer {
                    state.push_layer(l, diff_id);
                }
                state.history(created, history, layer);
                state.key = key;
                self.progress.done(id, true, t0.elapsed());
                return Ok(());
            }
        }
        let parent = self.ensure_snapshots(state)?;
        let active = self.snaps.prepare(parent.as_deref())?;
        {
            let mounted = active.mount()?;
            work(&active, mounted.path())?;
        }
        let changes = filter_mountpoints(active.diff()?, mountpoints);
        let layer = if changes.is_empty() {
            None
        } else {
            // Stored uncompressed (like docker's local store; push
            // compresses): the blob digest *is* the diff_id, so the stream
            // is hashed once, by the store's verified ingest.
            let mut blob = self.store.blobs().ingest()?;
            // Overlap the blob's disk writes with writing it.
            blob.set_writeback(16 << 20);
            let opts = TarOptions {
                clamp_mtime: self.clamp.then_some(self.epoch),
            };
            let (_, blob) =
                kiln_layer::write_layer_tar(&active.changes_root(), &changes, &opts, blob)
                    .map_err(io("write layer from", active.changes_root()))?;
            let (digest, size) = blob.commit(None, None)?;
            self.store.record_layer(
                &digest,
                &LayerInfo {
                    diff_id: digest.clone(),
                    uncompressed_size: size,
                },
            )?;
            let desc = LayerDescriptor {
                media_type: media_types::OCI_LAYER_TAR.to_string(),
                digest: digest.clone(),
                size,
            };
            let mut ids = state.diff_ids.clone();
            ids.push(digest.clone());
            if let Some(top) = chain_ids(&ids).pop() {
                self.snaps.commit(active, &top)?;
            }
            Some((desc, digest))
        };
        // The cache keeps its layer blob alive through rmi and image prune
        // (until `kiln builder prune`), as docker's build cache does.
        if let Some((l, _)) = &layer {
            self.store
                .add_gc_root(&cache_root_name(&key), std::slice::from_ref(&l.digest))?;
        }
        let rec = CacheRecord {
            layer: layer.clone(),
        };
        let path = self.cache_path(&key);
        let tmp = path.with_extension("tmp");
        if fs::write(&tmp, serde_json::to_vec(&rec).unwrap_or_default()).is_ok() {
            let _ = fs::rename(&tmp, &path);
        }
        let made = layer.is_some();
        if let Some((l, diff_id)) = layer {
            state.push_layer(l, diff_id);
        }
        state.history(created, history, made);
        state.key = key;
        self.progress.done(id, false, t0.elapsed());
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &self,
        state: &mut StageState,
        files: &kiln_dockerfile::Files,
        parents: bool,
        source_key: String,
        tree: Option<Option<String>>,
        no_cache: bool,
        id: usize,
        t0: Instant,
        created: &str,
        history: String,
        extract_archives: bool,
        downloads: &[download::Download],
    ) -> Result<()> {
        // The source tree (another stage or an image), mounted read-only.
        let view_dir = tempfile::Builder::new()
            .prefix("view")
            .tempdir_in(&self.tmp)
            .map_err(io("create", &self.tmp))?;
        let view = match &tree {
            Some(Some(top)) => Some(self.snaps.view(top, view_dir.path())?),
            Some(None) => None, // an empty stage
            None => None,
        };
        let empty = view_dir.path().join("empty");
        let source = match (&tree, &view) {
            (None, _) => Source::Context(&self.ctx),
            (Some(_), Some(v)) => Source::Tree(v.path()),
            (Some(_), None) => {
                fs::create_dir_all(&empty).map_err(io("create", &empty))?;
                Source::Tree(&empty)
            }
        };
        // The destination as it is before the copy (the current top
        // snapshot, read-only): chown names resolve against its
        // passwd/group, and what exists there decides where files land and
        // which directories the copy creates. The cache key needs the plan,
        // so this comes before the step runs.
        let top = self.ensure_snapshots(state)?;
        let dest_at = tempfile::Builder::new()
            .prefix("view")
            .tempdir_in(&self.tmp)
            .map_err(io("create", &self.tmp))?;
        let dest_view = match &top {
            Some(t) => Some(self.snaps.view(t, dest_at.path())?),
            None => None,
        };
        let dest_root = dest_view.as_ref().map(|v| v.path().to_path_buf());
        let chown = match &files.chown {
            None => None,
            Some(spec) => {
                let numeric = |s: &str| s.parse::<u32>().ok();
                let (u, g) = spec
                    .split_once(':')
                    .map_or((spec.as_str(), None), |(u, g)| (u, Some(g)));
                let ids = match (numeric(u), g.map(numeric)) {
                    (Some(uid), None) => (uid, uid),
                    (Some(uid), Some(Some(gid))) => (uid, gid),
                    _ => {
                        let root = dest_root
                            .clone()
                            .unwrap_or_else(|| dest_at.path().to_path_buf());
                        let user = resolve_user(spec, &root)?;
                        // docker: "a username without groupname … will use
                        // the same numeric UID as the GID".
                        let gid = if g.is_none() { user.uid } else { user.gid };
                        (user.uid, gid)
                    }
                };
                Some(ids)
            }
        };
        let attrs = Attrs {
            chown,
            chmod: files.chmod.clone(),
            epoch: self.epoch,
        };
        let workdir = state.working_dir();
        let plan = copy::plan(
            files,
            &source,
            &workdir,
            &attrs,
            parents,
            downloads,
            dest_root.as_deref(),
        )?;
        drop(dest_view);
        let descriptor = format!("{}\n{}\n{}", history, source_key, copy::describe(&plan));
        let key = key_of(&[&state.key, &descriptor]);
        let dest_dir = if files.dest.starts_with('/') {
            files.dest.clone()
        } else {
            format!("{workdir}/{}", files.dest)
        };
        self.layer_step(
            state,
            key,
            no_cache,
            id,
            t0,
            created,
            history,
            &[],
            |_, root| {
                let opts = kiln_layer::ApplyOptions::for_current_user();
                // ADD of a local archive: its contents, not the file.
                if extract_archives {
                    let (archives, plain): (Vec<_>, Vec<_>) =
                        plan.iter().cloned().partition(|p| p.is_archive());
                    for a in &archives {
                        let f = fs::File::open(a.host_path().unwrap_or(Path::new("/nonexistent")))
                            .map_err(io("open archive", &dest_dir))?;
                        let tar_stream =
                            crate::copy::retarget_archive(BufReader::new(f), &dest_dir)?;
                        kiln_layer::apply(&tar_stream[..], root, &opts)?;
                    }
                    let bytes = copy::write_tar(&plain, Vec::new())?;
                    kiln_layer::apply(&bytes[..], root, &opts)?;
                    return Ok(());
                }
                let (reader, writer) = std::io::pipe().map_err(io("create pipe for", root))?;
                std::thread::scope(|s| {
                    let plan = &plan;
                    let writer_thread = s.spawn(move || copy::write_tar(plan, writer).map(drop));
                    let applied =
                        kiln_layer::apply(BufReader::with_capacity(1 << 20, reader), root, &opts);
                    let written = writer_thread.join().unwrap_or_else(|_| {
                        Err(BuildError::Invalid("copy writer panicked".into()))
                    });
                    written?;
                    applied?;
                    Ok(())
                })
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run_in(
        &self,
        stage: &Stage,
        state: &StageState,
        r: &kiln_dockerfile::Run,
        argv: Vec<String>,
        mut env: Vec<String>,
        network: Network,
        root: &Path,
        id: usize,
    ) -> Result<()> {
        // Stages and images named by --mount from=, mounted read-only
        // (mounts drop before their directories).
        let mut dirs = Vec::new();
        let mut views = Vec::new();
        let mut from_roots = BTreeMap::new();
        for m in &r.mounts {
            if let Some(f) = &m.from {
                let (_, top) = self.source_of(stage, f)?;
                let at = tempfile::Builder::new()
                    .prefix("view")
                    .tempdir_in(&self.tmp)
                    .map_err(io("create", &self.tmp))?;
                let path = match &top {
                    Some(t) => {
                        let v = self.snaps.view(t, at.path())?;
                        let p = v.path().to_path_buf();
                        views.push(v);
                        p
                    }
                    None => at.path().to_path_buf(),
                };
                from_roots.insert(f.clone(), path);
                dirs.push(at);
            }
        }
        let sources = run::MountSources {
            cache_dir: &self.cache_dir.join("mounts"),
            context: &self.ctx.root,
            secrets: &self.req.secrets,
            from_roots: &from_roots,
            scratch: &self.tmp,
        };
        let cwd = state.working_dir();
        let (mounts, secret_env, _held) = run::mounts(r, &cwd, &sources)?;
        env.extend(secret_env);
        let user = resolve_user(&state.user(), root)?;
        let mut spec = run::spec(argv, env, cwd, user, network, mounts);
        spec.extra_hosts = self.req.add_hosts.clone();
        spec.privileged = r.security == Some(kiln_dockerfile::Security::Insecure);
        let out = self
            .exec
            .run(&spec, root, &mut |line| self.progress.output(id, line))?;
        drop(views);
        drop(dirs);
        if out.code != 0 {
            let tail = out.tail.join("\n");
            return Err(BuildError::Invalid(format!(
                "process {:?} did not complete successfully: exit code: {}{}",
                spec.args.join(" "),
                out.code,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n--- last output lines:\n{tail}")
                }
            )));
        }
        Ok(())
    }

    /// The final image: labels, defaults, timestamps, into the store.
    fn finish(&self, mut state: StageState) -> Result<BuildResult> {
        if !self.req.labels.is_empty() {
            let labels = state.cfg().entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in &self.req.labels {
                labels[k] = json!(v);
            }
        }
        state.config["created"] = json!(rfc3339(self.epoch));
        state
            .config
            .as_object_mut()
            .map(|m| m.remove("container_config"));
        state.config.as_object_mut().map(|m| m.remove("container"));
        let bytes =
            serde_json::to_vec(&state.config).map_err(|e| BuildError::Invalid(e.to_string()))?;
        let entry = self.store.write_image(&bytes, &state.layers)?;
        self.store.name_image(&entry, &self.req.tags)?;
        Ok(BuildResult {
            id: Digest::sha256(&bytes),
            epoch: self.epoch,
            entry,
            config: bytes,
            layers: state.layers,
        })
    }
}

/// BuildKit's history line for COPY/ADD: the sources and destination as
/// expanded, without the flags (`--chown`, `--chmod`, `--from`, …).
fn copy_history(verb: &str, files: &kiln_dockerfile::Files) -> String {
    let mut words = vec![verb.to_string()];
    words.extend(files.inline.iter().map(|i| format!("<<{}", i.name)));
    words.extend(files.sources.iter().cloned());
    words.push(files.dest.clone());
    format!("{} # buildkit", words.join(" "))
}

/// An error inside a step, as an error naming the step (and its line).
fn in_step(e: BuildError, fail: &dyn Fn(String) -> BuildError) -> BuildError {
    match e {
        BuildError::Invalid(m) => fail(m),
        e @ BuildError::Step { .. } => e,
        e => fail(e.to_string()),
    }
}

/// The store GC root that keeps a cache record's layer.
pub(crate) fn cache_root_name(key: &str) -> String {
    format!("buildcache-{key}")
}

/// Drops what the runtime (or a RUN --mount) created only as mountpoints:
/// `/proc`, `/dev`, `/sys`, `/etc/hosts`… and the `--mount` targets, when
/// they appear as additions (with everything below them), then the
/// directories that were added only to hold them.
fn filter_mountpoints(changes: Vec<Change>, extra: &[String]) -> Vec<Change> {
    let extra: Vec<PathBuf> = extra
        .iter()
        .map(|t| PathBuf::from(t.trim_start_matches('/')))
        .collect();
    let is_mountpoint = |p: &Path| {
        extra.iter().any(|t| p == t)
            || RUNTIME_MOUNTPOINTS.iter().any(|m| {
                p == Path::new(m) || (matches!(*m, "proc" | "dev" | "sys") && p.starts_with(m))
            })
    };
    let added_mountpoints: Vec<PathBuf> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Added && is_mountpoint(&c.path))
        .map(|c| c.path.clone())
        .collect();
    let mut kept: Vec<Change> = changes
        .into_iter()
        .filter(|c| !added_mountpoints.iter().any(|m| c.path.starts_with(m)))
        .collect();
    // Parents added only for a mountpoint: nothing else left below them.
    // (Checked only for the few changes that hold a mountpoint.)
    if added_mountpoints.is_empty() {
        return kept;
    }
    loop {
        let before = kept.len();
        let snapshot = kept.clone();
        kept.retain(|c| {
            let holds_mountpoint = c.kind == ChangeKind::Added
                && added_mountpoints
                    .iter()
                    .any(|m| m.starts_with(&c.path) && *m != c.path);
            !holds_mountpoint
                || snapshot
                    .iter()
                    .any(|o| o.path != c.path && o.path.starts_with(&c.path))
        });
        if kept.len() == before {
            break;
        }
    }
    kept
}
