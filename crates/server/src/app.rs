//! The service core shared by the gRPC handlers: the event log, the projection and the outcome
//! broadcast. [`App::submit`] is the one ingest path (validate, check against the projection, append
//! durably, apply, recompute outcomes); `Submit` and `Append` both call it.
//!
//! Batches are atomic: an invalid event rejects the whole batch and nothing of it is stored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use myolog_domain::event::{Event, EventBody};
use myolog_proto::v1 as pb;
use myolog_storage::{AppendError, Appended, EventLog, LogOptions, NewEvent, RecordedEvent};
use tokio::sync::{broadcast, watch};

use crate::error::{ServiceError, Violation};
use crate::metrics::Metrics;
use myolog_projection::outcome as outcomes;
use myolog_projection::{Projection, Touched};
use myolog_wire as wire;
use myolog_wire::outcome as to_wire;

/// The payload schema version of every event this build writes.
pub use myolog_wire::stored::SCHEMA_VERSION;
/// Default recorded-by principal until authentication exists.
pub const DEFAULT_PRINCIPAL: &str = "edc-default";

/// Settings of a service instance.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Directory of the event log (created if missing).
    pub data_dir: PathBuf,
    /// Recorded-by of every event appended through this instance.
    pub principal: String,
    /// The most events one batch may hold: the one batch limit (`--max-events-per-batch`). The
    /// guard refuses a larger request before anything is decoded; the log is opened with the same
    /// bound, so no other path can append more in one batch.
    pub max_events_per_batch: usize,
    /// `Some(primary)`: a read-only follower of that primary; writes are refused naming it and the
    /// log grows only by [`App::apply_replicated`].
    pub follow: Option<String>,
}

impl AppConfig {
    /// A configuration with the default principal and the default batch limit.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            principal: DEFAULT_PRINCIPAL.to_string(),
            max_events_per_batch: crate::auth::limits::Limits::default().max_events_per_batch,
            follow: None,
        }
    }
}

/// Errors while starting the service.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening the event log: {0}")]
    Open(#[from] myolog_storage::StorageError),
    #[error("replaying the event log: event {seq}: {reason}")]
    Replay { seq: u64, reason: String },
    #[error("start-up task failed: {0}")]
    Task(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The shared state of one running service.
#[derive(Debug)]
pub struct App {
    log: EventLog,
    projection: RwLock<Projection>,
    outcomes_tx: broadcast::Sender<pb::VisitOutcome>,
    principal: String,
    draining: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    /// Serialises validation + append + apply against study-level changes (see
    /// [`App::submit_inner`]); holds no data.
    ingest_gate: Arc<tokio::sync::RwLock<()>>,
    /// The primary of a follower (see [`AppConfig::follow`]).
    follow: Option<String>,
    /// The archiver's lag and what it means for writes, once an archiver runs.
    archive: std::sync::OnceLock<ArchiveGuard>,
    /// The key `Audit.GetSignedHead` signs with (`serve --head-key`, mounted from a secret).
    head_key: std::sync::OnceLock<Arc<myolog_archive::HeadSigningKey>>,
    /// Validated batches waiting for an appender (see [`App::queue_append`]).
    appends: Mutex<AppendQueue>,
    /// The log's batch limit: appenders merge queued batches up to it.
    max_batch_events: usize,
}

/// How many blocking appenders may run at once. One: whatever arrives while its append is being
/// made durable becomes its next merged append, so each flush covers as many batches as possible,
/// and every flush costs sled a log-buffer write and a wake-up of each of its seven idle IO
/// threads. Measured at 16 streams x 10 events (docs/benchmarks.md): two appenders, which overlap
/// one group's apply with the previous one's fsync, used 1.16 times the CPU per event for 0.84
/// times the events per second, once a group commit no longer paid for a sled `apply_batch`.
const APPENDERS: usize = 1;

/// Validated batches waiting to be appended, and how many appenders are running.
#[derive(Debug, Default)]
struct AppendQueue {
    waiting: std::collections::VecDeque<AppendJob>,
    appenders: usize,
}

/// What one batch's append answers: its domain events, the log's acks, and the visits it touched.
type AppendAnswer = Result<(Vec<Event>, Vec<Appended>, BTreeSet<Touched>), AppendError>;

/// One validated batch on its way into the log and the projection.
struct AppendJob {
    /// The request's events, encoded canonically for the log by the appender.
    wire: Vec<pb::Event>,
    events: Vec<Event>,
    recorded_by: String,
    /// The ingest gate, held until the batch is applied (see [`App::submit_inner`]).
    gate: Box<dyn Send + Sync>,
    answer: tokio::sync::oneshot::Sender<AppendAnswer>,
}

impl std::fmt::Debug for AppendJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendJob")
            .field("events", &self.events.len())
            .field("recorded_by", &self.recorded_by)
            .finish_non_exhaustive()
    }
}

impl AppendJob {
    /// The batch as the log stores it.
    fn new_events(&self) -> Vec<NewEvent> {
        self.wire
            .iter()
            .zip(&self.events)
            .map(|(wire_event, event)| NewEvent {
                event_id: event.event_id.to_string(),
                stream_key: wire::stream_key(event),
                expected_version: myolog_storage::ExpectedVersion::Any,
                event_type: event.body.type_name().into(),
                schema_version: SCHEMA_VERSION,
                // Re-encoded from the decoded message: canonical bytes (unknown fields dropped), so
                // a retry with the same content is recognised as a duplicate.
                payload: wire::stored::encode(wire_event),
            })
            .collect()
    }
}

/// Frees an appender's place if it ends by a panic, so later batches start another one.
struct AppenderSlot<'a> {
    queue: &'a Mutex<AppendQueue>,
    released: bool,
}

impl Drop for AppenderSlot<'_> {
    fn drop(&mut self) {
        if !self.released {
            lock_queue(self.queue).appenders -= 1;
        }
    }
}

fn lock_queue(queue: &Mutex<AppendQueue>) -> MutexGuard<'_, AppendQueue> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How a running archiver constrains ingest (`serve --archive`).
#[derive(Debug, Clone)]
pub struct ArchiveGuard {
    /// The archiver's lag report.
    pub lag: myolog_archive::LagHandle,
    /// Refuse writes while more than this many durable events are not archived (`None`: never;
    /// an object-store outage then never stops data entry).
    pub max_lag_events: Option<u64>,
    /// Answer an ingest call only once its events are in a sealed segment.
    pub ack_after_archive: bool,
}

/// How long an ingest call waits for the archive under `ack_after_archive` before answering
/// UNAVAILABLE (the events are durable in the log; a retry is answered as a duplicate).
pub const ARCHIVE_ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a follower stopped copying from its primary.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(
        "event seq {seq} from the primary has event type {event_type:?}, which this build cannot \
         read ({reason}): upgrade the follower before it follows this primary"
    )]
    UnknownEvent {
        seq: u64,
        event_type: String,
        reason: String,
    },
    #[error("event seq {seq} from the primary does not verify: {reason}")]
    Undecodable { seq: u64, reason: String },
    #[error("the primary's events do not chain onto this follower's log: {0}")]
    Refused(#[from] myolog_storage::ReplicationError),
    #[error("apply task failed: {0}")]
    Task(String),
}

impl App {
    /// Opens the log and rebuilds the projection by replaying it (blocking: call from a blocking
    /// context, e.g. `spawn_blocking`).
    pub fn open_blocking(config: &AppConfig) -> Result<App, StartError> {
        let options = LogOptions {
            max_batch_events: config.max_events_per_batch,
            ..LogOptions::default()
        };
        let log = EventLog::open(&config.data_dir, options)?;
        if let Some(cut) = log.removed_cut_commit() {
            tracing::warn!(
                first_seq = cut.first_seq,
                last_seq = cut.last_seq,
                "removed a group commit cut by a crash before it was committed (never acknowledged)"
            );
        }
        // The start-up projection is the audit replay's: the same events applied in the same
        // order, but read and decoded on every core, which is most of the time to SERVING.
        let projection = myolog_audit::replay::project(
            &log,
            myolog_audit::replay::AsOf::Head,
            &mut myolog_audit::progress::Progress::hidden(),
        )
        .map_err(|error| match error {
            myolog_audit::AuditError::Decode { seq, reason } => StartError::Replay { seq, reason },
            myolog_audit::AuditError::Read(error) | myolog_audit::AuditError::Open(error) => {
                StartError::Open(error)
            }
            other => StartError::Task(other.to_string()),
        })?
        .projection;
        let (outcomes_tx, _) = broadcast::channel(4096);
        let (draining, _) = watch::channel(false);
        Ok(App {
            log,
            projection: RwLock::new(projection),
            outcomes_tx,
            principal: config.principal.clone(),
            draining,
            metrics: Arc::new(Metrics::new()),
            ingest_gate: Arc::new(tokio::sync::RwLock::new(())),
            follow: config.follow.clone(),
            archive: std::sync::OnceLock::new(),
            head_key: std::sync::OnceLock::new(),
            appends: Mutex::new(AppendQueue::default()),
            max_batch_events: config.max_events_per_batch,
        })
    }

    /// Queues a validated batch for the log. Batches that wait together are appended together:
    /// an appender takes every queued batch of one recorded-by principal (up to the log's batch
    /// limit) and appends them in one call, then applies them to the projection under one write
    /// lock, in sequence order, before their gates are released. The log answers exactly as if
    /// each batch had been its own call in the same group commit (a repeated id is a duplicate of
    /// the earlier one, acks keep the batch's order); if the merged append fails, nothing of it
    /// was stored and each batch is appended on its own, so every batch gets its own answer.
    fn queue_append(self: &Arc<Self>, job: AppendJob) {
        let start = {
            let mut queue = lock_queue(&self.appends);
            queue.waiting.push_back(job);
            let start = queue.appenders < APPENDERS;
            if start {
                queue.appenders += 1;
            }
            start
        };
        if start {
            let app = Arc::clone(self);
            // A JoinHandle dropped detaches the task: the batches answer through their channels.
            drop(tokio::task::spawn_blocking(move || app.run_appender()));
        }
    }

    /// One appender: appends queued batches until none is waiting.
    fn run_appender(&self) {
        let mut slot = AppenderSlot {
            queue: &self.appends,
            released: false,
        };
        loop {
            let jobs = {
                let mut queue = lock_queue(&self.appends);
                let Some(first) = queue.waiting.pop_front() else {
                    queue.appenders -= 1;
                    slot.released = true;
                    return;
                };
                let mut events = first.events.len();
                let mut jobs = vec![first];
                while let Some(next) = queue.waiting.front() {
                    if next.recorded_by != jobs[0].recorded_by
                        || events + next.events.len() > self.max_batch_events
                    {
                        break;
                    }
                    events += next.events.len();
                    jobs.extend(queue.waiting.pop_front());
                }
                jobs
            };
            self.append_jobs(jobs);
        }
    }

    /// Appends, applies and answers the batches of one appender turn.
    fn append_jobs(&self, jobs: Vec<AppendJob>) {
        let merged = if jobs.len() > 1 {
            let batch: Vec<NewEvent> = jobs.iter().flat_map(AppendJob::new_events).collect();
            self.log.append(batch, &jobs[0].recorded_by).ok()
        } else {
            None
        };
        let results: Vec<Result<Vec<Appended>, AppendError>> = match merged {
            Some(mut appended) => {
                // Split the acks back into the batches, in order.
                let mut per_job = Vec::with_capacity(jobs.len());
                for job in jobs.iter().rev() {
                    per_job.push(Ok(appended.split_off(appended.len() - job.events.len())));
                }
                per_job.reverse();
                per_job
            }
            None => jobs
                .iter()
                .map(|job| self.log.append(job.new_events(), &job.recorded_by))
                .collect(),
        };
        let mut projection = self.projection_mut();
        let touched: Vec<Option<BTreeSet<Touched>>> = jobs
            .iter()
            .zip(&results)
            .map(|(job, result)| {
                let appended = result.as_ref().ok()?;
                Some(apply_all(
                    &mut projection,
                    job.events
                        .iter()
                        .zip(appended)
                        .filter(|(_, ack)| !ack.duplicate)
                        .map(|(event, ack)| (ack.seq, event, job.recorded_by.as_str())),
                ))
            })
            .collect();
        drop(projection);
        for ((job, result), touched) in jobs.into_iter().zip(results).zip(touched) {
            let answer = result.map(|appended| (job.events, appended, touched.unwrap_or_default()));
            // A caller that went away in between is not an error: its batch is stored and applied.
            let _ = job.answer.send(answer);
            drop(job.gate);
        }
    }

    /// Attaches the running archiver's lag (once; a second call is ignored and returns false).
    pub fn set_archive_guard(&self, guard: ArchiveGuard) -> bool {
        self.archive.set(guard).is_ok()
    }

    /// Gives `Audit.GetSignedHead` its key (once; a second call is ignored and returns false).
    pub fn set_head_key(&self, key: myolog_archive::HeadSigningKey) -> bool {
        self.head_key.set(Arc::new(key)).is_ok()
    }

    /// The head-signing key, if the server was given one.
    pub fn head_key(&self) -> Option<Arc<myolog_archive::HeadSigningKey>> {
        self.head_key.get().cloned()
    }

    /// The archiver's lag, if an archiver runs.
    pub fn archive_lag(&self) -> Option<myolog_archive::ArchiveLag> {
        self.archive.get().map(|guard| guard.lag.get())
    }

    /// The primary this server follows, if it is a follower.
    pub fn primary(&self) -> Option<&str> {
        self.follow.as_deref()
    }

    /// Refuses a write on a follower (naming the primary) or while the archive lags too far.
    fn check_writable(&self) -> Result<(), ServiceError> {
        if let Some(primary) = &self.follow {
            return Err(ServiceError::ReadOnly(format!(
                "this server is a read-only follower of {primary}: send writes to the primary"
            )));
        }
        if let Some(guard) = self.archive.get()
            && let Some(max) = guard.max_lag_events
        {
            let lag = guard.lag.get();
            let behind = self.log.head().seq.saturating_sub(lag.archived_seq);
            if behind > max {
                let cause = lag.last_error.map_or_else(String::new, |error| {
                    format!("; last archive error: {error}")
                });
                return Err(ServiceError::ArchiveLagging(format!(
                    "writes refused: the archive is {behind} events ({:.1} s) behind the log, more \
                     than --max-archive-lag {max}{cause}",
                    lag.seconds_behind
                )));
            }
        }
        Ok(())
    }

    /// Under `ack_after_archive`, waits until event `seq` is archived.
    async fn wait_archived(&self, seq: u64) -> Result<(), ServiceError> {
        let Some(guard) = self.archive.get().filter(|guard| guard.ack_after_archive) else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let mut draining = self.draining();
        loop {
            let lag = guard.lag.get();
            if lag.archived_seq >= seq {
                return Ok(());
            }
            if started.elapsed() >= ARCHIVE_ACK_TIMEOUT || *draining.borrow() {
                let cause = lag.last_error.map_or_else(String::new, |error| {
                    format!(" (last archive error: {error})")
                });
                return Err(ServiceError::Unavailable(format!(
                    "event seq {seq} is durable in the log but not yet archived after {} s{cause}; \
                     retry: the batch will be answered as a duplicate once archived",
                    started.elapsed().as_secs()
                )));
            }
            // The lag handle has no notification; the archiver polls at least every 10 ms, so
            // polling it as often costs nothing noticeable.
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(5)) => {}
                _ = draining.changed() => {}
            }
        }
    }

    /// Appends events another log numbered and chained (a follower's copy of its primary) and
    /// applies them to the projection, broadcasting the outcomes they change. Every event is
    /// decoded before anything is stored: an event this build cannot read stops the follower
    /// without writing it.
    pub async fn apply_replicated(
        self: &Arc<Self>,
        events: Vec<myolog_storage::StoredEvent>,
    ) -> Result<u64, ReplicaError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut decoded = Vec::with_capacity(events.len());
        for stored in &events {
            let recorded = stored
                .decode()
                .map_err(|reason| ReplicaError::Undecodable {
                    seq: stored.seq,
                    reason: reason.to_string(),
                })?;
            let event = decode_stored(&recorded).map_err(|reason| ReplicaError::UnknownEvent {
                seq: recorded.seq,
                event_type: recorded.event_type.clone(),
                reason,
            })?;
            if event.body.type_name() != recorded.event_type {
                return Err(ReplicaError::UnknownEvent {
                    seq: recorded.seq,
                    event_type: recorded.event_type.clone(),
                    reason: format!("its payload reads as {}", event.body.type_name()),
                });
            }
            decoded.push((recorded.seq, event, recorded.recorded_by));
        }
        let gate = Arc::clone(&self.ingest_gate).write_owned().await;
        let app = Arc::clone(self);
        let count = events.len() as u64;
        let touched = tokio::task::spawn_blocking(move || {
            let _gate = gate;
            app.log.append_replicated(&events)?;
            let mut projection = app.projection_mut();
            let touched = apply_all(
                &mut projection,
                decoded
                    .iter()
                    .map(|(seq, event, by)| (*seq, event, by.as_str())),
            );
            drop(projection);
            Ok::<_, ReplicaError>(touched)
        })
        .await
        .map_err(|e| ReplicaError::Task(e.to_string()))??;
        let outcomes = self.outcomes_for(&touched);
        if self.outcomes_tx.receiver_count() > 0 {
            for outcome in &outcomes {
                let _ = self.outcomes_tx.send(outcome.clone());
            }
        }
        Ok(count)
    }

    /// [`App::open_blocking`] on the blocking pool.
    pub async fn open(config: AppConfig) -> Result<Arc<App>, StartError> {
        tokio::task::spawn_blocking(move || App::open_blocking(&config).map(Arc::new))
            .await
            .map_err(|e| StartError::Task(e.to_string()))?
    }

    /// The log (for audit reads).
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The log's directory.
    pub fn data_dir(&self) -> &Path {
        self.log.path()
    }

    /// Read access to the projection.
    pub fn projection(&self) -> RwLockReadGuard<'_, Projection> {
        self.projection
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn projection_mut(&self) -> RwLockWriteGuard<'_, Projection> {
        self.projection
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A receiver of every outcome change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<pb::VisitOutcome> {
        self.outcomes_tx.subscribe()
    }

    /// Tells long-lived streams to finish (graceful shutdown).
    pub fn start_draining(&self) {
        self.draining.send_replace(true);
    }

    /// A receiver that changes to `true` when the service starts draining.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// The configured principal (recorded-by of [`App::submit`]; the local principal of `auth`).
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Ingests one batch: the whole path from wire events to durable acks and recomputed outcomes.
    pub async fn submit(
        self: &Arc<Self>,
        request: pb::SubmitRequest,
    ) -> Result<pb::SubmitResponse, ServiceError> {
        let principal = self.principal.clone();
        self.submit_as(request, &principal).await
    }

    /// [`App::submit`] recorded by the authenticated caller (`crate::auth`), never the payload.
    pub async fn submit_as(
        self: &Arc<Self>,
        request: pb::SubmitRequest,
        recorded_by: &str,
    ) -> Result<pb::SubmitResponse, ServiceError> {
        self.submit_scoped(request, recorded_by, None).await
    }

    /// [`App::submit_as`] for a writer scoped to `sites` (`None`: study-wide): checked against the
    /// projection under the ingest gate, so no enrolment can change a subject's site in between.
    /// Outside them: PERMISSION_DENIED, nothing stored.
    pub async fn submit_scoped(
        self: &Arc<Self>,
        request: pb::SubmitRequest,
        recorded_by: &str,
        sites: Option<&BTreeSet<String>>,
    ) -> Result<pb::SubmitResponse, ServiceError> {
        let received = std::time::Instant::now();
        let events = request.events.len();
        let result = self.submit_inner(request, recorded_by, sites).await;
        match &result {
            Ok(response) => {
                let written = response.acks.iter().filter(|a| !a.duplicate).count();
                self.metrics
                    .events_appended(u64::try_from(written).unwrap_or(u64::MAX));
                self.metrics.observe_append(received.elapsed());
                for _ in &response.outcomes {
                    self.metrics.outcome_computed("visit");
                }
            }
            Err(error) if error.is_rejection() => {
                for _ in 0..events.max(1) {
                    self.metrics.event_rejected(error.reason_code());
                }
            }
            Err(error) => self.metrics.event_rejected(error.reason_code()),
        }
        result
    }

    async fn submit_inner(
        self: &Arc<Self>,
        request: pb::SubmitRequest,
        recorded_by: &str,
        sites: Option<&BTreeSet<String>>,
    ) -> Result<pb::SubmitResponse, ServiceError> {
        self.check_writable()?;
        if request.batch_id.chars().count() > 64 {
            return Err(ServiceError::invalid(vec![Violation::new(
                "batch_id",
                "at most 64 characters",
            )]));
        }
        let events = wire::batch_from_proto(&request.events).map_err(ServiceError::invalid)?;
        // Validation, append and apply are one critical section against study-level changes: a
        // batch of clinical events holds the ingest gate shared (concurrent batches still share one
        // group commit), a batch with a study-level event (register, amend, lock, unlock) holds it
        // exclusively. So no write is validated against a lock state that changes before it is
        // stored: a StudyLocked waits for the writes in flight and is applied before any later
        // write is validated. The guard moves into the blocking task that appends *and* applies,
        // so a client that goes away mid-append cannot leave a stored lock unapplied.
        let exclusive = events.iter().any(|event| !event.body.needs_subject());
        let gate: Box<dyn Send + Sync> = if exclusive {
            Box::new(Arc::clone(&self.ingest_gate).write_owned().await)
        } else {
            Box::new(Arc::clone(&self.ingest_gate).read_owned().await)
        };
        {
            let projection = self.projection();
            if let Some(sites) = sites {
                projection
                    .check_sites(&events, sites)
                    .map_err(ServiceError::PermissionDenied)?;
            }
            let mut violations = myolog_wire::registration::check_protocol_study_ids(
                &request.events,
                &events,
                |id| projection.seq_of(id).is_some(),
            );
            violations.extend(projection.check_visits(&events));
            if !violations.is_empty() {
                return Err(ServiceError::invalid(violations));
            }
            let violations = projection.check_batch(&events);
            if !violations.is_empty() {
                return Err(ServiceError::precondition(violations));
            }
        }
        let batch_id = request.batch_id;
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue_append(AppendJob {
            wire: request.events,
            events,
            recorded_by: recorded_by.to_string(),
            gate,
            answer,
        });
        let (events, appended, touched) = answered
            .await
            .map_err(|_| ServiceError::Internal("the appender ended without an answer".into()))??;
        if let Some(last) = appended.iter().map(|ack| ack.seq).max() {
            self.wait_archived(last).await?;
        }
        let outcomes = self.outcomes_for(&touched);
        if self.outcomes_tx.receiver_count() > 0 {
            for outcome in &outcomes {
                // A receiver that went away in between is not an error.
                let _ = self.outcomes_tx.send(outcome.clone());
            }
        }
        let acks = events
            .iter()
            .zip(&appended)
            .enumerate()
            .map(|(index, (event, ack))| pb::Ack {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                event_id: event.event_id.to_string(),
                sequence: ack.seq,
                hash: ack.hash.0.to_vec(),
                duplicate: ack.duplicate,
            })
            .collect();
        Ok(pb::SubmitResponse {
            batch_id,
            acks,
            rejection: None,
            outcomes,
        })
    }

    /// Outcomes of the touched subjects x visits, computed from the current projection; in a
    /// protocol study each carries its subject's endpoint results, so an EDC or a dashboard sees an
    /// endpoint change without asking (computed once per subject).
    fn outcomes_for(&self, touched: &BTreeSet<Touched>) -> Vec<pb::VisitOutcome> {
        let projection = self.projection();
        let mut out: Vec<myolog_projection::report::VisitOutcome> = Vec::new();
        for t in touched {
            let Some(study) = projection.study(&t.study) else {
                continue;
            };
            let Some(subject) = study.subjects.get(&t.subject) else {
                continue;
            };
            let first = out.len();
            match &t.visit {
                Some(visit) => out.extend(outcomes::one_visit_outcome(
                    &t.study,
                    study,
                    &t.subject,
                    subject,
                    visit,
                    projection.head_seq,
                )),
                None => out.extend(outcomes::subject_outcomes(
                    &t.study,
                    study,
                    &t.subject,
                    subject,
                    projection.head_seq,
                )),
            }
            if study.protocol.is_some() && out.len() > first {
                let endpoints = outcomes::subject_endpoints(study, subject);
                for outcome in &mut out[first..] {
                    outcome.endpoints.clone_from(&endpoints);
                }
            }
        }
        drop(projection);
        out.iter().map(to_wire::visit_outcome).collect()
    }

    /// Reads the log from `from` (inclusive) up to the head at call time, at most `limit` events (0 = all).
    pub fn head_seq(&self) -> u64 {
        self.log.head().seq
    }
}

/// Applies recorded events `(seq, event, recorded_by)` in order; returns the subjects x visits
/// whose outcomes they change (see [`dose_touches_endpoints`], [`amendment_touches`]).
fn apply_all<'a>(
    projection: &mut Projection,
    events: impl Iterator<Item = (u64, &'a Event, &'a str)>,
) -> BTreeSet<Touched> {
    let mut touched = BTreeSet::new();
    let mut dosed = BTreeSet::new();
    for (seq, event, recorded_by) in events {
        if let Some(t) = projection.apply_recorded(seq, event, recorded_by) {
            touched.insert(t);
        } else if let Some(t) = dose_touches_endpoints(projection, event) {
            dosed.insert(t);
        } else {
            touched.extend(amendment_touches(projection, event));
        }
    }
    // A subject whose visits the batch touched already gets its endpoints with them.
    for t in dosed {
        if !touched
            .iter()
            .any(|other: &Touched| (&other.study, &other.subject) == (&t.study, &t.subject))
        {
            touched.insert(t);
        }
    }
    touched
}

/// A dose record changes no visit outcome, but in a protocol study it can change an endpoint (a
/// delayed start's own first dose, BIRD's prednisone-free window): when the batch touches nothing
/// else of the subject, its outcomes are sent again, carrying the endpoints as they are now.
fn dose_touches_endpoints(projection: &Projection, event: &Event) -> Option<Touched> {
    let EventBody::DoseRecorded(_) = &event.body else {
        return None;
    };
    projection.study(&event.study)?.protocol.as_ref()?;
    Some(Touched {
        study: event.study.clone(),
        subject: event.subject.clone()?,
        visit: None,
    })
}

/// A new protocol version can change every outcome of its study: its conventions score the visits,
/// its schedule places them and its endpoints read them. Every subject of the study is touched, so
/// the answer and `Watch` carry the outcomes recomputed under the new version.
fn amendment_touches(projection: &Projection, event: &Event) -> Vec<Touched> {
    let EventBody::ProtocolAmended { .. } = &event.body else {
        return Vec::new();
    };
    let Some(study) = projection.study(&event.study) else {
        return Vec::new();
    };
    study
        .subjects
        .keys()
        .map(|subject| Touched {
            study: event.study.clone(),
            subject: subject.clone(),
            visit: None,
        })
        .collect()
}

/// Decodes a stored event back to a validated domain event (the payload codec is the wire's).
pub fn decode_stored(stored: &RecordedEvent) -> Result<Event, String> {
    myolog_wire::stored::decode(stored.schema_version, &stored.payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use myolog_synth::Cohort;

    type Answered = tokio::sync::oneshot::Receiver<AppendAnswer>;

    fn job(request: &pb::SubmitRequest, recorded_by: &str) -> (AppendJob, Answered) {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = AppendJob {
            wire: request.events.clone(),
            events: wire::batch_from_proto(&request.events).expect("a valid synthetic batch"),
            recorded_by: recorded_by.into(),
            gate: Box::new(()),
            answer,
        };
        (job, answered)
    }

    /// Queues `batches` while no appender may start, then runs one appender over them: they wait
    /// together, as concurrent batches do, so the appender merges what it may.
    fn append_together(app: &App, batches: &[(pb::SubmitRequest, &str)]) -> Vec<AppendAnswer> {
        let mut answered = Vec::new();
        {
            let mut queue = lock_queue(&app.appends);
            queue.appenders += 1;
            for (request, recorded_by) in batches {
                let (job, answer) = job(request, recorded_by);
                queue.waiting.push_back(job);
                answered.push(answer);
            }
        }
        app.run_appender();
        assert_eq!(lock_queue(&app.appends).appenders, 0, "the appender left");
        answered
            .into_iter()
            .map(|mut answer| answer.try_recv().expect("every batch answered"))
            .collect()
    }

    /// (seq, duplicate) of each ack and the touched visits, or the error's text.
    type Summary = Result<(Vec<(u64, bool)>, BTreeSet<Touched>), String>;

    fn summary(answer: &AppendAnswer) -> Summary {
        answer
            .as_ref()
            .map(|(_, acks, touched)| {
                let acks = acks.iter().map(|ack| (ack.seq, ack.duplicate)).collect();
                (acks, touched.clone())
            })
            .map_err(ToString::to_string)
    }

    /// (seq, recorded-by, event type, payload) of every stored event.
    fn stored(app: &App) -> Vec<(u64, String, String, Vec<u8>)> {
        app.log
            .read_range(1..)
            .map(|event| {
                let event = event.expect("readable");
                (
                    event.seq,
                    event.recorded_by,
                    event.event_type,
                    event.payload.to_vec(),
                )
            })
            .collect()
    }

    /// The batches of both tests: the study and two subjects, then each subject's baseline, a
    /// resend of one baseline form (a duplicate) and a second principal's batch.
    fn batches() -> Vec<(pb::SubmitRequest, &'static str)> {
        let cohort = Cohort::new(7, 2);
        let first = cohort.visit_batch(0, "baseline");
        let resent = pb::SubmitRequest {
            batch_id: "resent".into(),
            events: first.events[..1].to_vec(),
        };
        vec![
            (first, "edc-a"),
            (cohort.visit_batch(1, "baseline"), "edc-a"),
            (resent, "edc-a"),
            (cohort.visit_batch(0, "week4"), "edc-b"),
        ]
    }

    fn open(dir: &Path) -> App {
        let app = App::open_blocking(&AppConfig::new(dir)).expect("open");
        let enrollment = Cohort::new(7, 2).enrollment();
        let answers = append_together(&app, &[(enrollment, "edc-a")]);
        assert!(answers[0].is_ok(), "enrollment: {:?}", summary(&answers[0]));
        app
    }

    #[test]
    fn batches_appended_together_answer_as_if_appended_one_by_one() {
        let (together, one_by_one) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let merged_app = open(together.path());
        let single_app = open(one_by_one.path());
        let merged: Vec<Summary> = append_together(&merged_app, &batches())
            .iter()
            .map(summary)
            .collect();
        let single: Vec<Summary> = batches()
            .into_iter()
            .map(|batch| summary(&append_together(&single_app, &[batch])[0]))
            .collect();
        assert_eq!(merged, single);
        // The resent form is its original's duplicate, in the merged append as on its own.
        let first = merged[0].as_ref().expect("first batch stored");
        let resent = merged[2].as_ref().expect("resent batch answered");
        assert_eq!(resent.0, vec![(first.0[0].0, true)]);
        assert_eq!(stored(&merged_app), stored(&single_app));
        assert!(
            stored(&merged_app)
                .iter()
                .any(|(_, recorded_by, _, _)| recorded_by == "edc-b"),
            "the second principal's batch is recorded as its own"
        );
    }

    #[test]
    fn a_conflicting_batch_fails_alone_and_the_others_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let app = open(dir.path());
        let mut batches = batches();
        // A form under the id of subject 0's first baseline form, with other content.
        let mut conflicting = batches[1].0.clone();
        conflicting.events.truncate(1);
        conflicting.events[0].event_id = batches[0].0.events[0].event_id.clone();
        batches.insert(1, (conflicting, "edc-a"));
        let answers = append_together(&app, &batches);
        let Err(error) = &answers[1] else {
            panic!("the conflict is refused: {:?}", summary(&answers[1]));
        };
        assert!(
            matches!(error, AppendError::EventIdConflict { index: 0, .. }),
            "{error}"
        );
        for (index, answer) in answers.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert!(answer.is_ok(), "batch {index}: {:?}", summary(answer));
        }
        let appended: usize = batches
            .iter()
            .enumerate()
            .filter(|(index, _)| ![1, 3].contains(index))
            .map(|(_, (request, _))| request.events.len())
            .sum();
        let enrolled = Cohort::new(7, 2).enrollment().events.len();
        assert_eq!(stored(&app).len(), enrolled + appended);
    }
}
