//! Authentication and authorization of every `/v2/` request, and the
//! token endpoint.
//!
//! Three modes, from [`Options`](crate::Options): open (no htpasswd, no
//! token: everyone may do everything), Basic (an htpasswd file: every
//! request carries a user's credentials, or none when anonymous access is
//! on) and Bearer (`[auth.token]`: every request carries a token from
//! `/token`). Either way the request's need (`pull`, `push`, `delete` on
//! its repository, the catalog, or just a login for `/v2/`) is checked
//! against the `[[access]]` rules — directly for Basic, through the
//! token's `access` claim for Bearer. Who is not identified gets 401 with
//! the challenge; who is identified but not allowed gets 403 `DENIED`.
//! The user is put in the response's extensions for the access log.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::Digest as _;

use crate::access::{granted, Action, Need, ANONYMOUS};
use crate::error::ApiError;
use crate::names::Route;
use crate::App;

/// Remembered accepted credentials at most (then forgotten all at once).
const CACHE: usize = 1024;

/// Who a request acted for, for the access log (`None`: anonymous).
#[derive(Debug, Clone)]
pub(crate) struct AuthUser(pub(crate) Option<String>);

/// What the request at `method` `path` needs; `None` for paths outside
/// the API, which are not checked here.
pub(crate) fn need(method: &Method, path: &str) -> Option<Need> {
    if path == "/v2/" || path == "/v2" {
        return Some(Need::Login);
    }
    if path == "/v2/_catalog" {
        return Some(Need::Catalog);
    }
    let route = crate::names::route(path)?;
    let delete = *method == Method::DELETE;
    let read = *method == Method::GET || *method == Method::HEAD;
    Some(match route {
        Route::Tags { name } | Route::Referrers { name, .. } => Need::Repo(name, Action::Pull),
        Route::Manifest { name, .. } | Route::Blob { name, .. } => {
            let action = if delete {
                Action::Delete
            } else if read {
                Action::Pull
            } else {
                Action::Push
            };
            Need::Repo(name, action)
        }
        Route::UploadStart { name } | Route::Upload { name, .. } => Need::Repo(name, Action::Push),
    })
}

/// Basic credentials of a listed user: `Some(Ok(user))`; wrong ones:
/// `Some(Err(()))`; none given: `None`.
fn basic_user(app: &App, given: &str) -> Option<Result<String, ()>> {
    let htpasswd = app.options.htpasswd.as_ref()?;
    let b64 = given.strip_prefix("Basic ")?;
    let pair = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some((user, password)) = pair.as_deref().and_then(|p| p.split_once(':')) else {
        return Some(Err(()));
    };
    // bcrypt is slow on purpose; a client's every request must not pay
    // for it again.
    let key = sha2::Sha256::digest(given.as_bytes()).to_vec();
    let mut accepted = app.accepted.lock().unwrap_or_else(|e| e.into_inner());
    if accepted.contains(&key) {
        return Some(Ok(user.to_string()));
    }
    drop(accepted);
    if !htpasswd.check(user, password) {
        return Some(Err(()));
    }
    accepted = app.accepted.lock().unwrap_or_else(|e| e.into_inner());
    if accepted.len() >= CACHE {
        accepted.clear();
    }
    accepted.insert(key);
    Some(Ok(user.to_string()))
}

fn unauthorized(message: &str, challenge: String) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
        .header("www-authenticate", challenge)
        .into_response()
}

fn denied(message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "DENIED", message).into_response()
}

fn with_user(mut response: Response, user: Option<String>) -> Response {
    response.extensions_mut().insert(AuthUser(user));
    response
}

/// The scope a challenge asks for, to satisfy `need`.
fn scope_of(need: &Need) -> Option<String> {
    match need {
        Need::Login => None,
        Need::Catalog => Some("registry:catalog:*".into()),
        Need::Repo(name, Action::Push) => Some(format!("repository:{name}:pull,push")),
        Need::Repo(name, a) => Some(format!("repository:{name}:{}", a.as_str())),
    }
}

/// The token realm: the configured one, else this server's `/token` as
/// the client reached it.
fn realm(app: &App, req: &Request) -> String {
    if let Some(r) = app.options.token.as_ref().and_then(|t| t.realm.clone()) {
        return r;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if app.options.https { "https" } else { "http" };
    format!("{scheme}://{host}/token")
}

fn bearer_challenge(app: &App, req: &Request, need: &Need, error: Option<&str>) -> String {
    let service = app
        .options
        .token
        .as_ref()
        .map_or("", |t| t.service.as_str());
    let mut c = format!("Bearer realm=\"{}\",service=\"{service}\"", realm(app, req));
    if let Some(scope) = scope_of(need) {
        c.push_str(&format!(",scope=\"{scope}\""));
    }
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
    }
    c
}

pub(crate) async fn authorize(State(app): State<App>, req: Request, next: Next) -> Response {
    let o = &app.options;
    if o.htpasswd.is_none() && o.token.is_none() {
        return next.run(req).await;
    }
    let Some(need) = need(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let rules = &o.access;
    let (user, allowed) = if let Some(token) = &o.token {
        let Some(jwt) = given.strip_prefix("Bearer ") else {
            return unauthorized(
                "authentication required",
                bearer_challenge(&app, &req, &need, None),
            );
        };
        let claims = match token.verify(jwt.trim()) {
            Ok(c) => c,
            Err(why) => {
                return unauthorized(
                    why,
                    bearer_challenge(&app, &req, &need, Some("invalid_token")),
                )
            }
        };
        let allowed = match &need {
            Need::Login => true,
            Need::Catalog => claims.allows("", Action::Catalog),
            Need::Repo(name, a) => claims.allows(name, *a),
        };
        if !allowed {
            // The token lacks the scope: a new token may carry it if the
            // rules grant it (401, ask again); else it never will (403).
            let user = claims.user();
            let could = match &need {
                Need::Login => true,
                Need::Catalog => granted(rules, user, "", Action::Catalog),
                Need::Repo(name, a) => granted(rules, user, name, *a),
            };
            if could || user.is_none() {
                return unauthorized(
                    "the token does not grant this",
                    bearer_challenge(&app, &req, &need, Some("insufficient_scope")),
                );
            }
        }
        (claims.user().map(str::to_string), allowed)
    } else {
        let challenge = "Basic realm=\"kiln-registry\"".to_string();
        let user = match basic_user(&app, &given) {
            Some(Ok(user)) => Some(user),
            Some(Err(())) => return unauthorized("incorrect username or password", challenge),
            None if o.anonymous && need != Need::Login => None,
            None => return unauthorized("authentication required", challenge),
        };
        let allowed = match &need {
            Need::Login => true,
            Need::Catalog => granted(rules, user.as_deref(), "", Action::Catalog),
            Need::Repo(name, a) => granted(rules, user.as_deref(), name, *a),
        };
        if !allowed && user.is_none() {
            return unauthorized("authentication required", challenge);
        }
        (user, allowed)
    };
    if !allowed {
        let what = match &need {
            Need::Repo(name, a) => format!("{} on {name}", a.as_str()),
            _ => "the catalog".into(),
        };
        let who = user.as_deref().unwrap_or(ANONYMOUS);
        return with_user(denied(format!("{who} may not {what}")), user);
    }
    let req = restrict_mount(req, |from| match &o.token {
        Some(t) => given
            .strip_prefix("Bearer ")
            .and_then(|j| t.verify(j.trim()).ok())
            .is_some_and(|c| c.allows(from, Action::Pull)),
        None => granted(rules, user.as_deref(), from, Action::Pull),
    });
    with_user(next.run(req).await, user)
}

/// A cross-repository mount reads the `from` repository: when the caller
/// may not pull from it (or names none), the mount is dropped and the
/// POST opens a plain upload, as distribution does.
fn restrict_mount(mut req: Request, may_pull: impl Fn(&str) -> bool) -> Request {
    if req.method() != Method::POST {
        return req;
    }
    let q = crate::query(&req);
    if crate::query_value(&q, "mount").is_none() {
        return req;
    }
    if crate::query_value(&q, "from").is_some_and(&may_pull) {
        return req;
    }
    let kept: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q.iter().filter(|(k, _)| k != "mount" && k != "from"))
        .finish();
    let path = req.uri().path().to_string();
    let pq = if kept.is_empty() {
        path
    } else {
        format!("{path}?{kept}")
    };
    if let Ok(uri) = pq.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    req
}

/// `GET /token` (Basic credentials or none) and `POST /token` (OAuth2
/// password grant, form-encoded): a token for the requested scopes that
/// the rules grant.
pub(crate) async fn token_endpoint(State(app): State<App>, req: Request) -> Response {
    let Some(auth) = app.options.token.clone() else {
        return ApiError::not_found().into_response();
    };
    let challenge = "Basic realm=\"kiln-registry\"".to_string();
    let mut scopes: Vec<String> = Vec::new();
    let user: Option<String>;
    let oauth = req.method() == Method::POST;
    if oauth {
        let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", "form too large")
                    .into_response()
            }
        };
        let form: Vec<(String, String)> = form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if crate::query_value(&form, "grant_type") != Some("password") {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                "only the password grant is supported",
            )
            .into_response();
        }
        let name = crate::query_value(&form, "username").unwrap_or("");
        let password = crate::query_value(&form, "password").unwrap_or("");
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        user = match basic_user(&app, &format!("Basic {pair}")) {
            Some(Ok(u)) => Some(u),
            _ => return unauthorized("incorrect username or password", challenge),
        };
        if let Some(s) = crate::query_value(&form, "scope") {
            scopes.push(s.to_string());
        }
    } else {
        let q = crate::query(&req);
        scopes.extend(
            q.iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.clone()),
        );
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        user = match basic_user(&app, given) {
            Some(Ok(u)) => Some(u),
            Some(Err(())) => return unauthorized("incorrect username or password", challenge),
            None if app.options.anonymous => None,
            None => return unauthorized("authentication required", challenge),
        };
    }
    let grants = crate::token::grants(&app.options.access, user.as_deref(), &scopes);
    let (token, iat) = match auth.issue(user.as_deref(), grants) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("token: {e}");
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e).into_response();
        }
    };
    let issued_at = kiln_core::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(iat));
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": auth.expires_in,
        "issued_at": issued_at,
    });
    let mut r = Response::new(Body::from(body.to_string()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_user(r, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_the_route_and_method() {
        let n = |m: Method, p: &str| need(&m, p);
        assert_eq!(n(Method::GET, "/v2/"), Some(Need::Login));
        assert_eq!(n(Method::GET, "/v2/_catalog"), Some(Need::Catalog));
        assert_eq!(
            n(Method::HEAD, "/v2/a/b/manifests/1"),
            Some(Need::Repo("a/b".into(), Action::Pull))
        );
        assert_eq!(
            n(Method::PUT, "/v2/a/manifests/1"),
            Some(Need::Repo("a".into(), Action::Push))
        );
        assert_eq!(
            n(Method::DELETE, "/v2/a/blobs/sha256:00"),
            Some(Need::Repo("a".into(), Action::Delete))
        );
        assert_eq!(
            n(Method::POST, "/v2/a/blobs/uploads/"),
            Some(Need::Repo("a".into(), Action::Push))
        );
        assert_eq!(
            n(Method::GET, "/v2/a/tags/list"),
            Some(Need::Repo("a".into(), Action::Pull))
        );
        assert_eq!(n(Method::GET, "/healthz"), None);
        assert_eq!(n(Method::GET, "/token"), None);
    }
}
