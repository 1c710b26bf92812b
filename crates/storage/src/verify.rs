//! The audit walk: re-derives every event's hash from its stored bytes, follows the chain from
//! sequence 1 to the recorded head, and cross-checks the indexes, stopping at the first bad sequence.

use std::collections::HashMap;
use std::fmt;

use crate::error::{DecodeError, StorageError};
use crate::event::{Hash, Head};
use crate::format::{self, CheckError, EventIdEntry};

/// The outcome of [`crate::EventLog::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The head recorded in the log's metadata when the walk started; the walk covers 1..=head.seq.
    pub head: Head,
    /// Events before the first bad one, all of which passed every check (all events when intact).
    pub events_checked: u64,
    /// The first bad sequence and why; `None` when the log is intact.
    pub first_bad: Option<VerifyFailure>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// The first sequence that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyFailure {
    pub seq: u64,
    pub reason: FailureReason,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

/// Why a sequence failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FailureReason {
    #[error("event missing (next stored event: {next_present:?})")]
    Missing { next_present: Option<u64> },
    #[error("stored record cannot be decoded, its bytes were altered: {0}")]
    Undecodable(DecodeError),
    #[error("content altered: stored hash {stored}, recomputed {recomputed}")]
    ContentAltered { stored: Hash, recomputed: Hash },
    #[error("reordered: the record stored here is event {claimed_seq}")]
    OutOfPlace { claimed_seq: u64 },
    #[error("chain link broken: previous hash is {found}, the previous event's hash is {expected}")]
    LinkBroken { expected: Hash, found: Hash },
    #[error("stream {stream_key:?} jumps from version {previous} to {found}")]
    StreamVersionGap {
        stream_key: String,
        previous: u64,
        found: u64,
    },
    #[error("index inconsistent with the event: {detail}")]
    IndexMismatch { detail: String },
    #[error("recorded head hash {recorded} differs from the last event's hash {actual}")]
    HeadMismatch { recorded: Hash, actual: Hash },
    #[error("malformed key in the event range")]
    MalformedKey,
}

pub(crate) fn verify(tree: &sled::Tree) -> Result<VerifyReport, StorageError> {
    let head = match tree.get(format::META_HEAD_KEY)? {
        Some(bytes) => {
            let (seq, hash) =
                format::decode_head(&bytes).map_err(|reason| StorageError::Corrupt {
                    location: "meta head".into(),
                    reason,
                })?;
            Head { seq, hash }
        }
        None => Head::default(),
    };
    let mut report = VerifyReport {
        head,
        events_checked: 0,
        first_bad: None,
    };
    let fail = |mut report: VerifyReport, seq: u64, reason: FailureReason| {
        report.first_bad = Some(VerifyFailure { seq, reason });
        Ok(report)
    };
    let mut previous_hash = Hash::ZERO;
    let mut stream_versions: HashMap<String, u64> = HashMap::new();
    let mut expected_seq = 1u64;
    if head.seq == 0 {
        return Ok(report);
    }
    for entry in tree.range(format::event_key(1)..=format::event_key(head.seq)) {
        let (key, value) = entry?;
        let Some(key_seq) = format::seq_from_event_key(&key) else {
            return fail(report, expected_seq, FailureReason::MalformedKey);
        };
        if key_seq != expected_seq {
            return fail(
                report,
                expected_seq,
                FailureReason::Missing {
                    next_present: Some(key_seq),
                },
            );
        }
        let event = match format::decode_and_check_event(&value) {
            Ok(event) => event,
            Err(CheckError::Undecodable(reason)) => {
                return fail(report, expected_seq, FailureReason::Undecodable(reason));
            }
            Err(CheckError::HashMismatch { stored, recomputed }) => {
                return fail(
                    report,
                    expected_seq,
                    FailureReason::ContentAltered { stored, recomputed },
                );
            }
        };
        if event.seq != expected_seq {
            return fail(
                report,
                expected_seq,
                FailureReason::OutOfPlace {
                    claimed_seq: event.seq,
                },
            );
        }
        if event.prev_hash != previous_hash {
            return fail(
                report,
                expected_seq,
                FailureReason::LinkBroken {
                    expected: previous_hash,
                    found: event.prev_hash,
                },
            );
        }
        let previous_version = stream_versions.get(&event.stream_key).copied().unwrap_or(0);
        if event.stream_version != previous_version + 1 {
            return fail(
                report,
                expected_seq,
                FailureReason::StreamVersionGap {
                    stream_key: event.stream_key.clone(),
                    previous: previous_version,
                    found: event.stream_version,
                },
            );
        }
        if let Some(detail) = index_mismatch(tree, &event)? {
            return fail(
                report,
                expected_seq,
                FailureReason::IndexMismatch { detail },
            );
        }
        stream_versions.insert(event.stream_key, event.stream_version);
        previous_hash = event.hash;
        report.events_checked += 1;
        expected_seq += 1;
    }
    if expected_seq <= head.seq {
        return fail(
            report,
            expected_seq,
            FailureReason::Missing { next_present: None },
        );
    }
    if previous_hash != head.hash {
        // The last event is the bad one: it is not counted as checked.
        report.events_checked = head.seq - 1;
        return fail(
            report,
            head.seq,
            FailureReason::HeadMismatch {
                recorded: head.hash,
                actual: previous_hash,
            },
        );
    }
    Ok(report)
}

/// Checks that both indexes point at this event; the description of the first disagreement.
fn index_mismatch(
    tree: &sled::Tree,
    event: &crate::RecordedEvent,
) -> Result<Option<String>, StorageError> {
    match tree.get(format::event_id_key(&event.event_id))? {
        None => {
            return Ok(Some(format!(
                "event id {:?} is not indexed",
                event.event_id
            )));
        }
        Some(bytes) => match EventIdEntry::decode(&bytes) {
            Err(error) => return Ok(Some(format!("event-id index entry undecodable: {error}"))),
            Ok(entry) if entry.seq != event.seq || entry.hash != event.hash => {
                return Ok(Some(format!(
                    "event id {:?} is indexed at seq {} with another hash",
                    event.event_id, entry.seq
                )));
            }
            Ok(_) => {}
        },
    }
    match tree.get(format::stream_key(&event.stream_key, event.stream_version))? {
        None => Ok(Some(format!(
            "stream {:?} version {} is not indexed",
            event.stream_key, event.stream_version
        ))),
        Some(bytes) => match format::decode_seq_value(&bytes) {
            Ok(seq) if seq == event.seq => Ok(None),
            Ok(seq) => Ok(Some(format!(
                "stream {:?} version {} is indexed at seq {seq}",
                event.stream_key, event.stream_version
            ))),
            Err(error) => Ok(Some(format!("stream index entry undecodable: {error}"))),
        },
    }
}
