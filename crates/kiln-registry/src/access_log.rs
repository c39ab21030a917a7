//! One access-log line per request, and the byte counting `/metrics` and
//! the log share.
//!
//! The middleware wraps the request body and the response body in
//! counters; the line is written when the response body is dropped — once
//! the last byte went out or the client went away — so `bytes_out` and
//! `duration` are the whole transfer's, not the headers'. Fields: method,
//! route template, repository, status, bytes in and out, duration, user.
//! `text` is `key=value` pairs, `json` one object per line, `off` none
//! (the request metrics are counted regardless).

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Frame;
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::metrics::{route_of, Metrics};
use crate::App;

/// How access-log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
    Off,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            "off" => Ok(LogFormat::Off),
            other => Err(format!("log format {other:?}: expected text, json or off")),
        }
    }
}

/// Where lines go (stderr unless a test gives its own writer).
#[derive(Clone)]
pub struct AccessLog {
    pub format: LogFormat,
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessLog({:?})", self.format)
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog::new(LogFormat::Off, Box::new(std::io::stderr()))
    }
}

impl AccessLog {
    pub fn new(format: LogFormat, sink: Box<dyn Write + Send>) -> AccessLog {
        AccessLog {
            format,
            sink: Arc::new(Mutex::new(sink)),
        }
    }

    /// Lines in `format` on stderr.
    pub fn stderr(format: LogFormat) -> AccessLog {
        AccessLog::new(format, Box::new(std::io::stderr()))
    }

    fn write(&self, e: &Entry) {
        let line = match self.format {
            LogFormat::Off => return,
            LogFormat::Json => serde_json::json!({
                "time": kiln_core::rfc3339(std::time::SystemTime::now()),
                "method": e.method,
                "route": e.route,
                "repo": e.repo,
                "status": e.status,
                "bytes_in": e.bytes_in,
                "bytes_out": e.bytes_out,
                "duration_ms": e.duration_ms,
                "user": e.user,
            })
            .to_string(),
            LogFormat::Text => format!(
                "{} {} {} repo={} status={} in={} out={} ms={:.3} user={}",
                kiln_core::rfc3339(std::time::SystemTime::now()),
                e.method,
                e.route,
                e.repo.as_deref().unwrap_or("-"),
                e.status,
                e.bytes_in,
                e.bytes_out,
                e.duration_ms,
                e.user.as_deref().unwrap_or("-"),
            ),
        };
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(sink, "{line}");
    }
}

struct Entry {
    method: String,
    route: &'static str,
    repo: Option<String>,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    duration_ms: f64,
    user: Option<String>,
}

/// Written when the response body is dropped.
struct Finish {
    entry: Entry,
    start: Instant,
    received: Arc<AtomicU64>,
    metrics: Metrics,
    log: AccessLog,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let e = &mut self.entry;
        e.bytes_in = self.received.load(Ordering::Relaxed);
        e.duration_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        self.metrics.request(e.route, &e.method, e.status);
        self.metrics.bytes(e.bytes_in, e.bytes_out);
        self.log.write(e);
    }
}

/// A body that counts the data bytes passing through it.
struct Counted {
    inner: Body,
    count: Arc<AtomicU64>,
    /// For responses: the log line, with `bytes_out` kept up to date.
    finish: Option<Finish>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let n = data.len() as u64;
                self.count.fetch_add(n, Ordering::Relaxed);
                if let Some(f) = &mut self.finish {
                    f.entry.bytes_out += n;
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The outermost middleware: counts, logs, and sets the API version
/// header on every answer.
pub(crate) async fn access(State(app): State<App>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let (route, repo) = route_of(req.uri().path());
    let received = Arc::new(AtomicU64::new(0));
    let req = req.map(|b| {
        Body::new(Counted {
            inner: b,
            count: received.clone(),
            finish: None,
        })
    });
    let mut response = next.run(req).await;
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    let user = response
        .extensions()
        .get::<AuthUser>()
        .and_then(|u| u.0.clone());
    let finish = Finish {
        entry: Entry {
            method,
            route,
            repo,
            status: response.status().as_u16(),
            bytes_in: 0,
            bytes_out: 0,
            duration_ms: 0.0,
            user,
        },
        start,
        received,
        metrics: app.options.metrics.clone(),
        log: app.options.access_log.clone(),
    };
    response.map(|b| {
        Body::new(Counted {
            inner: b,
            count: Arc::new(AtomicU64::new(0)),
            finish: Some(finish),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer tests read back.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn entry() -> Entry {
        Entry {
            method: "GET".into(),
            route: "/v2/{name}/manifests/{reference}",
            repo: Some("a/b".into()),
            status: 200,
            bytes_in: 0,
            bytes_out: 527,
            duration_ms: 1.5,
            user: Some("alice".into()),
        }
    }

    #[test]
    fn lines_in_each_format() {
        let out = Lines::default();
        AccessLog::new(LogFormat::Json, Box::new(out.clone())).write(&entry());
        AccessLog::new(LogFormat::Text, Box::new(out.clone())).write(&entry());
        AccessLog::new(LogFormat::Off, Box::new(out.clone())).write(&entry());
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let j: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(j["route"], "/v2/{name}/manifests/{reference}");
        assert_eq!(j["repo"], "a/b");
        assert_eq!(j["status"], 200);
        assert_eq!(j["bytes_out"], 527);
        assert_eq!(j["user"], "alice");
        assert!(lines[1].ends_with(
            "GET /v2/{name}/manifests/{reference} repo=a/b status=200 in=0 out=527 ms=1.500 user=alice"
        ), "{}", lines[1]);
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml"
            .parse::<LogFormat>()
            .unwrap_err()
            .contains("text, json or off"));
    }
}
