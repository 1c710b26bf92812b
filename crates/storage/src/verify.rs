//! The audit walk: re-derives every event's hash from its stored bytes, follows the chain from
//! sequence 1 to the head record, checks every event against the table of the chunk that holds it
//! and every chunk's checksum, stopping at the first bad sequence. The version 1 walk lives in
//! [`crate::legacy_v1`] and reports with the same types.

use std::collections::HashMap;
use std::fmt;

use crate::error::{DecodeError, StorageError};
use crate::event::{Hash, Head};
use crate::format::{self, CheckError, Chunk};

/// The outcome of [`crate::EventLog::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The head recorded when the walk started (the head record, or a version 1 log's last commit
    /// record); the walk covers 1..=head.seq.
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
    #[error("the commit record (chunk table, head record) disagrees with the event: {detail}")]
    CommitRecordMismatch { detail: String },
    #[error("the commit record (chunk, head record) covering this event cannot be decoded: {0}")]
    CommitRecordUndecodable(DecodeError),
    #[error("malformed key in the event range")]
    MalformedKey,
    #[error("the checksum of the chunk starting here does not match its bytes")]
    ChunkChecksumMismatch,
}

/// Verifies the log in `tree` up to the head record `recorded`, read while no group commit was
/// being written (see [`crate::EventLog::verify`]): a group's chunks are inserted before its head
/// record, so a head record read mid-commit could miss chunks already present.
pub(crate) fn verify(
    tree: &sled::Tree,
    recorded: Option<sled::IVec>,
) -> Result<VerifyReport, StorageError> {
    let has_chunks = recorded.is_none() && first_chunk_seq(tree)?.is_some();
    let head = match recorded.as_deref().map(format::decode_head) {
        Some(Ok((seq, hash))) => Head { seq, hash },
        None if !has_chunks => Head::default(),
        missing_or_damaged => {
            // Walk whatever chunks there are; an earlier failure among them comes first.
            let (mut report, _) = walk(tree, u64::MAX)?;
            if report.first_bad.is_none() {
                let seq = report.events_checked.saturating_add(1);
                report.first_bad = Some(VerifyFailure {
                    seq,
                    reason: match missing_or_damaged {
                        Some(Err(reason)) => FailureReason::CommitRecordUndecodable(reason),
                        _ => FailureReason::CommitRecordMismatch {
                            detail: "the log has events but no head record".into(),
                        },
                    },
                });
            }
            return Ok(report);
        }
    };
    let (mut report, last_hash) = walk(tree, head.seq)?;
    report.head = head;
    if report.first_bad.is_none() && head.seq > 0 && last_hash != head.hash {
        report.events_checked = head.seq - 1;
        report.first_bad = Some(VerifyFailure {
            seq: head.seq,
            reason: FailureReason::CommitRecordMismatch {
                detail: format!(
                    "the head record ends on hash {}, the event's hash is {last_hash}",
                    head.hash
                ),
            },
        });
    }
    Ok(report)
}

fn first_chunk_seq(tree: &sled::Tree) -> Result<Option<u64>, StorageError> {
    Ok(
        match tree
            .range(format::chunk_key(0)..=format::chunk_key(u64::MAX))
            .next()
        {
            None => None,
            Some(entry) => format::seq_from_chunk_key(&entry?.0),
        },
    )
}

/// The walk's progress: the chain and stream versions so far.
struct Walk {
    report: VerifyReport,
    previous_hash: Hash,
    stream_versions: HashMap<String, u64>,
    expected_seq: u64,
}

impl Walk {
    fn fail(mut self, seq: u64, reason: FailureReason) -> VerifyReport {
        self.report.first_bad = Some(VerifyFailure { seq, reason });
        self.report
    }

    fn fail_with_hash(self, seq: u64, reason: FailureReason) -> (VerifyReport, Hash) {
        let hash = self.previous_hash;
        (self.fail(seq, reason), hash)
    }

    /// Checks event `at` of `chunk`, which should be `self.expected_seq`.
    fn check_event(&mut self, chunk: &Chunk, at: usize) -> Result<(), FailureReason> {
        let seq = self.expected_seq;
        let stored = chunk.stored(at).unwrap_or_default();
        let event = match format::decode_and_check_event(stored) {
            Ok(event) => event,
            Err(CheckError::Undecodable(reason)) => return Err(FailureReason::Undecodable(reason)),
            Err(CheckError::HashMismatch { stored, recomputed }) => {
                return Err(FailureReason::ContentAltered { stored, recomputed });
            }
        };
        if event.seq != seq {
            return Err(FailureReason::OutOfPlace {
                claimed_seq: event.seq,
            });
        }
        if event.prev_hash != self.previous_hash {
            return Err(FailureReason::LinkBroken {
                expected: self.previous_hash,
                found: event.prev_hash,
            });
        }
        let previous_version = self
            .stream_versions
            .get(&event.stream_key)
            .copied()
            .unwrap_or(0);
        if previous_version.checked_add(1) != Some(event.stream_version) {
            return Err(FailureReason::StreamVersionGap {
                stream_key: event.stream_key.clone(),
                previous: previous_version,
                found: event.stream_version,
            });
        }
        let (event_id, stream_key) = (
            chunk.event_id(at).unwrap_or_default(),
            chunk.stream_key(at).unwrap_or_default(),
        );
        if event_id != event.event_id || stream_key != event.stream_key {
            return Err(FailureReason::CommitRecordMismatch {
                detail: format!(
                    "recorded as event {event_id:?} of stream {stream_key:?}, stored as {:?} of {:?}",
                    event.event_id, event.stream_key
                ),
            });
        }
        if event.recorded_at_unix_nanos != chunk.recorded_at_unix_nanos() {
            return Err(FailureReason::CommitRecordMismatch {
                detail: "recorded-at differs from its chunk's".into(),
            });
        }
        self.stream_versions
            .insert(event.stream_key, event.stream_version);
        self.previous_hash = event.hash;
        self.report.events_checked += 1;
        self.expected_seq += 1;
        Ok(())
    }
}

/// Walks events 1..=last_seq chunk by chunk (`u64::MAX`: all chunks there are). With a finite
/// `last_seq`, the last event's hash must be the head record's, which the caller compares.
fn walk(tree: &sled::Tree, last_seq: u64) -> Result<(VerifyReport, Hash), StorageError> {
    let mut walk = Walk {
        report: VerifyReport {
            head: Head::default(),
            events_checked: 0,
            first_bad: None,
        },
        previous_hash: Hash::ZERO,
        stream_versions: HashMap::new(),
        expected_seq: 1,
    };
    if last_seq == 0 {
        return Ok((walk.report, Hash::ZERO));
    }
    for entry in tree.range(format::chunk_key(0)..=format::chunk_key(last_seq)) {
        let (key, value) = entry?;
        let expected = walk.expected_seq;
        let Some(key_seq) = format::seq_from_chunk_key(&key) else {
            return Ok(walk.fail_with_hash(expected, FailureReason::MalformedKey));
        };
        if key_seq != expected {
            let reason = if key_seq > expected {
                FailureReason::Missing {
                    next_present: Some(key_seq),
                }
            } else {
                FailureReason::OutOfPlace {
                    claimed_seq: key_seq,
                }
            };
            return Ok(walk.fail_with_hash(expected, reason));
        }
        let chunk = match Chunk::parse(value) {
            Ok(chunk) => chunk,
            Err(reason) => {
                let reason = FailureReason::CommitRecordUndecodable(reason);
                return Ok(walk.fail_with_hash(expected, reason));
            }
        };
        if chunk.first_seq() != key_seq {
            let claimed_seq = chunk.first_seq();
            return Ok(walk.fail_with_hash(expected, FailureReason::OutOfPlace { claimed_seq }));
        }
        for at in 0..chunk.len() {
            let seq = walk.expected_seq;
            if seq > last_seq {
                let detail = format!("the chunk goes on past the head record's seq {last_seq}");
                return Ok(walk.fail_with_hash(seq, FailureReason::CommitRecordMismatch { detail }));
            }
            if let Err(reason) = walk.check_event(&chunk, at) {
                return Ok(walk.fail_with_hash(seq, reason));
            }
        }
        if walk.previous_hash != chunk.last_hash() {
            let seq = chunk.last_seq();
            walk.report.events_checked = seq - 1;
            let detail = format!(
                "the chunk ends on hash {}, the event's hash is {}",
                chunk.last_hash(),
                walk.previous_hash
            );
            return Ok(walk.fail_with_hash(seq, FailureReason::CommitRecordMismatch { detail }));
        }
        // Every event of the chunk checked out, so a bad checksum means damage elsewhere in it
        // (its table's framing or the checksum itself): report the chunk's first seq.
        if !chunk.checksum_matches() {
            walk.report.events_checked = expected - 1;
            return Ok(walk.fail_with_hash(expected, FailureReason::ChunkChecksumMismatch));
        }
    }
    if last_seq == u64::MAX {
        return Ok((walk.report, walk.previous_hash));
    }
    if walk.expected_seq <= last_seq {
        let seq = walk.expected_seq;
        return Ok(walk.fail_with_hash(seq, FailureReason::Missing { next_present: None }));
    }
    Ok((walk.report, walk.previous_hash))
}
