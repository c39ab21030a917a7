//! `--change` for import (and later commit): the Dockerfile instructions
//! that only edit the image config, parsed by the Dockerfile frontend and
//! expanded against the config's own `Env`, as docker does.

use std::collections::BTreeMap;

use kiln_core::image::ImageConfig;
use kiln_dockerfile::config::{ConfigEdit, Frontend};
use kiln_dockerfile::{parse_line, GlobalScope, StageScope};

use crate::error::{ArchiveError, Result};

/// What docker's `--change` accepts (its `validCommitCommands`), plus
/// STOPSIGNAL, which docker 20.10 refuses and later versions accept.
const SUPPORTED: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR";

/// Applies a change list (`CMD ["sh"]`, `ENV A=1 B=2`, …) in order to
/// `config`, through the one config editor the build uses too. One list is
/// one "stage": an ENTRYPOINT keeps a CMD set earlier in the same list.
pub fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<()> {
    let mut edit = ConfigEdit::new(Frontend::Classic);
    for change in changes {
        apply_change(config, &mut edit, change)?;
    }
    Ok(())
}

fn apply_change(config: &mut ImageConfig, edit: &mut ConfigEdit, change: &str) -> Result<()> {
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
    let env = config.container().env().to_vec();
    let global = GlobalScope::default();
    let no_build_args = BTreeMap::new();
    let mut scope = StageScope::new(&global, &no_build_args, '\\', &env);
    let expanded = scope.expand(&instruction).map_err(frontend)?;
    edit.apply(config, &expanded.command, &scope.env());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn apply(changes: &[&str]) -> Value {
        let mut c = ImageConfig::default();
        let changes: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        apply_changes(&mut c, &changes).unwrap();
        c.container().to_value()
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
    fn entrypoint_drops_cmd_unless_set_in_the_same_list() {
        let mut base = ImageConfig::from_slice(br#"{"config":{"Cmd":["inherited"]}}"#).unwrap();
        apply_changes(&mut base, &[r#"ENTRYPOINT ["e"]"#.to_string()]).unwrap();
        assert_eq!(base.container().to_value(), json!({"Entrypoint": ["e"]}));
        let v = apply(&[r#"CMD ["a"]"#, r#"ENTRYPOINT ["e"]"#]);
        assert_eq!(v, json!({"Cmd": ["a"], "Entrypoint": ["e"]}));
    }

    #[test]
    fn healthcheck_and_workdir_as_docker() {
        let v = apply(&[
            "HEALTHCHECK --interval=1s --retries=4 CMD [\"x\"]",
            "WORKDIR /srv",
            "WORKDIR ../x/./y/",
        ]);
        assert_eq!(
            v,
            json!({
                "Healthcheck": {"Test": ["CMD", "x"], "Interval": 1_000_000_000u64, "Retries": 4},
                "WorkingDir": "/x/y",
            })
        );
    }

    #[test]
    fn shell_form_uses_the_config_shell() {
        let mut c =
            ImageConfig::from_slice(br#"{"config":{"Shell":["/bin/bash","-o","pipefail","-c"]}}"#)
                .unwrap();
        apply_changes(&mut c, &["CMD echo hi".to_string()]).unwrap();
        assert_eq!(
            c.container().to_value()["Cmd"],
            json!(["/bin/bash", "-o", "pipefail", "-c", "echo hi"])
        );
    }

    #[test]
    fn rejects_bad_changes_with_reason() {
        for (c, why) in [
            ("RUN echo", "cannot be applied"),
            ("SHELL [\"/bin/bash\", \"-c\"]", "cannot be applied"),
            ("MAINTAINER me", "cannot be applied"),
            ("ARG x=1", "cannot be applied"),
            ("VOLUME \"\"", "can not be an empty string"),
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
            let err = apply_changes(&mut ImageConfig::default(), &[c.to_string()])
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{c}: {err}");
        }
    }
}
