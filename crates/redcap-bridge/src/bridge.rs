//! `myolog bridge`: a long-running REDCap connector, one process per study. REDCap's Data Entry
//! Trigger (a form-encoded POST carrying only ids) names a saved record; the bridge pulls that record
//! through the REDCap API, asking only for the fields the mapping uses (`fields[]`), plans it with
//! `myolog-edc` against the ledger of what was sent, and sends the changes through Ingest.Append as
//! `myolog import odm` does (same batches, same retries, same ledger). An incremental poll
//! (`dateRangeBegin`) finds records the trigger never reports (imports, API writes, a trigger lost
//! while the bridge was down), and REDCap's log (`content=log`) the records deleted there, whose
//! imported forms are retracted. A change of a value already sent is planned again with the record's
//! log, so the correction carries REDCap's user, time and reason. A full reconciliation
//! ([`crate::reconcile`]) compares all of REDCap with Myolog on a schedule and sends what is missing.
//!
//! Nothing lost: a triggered or polled record id is written to the state file (atomically) before the
//! trigger is answered, and leaves it only once its changes are acknowledged and the ledger written;
//! after a restart the pending ids are pulled again. Nothing doubled: event ids are deterministic, so
//! whatever was stored before a crash is answered as a duplicate.
//!
//! Refused at start: a REDCap token whose exports are de-identified. REDCap removes date fields
//! from a de-identified export (the column is absent, not blank), so a record exported without the
//! visit-date column means clinical dates would be lost; the bridge says so and stops.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use myolog_domain::event::EventBody;
use myolog_edc::mapping::{Mapping, SourceTimeZone};
use myolog_edc::plan::{Change, Plan, SentLedger, plan_subject_removal};
use myolog_edc::redcap::{RedcapMetadata, parse_data_entry_trigger, records_to_rows};
use myolog_edc::redcap_log::{
    LogAction, RedcapLogEntry, attach_log_audits, deletion_of, parse_log,
};
use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use myolog_proto::v1::ingest_client::IngestClient;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::files::{FileError, default_ledger_path, load_ledger, load_mapping, write_atomically};
use crate::reconcile::{Difference, ReconcileSummary};
use crate::redcap_api::{RedcapCallError, RedcapClient, dates_removed, requested_fields};
use crate::send::{Retry, send_changes, wire_events};

/// How one bridge runs: which REDCap project, which mapping, where it listens and keeps its state.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// REDCap API endpoint, e.g. `https://redcap.example.org/api/`.
    pub redcap_url: String,
    /// File holding the REDCap API token of the project.
    pub redcap_token_file: PathBuf,
    /// CA certificate (PEM) trusted for REDCap's HTTPS besides the system's roots.
    pub redcap_ca_file: Option<PathBuf>,
    /// The study's mapping file.
    pub mapping: PathBuf,
    /// File holding the shared secret the trigger URL must carry (`/trigger?secret=...`).
    pub trigger_secret_file: Option<PathBuf>,
    /// The REDCap project id a trigger must name.
    pub redcap_project_id: Option<u64>,
    /// Seconds between two incremental polls.
    pub poll_secs: u64,
    /// Seconds each poll reaches back before the previous one began.
    pub poll_overlap_secs: u64,
    /// The bridge's state; default `<mapping>.bridge.json`.
    pub state: Option<PathBuf>,
    /// The ledger of what was sent; default `<mapping>.ledger.json`.
    pub ledger: Option<PathBuf>,
    /// Seconds between two full reconciliations (0: never); one runs at start when the last one
    /// is older.
    pub reconcile_every_secs: u64,
    /// Where each reconciliation writes its report (`reconcile-<time>.json` and `.csv`).
    pub reconcile_report_dir: Option<PathBuf>,
}

/// Why the bridge cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{0}")]
    File(#[from] FileError),
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

impl From<RedcapCallError> for BridgeError {
    fn from(error: RedcapCallError) -> Self {
        match error {
            RedcapCallError::Unreachable(_) => BridgeError::RedcapUnreachable(error),
            RedcapCallError::Status { .. } => BridgeError::Redcap(error.to_string()),
        }
    }
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
    /// Unix seconds the last completed full reconciliation began; `None`: never reconciled.
    #[serde(default)]
    pub last_reconcile_began: Option<u64>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| duration.as_secs())
        .unwrap_or(0)
}

/// The seconds east of UTC of a fixed offset as the mapping states it (`Z`, `+01:00`, `-0500`).
fn offset_seconds(offset: &str) -> Option<i64> {
    if offset == "Z" {
        return Some(0);
    }
    let (sign, rest) = match offset.as_bytes().first()? {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
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
    reconcile_redcap_only: Gauge,
    reconcile_myolog_only: Gauge,
    reconcile_values_differing: Gauge,
    reconcile_last: Gauge,
    deletions: Counter,
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
        let reconcile_redcap_only = Gauge::default();
        registry.register(
            "reconcile_redcap_only_subjects",
            "Subjects in REDCap but not in Myolog at the last reconciliation",
            reconcile_redcap_only.clone(),
        );
        let reconcile_myolog_only = Gauge::default();
        registry.register(
            "reconcile_myolog_only_subjects",
            "Subjects in Myolog but not in REDCap at the last reconciliation",
            reconcile_myolog_only.clone(),
        );
        let reconcile_values_differing = Gauge::default();
        registry.register(
            "reconcile_values_differing",
            "Forms whose REDCap values Myolog did not hold at the last reconciliation (then sent)",
            reconcile_values_differing.clone(),
        );
        let reconcile_last = Gauge::default();
        registry.register(
            "reconcile_last_timestamp",
            "Unix time the last completed reconciliation began (0: none)",
            reconcile_last.clone(),
        );
        let deletions = Counter::default();
        registry.register(
            "records_deleted",
            "REDCap records found deleted whose imported forms were retracted",
            deletions.clone(),
        );
        Self {
            reconcile_redcap_only,
            reconcile_myolog_only,
            reconcile_values_differing,
            reconcile_last,
            deletions,
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
    /// What the last reconciliation found, for `/healthz`.
    reconciliation: Mutex<Option<ReconcileSummary>>,
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
    args: BridgeConfig,
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
    pub async fn start(args: BridgeConfig) -> Result<Self, BridgeError> {
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
        let redcap = RedcapClient::new(&args.redcap_url, &token, args.redcap_ca_file.as_deref())
            .map_err(BridgeError::Config)?;
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
            reconciliation: Mutex::new(None),
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
    pub async fn run<I>(
        self,
        listener: TcpListener,
        ingest: Endpoint,
        authorization: I,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), BridgeError>
    where
        I: Interceptor + Clone + Send + Sync + 'static,
    {
        let this = Arc::new(self);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let http = tokio::spawn(serve_http(
            listener,
            Arc::clone(&this.shared),
            stop_rx.clone(),
        ));
        let poller = tokio::spawn(Arc::clone(&this).poll_loop(stop_rx.clone()));
        let reconciler = tokio::spawn(Arc::clone(&this).reconcile_loop(
            ingest.clone(),
            authorization.clone(),
            stop_rx.clone(),
        ));
        let worker = tokio::spawn(Arc::clone(&this).work_loop(ingest, authorization, stop_rx));
        shutdown.await;
        let _ = stop_tx.send(true);
        this.shared.wake.notify_waiters();
        let _ = http.await;
        let _ = poller.await;
        let _ = reconciler.await;
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
        // Deleted records: the record export no longer shows them, REDCap's log does.
        match self.deleted_records().await {
            Ok(deleted) => records.extend(deleted),
            Err(error) => self.shared.metrics.error(format!("poll: {error}")),
        }
        records.sort();
        records.dedup();
        self.enqueue(&records, Some(began))?;
        Ok(records.len())
    }

    /// The records REDCap's log says were deleted since [`Self::log_begin_time`].
    async fn deleted_records(&self) -> Result<Vec<String>, String> {
        let json = self
            .redcap
            .log("record_delete", None, Some(&self.log_begin_time()))
            .await
            .map_err(|error| format!("content=log: {error}"))?;
        let entries = parse_log(&json).map_err(|error| format!("content=log: {error}"))?;
        Ok(entries
            .iter()
            .filter_map(|entry| match entry.action() {
                LogAction::Delete { record } => Some(record),
                _ => None,
            })
            .collect())
    }

    /// How far back the log is read, as REDCap's `beginTime` (`YYYY-MM-DD HH:MM` in the REDCap
    /// server's time zone): far enough to hold any change the bridge can still be catching up on
    /// (a poll interval, a reconciliation interval and the overlap, or back to the last poll or
    /// reconciliation after a long stop). The mapping's `study.time_zone` is the server's zone; a
    /// fixed offset is applied, a named zone is covered by 14 more hours (the widest offset).
    fn log_begin_time(&self) -> String {
        let now = now_unix();
        let overlap = self.args.poll_overlap_secs;
        let lookback = self
            .args
            .poll_secs
            .saturating_add(self.args.reconcile_every_secs)
            .saturating_add(overlap);
        let mut begin = now.saturating_sub(lookback);
        if let Ok(state) = self.shared.state.lock() {
            for last in [state.last_poll_began, state.last_reconcile_began]
                .into_iter()
                .flatten()
            {
                begin = begin.min(last.saturating_sub(overlap));
            }
        }
        let local = match &self.mapping.time_zone {
            SourceTimeZone::Fixed(offset) => {
                let shift = offset_seconds(offset).unwrap_or(-14 * 3600);
                begin.saturating_add_signed(shift)
            }
            SourceTimeZone::Iana(_) => begin.saturating_sub(14 * 3600),
        };
        let mut text = redcap_time(local);
        text.truncate(16);
        text
    }

    /// REDCap's log of one record, since [`Self::log_begin_time`]. `Ok(None)`: REDCap refused it
    /// (a token without the Logging right), so the default reason is stated instead.
    async fn record_log(&self, record: &str) -> Result<Option<Vec<RedcapLogEntry>>, String> {
        match self
            .redcap
            .log("record", Some(record), Some(&self.log_begin_time()))
            .await
        {
            Ok(json) => parse_log(&json)
                .map(Some)
                .map_err(|error| format!("record {record}: content=log: {error}")),
            Err(error @ RedcapCallError::Unreachable(_)) => {
                Err(format!("record {record}: content=log: {error}"))
            }
            Err(error) => {
                self.shared.metrics.error(format!(
                    "record {record}: content=log refused ({error}); the default reason is stated"
                ));
                Ok(None)
            }
        }
    }

    /// Plans one pulled record: its rows against the ledger; a change of a value already sent is
    /// planned again with REDCap's log attached, so it carries REDCap's user, time and reason. A
    /// record REDCap no longer has retracts what was imported from it.
    async fn plan_record(
        &self,
        record: &str,
        json: &str,
        ledger: &mut SentLedger,
    ) -> Result<Plan, String> {
        let present = match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Array(objects)) => !objects.is_empty(),
            _ => {
                return Err(format!(
                    "record {record}: REDCap's record export is not a JSON array"
                ));
            }
        };
        if !present {
            return self.plan_deletion(record, ledger).await;
        }
        let study_oid = self.mapping.source_study_oid.clone().unwrap_or_default();
        let mut rows = records_to_rows(json, &self.metadata, &study_oid)
            .map_err(|error| format!("record {record}: {error}"))?;
        let mut trial = ledger.clone();
        let first = myolog_edc::plan::plan(rows.iter().cloned().map(Ok), &self.mapping, &mut trial)
            .map_err(|error| format!("record {record}: {error}"))?;
        let changes_values = first.changes.iter().any(|change| match change {
            Change::Retraction { .. } => true,
            Change::Event { event, .. } => {
                matches!(event.body, EventBody::AssessmentCorrected { .. })
            }
        });
        if !changes_values {
            *ledger = trial;
            return Ok(first);
        }
        if let Some(entries) = self.record_log(record).await? {
            let matched = attach_log_audits(&mut rows, &entries);
            tracing::info!(
                record,
                entries = entries.len(),
                rows = matched,
                "REDCap log read"
            );
        }
        // The same rows with their audit records: the same changes and ids, with who, when, why.
        myolog_edc::plan::plan(rows.into_iter().map(Ok), &self.mapping, ledger)
            .map_err(|error| format!("record {record}: {error}"))
    }

    /// A record REDCap no longer has: every form imported from it is retracted, the reason naming
    /// REDCap's `Delete record` entry (user and time) or, without one, that it was found absent.
    async fn plan_deletion(&self, record: &str, ledger: &mut SentLedger) -> Result<Plan, String> {
        // Nothing (more) to retract: no need to read the log.
        let mut trial = ledger.clone();
        if plan_subject_removal(&self.mapping, &mut trial, record, "trial", None)
            .changes
            .is_empty()
        {
            return Ok(Plan::default());
        }
        let entries = self.record_log(record).await?.unwrap_or_default();
        let deletion = deletion_of(&entries, record);
        let zone = &self.mapping.time_zone;
        let reason = match deletion {
            Some(entry) => format!(
                "deleted in REDCap: \"{}\" by {} at {} ({zone})",
                entry.action, entry.username, entry.timestamp
            ),
            None => format!(
                "deleted in REDCap: record {record} is no longer in the project (found absent by \
                 the bridge; REDCap's log names no deletion)"
            ),
        };
        let audit = deletion.map(RedcapLogEntry::audit_record);
        let plan = plan_subject_removal(&self.mapping, ledger, record, &reason, audit.as_ref());
        if !plan.changes.is_empty() {
            self.shared.metrics.deletions.inc();
            tracing::warn!(record, retractions = plan.changes.len(), %reason, "record deleted in REDCap: retracting");
        }
        Ok(plan)
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

    /// The subjects Myolog holds for the study: every subject named by the study's stored events.
    async fn myolog_subjects<I>(
        &self,
        audit: &mut AuditClient<InterceptedService<Channel, I>>,
    ) -> Result<BTreeSet<String>, String>
    where
        I: Interceptor + Send,
    {
        let request = pb::ReadEventsRequest {
            from_sequence: 1,
            limit: 0,
            study_id: self.mapping.study.as_str().to_string(),
        };
        let mut stream = audit
            .read_events(request)
            .await
            .map_err(|status| format!("reading Myolog's events: {}", status.message()))?
            .into_inner();
        let mut subjects = BTreeSet::new();
        while let Some(event) = stream
            .message()
            .await
            .map_err(|status| format!("reading Myolog's events: {}", status.message()))?
        {
            if let Some(subject) = event.event.map(|event| event.subject_id)
                && !subject.is_empty()
            {
                subjects.insert(subject);
            }
        }
        Ok(subjects)
    }

    /// One full reconciliation: every record REDCap has (the mapped fields only) is planned against
    /// the ledger without sending; Myolog's subjects are read from its log. Records with values
    /// Myolog does not hold, and records Myolog holds but REDCap no longer has, are queued (the
    /// work loop sends them as it sends a trigger's, idempotently); the findings go to the metrics,
    /// `/healthz` and the report directory.
    async fn reconcile_once<I>(
        &self,
        audit: &mut AuditClient<InterceptedService<Channel, I>>,
    ) -> Result<ReconcileSummary, String>
    where
        I: Interceptor + Send,
    {
        let began = now_unix();
        let json = self
            .redcap
            .records(&[], &self.fields, None)
            .await
            .map_err(|error| format!("reconciliation: {error}"))?;
        if dates_removed(&json, &self.mapping.visits.date_item) {
            return Err(BridgeError::DeIdentified {
                field: self.mapping.visits.date_item.clone(),
            }
            .to_string());
        }
        let record_field = self.metadata.record_id_field().to_string();
        let redcap_records: BTreeSet<String> = match serde_json::from_str(&json) {
            Ok(serde_json::Value::Array(objects)) => objects
                .iter()
                .filter_map(|object| object.get(&record_field))
                .map(|value| match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .filter(|record| !record.is_empty())
                .collect(),
            _ => return Err("reconciliation: REDCap's record export is not a JSON array".into()),
        };
        let study_oid = self.mapping.source_study_oid.clone().unwrap_or_default();
        let rows = records_to_rows(&json, &self.metadata, &study_oid)
            .map_err(|error| format!("reconciliation: {error}"))?;
        let mut trial = load_ledger(&self.ledger_path).map_err(|error| error.to_string())?;
        let sent_subjects = trial.subjects(self.mapping.study.as_str());
        let plan = myolog_edc::plan::plan(rows.into_iter().map(Ok), &self.mapping, &mut trial)
            .map_err(|error| format!("reconciliation: {error}"))?;
        let myolog_subjects = self.myolog_subjects(audit).await?;
        let differences: Vec<Difference> = plan.changes.iter().map(Difference::of).collect();
        let mut queue: BTreeSet<String> = differences
            .iter()
            .map(|difference| difference.subject.clone())
            .collect();
        // Imported before, gone from REDCap now: the work loop retracts what came from them.
        queue.extend(
            sent_subjects
                .iter()
                .filter(|subject| !redcap_records.contains(*subject))
                .cloned(),
        );
        let mut summary = ReconcileSummary {
            began_unix: began,
            redcap_records: redcap_records.len(),
            myolog_subjects: myolog_subjects.len(),
            redcap_only_subjects: redcap_records
                .difference(&myolog_subjects)
                .cloned()
                .collect(),
            myolog_only_subjects: myolog_subjects
                .difference(&redcap_records)
                .cloned()
                .collect(),
            differences,
            discrepancies: plan.discrepancies.len(),
            report: None,
        };
        if let Some(dir) = &self.args.reconcile_report_dir {
            summary.report = Some(summary.write(dir).map_err(|error| error.to_string())?);
        }
        let queue: Vec<String> = queue.into_iter().collect();
        let now = now_unix();
        self.shared.update(|state| {
            for record in &queue {
                state.queue(record, now);
            }
            state.last_reconcile_began = Some(began);
        })?;
        self.shared.wake.notify_one();
        let metrics = &self.shared.metrics;
        let gauge = |count: usize| i64::try_from(count).unwrap_or(i64::MAX);
        metrics
            .reconcile_redcap_only
            .set(gauge(summary.redcap_only_subjects.len()));
        metrics
            .reconcile_myolog_only
            .set(gauge(summary.myolog_only_subjects.len()));
        metrics
            .reconcile_values_differing
            .set(gauge(summary.differences.len()));
        metrics
            .reconcile_last
            .set(i64::try_from(began).unwrap_or(i64::MAX));
        if let Ok(mut last) = self.shared.reconciliation.lock() {
            *last = Some(summary.clone());
        }
        tracing::info!(
            redcap_only = summary.redcap_only_subjects.len(),
            myolog_only = summary.myolog_only_subjects.len(),
            differences = summary.differences.len(),
            queued = queue.len(),
            "reconciliation done"
        );
        Ok(summary)
    }

    /// Reconciles every `reconcile_every_secs`, and at start when the last one is older; a failed
    /// one is retried after a minute.
    async fn reconcile_loop<I>(
        self: Arc<Self>,
        ingest: Endpoint,
        authorization: I,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) where
        I: Interceptor + Clone + Send + Sync + 'static,
    {
        let every = self.args.reconcile_every_secs;
        if every == 0 {
            return;
        }
        let mut audit = AuditClient::with_interceptor(ingest.connect_lazy(), authorization);
        loop {
            let last = self
                .shared
                .state
                .lock()
                .ok()
                .and_then(|state| state.last_reconcile_began);
            let due = last.map_or(0, |last| last.saturating_add(every));
            let now = now_unix();
            let wait = if now >= due {
                match self.reconcile_once(&mut audit).await {
                    Ok(_) => every,
                    Err(error) => {
                        self.shared.metrics.error(error);
                        60
                    }
                }
            } else {
                due - now
            };
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(Duration::from_secs(wait.min(3600))) => {}
            }
        }
    }

    /// Pulls one record, plans it and sends its changes; `Ok` once it needs nothing more.
    async fn process<I>(
        &self,
        client: &mut IngestClient<InterceptedService<Channel, I>>,
        record: &str,
        ledger: &mut SentLedger,
    ) -> Result<(), String>
    where
        I: Interceptor + Send,
    {
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
        let previous = ledger.clone();
        let plan = match self.plan_record(record, &json, ledger).await {
            Ok(plan) => plan,
            Err(error) => {
                *ledger = previous;
                return Err(error);
            }
        };
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
        outcome.revert_unsent(ledger, &previous, &plan.changes);
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

    async fn work_loop<I>(
        self: Arc<Self>,
        ingest: Endpoint,
        authorization: I,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) where
        I: Interceptor + Clone + Send + Sync + 'static,
    {
        let mut backoff = Duration::from_millis(250);
        let max_backoff = Duration::from_secs(30);
        // Lazy: the channel connects on first use and reconnects after the server comes back, so
        // a server down at start is only a retry.
        let mut client = IngestClient::with_interceptor(ingest.connect_lazy(), authorization);
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
                // The ledger is read fresh for each record: `import odm` may share it.
                let mut ledger = match load_ledger(&self.ledger_path) {
                    Ok(ledger) => ledger,
                    Err(error) => {
                        self.shared.metrics.error(error.to_string());
                        failed = true;
                        break;
                    }
                };
                match self.process(&mut client, &record, &mut ledger).await {
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
            let reconciliation = shared
                .reconciliation
                .lock()
                .ok()
                .and_then(|last| last.clone());
            let body = serde_json::json!({
                "status": "ok",
                "pending_records": pending,
                "last_poll_began_unix": last_poll,
                "last_error": last_error,
                "reconciliation": reconciliation,
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

/// Runs the bridge until `shutdown` resolves: REDCap down at start is waited out (with backoff,
/// until shutdown); a configuration REDCap refuses (bad token, de-identified rights, unknown fields)
/// stops the bridge with the reason. `ingest` is Myolog's endpoint, `authorization` adds the
/// integration token to every call.
pub async fn run<I>(
    config: BridgeConfig,
    listener: TcpListener,
    ingest: Endpoint,
    authorization: I,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BridgeError>
where
    I: Interceptor + Clone + Send + Sync + 'static,
{
    let mut delay = Duration::from_secs(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let bridge = loop {
        match Bridge::start(config.clone()).await {
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
    bridge.run(listener, ingest, authorization, shutdown).await
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
    fn fixed_offsets_are_read_as_seconds_east_of_utc() {
        let check = |text: &str, expected: Option<i64>| {
            assert_eq!(offset_seconds(text), expected, "{text}");
        };
        check("Z", Some(0));
        check("+01:00", Some(3600));
        check("-05:00", Some(-18_000));
        check("+0530", Some(19_800));
        check("-0930", Some(-34_200));
        check("01:00", None);
        check("+1:00", None);
        check("+ab:cd", None);
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
}
