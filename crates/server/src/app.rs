//! The service core shared by the gRPC handlers: the event log, the projection and the outcome
//! broadcast. [`App::submit`] is the one ingest path (validate, check against the projection, append
//! durably, apply, recompute outcomes); `Submit` and `Append` both call it.
//!
//! Batches are atomic: an invalid event rejects the whole batch and nothing of it is stored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use myolog_domain::event::{Event, EventBody};
use myolog_proto::v1 as pb;
use myolog_storage::{EventLog, LogOptions, NewEvent, RecordedEvent};
use prost::Message;
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
}

impl AppConfig {
    /// A configuration with the default principal and the default batch limit.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            principal: DEFAULT_PRINCIPAL.to_string(),
            max_events_per_batch: crate::auth::limits::Limits::default().max_events_per_batch,
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
        let mut projection = Projection::default();
        let head = log.head();
        for stored in log.read_range(1..=head.seq) {
            let stored = stored?;
            let event = decode_stored(&stored).map_err(|reason| StartError::Replay {
                seq: stored.seq,
                reason,
            })?;
            projection.apply_recorded(stored.seq, &event, &stored.recorded_by);
        }
        projection.head_seq = head.seq;
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
        })
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
        let batch: Vec<NewEvent> = request
            .events
            .iter()
            .zip(&events)
            .map(|(wire_event, event)| NewEvent {
                event_id: event.event_id.to_string(),
                stream_key: wire::stream_key(event),
                expected_version: myolog_storage::ExpectedVersion::Any,
                event_type: event.body.type_name().into(),
                schema_version: SCHEMA_VERSION,
                // Re-encoded from the decoded message: canonical bytes (unknown fields dropped), so
                // a retry with the same content is recognised as a duplicate.
                payload: wire_event.encode_to_vec(),
            })
            .collect();
        let app = Arc::clone(self);
        let recorded_by = recorded_by.to_string();
        let (events, appended, touched) = tokio::task::spawn_blocking(move || {
            let _gate = gate;
            let appended = app.log.append(batch, &recorded_by)?;
            let mut touched = BTreeSet::new();
            let mut dosed = BTreeSet::new();
            let mut projection = app.projection_mut();
            for (event, ack) in events.iter().zip(&appended) {
                if ack.duplicate {
                    continue;
                }
                if let Some(t) = projection.apply_recorded(ack.seq, event, &recorded_by) {
                    touched.insert(t);
                } else if let Some(t) = dose_touches_endpoints(&projection, event) {
                    dosed.insert(t);
                } else {
                    touched.extend(amendment_touches(&projection, event));
                }
            }
            drop(projection);
            // A subject whose visits the batch touched already gets its endpoints with them.
            for t in dosed {
                if !touched
                    .iter()
                    .any(|other: &Touched| (&other.study, &other.subject) == (&t.study, &t.subject))
                {
                    touched.insert(t);
                }
            }
            Ok::<_, myolog_storage::AppendError>((events, appended, touched))
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("append task: {e}")))??;
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
            batch_id: request.batch_id,
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
