//! RUN: the process a step runs, its environment, and its mounts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_dockerfile::{CommandLine, MountKind, Run};
use kiln_exec::{ExtraMount, Network, ProcessSpec, User};

use crate::error::{io, BuildError, Result};
use crate::state::StageState;

/// The argv of a RUN: exec form as is; shell form through SHELL, with
/// heredocs appended so the shell reads them as it would in a script. A
/// lone `<<EOF` runs the heredoc itself (a `#!` script is run by its
/// interpreter via the shell).
pub fn argv(state: &StageState, run: &Run) -> Vec<String> {
    match &run.command {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(text) => {
            let mut shell = state.shell();
            let script = match run.heredocs.as_slice() {
                [] => text.clone(),
                [only]
                    if text
                        .trim()
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .starts_with("<<")
                        && text.split_whitespace().count() == 1 =>
                {
                    if only.body.starts_with("#!") {
                        // Let the interpreter named on the #! line run it.
                        let interp = only.body.lines().next().unwrap_or("#!/bin/sh")[2..]
                            .trim()
                            .to_string();
                        format!("{interp} <<'__KILN_EOF__'\n{}__KILN_EOF__\n", only.body)
                    } else {
                        only.body.clone()
                    }
                }
                docs => {
                    let mut s = text.clone();
                    s.push('\n');
                    for d in docs {
                        s.push_str(&d.body);
                        s.push_str(&d.delimiter);
                        s.push('\n');
                    }
                    s
                }
            };
            shell.push(script);
            shell
        }
    }
}

/// `KEY=VALUE` for the process: the config's Env, then ARG values ENV
/// does not set (ARGs are visible to RUN but never stored in the image).
pub fn environment(state: &StageState, args: &[(String, String)]) -> Vec<String> {
    let mut env = state.env();
    for (k, v) in args {
        if !env
            .iter()
            .any(|e| e.split_once('=').map(|(n, _)| n) == Some(k))
        {
            env.push(format!("{k}={v}"));
        }
    }
    env
}

/// Where RUN --mount sources live on the host.
pub struct MountSources<'a> {
    /// `type=cache` directories, by id.
    pub cache_dir: &'a Path,
    /// The context directory (bind mounts without `from`).
    pub context: &'a Path,
    /// `--secret id=ID,src=PATH`.
    pub secrets: &'a BTreeMap<String, PathBuf>,
    /// Mounted roots of stages/images named by `from=`.
    pub from_roots: &'a BTreeMap<String, PathBuf>,
}

/// What must live as long as the RUN: cache-mount locks and private
/// cache directories.
#[derive(Default)]
pub struct Held {
    _locks: Vec<std::fs::File>,
    _private: Vec<tempfile::TempDir>,
}

/// The extra mounts of a RUN, the environment variables secret mounts
/// with `env=` add, and the locks and directories to hold while it runs.
///
/// Cache mounts follow `sharing`: `shared` (default) lets concurrent steps
/// use the directory together, `locked` waits for an exclusive lock,
/// `private` uses a fresh empty directory when another step holds it.
pub fn mounts(run: &Run, src: &MountSources<'_>) -> Result<(Vec<ExtraMount>, Vec<String>, Held)> {
    let mut out = Vec::new();
    let mut env = Vec::new();
    let mut held = Held::default();
    for m in &run.mounts {
        let target = if m.target.starts_with('/') || m.target.is_empty() {
            m.target.clone()
        } else {
            format!("/{}", m.target)
        };
        match m.kind {
            MountKind::Cache => {
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let mut dir = src.cache_dir.join(crate::state::key_of(&[&id]));
                std::fs::create_dir_all(&dir).map_err(io("create cache mount", &dir))?;
                let lock_path = dir.with_extension("lock");
                let lock = std::fs::File::create(&lock_path).map_err(io("create", &lock_path))?;
                match m.sharing {
                    Some(kiln_dockerfile::Sharing::Locked) => {
                        lock.lock().map_err(io("lock cache mount", &lock_path))?;
                        held._locks.push(lock);
                    }
                    Some(kiln_dockerfile::Sharing::Private) => {
                        if lock.try_lock().is_ok() {
                            held._locks.push(lock);
                        } else {
                            let private = tempfile::Builder::new()
                                .prefix("private-")
                                .tempdir_in(src.cache_dir)
                                .map_err(io("create private cache in", src.cache_dir))?;
                            dir = private.path().to_path_buf();
                            held._private.push(private);
                        }
                    }
                    _ => {}
                }
                if let Some(mode) = m.mode {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
                }
                if m.uid.is_some() || m.gid.is_some() {
                    let _ = rustix::fs::chown(
                        &dir,
                        m.uid.map(rustix::fs::Uid::from_raw),
                        m.gid.map(rustix::fs::Gid::from_raw),
                    );
                }
                out.push(ExtraMount::Bind {
                    source: dir,
                    target,
                    readonly: m.readonly,
                });
            }
            MountKind::Tmpfs => out.push(ExtraMount::Tmpfs {
                target,
                size: m.size,
            }),
            MountKind::Bind => {
                let base = match &m.from {
                    Some(f) => src.from_roots.get(f).cloned().ok_or_else(|| {
                        BuildError::Invalid(format!("--mount from={f}: no such stage or image"))
                    })?,
                    None => src.context.to_path_buf(),
                };
                let rel = m.source.clone().unwrap_or_default();
                let source = crate::copy::resolve_in_root(&base, &rel);
                if !source.exists() {
                    return Err(BuildError::Invalid(format!(
                        "--mount type=bind source={rel:?}: not found in {}",
                        m.from.as_deref().unwrap_or("the build context")
                    )));
                }
                // A writable bind of the context would change the user's
                // files: BuildKit discards such writes, kiln refuses them.
                out.push(ExtraMount::Bind {
                    source,
                    target,
                    readonly: m.readonly || m.from.is_none(),
                });
            }
            MountKind::Secret => {
                let id = m.id.clone().unwrap_or_default();
                match src.secrets.get(&id) {
                    Some(path) => {
                        if let Some(var) = &m.env {
                            let value =
                                std::fs::read_to_string(path).map_err(io("read secret", path))?;
                            env.push(format!("{var}={}", value.trim_end_matches('\n')));
                        }
                        if !target.is_empty() {
                            out.push(ExtraMount::Bind {
                                source: path.clone(),
                                target,
                                readonly: true,
                            });
                        }
                    }
                    None if m.required => {
                        return Err(BuildError::Invalid(format!(
                            "secret {id:?} is required: pass --secret id={id},src=FILE"
                        )))
                    }
                    None => {}
                }
            }
            MountKind::Ssh => {
                if m.required {
                    return Err(BuildError::Invalid(
                        "RUN --mount=type=ssh is not supported yet".into(),
                    ));
                }
            }
        }
    }
    Ok((out, env, held))
}

pub fn spec(
    argv: Vec<String>,
    env: Vec<String>,
    cwd: String,
    user: User,
    network: Network,
    mounts: Vec<ExtraMount>,
) -> ProcessSpec {
    ProcessSpec {
        args: argv,
        env,
        cwd,
        user,
        network,
        hostname: "buildkitsandbox".into(),
        mounts,
    }
}
