//! Rebuilding a log from its archive, or checking that one could be rebuilt (the drill).
//!
//! Segments are read in name order and every one is checked before its events are used: its
//! checksum, that its header matches its name, every event hash, the chain inside it and onto the
//! segment before it. A gap, an overlap (duplicate), a renamed (reordered) or altered segment
//! stops the restore with the segment's name; nothing is skipped. Events are appended with the
//! storage's replicated append, which checks the chain once more and keeps every sequence,
//! recorded-at and hash, and the restored log is verified end to end before success is reported.

use std::path::Path;

use myolog_storage::{EventLog, Hash, Head, LogOptions, StoredEvent};

use crate::error::ArchiveError;
use crate::segment::{SEGMENT_FOLDER, Segment, SegmentName};
use crate::target::ArchiveTarget;

/// Where a point-in-time restore stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePoint {
    /// Up to and including this sequence (which the archive must hold).
    Seq(u64),
    /// Every event recorded at or before this time (nanoseconds since the Unix epoch, UTC).
    RecordedAt(i64),
}

/// How to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// `None`: everything archived.
    pub as_of: Option<RestorePoint>,
    /// Check the archive as a restore would, without writing a log (a scheduled drill).
    pub verify_only: bool,
    /// Options of the log written (its clock is never used: events keep their recorded-at).
    pub log_options: LogOptions,
}

/// What a restore or a drill found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// Segments read and checked.
    pub segments: usize,
    /// The last event restored (or that would be): seq 0 and zeros for an empty archive.
    pub head: Head,
    /// Its recorded-at, if there is one.
    pub head_recorded_at_unix_nanos: Option<i64>,
    /// Events appended by this call (0 in `verify_only` mode; fewer than `head.seq` when an
    /// interrupted restore was resumed).
    pub events_appended: u64,
}

/// Events appended per replicated append: one fsync each.
const RESTORE_BATCH: usize = 1_000;

/// Rebuilds the log in `dir` from `target` (or, with `verify_only`, checks that it could be).
/// `dir` must be new, empty, or a log an interrupted restore of the same archive left: then the
/// restore continues after its head.
pub async fn restore(
    target: &ArchiveTarget,
    dir: &Path,
    options: RestoreOptions,
) -> Result<RestoreReport, ArchiveError> {
    let log = if options.verify_only {
        None
    } else {
        let dir = dir.to_path_buf();
        let log_options = options.log_options.clone();
        Some(
            tokio::task::spawn_blocking(move || EventLog::open(dir, log_options))
                .await
                .map_err(ArchiveError::task)??,
        )
    };
    restore_into(target, log, options.as_of, false).await
}

/// [`restore`] into a log the caller holds open (`None`: check only). The log must be the
/// archive's prefix; it ends holding the archive up to `as_of`. With `log_may_continue` a log
/// already beyond the archive is accepted if it holds the archive's last event (a follower that
/// copied events the old primary had not archived yet): the report's head is the archive's.
pub(crate) async fn restore_into(
    target: &ArchiveTarget,
    log: Option<EventLog>,
    as_of: Option<RestorePoint>,
    log_may_continue: bool,
) -> Result<RestoreReport, ArchiveError> {
    let start = log.as_ref().map_or(Head::default(), EventLog::head);
    let names = target.segments().await?;
    let mut report = RestoreReport {
        segments: 0,
        head: Head::default(),
        head_recorded_at_unix_nanos: None,
        events_appended: 0,
    };
    let mut previous: Option<SegmentName> = None;
    let mut chain = Hash::ZERO;
    let mut done = false;
    for name in names {
        if done {
            break;
        }
        let expected_first = report.head.seq + 1;
        if name.first_seq < expected_first {
            return Err(ArchiveError::DuplicateSegment {
                name,
                earlier: previous.unwrap_or(name),
            });
        }
        if name.first_seq > expected_first {
            return Err(ArchiveError::MissingSegment {
                from: expected_first,
                to: name.first_seq - 1,
                next: name,
            });
        }
        let bytes = target.get(SEGMENT_FOLDER, &name.file_name()).await?;
        let segment = Segment::decode(&bytes, &name)
            .map_err(|problem| ArchiveError::Segment { name, problem })?;
        if segment.chain_before != chain {
            return Err(ArchiveError::SegmentChainBroken {
                name,
                expected: chain,
                found: segment.chain_before,
            });
        }
        report.segments += 1;
        let mut events = segment.events;
        if let Some(cut) = events.iter().position(|event| past(as_of, event)) {
            events.truncate(cut);
            done = true;
        }
        if let Some(last) = events.last() {
            report.head = Head {
                seq: last.seq,
                hash: last.hash,
            };
            report.head_recorded_at_unix_nanos = Some(last.recorded_at_unix_nanos);
        }
        chain = events.last().map_or(chain, |event| event.hash);
        if let Some(log) = &log {
            report.events_appended += append(log, start, events).await?;
        }
        previous = Some(name);
    }
    if let Some(RestorePoint::Seq(requested)) = as_of
        && requested > report.head.seq
    {
        return Err(ArchiveError::AsOfBeyondArchive {
            requested,
            archived: report.head.seq,
        });
    }
    if let Some(log) = log {
        let log_ahead = start.seq > report.head.seq;
        if log_ahead && !log_may_continue {
            return Err(ArchiveError::LogAheadOfArchive {
                log: start.seq,
                archived: report.head.seq,
            });
        }
        if log_ahead && report.head.seq > 0 {
            // No segment held the log's head, so nothing compared the two yet.
            let archived = report.head;
            let reader = log.clone();
            let event = tokio::task::spawn_blocking(move || reader.get(archived.seq))
                .await
                .map_err(ArchiveError::task)??;
            if let Some(event) = event
                && event.hash != archived.hash
            {
                return Err(ArchiveError::ForeignLog {
                    seq: archived.seq,
                    archived: archived.hash,
                    log: event.hash,
                });
            }
        }
        let verified = tokio::task::spawn_blocking(move || log.verify())
            .await
            .map_err(ArchiveError::task)??;
        if let Some(failure) = verified.first_bad {
            return Err(ArchiveError::RestoredLogDamaged(failure.to_string()));
        }
        if !log_ahead && verified.head != report.head {
            return Err(ArchiveError::RestoredLogDamaged(format!(
                "its head is seq {}, the archive's {}",
                verified.head.seq, report.head.seq
            )));
        }
    }
    Ok(report)
}

/// Checks the archive as [`restore`] would, without writing anything.
pub async fn verify_archive(
    target: &ArchiveTarget,
    as_of: Option<RestorePoint>,
) -> Result<RestoreReport, ArchiveError> {
    restore(
        target,
        Path::new(""),
        RestoreOptions {
            as_of,
            verify_only: true,
            log_options: LogOptions::default(),
        },
    )
    .await
}

/// Whether `event` lies after the restore point.
fn past(as_of: Option<RestorePoint>, event: &StoredEvent) -> bool {
    match as_of {
        None => false,
        Some(RestorePoint::Seq(seq)) => event.seq > seq,
        Some(RestorePoint::RecordedAt(nanos)) => event.recorded_at_unix_nanos > nanos,
    }
}

/// Appends the events after `start` (a resumed restore's existing head) to `log`; returns how
/// many were appended.
async fn append(
    log: &EventLog,
    start: Head,
    events: Vec<StoredEvent>,
) -> Result<u64, ArchiveError> {
    // An interrupted restore of this archive left exactly its prefix: the event at the existing
    // head must be the archive's.
    if let Some(at_head) = events.iter().find(|event| event.seq == start.seq)
        && at_head.hash != start.hash
    {
        return Err(ArchiveError::ForeignLog {
            seq: start.seq,
            archived: at_head.hash,
            log: start.hash,
        });
    }
    let fresh: Vec<StoredEvent> = events
        .into_iter()
        .filter(|event| event.seq > start.seq)
        .collect();
    let count = fresh.len() as u64;
    if fresh.is_empty() {
        return Ok(0);
    }
    let writer = log.clone();
    let path = log.path().display().to_string();
    tokio::task::spawn_blocking(move || {
        for chunk in fresh.chunks(RESTORE_BATCH) {
            writer.append_replicated(chunk)?;
        }
        Ok(())
    })
    .await
    .map_err(ArchiveError::task)?
    .map_err(|source| ArchiveError::Replication { log: path, source })?;
    Ok(count)
}
