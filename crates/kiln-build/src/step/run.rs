//! RUN: the command, its environment and mounts planned into the cache
//! key and history line, then run in a container on the step's snapshot
//! (mount resolution itself is `crate::run`).

use std::collections::BTreeMap;
use std::path::Path;

use kiln_dockerfile::StageScope;
use kiln_exec::{resolve_user, Network};

use super::{LayerPlan, Step};
use crate::cache::{run_key, RunInputs};
use crate::engine::Engine;
use crate::error::{io, BuildError, Result};
use crate::run;
use crate::state::StageState;

/// `RUN --security=insecure` runs only when the build allows it.
pub(crate) fn check_security(r: &kiln_dockerfile::Run, allow_insecure: bool) -> Result<()> {
    if r.security == Some(kiln_dockerfile::Security::Insecure) && !allow_insecure {
        return Err(BuildError::NotAllowed("--security=insecure runs the step with every privilege; allow it with kiln build --allow security.insecure".into()));
    }
    Ok(())
}

/// BuildKit's history line: the argv, after `|N NAME=value…` for the
/// build args the command used.
fn history(argv: &[String], used_args: &[String]) -> String {
    let mut history = format!("RUN {}", argv.join(" "));
    if !used_args.is_empty() {
        history = format!(
            "RUN |{} {} {}",
            used_args.len(),
            used_args.join(" "),
            argv.join(" ")
        );
    }
    history.push_str(" # buildkit");
    history
}

/// The process a RUN step starts, planned from the state before the step.
struct Process {
    argv: Vec<String>,
    env: Vec<String>,
    /// The working directory, cleaned.
    cwd: String,
    /// The USER, as written (resolved in the step's root).
    user: String,
    network: Network,
}

impl Engine<'_> {
    pub(crate) fn run_step(
        &self,
        step: &Step<'_>,
        state: &mut StageState,
        scope: &StageScope<'_>,
        run: &kiln_dockerfile::Run,
    ) -> Result<()> {
        check_security(run, self.req.allow_insecure).map_err(|e| step.fail(e.to_string()))?;
        let args = scope.args();
        let argv = run::argv(state, run);
        let env = run::environment(state, &args);
        let network = match run.network {
            Some(kiln_dockerfile::Network::None) => Network::None,
            Some(_) => Network::Host,
            None => self.req.network.clone(),
        };
        // What the container needs of the state before the step (the state
        // itself is the step's to change): no copy of the whole state.
        let cwd = state.working_dir();
        let user = state.user();
        let key = run_key(
            &state.key,
            &RunInputs {
                argv: &argv,
                env: &env,
                user: user.clone(),
                cwd: cwd.clone(),
                network: format!("{network:?}"),
                mounts: format!("{:?}", run.mounts),
                security: format!("{:?}", run.security),
                hosts: &self.req.add_hosts,
                from: self
                    .mount_stage_keys(step.stage, run)
                    .map_err(|e| step.in_step(e))?,
            },
        );
        let history = history(&argv, &scope.run_history_args());
        let targets = run
            .mounts
            .iter()
            .map(|m| run::mount_target(m, &cwd))
            .filter(|t| !t.as_ref().is_ok_and(String::is_empty))
            .collect::<Result<Vec<String>>>()
            .map_err(|e| step.in_step(e))?;
        let plan = LayerPlan {
            key,
            history,
            mountpoints: &targets,
            input_key: None,
        };
        let process = Process {
            argv,
            env,
            cwd,
            user,
            network,
        };
        self.layer_step(state, step, plan, |root, _snap| {
            self.run_in(step, run, process, root)
                .map_err(|e| step.in_step(e))
        })
    }

    fn run_in(
        &self,
        step: &Step<'_>,
        r: &kiln_dockerfile::Run,
        process: Process,
        root: &Path,
    ) -> Result<()> {
        let Process {
            argv,
            mut env,
            cwd,
            user,
            network,
        } = process;
        // Stages and images named by --mount from=, mounted read-only
        // (mounts drop before their directories).
        let mut dirs = Vec::new();
        let mut views = Vec::new();
        let mut from_roots = BTreeMap::new();
        let mut from_keys = BTreeMap::new();
        for m in &r.mounts {
            if let Some(f) = &m.from {
                let (key, top) = self.source_of(step.stage, f)?;
                from_keys.insert(f.clone(), key);
                let at = tempfile::Builder::new()
                    .prefix("view")
                    .tempdir_in(&self.tmp)
                    .map_err(io("create", &self.tmp))?;
                let path = match &top {
                    Some(t) => {
                        let v = self.view(t, at.path())?;
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
            from_keys: &from_keys,
            scratch: &self.tmp,
        };
        let (mounts, secret_env, _held) = run::mounts(r, &cwd, &sources)?;
        env.extend(secret_env);
        let user = resolve_user(&user, root)?;
        let mut spec = run::spec(argv, env, cwd, user, network, mounts);
        spec.extra_hosts = self.req.add_hosts.clone();
        spec.privileged = r.security == Some(kiln_dockerfile::Security::Insecure);
        // BuildKit's insecure mode drops no_new_privs with the filter.
        spec.no_new_privileges = !spec.privileged;
        let out = self
            .exec
            .run(&spec, root, &mut |line| self.progress.output(step.id, line))?;
        drop(views);
        drop(dirs);
        if out.code != 0 {
            let tail = out.tail.join("\n");
            return Err(BuildError::ProcessFailed {
                command: spec.args.join(" "),
                code: out.code,
                tail: if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n--- last output lines:\n{tail}")
                },
            });
        }
        Ok(())
    }
}
