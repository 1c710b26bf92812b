//! `Audit.Replay` over gRPC: the same `myolog_audit::replay` the command line runs, on the service's open
//! log, streamed. The replay runs on the blocking pool (it reads the whole prefix of the log) and
//! builds its own projection, so it never holds the live projection's lock.

use myolog_proto::v1 as pb;
use myolog_storage::{EventLog, Hash};
use tokio::sync::mpsc;
use tonic::Status;

use myolog_audit::AuditError;
use myolog_audit::progress::Progress;
use myolog_audit::replay::{self, AsOf, ReplayedOutcome};

/// The replay point a request names.
pub fn as_of(request: &pb::ReplayRequest) -> AsOf {
    match &request.as_of {
        None => AsOf::Head,
        Some(pb::replay_request::AsOf::Sequence(seq)) => AsOf::Sequence(*seq),
        Some(pb::replay_request::AsOf::Time(time)) => AsOf::Time(
            time.seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(time.nanos)),
        ),
    }
}

/// The status of a failed replay.
pub fn status(error: &AuditError) -> Status {
    match error {
        AuditError::BeyondHead { .. } => Status::out_of_range(error.to_string()),
        AuditError::BadTime(_) => Status::invalid_argument(error.to_string()),
        _ => Status::internal(error.to_string()),
    }
}

/// One replayed outcome on the wire.
pub fn to_proto(replayed: ReplayedOutcome) -> pb::ReplayedOutcome {
    let chain_hash = Hash::from_hex(&replayed.provenance.chain_hash)
        .map(|h| h.0.to_vec())
        .unwrap_or_default();
    pb::ReplayedOutcome {
        outcome: Some(myolog_wire::outcome::visit_outcome(&replayed.outcome)),
        provenance: Some(pb::Provenance {
            last_sequence: replayed.provenance.last_sequence,
            chain_hash,
            algorithms: replayed.provenance.algorithms,
            engine_version: replayed.provenance.engine_version.to_string(),
            protocol: replayed.provenance.protocol.unwrap_or_default(),
        }),
    }
}

/// Replays `log` as the request asks and returns the receiving end of the outcome stream. Errors
/// before the first outcome (e.g. a sequence beyond the head) end the stream with their status.
pub fn replay_stream(
    log: EventLog,
    request: &pb::ReplayRequest,
) -> mpsc::Receiver<Result<pb::ReplayedOutcome, Status>> {
    let as_of = as_of(request);
    let (tx, rx) = mpsc::channel(256);
    tokio::task::spawn_blocking(move || {
        let outcomes = replay::project(&log, as_of, &mut Progress::hidden())
            .map(|replayed| replayed.outcomes());
        match outcomes {
            Ok(outcomes) => {
                for replayed in outcomes {
                    if tx.blocking_send(Ok(to_proto(replayed))).is_err() {
                        break;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Audit.Replay failed");
                let _ = tx.blocking_send(Err(status(&error)));
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_replay_points() {
        let time = |seconds, nanos| pb::ReplayRequest {
            as_of: Some(pb::replay_request::AsOf::Time(prost_types::Timestamp {
                seconds,
                nanos,
            })),
        };
        let cases = [
            (pb::ReplayRequest { as_of: None }, AsOf::Head),
            (
                pb::ReplayRequest {
                    as_of: Some(pb::replay_request::AsOf::Sequence(42)),
                },
                AsOf::Sequence(42),
            ),
            (time(1, 5), AsOf::Time(1_000_000_005)),
            (time(-1, 0), AsOf::Time(-1_000_000_000)),
            (time(i64::MAX, 0), AsOf::Time(i64::MAX)),
        ];
        for (request, expected) in cases {
            assert_eq!(as_of(&request), expected, "{request:?}");
        }
    }

    #[test]
    fn a_sequence_beyond_the_head_is_out_of_range() {
        let error = AuditError::BeyondHead {
            requested: 9,
            head: 3,
        };
        assert_eq!(status(&error).code(), tonic::Code::OutOfRange);
    }
}
