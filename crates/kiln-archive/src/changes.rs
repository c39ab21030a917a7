//! `--change` for import (and later commit): the Dockerfile instructions
//! that only edit the image config.
//!
//! This is a deliberately small reader for one-line instructions; full
//! Dockerfile parsing (continuations, heredocs, variable expansion) is the
//! Dockerfile frontend's job.

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
    let line = change.trim();
    let (keyword, rest) = line
        .split_once(char::is_whitespace)
        .map(|(k, r)| (k, r.trim()))
        .unwrap_or((line, ""));
    let keyword = keyword.to_ascii_uppercase();
    if rest.is_empty() {
        return Err(bad(format!("{keyword} needs an argument")));
    }
    match keyword.as_str() {
        "CMD" => {
            config.insert("Cmd".into(), command(rest));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), command(rest));
        }
        "ENV" => {
            let env = config
                .entry("Env")
                .or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(env) = env else {
                return Err(bad("the image's Env is not a list".into()));
            };
            for (k, v) in pairs(rest, true).map_err(bad)? {
                let prefix = format!("{k}=");
                env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                env.push(Value::String(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let labels = object(config, "Labels").map_err(bad)?;
            for (k, v) in pairs(rest, false).map_err(bad)? {
                labels.insert(k, Value::String(v));
            }
        }
        "EXPOSE" => {
            let ports = object(config, "ExposedPorts").map_err(bad)?;
            for p in rest.split_whitespace() {
                let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                let valid_port = |s: &str| s.parse::<u16>().is_ok();
                let valid =
                    match port.split_once('-') {
                        Some((a, b)) => valid_port(a) && valid_port(b),
                        None => valid_port(port),
                    } && matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp");
                if !valid {
                    return Err(bad(format!("invalid port {p:?}: use PORT[/tcp|udp|sctp]")));
                }
                ports.insert(
                    format!("{port}/{}", proto.to_ascii_lowercase()),
                    Value::Object(Map::new()),
                );
            }
        }
        "VOLUME" => {
            let list = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => rest.split_whitespace().map(str::to_string).collect(),
            };
            let volumes = object(config, "Volumes").map_err(bad)?;
            for v in list {
                volumes.insert(v, Value::Object(Map::new()));
            }
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" => {
            let field = match keyword.as_str() {
                "USER" => "User",
                "WORKDIR" => "WorkingDir",
                _ => "StopSignal",
            };
            config.insert(field.into(), Value::String(rest.to_string()));
        }
        "ONBUILD" => {
            let list = config
                .entry("OnBuild")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                list.push(Value::String(rest.to_string()));
            }
        }
        other => {
            return Err(bad(format!(
                "{other} cannot be applied to an image config; supported: {SUPPORTED}"
            )))
        }
    }
    Ok(())
}

/// Exec form when the text is a JSON string array, else shell form.
fn command(rest: &str) -> Value {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(args) => Value::from(args),
        Err(_) => Value::from(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            rest.to_string(),
        ]),
    }
}

fn object<'a>(
    config: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let v = config
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
        .ok_or_else(|| format!("the image's {key} is not an object"))
}

/// `k=v k2="v 2"` pairs; with `legacy`, `k value with spaces` too (ENV).
fn pairs(rest: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest)?;
    let first_has_eq = words.first().is_some_and(|w| w.contains('='));
    if legacy && !first_has_eq {
        let (key, value) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| "ENV needs a value: ENV KEY=VALUE or ENV KEY VALUE".to_string())?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("{w:?} is not KEY=VALUE"))?;
            if k.is_empty() {
                return Err(format!("{w:?} has an empty key"));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                in_word = true;
            }
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (c, _) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
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
            "ENV A=3",
            "LABEL org.x=y \"k 2\"=v2",
            "EXPOSE 80 53/udp 8000-8010",
            "VOLUME /data /cache",
            r#"VOLUME ["/json"]"#,
            "USER 1000:1000",
            "workdir /srv",
            "STOPSIGNAL SIGTERM",
            "ONBUILD RUN echo child",
        ]);
        assert_eq!(
            v,
            json!({
                "Cmd": ["sh", "-c", "echo hi"],
                "Entrypoint": ["/bin/sh", "-c", "/init --fast"],
                "Env": ["B=two words", "LEGACY=value with spaces", "A=3"],
                "Labels": {"org.x": "y", "k 2": "v2"},
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000-8010/tcp": {}},
                "Volumes": {"/data": {}, "/cache": {}, "/json": {}},
                "User": "1000:1000",
                "WorkingDir": "/srv",
                "StopSignal": "SIGTERM",
                "OnBuild": ["RUN echo child"],
            })
        );
    }

    #[test]
    fn rejects_bad_changes_with_reason() {
        for (c, why) in [
            ("RUN echo", "cannot be applied"),
            ("FROM x", "cannot be applied"),
            ("CMD", "needs an argument"),
            ("EXPOSE 99999", "invalid port"),
            ("EXPOSE 80/icmp", "invalid port"),
            ("LABEL novalue", "not KEY=VALUE"),
            ("ENV =x", "empty key"),
            ("LABEL a=\"open", "unterminated"),
        ] {
            let err = apply_change(&mut Map::new(), c).unwrap_err().to_string();
            assert!(err.contains(why), "{c}: {err}");
        }
    }
}
