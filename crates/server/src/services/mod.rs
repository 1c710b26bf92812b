//! The tonic service implementations, one module per service: [`ingest`] (Submit, Append),
//! [`outcomes`] (GetSubject, GetCohort, Watch) and [`audit`] (ReadEvents, Verify, Replay, ReadStored
//! for followers, GetSignedHead). Thin: each call maps the wire to [`App`] and every error through
//! [`crate::error::to_status`]. What they share lives here: the service value, the in-band rejection
//! of a batch, study ids from requests and blinding.

mod audit;
mod ingest;
mod outcomes;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use myolog_domain::event::{StudyId, SubjectId};
use myolog_proto::v1 as pb;
use prost::Message;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tonic_types::StatusExt;

use crate::app::App;
use crate::error::{ServiceError, to_status};
use myolog_projection::{eligibility, outcome as projected};
use myolog_wire::outcome as to_wire;

pub(crate) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// All three services over one [`App`].
#[derive(Debug, Clone)]
pub struct Services {
    pub(crate) app: Arc<App>,
}

impl Services {
    /// Services over a started app.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

/// The in-band rejection of a batch, derived from the one status mapping.
pub(crate) fn rejection(error: &ServiceError) -> pb::Rejection {
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

pub(crate) fn study_id(text: &str) -> Result<StudyId, Status> {
    StudyId::new(text).map_err(|p| {
        to_status(&ServiceError::invalid(vec![crate::error::Violation::new(
            "study_id",
            p.to_string(),
        )]))
    })
}

/// Blinding (ICH E6(R3)) of one visit outcome for a blinded caller of a blinded study: arm
/// assignment itself never leaves through Outcomes, but the visit schedule does depend on it (the
/// target day and window are the arm's). The outcome values (DOI, TIS, CDASI) reveal no arm and stay.
pub(crate) fn blind_outcome(outcome: &mut pb::VisitOutcome) {
    outcome.schedule = None;
    // The subject's arm decides the baseline and visits an endpoint uses.
    outcome.endpoints.clear();
}

/// [`blind_outcome`] if the outcome's study hides arms now.
pub(crate) fn blind_if_hidden(app: &App, outcome: &mut pb::VisitOutcome) {
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
pub(crate) fn blind_response(
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
