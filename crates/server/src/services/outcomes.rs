//! `Outcomes`: GetSubject, GetCohort and Watch, read from the live projection under the protocol
//! version asked for (the one in force by default), blinded for callers that may not see arms.

use myolog_proto::v1::outcomes_server::Outcomes;

use super::*;

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
        let mut visits: Vec<pb::VisitOutcome> = projected::subject_outcomes_under(
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
            .map(|protocol| projected::subject_endpoints_under(protocol, subject))
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
        let mut cohort = to_wire::cohort(&projected::cohort_under(
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
