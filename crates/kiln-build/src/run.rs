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
pub(crate) fn argv(state: &StageState, run: &Run) -> Vec<String> {
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
pub(crate) fn environment(state: &StageState, args: &[(String, String)]) -> Vec<String> {
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
pub(crate) struct MountSources<'a> {
    /// `type=cache` directories, by id.
    pub cache_dir: &'a Path,
    /// The context directory (bind mounts without `from`).
    pub context: &'a Path,
    /// `--secret id=ID,src=PATH`.
    pub secrets: &'a BTreeMap<String, PathBuf>,
    /// Mounted roots of stages/images named by `from=`.
    pub from_roots: &'a BTreeMap<String, PathBuf>,
    /// Their cache keys (a cache mount seeded from one is its own cache).
    pub from_keys: &'a BTreeMap<String, String>,
    /// Scratch space for what a mount needs made on the host: writable
    /// copies of bind sources, secret files with their mode and owner.
    pub scratch: &'a Path,
}

/// What must live as long as the RUN: cache-mount locks, private cache
/// directories, copies made for writable binds and secret files.
#[derive(Default)]
pub(crate) struct Held {
    _locks: Vec<std::fs::File>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Where a mount appears in the container. Bind, cache and tmpfs targets
/// that are empty or relative resolve against the working directory, as
/// BuildKit does (`convert_runmount.go`), and may not be `/`. Secret and
/// ssh targets are absolute already (the parser gives their defaults).
pub(crate) fn mount_target(m: &kiln_dockerfile::Mount, cwd: &str) -> Result<String> {
    match m.kind {
        MountKind::Secret | MountKind::Ssh => Ok(if m.target.is_empty() {
            String::new()
        } else {
            crate::paths::clean_abs(&m.target)
        }),
        MountKind::Bind | MountKind::Cache | MountKind::Tmpfs => {
            let target = if m.target.starts_with('/') {
                crate::paths::clean_abs(&m.target)
            } else {
                crate::paths::clean_abs(&format!("{cwd}/{}", m.target))
            };
            if target == "/" {
                return Err(BuildError::BadOption(format!(
                    "invalid mount target {target:?}: a mount cannot cover the root; give target=PATH"
                )));
            }
            Ok(target)
        }
    }
}

/// Go's `path.Clean` for a cache id: BuildKit's default id is the target
/// as written, cleaned (so `target=.cache` and `target=/x/.cache` differ).
fn clean_id(target: &str) -> String {
    if target.starts_with('/') {
        return crate::paths::clean_abs(target);
    }
    let cleaned = crate::paths::clean_abs(target);
    match cleaned.trim_start_matches('/') {
        "" => ".".to_string(),
        rest => rest.to_string(),
    }
}

/// The extra mounts of a RUN, the environment variables secret mounts
/// with `env=` add, and the locks and directories to hold while it runs.
///
/// Cache mounts follow `sharing`: `shared` (default) lets concurrent steps
/// use the directory together, `locked` waits for an exclusive lock,
/// `private` uses a fresh empty directory when another step holds it.
pub(crate) fn mounts(
    run: &Run,
    cwd: &str,
    src: &MountSources<'_>,
) -> Result<(Vec<ExtraMount>, Vec<String>, Held)> {
    let mut out = Vec::new();
    let mut env = Vec::new();
    let mut held = Held::default();
    let scratch = |held: &mut Held, what: &str| -> Result<PathBuf> {
        let dir = tempfile::Builder::new()
            .prefix(what)
            .tempdir_in(src.scratch)
            .map_err(io("create scratch directory in", src.scratch))?;
        let path = dir.path().to_path_buf();
        held._dirs.push(dir);
        Ok(path)
    };
    for m in &run.mounts {
        let target = mount_target(m, cwd)?;
        match m.kind {
            MountKind::Cache => {
                let mut id = m.id.clone().unwrap_or_else(|| clean_id(&m.target));
                // BuildKit keys a cache with a base by the base too: the
                // same id seeded from another stage is another cache.
                if let Some(f) = &m.from {
                    let base = src.from_keys.get(f).map_or("", String::as_str);
                    let source = m.source.as_deref().unwrap_or("");
                    id = format!("{id}\n{base}\n{source}");
                }
                let mut dir = src.cache_dir.join(crate::cache::cache_mount_name(&id));
                let fresh = !dir.exists();
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
                            held._dirs.push(private);
                        }
                    }
                    _ => {}
                }
                // BuildKit: a new cache starts as `source` of the `from`
                // stage or image (its base snapshot), else empty.
                if fresh {
                    if let Some(f) = &m.from {
                        let base = src.from_roots.get(f).ok_or_else(|| {
                            BuildError::NotFound(format!(
                                "--mount from={f}: no such stage or image"
                            ))
                        })?;
                        let rel = m.source.clone().unwrap_or_default();
                        let seed = crate::paths::resolve_in_root(base, &rel);
                        if !seed.is_dir() {
                            return Err(BuildError::NotFound(format!(
                                "--mount type=cache from={f} source={rel:?}: no such directory in {f}"
                            )));
                        }
                        kiln_snapshot::copy_tree(&seed, &dir)?;
                    }
                }
                // BuildKit: any of mode/uid/gid makes the cache directory
                // with all three (defaults 0755, 0, 0).
                if fresh && (m.mode.is_some() || m.uid.is_some() || m.gid.is_some()) {
                    set_owner_mode(
                        &dir,
                        m.uid.unwrap_or(0),
                        m.gid.unwrap_or(0),
                        m.mode.unwrap_or(0o755),
                    )?;
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
                noexec: false,
            }),
            MountKind::Bind => {
                let base = match &m.from {
                    Some(f) => src.from_roots.get(f).cloned().ok_or_else(|| {
                        BuildError::NotFound(format!("--mount from={f}: no such stage or image"))
                    })?,
                    None => src.context.to_path_buf(),
                };
                let rel = m.source.clone().unwrap_or_default();
                let mut source = crate::paths::resolve_in_root(&base, &rel);
                if !source.exists() {
                    return Err(BuildError::NotFound(format!(
                        "--mount type=bind source={rel:?}: not found in {}",
                        m.from.as_deref().unwrap_or("the build context")
                    )));
                }
                // A writable bind lets the step write, but BuildKit throws
                // the writes away: the step writes to a copy, so the
                // context and the source stage stay as they were.
                if !m.readonly {
                    let copy = scratch(&mut held, "rw-bind")?.join("src");
                    kiln_snapshot::copy_tree(&source, &copy)?;
                    source = copy;
                }
                out.push(ExtraMount::Bind {
                    source,
                    target,
                    readonly: m.readonly,
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
                            // BuildKit's secret file: mode 0400 (or mode=),
                            // owned by uid/gid (default root), whatever the
                            // host file's own mode.
                            // In memory when the host has /dev/shm: a secret
                            // should never reach a disk.
                            let shm = Path::new("/dev/shm");
                            let dir = if shm.is_dir() {
                                let d = tempfile::Builder::new()
                                    .prefix("kiln-secret")
                                    .tempdir_in(shm)
                                    .map_err(io("create secret directory in", shm))?;
                                let p = d.path().to_path_buf();
                                held._dirs.push(d);
                                p
                            } else {
                                scratch(&mut held, "secret")?
                            };
                            let copy = dir.join("secret");
                            std::fs::copy(path, &copy).map_err(io("read secret", path))?;
                            set_owner_mode(
                                &copy,
                                m.uid.unwrap_or(0),
                                m.gid.unwrap_or(0),
                                m.mode.unwrap_or(0o400),
                            )?;
                            out.push(ExtraMount::Bind {
                                source: copy,
                                target,
                                readonly: true,
                            });
                        }
                    }
                    None if m.required => {
                        return Err(BuildError::NotFound(format!(
                            "secret {id:?} is required: pass --secret id={id},src=FILE"
                        )))
                    }
                    None => {}
                }
            }
            MountKind::Ssh => {
                if m.required {
                    return Err(BuildError::Unsupported(
                        "RUN --mount=type=ssh is not supported yet".into(),
                    ));
                }
            }
        }
    }
    Ok((out, env, held))
}

fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io("set the mode of", path))?;
    rustix::fs::chown(
        path,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|e| io("set the owner of", path)(e.into()))
}

pub(crate) fn spec(
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
        extra_hosts: Vec::new(),
        privileged: false,
        // BuildKit's RUN steps have no_new_privs (an insecure step turns
        // it off with `privileged`).
        no_new_privileges: true,
        // No terminal, docker's capabilities and seccomp profile, no limits.
        ..ProcessSpec::default()
    }
}
