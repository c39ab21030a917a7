//! `--change` for import (and later commit): the Dockerfile instructions
//! that only edit the image config, parsed by the Dockerfile frontend and
//! expanded against the config's own `Env`, as docker does.

use std::collections::BTreeMap;

use kiln_dockerfile::{
    parse_line, scope::exposed_ports, Command, CommandLine, GlobalScope, StageScope,
};
use serde_json::{Map, Value};

use crate::error::{ArchiveError, Result};

const SUPPORTED: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR";

/// Applies one instruction (`CMD ["sh"]`, `ENV A=1 B=2`, …) to the `config`
/// object of an image config.
pub fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let bad = |reason: String| ArchiveError::BadChange {
        change: change.to_string(),
        reason,
    };
    // The frontend's messages start with "Dockerfile:1:1: "; a --change
    // has no file, so keep only the message and hint.
    let frontend = |e: kiln_dockerfile::Error| {
        let mut reason = e.message;
        if let Some(h) = e.hint {
            reason = format!("{reason} ({h})");
        }
        bad(reason)
    };
    let instruction = parse_line(change.trim(), '\\').map_err(frontend)?;
    let keyword = instruction.command.keyword();
    if !SUPPORTED.split(", ").any(|k| k == keyword) {
        return Err(bad(format!(
            "{keyword} cannot be applied to an image config; supported: {SUPPORTED}"
        )));
    }
    let env: Vec<String> = match config.get("Env") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let global = GlobalScope::default();
    let no_build_args = BTreeMap::new();
    let mut scope = StageScope::new(&global, &no_build_args, '\\', &env);
    let expanded = scope.expand(&instruction).map_err(frontend)?;
    match expanded.command {
        Command::Cmd(line) => {
            let v = command(config, line);
            config.insert("Cmd".into(), v);
        }
        Command::Entrypoint(line) => {
            let v = command(config, line);
            config.insert("Entrypoint".into(), v);
        }
        Command::Env(_) => {
            config.insert("Env".into(), Value::from(scope.env()));
        }
        Command::Label(pairs) => {
            let labels = object(config, "Labels").map_err(bad)?;
            for kv in pairs {
                labels.insert(kv.key, Value::String(kv.value));
            }
        }
        Command::Expose(ports) => {
            let exposed = object(config, "ExposedPorts").map_err(bad)?;
            for p in ports.iter().flat_map(|p| exposed_ports(p)) {
                exposed.insert(p, Value::Object(Map::new()));
            }
        }
        Command::Volume(list) => {
            let volumes = object(config, "Volumes").map_err(bad)?;
            for v in list {
                volumes.insert(v, Value::Object(Map::new()));
            }
        }
        Command::User(u) => {
            config.insert("User".into(), Value::String(u));
        }
        Command::Workdir(w) => {
            // A relative WORKDIR is relative to the current one.
            let current = config
                .get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or("/");
            let dir = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", current.trim_end_matches('/'))
            };
            config.insert("WorkingDir".into(), Value::String(dir));
        }
        Command::StopSignal(s) => {
            config.insert("StopSignal".into(), Value::String(s));
        }
        Command::Onbuild(o) => {
            let list = config
                .entry("OnBuild")
                .or_insert_with(|| Value::Array(Vec::new()));
            match list {
                Value::Array(list) => list.push(Value::String(o.expression)),
                other => *other = Value::from(vec![o.expression]),
            }
        }
        _ => unreachable!("checked against SUPPORTED above"),
    }
    Ok(())
}

/// Exec form as is; shell form wrapped in the config's Shell (default
/// `/bin/sh -c`).
fn command(config: &Map<String, Value>, line: CommandLine) -> Value {
    match line {
        CommandLine::Exec(args) => Value::from(args),
        CommandLine::Shell(text) => {
            let mut shell: Vec<String> = match config.get("Shell") {
                Some(Value::Array(s)) if !s.is_empty() => s
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => vec!["/bin/sh".into(), "-c".into()],
            };
            shell.push(text);
            Value::from(shell)
        }
    }
}

fn object<'a>(
    config: &'a mut Map<String, Value>,
    key: &str,
) -> std::result::Result<&'a mut Map<String, Value>, String> {
    let v = config
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
        .ok_or_else(|| format!("the image's {key} is not an object"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(changes: &[&str]) -> Value {
        let mut m = Map::new();
        for c in changes {
            apply_change(&mut m, c).unwrap();
        }
        Value::Object(m)
    }

    #[test]
    fn applies_each_instruction() {
        let v = apply(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /init --fast",
            "ENV A=1 B=\"two words\"",
            "ENV LEGACY value with spaces",
            "ENV A=3 C=$B",
            "LABEL org.x=y \"k 2\"=v2 from-env=$A",
            "EXPOSE 80 53/udp 8000-8002",
            "VOLUME /data /cache",
            r#"VOLUME ["/json"]"#,
            "USER 1000:1000",
            "workdir /srv",
            "WORKDIR app",
            "STOPSIGNAL SIGTERM",
            "ONBUILD RUN echo $A",
        ]);
        assert_eq!(
            v,
            json!({
                "Cmd": ["sh", "-c", "echo hi"],
                "Entrypoint": ["/bin/sh", "-c", "/init --fast"],
                "Env": ["A=3", "B=two words", "LEGACY=value with spaces", "C=two words"],
                "Labels": {"org.x": "y", "k 2": "v2", "from-env": "3"},
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}},
                "Volumes": {"/data": {}, "/cache": {}, "/json": {}},
                "User": "1000:1000",
                "WorkingDir": "/srv/app",
                "StopSignal": "SIGTERM",
                "OnBuild": ["RUN echo $A"],
            })
        );
    }

    #[test]
    fn shell_form_uses_the_config_shell() {
        let mut m = Map::new();
        m.insert("Shell".into(), json!(["/bin/bash", "-o", "pipefail", "-c"]));
        apply_change(&mut m, "CMD echo hi").unwrap();
        assert_eq!(
            m["Cmd"],
            json!(["/bin/bash", "-o", "pipefail", "-c", "echo hi"])
        );
    }

    #[test]
    fn rejects_bad_changes_with_reason() {
        for (c, why) in [
            ("RUN echo", "cannot be applied"),
            ("FROM x", "FROM isn't allowed here"),
            ("CMD", "requires at least one argument"),
            ("EXPOSE 99999", "invalid port"),
            ("EXPOSE 80/icmp", "invalid proto"),
            ("LABEL novalue", "LABEL must have two arguments"),
            ("ENV =x", "ENV names can not be blank"),
            ("LABEL a=\"open", "unterminated double quote"),
            ("CMDD x", "did you mean CMD?"),
            ("ENV A=1\nENV B=2", "expected one instruction"),
        ] {
            let err = apply_change(&mut Map::new(), c).unwrap_err().to_string();
            assert!(err.contains(why), "{c}: {err}");
        }
    }
}
