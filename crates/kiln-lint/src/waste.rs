//! kiln's waste rule, found statically: a file or directory created in
//! one layer (a RUN, COPY or ADD) and deleted by a later RUN still takes
//! its full size in the image, because the earlier layer keeps it and the
//! later one only adds a whiteout. The usual cases: a download removed in
//! a later RUN, `apt-get update` in one RUN and `rm -rf
//! /var/lib/apt/lists/*` in another, pip's cache removed afterwards.
//!
//! What a RUN creates is read from the commands kiln knows (`wget -O`,
//! `curl -o`, `touch`, `mkdir`, `cp`/`mv` destinations, `git clone DIR`,
//! `>` redirections, `apt-get update`'s lists, pip's cache); what it
//! deletes from `rm`. Relative paths are resolved against the stage's
//! WORKDIR unless the RUN changes directory. A stage built FROM an earlier
//! stage inherits what that stage created.

use kiln_dockerfile::ignore::glob_match;
use kiln_dockerfile::{Command, Files, Stage};

use crate::engine::Ctx;
use crate::hadolint::run_script;
use crate::rules::DELETED_IN_LATER_LAYER;
use crate::shell;

/// A path a layer created.
#[derive(Debug, Clone)]
struct Created {
    path: String,
    /// The creating instruction's first line and keyword.
    line: usize,
    keyword: &'static str,
}

fn join(dir: &str, path: &str) -> Option<String> {
    if path.contains('$') || path.is_empty() {
        return None;
    }
    let joined = if path.starts_with('/') {
        path.to_string()
    } else if dir.starts_with('/') && !dir.contains('$') {
        format!("{}/{}", dir.trim_end_matches('/'), path)
    } else {
        return None;
    };
    let cleaned = kiln_dockerfile::ignore::clean_path(&joined);
    Some(format!("/{}", cleaned.trim_start_matches('/')))
}

/// The value of `-X VALUE`, `-XVALUE`, `--long=VALUE` or `--long VALUE`.
fn option_value(args: &[String], short: &str, long: &str) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == short || a == long {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            return Some(v.to_string());
        }
        if a.starts_with(short) && a.len() > short.len() && !a.starts_with("--") {
            // `-qO-`-style bundles end with the option letter.
            let rest = &a[short.len()..];
            return Some(rest.to_string());
        }
        // `-qO /path`: a bundle of short flags ending in the letter.
        if short.len() == 2
            && a.starts_with('-')
            && !a.starts_with("--")
            && a.ends_with(&short[1..])
        {
            return it.next().cloned();
        }
    }
    None
}

/// What one shell command creates (absolute or relative paths).
fn creates(cmd: &shell::Command) -> Vec<String> {
    let args = cmd.args();
    let mut out: Vec<String> = cmd.redirects.clone();
    match cmd.base_name() {
        "wget" => out.extend(option_value(args, "-O", "--output-document")),
        "curl" => out.extend(option_value(args, "-o", "--output")),
        "touch" | "mkdir" => out.extend(cmd.operands().map(str::to_string)),
        "cp" | "mv" | "install" | "ln" => out.extend(cmd.operands().last().map(str::to_string)),
        "git" if args.first().is_some_and(|a| a == "clone") => {
            let ops: Vec<&str> = cmd.operands().skip(1).collect();
            if ops.len() >= 2 {
                out.push(ops[ops.len() - 1].to_string());
            }
        }
        "apt-get" | "apt" | "aptitude" if args.iter().any(|a| a == "update") => {
            out.push("/var/lib/apt/lists".into())
        }
        "pip" | "pip3" if args.iter().any(|a| a == "install") && !cmd.has_flag("no-cache-dir") => {
            out.push("/root/.cache/pip".into())
        }
        _ => {}
    }
    out.retain(|p| p != "-" && !p.starts_with("/dev/"));
    out
}

/// Whether deleting `pattern` removes `created` (the path itself, a parent
/// of it, or the contents of it).
fn removes(pattern: &str, created: &str) -> bool {
    let glob = |p: &str, s: &str| glob_match(p, s).unwrap_or(false);
    if glob(pattern, created) {
        return true;
    }
    // A deleted directory takes what is under it.
    let mut parent = created;
    while let Some((dir, _)) = parent.rsplit_once('/') {
        if dir.is_empty() {
            break;
        }
        if glob(pattern, dir) {
            return true;
        }
        parent = dir;
    }
    // `rm -rf DIR/*` empties a created directory: its files are the waste.
    pattern
        .strip_suffix("/*")
        .is_some_and(|dir| glob(dir, created))
}

fn copy_dests(files: &Files, workdir: &str) -> Vec<String> {
    let dest = &files.dest;
    let names: Vec<String> = files
        .sources
        .iter()
        .map(|s| {
            s.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .chain(files.inline.iter().map(|f| f.name.clone()))
        .collect();
    if dest.ends_with('/') {
        names
            .iter()
            .filter(|n| !n.is_empty() && !n.contains('*'))
            .filter_map(|n| join(workdir, &format!("{dest}{n}")))
            .collect()
    } else {
        join(workdir, dest).into_iter().collect()
    }
}

pub(crate) fn check(ctx: &mut Ctx) {
    let df = ctx.df;
    let mut finished: Vec<(Option<String>, Vec<Created>, String)> = Vec::new();
    for stage in &df.stages {
        let (created, workdir) = finished
            .iter()
            .find(|(name, _, _)| name.as_deref() == Some(stage.base.to_ascii_lowercase().as_str()))
            .map(|(_, c, w)| (c.clone(), w.clone()))
            .unwrap_or_else(|| (Vec::new(), "/".to_string()));
        let (created, workdir) = walk(ctx, stage, created, workdir);
        finished.push((stage.name.clone(), created, workdir));
    }
}

fn walk(
    ctx: &mut Ctx,
    stage: &Stage,
    mut created: Vec<Created>,
    mut workdir: String,
) -> (Vec<Created>, String) {
    for i in &stage.instructions {
        let line = i.span.line;
        match &i.command {
            Command::Workdir(w) => {
                workdir = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{}/{}", workdir.trim_end_matches('/'), w)
                };
            }
            Command::Copy(c) => created.extend(copy_dests(&c.files, &workdir).into_iter().map(
                |path| Created {
                    path,
                    line,
                    keyword: "COPY",
                },
            )),
            Command::Add(a) => created.extend(copy_dests(&a.files, &workdir).into_iter().map(
                |path| Created {
                    path,
                    line,
                    keyword: "ADD",
                },
            )),
            Command::Run(run) => {
                let script = run_script(run);
                let moves = script
                    .commands
                    .iter()
                    .any(|c| c.name() == "cd" || c.name() == "pushd");
                let dir = if moves { "" } else { workdir.as_str() };
                let mut this_run: Vec<String> = Vec::new();
                let mut reported: Vec<usize> = Vec::new();
                for cmd in &script.commands {
                    if cmd.base_name() == "rm" {
                        for op in cmd.operands() {
                            let Some(pattern) = join(dir, op) else {
                                continue;
                            };
                            this_run.retain(|p| !removes(&pattern, p));
                            for (n, c) in created.iter().enumerate() {
                                if reported.contains(&n) || !removes(&pattern, &c.path) {
                                    continue;
                                }
                                reported.push(n);
                                let mut ranges = ctx.at(line);
                                ranges.extend(ctx.at(c.line));
                                ctx.warn(
                                    &DELETED_IN_LATER_LAYER,
                                    format!(
                                        "{} is created by the {} on line {} and deleted by this later RUN: its bytes stay in the earlier layer. Create and delete it in the same RUN (or use a multi-stage build or RUN --mount=type=cache)",
                                        c.path, c.keyword, c.line
                                    ),
                                    ranges,
                                );
                            }
                        }
                    }
                    this_run.extend(creates(cmd).iter().filter_map(|p| join(dir, p)));
                }
                created.extend(this_run.into_iter().map(|path| Created {
                    path,
                    line,
                    keyword: "RUN",
                }));
            }
            _ => {}
        }
    }
    (created, workdir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_patterns() {
        assert!(removes("/tmp/x.tgz", "/tmp/x.tgz"));
        assert!(removes("/tmp", "/tmp/x.tgz"));
        assert!(removes("/tmp/*", "/tmp/x.tgz"));
        assert!(removes("/var/lib/apt/lists/*", "/var/lib/apt/lists"));
        assert!(!removes("/tmp/y", "/tmp/x.tgz"));
        assert!(!removes("/tmp/x.tgz", "/tmp"));
        let c = &shell::parse("wget -q https://e.com/a.tgz -O /tmp/a.tgz").commands[0];
        assert_eq!(creates(c), ["/tmp/a.tgz"]);
        let c = &shell::parse("curl -fsSLo /opt/x https://e").commands[0];
        assert_eq!(creates(c), ["/opt/x"]);
        let c = &shell::parse("wget -qO- https://e").commands[0];
        assert!(creates(c).is_empty());
    }
}
