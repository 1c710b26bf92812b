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
        let app = Arc::clone(&self.app);
        let open = SubmitStream {
            _open: app.metrics().stream_opened(),
            inbound: request.into_inner(),
            draining: app.draining(),
            app,
            principal,
            ended: false,
        };
        // The answers are made as tonic polls for them, on the call's own task: no task and no
        // channel in between, so a batch costs no extra wake-up of another thread. Dropping the
        // stream mid-batch is safe: once queued, a batch is appended and applied by the appender.
        let answers = futures_util::stream::unfold(open, |mut open| async move {
            if open.ended {
                return None;
            }
            let answer = open.next_answer().await?;
            open.ended = answer.is_err();
            Some((answer, open))
        });
        Ok(Response::new(Box::pin(answers)))
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

/// One open `Submit` call: its inbound batches and who sends them.
struct SubmitStream {
    /// Counts the stream as open while it lives.
    _open: crate::metrics::OpenStream,
    inbound: Streaming<pb::SubmitRequest>,
    draining: tokio::sync::watch::Receiver<bool>,
    app: Arc<App>,
    principal: crate::auth::Caller,
    /// An error answer ends the stream.
    ended: bool,
}

impl SubmitStream {
    /// The answer to the next batch; `None` when the client ends the stream or the server drains.
    async fn next_answer(&mut self) -> Option<Result<pb::SubmitResponse, Status>> {
        let next = tokio::select! {
            next = self.inbound.next() => next,
            _ = self.draining.wait_for(|d| *d) => {
                tracing::debug!("Submit stream closed by shutdown");
                return None;
            }
        };
        let request = match next {
            None => return None,
            Some(Err(status)) => {
                tracing::debug!(%status, "Submit stream ended by the client");
                return None;
            }
            Some(Ok(request)) => request,
        };
        let (app, principal) = (&self.app, &self.principal);
        let batch_id = request.batch_id.clone();
        // Scope (auth): a batch outside the caller's studies ends the stream, nothing stored.
        if let Err(status) = principal.check_batch(&request.events) {
            return Some(Err(status));
        }
        Some(
            match app
                .submit_scoped(request, &principal.recorded_by(), principal.site_scope())
                .await
            {
                Ok(response) => Ok(blind_response(app, principal.sees_arms(), response)),
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
            },
        )
    }
}
