//! `RUN --mount=` values: comma-separated `key=value` fields (a field may
//! be double-quoted to hold commas), as BuildKit reads them. Values are
//! passed through `expand` first, so the same code serves the parsed
//! (identity) and the expanded model.

use crate::model::{Mount, MountKind, Sharing};

/// One `--mount` value to a [`Mount`].
pub(crate) fn parse_mount(
    text: &str,
    expand: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Mount, String> {
    let mut kind = MountKind::Bind;
    let mut fields = Vec::new();
    for field in csv_fields(text)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(expand(v)?)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        if key == "type" {
            kind = match value.as_deref() {
                Some("bind") => MountKind::Bind,
                Some("cache") => MountKind::Cache,
                Some("tmpfs") => MountKind::Tmpfs,
                Some("secret") => MountKind::Secret,
                Some("ssh") => MountKind::Ssh,
                other => {
                    return Err(format!(
                        "unsupported mount type {:?}: use bind, cache, tmpfs, secret or ssh",
                        other.unwrap_or("")
                    ))
                }
            };
        } else {
            fields.push((key, value));
        }
    }
    let mut m = Mount {
        kind,
        target: String::new(),
        source: None,
        from: None,
        readonly: kind == MountKind::Bind,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
        env: None,
    };
    for (key, value) in fields {
        let need = |v: Option<String>| {
            v.ok_or_else(|| format!("mount option {key:?} needs a value: {key}=VALUE"))
        };
        let number = |v: Option<String>, radix: u32| -> Result<u32, String> {
            let v = v.ok_or_else(|| format!("mount option {key:?} needs a value"))?;
            u32::from_str_radix(&v, radix).map_err(|_| format!("invalid {key} {v:?} in --mount"))
        };
        let boolean = |v: Option<String>| match v.as_deref().map(str::to_ascii_lowercase).as_deref()
        {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(format!(
                "invalid value {other:?} for mount option {key}: use true or false"
            )),
        };
        match key.as_str() {
            "target" | "dst" | "destination" => m.target = need(value)?,
            "source" | "src" => m.source = Some(need(value)?),
            "from" => m.from = Some(need(value)?),
            "readonly" | "ro" => m.readonly = boolean(value)?,
            "readwrite" | "rw" => m.readonly = !boolean(value)?,
            "id" => m.id = Some(need(value)?),
            "sharing" => {
                m.sharing = Some(match need(value)?.as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    other => {
                        return Err(format!(
                            "unsupported sharing value {other:?}: use shared, private or locked"
                        ))
                    }
                })
            }
            "mode" => m.mode = Some(number(value, 8)?),
            "uid" => m.uid = Some(number(value, 10)?),
            "gid" => m.gid = Some(number(value, 10)?),
            "required" => m.required = boolean(value)?,
            "size" => {
                let v = need(value)?;
                m.size = Some(parse_size(&v).ok_or_else(|| format!("invalid tmpfs size {v:?}"))?)
            }
            "env" => m.env = Some(need(value)?),
            other => return Err(format!("unexpected key {other:?} in --mount={text}")),
        }
    }
    // Which options make sense for which type (BuildKit's
    // `instructions/commands_runmount.go`: options it ignores for a type
    // are accepted, options it refuses are refused), and the defaults
    // (`dockerfile2llb/convert_runmount.go`, `convert_secrets.go`,
    // `convert_ssh.go`).
    let allowed: &[&str] = match kind {
        MountKind::Bind => &["target", "source", "from", "readonly", "id"],
        MountKind::Cache => &[
            "target", "source", "from", "readonly", "id", "sharing", "mode", "uid", "gid",
        ],
        MountKind::Tmpfs => &["target", "size", "readonly", "from", "id"],
        MountKind::Secret => &[
            "target", "id", "source", "mode", "uid", "gid", "required", "env", "readonly",
        ],
        MountKind::Ssh => &["target", "id", "mode", "uid", "gid", "required", "readonly"],
    };
    let used = [
        ("source", m.source.is_some()),
        ("from", m.from.is_some()),
        ("id", m.id.is_some()),
        ("sharing", m.sharing.is_some()),
        ("mode", m.mode.is_some()),
        ("uid", m.uid.is_some()),
        ("gid", m.gid.is_some()),
        ("size", m.size.is_some()),
        ("env", m.env.is_some()),
        ("required", m.required),
    ];
    if let Some((name, _)) = used
        .iter()
        .find(|(name, set)| *set && !allowed.contains(name))
    {
        return Err(match (kind, *name) {
            (MountKind::Ssh, "source") => "ssh does not support source".to_string(),
            _ => format!(
                "mount option {name:?} does not apply to type={}",
                kind_name(kind)
            ),
        });
    }
    match kind {
        MountKind::Secret => {
            // `source` is another name for the secret's id.
            if m.source.is_some() && m.id.is_some() {
                return Err("secret mount: both source and id can't be set; use id=ID".into());
            }
            if let Some(src) = m.source.take() {
                m.id = Some(src);
            }
            if m.id.is_none() {
                // BuildKit: the id defaults to the target's file name.
                let base = m.target.rsplit('/').next().unwrap_or("").to_string();
                if base.is_empty() {
                    return Err(
                        "invalid secret mount: one of id, source or target is required".into(),
                    );
                }
                m.id = Some(base);
            }
            if m.target.is_empty() && m.env.is_none() {
                let id = m.id.as_deref().unwrap_or_default();
                let base = id.rsplit('/').next().unwrap_or(id);
                m.target = format!("/run/secrets/{base}");
            }
            m.readonly = true;
        }
        MountKind::Ssh => {
            m.id.get_or_insert_with(|| "default".into());
            if m.target.is_empty() {
                m.target = "/run/buildkit/ssh_agent.0".into();
            }
            m.readonly = true;
        }
        MountKind::Cache => {
            m.sharing.get_or_insert(Sharing::Shared);
        }
        // An empty target is the working directory, resolved when the
        // step runs (BuildKit refuses it only when that is `/`).
        MountKind::Bind | MountKind::Tmpfs => {}
    }
    Ok(m)
}

fn kind_name(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    }
}

/// Fields split on commas outside double quotes; quotes removed.
fn csv_fields(text: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quote in --mount={text}"));
    }
    fields.push(cur);
    Ok(fields
        .into_iter()
        .filter(|f| !f.trim().is_empty())
        .collect())
}

/// `1024`, `64k`, `10m`, `1g` (binary units, as docker's RAMInBytes).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(text: &str) -> Result<Mount, String> {
        parse_mount(text, &mut |v| Ok(v.to_string()))
    }

    #[test]
    fn mounts_with_defaults() {
        let m = mount("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755,uid=1000")
            .unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!(m.target, "/root/.cache");
        assert_eq!(m.sharing, Some(Sharing::Locked));
        assert_eq!(
            (m.mode, m.uid, m.readonly),
            (Some(0o755), Some(1000), false)
        );
        let b = mount("target=/src,from=build,source=/out").unwrap();
        assert_eq!((b.kind, b.readonly), (MountKind::Bind, true));
        assert!(!mount("type=bind,target=/src,rw").unwrap().readonly);
        let s = mount("type=secret,id=npmrc").unwrap();
        assert_eq!(
            (s.target.as_str(), s.required),
            ("/run/secrets/npmrc", false)
        );
        let s = mount("type=secret,target=/root/.aws/credentials,required").unwrap();
        assert_eq!((s.id.as_deref(), s.required), (Some("credentials"), true));
        let s = mount("type=secret,id=tok,env=TOKEN").unwrap();
        assert_eq!((s.target.as_str(), s.env.as_deref()), ("", Some("TOKEN")));
        assert_eq!(mount("type=ssh").unwrap().id.as_deref(), Some("default"));
        // BuildKit's defaults: no target means the working directory (the
        // build resolves it); `source` names a secret's id.
        assert_eq!(mount("type=cache").unwrap().target, "");
        assert_eq!(mount("type=bind,source=go.mod").unwrap().target, "");
        let s = mount("type=secret,source=aws").unwrap();
        assert_eq!(
            (s.id.as_deref(), s.target.as_str()),
            (Some("aws"), "/run/secrets/aws")
        );
        assert!(!mount("type=tmpfs,ro=false").unwrap().readonly);
        assert_eq!(
            mount("type=tmpfs,target=/t,size=64m").unwrap().size,
            Some(64 << 20)
        );
        assert_eq!(
            mount("\"type=bind\",\"target=/a,b\"").unwrap().target,
            "/a,b"
        );
    }

    #[test]
    fn bad_mounts_say_why() {
        for (text, want) in [
            ("type=nfs,target=/x", "unsupported mount type \"nfs\""),
            ("type=secret,id=a,source=b", "both source and id"),
            ("type=ssh,source=x", "ssh does not support source"),
            (
                "type=bind,target=/x,required",
                "does not apply to type=bind",
            ),
            ("type=cache,target=/x,sharing=all", "unsupported sharing"),
            ("type=cache,target=/x,foo=bar", "unexpected key \"foo\""),
            ("type=tmpfs,target=/x,uid=1", "does not apply to type=tmpfs"),
            ("type=cache,target=/x,mode=999", "invalid mode"),
            ("type=bind,target=/x,ro=maybe", "use true or false"),
            ("type=bind,target=\"/x", "unterminated quote"),
        ] {
            let e = mount(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
