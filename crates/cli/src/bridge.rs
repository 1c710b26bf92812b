//! `myolog bridge`: a long-running REDCap connector, one process per study. REDCap's Data Entry
//! Trigger (a form-encoded POST carrying only ids) names a saved record; the bridge pulls that record
//! through the REDCap API, asking only for the fields the mapping uses (`fields[]`), plans it with
//! `myolog-edc` against the ledger of what was sent, and sends the changes through Ingest.Append as
//! `myolog import odm` does (same batches, same retries, same ledger). An incremental poll
//! (`dateRangeBegin`) finds records the trigger never reports (imports, API writes, a trigger lost
//! while the bridge was down).
//!
//! Nothing lost: a triggered or polled record id is written to the state file (atomically) before the
//! trigger is answered, and leaves it only once its changes are acknowledged and the ledger written;
//! after a restart the pending ids are pulled again. Nothing doubled: event ids are deterministic, so
//! whatever was stored before a crash is answered as a duplicate.
//!
//! Refused at start: a REDCap token whose exports are de-identified. REDCap removes date fields
//! from a de-identified export (the column is absent, not blank), so a record exported without the
//! visit-date column means clinical dates would be lost; the bridge says so and stops.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use myolog_edc::mapping::{Mapping, SiteSource};
use myolog_edc::plan::SentLedger;
use myolog_edc::redcap::{RedcapMetadata, parse_data_entry_trigger, records_to_rows};
use myolog_proto::v1::ingest_client::IngestClient;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::client::{Bearer, ServerTls};
use crate::edc::{
    IngestWithToken, Retry, default_ledger_path, load_ledger, load_mapping, send_changes,
    wire_events, write_atomically,
};

/// `myolog bridge`.
#[derive(Debug, Clone, Args)]
pub struct BridgeArgs {
    /// REDCap API endpoint, e.g. `https://redcap.example.org/api/`.
    #[arg(long, env = "MYOLOG_BRIDGE_REDCAP_URL")]
    pub redcap_url: String,
    /// File holding the REDCap API token of the project (a file, so it never shows in `ps`).
    #[arg(long, env = "MYOLOG_BRIDGE_REDCAP_TOKEN_FILE")]
    pub redcap_token_file: PathBuf,
    /// CA certificate (PEM) of REDCap's HTTPS certificate, when the system's store does not know it.
    #[arg(long, env = "MYOLOG_BRIDGE_REDCAP_CA")]
    pub redcap_ca: Option<PathBuf>,
    /// The study's mapping file.
    #[arg(long, env = "MYOLOG_BRIDGE_MAPPING")]
    pub mapping: PathBuf,
    /// Myolog server URL; the integration token is read from MYOLOG_TOKEN.
    #[arg(long, env = "MYOLOG_BRIDGE_ADDR")]
    pub addr: String,
    /// Address of the bridge's HTTP endpoint: the Data Entry Trigger (`POST /trigger`), `/healthz`
    /// and `/metrics`.
    #[arg(long, env = "MYOLOG_BRIDGE_LISTEN", default_value = "127.0.0.1:8790")]
    pub listen: SocketAddr,
    /// File holding a shared secret the trigger URL must carry (`/trigger?secret=...`): 16 to 128
    /// characters from A-Z a-z 0-9 _ -.
    #[arg(long, env = "MYOLOG_BRIDGE_TRIGGER_SECRET_FILE")]
    pub trigger_secret_file: Option<PathBuf>,
    /// The REDCap project id (as in its URLs, `pid=`): a trigger from another project is refused
    /// instead of pulling a record id that means another subject there.
    #[arg(long, env = "MYOLOG_BRIDGE_REDCAP_PROJECT_ID")]
    pub redcap_project_id: Option<u64>,
    /// Seconds between two incremental polls of REDCap (records changed since the last one).
    #[arg(long, env = "MYOLOG_BRIDGE_POLL_SECS", default_value_t = 300)]
    pub poll_secs: u64,
    /// Seconds each poll reaches back before the previous one began: REDCap reads `dateRangeBegin`
    /// in its server's local time, so a day covers any time zone; a record seen twice is planned as
    /// unchanged and sends nothing.
    #[arg(
        long,
        env = "MYOLOG_BRIDGE_POLL_OVERLAP_SECS",
        default_value_t = 86_400
    )]
    pub poll_overlap_secs: u64,
    /// The bridge's state (pending record ids, last poll): default `<mapping>.bridge.json`.
    #[arg(long, env = "MYOLOG_BRIDGE_STATE")]
    pub state: Option<PathBuf>,
    /// The ledger of what was sent: default `<mapping>.ledger.json` (shared with `import odm`).
    #[arg(long, env = "MYOLOG_BRIDGE_LEDGER")]
    pub ledger: Option<PathBuf>,
    #[command(flatten)]
    pub tls: ServerTls,
}

/// Why the bridge cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{0}")]
    Import(#[from] crate::edc::ImportError),
    #[error("{0}")]
    Config(String),
    #[error("REDCap: {0}")]
    Redcap(String),
    /// REDCap (or the network to it) did not answer: worth waiting for.
    #[error("{0}")]
    RedcapUnreachable(RedcapCallError),
    #[error(
        "REDCap token's export rights are de-identified: REDCap removes date fields ({field}) from \
         its exports, so clinical dates would be lost. Give the API user \"Full Data Set\" export \
         rights for the project's instruments and restart the bridge."
    )]
    DeIdentified { field: String },
}

/// A call to REDCap that failed: the server or the network (retried), or an answer that cannot be
/// used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedcapCallError {
    #[error("REDCap unreachable: {0}")]
    Unreachable(String),
    #[error("REDCap answered {status}: {body}")]
    Status { status: u16, body: String },
}

impl From<RedcapCallError> for BridgeError {
    fn from(error: RedcapCallError) -> Self {
        match error {
            RedcapCallError::Unreachable(_) => BridgeError::RedcapUnreachable(error),
            RedcapCallError::Status { .. } => BridgeError::Redcap(error.to_string()),
        }
    }
}

/// The REDCap API over HTTP(S), form-encoded POSTs as REDCap documents them.
#[derive(Debug, Clone)]
pub struct RedcapClient {
    http: reqwest::Client,
    url: String,
    token: String,
}

/// `application/x-www-form-urlencoded` of one component.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

impl RedcapClient {
    /// A client of the API at `url` with the project's token; `ca` adds a CA for REDCap's HTTPS.
    pub fn new(url: &str, token: &str, ca: Option<&Path>) -> Result<Self, BridgeError> {
        // reqwest's rustls without a bundled provider (the workspace's choice, shared with
        // object_store): ring is installed as the process-wide provider, once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca)
                .map_err(|error| BridgeError::Config(format!("{}: {error}", ca.display())))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|error| BridgeError::Config(format!("{}: {error}", ca.display())))?;
            builder = builder.tls_certs_merge([certificate]);
        }
        let http = builder
            .build()
            .map_err(|error| BridgeError::Config(format!("HTTP client: {error}")))?;
        Ok(Self {
            http,
            url: url.to_string(),
            token: token.to_string(),
        })
    }

    /// One API call: the token and `params`, form-encoded; the body of a 200 answer.
    pub async fn call(&self, params: &[(String, String)]) -> Result<String, RedcapCallError> {
        let mut body = format!("token={}", form_encode(&self.token));
        for (key, value) in params {
            body.push('&');
            body.push_str(&form_encode(key));
            body.push('=');
            body.push_str(&form_encode(value));
        }
        let response = self
            .http
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| RedcapCallError::Unreachable(error.to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| RedcapCallError::Unreachable(error.to_string()))?;
        if !status.is_success() {
            let body: String = text.chars().take(300).collect();
            return Err(RedcapCallError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(text)
    }

    /// `content=metadata`: the data dictionary.
    pub async fn metadata(&self) -> Result<String, RedcapCallError> {
        self.call(&params(&[("content", "metadata"), ("format", "json")]))
            .await
    }

    /// `content=record`, flat JSON, with the data access group, limited to `fields` and, when
    /// given, to `records` and to records changed since `since` (`YYYY-MM-DD HH:MM:SS`).
    pub async fn records(
        &self,
        records: &[String],
        fields: &[String],
        since: Option<&str>,
    ) -> Result<String, RedcapCallError> {
        let mut list = params(&[
            ("content", "record"),
            ("format", "json"),
            ("type", "flat"),
            ("exportDataAccessGroups", "true"),
        ]);
        for (index, record) in records.iter().enumerate() {
            list.push((format!("records[{index}]"), record.clone()));
        }
        for (index, field) in fields.iter().enumerate() {
            list.push((format!("fields[{index}]"), field.clone()));
        }
        if let Some(since) = since {
            list.push(("dateRangeBegin".into(), since.to_string()));
        }
        self.call(&list).await
    }
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The REDCap fields the bridge asks for: the record id, every mapped item (a checkbox option
/// `f___c` is asked as its field `f`), the visit date, the enrolment items and the status field of
/// every form they are on; nothing else leaves REDCap.
pub fn requested_fields(mapping: &Mapping, metadata: &RedcapMetadata) -> Vec<String> {
    let mut fields: Vec<String> = vec![metadata.record_id_field().to_string()];
    let mut add = |name: &str| {
        let base = name.split_once("___").map_or(name, |(base, _)| base);
        if !base.is_empty() && !fields.iter().any(|known| known == base) {
            fields.push(base.to_string());
        }
    };
    for item in mapping.items.keys() {
        add(item);
    }
    add(&mapping.visits.date_item);
    if let Some(item) = &mapping.visits.visit_item {
        add(item);
    }
    if let Some(enrolment) = &mapping.enrolment {
        add(&enrolment.arm_item);
        add(&enrolment.date_item);
        if let (SiteSource::Item, Some(item)) = (enrolment.site, &enrolment.site_item) {
            add(item);
        }
    }
    let forms: Vec<String> = fields
        .iter()
        .filter_map(|field| metadata.form_of(field).map(str::to_string))
        .collect();
    for form in forms {
        let status = format!("{form}{}", mapping.form_status.suffix);
        if !fields.contains(&status) {
            fields.push(status);
        }
    }
    fields
}

/// Whether a record export was made with de-identified rights: the date column is absent from
/// the records REDCap returned (a full export always has the key, blank or not).
pub fn dates_removed(records_json: &str, date_field: &str) -> bool {
    let Ok(serde_json::Value::Array(records)) = serde_json::from_str(records_json) else {
        return false;
    };
    !records.is_empty()
        && records
            .iter()
            .all(|record| record.get(date_field).is_none())
}

/// A queued record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// Unix seconds it was first queued (the lag is measured from here).
    pub since: u64,
    /// Bumped by every trigger or poll that names it: a record named again while it is being sent
    /// stays queued, since the change that named it may be newer than what was pulled.
    pub ticket: u64,
}

impl BridgeState {
    /// Queues a record, or marks a queued one as named again.
    pub fn queue(&mut self, record: &str, now: u64) {
        self.pending
            .entry(record.to_string())
            .and_modify(|queued| queued.ticket += 1)
            .or_insert(Queued {
                since: now,
                ticket: 0,
            });
    }

    /// Takes a record off the queue if nothing named it again since `ticket` was read.
    pub fn done(&mut self, record: &str, ticket: u64) {
        if self
            .pending
            .get(record)
            .is_some_and(|queued| queued.ticket == ticket)
        {
            self.pending.remove(record);
        }
    }
}

/// What survives a restart: the record ids not yet sent (with when they were queued) and when the
/// last successful poll began.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeState {
    /// Record id -> when it was queued and how often.
    pub pending: BTreeMap<String, Queued>,
    /// Unix seconds the last successful poll began; `None`: never polled (the first poll takes every
    /// record).
    pub last_poll_began: Option<u64>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| duration.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds, REDCap's `dateRangeBegin` format.
pub fn redcap_time(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let seconds = unix % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// The bridge's counters and the last error, for `/metrics` and `/healthz`.
#[derive(Debug)]
pub struct BridgeMetrics {
    registry: Registry,
    records_pulled: Counter,
    events_sent: Counter,
    events_present: Counter,
    events_refused: Counter,
    discrepancies: Counter,
    errors: Counter,
    lag: Gauge,
    pending: Gauge,
    last_error_time: Gauge,
    last_error: Mutex<Option<String>>,
}

impl BridgeMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("myolog_bridge");
        let records_pulled = Counter::default();
        registry.register(
            "records_pulled",
            "REDCap records pulled through the API",
            records_pulled.clone(),
        );
        let events_sent = Counter::default();
        registry.register(
            "events_sent",
            "Events stored by Myolog",
            events_sent.clone(),
        );
        let events_present = Counter::default();
        registry.register(
            "events_already_present",
            "Events Myolog answered as already stored",
            events_present.clone(),
        );
        let events_refused = Counter::default();
        registry.register(
            "events_refused",
            "Events Myolog refused (see the bridge's log)",
            events_refused.clone(),
        );
        let discrepancies = Counter::default();
        registry.register(
            "discrepancies",
            "Source records not imported (unmapped, out of range, ...; see the bridge's log)",
            discrepancies.clone(),
        );
        let errors = Counter::default();
        registry.register(
            "errors",
            "Failed pulls, polls and sends (retried)",
            errors.clone(),
        );
        let lag = Gauge::default();
        registry.register_with_unit(
            "lag",
            "Age of the oldest record waiting to be sent (0 when none waits)",
            Unit::Seconds,
            lag.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "pending_records",
            "Records waiting to be pulled and sent",
            pending.clone(),
        );
        let last_error_time = Gauge::default();
        registry.register(
            "last_error_timestamp",
            "Unix time of the last error (0: none since start)",
            last_error_time.clone(),
        );
        Self {
            registry,
            records_pulled,
            events_sent,
            events_present,
            events_refused,
            discrepancies,
            errors,
            lag,
            pending,
            last_error_time,
            last_error: Mutex::new(None),
        }
    }

    fn error(&self, text: String) {
        tracing::warn!(error = %text, "bridge");
        self.errors.inc();
        self.last_error_time
            .set(i64::try_from(now_unix()).unwrap_or(i64::MAX));
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(text);
        }
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Everything the bridge's tasks share.
#[derive(Debug)]
struct Shared {
    state: Mutex<BridgeState>,
    state_path: PathBuf,
    wake: Notify,
    metrics: BridgeMetrics,
    secret: Option<String>,
    project_id: Option<u64>,
}

impl Shared {
    /// Applies `change` to the state and writes it; on a failed write the change is undone.
    fn update(&self, change: impl FnOnce(&mut BridgeState)) -> Result<(), String> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| "the bridge state lock is poisoned".to_string())?;
        let before = state.clone();
        change(&mut state);
        let json = serde_json::to_string_pretty(&*state).unwrap_or_default();
        if let Err(error) = write_atomically(&self.state_path, json.as_bytes()) {
            *state = before;
            return Err(error.to_string());
        }
        self.refresh_gauges(&state);
        Ok(())
    }

    fn refresh_gauges(&self, state: &BridgeState) {
        let oldest = state.pending.values().map(|queued| queued.since).min();
        let lag = oldest.map_or(0, |queued| now_unix().saturating_sub(queued));
        self.metrics.lag.set(i64::try_from(lag).unwrap_or(i64::MAX));
        self.metrics
            .pending
            .set(i64::try_from(state.pending.len()).unwrap_or(i64::MAX));
    }

    /// The queued records with their tickets.
    fn pending(&self) -> Vec<(String, u64)> {
        self.state
            .lock()
            .map(|state| {
                state
                    .pending
                    .iter()
                    .map(|(record, queued)| (record.clone(), queued.ticket))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Reads a one-line secret file.
fn read_secret(path: &Path, what: &str) -> Result<String, BridgeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| BridgeError::Config(format!("{what} {}: {error}", path.display())))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(BridgeError::Config(format!(
            "{what} {} is empty",
            path.display()
        )));
    }
    Ok(text)
}

/// Constant-time comparison, so the trigger secret cannot be found byte by byte from timings.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The bridge, configured and checked: the mapping, the data dictionary, the REDCap token's export
/// rights, the state and the ledger.
#[derive(Debug)]
pub struct Bridge {
    args: BridgeArgs,
    mapping: Mapping,
    metadata: RedcapMetadata,
    fields: Vec<String>,
    redcap: RedcapClient,
    ledger_path: PathBuf,
    shared: Arc<Shared>,
}

impl Bridge {
    /// Reads the configuration and checks REDCap: the dictionary is read, every mapped item must be
    /// in it, and a token whose exports are de-identified is refused.
    pub async fn start(args: BridgeArgs) -> Result<Self, BridgeError> {
        let mapping = load_mapping(&args.mapping)?;
        let token = read_secret(&args.redcap_token_file, "REDCap token file")?;
        let secret = match &args.trigger_secret_file {
            None => None,
            Some(path) => {
                let secret = read_secret(path, "trigger secret file")?;
                let shaped = (16..=128).contains(&secret.len())
                    && secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
                if !shaped {
                    return Err(BridgeError::Config(format!(
                        "trigger secret in {}: 16 to 128 characters from A-Z a-z 0-9 _ -",
                        path.display()
                    )));
                }
                Some(secret)
            }
        };
        let redcap = RedcapClient::new(&args.redcap_url, &token, args.redcap_ca.as_deref())?;
        let metadata_json = redcap.metadata().await?;
        let metadata = RedcapMetadata::from_json(&metadata_json)
            .map_err(|error| BridgeError::Redcap(format!("content=metadata: {error}")))?;
        let fields = requested_fields(&mapping, &metadata);
        let unknown: Vec<&String> = fields
            .iter()
            .filter(|field| metadata.form_of(field).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(BridgeError::Config(format!(
                "the mapping names fields the REDCap project does not have: {}",
                unknown
                    .iter()
                    .map(|field| field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let record_id = metadata.record_id_field().to_string();
        let date_field = mapping.visits.date_item.clone();
        let sample = redcap
            .records(&[], &[record_id, date_field.clone()], None)
            .await?;
        if dates_removed(&sample, &date_field) {
            return Err(BridgeError::DeIdentified { field: date_field });
        }
        let state_path = args
            .state
            .clone()
            .unwrap_or_else(|| args.mapping.with_extension("bridge.json"));
        let state = match std::fs::read_to_string(&state_path) {
            Ok(text) => serde_json::from_str::<BridgeState>(&text).map_err(|error| {
                BridgeError::Config(format!("state {}: {error}", state_path.display()))
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BridgeState::default(),
            Err(error) => {
                return Err(BridgeError::Config(format!(
                    "state {}: {error}",
                    state_path.display()
                )));
            }
        };
        let ledger_path = args
            .ledger
            .clone()
            .unwrap_or_else(|| default_ledger_path(&args.mapping));
        // A broken ledger stops the bridge at start rather than at the first record.
        load_ledger(&ledger_path)?;
        let metrics = BridgeMetrics::new();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            state_path,
            wake: Notify::new(),
            metrics,
            secret,
            project_id: args.redcap_project_id,
        });
        if let Ok(state) = shared.state.lock() {
            shared.refresh_gauges(&state);
        }
        Ok(Self {
            args,
            mapping,
            metadata,
            fields,
            redcap,
            ledger_path,
            shared,
        })
    }

    /// Serves the trigger, `/healthz` and `/metrics` on `listener`, polls and sends until
    /// `shutdown` resolves.
    pub async fn run(
        self,
        listener: TcpListener,
        bearer: Bearer,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), BridgeError> {
        let this = Arc::new(self);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let http = tokio::spawn(serve_http(
            listener,
            Arc::clone(&this.shared),
            stop_rx.clone(),
        ));
        let poller = tokio::spawn(Arc::clone(&this).poll_loop(stop_rx.clone()));
        let worker = tokio::spawn(Arc::clone(&this).work_loop(bearer, stop_rx));
        shutdown.await;
        let _ = stop_tx.send(true);
        this.shared.wake.notify_waiters();
        let _ = http.await;
        let _ = poller.await;
        let _ = worker.await;
        Ok(())
    }

    /// Adds record ids to the pending set (written before anyone is told they are queued).
    fn enqueue(&self, records: &[String], poll_began: Option<u64>) -> Result<(), String> {
        let now = now_unix();
        self.shared.update(|state| {
            for record in records {
                state.queue(record, now);
            }
            if let Some(began) = poll_began {
                state.last_poll_began = Some(began);
            }
        })?;
        self.shared.wake.notify_one();
        Ok(())
    }

    async fn poll_once(&self) -> Result<usize, String> {
        let began = now_unix();
        let since = self
            .shared
            .state
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?
            .last_poll_began
            .map(|last| redcap_time(last.saturating_sub(self.args.poll_overlap_secs)));
        let record_id = self.metadata.record_id_field().to_string();
        let json = self
            .redcap
            .records(&[], std::slice::from_ref(&record_id), since.as_deref())
            .await
            .map_err(|error| format!("poll: {error}"))?;
        let Ok(serde_json::Value::Array(objects)) = serde_json::from_str(&json) else {
            return Err("poll: REDCap's record export is not a JSON array".into());
        };
        let mut records: Vec<String> = objects
            .iter()
            .filter_map(|object| object.get(&record_id))
            .map(|value| match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .filter(|record| !record.is_empty())
            .collect();
        records.sort();
        records.dedup();
        self.enqueue(&records, Some(began))?;
        Ok(records.len())
    }

    async fn poll_loop(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = Duration::from_secs(self.args.poll_secs.max(1));
        loop {
            match self.poll_once().await {
                Ok(count) => tracing::info!(records = count, "poll: records changed"),
                Err(error) => self.shared.metrics.error(error),
            }
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Pulls one record, plans it and sends its changes; `Ok` once it needs nothing more.
    async fn process(
        &self,
        client: &mut IngestWithToken,
        record: &str,
        ledger: &mut SentLedger,
    ) -> Result<(), String> {
        let json = self
            .redcap
            .records(&[record.to_string()], &self.fields, None)
            .await
            .map_err(|error| format!("pulling record {record}: {error}"))?;
        if dates_removed(&json, &self.mapping.visits.date_item) {
            return Err(BridgeError::DeIdentified {
                field: self.mapping.visits.date_item.clone(),
            }
            .to_string());
        }
        self.shared.metrics.records_pulled.inc();
        let study_oid = self.mapping.source_study_oid.clone().unwrap_or_default();
        let rows = records_to_rows(&json, &self.metadata, &study_oid)
            .map_err(|error| format!("record {record}: {error}"))?;
        let previous = ledger.clone();
        let plan = myolog_edc::plan::plan(rows.into_iter().map(Ok), &self.mapping, ledger)
            .map_err(|error| format!("record {record}: {error}"))?;
        self.shared
            .metrics
            .discrepancies
            .inc_by(plan.discrepancies.len() as u64);
        for discrepancy in &plan.discrepancies {
            tracing::warn!(
                path = %discrepancy.path,
                value = discrepancy.value.as_deref().unwrap_or_default(),
                problem = %discrepancy.problem,
                "discrepancy: not imported"
            );
        }
        let events = match wire_events(&plan.changes) {
            Ok(events) => events,
            Err(error) => {
                *ledger = previous;
                return Err(error.to_string());
            }
        };
        let retry = Retry {
            attempts: Some(4),
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        };
        let outcome = send_changes(client, &plan.changes, &events, 500, retry, |_| {}).await;
        self.shared.metrics.events_sent.inc_by(outcome.sent as u64);
        self.shared
            .metrics
            .events_present
            .inc_by(outcome.already_present as u64);
        self.shared
            .metrics
            .events_refused
            .inc_by(outcome.refused.len() as u64);
        for (index, reason) in &outcome.refused {
            let sources: Vec<String> = plan.changes[*index]
                .sources()
                .iter()
                .map(ToString::to_string)
                .collect();
            tracing::warn!(event_id = %plan.changes[*index].event_id(), sources = %sources.join(", "), %reason, "refused by Myolog");
        }
        let unsent = outcome.refused.iter().map(|(index, _)| *index).chain(
            outcome
                .stopped
                .iter()
                .flat_map(|(from, _)| *from..plan.changes.len()),
        );
        for index in unsent {
            if let Some(change) = plan.changes.get(index) {
                ledger.revert(&previous, change);
            }
        }
        if let Err(error) = write_atomically(&self.ledger_path, ledger.to_json().as_bytes()) {
            *ledger = previous;
            return Err(error.to_string());
        }
        if let Some((_, reason)) = outcome.stopped {
            return Err(format!("sending record {record} to Myolog: {reason}"));
        }
        if !outcome.refused.is_empty() {
            self.shared.metrics.error(format!(
                "record {record}: {} events refused by Myolog",
                outcome.refused.len()
            ));
        }
        Ok(())
    }

    async fn work_loop(
        self: Arc<Self>,
        bearer: Bearer,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut backoff = Duration::from_millis(250);
        let max_backoff = Duration::from_secs(30);
        let mut client: Option<IngestWithToken> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let pending = self.shared.pending();
            if pending.is_empty() {
                tokio::select! {
                    _ = stop.wait_for(|stop| *stop) => return,
                    () = self.shared.wake.notified() => {}
                    // A missed wake-up costs a second at most.
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            let mut failed = false;
            for (record, ticket) in pending {
                if *stop.borrow() {
                    return;
                }
                if client.is_none() {
                    match self.args.tls.endpoint(&self.args.addr) {
                        Ok(endpoint) => {
                            // Lazy: the channel connects on first use and reconnects after the
                            // server comes back, so a server down at start is only a retry.
                            let channel = endpoint.connect_lazy();
                            client = Some(IngestClient::with_interceptor(channel, bearer.clone()));
                        }
                        Err(error) => {
                            self.shared.metrics.error(error.to_string());
                            failed = true;
                            break;
                        }
                    }
                }
                let Some(ingest) = client.as_mut() else {
                    break;
                };
                // The ledger is read fresh for each record: `import odm` may share it.
                let mut ledger = match load_ledger(&self.ledger_path) {
                    Ok(ledger) => ledger,
                    Err(error) => {
                        self.shared.metrics.error(error.to_string());
                        failed = true;
                        break;
                    }
                };
                match self.process(ingest, &record, &mut ledger).await {
                    Ok(()) => {
                        if let Err(error) = self.shared.update(|state| state.done(&record, ticket))
                        {
                            self.shared.metrics.error(error);
                            failed = true;
                            break;
                        }
                        backoff = Duration::from_millis(250);
                    }
                    Err(error) => {
                        self.shared.metrics.error(error);
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                if let Ok(state) = self.shared.state.lock() {
                    self.shared.refresh_gauges(&state);
                }
                tokio::select! {
                    _ = stop.wait_for(|stop| *stop) => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn text(status: StatusCode, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// The largest trigger body read (REDCap's is a few hundred bytes).
const MAX_TRIGGER_BYTES: usize = 64 * 1024;

async fn respond(shared: Arc<Shared>, request: Request<Incoming>) -> HttpResponse {
    let path = request.uri().path().to_string();
    match (request.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => {
            let (pending, last_poll) = shared
                .state
                .lock()
                .map(|state| (state.pending.len(), state.last_poll_began))
                .unwrap_or_default();
            let last_error = shared
                .metrics
                .last_error
                .lock()
                .ok()
                .and_then(|last| last.clone());
            let body = serde_json::json!({
                "status": "ok",
                "pending_records": pending,
                "last_poll_began_unix": last_poll,
                "last_error": last_error,
            });
            let mut response = text(StatusCode::OK, format!("{body}\n"));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        (Method::GET, "/metrics") => {
            if let Ok(state) = shared.state.lock() {
                shared.refresh_gauges(&state);
            }
            let mut response = text(StatusCode::OK, shared.metrics.encode());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(myolog_server::metrics::CONTENT_TYPE_OPENMETRICS),
            );
            response
        }
        (Method::POST, "/trigger") => {
            if let Some(secret) = &shared.secret {
                let given = request
                    .uri()
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("secret="));
                if !given.is_some_and(|given| same_secret(given.as_bytes(), secret.as_bytes())) {
                    return text(StatusCode::FORBIDDEN, "wrong or missing secret\n".into());
                }
            }
            let body = match Limited::new(request.into_body(), MAX_TRIGGER_BYTES)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(error) => {
                    return text(StatusCode::BAD_REQUEST, format!("body: {error}\n"));
                }
            };
            let trigger = match parse_data_entry_trigger(&body) {
                Ok(trigger) => trigger,
                Err(error) => return text(StatusCode::BAD_REQUEST, format!("{error}\n")),
            };
            if let Some(expected) = shared.project_id
                && trigger.project_id != expected
            {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "a trigger of REDCap project {}; this bridge serves project {expected}\n",
                        trigger.project_id
                    ),
                );
            }
            let now = now_unix();
            match shared.update(|state| {
                state.queue(&trigger.record, now);
            }) {
                Ok(()) => {
                    shared.wake.notify_one();
                    tracing::info!(record = %trigger.record, instrument = %trigger.instrument, "trigger: record queued");
                    text(StatusCode::OK, format!("queued {}\n", trigger.record))
                }
                Err(error) => {
                    shared.metrics.error(format!("queueing a trigger: {error}"));
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "cannot queue the record now; the next poll will find it\n".into(),
                    )
                }
            }
        }
        (_, "/healthz" | "/metrics" | "/trigger") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: POST /trigger, GET /healthz, GET /metrics\n".into(),
        ),
    }
}

async fn serve_http(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "bridge endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(respond(shared, request).await) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "bridge endpoint: connection ended with an error");
            }
        });
    }
}

/// Runs `myolog bridge` until SIGINT or SIGTERM.
pub async fn run(args: BridgeArgs) -> Result<(), BridgeError> {
    let bearer = Bearer::from_env().map_err(|error| BridgeError::Config(error.to_string()))?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| BridgeError::Config(format!("listen on {}: {error}", args.listen)))?;
    // REDCap down at start is waited out (with backoff, until SIGTERM); a configuration REDCap
    // refuses (bad token, de-identified rights, unknown fields) stops the bridge with the reason.
    let mut delay = Duration::from_secs(1);
    let mut shutdown = std::pin::pin!(crate::serve::shutdown_signal());
    let bridge = loop {
        match Bridge::start(args.clone()).await {
            Err(BridgeError::RedcapUnreachable(reason)) => {
                tracing::warn!(%reason, ?delay, "REDCap not reachable at start; retrying");
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(60));
            }
            other => break other?,
        }
    };
    tracing::info!(addr = ?listener.local_addr().ok(), "bridge: POST /trigger, GET /healthz, GET /metrics");
    bridge.run(listener, bearer, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redcap_times_are_utc_calendar_times() {
        assert_eq!(redcap_time(0), "1970-01-01 00:00:00");
        assert_eq!(redcap_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(redcap_time(1_709_251_199), "2024-02-29 23:59:59");
        assert_eq!(redcap_time(4_102_444_800), "2100-01-01 00:00:00");
    }

    #[test]
    fn form_encoding_escapes_all_but_the_unreserved() {
        assert_eq!(form_encode("fields[0]"), "fields%5B0%5D");
        assert_eq!(
            form_encode("2024-01-01 10:00:00"),
            "2024-01-01+10%3A00%3A00"
        );
        assert_eq!(form_encode("é&="), "%C3%A9%26%3D");
    }

    #[test]
    fn a_de_identified_export_has_no_date_column() {
        assert!(dates_removed(r#"[{"record_id":"1"}]"#, "visit_date"));
        assert!(!dates_removed(
            r#"[{"record_id":"1","visit_date":""}]"#,
            "visit_date"
        ));
        assert!(!dates_removed("[]", "visit_date"));
        assert!(!dates_removed("not json", "visit_date"));
    }

    #[test]
    fn a_record_named_again_while_it_is_sent_stays_queued() {
        let mut state = BridgeState::default();
        state.queue("A", 100);
        let ticket = state.pending["A"].ticket;
        // A trigger while A is being pulled and sent: its change may be newer than the pull.
        state.queue("A", 200);
        state.done("A", ticket);
        assert_eq!(state.pending["A"].since, 100, "the lag runs from the first");
        let ticket = state.pending["A"].ticket;
        state.done("A", ticket);
        assert!(state.pending.is_empty());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!same_secret(b"abcdefghijklmnoq", b"abcdefghijklmnop"));
        assert!(!same_secret(b"abc", b"abcdefghijklmnop"));
    }

    #[test]
    fn only_mapped_fields_are_asked_for() {
        let mapping = Mapping::from_toml(include_str!(
            "../../../tests/data/edc/stir_redcap.mapping.toml"
        ))
        .expect("mapping");
        let metadata =
            RedcapMetadata::from_json(include_str!("../../../tests/data/edc/stir_metadata.json"))
                .expect("metadata");
        let fields = requested_fields(&mapping, &metadata);
        assert_eq!(fields[0], "record_id");
        for expected in [
            "pga_vas",
            "visit_date",
            "rand_arm",
            "rand_date",
            "globals_complete",
            "enrolment_complete",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected}: {fields:?}"
            );
        }
        // Ignored items (adverse events, the checkbox) never leave REDCap.
        for ignored in ["ae_term", "pred_change", "ae_complete"] {
            assert!(
                !fields.iter().any(|f| f == ignored),
                "{ignored}: {fields:?}"
            );
        }
    }
}
