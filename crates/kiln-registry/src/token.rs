//! The built-in token server and the tokens: docker's Bearer flow.
//!
//! A client without a token gets `401` with `WWW-Authenticate: Bearer
//! realm=…,service=…,scope="repository:NAME:pull,push"`, asks the realm
//! (`GET /token?service=…&scope=…`, with Basic credentials or none; or
//! the OAuth2 `POST /token` password grant) and gets
//! `{"token","access_token","expires_in","issued_at"}`. The token is a JWT
//! (compact JWS, ES256 over the server's P-256 key, signed with `ring`)
//! whose `access` claim holds the requested scopes intersected with the
//! `[[access]]` rules; the registry then checks each request against it.
//! The JWS is written here rather than through a JWT crate: ES256 with one
//! key, one header and a fixed claim set is a few lines over `ring`, which
//! rustls already brings.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::access::{granted, Action, Rule, User, ANONYMOUS};

/// How the registry issues and checks tokens.
#[derive(Debug)]
pub struct TokenAuth {
    /// Where clients get tokens; `None`: this server's `/token`.
    pub realm: Option<String>,
    pub issuer: String,
    pub service: String,
    /// Seconds a token is valid.
    pub expires_in: u64,
    pub key: SigningKey,
}

/// The ECDSA P-256 key tokens are signed with.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    /// `kid`: a hash of the public key, so a token names the key it needs.
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

const PEM_LABEL: &str = "PRIVATE KEY";

impl SigningKey {
    /// A PKCS#8 PEM P-256 key (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256`).
    pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
        let begin = format!("-----BEGIN {PEM_LABEL}-----");
        let end = format!("-----END {PEM_LABEL}-----");
        let body = pem
            .split_once(&begin)
            .and_then(|(_, rest)| rest.split_once(&end))
            .map(|(b, _)| b)
            .ok_or("expected a PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----)")?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .map_err(|e| format!("the PEM key is not base64: {e}"))?;
        SigningKey::from_pkcs8(&der)
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .map_err(|e| format!("not an ECDSA P-256 PKCS#8 key ({e}); make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`"))?;
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(pair.public_key().as_ref());
        let kid = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
        Ok(SigningKey { pair, kid })
    }

    /// A new random key.
    pub fn generate() -> Result<(SigningKey, String), String> {
        let doc = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .map_err(|e| format!("generate a key: {e}"))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
        let mut pem = format!("-----BEGIN {PEM_LABEL}-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str(&format!("-----END {PEM_LABEL}-----\n"));
        Ok((SigningKey::from_pkcs8(doc.as_ref())?, pem))
    }

    /// The key at `path`, made (mode 0600) when there is none yet, so tokens
    /// stay valid across restarts.
    pub fn load_or_create(path: &Path) -> Result<SigningKey, String> {
        match std::fs::read_to_string(path) {
            Ok(pem) => SigningKey::from_pem(&pem),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, pem) = SigningKey::generate()?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                // Written aside and renamed: a crash leaves no half key.
                let tmp = path.with_extension("pem.tmp");
                {
                    use std::io::Write;
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&tmp)
                        .map_err(|e| format!("write {}: {e}", tmp.display()))?;
                    f.write_all(pem.as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(|e| format!("write {}: {e}", tmp.display()))?;
                }
                std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
                Ok(key)
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// One granted scope, as the `access` claim lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub access: Vec<Grant>,
}

impl Claims {
    /// The user the token was issued to.
    pub fn user(&self) -> User<'_> {
        (self.sub != ANONYMOUS && !self.sub.is_empty()).then_some(self.sub.as_str())
    }

    /// Whether the token allows `action` on repository `repo`
    /// ([`Action::Catalog`]: the catalog).
    pub fn allows(&self, repo: &str, action: Action) -> bool {
        let (kind, name) = match action {
            Action::Catalog => ("registry", "catalog"),
            _ => ("repository", repo),
        };
        self.access.iter().any(|g| {
            g.kind == kind
                && g.name == name
                && g.actions.iter().any(|a| a == "*" || a == action.as_str())
        })
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Clock skew tolerated on `nbf`.
const LEEWAY: u64 = 60;

impl TokenAuth {
    /// A signed token for `user` with `access`; also its issue time.
    pub fn issue(&self, user: User, access: Vec<Grant>) -> Result<(String, u64), String> {
        let iat = now();
        let mut jti = [0u8; 16];
        getrandom::getrandom(&mut jti).map_err(|e| e.to_string())?;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user.unwrap_or(ANONYMOUS).to_string(),
            aud: self.service.clone(),
            exp: iat + self.expires_in,
            nbf: iat.saturating_sub(LEEWAY),
            iat,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            access,
        };
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.key.kid});
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(serde_json::to_vec(&claims).map_err(|e| e.to_string())?)
        );
        let sig = self
            .key
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|e| format!("sign: {e}"))?;
        Ok((format!("{signing_input}.{}", B64.encode(sig.as_ref())), iat))
    }

    /// The claims of a token this server signed, still valid, for this
    /// service; else why not.
    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        let (signing_input, sig) = token.rsplit_once('.').ok_or("malformed token")?;
        let (header, payload) = signing_input.split_once('.').ok_or("malformed token")?;
        let header: serde_json::Value = B64
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or("malformed token header")?;
        if header["alg"] != "ES256" {
            return Err("token not signed with ES256");
        }
        let sig = B64.decode(sig).map_err(|_| "malformed token signature")?;
        signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.pair.public_key().as_ref(),
        )
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| "token signature invalid")?;
        let claims: Claims = B64
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or("malformed token claims")?;
        let t = now();
        if claims.iss != self.issuer || claims.aud != self.service {
            return Err("token issued for another registry");
        }
        if claims.exp <= t {
            return Err("token expired");
        }
        if claims.nbf > t + LEEWAY {
            return Err("token not valid yet");
        }
        Ok(claims)
    }
}

/// A `scope` parameter's grants (`repository:NAME:pull,push`,
/// `registry:catalog:*`); unknown types and actions are left out, as the
/// token spec lets a server do.
pub(crate) fn parse_scope(scope: &str) -> Vec<(String, String, Vec<Action>)> {
    scope
        .split(' ')
        .filter_map(|s| {
            let (rest, actions) = s.rsplit_once(':')?;
            let (kind, name) = rest.split_once(':')?;
            let actions: Vec<Action> = match (kind, name) {
                ("registry", "catalog") => vec![Action::Catalog],
                ("repository", _) => actions
                    .split(',')
                    .filter_map(Action::parse_scope)
                    .flatten()
                    .collect(),
                _ => return None,
            };
            Some((kind.to_string(), name.to_string(), actions))
        })
        .collect()
}

/// The requested scopes intersected with the rules: what `user` gets.
pub(crate) fn grants(rules: &[Rule], user: User, scopes: &[String]) -> Vec<Grant> {
    let mut out: Vec<Grant> = Vec::new();
    for scope in scopes {
        for (kind, name, actions) in parse_scope(scope) {
            let mut allowed: Vec<String> = Vec::new();
            for a in actions {
                let ok = if a == Action::Catalog {
                    granted(rules, user, "", Action::Catalog)
                } else {
                    crate::names::valid_name(&name) && granted(rules, user, &name, a)
                };
                if ok && !allowed.iter().any(|x| x == a.as_str()) {
                    allowed.push(a.as_str().to_string());
                }
            }
            if allowed.is_empty() {
                continue;
            }
            match out.iter_mut().find(|g| g.kind == kind && g.name == name) {
                Some(g) => {
                    for a in allowed {
                        if !g.actions.contains(&a) {
                            g.actions.push(a);
                        }
                    }
                }
                None => out.push(Grant {
                    kind,
                    name,
                    actions: allowed,
                }),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> TokenAuth {
        TokenAuth {
            realm: None,
            issuer: "kiln".into(),
            service: "reg".into(),
            expires_in: 300,
            key: SigningKey::generate().unwrap().0,
        }
    }

    fn grant(name: &str, actions: &[&str]) -> Grant {
        Grant {
            kind: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn issued_tokens_verify_and_say_what_they_grant() {
        let a = auth();
        let (token, _) = a
            .issue(Some("alice"), vec![grant("team/app", &["pull"])])
            .unwrap();
        assert_eq!(token.split('.').count(), 3);
        let c = a.verify(&token).unwrap();
        assert_eq!(c.user(), Some("alice"));
        assert!(c.allows("team/app", Action::Pull));
        assert!(!c.allows("team/app", Action::Push));
        assert!(!c.allows("other", Action::Pull));
        assert!(!c.allows("", Action::Catalog));
        let (anon, _) = a.issue(None, vec![]).unwrap();
        assert_eq!(a.verify(&anon).unwrap().user(), None);
    }

    #[test]
    fn tampered_foreign_and_expired_tokens_are_refused() {
        let a = auth();
        let (token, _) = a.issue(Some("bob"), vec![grant("x", &["pull"])]).unwrap();
        // Another claim set under the same signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = B64.encode(
            String::from_utf8(B64.decode(parts[1]).unwrap())
                .unwrap()
                .replace("\"pull\"", "\"push\""),
        );
        let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert_eq!(a.verify(&forged).unwrap_err(), "token signature invalid");
        // Signed by another key.
        let (other, _) = auth().issue(Some("bob"), vec![]).unwrap();
        assert_eq!(a.verify(&other).unwrap_err(), "token signature invalid");
        // Expired.
        let short = TokenAuth { expires_in: 0, ..a };
        let (old, _) = short.issue(Some("bob"), vec![]).unwrap();
        assert_eq!(short.verify(&old).unwrap_err(), "token expired");
        assert!(short.verify("garbage").is_err());
    }

    #[test]
    fn keys_round_trip_through_pem_and_persist() {
        let (key, pem) = SigningKey::generate().unwrap();
        assert_eq!(SigningKey::from_pem(&pem).unwrap().kid, key.kid);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let first = SigningKey::load_or_create(&path).unwrap();
        let again = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(first.kid, again.kid);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = SigningKey::from_pem("nope").unwrap_err();
        assert!(e.contains("PKCS#8"), "{e}");
    }

    #[test]
    fn scopes_are_intersected_with_the_rules() {
        let rules = vec![
            Rule {
                repository: "team-a/*".into(),
                users: vec!["alice".into()],
                actions: vec![Action::Pull, Action::Push],
            },
            Rule {
                repository: "*".into(),
                users: vec!["anonymous".into()],
                actions: vec![Action::Pull],
            },
        ];
        let scopes = vec![
            "repository:team-a/app:pull,push,delete".to_string(),
            "repository:team-b/app:pull,push registry:catalog:*".to_string(),
        ];
        let g = grants(&rules, Some("alice"), &scopes);
        assert_eq!(g, vec![grant("team-a/app", &["pull", "push"])]);
        let g = grants(&rules, None, &scopes);
        assert_eq!(
            g,
            vec![
                grant("team-a/app", &["pull"]),
                grant("team-b/app", &["pull"])
            ]
        );
        // No rules: signed-in users get what they ask, the catalog too.
        let g = grants(&[], Some("bob"), &scopes);
        assert_eq!(g.len(), 3);
        assert_eq!(g[2].kind, "registry");
        // Names outside the grammar get nothing.
        assert!(grants(&[], Some("bob"), &["repository:../x:pull".into()]).is_empty());
    }
}
