//! The audit walk: re-derives every event's hash from its stored bytes, follows the chain from
//! sequence 1 to the head, and checks every event against the commit record that recorded it,
//! stopping at the first bad sequence.

use std::collections::HashMap;
use std::fmt;

use crate::error::{DecodeError, StorageError};
use crate::event::{Hash, Head};
use crate::format::{self, CheckError, CommitRecord};

/// The outcome of [`crate::EventLog::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The head recorded by the last commit record when the walk started; the walk covers
    /// 1..=head.seq.
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
    #[error("the commit record disagrees with the event: {detail}")]
    CommitRecordMismatch { detail: String },
    #[error("the commit record covering this event cannot be decoded: {0}")]
    CommitRecordUndecodable(DecodeError),
    #[error("malformed key in the event range")]
    MalformedKey,
}

pub(crate) fn verify(tree: &sled::Tree) -> Result<VerifyReport, StorageError> {
    // The last commit record fixes the head, so appends racing with the walk are ignored.
    let last_commit = tree
        .range(format::commit_key(0)..=format::commit_key(u64::MAX))
        .next_back();
    let head = match last_commit {
        None => Head::default(),
        Some(entry) => {
            let (key, value) = entry?;
            match CommitRecord::decode(&value) {
                Ok(record) => Head {
                    seq: record.last_seq(),
                    hash: record.last_hash,
                },
                Err(reason) => {
                    let seq = format::seq_from_commit_key(&key).unwrap_or(0);
                    return Ok(VerifyReport {
                        head: Head {
                            seq,
                            hash: Hash::ZERO,
                        },
                        events_checked: 0,
                        first_bad: Some(VerifyFailure {
                            seq,
                            reason: FailureReason::CommitRecordUndecodable(reason),
                        }),
                    })
                    .map(|report| rewalk_until(tree, report));
                }
            }
        }
    };
    walk(tree, head)
}

/// When the last commit record is unreadable, the events before it may still hold an earlier
/// failure; report whichever comes first.
fn rewalk_until(tree: &sled::Tree, report: VerifyReport) -> VerifyReport {
    let limit = report.first_bad.as_ref().map_or(0, |failure| failure.seq);
    match walk_events(tree, limit.saturating_sub(1), false) {
        Ok(earlier) if earlier.first_bad.is_some() => earlier,
        Ok(earlier) => VerifyReport {
            events_checked: earlier.events_checked,
            ..report
        },
        Err(_) => report,
    }
}

fn walk(tree: &sled::Tree, head: Head) -> Result<VerifyReport, StorageError> {
    // Every event is compared with its commit record, including each commit's last hash, so the
    // walk also proves the head.
    let report = walk_events(tree, head.seq, true)?;
    Ok(VerifyReport { head, ..report })
}

/// Walks events 1..=last_seq. With `check_commits`, each event is also compared with the commit
/// record that recorded it, and every commit record must be covered.
fn walk_events(
    tree: &sled::Tree,
    last_seq: u64,
    check_commits: bool,
) -> Result<VerifyReport, StorageError> {
    let mut report = VerifyReport {
        head: Head::default(),
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
    if last_seq == 0 {
        return Ok(report);
    }
    let mut commits = tree.range(format::commit_key(1)..=format::commit_key(last_seq));
    let mut current_commit: Option<CommitRecord> = None;
    for entry in tree.range(format::event_key(1)..=format::event_key(last_seq)) {
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
        if previous_version.checked_add(1) != Some(event.stream_version) {
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
        if check_commits {
            if current_commit
                .as_ref()
                .is_none_or(|record| record.last_seq() < expected_seq)
            {
                current_commit = match commits.next() {
                    None => None,
                    Some(entry) => {
                        let (_, value) = entry?;
                        match CommitRecord::decode(&value) {
                            Ok(record) => Some(record),
                            Err(reason) => {
                                return fail(
                                    report,
                                    expected_seq,
                                    FailureReason::CommitRecordUndecodable(reason),
                                );
                            }
                        }
                    }
                };
            }
            if let Some(detail) = commit_mismatch(current_commit.as_ref(), &event) {
                return fail(
                    report,
                    expected_seq,
                    FailureReason::CommitRecordMismatch { detail },
                );
            }
        }
        stream_versions.insert(event.stream_key, event.stream_version);
        previous_hash = event.hash;
        report.events_checked += 1;
        expected_seq += 1;
    }
    if expected_seq <= last_seq {
        return fail(
            report,
            expected_seq,
            FailureReason::Missing { next_present: None },
        );
    }
    Ok(report)
}

/// How `event` disagrees with the commit record that should cover it, if it does.
fn commit_mismatch(record: Option<&CommitRecord>, event: &crate::RecordedEvent) -> Option<String> {
    let Some(record) = record else {
        return Some("no commit record covers this event".into());
    };
    if record.first_seq > event.seq {
        return Some(format!(
            "no commit record covers this event (the next one starts at {})",
            record.first_seq
        ));
    }
    let Some((event_id, stream_key)) = usize::try_from(event.seq - record.first_seq)
        .ok()
        .and_then(|offset| record.entries.get(offset))
    else {
        return Some(format!(
            "no commit record covers this event (the one read covers {}..={})",
            record.first_seq,
            record.last_seq()
        ));
    };
    if event_id != &event.event_id || stream_key != &event.stream_key {
        return Some(format!(
            "recorded as event {event_id:?} of stream {stream_key:?}, stored as {:?} of {:?}",
            event.event_id, event.stream_key
        ));
    }
    if event.recorded_at_unix_nanos != record.recorded_at_unix_nanos {
        return Some("recorded-at differs from its commit's".into());
    }
    if event.seq == record.last_seq() && event.hash != record.last_hash {
        return Some(format!(
            "the commit ends on hash {}, the event's hash is {}",
            record.last_hash, event.hash
        ));
    }
    None
}
