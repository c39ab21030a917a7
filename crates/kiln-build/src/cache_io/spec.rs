//! `--cache-to` and `--cache-from` as buildx writes them: comma-separated
//! `key=value` fields, `type=` first by convention (any order is read).
//! A bare `--cache-from NAME` is `type=registry,ref=NAME`, as in buildx.

use std::path::PathBuf;
use std::str::FromStr;

use kiln_layer::Compression;

use crate::error::{BuildError, Result};

/// Which steps an exported cache holds (buildx's `mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The steps of the stages the final image is made of (the default).
    #[default]
    Min,
    /// Every step of every stage the build ran, intermediate stages too.
    Max,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Min => "min",
            Mode::Max => "max",
        }
    }
}

/// `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheTo {
    /// `type=registry,ref=R[,mode=…][,compression=…]`: an OCI artifact
    /// pushed to `R`, its layers compressed (gzip unless said otherwise).
    Registry {
        reference: String,
        mode: Mode,
        compression: Compression,
    },
    /// `type=local,dest=DIR[,mode=…][,compression=…]`: the artifact in an
    /// OCI layout at `DIR`.
    Local {
        dest: PathBuf,
        mode: Mode,
        compression: Compression,
    },
    /// `type=inline`: the records in the image's own config (mode min).
    Inline,
}

/// `--cache-from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheFrom {
    /// `type=registry,ref=R`: a cache artifact, or an image with inline cache.
    Registry { reference: String },
    /// `type=local,src=DIR`: an OCI layout `--cache-to type=local` wrote.
    Local { src: PathBuf },
}

/// The fields of one spec, each key once.
fn fields<'a>(flag: &str, spec: &'a str) -> Result<Vec<(&'a str, &'a str)>> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for field in spec.split(',') {
        let Some((k, v)) = field.split_once('=') else {
            return Err(BuildError::BadOption(format!(
                "{flag} {spec:?}: field {field:?} is not KEY=VALUE (e.g. type=registry,ref=NAME)"
            )));
        };
        let k = k.trim();
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(BuildError::BadOption(format!(
                "{flag} {spec:?}: {k}= is given twice"
            )));
        }
        out.push((k, v.trim()));
    }
    Ok(out)
}

/// The value of `key` (required), after checking every key is one of
/// `accepted`.
struct Fields<'a> {
    flag: &'a str,
    spec: &'a str,
    kind: &'a str,
    all: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    fn new(flag: &'a str, spec: &'a str, accepted: &[(&str, &[&str])]) -> Result<Fields<'a>> {
        let all = fields(flag, spec)?;
        let types: Vec<&str> = accepted.iter().map(|(t, _)| *t).collect();
        let kind = match all.iter().find(|(k, _)| *k == "type") {
            Some((_, v)) => *v,
            None => {
                return Err(BuildError::BadOption(format!(
                    "{flag} {spec:?}: no type= (use type={})",
                    types.join("|")
                )))
            }
        };
        let Some((_, keys)) = accepted.iter().find(|(t, _)| *t == kind) else {
            return Err(BuildError::BadOption(format!(
                "{flag} {spec:?}: type={kind} is not supported (use type={})",
                types.join("|")
            )));
        };
        for (k, _) in &all {
            if *k != "type" && !keys.contains(k) {
                let list = if keys.is_empty() {
                    "none besides type".to_string()
                } else {
                    keys.join(", ")
                };
                return Err(BuildError::BadOption(format!(
                    "{flag} {spec:?}: unknown key {k:?} for type={kind} (accepted: {list})"
                )));
            }
        }
        Ok(Fields {
            flag,
            spec,
            kind,
            all,
        })
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.all.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn required(&self, key: &str) -> Result<&'a str> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(BuildError::BadOption(format!(
                "{} {:?}: type={} needs {key}=",
                self.flag, self.spec, self.kind
            ))),
        }
    }

    fn mode(&self) -> Result<Mode> {
        match self.get("mode") {
            None | Some("min") => Ok(Mode::Min),
            Some("max") => Ok(Mode::Max),
            Some(other) => Err(BuildError::BadOption(format!(
                "{} {:?}: mode={other} (use mode=min or mode=max)",
                self.flag, self.spec
            ))),
        }
    }

    /// buildx's `compression=`: the cache's layers travel gzip-compressed
    /// unless it says zstd or uncompressed.
    fn compression(&self) -> Result<Compression> {
        match self.get("compression") {
            None | Some("gzip") => Ok(Compression::Gzip),
            Some("zstd") => Ok(Compression::Zstd),
            Some("uncompressed") => Ok(Compression::None),
            Some(other) => Err(BuildError::BadOption(format!(
                "{} {:?}: compression={other} (use compression=gzip, zstd or uncompressed)",
                self.flag, self.spec
            ))),
        }
    }
}

impl FromStr for CacheTo {
    type Err = BuildError;

    fn from_str(spec: &str) -> Result<CacheTo> {
        let f = Fields::new(
            "--cache-to",
            spec,
            &[
                ("registry", &["ref", "mode", "compression"]),
                ("local", &["dest", "mode", "compression"]),
                ("inline", &[]),
            ],
        )?;
        Ok(match f.kind {
            "registry" => CacheTo::Registry {
                reference: f.required("ref")?.to_string(),
                mode: f.mode()?,
                compression: f.compression()?,
            },
            "local" => CacheTo::Local {
                dest: PathBuf::from(f.required("dest")?),
                mode: f.mode()?,
                compression: f.compression()?,
            },
            _ => CacheTo::Inline,
        })
    }
}

impl FromStr for CacheFrom {
    type Err = BuildError;

    fn from_str(spec: &str) -> Result<CacheFrom> {
        if !spec.contains('=') && !spec.is_empty() {
            return Ok(CacheFrom::Registry {
                reference: spec.to_string(),
            });
        }
        let f = Fields::new(
            "--cache-from",
            spec,
            &[("registry", &["ref"]), ("local", &["src"])],
        )?;
        Ok(match f.kind {
            "registry" => CacheFrom::Registry {
                reference: f.required("ref")?.to_string(),
            },
            _ => CacheFrom::Local {
                src: PathBuf::from(f.required("src")?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: FromStr<Err = BuildError> + std::fmt::Debug>(spec: &str) -> String {
        spec.parse::<T>().unwrap_err().to_string()
    }

    #[test]
    fn buildx_forms_parse() {
        assert_eq!(
            "type=registry,ref=127.0.0.1:5000/cache:x,mode=max"
                .parse::<CacheTo>()
                .unwrap(),
            CacheTo::Registry {
                reference: "127.0.0.1:5000/cache:x".into(),
                mode: Mode::Max,
                compression: Compression::Gzip,
            }
        );
        assert_eq!(
            "dest=/tmp/c,type=local".parse::<CacheTo>().unwrap(),
            CacheTo::Local {
                dest: "/tmp/c".into(),
                mode: Mode::Min,
                compression: Compression::Gzip,
            }
        );
        for (word, c) in [
            ("zstd", Compression::Zstd),
            ("uncompressed", Compression::None),
            ("gzip", Compression::Gzip),
        ] {
            let spec = format!("type=local,dest=d,compression={word}");
            assert!(matches!(
                spec.parse::<CacheTo>().unwrap(),
                CacheTo::Local { compression, .. } if compression == c
            ));
        }
        assert_eq!("type=inline".parse::<CacheTo>().unwrap(), CacheTo::Inline);
        assert_eq!(
            "type=local,src=/c".parse::<CacheFrom>().unwrap(),
            CacheFrom::Local { src: "/c".into() }
        );
        assert_eq!(
            "example.com/app:cache".parse::<CacheFrom>().unwrap(),
            CacheFrom::Registry {
                reference: "example.com/app:cache".into()
            }
        );
    }

    #[test]
    fn errors_name_the_bad_key_and_the_accepted_ones() {
        let e = err::<CacheTo>("type=registry,ref=r,compression-level=3");
        assert!(
            e.contains("\"compression-level\"") && e.contains("accepted: ref, mode, compression"),
            "{e}"
        );
        let e = err::<CacheTo>("type=registry,ref=r,compression=xz");
        assert!(e.contains("compression=xz") && e.contains("zstd"), "{e}");
        let e = err::<CacheTo>("type=s3,bucket=b");
        assert!(
            e.contains("type=s3") && e.contains("registry|local|inline"),
            "{e}"
        );
        let e = err::<CacheTo>("type=registry,mode=max");
        assert!(e.contains("needs ref="), "{e}");
        let e = err::<CacheTo>("type=local,dest=d,mode=all");
        assert!(
            e.contains("mode=all") && e.contains("mode=min or mode=max"),
            "{e}"
        );
        let e = err::<CacheTo>("ref=r");
        assert!(e.contains("no type="), "{e}");
        let e = err::<CacheTo>("type=inline,mode=max");
        assert!(e.contains("none besides type"), "{e}");
        let e = err::<CacheFrom>("type=local,dest=d");
        assert!(e.contains("\"dest\"") && e.contains("accepted: src"), "{e}");
        let e = err::<CacheFrom>("type=registry,ref");
        assert!(e.contains("not KEY=VALUE"), "{e}");
        let e = err::<CacheFrom>("type=registry,ref=a,ref=b");
        assert!(e.contains("twice"), "{e}");
    }
}
