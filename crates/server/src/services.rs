//! The tonic service implementations: `Ingest` (Submit, Append), `Outcomes` (GetSubject, GetCohort,
//! Watch) and `Audit` (ReadEvents, Verify, ReadStored for followers, GetSignedHead, and Replay from
//! [`crate::audit_service`]). Thin: each call
//! maps the wire to [`App`] and every error through [`crate::error::to_status`].

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use myolog_domain::event::{StudyId, SubjectId};
use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_server::Audit;
use myolog_proto::v1::ingest_server::Ingest;
use myolog_proto::v1::outcomes_server::Outcomes;
use prost::Message;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tonic_types::StatusExt;

use crate::app::App;
use crate::error::{ServiceError, to_status};
use myolog_projection::{eligibility, outcome as outcomes};
use myolog_wire::outcome as to_wire;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// All three services over one [`App`].
#[derive(Debug, Clone)]
pub struct Services {
    app: Arc<App>,
}

impl Services {
    /// Services over a started app.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

/// The in-band rejection of a batch, derived from the one status mapping.
fn rejection(error: &ServiceError) -> pb::Rejection {
    let status = to_status(error);
    pb::Rejection {
        code: format!("{:?}", status.code()).to_uppercase_snake(),
        message: status.message().to_string(),
        bad_request: status.get_details_bad_request().map(Into::into),
    }
}

trait UpperSnake {
    fn to_uppercase_snake(&self) -> String;
}

impl UpperSnake for String {
    /// `InvalidArgument` -> `INVALID_ARGUMENT`.
    fn to_uppercase_snake(&self) -> String {
        let mut out = String::with_capacity(self.len() + 4);
        for (i, c) in self.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }
}

#[tonic::async_trait]
impl Ingest for Services {
    type SubmitStream = BoxStream<pb::SubmitResponse>;

    async fn submit(
        &self,
        request: Request<Streaming<pb::SubmitRequest>>,
    ) -> Result<Response<Self::SubmitStream>, Status> {
        let principal = crate::auth::caller(&request)?;
        let mut inbound = request.into_inner();
        let app = Arc::clone(&self.app);
        let mut draining = app.draining();
        let (tx, rx) = mpsc::channel::<Result<pb::SubmitResponse, Status>>(16);
        tokio::spawn(async move {
            let _open = app.metrics().stream_opened();
            loop {
                let next = tokio::select! {
                    next = inbound.next() => next,
                    _ = draining.wait_for(|d| *d) => {
                        tracing::debug!("Submit stream closed by shutdown");
                        break;
                    }
                };
                let request = match next {
                    None => break,
                    Some(Err(status)) => {
                        tracing::debug!(%status, "Submit stream ended by the client");
                        break;
                    }
                    Some(Ok(request)) => request,
                };
                let batch_id = request.batch_id.clone();
                // Scope (auth): a batch outside the caller's studies ends the stream, nothing stored.
                if let Err(status) = principal.check_batch(&request.events) {
                    let _ = tx.send(Err(status)).await;
                    break;
                }
                let answer = match app
                    .submit_scoped(request, &principal.recorded_by(), principal.site_scope())
                    .await
                {
                    Ok(response) => Ok(blind_response(&app, principal.sees_arms(), response)),
                    Err(error) if error.is_rejection() => {
                        tracing::info!(batch_id, %error, "batch rejected");
                        Ok(pb::SubmitResponse {
                            batch_id,
                            acks: Vec::new(),
                            rejection: Some(rejection(&error)),
                            outcomes: Vec::new(),
                        })
                    }
                    Err(error @ crate::error::ServiceError::PermissionDenied(_)) => {
                        tracing::info!(batch_id, %error, "batch denied");
                        Err(to_status(&error))
                    }
                    Err(error) => {
                        tracing::error!(%error, "Submit failed");
                        Err(to_status(&error))
                    }
                };
                let fatal = answer.is_err();
                if tx.send(answer).await.is_err() || fatal {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn append(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let principal = crate::auth::caller(&request)?;
        let request = request.into_inner();
        principal.check_batch(&request.events)?;
        self.app
            .submit_scoped(request, &principal.recorded_by(), principal.site_scope())
            .await
            .map(|response| {
                Response::new(blind_response(&self.app, principal.sees_arms(), response))
            })
            .map_err(|error| to_status(&error))
    }
}

fn study_id(text: &str) -> Result<StudyId, Status> {
    StudyId::new(text).map_err(|p| {
        to_status(&ServiceError::invalid(vec![crate::error::Violation::new(
            "study_id",
            p.to_string(),
        )]))
    })
}

#[tonic::async_trait]
impl Outcomes for Services {
    async fn get_subject(
        &self,
        request: Request<pb::GetSubjectRequest>,
    ) -> Result<Response<pb::SubjectOutcomes>, Status> {
        let caller = crate::auth::caller(&request)?;
        caller.check_read(&request.get_ref().study_id)?;
        let request = request.into_inner();
        let study_id = study_id(&request.study_id)?;
        let subject_id = SubjectId::new(&request.subject_id).map_err(|p| {
            to_status(&ServiceError::invalid(vec![crate::error::Violation::new(
                "subject_id",
                p.to_string(),
            )]))
        })?;
        let projection = self.app.projection();
        let study = projection.study(&study_id).ok_or_else(|| {
            to_status(&ServiceError::NotFound(format!(
                "study {study_id} is not registered"
            )))
        })?;
        let subject = study.subjects.get(&subject_id).ok_or_else(|| {
            to_status(&ServiceError::NotFound(format!(
                "subject {subject_id} is not enrolled in {study_id}"
            )))
        })?;
        let protocol = eligibility::protocol_version(&study_id, study, request.protocol_version)
            .map_err(|violation| to_status(&ServiceError::invalid(vec![violation])))?;
        // The version asked for (the one in force by default) scores the visits with its
        // conventions and places them in its schedule: a window an amendment widened is a
        // deviation again under the version before it.
        let mut visits: Vec<pb::VisitOutcome> = outcomes::subject_outcomes_under(
            protocol,
            &study_id,
            study,
            &subject_id,
            subject,
            projection.head_seq,
        )
        .iter()
        .map(to_wire::visit_outcome)
        .collect();
        let mut endpoints: Vec<pb::EndpointOutcome> = protocol
            .map(|protocol| outcomes::subject_endpoints_under(protocol, subject))
            .unwrap_or_default()
            .iter()
            .map(to_wire::endpoint_outcome)
            .collect();
        // Eligibility reads baseline values and enrolment facts, never the arm: blinding keeps it.
        let eligibility = protocol.map(|protocol| {
            to_wire::subject_eligibility(&eligibility::subject_eligibility(protocol, subject))
        });
        if study.hides_arms() && !caller.sees_arms() {
            visits.iter_mut().for_each(blind_outcome);
            // The subject's arm decides the baseline and visits an endpoint uses.
            endpoints.clear();
        }
        Ok(Response::new(pb::SubjectOutcomes {
            study_id: request.study_id,
            subject_id: request.subject_id,
            withdrawn: subject.withdrawn,
            visits,
            endpoints,
            eligibility,
        }))
    }

    async fn get_cohort(
        &self,
        request: Request<pb::GetCohortRequest>,
    ) -> Result<Response<pb::CohortOutcomes>, Status> {
        let caller = crate::auth::caller(&request)?;
        caller.check_read(&request.get_ref().study_id)?;
        let request = request.into_inner();
        let study_id = study_id(&request.study_id)?;
        let projection = self.app.projection();
        let study = projection.study(&study_id).ok_or_else(|| {
            to_status(&ServiceError::NotFound(format!(
                "study {study_id} is not registered"
            )))
        })?;
        let only = (!request.visit_id.is_empty()).then_some(request.visit_id.as_str());
        let protocol = eligibility::protocol_version(&study_id, study, request.protocol_version)
            .map_err(|violation| to_status(&ServiceError::invalid(vec![violation])))?;
        let mut cohort = to_wire::cohort(&outcomes::cohort_under(
            protocol,
            &study_id,
            study,
            only,
            projection.head_seq,
        ));
        if study.hides_arms() && !caller.sees_arms() {
            // Pooled tables reveal no subject's arm; the per-arm ones are the comparison itself.
            for table in &mut cohort.endpoints {
                table.arms.clear();
            }
            for visit in &mut cohort.visits {
                visit.arms.clear();
            }
        }
        Ok(Response::new(cohort))
    }

    type WatchStream = BoxStream<pb::VisitOutcome>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let caller = crate::auth::caller(&request)?;
        caller.check_read(&request.get_ref().study_id)?;
        let sees_arms = caller.sees_arms();
        let app = Arc::clone(&self.app);
        let filter = request.into_inner().study_id;
        let mut receiver = self.app.subscribe();
        let mut draining = self.app.draining();
        let (tx, rx) = mpsc::channel::<Result<pb::VisitOutcome, Status>>(64);
        let open = self.app.metrics().stream_opened();
        tokio::spawn(async move {
            let _open = open;
            loop {
                let next = tokio::select! {
                    next = receiver.recv() => next,
                    _ = draining.wait_for(|d| *d) => break,
                    () = tx.closed() => break,
                };
                match next {
                    Ok(mut outcome) => {
                        // Blinding as of the moment the outcome is sent: an unblinding takes effect
                        // on open streams.
                        if !sees_arms {
                            blind_if_hidden(&app, &mut outcome);
                        }
                        if (filter.is_empty() || outcome.study_id == filter)
                            && tx.send(Ok(outcome)).await.is_err()
                        {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "Watch subscriber lagged; outcomes skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Blinding (ICH E6(R3)) of one visit outcome for a blinded caller of a blinded study: arm
/// assignment itself never leaves through Outcomes, but the visit schedule does depend on it (the
/// target day and window are the arm's). The outcome values (DOI, TIS, CDASI) reveal no arm and stay.
fn blind_outcome(outcome: &mut pb::VisitOutcome) {
    outcome.schedule = None;
    // The subject's arm decides the baseline and visits an endpoint uses.
    outcome.endpoints.clear();
}

/// [`blind_outcome`] if the outcome's study hides arms now.
fn blind_if_hidden(app: &App, outcome: &mut pb::VisitOutcome) {
    let hides = StudyId::new(&outcome.study_id).is_ok_and(|study| {
        app.projection()
            .study(&study)
            .is_some_and(myolog_projection::Study::hides_arms)
    });
    if hides {
        blind_outcome(outcome);
    }
}

/// The outcomes of an ingest answer, blinded for a caller that may not see arms.
fn blind_response(
    app: &App,
    sees_arms: bool,
    mut response: pb::SubmitResponse,
) -> pb::SubmitResponse {
    if !sees_arms {
        for outcome in &mut response.outcomes {
            blind_if_hidden(app, outcome);
        }
    }
    response
}

fn timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: i32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
    }
}

#[tonic::async_trait]
impl Audit for Services {
    type ReadEventsStream = BoxStream<pb::LoggedEvent>;

    async fn read_events(
        &self,
        request: Request<pb::ReadEventsRequest>,
    ) -> Result<Response<Self::ReadEventsStream>, Status> {
        let caller = crate::auth::caller(&request)?;
        let request = request.into_inner();
        // The whole log needs a log-wide grant; a study-scoped one reads only its studies' events.
        if request.study_id.is_empty() {
            if caller.role.grants(crate::auth::Permission::ReadEvents) != crate::auth::Grant::All {
                return Err(Status::permission_denied(format!(
                    "{} ({}) may not read every study's events; name one of its studies (study_id)",
                    caller.name, caller.role
                )));
            }
        } else {
            caller.check_study(crate::auth::Permission::ReadEvents, &request.study_id)?;
        }
        let study = request.study_id.clone();
        let log = self.app.log().clone();
        let from = request.from_sequence.max(1);
        let head = log.head().seq;
        // With a study filter the limit counts what is returned, so the scan runs to the head.
        let last = if request.limit == 0 || !study.is_empty() {
            head
        } else {
            head.min(from.saturating_add(request.limit - 1))
        };
        let limit = request.limit;
        let (tx, rx) = mpsc::channel::<Result<pb::LoggedEvent, Status>>(256);
        tokio::task::spawn_blocking(move || {
            let mut sent = 0u64;
            for stored in log.read_range(from..=last) {
                // Stream keys are `study` or `study/subject` (ids never hold a slash).
                if let Ok(e) = &stored
                    && !study.is_empty()
                    && e.stream_key.split('/').next() != Some(study.as_str())
                {
                    continue;
                }
                if limit != 0 && sent == limit {
                    break;
                }
                sent += 1;
                let item = stored
                    .map(|e| pb::LoggedEvent {
                        sequence: e.seq,
                        event_id: e.event_id.clone(),
                        event_type: e.event_type.clone(),
                        schema_version: e.schema_version,
                        stream: e.stream_key.clone(),
                        stream_version: e.stream_version,
                        recorded_at: Some(timestamp(e.recorded_at_unix_nanos)),
                        recorded_by: e.recorded_by.clone(),
                        prev_hash: e.prev_hash.0.to_vec(),
                        hash: e.hash.0.to_vec(),
                        event: pb::Event::decode(e.payload.as_slice()).ok(),
                    })
                    .map_err(|error| to_status(&ServiceError::Storage(error)));
                let fatal = item.is_err();
                if tx.blocking_send(item).is_err() || fatal {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ReadStoredStream = BoxStream<pb::StoredEventRecord>;

    async fn read_stored(
        &self,
        request: Request<pb::ReadStoredRequest>,
    ) -> Result<Response<Self::ReadStoredStream>, Status> {
        let request = request.into_inner();
        let log = self.app.log().clone();
        let from = request.from_sequence.max(1);
        let head = log.head().seq;
        let last = if request.limit == 0 {
            head
        } else {
            head.min(from.saturating_add(request.limit - 1))
        };
        let (tx, rx) = mpsc::channel::<Result<pb::StoredEventRecord, Status>>(256);
        tokio::task::spawn_blocking(move || {
            for stored in log.read_stored_range(from..=last) {
                let item = stored
                    .map(|e| pb::StoredEventRecord {
                        sequence: e.seq,
                        recorded_at_unix_nanos: e.recorded_at_unix_nanos,
                        prev_hash: e.prev_hash.0.to_vec(),
                        hash: e.hash.0.to_vec(),
                        canonical_event: e.canonical,
                        head_sequence: head,
                    })
                    .map_err(|error| to_status(&ServiceError::Storage(error)));
                let fatal = item.is_err();
                if tx.blocking_send(item).is_err() || fatal {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_signed_head(
        &self,
        _request: Request<pb::GetSignedHeadRequest>,
    ) -> Result<Response<pb::SignedHeadResponse>, Status> {
        let Some(key) = self.app.head_key() else {
            return Err(Status::failed_precondition(
                "this server has no head-signing key: start it with --head-key FILE",
            ));
        };
        let log = self.app.log().clone();
        let signed =
            tokio::task::spawn_blocking(move || myolog_archive::SignedHead::sign(&log, &key))
                .await
                .map_err(|e| to_status(&ServiceError::Internal(format!("sign task: {e}"))))?
                .map_err(|e| match e {
                    myolog_archive::HeadError::EmptyLog => {
                        Status::failed_precondition(e.to_string())
                    }
                    other => to_status(&ServiceError::Internal(other.to_string())),
                })?;
        Ok(Response::new(pb::SignedHeadResponse {
            signed_head_json: signed.to_json(),
            head_sequence: signed.seq,
        }))
    }

    type ReplayStream = BoxStream<pb::ReplayedOutcome>;

    async fn replay(
        &self,
        request: Request<pb::ReplayRequest>,
    ) -> Result<Response<Self::ReplayStream>, Status> {
        let rx = crate::audit_service::replay_stream(self.app.log().clone(), &request.into_inner());
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn verify(
        &self,
        _request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let log = self.app.log().clone();
        let report = tokio::task::spawn_blocking(move || log.verify())
            .await
            .map_err(|e| to_status(&ServiceError::Internal(format!("verify task: {e}"))))?
            .map_err(|e| to_status(&ServiceError::Storage(e)))?;
        let (first_bad_sequence, reason) = report
            .first_bad
            .as_ref()
            .map(|f| (f.seq, f.reason.to_string()))
            .unwrap_or((0, String::new()));
        Ok(Response::new(pb::VerifyResponse {
            ok: report.first_bad.is_none(),
            checked: report.events_checked,
            first_bad_sequence,
            reason,
            head_sequence: report.head.seq,
            head_hash: if report.head.seq == 0 {
                Vec::new()
            } else {
                report.head.hash.0.to_vec()
            },
        }))
    }
}
