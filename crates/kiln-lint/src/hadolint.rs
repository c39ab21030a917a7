//! hadolint's best-practice rules kiln carries, with hadolint's trigger
//! conditions (`src/Hadolint/Rule/DL*.hs`) so the same Dockerfile gives
//! the same DL codes on the same lines; each message ends with its code.
//!
//! hadolint reads RUN scripts with ShellCheck's parser; kiln reads them
//! with [`crate::shell`], which is enough for the literal command names
//! and arguments these rules look at.

use std::collections::BTreeSet;

use kiln_dockerfile::{Command, CommandLine, Healthcheck, Instruction, MountKind, Run};

use crate::engine::Ctx;
use crate::rules::*;
use crate::shell::{self, Script};

/// A FROM image split as hadolint does: (image, tag, digest).
pub(crate) fn split_image(base: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match base.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (base, None),
    };
    // A `:` after the last `/` starts the tag (a registry port comes
    // before a `/`).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (
            &rest[..last_slash + i],
            Some(&rest[last_slash + i + 1..]),
            digest,
        ),
        None => (rest, None, digest),
    }
}

/// The shell script of a RUN: its heredocs when it has them, else its
/// command (an exec form's words joined, as hadolint reads them).
pub(crate) fn run_script(run: &Run) -> Script {
    if !run.heredocs.is_empty() {
        let body: String = run.heredocs.iter().map(|h| h.body.as_str()).collect();
        return shell::parse(&body);
    }
    match &run.command {
        CommandLine::Shell(s) => shell::parse(s),
        CommandLine::Exec(words) => shell::parse(&words.join(" ")),
    }
}

/// RUN instructions and their ONBUILD RUN triggers (hadolint's `onbuild`
/// wrapper applies DL3009, DL3015 and DL3064 to triggers too).
fn as_run(command: &Command) -> Option<&Run> {
    match command {
        Command::Run(r) => Some(r),
        Command::Onbuild(o) => match o.trigger.as_ref() {
            Command::Run(r) => Some(r),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn check(ctx: &mut Ctx) {
    from_tags(ctx);
    last_user_root(ctx);
    apt_lists(ctx);
    pipefail(ctx);
    let df = ctx.df;
    for stage in &df.stages {
        for i in &stage.instructions {
            per_instruction(ctx, i);
        }
    }
}

fn msg(rule: &Rule) -> String {
    format!("{} ({})", rule.description, rule.name)
}

/// DL3006 and DL3007.
fn from_tags(ctx: &mut Ctx) {
    let df = ctx.df;
    let mut aliases: BTreeSet<String> = BTreeSet::new();
    for stage in &df.stages {
        let at = ctx.at(stage.span.line);
        let (image, tag, digest) = split_image(&stage.base);
        if image != "scratch"
            && digest.is_none()
            && tag.is_none()
            && !image.starts_with('$')
            && !aliases.contains(image)
        {
            ctx.warn(&DL3006, msg(&DL3006), at.clone());
        }
        if digest.is_none() && tag == Some("latest") {
            ctx.warn(&DL3007, msg(&DL3007), at);
        }
        // hadolint compares aliases as written.
        if let Some(l) = ctx.line_at(stage.span.line) {
            let words: Vec<&str> = l
                .args
                .split_whitespace()
                .skip_while(|w| w.starts_with("--"))
                .collect();
            if let [_, _, alias] = words.as_slice() {
                aliases.insert(alias.to_string());
            }
        }
    }
}

fn is_root(user: &str) -> bool {
    user.starts_with("root:") || user.starts_with("0:") || user == "root" || user == "0"
}

/// DL3002: in every stage, a last USER that is root.
fn last_user_root(ctx: &mut Ctx) {
    let df = ctx.df;
    for stage in &df.stages {
        let last = stage
            .instructions
            .iter()
            .filter_map(|i| match &i.command {
                Command::User(u) => Some((i, u)),
                _ => None,
            })
            .next_back();
        if let Some((i, u)) = last {
            if is_root(u) {
                let at = ctx.at(i.span.line);
                ctx.warn(&DL3002, msg(&DL3002), at);
            }
        }
    }
}

fn has_cache_mount(run: &Run, target: &str) -> bool {
    run.mounts.iter().any(|m| {
        matches!(m.kind, MountKind::Cache | MountKind::Tmpfs)
            && m.target.trim_end_matches('/') == target
    })
}

/// DL3009: `apt-get update` without removing the lists in the same RUN,
/// in the last stage or a stage another one is built FROM.
fn apt_lists(ctx: &mut Ctx) {
    let df = ctx.df;
    let last = df.stages.len().saturating_sub(1);
    let bases: BTreeSet<&str> = df.stages.iter().map(|s| s.base.as_str()).collect();
    for (n, stage) in df.stages.iter().enumerate() {
        let alias_used = ctx
            .line_at(stage.span.line)
            .and_then(|l| {
                let words: Vec<&str> = l
                    .args
                    .split_whitespace()
                    .skip_while(|w| w.starts_with("--"))
                    .collect();
                words.get(2).map(|a| bases.contains(a))
            })
            .unwrap_or(false);
        if n != last && !alias_used {
            continue;
        }
        for i in &stage.instructions {
            let Some(run) = as_run(&i.command) else {
                continue;
            };
            let script = run_script(run);
            let update = script.commands.iter().any(|c| {
                ["apt", "apt-get", "aptitude"].contains(&c.name())
                    && c.args().iter().any(|a| a == "update")
            });
            let cleanup = script
                .commands
                .iter()
                .any(|c| c.has_any_arg("rm", &["-rf", "/var/lib/apt/lists/*"]));
            if !update || cleanup {
                continue;
            }
            if has_cache_mount(run, "/var/lib/apt/lists")
                || (has_cache_mount(run, "/var/lib/apt") && has_cache_mount(run, "/var/cache/apt"))
            {
                continue;
            }
            let at = ctx.at(i.span.line);
            ctx.warn(&DL3009, msg(&DL3009), at);
        }
    }
}

/// DL4006: a RUN with a pipe while the stage's SHELL has no `-o pipefail`.
fn pipefail(ctx: &mut Ctx) {
    let df = ctx.df;
    for stage in &df.stages {
        let mut ok = false;
        for i in &stage.instructions {
            match &i.command {
                Command::Shell(words) => {
                    let joined = words.join(" ");
                    ok = if ["pwsh", "powershell", "cmd"]
                        .iter()
                        .any(|s| joined.starts_with(s))
                    {
                        true
                    } else {
                        shell::parse(&joined).commands.iter().any(|c| {
                            ["bash", "zsh", "ash"].contains(&c.base_name())
                                && c.has_flag("o")
                                && c.args().iter().any(|a| a == "pipefail")
                        })
                    };
                }
                Command::Run(run) if !ok && run_script(run).has_pipe => {
                    let at = ctx.at(i.span.line);
                    ctx.warn(&DL4006, msg(&DL4006), at);
                }
                _ => {}
            }
        }
    }
}

const ARCHIVES: &[&str] = &[
    ".tar", ".Z", ".bz2", ".gz", ".lz", ".lzma", ".tZ", ".tb2", ".tbz", ".tbz2", ".tgz", ".tlz",
    ".tpz", ".txz", ".xz",
];

const KNOWN_SENSITIVE: &[&str] = &[
    "ACCESS_TOKEN",
    "APPLICATION_KEY",
    "APP_SECRET",
    "AUTH_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "BITTREX_API_KEY",
    "BITTREX_API_SECRET",
    "CF_PASSWORD",
    "CF_USERNAME",
    "CIRCLE_TOKEN",
    "CI_DEPLOY_PASSWORD",
    "CI_DEPLOY_USER",
    "DOCKERHUB_PASSWORD",
    "DOCKER_EMAIL",
    "DOCKER_PASSWORD",
    "DOCKER_USERNAME",
    "FACEBOOK_ACCESS_TOKEN",
    "FACEBOOK_APP_ID",
    "FACEBOOK_APP_SECRET",
    "FIREBASE_API_TOKEN",
    "FIREBASE_TOKEN",
    "FOSSA_API_KEY",
    "GH_ENTERPRISE_TOKEN",
    "GH_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "GITHUB_TOKEN",
    "HEROKU_API_KEY",
    "HEROKU_API_USER",
    "NPM_AUTH_TOKEN",
    "NPM_TOKEN",
    "OKTA_AUTHN_GROUPID",
    "OKTA_CLIENT_ORGURL",
    "OKTA_CLIENT_TOKEN",
    "OKTA_OAUTH2_CLIENTID",
    "OKTA_OAUTH2_CLIENTSECRET",
    "OPENAI_API_KEY",
    "OS_PASSWORD",
    "OS_USERNAME",
    "POSTGRES_PASSWORD",
    "SLACK_TOKEN",
    "STRIPE_API_KEY",
    "STRIPE_DEVICE_NAME",
    "TRAVIS_OS_NAME",
    "TRAVIS_SECURE_ENV_VARS",
    "TRAVIS_SUDO",
    "VAULT_CLIENT_KEY",
    "VAULT_TOKEN",
];

const SUSPICIOUS: &[&str] = &[
    "api_key",
    "client_key",
    "password",
    "private",
    "secret",
    "token",
    "username",
];

fn sensitive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    KNOWN_SENSITIVE.contains(&name.to_ascii_uppercase().as_str())
        || SUSPICIOUS.iter().any(|s| lower.contains(s))
}

/// DL3015, DL3020, DL3025, DL3064: one instruction at a time.
fn per_instruction(ctx: &mut Ctx, i: &Instruction) {
    let at = ctx.at(i.span.line);
    let fail = |ctx: &mut Ctx, rule: &'static Rule| ctx.warn(rule, msg(rule), at.clone());
    if let Some(run) = as_run(&i.command) {
        let forgot = run_script(run).commands.iter().any(|c| {
            c.name() == "apt-get"
                && c.args().iter().any(|a| a == "install")
                && !c.has_flag("no-install-recommends")
                && !c
                    .args()
                    .iter()
                    .any(|a| a == "APT::Install-Recommends=false")
        });
        if forgot {
            fail(ctx, &DL3015);
        }
    }
    let sensitive_names = match &i.command {
        Command::Arg(decls) => decls.iter().any(|d| sensitive(&d.name)),
        Command::Env(pairs) => pairs.iter().any(|kv| sensitive(&kv.key)),
        Command::Onbuild(o) => match o.trigger.as_ref() {
            Command::Arg(decls) => decls.iter().any(|d| sensitive(&d.name)),
            Command::Env(pairs) => pairs.iter().any(|kv| sensitive(&kv.key)),
            _ => false,
        },
        _ => false,
    };
    if sensitive_names {
        fail(ctx, &DL3064);
    }
    match &i.command {
        Command::Add(a) => {
            let unquote = |s: &str| s.trim_matches(|c| c == '"' || c == '\'').to_string();
            let fits_copy = !a.files.sources.iter().all(|s| {
                let s = unquote(s);
                ARCHIVES.iter().any(|ext| s.ends_with(ext))
                    || s.starts_with("https://")
                    || s.starts_with("http://")
            });
            if fits_copy {
                fail(ctx, &DL3020);
            }
        }
        Command::Cmd(CommandLine::Shell(_))
        | Command::Entrypoint(CommandLine::Shell(_))
        | Command::Healthcheck(Healthcheck::Check(kiln_dockerfile::HealthCheck {
            test: CommandLine::Shell(_),
            ..
        })) => fail(ctx, &DL3025),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_like_hadolint() {
        assert_eq!(split_image("debian"), ("debian", None, None));
        assert_eq!(split_image("debian:12"), ("debian", Some("12"), None));
        assert_eq!(
            split_image("localhost:5000/app"),
            ("localhost:5000/app", None, None)
        );
        assert_eq!(
            split_image("localhost:5000/app:latest@sha256:ab"),
            ("localhost:5000/app", Some("latest"), Some("sha256:ab"))
        );
    }
}
