//! BuildKit's `docker build --check` rules, with BuildKit's trigger
//! conditions (`dockerfile2llb/validations.go`, `convert.go`,
//! `instructions/parse.go`) and message texts (`linter/ruleset.go`).
//!
//! BuildKit checks in three passes, and so does this module: while
//! parsing (continuations, MAINTAINER, FROM's casing), over the stages
//! (names, instruction casing, FROM's ARGs and platform), and while
//! dispatching each stage's instructions with the stage's variables in
//! scope (undefined variables, ENV/ARG/LABEL forms, WORKDIR, CMD and
//! friends, EXPOSE, COPY of ignored files). In lint mode BuildKit
//! dispatches every stage, not only the target's; so does kiln.

use std::cell::RefCell;
use std::collections::BTreeSet;

use kiln_core::Platform;
use kiln_dockerfile::expand::{expand_heredoc, expand_word, expand_words, Env};
use kiln_dockerfile::ignore::{clean_path, Matcher};
use kiln_dockerfile::{Command, CommandLine, Instruction, Stage};

use crate::engine::{node, BaseImage, Ctx};
use crate::rules::*;

/// The PATH BuildKit gives a stage whose base has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables, in the order they were set (later wins on lookup).
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars(pub(crate) Vec<(String, String)>);

impl FromIterator<(String, String)> for Vars {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Vars {
        Vars(iter.into_iter().collect())
    }
}

impl Env for Vars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Records which variables a word looked up, found or not (BuildKit's
/// `ProcessWordWithMatches`).
struct Recorder<'a> {
    vars: &'a Vars,
    matched: RefCell<BTreeSet<String>>,
    unmatched: RefCell<BTreeSet<String>>,
}

impl<'a> Recorder<'a> {
    fn new(vars: &'a Vars) -> Recorder<'a> {
        Recorder {
            vars,
            matched: RefCell::default(),
            unmatched: RefCell::default(),
        }
    }
}

impl Env for Recorder<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match self.vars.0.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => {
                self.matched.borrow_mut().insert(name.to_string());
                Some(v)
            }
            None => {
                self.unmatched.borrow_mut().insert(name.to_string());
                None
            }
        }
    }
}

pub(crate) fn set(vars: &mut Vars, key: &str, value: &str) {
    vars.0.retain(|(k, _)| k != key);
    vars.0.push((key.to_string(), value.to_string()));
}

/// BuildKit's `suggest.Search`: the nearest option under edit distance 3.
fn suggest<'a>(word: &str, options: impl IntoIterator<Item = &'a str>) -> String {
    let mut best = (3, String::new());
    for opt in options {
        if opt == word {
            return String::new();
        }
        let d = edit_distance(word, opt);
        if d < best.0 {
            best = (d, opt.to_string());
        }
    }
    best.1
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The predefined platform ARGs of BuildKit's global scope (build args
/// override them), then the global ARGs: a build arg's value, else the
/// default expanded in the scope so far. Also every declared name.
fn global_scope(ctx: &Ctx, with_build_args: bool) -> (Vars, BTreeSet<String>) {
    let (b, t) = (&ctx.opts.build_platform, &ctx.opts.target_platform);
    let mut vars = Vars(vec![
        ("BUILDPLATFORM".into(), b.to_string()),
        ("BUILDOS".into(), b.os.clone()),
        ("BUILDOSVERSION".into(), String::new()),
        ("BUILDARCH".into(), b.architecture.clone()),
        ("BUILDVARIANT".into(), b.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM".into(), t.to_string()),
        ("TARGETOS".into(), t.os.clone()),
        ("TARGETOSVERSION".into(), String::new()),
        ("TARGETARCH".into(), t.architecture.clone()),
        (
            "TARGETVARIANT".into(),
            t.variant.clone().unwrap_or_default(),
        ),
        ("TARGETSTAGE".into(), "default".into()),
    ]);
    for (k, v) in vars.0.iter_mut() {
        if let Some(o) = ctx.opts.build_args.get(k.as_str()) {
            *v = o.clone();
        }
    }
    let escape = ctx.df.directives.escape;
    let mut declared = BTreeSet::new();
    for arg in &ctx.df.global_args {
        declared.insert(arg.name.clone());
        let given = ctx
            .opts
            .build_args
            .get(&arg.name)
            .filter(|_| with_build_args);
        let value = match (given, &arg.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => expand_word(d, &vars, escape).ok(),
            (None, None) => None,
        };
        if let Some(v) = value {
            set(&mut vars, &arg.name, &v);
        }
    }
    (vars, declared)
}

/// The words of a FROM line after the keyword and its flags.
fn from_words(args: &str) -> Vec<&str> {
    args.split_whitespace()
        .skip_while(|w| w.starts_with("--"))
        .collect()
}

fn is_secret(key: &str) -> bool {
    const DENY: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOW: &[&str] = &["public", "file", "version"];
    let lower = key.to_ascii_lowercase();
    let tokens: Vec<&str> = lower.split('_').collect();
    tokens.iter().any(|t| DENY.contains(t)) && !tokens.iter().any(|t| ALLOW.contains(t))
}

pub(crate) fn check(ctx: &mut Ctx) {
    parse_time(ctx);
    stage_names(ctx);
    command_casing(ctx);
    default_args_in_from(ctx);
    let (global, declared) = global_scope(ctx, true);
    let mut finished: Vec<StageState> = Vec::new();
    for stage in &ctx.df.stages {
        let state = dispatch_stage(ctx, stage, &global, &declared, &finished);
        finished.push(state);
    }
}

/// What the parser sees: empty continuation lines, MAINTAINER, FROM's
/// stage name and `AS` casing.
fn parse_time(ctx: &mut Ctx) {
    for line in ctx.lines {
        if line.empty_continuation {
            ctx.warn(
                &NO_EMPTY_CONTINUATION,
                "Empty continuation line".into(),
                node(line.end_line, line.end_line),
            );
        }
        let at = node(line.span.line, line.end_line);
        if line.keyword.eq_ignore_ascii_case("MAINTAINER") {
            ctx.warn(
                &MAINTAINER_DEPRECATED,
                "Maintainer instruction is deprecated in favor of using label".into(),
                at.clone(),
            );
        }
        if !line.keyword.eq_ignore_ascii_case("FROM") {
            continue;
        }
        let words = from_words(&line.args);
        if let [_, as_kw, name] = words.as_slice() {
            if *name != name.to_lowercase() {
                ctx.warn(
                    &STAGE_NAME_CASING,
                    format!("Stage name '{name}' should be lowercase"),
                    at.clone(),
                );
            }
            let from = line.keyword.as_str();
            let from_lower = from == from.to_lowercase();
            let from_upper = from == from.to_uppercase();
            let mismatch = (from_lower && *as_kw != as_kw.to_lowercase())
                || (!from_lower && from_upper && *as_kw != as_kw.to_uppercase());
            if mismatch {
                ctx.warn(
                    &FROM_AS_CASING,
                    format!("'{as_kw}' and '{from}' keywords' casing do not match"),
                    at,
                );
            }
        }
    }
}

fn stage_range(ctx: &Ctx, stage: &Stage) -> Vec<(usize, usize)> {
    ctx.at(stage.span.line)
}

fn stage_names(ctx: &mut Ctx) {
    let mut seen = BTreeSet::new();
    for stage in &ctx.df.stages {
        let Some(name) = &stage.name else { continue };
        let at = stage_range(ctx, stage);
        if name == "context" || name == "scratch" {
            ctx.warn(
                &RESERVED_STAGE_NAME,
                format!("Stage name should not use the same name as reserved stage {name:?}"),
                at.clone(),
            );
        }
        if !seen.insert(name.clone()) {
            ctx.warn(
                &DUPLICATE_STAGE_NAME,
                format!("Duplicate stage name {name:?}, stage names should be unique"),
                at,
            );
        }
    }
}

/// The keyword of each stage's FROM and instructions, as written, with
/// its first line. Global ARGs are not in a stage and do not count.
fn stage_keywords(ctx: &Ctx) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for stage in &ctx.df.stages {
        for line in
            std::iter::once(stage.span.line).chain(stage.instructions.iter().map(|i| i.span.line))
        {
            if let Some(l) = ctx.line_at(line) {
                out.push((l.keyword.clone(), line));
            }
        }
    }
    out
}

fn command_casing(ctx: &mut Ctx) {
    let keywords = stage_keywords(ctx);
    let (mut lower, mut upper) = (0, 0);
    for (k, _) in &keywords {
        if *k == k.to_lowercase() {
            lower += 1;
        } else if *k == k.to_uppercase() {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for (k, line) in keywords {
        let casing = if majority_lower && k != k.to_lowercase() {
            "lowercase"
        } else if !majority_lower && k != k.to_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        let at = ctx.at(line);
        ctx.warn(
            &CONSISTENT_INSTRUCTION_CASING,
            format!("Command '{k}' should match the case of the command majority ({casing})"),
            at,
        );
    }
}

/// With no build args at all, every FROM must still name a valid image.
fn default_args_in_from(ctx: &mut Ctx) {
    let (vars, _) = global_scope(ctx, false);
    let escape = ctx.df.directives.escape;
    for stage in &ctx.df.stages {
        let Ok(name) = expand_word(&stage.base, &vars, escape) else {
            return;
        };
        if name.parse::<kiln_core::ImageRef>().is_err() {
            let at = stage_range(ctx, stage);
            ctx.warn(
                &INVALID_DEFAULT_ARG_IN_FROM,
                format!(
                    "Default value for ARG {} results in empty or invalid base image name",
                    stage.base
                ),
                at,
            );
        }
    }
}

/// A stage's variables and settings while its instructions are walked.
#[derive(Debug, Clone, Default)]
struct StageState {
    name: Option<String>,
    /// `None`: the base image is unknown, so which variables are defined
    /// is too; UndefinedVar is not checked.
    env: Option<Vars>,
    /// ARGs declared in the stage (with or without a value).
    args: BTreeSet<String>,
    workdir_set: bool,
    shell_set: bool,
}

/// `os/arch[/variant]`, `os` or `arch`, as containerd parses a platform.
fn parse_platform(s: &str, host: &Platform) -> Option<Platform> {
    const OSES: &[&str] = &[
        "linux", "windows", "darwin", "freebsd", "openbsd", "netbsd", "solaris", "illumos", "aix",
        "plan9",
    ];
    let norm = |a: &str| match a.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        "armhf" | "armel" => "arm".to_string(),
        "i386" => "386".to_string(),
        other => other.to_string(),
    };
    let parts: Vec<&str> = s.split('/').collect();
    if parts.iter().any(|p| {
        p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    }) {
        return None;
    }
    match parts.as_slice() {
        [one] if OSES.contains(&one.to_ascii_lowercase().as_str()) => Some(Platform::new(
            &one.to_ascii_lowercase(),
            &host.architecture,
            None,
        )),
        [one] => Some(Platform::new("linux", &norm(one), None)),
        [os, arch] => Some(Platform::new(&os.to_ascii_lowercase(), &norm(arch), None)),
        [os, arch, variant] => Some(Platform::new(
            &os.to_ascii_lowercase(),
            &norm(arch),
            Some(variant),
        )),
        _ => None,
    }
}

fn dispatch_stage(
    ctx: &mut Ctx,
    stage: &Stage,
    global: &Vars,
    declared: &BTreeSet<String>,
    finished: &[StageState],
) -> StageState {
    let escape = ctx.df.directives.escape;
    let at = stage_range(ctx, stage);
    // The ARG names a FROM may use: declared globals and the scope's.
    let keys: BTreeSet<&str> = declared
        .iter()
        .map(String::as_str)
        .chain(global.0.iter().map(|(k, _)| k.as_str()))
        .collect();
    let report_from = |ctx: &mut Ctx, rec: &Recorder| {
        for arg in rec.unmatched.borrow().iter() {
            if keys.contains(arg.as_str()) {
                continue;
            }
            let s = suggest(arg, declared.iter().map(String::as_str));
            let mut msg = format!("FROM argument '{arg}' is not declared");
            if !s.is_empty() {
                msg.push_str(&format!(" (did you mean {s}?)"));
            }
            ctx.warn(&UNDEFINED_ARG_IN_FROM, msg, at.clone());
        }
    };
    let rec = Recorder::new(global);
    let base = expand_word(&stage.base, &rec, escape).unwrap_or_default();
    report_from(ctx, &rec);
    let mut platform = None;
    if let Some(p) = &stage.platform {
        let rec = Recorder::new(global);
        let result = expand_word(p, &rec, escape).unwrap_or_default();
        report_from(ctx, &rec);
        let (matched, unmatched) = (rec.matched.borrow(), rec.unmatched.borrow());
        if matched.len() == 1
            && unmatched.is_empty()
            && matched.contains("TARGETPLATFORM")
            && Some(result.as_str()) == global.get("TARGETPLATFORM")
        {
            ctx.warn(
                &REDUNDANT_TARGET_PLATFORM,
                format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior"),
                at.clone(),
            );
        }
        platform = parse_platform(&result, &ctx.opts.target_platform);
        if matched.is_empty() && unmatched.is_empty() {
            if let Some(parsed) = &platform {
                let name = stage.name.as_deref().unwrap_or("");
                if !name.contains(&parsed.os) && !name.contains(&parsed.architecture) {
                    ctx.warn(
                        &FROM_PLATFORM_FLAG_CONST_DISALLOWED,
                        format!("FROM --platform flag should not use constant value {result:?}"),
                        at.clone(),
                    );
                }
            }
        }
    }
    let mut state = match finished
        .iter()
        .find(|s| s.name.as_deref() == Some(base.as_str()))
    {
        Some(parent) => parent.clone(),
        None if base == "scratch" => StageState {
            env: Some(Vars(vec![("PATH".into(), DEFAULT_PATH.into())])),
            ..StageState::default()
        },
        None => {
            let want = platform
                .clone()
                .unwrap_or_else(|| ctx.opts.target_platform.clone());
            let image = ctx.bases.lookup(&base, &want);
            if let Some(BaseImage {
                platform: Some(have),
                ..
            }) = &image
            {
                if have.os != want.os || have.architecture != want.architecture {
                    ctx.warn(
                        &INVALID_BASE_IMAGE_PLATFORM,
                        format!(
                            "Base image {} was pulled with platform {:?}, expected {:?} for current build",
                            stage.base,
                            have.to_string(),
                            want.to_string()
                        ),
                        at.clone(),
                    );
                }
            }
            match image {
                Some(img) => {
                    let mut env: Vars = img
                        .env
                        .iter()
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (k.to_string(), v.to_string())
                        })
                        .collect();
                    if env.get("PATH").is_none() {
                        env.0.push(("PATH".into(), DEFAULT_PATH.into()));
                    }
                    StageState {
                        env: Some(env),
                        shell_set: img.shell,
                        ..StageState::default()
                    }
                }
                None => StageState::default(),
            }
        }
    };
    state.name = stage.name.clone();
    let mut used = Trackers::default();
    for instruction in &stage.instructions {
        dispatch(ctx, &mut state, &mut used, instruction, global);
    }
    state
}

/// Where CMD, ENTRYPOINT and HEALTHCHECK were last set in the stage.
#[derive(Default)]
struct Trackers {
    cmd: Option<usize>,
    entrypoint: Option<usize>,
    healthcheck: Option<usize>,
}

/// Expands `word` in the stage's scope, reporting undefined variables as
/// BuildKit does for instructions it expands.
fn expand(ctx: &mut Ctx, state: &StageState, line: usize, word: &str, heredoc: bool) -> String {
    let escape = ctx.df.directives.escape;
    let Some(env) = &state.env else {
        let empty = Vars::default();
        return if heredoc {
            expand_heredoc(word, &empty, escape)
        } else {
            expand_word(word, &empty, escape)
        }
        .unwrap_or_else(|_| word.to_string());
    };
    let rec = Recorder::new(env);
    let out = if heredoc {
        expand_heredoc(word, &rec, escape)
    } else {
        expand_word(word, &rec, escape)
    }
    .unwrap_or_else(|_| word.to_string());
    let at = ctx.at(line);
    for var in rec.unmatched.borrow().iter() {
        if state.args.contains(var) {
            continue;
        }
        let s = suggest(var, env.0.iter().map(|(k, _)| k.as_str()));
        let mut msg = format!("Usage of undefined variable '${var}'");
        if !s.is_empty() {
            msg.push_str(&format!(" (did you mean ${s}?)"));
        }
        ctx.warn(&UNDEFINED_VAR, msg, at.clone());
    }
    out
}

/// ENV/LABEL written `KEY value` (no `=`): the legacy form.
fn legacy_form(ctx: &Ctx, line: usize) -> bool {
    ctx.line_at(line).is_some_and(|l| {
        l.args
            .split_whitespace()
            .next()
            .is_some_and(|w| !w.contains('='))
    })
}

fn dispatch(
    ctx: &mut Ctx,
    state: &mut StageState,
    used: &mut Trackers,
    instruction: &Instruction,
    global: &Vars,
) {
    let line = instruction.span.line;
    let at = ctx.at(line);
    let keyword = ctx
        .line_at(line)
        .map(|l| l.keyword.clone())
        .unwrap_or_else(|| instruction.command.keyword().to_string());
    let once = |ctx: &mut Ctx, slot: &mut Option<usize>| {
        if let Some(prev) = slot.replace(line) {
            let prev_at = ctx.at(prev);
            ctx.warn(
                &MULTIPLE_INSTRUCTIONS_DISALLOWED,
                format!("Multiple {keyword} instructions should not be used in the same stage because only the last one will be used"),
                prev_at,
            );
        }
    };
    let json_args = |ctx: &mut Ctx, state: &StageState, cl: &CommandLine| {
        if matches!(cl, CommandLine::Shell(_)) && !state.shell_set {
            ctx.warn(
                &JSON_ARGS_RECOMMENDED,
                format!("JSON arguments recommended for {keyword} to prevent unintended behavior related to OS signals"),
                at.clone(),
            );
        }
    };
    match &instruction.command {
        Command::Env(pairs) => {
            let mut out = Vec::new();
            for kv in pairs {
                let k = expand(ctx, state, line, &kv.key, false);
                let v = expand(ctx, state, line, &kv.value, false);
                out.push((k, v));
            }
            for (k, v) in out {
                if legacy_form(ctx, line) {
                    ctx.warn(
                        &LEGACY_KEY_VALUE_FORMAT,
                        format!("\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"),
                        at.clone(),
                    );
                }
                secret(ctx, "ENV", &k, &at);
                if let Some(env) = &mut state.env {
                    set(env, &k, &v);
                }
            }
        }
        Command::Label(pairs) => {
            for kv in pairs {
                expand(ctx, state, line, &kv.key, false);
                expand(ctx, state, line, &kv.value, false);
            }
            if legacy_form(ctx, line) {
                ctx.warn(
                    &LEGACY_KEY_VALUE_FORMAT,
                    format!("\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"),
                    at.clone(),
                );
            }
        }
        Command::Arg(decls) => {
            for d in decls {
                secret(ctx, "ARG", &d.name, &at);
                let value = match (ctx.opts.build_args.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(def)) => Some(expand(ctx, state, line, def, false)),
                    (None, None) => global.get(&d.name).map(str::to_string),
                };
                if let (Some(v), Some(env)) = (value, &mut state.env) {
                    set(env, &d.name, &v);
                }
                state.args.insert(d.name.clone());
            }
        }
        Command::Copy(c) => {
            let sources: Vec<String> = c
                .files
                .sources
                .iter()
                .map(|s| expand(ctx, state, line, s, false))
                .collect();
            expand(ctx, state, line, &c.files.dest, false);
            for f in c.files.inline.iter().filter(|f| f.expand) {
                expand(ctx, state, line, &f.data, true);
            }
            if c.from.is_none() {
                ignored_sources(ctx, "Copy", &sources, &at);
            }
        }
        Command::Add(a) => {
            let sources: Vec<String> = a
                .files
                .sources
                .iter()
                .map(|s| expand(ctx, state, line, s, false))
                .collect();
            expand(ctx, state, line, &a.files.dest, false);
            let local: Vec<String> = sources.into_iter().filter(|s| !is_remote(s)).collect();
            ignored_sources(ctx, "Add", &local, &at);
        }
        Command::Workdir(w) => {
            let path = expand(ctx, state, line, w, false);
            if !state.workdir_set && !path.starts_with('/') {
                ctx.warn(
                    &WORKDIR_RELATIVE_PATH,
                    format!("Relative workdir {path:?} can have unexpected results if the base image changes"),
                    at.clone(),
                );
            }
            state.workdir_set = true;
        }
        Command::User(u) | Command::StopSignal(u) => {
            expand(ctx, state, line, u, false);
        }
        Command::Volume(list) => {
            for v in list {
                expand(ctx, state, line, v, false);
            }
        }
        Command::Run(r) => {
            for m in &r.mounts {
                for w in [
                    Some(&m.target),
                    m.source.as_ref(),
                    m.from.as_ref(),
                    m.id.as_ref(),
                ]
                .into_iter()
                .flatten()
                {
                    expand(ctx, state, line, w, false);
                }
            }
        }
        Command::Cmd(cl) => {
            once(ctx, &mut used.cmd);
            json_args(ctx, state, cl);
        }
        Command::Entrypoint(cl) => {
            once(ctx, &mut used.entrypoint);
            json_args(ctx, state, cl);
        }
        Command::Healthcheck(_) => once(ctx, &mut used.healthcheck),
        Command::Shell(_) => state.shell_set = true,
        Command::Expose(ports) => {
            let escape = ctx.df.directives.escape;
            let empty = Vars::default();
            let env = state.env.as_ref().unwrap_or(&empty);
            for p in ports {
                for raw in expand_words(p, env, escape).unwrap_or_default() {
                    expose(ctx, &raw, &at);
                }
            }
        }
        Command::Onbuild(_) | Command::Maintainer(_) => {}
    }
}

fn secret(ctx: &mut Ctx, instruction: &str, key: &str, at: &[(usize, usize)]) {
    if is_secret(key) {
        ctx.warn(
            &SECRETS_USED_IN_ARG_OR_ENV,
            format!(
                "Do not use ARG or ENV instructions for sensitive data ({instruction} {key:?})"
            ),
            at.to_vec(),
        );
    }
}

fn is_remote(s: &str) -> bool {
    s.starts_with("http://")
        || s.starts_with("https://")
        || s.starts_with("git@")
        || s.starts_with("git://")
}

/// CopyIgnoredFile: only with a `.dockerignore` that has no `!`
/// exceptions (BuildKit cannot decide those statically either).
fn ignored_sources(ctx: &mut Ctx, cmd: &str, sources: &[String], at: &[(usize, usize)]) {
    let Some(text) = &ctx.opts.dockerignore else {
        return;
    };
    let Ok(matcher) = Matcher::parse(text) else {
        return;
    };
    if matcher.has_exceptions() {
        return;
    }
    let root_ignored = text
        .lines()
        .map(str::trim)
        .any(|l| !l.starts_with('#') && matches!(clean_path(l).as_str(), "*" | "**" | "**/*"));
    for src in sources {
        let cleaned = clean_path(src);
        if (cleaned == "." || cleaned == "/") && !root_ignored {
            continue;
        }
        let hit = if cleaned == "." || cleaned == "/" {
            root_ignored
        } else {
            matcher.excludes(cleaned.trim_start_matches('/'))
        };
        if hit {
            ctx.warn(
                &COPY_IGNORED_FILE,
                format!("Attempting to {cmd} file {cleaned:?} that is excluded by .dockerignore"),
                at.to_vec(),
            );
        }
    }
}

/// EXPOSE: BuildKit splits `[ip:][host:]port[/proto]`.
fn expose(ctx: &mut Ctx, raw: &str, at: &[(usize, usize)]) {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("".to_string(), "", *c),
        [h, c] => ("".to_string(), *h, *c),
        [ip, h, c] => (ip.to_string(), *h, *c),
        more => {
            let n = more.len();
            (more[..n - 2].join(":"), more[n - 2], more[n - 1])
        }
    };
    let proto = container.split('/').nth(1).unwrap_or("");
    if proto != proto.to_lowercase() {
        ctx.warn(
            &EXPOSE_PROTO_CASING,
            format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
            at.to_vec(),
        );
    }
    if !ip.is_empty() || !host.is_empty() {
        ctx.warn(
            &EXPOSE_INVALID_FORMAT,
            format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'"),
            at.to_vec(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_suggestions_follow_buildkit() {
        for k in [
            "API_KEY",
            "password",
            "GITHUB_TOKEN",
            "aws_secret_access",
            "AUTH",
        ] {
            assert!(is_secret(k), "{k}");
        }
        for k in [
            "KEYS",
            "PUBLIC_KEY",
            "TOKEN_FILE",
            "GPG_KEY_VERSION",
            "MONKEY",
            "PASSWORDLESS",
        ] {
            assert!(!is_secret(k), "{k}");
        }
        assert_eq!(
            suggest("BUIDLARCH", ["BUILDARCH", "TARGETARCH"]),
            "BUILDARCH"
        );
        assert_eq!(suggest("ZZZ", ["BUILDARCH"]), "");
        assert_eq!(suggest("A", ["A", "B"]), "");
    }
}
