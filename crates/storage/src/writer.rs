//! The writer state and its group commit.
//!
//! sled does not merge concurrent flushes (16 threads appending one event each reach the same rate as
//! one thread), so the log merges them itself: appenders queue their batch and the appender holding
//! the writer (the leader, see `EventLog::append`) takes every queued batch at once, validates them
//! in arrival order — each against the state left by the earlier accepted batches of the same group
//! — writes all accepted batches and their commit records with ONE `apply_batch`, makes them durable
//! with ONE flush and fdatasync, and only then answers every appender. A batch that fails validation is answered with its error and
//! contributes nothing; the other batches of the group are unaffected.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use crate::durability::DurableFiles;
use crate::error::{AppendError, StorageError};
use crate::event::{Appended, Clock, ExpectedVersion, Hash, Head, NewEvent};
use crate::format::{self, CommitRecord, EventFields};
use crate::index::Index;

/// One event checked for shape in the caller's thread, with its content digest already computed
/// there, so that the group-commit leader only does what must be serial.
#[derive(Debug)]
pub(crate) struct PreparedEvent {
    pub event: NewEvent,
    pub content_digest: Hash,
}

/// An append waiting for the writer.
#[derive(Debug)]
pub(crate) struct AppendRequest {
    pub events: Vec<PreparedEvent>,
    pub principal: String,
    pub reply: Sender<Result<Vec<Appended>, AppendError>>,
}

/// The committed head, shared with readers; the condition variable wakes tailing readers.
#[derive(Debug, Default)]
pub(crate) struct HeadWatch {
    pub head: Mutex<Head>,
    pub advanced: Condvar,
}

impl HeadWatch {
    pub fn get(&self) -> Head {
        *self
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set(&self, head: Head) {
        *self
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = head;
        self.advanced.notify_all();
    }
}

/// Everything the group-commit leader works with; behind a mutex in `EventLog`.
#[derive(Debug)]
pub(crate) struct Writer {
    pub tree: sled::Tree,
    pub db: sled::Db,
    pub files: DurableFiles,
    pub clock: Arc<dyn Clock>,
    pub head_watch: Arc<HeadWatch>,
    /// Seq and hash of the last committed event.
    pub head: Head,
    /// Event ids and streams of committed events, shared with readers.
    pub index: Arc<RwLock<Index>>,
    /// At most this many events go into one group commit (bounds the writer's memory and latency).
    pub max_group_events: usize,
    /// Set once a commit failed: what is on disk is then unknown, so no further append is accepted.
    pub poisoned: Option<String>,
}

/// What is known of an earlier event with the same id: enough to answer a retry or detect a conflict.
#[derive(Clone, Copy, Debug)]
struct EarlierEvent {
    seq: u64,
    stream_version: u64,
    hash: Hash,
    content_digest: Hash,
}

/// Uncommitted effects of accepted batches: stream versions and event ids they introduce.
#[derive(Debug, Default)]
struct Overlay {
    stream_versions: HashMap<String, u64>,
    event_ids: HashMap<String, EarlierEvent>,
}

impl Overlay {
    fn absorb(&mut self, other: Overlay) {
        self.stream_versions.extend(other.stream_versions);
        self.event_ids.extend(other.event_ids);
    }
}

/// The staged writes and answers of one accepted batch.
struct AcceptedBatch {
    /// (seq, stored event) of each new event.
    events: Vec<(u64, Vec<u8>)>,
    /// (event id, stream key, hash) of each new event, for the commit records and the index.
    entries: Vec<(String, String, Hash)>,
    appended: Vec<Appended>,
    overlay: Overlay,
}

impl Writer {
    /// Commits a group: validates each request against committed state and the group's earlier
    /// accepted requests, writes all accepted ones with one `apply_batch`, makes them durable with
    /// one flush + fdatasync, then answers every request.
    pub fn commit_group(&mut self, group: Vec<AppendRequest>) {
        if group.is_empty() {
            return;
        }
        if let Some(cause) = &self.poisoned {
            for request in group {
                let _ = request.reply.send(Err(StorageError::Poisoned {
                    cause: cause.clone(),
                }
                .into()));
            }
            return;
        }
        // One timestamp per group: every event of a commit became durable at the same moment.
        let recorded_at = self.clock.now_unix_nanos();
        let group_start = self.head;
        let mut group_overlay = Overlay::default();
        let mut sled_batch = sled::Batch::default();
        let mut entries = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        for request in group {
            match self.stage_batch(&request, recorded_at, &group_overlay) {
                Ok(accepted) => {
                    for (seq, value) in accepted.events {
                        sled_batch.insert(&format::event_key(seq)[..], value);
                    }
                    entries.extend(accepted.entries);
                    group_overlay.absorb(accepted.overlay);
                    answers.push((request.reply, Ok(accepted.appended)));
                }
                Err(error) => answers.push((request.reply, Err(error))),
            }
        }
        if !entries.is_empty() {
            let records = commit_records(group_start.seq + 1, recorded_at, entries);
            for record in &records {
                sled_batch.insert(&format::commit_key(record.first_seq)[..], record.encode());
            }
            if let Err(error) = self.persist(sled_batch) {
                // What reached the disk is unknown; answer the failure and refuse further appends
                // until a reopen recovers the state from disk.
                let cause = error.to_string();
                self.poisoned = Some(cause.clone());
                self.head = group_start;
                for (reply, outcome) in answers {
                    let outcome = match outcome {
                        Ok(_) => Err(StorageError::Poisoned {
                            cause: cause.clone(),
                        }
                        .into()),
                        Err(rejected) => Err(rejected),
                    };
                    let _ = reply.send(outcome);
                }
                return;
            }
            {
                let mut index = self
                    .index
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                for record in &records {
                    for (offset, (event_id, stream_key)) in record.entries.iter().enumerate() {
                        index.insert(event_id, stream_key, record.first_seq + offset as u64);
                    }
                }
            }
            self.head_watch.set(self.head);
        }
        for (reply, outcome) in answers {
            // An appender that gave up waiting is not an error of the log.
            let _ = reply.send(outcome);
        }
    }

    fn persist(&mut self, batch: sled::Batch) -> Result<(), StorageError> {
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        self.files.sync()
    }

    /// Validates one batch against committed state plus the group's earlier accepted batches and
    /// stages its writes. On error, `self.head` is left as it was.
    fn stage_batch(
        &mut self,
        request: &AppendRequest,
        recorded_at: i64,
        group_overlay: &Overlay,
    ) -> Result<AcceptedBatch, AppendError> {
        let batch_start = self.head;
        let result = self.stage_batch_inner(request, recorded_at, group_overlay);
        if result.is_err() {
            self.head = batch_start;
        }
        result
    }

    fn stage_batch_inner(
        &mut self,
        request: &AppendRequest,
        recorded_at: i64,
        group_overlay: &Overlay,
    ) -> Result<AcceptedBatch, AppendError> {
        let mut accepted = AcceptedBatch {
            events: Vec::with_capacity(request.events.len()),
            entries: Vec::with_capacity(request.events.len()),
            appended: Vec::with_capacity(request.events.len()),
            overlay: Overlay::default(),
        };
        for (index, prepared) in request.events.iter().enumerate() {
            let event = &prepared.event;
            if let Some(earlier) =
                self.lookup_event_id(&event.event_id, group_overlay, &accepted.overlay)?
            {
                if earlier.content_digest != prepared.content_digest {
                    let original_seq = (!accepted.overlay.event_ids.contains_key(&event.event_id))
                        .then_some(earlier.seq);
                    return Err(AppendError::EventIdConflict {
                        index,
                        event_id: event.event_id.clone(),
                        original_seq,
                    });
                }
                accepted.appended.push(Appended {
                    seq: earlier.seq,
                    hash: earlier.hash,
                    stream_version: earlier.stream_version,
                    duplicate: true,
                });
                continue;
            }
            let current_version =
                self.stream_version(&event.stream_key, group_overlay, &accepted.overlay);
            if let ExpectedVersion::Exactly(expected) = event.expected_version
                && expected != current_version
            {
                return Err(AppendError::WrongExpectedVersion {
                    index,
                    event_id: event.event_id.clone(),
                    stream_key: event.stream_key.clone(),
                    expected,
                    actual: current_version,
                });
            }
            let seq = self.head.seq + 1;
            let stream_version = current_version + 1;
            let (value, hash) = format::encode_event(&EventFields {
                seq,
                stream_key: &event.stream_key,
                stream_version,
                event_id: &event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                recorded_at_unix_nanos: recorded_at,
                recorded_by: &request.principal,
                prev_hash: self.head.hash,
            });
            let earlier = EarlierEvent {
                seq,
                stream_version,
                hash,
                content_digest: prepared.content_digest,
            };
            accepted.events.push((seq, value));
            accepted
                .entries
                .push((event.event_id.clone(), event.stream_key.clone(), hash));
            accepted
                .overlay
                .event_ids
                .insert(event.event_id.clone(), earlier);
            accepted
                .overlay
                .stream_versions
                .insert(event.stream_key.clone(), stream_version);
            accepted.appended.push(Appended {
                seq,
                hash,
                stream_version,
                duplicate: false,
            });
            self.head = Head { seq, hash };
        }
        Ok(accepted)
    }

    fn lookup_event_id(
        &self,
        event_id: &str,
        group_overlay: &Overlay,
        batch_overlay: &Overlay,
    ) -> Result<Option<EarlierEvent>, StorageError> {
        if let Some(earlier) = batch_overlay
            .event_ids
            .get(event_id)
            .or_else(|| group_overlay.event_ids.get(event_id))
        {
            return Ok(Some(*earlier));
        }
        let candidates = self
            .index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .candidates(event_id);
        for seq in candidates {
            let event =
                crate::log::read_event(&self.tree, seq)?.ok_or_else(|| StorageError::Corrupt {
                    location: format!("event seq {seq}"),
                    reason: crate::error::DecodeError::Truncated {
                        field: "indexed event (missing)",
                    },
                })?;
            if event.event_id == event_id {
                let content_digest = format::content_digest(
                    &event.stream_key,
                    &event.event_type,
                    event.schema_version,
                    &event.payload,
                );
                return Ok(Some(EarlierEvent {
                    seq,
                    stream_version: event.stream_version,
                    hash: event.hash,
                    content_digest,
                }));
            }
        }
        Ok(None)
    }

    fn stream_version(
        &self,
        stream_key: &str,
        group_overlay: &Overlay,
        batch_overlay: &Overlay,
    ) -> u64 {
        if let Some(version) = batch_overlay
            .stream_versions
            .get(stream_key)
            .or_else(|| group_overlay.stream_versions.get(stream_key))
        {
            return *version;
        }
        self.index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .stream_version(stream_key)
    }
}

/// Splits a group's new events (from `first_seq` on) into commit records of at most
/// [`format::MAX_EVENTS_PER_COMMIT_RECORD`] events, each ending on its last event's hash.
fn commit_records(
    first_seq: u64,
    recorded_at: i64,
    entries: Vec<(String, String, Hash)>,
) -> Vec<CommitRecord> {
    let mut records: Vec<CommitRecord> = Vec::new();
    for (seq, (event_id, stream_key, hash)) in (first_seq..).zip(entries) {
        match records.last_mut() {
            Some(record) if record.entries.len() < format::MAX_EVENTS_PER_COMMIT_RECORD => {
                record.entries.push((event_id, stream_key));
                record.last_hash = hash;
            }
            _ => records.push(CommitRecord {
                first_seq: seq,
                recorded_at_unix_nanos: recorded_at,
                last_hash: hash,
                entries: vec![(event_id, stream_key)],
            }),
        }
    }
    records
}

#[cfg(test)]
mod tests {
    //! Group commit semantics that need a deterministic group: several batches handed to the
    //! writer at once, as concurrent appenders would.

    use super::*;
    use crate::event::SystemClock;
    use crate::format::content_digest;
    use std::collections::HashSet;
    use std::sync::mpsc;

    fn writer_for(dir: &std::path::Path) -> Writer {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .open()
            .unwrap();
        let tree = db.open_tree(format::TREE_NAME).unwrap();
        Writer {
            tree,
            db,
            files: DurableFiles::open(dir).unwrap(),
            clock: Arc::new(SystemClock),
            head_watch: Arc::new(HeadWatch::default()),
            head: Head::default(),
            index: Arc::new(RwLock::new(Index::default())),
            max_group_events: 1000,
            poisoned: None,
        }
    }

    type Reply = mpsc::Receiver<Result<Vec<Appended>, AppendError>>;

    fn request(events: &[(&str, &str, ExpectedVersion, &str)]) -> (AppendRequest, Reply) {
        let events = events
            .iter()
            .map(|(id, stream, expected, payload)| {
                let event = NewEvent {
                    event_id: (*id).into(),
                    stream_key: (*stream).into(),
                    expected_version: *expected,
                    event_type: "t".into(),
                    schema_version: 1,
                    payload: payload.as_bytes().to_vec(),
                };
                let content_digest = content_digest(stream, "t", 1, payload.as_bytes());
                PreparedEvent {
                    event,
                    content_digest,
                }
            })
            .collect();
        let (reply, answer) = mpsc::channel();
        (
            AppendRequest {
                events,
                principal: "p".into(),
                reply,
            },
            answer,
        )
    }

    #[test]
    fn a_failing_batch_fails_alone_and_later_batches_see_earlier_ones_of_the_same_group() {
        use ExpectedVersion::*;
        let dir = tempfile::tempdir().unwrap();
        let mut writer = writer_for(dir.path());
        let requests = [
            request(&[("a", "s", Exactly(0), "x"), ("b", "s", Exactly(1), "y")]),
            // Expects the state before the first batch: rejected.
            request(&[("c", "t", Exactly(0), "z"), ("d", "s", Exactly(0), "w")]),
            // Expects the state after the first batch, and retries its event "a".
            request(&[("a", "s", Exactly(0), "x"), ("e", "s", Exactly(2), "v")]),
            // Reuses "b" with other content: rejected, citing the seq "b" got in this group.
            request(&[("b", "s", Any, "changed")]),
            // Uses "c", which only the rejected batch had: accepted.
            request(&[("c", "t", Exactly(0), "z")]),
        ];
        let (group, answers): (Vec<_>, Vec<_>) = requests.into_iter().unzip();
        writer.commit_group(group);
        let answers: Vec<_> = answers
            .iter()
            .map(|answer| answer.recv().unwrap())
            .collect();
        let seqs = |i: usize| -> Vec<(u64, bool)> {
            answers[i]
                .as_ref()
                .unwrap()
                .iter()
                .map(|a| (a.seq, a.duplicate))
                .collect()
        };
        assert_eq!(seqs(0), [(1, false), (2, false)]);
        assert!(matches!(
            answers[1],
            Err(AppendError::WrongExpectedVersion {
                index: 1,
                actual: 2,
                ..
            })
        ));
        assert_eq!(seqs(2), [(1, true), (3, false)]);
        assert!(matches!(
            answers[3],
            Err(AppendError::EventIdConflict {
                original_seq: Some(2),
                ..
            })
        ));
        assert_eq!(seqs(4), [(4, false)]);
        assert_eq!(writer.head.seq, 4);
        assert_eq!(writer.head_watch.get(), writer.head);
        let report = crate::verify::verify(&writer.tree).unwrap();
        assert!(
            report.is_intact() && report.events_checked == 4,
            "{report:?}"
        );
        // The whole group was one commit: one recorded-at for all of its events.
        let stamps: HashSet<i64> = writer
            .tree
            .scan_prefix([format::EVENT_PREFIX])
            .map(|entry| {
                format::decode_event(&entry.unwrap().1)
                    .unwrap()
                    .recorded_at_unix_nanos
            })
            .collect();
        assert_eq!(stamps.len(), 1);
    }
}
