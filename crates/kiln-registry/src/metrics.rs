//! `/metrics`: counters in Prometheus' text exposition format.
//!
//! Requests by route template (`/v2/{name}/manifests/{reference}`, never
//! the raw path, so the label set stays small), method and status; bytes
//! received and sent; uploads in progress (a gauge read when scraped);
//! garbage-collection runs; for a pull-through cache, its hits and misses
//! by kind (manifest, blob) and the bytes it fetched from upstream.
//! [`Metrics`] is a cheap handle: the server counts requests through it,
//! and whoever runs GC calls [`Metrics::gc_run`] on the handle in
//! [`Options`](crate::Options).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::names::Route;

/// The registry's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    gc_runs: AtomicU64,
    /// Pull-through cache lookups: [manifest, blob] × [hit, miss].
    proxy_lookups: [[AtomicU64; 2]; 2],
    proxy_upstream_bytes: AtomicU64,
}

/// What a pull-through cache looked up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CacheKind {
    Manifest = 0,
    Blob = 1,
}

impl Metrics {
    /// A garbage-collection run finished.
    pub fn gc_run(&self) {
        self.0.gc_runs.fetch_add(1, Ordering::Relaxed);
    }

    /// A pull-through cache lookup: a hit when the cache held the content
    /// as the request came (nothing had to come from upstream but, for a
    /// tag past its TTL, a HEAD), a miss when it did not.
    pub(crate) fn proxy_lookup(&self, kind: CacheKind, hit: bool) {
        self.0.proxy_lookups[kind as usize][usize::from(!hit)].fetch_add(1, Ordering::Relaxed);
    }

    /// Manifest or blob bytes fetched from upstream and verified.
    pub(crate) fn proxy_fetched(&self, bytes: u64) {
        self.0
            .proxy_upstream_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn request(&self, route: &'static str, method: &str, status: u16) {
        let mut map = self.0.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((route, method.to_string(), status)).or_default() += 1;
    }

    pub(crate) fn bytes(&self, received: u64, sent: u64) {
        self.0.bytes_in.fetch_add(received, Ordering::Relaxed);
        self.0.bytes_out.fetch_add(sent, Ordering::Relaxed);
    }

    /// The exposition text, with `uploads` in progress now; with the
    /// pull-through cache's counters when `proxy`.
    pub fn render(&self, uploads: usize, proxy: bool) -> String {
        let mut out = String::new();
        out.push_str("# HELP kiln_registry_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE kiln_registry_requests_total counter\n");
        for ((route, method, status), n) in self
            .0
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "kiln_registry_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        let counters = [
            (
                "kiln_registry_received_bytes_total",
                "Request body bytes received.",
                "counter",
                self.0.bytes_in.load(Ordering::Relaxed),
            ),
            (
                "kiln_registry_sent_bytes_total",
                "Response body bytes sent.",
                "counter",
                self.0.bytes_out.load(Ordering::Relaxed),
            ),
            (
                "kiln_registry_uploads_in_progress",
                "Blob uploads begun and not yet finished or cancelled.",
                "gauge",
                uploads as u64,
            ),
            (
                "kiln_registry_gc_runs_total",
                "Garbage-collection runs.",
                "counter",
                self.0.gc_runs.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, kind, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        if proxy {
            self.render_proxy(&mut out);
        }
        out
    }

    fn render_proxy(&self, out: &mut String) {
        out.push_str("# HELP kiln_registry_proxy_requests_total Pull-through cache lookups by kind and result (hit: the cache held it as the request came).\n");
        out.push_str("# TYPE kiln_registry_proxy_requests_total counter\n");
        for (k, kind) in ["manifest", "blob"].into_iter().enumerate() {
            for (r, result) in ["hit", "miss"].into_iter().enumerate() {
                let n = self.0.proxy_lookups[k][r].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "kiln_registry_proxy_requests_total{{kind=\"{kind}\",result=\"{result}\"}} {n}"
                );
            }
        }
        let name = "kiln_registry_proxy_upstream_bytes_total";
        let _ = writeln!(
            out,
            "# HELP {name} Manifest and blob bytes fetched from upstream and verified.\n# TYPE {name} counter\n{name} {}",
            self.0.proxy_upstream_bytes.load(Ordering::Relaxed)
        );
    }
}

/// A path's route template and repository (the label and log fields).
pub(crate) fn route_of(path: &str) -> (&'static str, Option<String>) {
    match path {
        "/v2/" | "/v2" => return ("/v2/", None),
        "/v2/_catalog" => return ("/v2/_catalog", None),
        "/token" => return ("/token", None),
        "/metrics" => return ("/metrics", None),
        "/healthz" => return ("/healthz", None),
        "/readyz" => return ("/readyz", None),
        _ => {}
    }
    match crate::names::route(path) {
        Some(Route::Tags { name }) => ("/v2/{name}/tags/list", Some(name)),
        Some(Route::Manifest { name, .. }) => ("/v2/{name}/manifests/{reference}", Some(name)),
        Some(Route::Blob { name, .. }) => ("/v2/{name}/blobs/{digest}", Some(name)),
        Some(Route::UploadStart { name }) => ("/v2/{name}/blobs/uploads/", Some(name)),
        Some(Route::Upload { name, .. }) => ("/v2/{name}/blobs/uploads/{id}", Some(name)),
        Some(Route::Referrers { name, .. }) => ("/v2/{name}/referrers/{digest}", Some(name)),
        None => ("other", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_prometheus_text() {
        let m = Metrics::default();
        m.request("/v2/", "GET", 200);
        m.request("/v2/", "GET", 200);
        m.request("/v2/{name}/blobs/{digest}", "HEAD", 404);
        m.bytes(10, 20);
        m.clone().gc_run();
        let text = m.render(3, false);
        assert!(
            text.contains(
                "kiln_registry_requests_total{route=\"/v2/\",method=\"GET\",status=\"200\"} 2\n"
            ),
            "{text}"
        );
        assert!(text
            .contains("route=\"/v2/{name}/blobs/{digest}\",method=\"HEAD\",status=\"404\"} 1\n"));
        assert!(text.contains("kiln_registry_received_bytes_total 10\n"));
        assert!(text.contains("kiln_registry_sent_bytes_total 20\n"));
        assert!(text.contains("kiln_registry_uploads_in_progress 3\n"));
        assert!(text.contains("kiln_registry_gc_runs_total 1\n"));
        assert!(!text.contains("proxy"), "no cache, no cache counters");
    }

    #[test]
    fn cache_counters_render_when_proxying() {
        let m = Metrics::default();
        m.proxy_lookup(CacheKind::Blob, true);
        m.proxy_lookup(CacheKind::Blob, false);
        m.proxy_lookup(CacheKind::Blob, false);
        m.proxy_lookup(CacheKind::Manifest, true);
        m.proxy_fetched(1234);
        let text = m.render(0, true);
        for line in [
            "kiln_registry_proxy_requests_total{kind=\"manifest\",result=\"hit\"} 1\n",
            "kiln_registry_proxy_requests_total{kind=\"manifest\",result=\"miss\"} 0\n",
            "kiln_registry_proxy_requests_total{kind=\"blob\",result=\"hit\"} 1\n",
            "kiln_registry_proxy_requests_total{kind=\"blob\",result=\"miss\"} 2\n",
            "# TYPE kiln_registry_proxy_upstream_bytes_total counter\nkiln_registry_proxy_upstream_bytes_total 1234\n",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }

    #[test]
    fn routes_are_templates() {
        assert_eq!(
            route_of("/v2/a/b/manifests/latest"),
            ("/v2/{name}/manifests/{reference}", Some("a/b".to_string()))
        );
        assert_eq!(
            route_of("/v2/x/blobs/uploads/").0,
            "/v2/{name}/blobs/uploads/"
        );
        assert_eq!(route_of("/nope"), ("other", None));
    }
}
