//! `[limits]`: per-client request limits, answered with the spec's 429
//! `TOO_MANY_REQUESTS` and a `Retry-After` header. A client is its TCP
//! peer's IP address (a registry behind a proxy sees the proxy: limit
//! there). Two limits, each off unless configured:
//!
//! - a token bucket per address: `requests_per_second` refill, `burst`
//!   requests at once (default: one second's worth);
//! - `max_concurrent_uploads`: upload requests (POST, PATCH, PUT of blob
//!   uploads) in flight at once from one address, which bounds the disk
//!   and hashing work one client can start.
//!
//! `/healthz`, `/readyz` and `/metrics` are never limited (probes and
//! scrapers come from one address at a fixed rate). The middleware runs
//! before authentication, so an unauthenticated flood is limited too and
//! does not cost a bcrypt check per request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::names::{self, Route};
use crate::App;

/// `[limits]` in `kiln-registry.toml`; every key optional, none: no limit.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per second one client address may keep up (the bucket's
    /// refill rate).
    pub requests_per_second: Option<f64>,
    /// Requests one client address may send at once above that rate (the
    /// bucket's size); default `requests_per_second`, at least 1.
    pub burst: Option<u32>,
    /// Upload requests (POST, PATCH, PUT of blob uploads) one client
    /// address may have in flight at once.
    pub max_concurrent_uploads: Option<u32>,
}

impl LimitsConfig {
    /// Rejects values that would refuse everything or make no sense.
    pub fn check(&self) -> Result<(), String> {
        if let Some(r) = self.requests_per_second {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!(
                    "[limits] requests_per_second = {r}: give a positive number, or leave it out for no limit"
                ));
            }
        }
        if self.burst.is_some() && self.requests_per_second.is_none() {
            return Err("[limits] burst needs requests_per_second (the rate it refills at)".into());
        }
        if self.burst == Some(0) || self.max_concurrent_uploads == Some(0) {
            return Err(
                "[limits] burst and max_concurrent_uploads must be at least 1 (leave a key out for no limit)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The limits a server enforces and their per-address state; `Default`:
/// none. Clones share the state.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    rate: Option<(f64, f64)>,
    max_uploads: Option<u32>,
    state: Arc<Mutex<State_>>,
}

#[derive(Debug, Default)]
struct State_ {
    buckets: HashMap<IpAddr, Bucket>,
    uploads: HashMap<IpAddr, u32>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Past this many addresses, full buckets (clients idle long enough to
/// have refilled) are forgotten, so a scan of many addresses cannot grow
/// the map without bound.
const PRUNE_AT: usize = 4096;

impl Limits {
    /// The limits `[limits]` describes.
    pub fn new(config: &LimitsConfig) -> Limits {
        Limits {
            rate: config.requests_per_second.map(|r| {
                let burst = config.burst.map_or(r.max(1.0), f64::from);
                (r, burst)
            }),
            max_uploads: config.max_concurrent_uploads,
            state: Arc::default(),
        }
    }

    fn is_off(&self) -> bool {
        self.rate.is_none() && self.max_uploads.is_none()
    }

    /// Takes a token of `ip`'s bucket, or says how long until one refills.
    fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some((rate, burst)) = self.rate else {
            return Ok(());
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.buckets.len() >= PRUNE_AT {
            state
                .buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = state.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// Counts an upload request of `ip` in flight until the guard drops,
    /// or `None` when `ip` has the most it may.
    fn start_upload(&self, ip: IpAddr) -> Option<UploadGuard> {
        let Some(max) = self.max_uploads else {
            return Some(UploadGuard { limits: None, ip });
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let n = state.uploads.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(UploadGuard {
            limits: Some(self.clone()),
            ip,
        })
    }
}

struct UploadGuard {
    limits: Option<Limits>,
    ip: IpAddr,
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let Some(limits) = &self.limits else { return };
        let mut state = limits.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = state.uploads.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                state.uploads.remove(&self.ip);
            }
        }
    }
}

/// The peer's address of a connection, as the server records it for each
/// request (axum's `ConnectInfo`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

impl<L>
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, crate::slow::Listener<L>>,
    > for ClientAddr
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::slow::Listener<L>>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

fn too_many(message: String, retry_after: Duration) -> Response {
    // Whole seconds (the header's unit), rounded up so a client that waits
    // as told finds a token.
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
        .header("retry-after", secs.max(1).to_string())
        .into_response()
}

/// The middleware: refuses a request over its client's limits with 429.
pub(crate) async fn limit(State(app): State<App>, req: Request, next: Next) -> Response {
    let limits = &app.options.limits;
    let path = req.uri().path();
    if limits.is_off() || matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    // Without the peer (a router served in-process, as some tests do) all
    // requests count as one client.
    let ip = req
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0.ip());
    if let Err(wait) = limits.take(ip, Instant::now()) {
        return too_many(
            format!(
                "more than {} requests per second from {ip} ([limits] requests_per_second); retry later",
                limits.rate.map_or(0.0, |r| r.0)
            ),
            wait,
        );
    }
    let upload = matches!(
        names::route(path),
        Some(Route::UploadStart { .. } | Route::Upload { .. })
    ) && matches!(req.method().as_str(), "POST" | "PATCH" | "PUT");
    let _guard = if upload {
        match limits.start_upload(ip) {
            Some(g) => Some(g),
            None => {
                return too_many(
                    format!(
                        "{ip} has {} uploads in flight, the most one client may ([limits] max_concurrent_uploads); retry when one finishes",
                        limits.max_uploads.unwrap_or(0)
                    ),
                    Duration::from_secs(1),
                )
            }
        }
    } else {
        None
    };
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let l = Limits::new(&LimitsConfig {
            requests_per_second: Some(2.0),
            burst: Some(3),
            max_concurrent_uploads: None,
        });
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.take(ip, t).is_ok());
        }
        let wait = l.take(ip, t).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        // Another address has its own bucket.
        assert!(l.take(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), t).is_ok());
        // Half a second later one token (2/s) is back, and only one.
        let t2 = t + Duration::from_millis(500);
        assert!(l.take(ip, t2).is_ok());
        assert!(l.take(ip, t2).is_err());
    }

    #[test]
    fn uploads_in_flight_are_counted_until_dropped() {
        let l = Limits::new(&LimitsConfig {
            max_concurrent_uploads: Some(2),
            ..Default::default()
        });
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = l.start_upload(ip);
        let b = l.start_upload(ip);
        assert!(a.is_some() && b.is_some());
        assert!(l.start_upload(ip).is_none());
        drop(a);
        assert!(l.start_upload(ip).is_some());
    }

    #[test]
    fn check_refuses_nonsense() {
        let bad = |c: LimitsConfig| c.check().unwrap_err();
        bad(LimitsConfig {
            requests_per_second: Some(0.0),
            ..Default::default()
        });
        bad(LimitsConfig {
            burst: Some(5),
            ..Default::default()
        });
        bad(LimitsConfig {
            max_concurrent_uploads: Some(0),
            ..Default::default()
        });
        assert!(LimitsConfig::default().check().is_ok());
    }
}
