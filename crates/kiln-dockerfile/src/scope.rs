//! Build arguments and variable scopes, with docker's rules:
//!
//! - `ARG`s before the first `FROM` (global) are visible in `FROM` lines
//!   only; inside a stage, an `ARG NAME` without a default takes the
//!   global value;
//! - `--build-arg` overrides a declared `ARG`'s default; a build arg no
//!   `ARG` declares is unused (docker warns), except the proxy variables,
//!   which reach `RUN` without a declaration;
//! - `ENV` overrides `ARG`, whichever came first; the base image's `Env`
//!   is the stage's starting environment;
//! - `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`,
//!   `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` are
//!   predefined in the global scope (so in a stage after `ARG NAME`);
//! - expansion applies to ADD, COPY, ENV, EXPOSE, FROM, LABEL,
//!   STOPSIGNAL, USER, VOLUME, WORKDIR (and RUN's `--mount` paths and
//!   ids, ARG defaults); RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are
//!   left to the shell; ONBUILD is expanded in the child build.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::expand::{expand_word, expand_words, Env};
use crate::lines::Span;
use crate::model::*;

/// Proxy variables: usable as build args without an `ARG`, passed to RUN,
/// kept out of the history.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The platform of the predefined platform ARGs: kiln's one platform type.
pub use kiln_core::Platform;

/// What the caller of a build supplies.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `--build-arg NAME=VALUE`.
    pub build_args: BTreeMap<String, String>,
    pub build_platform: Platform,
    pub target_platform: Platform,
}

/// The scope of `FROM` lines: global ARGs and the predefined ones.
/// (`GlobalScope::default()` is empty: for instructions applied outside
/// a build, like `import --change`.)
#[derive(Debug, Clone, Default)]
pub struct GlobalScope {
    vars: Vec<(String, String)>,
}

impl Env for GlobalScope {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A stage's `FROM` after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFrom {
    pub base: String,
    pub platform: Option<String>,
}

fn expand_err(span: Span, what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(span, format!("cannot expand {what}: {e}"))
}

impl Dockerfile {
    /// The global scope for a build with these options.
    pub fn global_scope(&self, opts: &BuildOptions) -> Result<GlobalScope, Error> {
        let (b, t) = (&opts.build_platform, &opts.target_platform);
        let mut scope = GlobalScope {
            vars: vec![
                ("BUILDPLATFORM".into(), b.to_string()),
                ("BUILDOS".into(), b.os.clone()),
                ("BUILDARCH".into(), b.architecture.clone()),
                ("BUILDVARIANT".into(), b.variant.clone().unwrap_or_default()),
                ("TARGETPLATFORM".into(), t.to_string()),
                ("TARGETOS".into(), t.os.clone()),
                ("TARGETARCH".into(), t.architecture.clone()),
                (
                    "TARGETVARIANT".into(),
                    t.variant.clone().unwrap_or_default(),
                ),
            ],
        };
        for arg in &self.global_args {
            let value = match (opts.build_args.get(&arg.name), &arg.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => {
                    Some(expand_word(d, &scope, self.directives.escape).map_err(|e| {
                        expand_err(self.stages[0].span, &format!("ARG {}", arg.name), e)
                    })?)
                }
                (None, None) => None,
            };
            if let Some(v) = value {
                scope.vars.push((arg.name.clone(), v));
            }
        }
        Ok(scope)
    }

    /// A stage's base and platform with the global ARGs expanded.
    pub fn resolve_from(&self, stage: &Stage, global: &GlobalScope) -> Result<ResolvedFrom, Error> {
        let escape = self.directives.escape;
        let base = expand_word(&stage.base, global, escape)
            .map_err(|e| expand_err(stage.span, "the FROM image", e))?;
        if base.is_empty() {
            return Err(Error::new(
                stage.span,
                format!("base name ({}) should not be blank", stage.base),
            )
            .with_hint("set the ARG it uses before the first FROM, or pass --build-arg"));
        }
        let platform = stage
            .platform
            .as_deref()
            .map(|p| expand_word(p, global, escape))
            .transpose()
            .map_err(|e| expand_err(stage.span, "--platform", e))?;
        Ok(ResolvedFrom { base, platform })
    }

    /// The stage a name or index (`--from`, `FROM`) refers to, if any
    /// before `before`.
    pub fn stage_named(&self, name: &str, before: usize) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages[..before.min(self.stages.len())]
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|i| *i < before)
                    .and_then(|i| self.stages.get(i))
            })
    }

    /// Build args no `ARG` declares (docker warns about them).
    pub fn unused_build_args(&self, opts: &BuildOptions) -> Vec<String> {
        let mut declared: BTreeSet<&str> =
            self.global_args.iter().map(|a| a.name.as_str()).collect();
        for stage in &self.stages {
            for i in &stage.instructions {
                if let Command::Arg(args) = &i.command {
                    declared.extend(args.iter().map(|a| a.name.as_str()));
                }
            }
        }
        opts.build_args
            .keys()
            .filter(|k| {
                !declared.contains(k.as_str())
                    && !PROXY_ARGS.contains(&k.as_str())
                    && k.as_str() != "SOURCE_DATE_EPOCH"
            })
            .cloned()
            .collect()
    }
}

/// The variables of one stage while its instructions are walked in order.
#[derive(Debug, Clone)]
pub struct StageScope<'a> {
    global: &'a GlobalScope,
    build_args: &'a BTreeMap<String, String>,
    escape: char,
    /// The image's Env plus ENV instructions, in order, keys unique.
    env: Vec<(String, String)>,
    /// ARGs declared in the stage; `None`: declared without a value.
    args: Vec<(String, Option<String>)>,
}

impl Env for StageScope<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

impl<'a> StageScope<'a> {
    /// `image_env` is the base's `Env` (`KEY=VALUE` strings).
    pub fn new(
        global: &'a GlobalScope,
        build_args: &'a BTreeMap<String, String>,
        escape: char,
        image_env: &[String],
    ) -> StageScope<'a> {
        let mut scope = StageScope {
            global,
            build_args,
            escape,
            env: Vec::new(),
            args: Vec::new(),
        };
        for kv in image_env {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            scope.set_env(k, v);
        }
        scope
    }

    fn set_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }

    /// The environment as `KEY=VALUE` (the image config's Env).
    pub fn env(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The ARGs with values, which RUN sees as environment variables
    /// (ENV wins over them), plus proxy build args.
    pub fn args(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.args {
            if let Some(v) = v {
                out.retain(|(key, _)| key != k);
                out.push((k.clone(), v.clone()));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.build_args.get(*p) {
                if !out.iter().any(|(k, _)| k == p) {
                    out.push((p.to_string(), v.clone()));
                }
            }
        }
        out
    }

    /// The `NAME=VALUE` list BuildKit writes in a RUN's history line
    /// (`RUN |2 A= B=two …`): every ARG the stage declared, in order, an
    /// unset one as `NAME=`, the value an ENV of the same name gave it
    /// winning. Proxy variables not declared as ARGs are left out.
    pub fn run_history_args(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|(k, v)| {
                let value = self
                    .env
                    .iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, v)| v.as_str())
                    .or(v.as_deref())
                    .unwrap_or("");
                format!("{k}={value}")
            })
            .collect()
    }

    fn word(&self, span: Span, what: &str, w: &str) -> Result<String, Error> {
        expand_word(w, self, self.escape).map_err(|e| expand_err(span, what, e))
    }

    fn opt(&self, span: Span, what: &str, w: &Option<String>) -> Result<Option<String>, Error> {
        w.as_deref().map(|w| self.word(span, what, w)).transpose()
    }

    /// The instruction with its variables expanded; ENV and ARG also
    /// update the scope for the instructions after it.
    pub fn expand(&mut self, instruction: &Instruction) -> Result<Instruction, Error> {
        let span = instruction.span;
        let command = match &instruction.command {
            Command::Env(pairs) => {
                // Every pair sees the scope from before the instruction.
                let mut out = Vec::new();
                for kv in pairs {
                    out.push(KeyValue {
                        key: self.word(span, "the ENV name", &kv.key)?,
                        value: self.word(span, &format!("ENV {}", kv.key), &kv.value)?,
                    });
                }
                for kv in &out {
                    self.set_env(&kv.key, &kv.value);
                }
                Command::Env(out)
            }
            Command::Label(pairs) => {
                let mut out = Vec::new();
                for kv in pairs {
                    out.push(KeyValue {
                        key: self.word(span, "the LABEL name", &kv.key)?,
                        value: self.word(span, &format!("LABEL {}", kv.key), &kv.value)?,
                    });
                }
                Command::Label(out)
            }
            Command::Arg(decls) => {
                let mut out = Vec::new();
                for d in decls {
                    let default = self.opt(span, &format!("ARG {}", d.name), &d.default)?;
                    let value = self
                        .build_args
                        .get(&d.name)
                        .cloned()
                        .or_else(|| default.clone())
                        .or_else(|| self.global.get(&d.name).map(str::to_string));
                    self.args.push((d.name.clone(), value));
                    out.push(ArgDecl {
                        name: d.name.clone(),
                        default,
                    });
                }
                Command::Arg(out)
            }
            Command::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    for w in expand_words(p, self, self.escape)
                        .map_err(|e| expand_err(span, "EXPOSE", e))?
                    {
                        out.push(normalize_port(&w).map_err(|m| Error::new(span, m))?);
                    }
                }
                Command::Expose(out)
            }
            Command::Volume(list) => {
                let out: Vec<String> = list
                    .iter()
                    .map(|v| self.word(span, "VOLUME", v))
                    .collect::<Result<_, _>>()?;
                // Docker's message, from both of its front ends.
                if out.iter().any(|v| v.trim().is_empty()) {
                    return Err(Error::new(
                        span,
                        "VOLUME specified can not be an empty string".to_string(),
                    ));
                }
                Command::Volume(out)
            }
            Command::User(u) => Command::User(self.word(span, "USER", u)?),
            Command::Workdir(w) => Command::Workdir(self.word(span, "WORKDIR", w)?),
            Command::StopSignal(s) => Command::StopSignal(self.word(span, "STOPSIGNAL", s)?),
            Command::Copy(c) => Command::Copy(Copy {
                files: self.files(span, "COPY", &c.files)?,
                from: self.opt(span, "COPY --from", &c.from)?,
                parents: c.parents,
            }),
            Command::Add(a) => Command::Add(Add {
                files: self.files(span, "ADD", &a.files)?,
                keep_git_dir: a.keep_git_dir,
                checksum: self.opt(span, "ADD --checksum", &a.checksum)?,
            }),
            Command::Run(r) => {
                let mut r = r.clone();
                for m in &mut r.mounts {
                    m.target = self.word(span, "--mount target", &m.target)?;
                    m.source = self.opt(span, "--mount source", &m.source)?;
                    m.from = self.opt(span, "--mount from", &m.from)?;
                    m.id = self.opt(span, "--mount id", &m.id)?;
                    m.env = self.opt(span, "--mount env", &m.env)?;
                }
                Command::Run(r)
            }
            other => other.clone(),
        };
        Ok(Instruction {
            command,
            ..instruction.clone()
        })
    }

    fn files(&self, span: Span, what: &str, f: &Files) -> Result<Files, Error> {
        let mut inline = Vec::new();
        for file in &f.inline {
            let data = if file.expand {
                crate::expand::expand_heredoc(&file.data, self, self.escape).map_err(|e| {
                    expand_err(span, &format!("the {what} heredoc {}", file.name), e)
                })?
            } else {
                file.data.clone()
            };
            inline.push(InlineFile {
                name: file.name.clone(),
                data,
                expand: file.expand,
            });
        }
        Ok(Files {
            sources: f
                .sources
                .iter()
                .map(|s| self.word(span, &format!("{what} source"), s))
                .collect::<Result<_, _>>()?,
            inline,
            dest: self.word(span, &format!("{what} destination"), &f.dest)?,
            chown: self.opt(span, &format!("{what} --chown"), &f.chown)?,
            chmod: self.opt(span, &format!("{what} --chmod"), &f.chmod)?,
            link: f.link,
            exclude: f
                .exclude
                .iter()
                .map(|s| self.word(span, &format!("{what} --exclude"), s))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// `80`, `80/TCP`, `8000-8010/udp` → `80/tcp`, `8000-8010/udp`. Like
/// docker (`nat.ParsePortSpecs`), a publish-style spec
/// `[IP:][HOST_PORT:]PORT[/PROTO]` is accepted and only PORT is kept.
pub fn normalize_port(p: &str) -> Result<String, String> {
    let (spec, proto) = p.rsplit_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid proto {proto:?} in EXPOSE {p}: use tcp, udp or sctp"
        ));
    }
    let port = spec.rsplit_once(':').map_or(spec, |(_, port)| port);
    let num = |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0);
    let ok = match port.split_once('-') {
        Some((a, b)) => matches!((num(a), num(b)), (Some(a), Some(b)) if a <= b),
        None => num(port).is_some(),
    };
    if !ok {
        return Err(format!(
            "invalid port {port:?} in EXPOSE {p}: use PORT[/PROTO] or START-END[/PROTO], ports 1-65535"
        ));
    }
    Ok(format!("{port}/{proto}"))
}

/// The single ports a normalized EXPOSE entry stands for, as the image
/// config lists them: `8000-8002/tcp` → `8000/tcp`, `8001/tcp`, `8002/tcp`.
pub fn exposed_ports(normalized: &str) -> Vec<String> {
    let (port, proto) = normalized.split_once('/').unwrap_or((normalized, "tcp"));
    match port.split_once('-') {
        Some((a, b)) => match (a.parse::<u16>(), b.parse::<u16>()) {
            (Ok(a), Ok(b)) => (a..=b).map(|p| format!("{p}/{proto}")).collect(),
            _ => vec![normalized.to_string()],
        },
        None => vec![normalized.to_string()],
    }
}

/// A stage with every instruction expanded (see [`Dockerfile::expand_all`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpandedStage {
    pub index: usize,
    pub name: Option<String>,
    pub base: String,
    pub platform: Option<String>,
    pub instructions: Vec<Instruction>,
    /// The environment at the end of the stage.
    pub env: Vec<String>,
    /// The ARG values at the end of the stage.
    pub args: Vec<(String, String)>,
}

impl Dockerfile {
    /// Every stage expanded in order, starting from an empty image
    /// environment: what `kiln dockerfile parse --expand` shows. (A build
    /// starts each stage from its base image's Env instead.)
    pub fn expand_all(&self, opts: &BuildOptions) -> Result<Vec<ExpandedStage>, Error> {
        let global = self.global_scope(opts)?;
        let mut out = Vec::new();
        for stage in &self.stages {
            let from = self.resolve_from(stage, &global)?;
            let mut scope = StageScope::new(&global, &opts.build_args, self.directives.escape, &[]);
            let instructions = stage
                .instructions
                .iter()
                .map(|i| scope.expand(i))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(ExpandedStage {
                index: stage.index,
                name: stage.name.clone(),
                base: from.base,
                platform: from.platform,
                instructions,
                env: scope.env(),
                args: scope.args(),
            });
        }
        Ok(out)
    }
}
