//! `Audit`: ReadEvents, Verify, Replay (from [`crate::audit_service`]), ReadStored for followers and
//! GetSignedHead, all over the log itself rather than the projection.

use myolog_proto::v1::audit_server::Audit;

use super::*;

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
