//! Instructions that only change the image config (no layer): ENV,
//! LABEL, EXPOSE, VOLUME, USER, CMD, ENTRYPOINT, SHELL, STOPSIGNAL,
//! HEALTHCHECK, ONBUILD, MAINTAINER, ARG. Each returns the history line
//! BuildKit (docker 20.10's, v0.8) writes for it, in its exact form (Go's
//! `%q`/`%v` of the values), or `None` when BuildKit writes none (ONBUILD).

use kiln_core::gofmt;
use kiln_dockerfile::scope::exposed_ports;
use kiln_dockerfile::{Command, CommandLine, Healthcheck, StageScope};
use serde_json::{json, Map, Value};

use crate::state::StageState;

fn object<'a>(cfg: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = cfg.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    match v.as_object_mut() {
        Some(m) => m,
        None => unreachable!("just made an object"),
    }
}

/// A command line as the config stores it: exec form as is, shell form
/// wrapped in the stage's SHELL.
pub(crate) fn config_command(state: &StageState, line: &CommandLine) -> Vec<String> {
    match line {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut v = state.shell();
            v.push(s.clone());
            v
        }
    }
}

pub(crate) fn apply(
    state: &mut StageState,
    scope: &StageScope<'_>,
    command: &Command,
) -> Option<String> {
    match command {
        Command::Env(pairs) => {
            let env = scope.env();
            state.cfg().insert("Env".into(), json!(env));
            let text: Vec<String> = pairs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            Some(format!("ENV {}", text.join(" ")))
        }
        Command::Label(pairs) => {
            let labels = object(state.cfg(), "Labels");
            for kv in pairs {
                labels.insert(kv.key.clone(), json!(kv.value));
            }
            let text: Vec<String> = pairs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            Some(format!("LABEL {}", text.join(" ")))
        }
        Command::Expose(ports) => {
            let exposed = object(state.cfg(), "ExposedPorts");
            let mut all = Vec::new();
            for p in ports.iter().flat_map(|p| exposed_ports(p)) {
                exposed.insert(p.clone(), json!({}));
                all.push(format!("{p}:{{}}"));
            }
            // Go prints a map's keys sorted.
            all.sort();
            all.dedup();
            Some(format!("EXPOSE map[{}]", all.join(" ")))
        }
        Command::Volume(list) => {
            let volumes = object(state.cfg(), "Volumes");
            for v in list {
                volumes.insert(v.clone(), json!({}));
            }
            Some(format!("VOLUME [{}]", list.join(" ")))
        }
        Command::User(u) => {
            state.cfg().insert("User".into(), json!(u));
            Some(format!("USER {u}"))
        }
        Command::StopSignal(s) => {
            state.cfg().insert("StopSignal".into(), json!(s));
            Some(format!("STOPSIGNAL {s}"))
        }
        Command::Cmd(line) => {
            let v = config_command(state, line);
            state.cfg().insert("Cmd".into(), json!(v));
            // BuildKit v0.8 marks every CMD so.
            state.cfg().insert("ArgsEscaped".into(), json!(true));
            state.cmd_set = true;
            Some(format!("CMD {}", gofmt::quote_list(&v)))
        }
        Command::Entrypoint(line) => {
            let v = config_command(state, line);
            state.cfg().insert("Entrypoint".into(), json!(v));
            // Setting ENTRYPOINT drops a CMD inherited from the base.
            if !state.cmd_set {
                state.cfg().remove("Cmd");
            }
            Some(format!("ENTRYPOINT {}", gofmt::quote_list(&v)))
        }
        Command::Shell(v) => {
            state.cfg().insert("Shell".into(), json!(v));
            Some(format!("SHELL {}", gofmt::plain_list(v)))
        }
        Command::Healthcheck(h) => {
            let value = match h {
                Healthcheck::None => json!({"Test": ["NONE"]}),
                Healthcheck::Check(c) => {
                    let test = match &c.test {
                        CommandLine::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v.iter().cloned());
                            t
                        }
                        CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    };
                    let mut m = json!({"Test": test});
                    for (k, v) in [
                        ("Interval", c.interval),
                        ("Timeout", c.timeout),
                        ("StartPeriod", c.start_period),
                        ("StartInterval", c.start_interval),
                    ] {
                        if let Some(ns) = v {
                            m[k] = json!(ns);
                        }
                    }
                    if let Some(r) = c.retries {
                        m["Retries"] = json!(r);
                    }
                    m
                }
            };
            let text = healthcheck_history(&value);
            state.cfg().insert("Healthcheck".into(), value);
            Some(format!("HEALTHCHECK {text}"))
        }
        Command::Onbuild(o) => {
            let cfg = state.cfg();
            let list = cfg.entry("OnBuild").or_insert_with(|| json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            if let Some(a) = list.as_array_mut() {
                a.push(json!(o.expression));
            }
            None
        }
        Command::Maintainer(m) => {
            state.config["author"] = json!(m);
            Some(format!("MAINTAINER {m}"))
        }
        Command::Arg(decls) => {
            let words: Vec<String> = decls
                .iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={v}", d.name),
                    None => d.name.clone(),
                })
                .collect();
            Some(format!("ARG {}", words.join(" ")))
        }
        Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::Workdir(_) => None,
    }
}

/// `%q` of BuildKit's `*HealthConfig` (Test, Interval, Timeout,
/// StartPeriod, Retries): `&{["CMD-SHELL" "x"] "5s" "0s" "0s" '\x02'}`.
fn healthcheck_history(value: &Value) -> String {
    let test: Vec<String> = crate::state::strings(&value["Test"]);
    let ns = |k: &str| value[k].as_i64().unwrap_or(0);
    format!(
        "&{{{} {} {} {} {}}}",
        gofmt::quote_list(&test),
        gofmt::quote(&gofmt::duration(ns("Interval"))),
        gofmt::quote(&gofmt::duration(ns("Timeout"))),
        gofmt::quote(&gofmt::duration(ns("StartPeriod"))),
        gofmt::quote_rune(value["Retries"].as_i64().unwrap_or(0)),
    )
}
