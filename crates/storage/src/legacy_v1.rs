//! The read-only reader of format version 1 logs, kept so that `myolog migrate` can convert them:
//! one sled key per event (`e` ‖ seq -> canonical bytes ‖ hash) and one commit record per up to 64
//! events (`c` ‖ first seq). Nothing here writes a log; [`crate::EventLog::open`] refuses a version 1
//! log and names the migration instead. The canonical event bytes and chain hashes are the same in
//! both versions, so a migrated log keeps every hash (see [`crate::format`]).
//!
//! ```text
//! commit record:
//! "MYOLOGCR"            8 bytes
//! record version        u16   (1)
//! first seq             u64
//! event count           u32
//! recorded at           i64   (the group's commit time; every event of the group carries it)
//! last event hash       32 bytes
//! per event, in order:  event id (u32 length ‖ bytes), stream key (u32 length ‖ bytes)
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{DecodeError, StorageError};
use crate::event::{Hash, Head};
use crate::format::{self, CheckError};
use crate::replication::StoredEvent;
use crate::verify::{FailureReason, VerifyFailure, VerifyReport};

/// sled's page cache for a version 1 log being read.
const LEGACY_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The format version this module reads.
pub const FORMAT_VERSION_1: u32 = 1;

const COMMIT_TAG: &[u8; 8] = b"MYOLOGCR";
const RECORD_VERSION: u16 = 1;

/// Key prefix of event records.
pub const EVENT_PREFIX: u8 = b'e';
/// Key prefix of commit records.
pub const COMMIT_PREFIX: u8 = b'c';
/// Key prefix of metadata.
pub const META_PREFIX: u8 = b'm';

/// The key of event `seq`.
pub fn event_key(seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = EVENT_PREFIX;
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The sequence number in an event key; `None` if the key is not one.
pub fn seq_from_event_key(key: &[u8]) -> Option<u64> {
    match key {
        [EVENT_PREFIX, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// The key of the commit record of the group starting at `first_seq`.
pub fn commit_key(first_seq: u64) -> [u8; 9] {
    let mut key = event_key(first_seq);
    key[0] = COMMIT_PREFIX;
    key
}

/// The first sequence in a commit-record key; `None` if the key is not one.
pub fn seq_from_commit_key(key: &[u8]) -> Option<u64> {
    match key {
        [COMMIT_PREFIX, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// One group commit: which events it recorded, when, and the hash it ended on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    pub first_seq: u64,
    pub recorded_at_unix_nanos: i64,
    pub last_hash: Hash,
    /// (event id, stream key) of events `first_seq`, `first_seq + 1`, ... in order.
    pub entries: Vec<(String, String)>,
}

impl CommitRecord {
    /// The sequence of the group's last event.
    /// Saturates rather than overflows: a damaged record may claim any first seq.
    pub fn last_seq(&self) -> u64 {
        self.first_seq
            .saturating_add(self.entries.len() as u64)
            .saturating_sub(1)
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_commit_record(
            self.first_seq,
            self.recorded_at_unix_nanos,
            self.last_hash,
            self.entries
                .iter()
                .map(|(event_id, stream_key)| (event_id.as_str(), stream_key.as_str())),
        )
    }

    pub fn decode(bytes: &[u8]) -> Result<CommitRecord, DecodeError> {
        let mut reader = crate::format::Reader::new(bytes);
        if reader.take(COMMIT_TAG.len(), "commit record tag")? != COMMIT_TAG {
            return Err(DecodeError::BadTag);
        }
        let record_version = reader.u16("commit record version")?;
        if record_version != RECORD_VERSION {
            return Err(DecodeError::UnsupportedRecordVersion(record_version));
        }
        let first_seq = reader.u64("commit first seq")?;
        let count = reader.u32("commit event count")?;
        let recorded_at_unix_nanos = i64::from_be_bytes(reader.array("commit recorded at")?);
        let last_hash = reader.hash("commit last hash")?;
        if count == 0 {
            return Err(DecodeError::Truncated {
                field: "commit entries (count is 0)",
            });
        }
        // Each entry takes at least 8 bytes; never trust a count to size an allocation.
        let mut entries = Vec::with_capacity((count as usize).min(reader.remaining() / 8));
        for _ in 0..count {
            entries.push((
                reader.string("commit event id")?,
                reader.string("commit stream key")?,
            ));
        }
        reader.finish()?;
        Ok(CommitRecord {
            first_seq,
            recorded_at_unix_nanos,
            last_hash,
            entries,
        })
    }
}

/// Encodes a commit record from borrowed parts (the writer's group holds the strings already, so
/// it need not copy them into a [`CommitRecord`]). `entries` are (event id, stream key) in order.
pub fn encode_commit_record<'e>(
    first_seq: u64,
    recorded_at_unix_nanos: i64,
    last_hash: Hash,
    entries: impl ExactSizeIterator<Item = (&'e str, &'e str)> + Clone,
) -> Vec<u8> {
    let variable: usize = entries
        .clone()
        .map(|(id, stream)| 8 + id.len() + stream.len())
        .sum();
    let mut out = Vec::with_capacity(8 + 2 + 8 + 4 + 8 + format::HASH_LEN + variable);
    out.extend_from_slice(COMMIT_TAG);
    out.extend_from_slice(&RECORD_VERSION.to_be_bytes());
    out.extend_from_slice(&first_seq.to_be_bytes());
    out.extend_from_slice(&format::length_prefix(entries.len()));
    out.extend_from_slice(&recorded_at_unix_nanos.to_be_bytes());
    out.extend_from_slice(&last_hash.0);
    for (event_id, stream_key) in entries {
        format::put_bytes(&mut out, event_id.as_bytes());
        format::put_bytes(&mut out, stream_key.as_bytes());
    }
    out
}

pub(crate) fn verify_v1(tree: &sled::Tree) -> Result<VerifyReport, StorageError> {
    // The last commit record fixes the head, so appends racing with the walk are ignored.
    let last_commit = tree.range(commit_key(0)..=commit_key(u64::MAX)).next_back();
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
                    let seq = seq_from_commit_key(&key).unwrap_or(0);
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
    let mut commits = tree.range(commit_key(1)..=commit_key(last_seq));
    let mut current_commit: Option<CommitRecord> = None;
    for entry in tree.range(event_key(1)..=event_key(last_seq)) {
        let (key, value) = entry?;
        let Some(key_seq) = seq_from_event_key(&key) else {
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

/// A version 1 log opened for reading only: its head, its events as stored, and the version 1
/// audit walk. Holds sled's lock on the directory while it lives.
pub struct LegacyLog {
    path: PathBuf,
    tree: sled::Tree,
    _db: sled::Db,
}

impl std::fmt::Debug for LegacyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LegacyLog {
    /// Opens the version 1 log in `path`. Fails with [`StorageError::Missing`] if there is no sled
    /// database, [`StorageError::NotAMyologLog`] without the Myolog magic, and
    /// [`StorageError::UnsupportedFormat`] if the log is not format version 1.
    pub fn open(path: impl AsRef<Path>) -> Result<LegacyLog, StorageError> {
        let path = path.as_ref().to_path_buf();
        if !path.join("db").is_file() || !path.join("conf").is_file() {
            return Err(StorageError::Missing { path });
        }
        let not_a_log = |reason: &str| StorageError::NotAMyologLog {
            path: path.clone(),
            reason: reason.into(),
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let db = loop {
            // Read once, in key order: a small cache is enough (sled's default, 1 GiB, would
            // come on top of the new log's own cache during a migration).
            match sled::Config::new()
                .path(&path)
                .cache_capacity(LEGACY_CACHE_BYTES)
                .flush_every_ms(None)
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(io))
                    if io.to_string().contains("could not acquire lock")
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                    return Err(StorageError::InUse { path });
                }
                Err(error) => return Err(error.into()),
            }
        };
        if !db
            .tree_names()
            .iter()
            .any(|name| name.as_ref() == format::TREE_NAME)
        {
            return Err(not_a_log("a sled database without the Myolog tree"));
        }
        let tree = db.open_tree(format::TREE_NAME)?;
        if tree.get(format::META_MAGIC_KEY)?.as_deref() != Some(format::MAGIC) {
            return Err(not_a_log("the log tree has no Myolog magic"));
        }
        let found = tree
            .get(format::META_FORMAT_KEY)?
            .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| not_a_log("the format version is missing or malformed"))?;
        if found != FORMAT_VERSION_1 {
            return Err(StorageError::UnsupportedFormat {
                path,
                found,
                supported: FORMAT_VERSION_1,
            });
        }
        Ok(LegacyLog {
            path,
            tree,
            _db: db,
        })
    }

    /// The directory of the log.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The head recorded by the last commit record.
    pub fn head(&self) -> Result<Head, StorageError> {
        match self
            .tree
            .range(commit_key(0)..=commit_key(u64::MAX))
            .next_back()
        {
            None => Ok(Head::default()),
            Some(entry) => {
                let (key, value) = entry?;
                let record =
                    CommitRecord::decode(&value).map_err(|reason| StorageError::Corrupt {
                        location: format!(
                            "commit record at seq {}",
                            seq_from_commit_key(&key).unwrap_or(0)
                        ),
                        reason,
                    })?;
                Ok(Head {
                    seq: record.last_seq(),
                    hash: record.last_hash,
                })
            }
        }
    }

    /// Every stored event from seq 1 on, in order, as canonical bytes and hash (layout checked,
    /// hash not: [`crate::EventLog::append_replicated`] re-checks the chain).
    pub fn stored_events(&self) -> impl Iterator<Item = Result<StoredEvent, StorageError>> + '_ {
        self.tree
            .range(event_key(0)..=event_key(u64::MAX))
            .map(|entry| {
                let (key, value) = entry?;
                StoredEvent::from_stored_value(&value).map_err(|reason| StorageError::Corrupt {
                    location: match seq_from_event_key(&key) {
                        Some(seq) => format!("event seq {seq}"),
                        None => format!("event key {key:?}"),
                    },
                    reason,
                })
            })
    }

    /// The version 1 audit walk: every event's hash, the chain, stream versions and commit
    /// records, up to the head of the last commit record.
    pub fn verify(&self) -> Result<VerifyReport, StorageError> {
        verify_v1(&self.tree)
    }
}

/// What [`migrate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// Events copied (every event of the source, 1..=head).
    pub events: u64,
    /// The head of both logs: the same seq and hash.
    pub head: Head,
}

/// Why [`migrate`] stopped. The source is never written; a destination left half-written is to be
/// deleted before trying again.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the version 1 log at {path} cannot be read: {source}")]
    Source { path: PathBuf, source: StorageError },
    #[error("the new log at {path} cannot be written: {source}")]
    Destination { path: PathBuf, source: StorageError },
    #[error(
        "the destination {path} already holds a log with {events} events; give a new or empty \
         directory"
    )]
    DestinationNotEmpty { path: PathBuf, events: u64 },
    #[error("the source's event seq {seq} cannot be copied: {reason}")]
    Refused { seq: u64, reason: String },
    #[error(
        "the copy ends at seq {copied_seq} hash {copied_hash}, the source's head is seq \
         {source_seq} hash {source_hash}"
    )]
    HeadMismatch {
        copied_seq: u64,
        copied_hash: Hash,
        source_seq: u64,
        source_hash: Hash,
    },
    #[error("the new log does not verify: {0}")]
    NotIntact(VerifyFailure),
}

/// Converts the version 1 log at `from` into a new version 2 log at `to` (a new or empty
/// directory), offline: every event keeps its seq, recorded-at, recorded-by and chain hash
/// ([`crate::EventLog::append_replicated`] re-checks each event's hash and link on the way), the
/// copy must end on the source's head, and the new log must pass [`crate::EventLog::verify`].
/// Events are copied in batches of at most `options.max_batch_events`, each durable before the
/// next is read.
pub fn migrate(
    from: &Path,
    to: &Path,
    options: crate::LogOptions,
) -> Result<MigrationReport, MigrationError> {
    let source_error = |source| MigrationError::Source {
        path: from.to_path_buf(),
        source,
    };
    let destination_error = |source| MigrationError::Destination {
        path: to.to_path_buf(),
        source,
    };
    let source = LegacyLog::open(from).map_err(source_error)?;
    let source_head = source.head().map_err(source_error)?;
    let batch_limit = options.max_batch_events.max(1);
    let target = crate::EventLog::open(
        to,
        crate::LogOptions {
            create_if_missing: true,
            ..options
        },
    )
    .map_err(destination_error)?;
    let existing = target.head().seq;
    if existing > 0 {
        return Err(MigrationError::DestinationNotEmpty {
            path: to.to_path_buf(),
            events: existing,
        });
    }
    let mut batch = Vec::with_capacity(batch_limit.min(10_000));
    let mut copied = 0u64;
    let mut copy = |batch: &mut Vec<StoredEvent>| -> Result<(), MigrationError> {
        if batch.is_empty() {
            return Ok(());
        }
        target
            .append_replicated(batch)
            .map_err(|error| match error {
                crate::ReplicationError::Refused { seq, reason } => MigrationError::Refused {
                    seq,
                    reason: reason.to_string(),
                },
                crate::ReplicationError::Storage(source) => destination_error(source),
                other => MigrationError::Refused {
                    seq: batch.first().map_or(0, |event| event.seq),
                    reason: other.to_string(),
                },
            })?;
        copied += batch.len() as u64;
        batch.clear();
        Ok(())
    };
    for stored in source.stored_events() {
        let stored = stored.map_err(source_error)?;
        if stored.seq > source_head.seq {
            // Past the last commit record: never acknowledged, as the source's reads would say.
            break;
        }
        batch.push(stored);
        if batch.len() >= batch_limit {
            copy(&mut batch)?;
        }
    }
    copy(&mut batch)?;
    let copied_head = target.head();
    if copied_head != source_head {
        return Err(MigrationError::HeadMismatch {
            copied_seq: copied_head.seq,
            copied_hash: copied_head.hash,
            source_seq: source_head.seq,
            source_hash: source_head.hash,
        });
    }
    let report = target.verify().map_err(destination_error)?;
    if let Some(failure) = report.first_bad {
        return Err(MigrationError::NotIntact(failure));
    }
    Ok(MigrationReport {
        events: copied,
        head: copied_head,
    })
}
