//! Logical lines to typed instructions and stages, with docker's rules
//! for each instruction's arguments and flags.

use crate::duration::parse_go_duration;
use crate::error::{nearest, Error};
use crate::flags::{Flags, Kind};
use crate::lines::{heredoc_marker, logical_lines, Heredoc, LogicalLine, Span};
use crate::model::*;
use crate::mount::parse_mount;
use crate::words::{json_array, leading_flags, quoted_words, whitespace_words};

/// Every instruction keyword docker knows.
pub const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, Error> {
    parse_checked(text, true)
}

/// Parses a whole Dockerfile but lets two stages share a name (the last
/// one wins, as in BuildKit): for the linter, which reports the duplicate
/// as BuildKit's `DuplicateStageName` instead of failing.
pub fn parse_lenient(text: &str) -> Result<Dockerfile, Error> {
    parse_checked(text, false)
}

fn parse_checked(text: &str, unique_stage_names: bool) -> Result<Dockerfile, Error> {
    let (directives, lines) = logical_lines(text)?;
    let escape = directives.escape;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in &lines {
        let snippet = || {
            format!("{} {}", line.keyword, line.args)
                .trim_end()
                .to_string()
        };
        let at = |e: String| Error::new(line.span, e).with_snippet(snippet());
        if line.keyword.eq_ignore_ascii_case("FROM") {
            let stage = parse_from(line, stages.len()).map_err(at)?;
            if let Some(name) = stage.name.as_ref().filter(|_| unique_stage_names) {
                if stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                    return Err(at(format!("duplicate stage name {name:?}"))
                        .with_hint("give each stage its own AS name"));
                }
            }
            stages.push(stage);
            continue;
        }
        let instruction = parse_instruction(line, escape).map_err(|e| e.with_snippet(snippet()))?;
        if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        } else if let Command::Arg(args) = instruction.command {
            global_args.extend(args);
        } else {
            return Err(at(format!(
                "{} before the first FROM: no build stage in current context",
                instruction.command.keyword()
            ))
            .with_hint("only ARG may come before the first FROM"));
        }
    }
    if stages.is_empty() {
        let span = lines
            .last()
            .map(|l| l.span)
            .unwrap_or(Span { line: 1, col: 1 });
        return Err(
            Error::new(span, "the Dockerfile has no FROM: nothing to build")
                .with_hint("start a stage with FROM IMAGE, or FROM scratch"),
        );
    }
    Ok(Dockerfile {
        directives,
        global_args,
        stages,
    })
}

/// Parses one instruction line as it would appear in a Dockerfile (an
/// ONBUILD trigger from an image config, `--change` of import/commit).
pub fn parse_line(text: &str, escape: char) -> Result<Instruction, Error> {
    let (_, lines) = logical_lines(text)?;
    match lines.as_slice() {
        [line] => parse_instruction(line, escape),
        _ => Err(Error::new(
            Span { line: 1, col: 1 },
            format!("expected one instruction, found {}", lines.len()),
        )),
    }
}

fn parse_from(line: &LogicalLine, index: usize) -> Result<Stage, String> {
    let (flag_words, rest) = leading_flags(&line.args);
    let flags = Flags::parse("FROM", &flag_words, &[("platform", Kind::String)])?;
    let words = whitespace_words(rest);
    let name = match words.as_slice() {
        [_] => None,
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                && lower
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ));
            }
            Some(lower)
        }
        [] => return Err("FROM requires the image: FROM [--platform=P] IMAGE [AS NAME]".into()),
        _ => {
            return Err(
                "FROM requires either one or three arguments: FROM [--platform=P] IMAGE [AS NAME]"
                    .into(),
            )
        }
    };
    Ok(Stage {
        index,
        name,
        base: words[0].clone(),
        platform: flags.string("platform"),
        span: line.span,
        instructions: Vec::new(),
    })
}

fn parse_instruction(line: &LogicalLine, escape: char) -> Result<Instruction, Error> {
    let keyword = line.keyword.to_ascii_uppercase();
    let command = parse_command(&keyword, &line.args, &line.heredocs, escape).map_err(|e| {
        let err = Error::new(line.span, e.message);
        match e.hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    })?;
    let mut original = format!("{keyword} {}", line.args).trim_end().to_string();
    for h in &line.heredocs {
        original.push('\n');
        original.push_str(&h.body);
        original.push_str(&h.delimiter);
    }
    Ok(Instruction {
        span: line.span,
        end_line: line.end_line,
        original,
        command,
    })
}

/// An instruction-level error before it gets a position.
struct Problem {
    message: String,
    hint: Option<String>,
}

impl From<String> for Problem {
    fn from(message: String) -> Problem {
        Problem {
            message,
            hint: None,
        }
    }
}

impl From<&str> for Problem {
    fn from(message: &str) -> Problem {
        message.to_string().into()
    }
}

fn parse_command(
    keyword: &str,
    args: &str,
    heredocs: &[Heredoc],
    escape: char,
) -> Result<Command, Problem> {
    let (flag_words, rest) = leading_flags(args);
    let flags = |accepted: &[(&'static str, Kind)]| Flags::parse(keyword, &flag_words, accepted);
    let one = |what: &str| -> Result<String, Problem> {
        if rest.is_empty() {
            Err(format!("{keyword} requires exactly one argument: {keyword} {what}").into())
        } else {
            Ok(rest.to_string())
        }
    };
    let command = match keyword {
        "RUN" => {
            let f = flags(&[
                ("mount", Kind::List),
                ("network", Kind::String),
                ("security", Kind::String),
            ])?;
            if rest.is_empty() {
                return Err(
                    "RUN requires a command: RUN COMMAND, RUN [\"EXE\", \"ARG\"…] or RUN <<EOF"
                        .into(),
                );
            }
            Command::Run(run(rest, heredocs, &f)?)
        }
        "CMD" | "ENTRYPOINT" => {
            flags(&[])?;
            let line = command_line(rest).ok_or_else(|| {
                format!("{keyword} requires at least one argument: {keyword} [\"EXE\", \"ARG\"…] or {keyword} COMMAND")
            })?;
            if keyword == "CMD" {
                Command::Cmd(line)
            } else {
                Command::Entrypoint(line)
            }
        }
        "SHELL" => {
            flags(&[])?;
            match json_array(rest) {
                Some(v) if !v.is_empty() => Command::Shell(v),
                Some(_) => return Err("SHELL requires at least one argument".into()),
                None => {
                    return Err(Problem {
                        message: "SHELL requires the arguments to be in JSON form".into(),
                        hint: Some(format!("write SHELL {}", to_json(&whitespace_words(rest)))),
                    })
                }
            }
        }
        "ENV" | "LABEL" => {
            flags(&[])?;
            let pairs = key_values(keyword, rest, escape)?;
            if keyword == "ENV" {
                Command::Env(pairs)
            } else {
                Command::Label(pairs)
            }
        }
        "EXPOSE" => {
            flags(&[])?;
            let ports = whitespace_words(rest);
            if ports.is_empty() {
                return Err("EXPOSE requires at least one argument: EXPOSE PORT[/PROTO]…".into());
            }
            Command::Expose(ports)
        }
        "ADD" => {
            let f = flags(&[
                ("chown", Kind::String),
                ("chmod", Kind::String),
                ("link", Kind::Bool),
                ("keep-git-dir", Kind::Bool),
                ("checksum", Kind::String),
                ("exclude", Kind::List),
            ])?;
            Command::Add(Add {
                files: files("ADD", rest, heredocs, &f, escape)?,
                keep_git_dir: f.bool("keep-git-dir"),
                checksum: f.string("checksum"),
            })
        }
        "COPY" => {
            let f = flags(&[
                ("from", Kind::String),
                ("chown", Kind::String),
                ("chmod", Kind::String),
                ("link", Kind::Bool),
                ("parents", Kind::Bool),
                ("exclude", Kind::List),
            ])?;
            Command::Copy(Copy {
                files: files("COPY", rest, heredocs, &f, escape)?,
                from: f.string("from"),
                parents: f.bool("parents"),
            })
        }
        "VOLUME" => {
            flags(&[])?;
            let list = json_array(rest).unwrap_or_else(|| whitespace_words(rest));
            if list.is_empty() {
                return Err("VOLUME requires at least one argument: VOLUME PATH…".into());
            }
            if list.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Command::Volume(list.into_iter().map(|v| v.trim().to_string()).collect())
        }
        "USER" => {
            flags(&[])?;
            Command::User(one("USER[:GROUP]")?)
        }
        "WORKDIR" => {
            flags(&[])?;
            Command::Workdir(one("PATH")?)
        }
        "STOPSIGNAL" => {
            flags(&[])?;
            Command::StopSignal(one("SIGNAL")?)
        }
        "MAINTAINER" => {
            flags(&[])?;
            Command::Maintainer(one("NAME")?)
        }
        "ARG" => {
            flags(&[])?;
            let words = quoted_words(rest, escape);
            if words.is_empty() {
                return Err("ARG requires at least one argument: ARG NAME[=DEFAULT]…".into());
            }
            let mut decls = Vec::new();
            for w in words {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w, None),
                };
                if name.is_empty() {
                    return Err("ARG names can not be blank".into());
                }
                decls.push(ArgDecl { name, default });
            }
            Command::Arg(decls)
        }
        "ONBUILD" => {
            flags(&[])?;
            let trimmed = args.trim();
            let (trigger_kw, trigger_args) = trimmed
                .split_once(char::is_whitespace)
                .map(|(k, a)| (k, a.trim_start()))
                .unwrap_or((trimmed, ""));
            let trigger_kw = trigger_kw.to_ascii_uppercase();
            match trigger_kw.as_str() {
                "" => {
                    return Err(
                        "ONBUILD requires at least one argument: ONBUILD INSTRUCTION".into(),
                    )
                }
                "ONBUILD" => {
                    return Err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "FROM" | "MAINTAINER" => {
                    return Err(format!("{trigger_kw} isn't allowed as an ONBUILD trigger").into())
                }
                _ => {}
            }
            let trigger = parse_command(&trigger_kw, trigger_args, heredocs, escape)?;
            let mut expression = trimmed.to_string();
            for h in heredocs {
                expression.push('\n');
                expression.push_str(&h.body);
                expression.push_str(&h.delimiter);
            }
            Command::Onbuild(Onbuild {
                expression,
                trigger: Box::new(trigger),
            })
        }
        "HEALTHCHECK" => healthcheck(rest, &flag_words)?,
        "FROM" => return Err("FROM isn't allowed here".into()),
        other => {
            let mut p = Problem::from(format!("unknown instruction: {other}"));
            p.hint = nearest(other, INSTRUCTIONS).map(|n| format!("did you mean {n}?"));
            return Err(p);
        }
    };
    Ok(command)
}

/// Exec form if the text is a JSON string array, else shell form; `None`
/// for nothing at all.
fn command_line(rest: &str) -> Option<CommandLine> {
    if let Some(v) = json_array(rest) {
        return Some(CommandLine::Exec(v));
    }
    (!rest.is_empty()).then(|| CommandLine::Shell(rest.to_string()))
}

/// RUN's parts. Mount options are checked now; their string values
/// (target, source, from, id, env) are expanded later, with the stage.
fn run(rest: &str, heredocs: &[Heredoc], f: &Flags) -> Result<Run, String> {
    let mut mounts = Vec::new();
    for m in f.list("mount") {
        mounts.push(parse_mount(&m, &mut |v| Ok(v.to_string()))?);
    }
    let network = match f.string("network").as_deref() {
        None => None,
        Some("default") => Some(Network::Default),
        Some("none") => Some(Network::None),
        Some("host") => Some(Network::Host),
        Some(other) => {
            return Err(format!(
                "unsupported network mode {other:?}: use --network=default, none or host"
            ))
        }
    };
    let security = match f.string("security").as_deref() {
        None => None,
        Some("sandbox") => Some(Security::Sandbox),
        Some("insecure") => Some(Security::Insecure),
        Some(other) => {
            return Err(format!(
                "unsupported security mode {other:?}: use --security=sandbox or insecure"
            ))
        }
    };
    Ok(Run {
        command: command_line(rest).unwrap_or(CommandLine::Shell(String::new())),
        heredocs: heredocs.to_vec(),
        mounts,
        network,
        security,
    })
}

fn to_json(words: &[String]) -> String {
    serde_json::to_string(words).unwrap_or_default()
}

/// ENV and LABEL: `k=v …`, or the legacy `k v` (one pair, the value is
/// the rest of the line).
fn key_values(keyword: &str, rest: &str, escape: char) -> Result<Vec<KeyValue>, Problem> {
    let words = quoted_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(
            format!("{keyword} requires at least one argument: {keyword} KEY=VALUE…").into(),
        );
    };
    if !first.contains('=') {
        let (key, value) = rest
            .split_once(char::is_whitespace)
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((rest, ""));
        if value.is_empty() {
            return Err(Problem {
                message: format!("{keyword} must have two arguments: {keyword} KEY=VALUE"),
                hint: Some(format!("write {keyword} {key}=VALUE")),
            });
        }
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((key, value)) = w.split_once('=') else {
            return Err(format!(
                "syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )
            .into());
        };
        if key.is_empty() {
            return Err(format!("{keyword} names can not be blank").into());
        }
        out.push(KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(out)
}

fn files(
    keyword: &str,
    rest: &str,
    heredocs: &[Heredoc],
    f: &Flags,
    escape: char,
) -> Result<Files, Problem> {
    let mut words = json_array(rest).unwrap_or_else(|| whitespace_words(rest));
    if words.len() < 2 {
        return Err(Problem {
            message: format!(
                "{keyword} requires at least two arguments, but only {} provided. Destination could not be determined",
                if words.is_empty() { "none was" } else { "one was" }
            ),
            hint: Some(format!("{keyword} SOURCE… DEST")),
        });
    }
    let dest = words.pop().unwrap_or_default();
    if heredoc_marker(&dest, escape).is_some() && !heredocs.is_empty() {
        return Err(format!("{keyword} cannot accept a heredoc as a destination").into());
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for w in words {
        match heredoc_marker(&w, escape)
            .and_then(|(n, _, _)| heredocs.iter().find(|h| h.delimiter == n))
        {
            Some(h) => inline.push(InlineFile {
                name: h.delimiter.clone(),
                data: h.body.clone(),
                expand: !h.quoted,
            }),
            None => sources.push(w),
        }
    }
    Ok(Files {
        sources,
        inline,
        dest,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link"),
        exclude: f.list("exclude"),
    })
}

fn healthcheck(rest: &str, flag_words: &[String]) -> Result<Command, Problem> {
    let (kind, cmd) = rest
        .split_once(char::is_whitespace)
        .map(|(k, c)| (k, c.trim()))
        .unwrap_or((rest, ""));
    match kind.to_ascii_uppercase().as_str() {
        "" => Err("HEALTHCHECK requires at least one argument: HEALTHCHECK [OPTIONS] CMD COMMAND, or HEALTHCHECK NONE".into()),
        // Docker ignores flags on NONE; so do we.
        "NONE" if cmd.is_empty() => Ok(Command::Healthcheck(Healthcheck::None)),
        "NONE" => Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" => {
            let f = Flags::parse(
                "HEALTHCHECK",
                flag_words,
                &[
                    ("interval", Kind::String),
                    ("timeout", Kind::String),
                    ("start-period", Kind::String),
                    ("start-interval", Kind::String),
                    ("retries", Kind::String),
                ],
            )?;
            let test = match command_line(cmd) {
                Some(CommandLine::Exec(v)) if v.is_empty() => None,
                other => other,
            }
            .ok_or("missing command after HEALTHCHECK CMD")?;
            let duration = |name: &str| -> Result<Option<u64>, Problem> {
                let Some(v) = f.string(name) else { return Ok(None) };
                if v.is_empty() {
                    return Ok(None);
                }
                let ns = parse_go_duration(&v).map_err(|e| format!("--{name}: {e}"))?;
                match ns {
                    0 => Ok(None),
                    ns if ns < 1_000_000 => Err(format!("--{name}={v} cannot be less than 1ms").into()),
                    ns => Ok(u64::try_from(ns).ok()),
                }
            };
            let retries = match f.string("retries").filter(|v| !v.is_empty()) {
                None => None,
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if n < 0 => return Err(format!("--retries cannot be negative ({n})").into()),
                    Ok(n) => Some(u32::try_from(n).map_err(|_| format!("--retries={v} is too large"))?),
                    Err(_) => return Err(format!("--retries={v:?} is not a number").into()),
                },
            };
            Ok(Command::Healthcheck(Healthcheck::Check(HealthCheck {
                test,
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            })))
        }
        other => Err(format!("unknown type {other:?} in HEALTHCHECK (try CMD)").into()),
    }
}
