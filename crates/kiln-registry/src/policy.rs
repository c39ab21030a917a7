//! What the operator configures, as the server holds it: [`Options`]
//! (built from a `kiln-registry.toml` by `Config::options`, or by hand),
//! the repository glob every pattern uses, and htpasswd files.

use std::collections::HashMap;
use std::sync::Arc;

use crate::access::Rule;
use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::retention::RetentionRule;
use crate::token::TokenAuth;

/// The registry's policies. `Default` is an open registry with mutable
/// tags, deletes allowed and no access log.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Repositories (glob patterns: `*` any run of characters, `/`
    /// included; `?` one character) whose tags, once pushed, always name
    /// the same manifest: re-pushing a tag to another digest, deleting the
    /// tag or the manifest it names are refused (409, `DENIED`).
    pub immutable_tags: Vec<String>,
    /// Users and bcrypt hashes; when set (and no `token`), every `/v2/`
    /// request needs Basic credentials of one of them (or none, with
    /// `anonymous`). With `token`, the token server checks them.
    pub htpasswd: Option<Htpasswd>,
    /// Bearer tokens from the built-in token server on every request.
    pub token: Option<Arc<TokenAuth>>,
    /// Requests without credentials are served as `anonymous`.
    pub anonymous: bool,
    /// Per-repository grants (see `access::granted`); empty: signed-in
    /// users may do anything, anonymous may pull.
    pub access: Vec<Rule>,
    /// Manifest and blob DELETE answer 405 UNSUPPORTED.
    pub delete_disabled: bool,
    /// Tag retention, applied after every manifest PUT.
    pub retention: Vec<RetentionRule>,
    /// The server is reached over https (the token realm's scheme).
    pub https: bool,
    /// Counters for `/metrics`; clone the handle to count GC runs.
    pub metrics: Metrics,
    /// Access-log lines.
    pub access_log: AccessLog,
    /// The key that signs upload state in `Location` URLs; replicas
    /// sharing a bucket must share it. `None`: a random key per process.
    pub upload_secret: Option<Vec<u8>>,
    /// Serve as a pull-through cache of this upstream (pushes and deletes
    /// answer 405 UNSUPPORTED).
    pub proxy: Option<Arc<crate::proxy::Proxy>>,
    /// Per-client request limits (`[limits]`); default none.
    pub limits: crate::Limits,
}

impl Options {
    pub(crate) fn tags_immutable(&self, repo: &str) -> bool {
        self.immutable_tags
            .iter()
            .any(|p| glob(p.as_bytes(), repo.as_bytes()))
    }
}

/// `*` matches any run of bytes, `?` one byte, anything else itself.
pub(crate) fn glob(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// An htpasswd file's bcrypt entries (`user:$2y$...`, as `htpasswd -B`
/// writes them). Other hash schemes are refused when the file is read.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

/// Why an htpasswd file was refused.
#[derive(Debug, thiserror::Error)]
#[error("htpasswd line {line}: {message}")]
pub struct HtpasswdError {
    line: usize,
    message: String,
}

impl Htpasswd {
    pub fn parse(text: &str) -> Result<Htpasswd, HtpasswdError> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: &str| HtpasswdError {
                line: n + 1,
                message: message.to_string(),
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| err("expected user:hash"))?;
            if !["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
                return Err(err("only bcrypt hashes are accepted (htpasswd -B)"));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd { users })
    }

    /// Whether `user` with `password` is allowed in.
    pub fn check(&self, user: &str, password: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob(b"*", b"a/b"));
        assert!(glob(b"prod/*", b"prod/app"));
        assert!(glob(b"prod/*", b"prod/team/app"));
        assert!(!glob(b"prod/*", b"dev/app"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"*-release", b"x/y-release"));
        assert!(!glob(b"app", b"app2"));
    }
}
