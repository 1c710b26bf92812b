//! Sending planned changes to Myolog through `Ingest.Append`, shared by the REDCap bridge and
//! `myolog import odm`: batches by subject, a refused event taken out of its batch with the server's
//! words so the rest goes in, retries with backoff while the server does not answer. Not for
//! planning (that is `myolog-edc`) nor for the ledger's files ([`crate::files`]).

use std::collections::BTreeMap;
use std::time::Duration;

use myolog_domain::event::EventBody;
use myolog_edc::plan::Change;
use myolog_proto::v1 as pb;
use pb::ingest_client::IngestClient;
use tonic::Code;
use tonic_types::StatusExt;

/// A change that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event_id} cannot be sent: {message}")]
pub struct OutboundError {
    pub event_id: String,
    pub message: String,
}

/// How long to keep retrying a server that does not answer.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts per batch; `None`: forever (the bridge).
    pub attempts: Option<u32>,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Retry {
    /// An import's patience: about half a minute, then it stops (and can be resumed).
    pub const IMPORT: Retry = Retry {
        attempts: Some(7),
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(8),
    };
}

/// What sending a plan's changes gave.
#[derive(Debug, Default)]
pub struct SendOutcome {
    pub sent: usize,
    pub already_present: usize,
    pub corrections: usize,
    pub retractions: usize,
    /// Indices (into the changes) of the refused ones, with why.
    pub refused: Vec<(usize, String)>,
    /// Set when the server stopped answering: indices from here on were not (all) acknowledged.
    pub stopped: Option<(usize, String)>,
}

impl SendOutcome {
    /// Puts back in `ledger` (from `previous`, the ledger before the plan) every change of `changes`
    /// the server refused or never acknowledged: those do not count as sent, so the next run plans
    /// them again with the same ids.
    pub fn revert_unsent(
        &self,
        ledger: &mut myolog_edc::plan::SentLedger,
        previous: &myolog_edc::plan::SentLedger,
        changes: &[myolog_edc::plan::Change],
    ) {
        let unsent = self.refused.iter().map(|(index, _)| *index).chain(
            self.stopped
                .iter()
                .flat_map(|(from, _)| *from..changes.len()),
        );
        for index in unsent {
            if let Some(change) = changes.get(index) {
                ledger.revert(previous, change);
            }
        }
    }
}

/// Whether a status is the server (or the network) being unavailable rather than a refusal.
fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Unknown
            | Code::Aborted
            | Code::Internal
            | Code::Cancelled
    )
}

/// The indices (into the batch) a refusal's violations name (`events[3].…`), with their texts.
fn named_events(status: &tonic::Status) -> BTreeMap<usize, Vec<String>> {
    let mut named: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            let index = violation
                .field
                .strip_prefix("events[")
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(index, _)| index.parse::<usize>().ok());
            if let Some(index) = index {
                named
                    .entry(index)
                    .or_default()
                    .push(format!("{}: {}", violation.field, violation.description));
            }
        }
    }
    named
}

/// Sends the changes (already mapped to wire events, `events[i]` for `changes[i]`) in batches by
/// subject, at most `batch_size` events each. A refused batch is sent again without the events its
/// violations name (those are refused, with the server's words), so one bad record never keeps the
/// rest of its subject out; a refusal that names no event refuses the batch. A server that stops
/// answering is retried with backoff; past the retry budget the outcome says where it stopped.
pub async fn send_changes<T>(
    client: &mut IngestClient<T>,
    changes: &[Change],
    events: &[pb::Event],
    batch_size: usize,
    retry: Retry,
    mut on_batch: impl FnMut(usize),
) -> SendOutcome
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut outcome = SendOutcome::default();
    // Batches by (study, subject), in plan order: a subject's enrolment precedes its visits.
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut last_subject: Option<String> = None;
    for (index, event) in events.iter().enumerate() {
        let subject = format!("{}/{}", event.study_id, event.subject_id);
        let same = last_subject.as_deref() == Some(subject.as_str());
        match batches.last_mut() {
            Some(batch) if same && batch.len() < batch_size.max(1) => batch.push(index),
            _ => batches.push(vec![index]),
        }
        last_subject = Some(subject);
    }
    for (number, batch) in batches.into_iter().enumerate() {
        let mut pending = batch;
        while !pending.is_empty() {
            let request = pb::SubmitRequest {
                batch_id: format!("import-{number}"),
                events: pending.iter().map(|index| events[*index].clone()).collect(),
            };
            let mut delay = retry.first_delay;
            let mut attempt = 0u32;
            let answer = loop {
                attempt += 1;
                match client.append(request.clone()).await {
                    Ok(response) => break Ok(response.into_inner()),
                    Err(status) if is_transient(status.code()) => {
                        if retry.attempts.is_some_and(|max| attempt >= max) {
                            break Err(status);
                        }
                        tracing::warn!(code = ?status.code(), message = status.message(), ?delay, "server unavailable; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(retry.max_delay);
                    }
                    Err(status) => break Err(status),
                }
            };
            match answer {
                Ok(response) => {
                    for ack in &response.acks {
                        let Some(index) = pending.get(ack.index as usize) else {
                            continue;
                        };
                        if ack.duplicate {
                            outcome.already_present += 1;
                        } else {
                            outcome.sent += 1;
                            match &changes[*index] {
                                Change::Retraction { .. } => outcome.retractions += 1,
                                Change::Event { event, .. } => {
                                    if matches!(event.body, EventBody::AssessmentCorrected { .. }) {
                                        outcome.corrections += 1;
                                    }
                                }
                            }
                        }
                    }
                    on_batch(pending.len());
                    pending.clear();
                }
                Err(status) if is_transient(status.code()) => {
                    outcome.stopped = Some((
                        pending.first().copied().unwrap_or_default(),
                        format!("{:?}: {}", status.code(), status.message()),
                    ));
                    return outcome;
                }
                Err(status) => {
                    let named = named_events(&status);
                    let whole = format!("{:?}: {}", status.code(), status.message());
                    if named.is_empty() || named.keys().any(|index| *index >= pending.len()) {
                        // Nothing to take out: the whole batch is refused.
                        for index in &pending {
                            outcome.refused.push((*index, whole.clone()));
                        }
                        on_batch(pending.len());
                        pending.clear();
                        continue;
                    }
                    let mut kept = Vec::new();
                    for (position, index) in pending.iter().enumerate() {
                        match named.get(&position) {
                            Some(reasons) => {
                                outcome.refused.push((
                                    *index,
                                    format!("{:?}: {}", status.code(), reasons.join("; ")),
                                ));
                                on_batch(1);
                            }
                            None => kept.push(*index),
                        }
                    }
                    pending = kept;
                }
            }
        }
    }
    outcome
}

/// Maps every change to its wire event.
pub fn wire_events(changes: &[Change]) -> Result<Vec<pb::Event>, OutboundError> {
    changes
        .iter()
        .map(|change| {
            myolog_wire::event_to_proto(&change.to_event()).map_err(|error| OutboundError {
                event_id: change.event_id().to_string(),
                message: error.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_their_events() {
        let details = tonic_types::ErrorDetails::with_bad_request(vec![
            tonic_types::FieldViolation::new("events[2].visit_id", "unknown visit"),
            tonic_types::FieldViolation::new("events[2].clinical_date", "bad date"),
            tonic_types::FieldViolation::new("events[10]", "x"),
            tonic_types::FieldViolation::new("batch_id", "too long"),
        ]);
        let status = tonic::Status::with_error_details(Code::InvalidArgument, "refused", details);
        let named = named_events(&status);
        assert_eq!(named.keys().copied().collect::<Vec<_>>(), vec![2, 10]);
        assert_eq!(named[&2].len(), 2);
    }
}
