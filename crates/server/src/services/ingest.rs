//! `Ingest`: Submit (a stream of batches, one answer each) and Append (one batch), both through
//! the one ingest path of [`App`], answers blinded for callers that may not see arms.

use myolog_proto::v1::ingest_server::Ingest;

use super::*;

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
