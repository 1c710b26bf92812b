//! Prometheus metrics of the ingest path, served as text on `GET /metrics` on a port of its own.
//!
//! [`Metrics`] holds the counters that the services update (events appended, events rejected by
//! reason, append latency, outcomes computed, open streams); [`serve`] answers scrapes with the
//! OpenMetrics text format over plain HTTP/1.1, on hyper, which tonic already brings in.
//! `GET /health` answers the health details as JSON: the archive's lag (`serve --archive`) and a
//! follower's lag behind its primary (`serve --follow`), with their last errors.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

/// The default address of the metrics endpoint: loopback, so nothing is exposed unless asked for.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// The content type of the OpenMetrics text exposition format, which Prometheus scrapes.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// The service's metrics and the registry that exposes them. Cheap to update from any task.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    events_appended: Counter,
    events_rejected: Family<ReasonLabel, Counter>,
    append_latency: Histogram,
    outcomes_computed: Family<OutcomeLabel, Counter>,
    open_streams: Gauge,
    archive_archived_seq: Gauge,
    archive_events_behind: Gauge,
    archive_seconds_behind: Gauge<f64, std::sync::atomic::AtomicU64>,
    archive_failing: Gauge,
    archive_writer_epoch: Gauge,
    follower_events_behind: Gauge,
    follower_seconds_behind: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// What `GET /health` shows: the archive's and the follower's lag, as JSON.
    details: std::sync::Mutex<serde_json::Map<String, serde_json::Value>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered under the `myolog_` prefix, all at zero.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("myolog");
        let events_appended = Counter::default();
        registry.register(
            "events_appended",
            "Events durably appended to the log",
            events_appended.clone(),
        );
        let events_rejected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "events_rejected",
            "Events rejected before reaching the log, by reason",
            events_rejected.clone(),
        );
        // 100 µs to about 3.3 s: a group-committed, fsynced append sits in the millisecond buckets.
        let append_latency = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register_with_unit(
            "append_latency",
            "Time from receiving an event to its durable append",
            Unit::Seconds,
            append_latency.clone(),
        );
        let outcomes_computed = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "outcomes_computed",
            "Outcomes computed, by outcome",
            outcomes_computed.clone(),
        );
        let open_streams = Gauge::default();
        registry.register(
            "open_streams",
            "gRPC streams currently open",
            open_streams.clone(),
        );
        let archive_archived_seq = Gauge::default();
        registry.register(
            "archive_archived_seq",
            "The last log sequence sealed into the archive",
            archive_archived_seq.clone(),
        );
        let archive_events_behind = Gauge::default();
        registry.register(
            "archive_lag_events",
            "Durable events not yet archived: what a lost disk would lose now",
            archive_events_behind.clone(),
        );
        let archive_seconds_behind = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "archive_lag",
            "Age of the oldest durable event not yet archived",
            Unit::Seconds,
            archive_seconds_behind.clone(),
        );
        let archive_failing = Gauge::default();
        registry.register(
            "archive_failing",
            "1 while the archiver's last attempt failed (an object-store outage), else 0",
            archive_failing.clone(),
        );
        let archive_writer_epoch = Gauge::default();
        registry.register(
            "archive_writer_epoch",
            "The writer epoch this server archives as (raised by each promotion)",
            archive_writer_epoch.clone(),
        );
        let follower_events_behind = Gauge::default();
        registry.register(
            "follower_lag_events",
            "Events the primary holds that this follower does not yet",
            follower_events_behind.clone(),
        );
        let follower_seconds_behind = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "follower_lag",
            "Age of this follower's newest event while it is behind its primary",
            Unit::Seconds,
            follower_seconds_behind.clone(),
        );
        Self {
            registry,
            archive_archived_seq,
            archive_events_behind,
            archive_seconds_behind,
            archive_failing,
            archive_writer_epoch,
            follower_events_behind,
            follower_seconds_behind,
            details: std::sync::Mutex::default(),
            events_appended,
            events_rejected,
            append_latency,
            outcomes_computed,
            open_streams,
        }
    }

    /// Counts `n` events durably appended.
    pub fn events_appended(&self, n: u64) {
        self.events_appended.inc_by(n);
    }

    /// Counts one event rejected for `reason` (a short, stable, low-cardinality code).
    pub fn event_rejected(&self, reason: &str) {
        self.events_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Records how long one append took, from receipt to durability.
    pub fn observe_append(&self, latency: Duration) {
        self.append_latency.observe(latency.as_secs_f64());
    }

    /// Counts one computed outcome of kind `outcome` (for example `doi` or `tis`).
    pub fn outcome_computed(&self, outcome: &str) {
        self.outcomes_computed
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a stream as open until the returned guard is dropped.
    #[must_use = "the stream counts as open only while the guard lives"]
    pub fn stream_opened(self: &Arc<Self>) -> OpenStream {
        self.open_streams.inc();
        OpenStream {
            metrics: Arc::clone(self),
        }
    }

    /// Records the archiver's lag (gauges and the `archive` entry of `GET /health`).
    pub fn set_archive_lag(&self, lag: &myolog_archive::ArchiveLag) {
        self.archive_archived_seq
            .set(i64::try_from(lag.archived_seq).unwrap_or(i64::MAX));
        self.archive_events_behind
            .set(i64::try_from(lag.events_behind).unwrap_or(i64::MAX));
        self.archive_seconds_behind.set(lag.seconds_behind);
        self.archive_failing
            .set(i64::from(lag.last_error.is_some()));
        self.archive_writer_epoch
            .set(i64::try_from(lag.writer_epoch).unwrap_or(i64::MAX));
        self.set_detail(
            "archive",
            serde_json::json!({
                "archived_seq": lag.archived_seq,
                "durable_seq": lag.durable_seq,
                "lag_events": lag.events_behind,
                "lag_seconds": lag.seconds_behind,
                "segments_sealed": lag.segments_sealed,
                "last_error": lag.last_error,
                "writer_epoch": lag.writer_epoch,
            }),
        );
    }

    /// Records a follower's lag (gauges and the `follower` entry of `GET /health`).
    pub fn set_follower_lag(&self, primary: &str, lag: &FollowerLag) {
        self.follower_events_behind
            .set(i64::try_from(lag.events_behind).unwrap_or(i64::MAX));
        self.follower_seconds_behind.set(lag.seconds_behind);
        self.set_detail(
            "follower",
            serde_json::json!({
                "primary": primary,
                "local_seq": lag.local_seq,
                "primary_seq": lag.primary_seq,
                "lag_events": lag.events_behind,
                "lag_seconds": lag.seconds_behind,
                "last_error": lag.last_error,
            }),
        );
    }

    fn set_detail(&self, key: &str, value: serde_json::Value) {
        self.details
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key.to_owned(), value);
    }

    /// The health details as one JSON object (`{}` for a plain primary).
    #[must_use]
    pub fn health_details(&self) -> String {
        let details = self
            .details
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        serde_json::Value::Object(details).to_string()
    }

    /// The current values in the OpenMetrics text format.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// An open stream, counted in `myolog_open_streams` until dropped.
#[derive(Debug)]
pub struct OpenStream {
    metrics: Arc<Metrics>,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.metrics.open_streams.dec();
    }
}

/// Binds the metrics endpoint's listener (separately from [`serve`], so a bad address fails at start).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Answers `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics endpoint: connection ended with an error");
            }
        });
    }
}

fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = status;
        response
    };
    let health = request.uri().path() == "/health";
    if request.uri().path() != "/metrics" && !health {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /health\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if health {
        let mut response = Response::new(Full::new(Bytes::from(metrics.health_details())));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return response;
    }
    let mut response = Response::new(Full::new(Bytes::from(metrics.encode())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS),
    );
    response
}

/// How far the follower is behind its primary: what the metrics endpoint reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FollowerLag {
    /// The follower's durable head.
    pub local_seq: u64,
    /// The primary's head when last asked.
    pub primary_seq: u64,
    /// `primary_seq - local_seq`.
    pub events_behind: u64,
    /// Age of the follower's newest event while it is behind (0 when caught up).
    pub seconds_behind: f64,
    /// The last error reaching the primary, cleared by the next success.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, method: &str, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn scrape_shows_every_metric_with_its_value() {
        let metrics = Arc::new(Metrics::new());
        metrics.events_appended(3);
        metrics.event_rejected("invalid_argument");
        metrics.event_rejected("invalid_argument");
        metrics.event_rejected("duplicate");
        metrics.observe_append(Duration::from_millis(2));
        metrics.outcome_computed("doi");
        let held = metrics.stream_opened();
        let released = metrics.stream_opened();
        drop(released);

        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::clone(&metrics), async {
            let _ = stopped.await;
        }));

        let response = get(addr, "GET", "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains("content-type: application/openmetrics-text"),
            "{response}"
        );
        for line in [
            "myolog_events_appended_total 3",
            "myolog_events_rejected_total{reason=\"invalid_argument\"} 2",
            "myolog_events_rejected_total{reason=\"duplicate\"} 1",
            "# TYPE myolog_append_latency_seconds histogram",
            "myolog_append_latency_seconds_count 1",
            "myolog_append_latency_seconds_bucket{le=\"0.0032\"} 1",
            "myolog_append_latency_seconds_bucket{le=\"0.0016\"} 0",
            "myolog_outcomes_computed_total{outcome=\"doi\"} 1",
            "myolog_open_streams 1",
            "# EOF",
        ] {
            assert!(
                response.lines().any(|l| l == line),
                "missing {line:?} in\n{response}"
            );
        }

        metrics.set_archive_lag(&myolog_archive::ArchiveLag {
            archived_seq: 7,
            durable_seq: 9,
            events_behind: 2,
            seconds_behind: 1.5,
            segments_sealed: 1,
            last_error: Some("bucket unreachable".into()),
            writer_epoch: 4,
        });
        let response = get(addr, "GET", "/metrics").await;
        for line in [
            "myolog_archive_archived_seq 7",
            "myolog_archive_lag_events 2",
            "myolog_archive_lag_seconds 1.5",
            "myolog_archive_failing 1",
            "myolog_archive_writer_epoch 4",
        ] {
            assert!(
                response.lines().any(|l| l == line),
                "missing {line:?} in\n{response}"
            );
        }
        let health = get(addr, "GET", "/health").await;
        assert!(
            health.contains(r#""lag_events":2"#)
                && health.contains(r#""writer_epoch":4"#)
                && health.contains("bucket unreachable"),
            "{health}"
        );

        drop(held);
        let response = get(addr, "GET", "/metrics").await;
        assert!(response.lines().any(|l| l == "myolog_open_streams 0"));

        assert!(get(addr, "GET", "/").await.starts_with("HTTP/1.1 404"));
        let post = get(addr, "POST", "/metrics").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
