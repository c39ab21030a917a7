//! Credentials in docker's `config.json`, so `kiln login` and `docker login`
//! share one file.
//!
//! Lookup order is docker's: `credHelpers[registry]`, then `credsStore`,
//! then `auths[registry].auth` (base64 `user:password`, or separate
//! `username`/`password`, or an `identitytoken`). Helpers are the
//! `docker-credential-<name>` programs with their stdin/stdout protocol
//! (`get`/`store`/`erase`). Docker Hub's key is its legacy index URL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::error::{RegistryError, Result};

const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    // The secret never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <secret>)", self.username)
    }
}

/// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`), loaded.
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// The key a registry's credentials are stored under.
pub fn config_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        other => other.to_string(),
    }
}

impl DockerConfig {
    /// Where docker keeps it: `DOCKER_CONFIG/config.json` when that
    /// directory is given, else `HOME/.docker/config.json` (`/root` when
    /// no home is known). The caller reads the environment.
    pub fn path_for(docker_config_dir: Option<&Path>, home: Option<&Path>) -> PathBuf {
        if let Some(dir) = docker_config_dir {
            return dir.join("config.json");
        }
        home.unwrap_or(Path::new("/root"))
            .join(".docker")
            .join("config.json")
    }

    /// Loads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let doc = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) | Err(_) => {
                    return Err(RegistryError::Config(format!(
                        "{} is not a JSON object; fix or remove it",
                        path.display()
                    )))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => {
                return Err(RegistryError::Config(format!(
                    "read {}: {e}",
                    path.display()
                )))
            }
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            doc,
        })
    }

    fn helper_for(&self, key: &str) -> Option<String> {
        if let Some(h) = self
            .doc
            .get("credHelpers")
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
        {
            return Some(h.to_string());
        }
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials for `registry` (a host[:port], `docker.io` for Hub).
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(&key) {
            if let Some(c) = helper_get(&helper, &key)? {
                return Ok(Some(c));
            }
        }
        let Some(auths) = self.doc.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        // Entries may be written as bare hosts or as URLs.
        let entry = auths.get(&key).or_else(|| {
            auths.iter().find_map(|(k, v)| {
                let host = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or_default();
                (host == key || config_key(host) == key).then_some(v)
            })
        });
        let Some(entry) = entry else { return Ok(None) };
        if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
            if !auth.is_empty() {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        RegistryError::Config(format!(
                            "{}: auths.{key}.auth is not base64 of user:password",
                            self.path.display()
                        ))
                    })?;
                let (user, secret) = decoded.split_once(':').ok_or_else(|| {
                    RegistryError::Config(format!(
                        "{}: auths.{key}.auth lacks the ':' between user and password",
                        self.path.display()
                    ))
                })?;
                return Ok(Some(Credentials {
                    username: user.to_string(),
                    secret: secret.to_string(),
                }));
            }
        }
        let field = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
        if let Some(token) = field("identitytoken") {
            return Ok(Some(Credentials {
                username: "<token>".to_string(),
                secret: token,
            }));
        }
        match (field("username"), field("password")) {
            (Some(username), Some(secret)) => Ok(Some(Credentials { username, secret })),
            _ => Ok(None),
        }
    }

    /// Stores credentials: in the helper when one is configured, else
    /// base64 in `auths` (as docker does, with a warning the CLI prints).
    /// Returns true when they went to a helper.
    pub fn store(&mut self, registry: &str, creds: &Credentials) -> Result<bool> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(&key) {
            let input =
                json!({"ServerURL": key, "Username": creds.username, "Secret": creds.secret});
            helper_call(&helper, "store", input.to_string().as_bytes())?;
            // docker keeps an empty entry so `docker info` lists the login.
            self.auths_mut().insert(key, json!({}));
            self.save()?;
            return Ok(true);
        }
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.secret));
        self.auths_mut().insert(key, json!({ "auth": auth }));
        self.save()?;
        Ok(false)
    }

    /// Removes the credentials for `registry`; false when there were none.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        let key = config_key(registry);
        let mut found = false;
        if let Some(helper) = self.helper_for(&key) {
            found |= helper_call(&helper, "erase", key.as_bytes()).is_ok();
        }
        found |= self.auths_mut().remove(&key).is_some();
        if found {
            self.save()?;
        }
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("just made an object"),
        }
    }

    /// Atomic replace, mode 0600: the file holds secrets.
    fn save(&self) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |e: std::io::Error| {
            RegistryError::Config(format!("write {}: {e}", self.path.display()))
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        let text = serde_json::to_string_pretty(&self.doc).map_err(std::io::Error::other);
        f.write_all(text.map_err(err)?.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>> {
    let out = match helper_call(helper, "get", key.as_bytes()) {
        Ok(out) => out,
        // The protocol's "not found" is a failure whose output says so.
        Err(RegistryError::Credentials(msg)) if msg.contains("credentials not found") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&out).map_err(|e| {
        RegistryError::Credentials(format!("docker-credential-{helper} get: bad JSON: {e}"))
    })?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    if s("Secret").is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: s("Username").to_string(),
        secret: s("Secret").to_string(),
    }))
}

fn helper_call(helper: &str, verb: &str, input: &[u8]) -> Result<Vec<u8>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RegistryError::Credentials(format!(
                "cannot run {program} (configured in docker's config.json): {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| RegistryError::Credentials(format!("{program} {verb}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Credentials(format!("{program} {verb}: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim();
        return Err(RegistryError::Credentials(format!(
            "{program} {verb} failed: {msg}"
        )));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn store_then_read_then_erase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{},"other":1}"#).unwrap();
        let mut cfg = DockerConfig::load(&path).unwrap();
        let creds = Credentials {
            username: "u".into(),
            secret: "p:w".into(),
        };
        assert!(!cfg.store("localhost:5000", &creds).unwrap());
        let cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(cfg.credentials("localhost:5000").unwrap(), Some(creds));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"other\": 1"), "{text}");
        assert!(text.contains("dTpwOnc="), "{text}"); // base64("u:p:w")
        let mut cfg = DockerConfig::load(&path).unwrap();
        assert!(cfg.erase("localhost:5000").unwrap());
        assert!(!cfg.erase("localhost:5000").unwrap());
        assert_eq!(cfg.credentials("localhost:5000").unwrap(), None);
    }

    #[test]
    fn hub_and_url_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"},"https://r.example.com/v2/":{"username":"x","password":"y"}}}"#,
        )
        .unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(cfg.credentials("docker.io").unwrap().unwrap().username, "a");
        assert_eq!(
            cfg.credentials("r.example.com").unwrap().unwrap().secret,
            "y"
        );
        assert_eq!(cfg.credentials("other.example.com").unwrap(), None);
    }

    #[test]
    fn credential_helper_protocol() {
        let dir = tempfile::tempdir().unwrap();
        // A helper that keeps one secret in a file, as the protocol says.
        let helper = dir.path().join("docker-credential-kilntest");
        let state = dir.path().join("state");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nS={}\ncase $1 in\n store) cat > $S ;;\n get) read url; [ -f $S ] && cat $S || {{ echo 'credentials not found in native keychain'; exit 1; }} ;;\n erase) rm -f $S ;;\nesac\n",
                state.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"reg.test":"kilntest"}}"#).unwrap();
        // Helpers are found on PATH, as docker finds them.
        let old = std::env::var("PATH").unwrap_or_default();
        let program = dir.path().join("docker-credential-kilntest");
        assert!(program.exists());
        // SAFETY-free: set_var is safe in edition 2021; the test owns PATH for
        // its helper lookup only.
        std::env::set_var("PATH", format!("{}:{old}", dir.path().display()));
        let mut cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(cfg.credentials("reg.test").unwrap(), None);
        let creds = Credentials {
            username: "bob".into(),
            secret: "s3cret".into(),
        };
        assert!(cfg.store("reg.test", &creds).unwrap());
        assert_eq!(cfg.credentials("reg.test").unwrap(), Some(creds));
        assert!(!std::fs::read_to_string(&path).unwrap().contains("s3cret"));
        assert!(cfg.erase("reg.test").unwrap());
        assert_eq!(cfg.credentials("reg.test").unwrap(), None);
    }
}
