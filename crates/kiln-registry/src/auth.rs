//! Basic auth against an htpasswd file: every `/v2/` request needs the
//! credentials of a listed user (`/healthz` stays open).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::Digest as _;

use crate::error::ApiError;
use crate::App;

/// Remembered accepted credentials at most (then forgotten all at once).
const CACHE: usize = 1024;

pub(crate) async fn basic(State(app): State<App>, req: Request, next: Next) -> Response {
    let Some(htpasswd) = &app.options.htpasswd else {
        return next.run(req).await;
    };
    if !req.uri().path().starts_with("/v2") {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = sha2::Sha256::digest(given.as_bytes()).to_vec();
    let known = app
        .accepted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&key);
    let ok = known
        || given
            .strip_prefix("Basic ")
            .and_then(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                let (user, password) = pair.split_once(':')?;
                Some(htpasswd.check(user, password))
            })
            .unwrap_or(false);
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        )
        .header("www-authenticate", "Basic realm=\"kiln-registry\"")
        .into_response();
    }
    if !known {
        let mut accepted = app.accepted.lock().unwrap_or_else(|e| e.into_inner());
        if accepted.len() >= CACHE {
            accepted.clear();
        }
        accepted.insert(key);
    }
    next.run(req).await
}
