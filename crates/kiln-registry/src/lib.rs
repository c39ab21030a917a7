//! kiln-registry: `kiln serve`, an OCI distribution 1.1 registry server.
//!
//! The server ([`router`], [`serve`]) speaks the distribution API over a
//! small [`Storage`] trait in containerd's shape: blobs stored once by
//! digest whatever repositories hold them, per-repository links saying
//! which blobs a repository holds, named uploads, and manifests, tags and
//! referrers per repository. The server verifies, the storage keeps: every
//! byte received is hashed (sha256, sha384 or sha512, as the client's digest
//! names) and compared before the storage is asked to make it visible; a
//! wrong digest is a 400 `DIGEST_INVALID` and the upload is dropped.
//! Repository names are checked against the spec's grammar before any
//! storage call, so no name reaches a path it could climb out of.
//!
//! [`FsStorage`] is the filesystem implementation, a layout of its own
//! under one root rather than kiln-store's blob store: a registry needs
//! sha512 content, per-repository links and tags written by many clients at
//! once (kiln-store's tags live in one `index.json`), and uploads addressed
//! by id that grow chunk by chunk across requests; kiln-store has none of
//! these and should not grow them for a server's sake.
//!
//! Modules: `names` (grammar and routing), `blobs` (GET/HEAD with ranges,
//! DELETE), `uploads` (POST, PATCH, PUT, mounts), `manifests` (manifests
//! and referrers), `listing` (tags and catalog), `hash`, `fs`, `storage`.
//! Operating it: `config` (`kiln-registry.toml`), `auth` (Basic and
//! Bearer, the `/token` endpoint), `access` (`[[access]]` rules), `token`
//! (JWTs), `tls`, `policy` (the `Options` the server holds), `retention`,
//! `metrics` (`/metrics`), `access_log`; `proxy`, the pull-through cache
//! (`--proxy`), which fills the storage from an upstream registry before
//! the ordinary handlers serve it.

mod access;
mod access_log;
mod auth;
mod blobs;
pub mod cli;
mod config;
mod error;
mod fs;
pub mod gc;
mod hash;
mod limits;
mod listing;
mod manifests;
mod metrics;
mod names;
mod object;
mod policy;
mod proxy;
pub mod retention;
mod signed_location;
mod slow;
mod storage;
#[cfg(feature = "testing")]
pub mod testsuite;
mod tls;
mod token;
mod uploads;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use access::{Action, Rule};
pub use access_log::{AccessLog, LogFormat};
pub use config::{
    AuthConfig, Config, ConfigError, GcConfig, PolicyConfig, ProxyConfig, StorageConfig, TlsConfig,
    TokenConfig, DEFAULT_TAG_TTL,
};
pub use error::StorageError;
pub use fs::FsStorage;
pub use gc::{Garbage, GcOptions, GcReport};
pub use limits::{Limits, LimitsConfig};
pub use metrics::Metrics;
pub use object::{ObjectStorage, S3Config, StorageUrlError, DEFAULT_PART_SIZE};
pub use policy::{Htpasswd, HtpasswdError, Options};
pub use proxy::{Proxy, ProxySettings};
pub use retention::RetentionRule;
pub use slow::HEAD_TIMEOUT;
pub use storage::{
    BlobEntry, BlobReader, ManifestEntry, ManifestInfo, StagedEntry, Storage, UploadEntry,
    UploadSink, UploadState, UploadWriter,
};
pub use tls::{server_config, TlsError, TlsListener};
pub use token::{SigningKey, TokenAuth};

use error::{ApiError, ApiResult};
use names::Route;

/// Manifests larger than this are refused (the spec's suggested 4 MiB).
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    storage: Arc<dyn Storage>,
    /// Per upload: a lock (one request writes an upload at a time) and the
    /// running hash of what it holds.
    uploads: Arc<Mutex<HashMap<String, uploads::Slot>>>,
    options: Arc<Options>,
    /// Held while a tag of an immutable repository is checked and written.
    tag_lock: Arc<Mutex<()>>,
    /// Authorization headers bcrypt already accepted (their sha256), so a
    /// client's every request does not pay for bcrypt again.
    accepted: Arc<Mutex<std::collections::HashSet<Vec<u8>>>>,
    /// Signs the upload state a storage leaves in `Location` URLs.
    signer: Arc<signed_location::Signer>,
}

/// The registry's routes over `storage`, with `options`' policies.
pub fn router(storage: Arc<dyn Storage>, options: Options) -> Router {
    let app = App {
        storage,
        uploads: Arc::default(),
        signer: Arc::new(signed_location::Signer::new(
            options.upload_secret.as_deref(),
        )),
        options: Arc::new(options),
        tag_lock: Arc::default(),
        accepted: Arc::default(),
    };
    Router::new()
        .route("/v2/", get(base))
        .route("/v2", get(base))
        .route("/v2/_catalog", get(listing::catalog))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/token",
            get(auth::token_endpoint).post(auth::token_endpoint),
        )
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            limits::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            access_log::access,
        ))
        .with_state(app)
}

/// Serves `storage` on `listener` until `shutdown` completes; requests in
/// flight (uploads included) finish first. A connection that takes longer
/// than [`HEAD_TIMEOUT`] to send a request's headers is closed.
/// `listener` is a `tokio::net::TcpListener` or, for https, a
/// [`TlsListener`].
pub async fn serve<L, F>(
    listener: L,
    storage: Arc<dyn Storage>,
    options: Options,
    shutdown: F,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    F: Future<Output = ()> + Send + 'static,
{
    // The peer's address: `[limits]` counts per client.
    let app = router(storage, options).into_make_service_with_connect_info::<limits::ClientAddr>();
    axum::serve(slow::Listener { inner: listener }, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// `listener` with TCP_NODELAY on each connection: without it a response
/// written in two pieces (headers, then a body) waits for the client's
/// delayed ACK, 40 ms tails under load.
pub fn tcp_nodelay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// Ready when the storage can be written (`503` with the reason if not).
async fn readyz(State(app): State<App>) -> Response {
    let storage = app.storage.clone();
    match tokio::task::spawn_blocking(move || storage.check_ready()).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("storage: {e}\n")).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    let uploads = app.uploads.lock().unwrap_or_else(|e| e.into_inner()).len();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.options
            .metrics
            .render(uploads, app.options.proxy.is_some()),
    )
        .into_response()
}

async fn base() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
}

async fn dispatch(State(app): State<App>, req: Request) -> Response {
    match route(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(app: App, req: Request) -> ApiResult {
    let Some(route) = names::route(req.uri().path()) else {
        return Err(ApiError::not_found());
    };
    let name = match &route {
        Route::Tags { name }
        | Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::UploadStart { name }
        | Route::Upload { name, .. }
        | Route::Referrers { name, .. } => name.clone(),
    };
    if !names::valid_name(&name) {
        return Err(ApiError::name_invalid(&name));
    }
    let method = req.method().clone();
    if method == Method::DELETE
        && app.options.delete_disabled
        && matches!(route, Route::Blob { .. } | Route::Manifest { .. })
    {
        return Err(ApiError::unsupported(
            "deletes are disabled on this registry ([policy] delete = false)",
        ));
    }
    if let Some(proxy) = app.options.proxy.clone() {
        let q = query(&req);
        if let Some(answer) = proxy::route(&app, &proxy, &name, &route, &method, &q).await? {
            return Ok(answer);
        }
    }
    if let (Route::Manifest { reference, .. }, &Method::PUT) = (&route, &method) {
        let put = manifests::handle(&app, &name, reference, Method::PUT, req).await?;
        if put.status() == StatusCode::CREATED && !app.options.retention.is_empty() {
            let immutable = app.options.tags_immutable(&name);
            retention::apply(&*app.storage, &app.options.retention, immutable, &name)?;
        }
        return Ok(put);
    }
    match (route, method) {
        (Route::Tags { .. }, Method::GET) => listing::tags(&app, &name, &req),
        (Route::Referrers { digest, .. }, Method::GET) => {
            manifests::referrers(&app, &name, &digest, &req)
        }
        (Route::Blob { digest, .. }, m) => blobs::handle(&app, &name, &digest, m, req).await,
        (Route::Manifest { reference, .. }, m) => {
            manifests::handle(&app, &name, &reference, m, req).await
        }
        (Route::UploadStart { .. }, Method::POST) => uploads::start(&app, &name, req).await,
        (Route::Upload { id, .. }, m) => uploads::handle(&app, &name, &id, m, req).await,
        _ => Err(ApiError::unsupported("method not allowed here")),
    }
}

/// The query's pairs, decoded.
pub(crate) fn query(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn query_value<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A digest from the client, or 400 DIGEST_INVALID.
pub(crate) fn parse_digest(s: &str) -> ApiResult<kiln_core::Digest> {
    s.parse()
        .map_err(|e: kiln_core::DigestError| ApiError::digest_invalid(e.to_string()))
}

/// Whether `If-None-Match` names `etag` (or `*`).
pub(crate) fn not_modified(req: &Request, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            let v = v.trim();
            v == "*" || v == etag || v.trim_start_matches("W/") == etag
        })
}

/// A response with `headers` and `body` (headers that are not valid
/// values are left out; every value kiln builds is valid).
pub(crate) fn respond(status: StatusCode, headers: &[(&str, String)], body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}
