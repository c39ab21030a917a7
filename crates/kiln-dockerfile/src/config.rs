//! The one config editor: what each config-only instruction does to an
//! image config ([`ImageConfig`], the model of `kiln_core::image`). `kiln
//! build` and `kiln import --change` both call [`ConfigEdit::apply`], so
//! they cannot disagree again.
//!
//! Why here: the editor needs the typed instructions (this crate) and the
//! typed config (`kiln-core`); `kiln-core` is the vocabulary the store and
//! the registry code share and must not depend on the Dockerfile parser,
//! while this crate stays I/O-free with or without it.
//!
//! Docker's behaviour, which both of docker 20.10's front ends (BuildKit
//! for builds, the classic dispatchers for `import --change`) share and
//! kiln follows:
//!
//! - ENTRYPOINT drops the CMD the config had, unless a CMD was set earlier
//!   in the same stage or change list ([`ConfigEdit::cmd_set`]).
//! - WORKDIR: a relative path is joined to the current one and cleaned
//!   (`path.Join("/", current, requested)`); an absolute one is kept as
//!   written (`/srv/../x/` stays so in the config).
//! - Shell-form CMD/ENTRYPOINT run in the config's SHELL (`/bin/sh -c`).
//! - LABEL, EXPOSE and VOLUME add to their maps (a value of another type
//!   in the base config is replaced); ONBUILD appends its text.
//!
//! The difference between the front ends is [`Frontend`]: BuildKit marks
//! every CMD `ArgsEscaped` (v0.8), the classic path does not.

use std::collections::BTreeMap;

use kiln_core::image::{ContainerConfig, HealthConfig, HealthConfigFields, ImageConfig, Lenient};
use serde_json::Value;

use crate::scope::exposed_ports;
use crate::{Command, CommandLine, Healthcheck};

/// Which docker front end's small differences to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// `kiln build`: docker 20.10's BuildKit (v0.8).
    BuildKit,
    /// `import --change` (and `commit --change`): docker's classic
    /// dispatchers.
    Classic,
}

/// The editor's state over one stage or one change list.
#[derive(Debug, Clone)]
pub struct ConfigEdit {
    pub frontend: Frontend,
    /// A CMD was set in this stage or change list: ENTRYPOINT keeps it.
    pub cmd_set: bool,
}

impl ConfigEdit {
    pub fn new(frontend: Frontend) -> ConfigEdit {
        ConfigEdit {
            frontend,
            cmd_set: false,
        }
    }

    /// Applies one *expanded* instruction to `config`. `env` is the
    /// environment after it (the [`crate::StageScope`] that expanded it
    /// keeps ENV's docker semantics). Instructions that do not edit the
    /// config (RUN, COPY, ADD, ARG) leave it as it is.
    pub fn apply(&mut self, config: &mut ImageConfig, command: &Command, env: &[String]) {
        if let Command::Maintainer(m) = command {
            config.author = Some(m.clone());
            return;
        }
        let cfg = config.container_mut();
        match command {
            Command::Env(_) => cfg.env = Some(env.to_vec()),
            Command::Label(pairs) => {
                // A null or mistyped base value is replaced by the map.
                cfg.forget("Labels");
                let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
                for kv in pairs {
                    labels.insert(kv.key.clone(), kv.value.clone());
                }
            }
            Command::Expose(ports) => {
                cfg.forget("ExposedPorts");
                let exposed = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in ports.iter().flat_map(|p| exposed_ports(p)) {
                    exposed.insert(p, Value::Object(Default::default()));
                }
            }
            Command::Volume(list) => {
                cfg.forget("Volumes");
                let volumes = cfg.volumes.get_or_insert_with(BTreeMap::new);
                for v in list {
                    volumes.insert(v.clone(), Value::Object(Default::default()));
                }
            }
            Command::User(u) => cfg.user = Some(u.clone()),
            Command::StopSignal(s) => cfg.stop_signal = Some(s.clone()),
            Command::Workdir(w) => {
                let dir = workdir(cfg.working_dir.as_deref().unwrap_or(""), w);
                cfg.working_dir = Some(dir);
            }
            Command::Cmd(line) => {
                cfg.cmd = Some(command_line(cfg, line));
                if self.frontend == Frontend::BuildKit {
                    cfg.args_escaped = Some(true);
                }
                self.cmd_set = true;
            }
            Command::Entrypoint(line) => {
                cfg.entrypoint = Some(command_line(cfg, line));
                if !self.cmd_set {
                    cfg.cmd = None;
                    cfg.forget("Cmd");
                }
            }
            Command::Shell(v) => cfg.shell = Some(v.clone()),
            Command::Healthcheck(h) => cfg.healthcheck = Some(health_config(h)),
            Command::Onbuild(o) => {
                cfg.forget("OnBuild");
                cfg.on_build
                    .get_or_insert_with(Vec::new)
                    .push(o.expression.clone());
            }
            Command::Maintainer(_)
            | Command::Arg(_)
            | Command::Run(_)
            | Command::Copy(_)
            | Command::Add(_) => {}
        }
    }
}

/// A command line as the config stores it: exec form as is, shell form
/// wrapped in the config's SHELL.
pub fn command_line(cfg: &ContainerConfig, line: &CommandLine) -> Vec<String> {
    match line {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut v = cfg.shell();
            v.push(s.clone());
            v
        }
    }
}

/// Docker's WORKDIR rule: relative paths are joined to the current one and
/// cleaned; absolute ones are kept as written.
pub fn workdir(current: &str, requested: &str) -> String {
    if requested.starts_with('/') {
        return requested.to_string();
    }
    clean_abs(&format!("{current}/{requested}"))
}

/// A path inside the image, absolute and lexically cleaned (Go's
/// `path.Clean("/" + p)`): `.` and `..` resolved, no trailing slash
/// (except `/`). The one cleaner of image paths (the build's COPY, ADD
/// and RUN --mount use it too).
pub fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// HEALTHCHECK as the config stores it: `["NONE"]`, `["CMD", …]` or
/// `["CMD-SHELL", "…"]`, and only the durations and retries given.
fn health_config(h: &Healthcheck) -> HealthConfig {
    let mut out = HealthConfigFields::default();
    match h {
        Healthcheck::None => out.test = Some(vec!["NONE".to_string()]),
        Healthcheck::Check(c) => {
            out.test = Some(match &c.test {
                CommandLine::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    t
                }
                CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            });
            let ns = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            out.interval = ns(c.interval);
            out.timeout = ns(c.timeout);
            out.start_period = ns(c.start_period);
            out.start_interval = ns(c.start_interval);
            out.retries = c.retries.map(i64::from);
        }
    }
    Lenient::new(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn apply_all(frontend: Frontend, base: &str, lines: &[&str]) -> serde_json::Value {
        let mut cfg = ImageConfig::from_slice(base.as_bytes()).unwrap();
        let mut edit = ConfigEdit::new(frontend);
        for line in lines {
            let i = crate::parse_line(line, '\\').unwrap();
            edit.apply(&mut cfg, &i.command, &[]);
        }
        cfg.to_value()
    }

    #[test]
    fn frontends_differ_only_in_args_escaped() {
        let base = r#"{"config":{"Cmd":["base"],"Labels":null,"Hostname":""}}"#;
        let lines = [r#"ENTRYPOINT ["e"]"#, "CMD x", "LABEL a=b", "MAINTAINER me"];
        let bk = apply_all(Frontend::BuildKit, base, &lines);
        let classic = apply_all(Frontend::Classic, base, &lines);
        assert_eq!(bk["config"]["ArgsEscaped"], true);
        assert!(classic["config"].get("ArgsEscaped").is_none());
        assert_eq!(
            classic["config"]["Cmd"],
            serde_json::json!(["/bin/sh", "-c", "x"])
        );
        // Fields the editor does not touch survive, null replaced by a map.
        assert_eq!(classic["config"]["Hostname"], "");
        assert_eq!(classic["config"]["Labels"]["a"], "b");
        assert_eq!(classic["author"], "me");
        // ENTRYPOINT before any CMD dropped the base CMD.
        let only = apply_all(Frontend::BuildKit, base, &[r#"ENTRYPOINT ["e"]"#]);
        assert!(only["config"].get("Cmd").is_none());
    }

    #[test]
    fn workdir_follows_docker() {
        assert_eq!(workdir("", "rel/./dir/"), "/rel/dir");
        assert_eq!(workdir("/srv", "../x/"), "/x");
        assert_eq!(workdir("/", ".."), "/");
        // Absolute paths are kept as written, by both docker front ends.
        assert_eq!(workdir("/a", "/srv/../x/"), "/srv/../x/");
        assert_eq!(workdir("/srv/../x/", "y/../z/"), "/x/z");
    }
}
