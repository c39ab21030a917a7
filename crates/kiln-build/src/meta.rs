//! Instructions that only change the image config (no layer): ENV,
//! LABEL, EXPOSE, VOLUME, USER, CMD, ENTRYPOINT, SHELL, STOPSIGNAL,
//! HEALTHCHECK, ONBUILD, MAINTAINER, ARG. Each returns the history line
//! BuildKit (docker 20.10's, v0.8) writes for it, in its exact form (Go's
//! `%q`/`%v` of the values), or `None` when BuildKit writes none (ONBUILD).

use kiln_core::gofmt;
use kiln_dockerfile::config::{ConfigEdit, Frontend};
use kiln_dockerfile::scope::exposed_ports;
use kiln_dockerfile::{Command, StageScope};
use serde_json::Value;

use crate::state::StageState;

/// Applies a config-only instruction with the one config editor
/// (`kiln_dockerfile::config`, shared with `import --change`) and returns
/// its history line, read back from the edited config so the line shows
/// exactly what the config got.
pub(crate) fn apply(
    state: &mut StageState,
    scope: &StageScope<'_>,
    command: &Command,
) -> Option<String> {
    let env = scope.env();
    let mut edit = ConfigEdit {
        frontend: Frontend::BuildKit,
        cmd_set: state.cmd_set,
    };
    state.edit_config(|cfg| edit.apply(cfg, command, &env));
    state.cmd_set = edit.cmd_set;
    let set = |key: &str| crate::state::strings(&state.config["config"][key]);
    match command {
        Command::Env(pairs) | Command::Label(pairs) => {
            let text: Vec<String> = pairs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            Some(format!("{} {}", command.keyword(), text.join(" ")))
        }
        Command::Expose(ports) => {
            let mut all: Vec<String> = ports
                .iter()
                .flat_map(|p| exposed_ports(p))
                .map(|p| format!("{p}:{{}}"))
                .collect();
            // Go prints a map's keys sorted.
            all.sort();
            all.dedup();
            Some(format!("EXPOSE map[{}]", all.join(" ")))
        }
        Command::Volume(list) => Some(format!("VOLUME [{}]", list.join(" "))),
        Command::User(u) => Some(format!("USER {u}")),
        Command::StopSignal(s) => Some(format!("STOPSIGNAL {s}")),
        Command::Cmd(_) => Some(format!("CMD {}", gofmt::quote_list(&set("Cmd")))),
        Command::Entrypoint(_) => Some(format!(
            "ENTRYPOINT {}",
            gofmt::quote_list(&set("Entrypoint"))
        )),
        Command::Shell(v) => Some(format!("SHELL {}", gofmt::plain_list(v))),
        Command::Healthcheck(_) => Some(format!(
            "HEALTHCHECK {}",
            healthcheck_history(&state.config["config"]["Healthcheck"])
        )),
        Command::Onbuild(_) => None,
        Command::Maintainer(m) => Some(format!("MAINTAINER {m}")),
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
