//! Copying a log event for event, hashes and all: reading stored events as their canonical bytes
//! ([`StoredEvent`], for archives and followers) and appending events that another log already
//! numbered, timestamped and chained ([`crate::EventLog::append_replicated`], for restores and
//! followers).
//!
//! A replicated event keeps everything the original log assigned — sequence, stream version,
//! recorded-at, recorded-by, previous hash, hash — so the copy serves, replays and verifies exactly
//! like the original. Nothing is trusted: each event must decode, hash to the hash it states and
//! chain onto the head, or the whole batch is refused with the sequence that failed.

use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};

use crate::error::{DecodeError, InvalidEvent, StorageError};
use crate::event::{Hash, Head, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES, RecordedEvent};
use crate::format::{self, CheckError};
use crate::index::fingerprint;
use crate::writer::Writer;

/// One stored event as its canonical bytes (see [`crate::format`]) and chain hash: what an archive
/// ships and a follower receives. `seq`, `recorded_at_unix_nanos` and `prev_hash` are also inside
/// `canonical`; they are repeated so that a receiver can check the chain without decoding, and
/// [`crate::EventLog::append_replicated`] refuses an event whose copies disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub recorded_at_unix_nanos: i64,
    /// The hash of event `seq - 1` ([`Hash::ZERO`] for event 1).
    pub prev_hash: Hash,
    /// SHA-256 of `canonical`.
    pub hash: Hash,
    /// The canonical encoding: exactly the bytes the chain hash covers.
    pub canonical: Vec<u8>,
}

impl StoredEvent {
    /// Builds a stored event from its canonical bytes and stated hash, reading seq, recorded-at
    /// and previous hash from the bytes. Checks the layout and that the bytes hash to `hash`.
    pub fn from_canonical(canonical: Vec<u8>, hash: Hash) -> Result<StoredEvent, Refusal> {
        let event = decode_canonical(&canonical, hash)?;
        Ok(StoredEvent {
            seq: event.seq,
            recorded_at_unix_nanos: event.recorded_at_unix_nanos,
            prev_hash: event.prev_hash,
            hash,
            canonical,
        })
    }

    /// The event these bytes encode (payload and envelope), after checking the layout, the hash
    /// and that the repeated fields agree with the bytes.
    pub fn decode(&self) -> Result<RecordedEvent, Refusal> {
        let event = decode_canonical(&self.canonical, self.hash)?;
        let disagreeing = if event.seq != self.seq {
            Some("seq")
        } else if event.recorded_at_unix_nanos != self.recorded_at_unix_nanos {
            Some("recorded-at")
        } else if event.prev_hash != self.prev_hash {
            Some("previous hash")
        } else {
            None
        };
        match disagreeing {
            Some(field) => Err(Refusal::FieldDisagrees { field }),
            None => Ok(event),
        }
    }

    /// Builds a stored event from a stored value (canonical bytes followed by the hash), as read
    /// from the log's tree. Checks the layout only; the hash is the receiver's to check.
    pub(crate) fn from_stored_value(value: &[u8]) -> Result<StoredEvent, DecodeError> {
        let event = format::decode_event(value)?;
        // decode_event succeeded, so the value ends with the 32-byte hash.
        let canonical = value[..value.len() - event.hash.0.len()].to_vec();
        Ok(StoredEvent {
            seq: event.seq,
            recorded_at_unix_nanos: event.recorded_at_unix_nanos,
            prev_hash: event.prev_hash,
            hash: event.hash,
            canonical,
        })
    }
}

/// Decodes canonical bytes followed by `hash` strictly and checks the hash.
fn decode_canonical(canonical: &[u8], hash: Hash) -> Result<RecordedEvent, Refusal> {
    let mut value = Vec::with_capacity(canonical.len() + hash.0.len());
    value.extend_from_slice(canonical);
    value.extend_from_slice(&hash.0);
    match format::decode_and_check_event(&value) {
        Ok(event) => Ok(event),
        Err(CheckError::Undecodable(reason)) => Err(Refusal::Undecodable(reason)),
        Err(CheckError::HashMismatch { stored, recomputed }) => Err(Refusal::HashMismatch {
            stated: stored,
            recomputed,
        }),
    }
}

/// Why one replicated event cannot be appended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it does not follow the head: the log is at seq {head}")]
    NotNext { head: u64 },
    #[error(
        "it does not chain onto the head: its previous hash is {stated}, the head's hash is {head}"
    )]
    PrevHashMismatch { stated: Hash, head: Hash },
    #[error("its bytes hash to {recomputed}, not to the stated {stated}")]
    HashMismatch { stated: Hash, recomputed: Hash },
    #[error("its canonical bytes cannot be decoded: {0}")]
    Undecodable(DecodeError),
    #[error("the stated {field} differs from the one in its canonical bytes")]
    FieldDisagrees { field: &'static str },
    #[error("it is version {found} of stream {stream_key:?}, which is at version {current}")]
    StreamVersion {
        stream_key: String,
        current: u64,
        found: u64,
    },
    #[error("its event id {event_id:?} is already used by seq {original_seq}")]
    DuplicateEventId { event_id: String, original_seq: u64 },
    #[error("{0}")]
    Invalid(InvalidEvent),
}

/// Why [`crate::EventLog::append_replicated`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("empty batch")]
    EmptyBatch,
    #[error("batch of {len} events; at most {max} are accepted")]
    BatchTooLarge { len: usize, max: usize },
    #[error("event seq {seq} refused: {reason}")]
    Refused { seq: u64, reason: Refusal },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn check_name(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    if value.is_empty() {
        return Err(InvalidEvent::Empty { field });
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(InvalidEvent::TooLong {
            field,
            len: value.len(),
            max: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

/// The limits an ordinary append enforces, so a replicated log holds nothing its own appends
/// could not have written.
fn check_limits(event: &RecordedEvent) -> Result<(), InvalidEvent> {
    check_name("event id", &event.event_id)?;
    check_name("stream key", &event.stream_key)?;
    check_name("event type", &event.event_type)?;
    check_name("recorded by", &event.recorded_by)?;
    if event.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(InvalidEvent::TooLong {
            field: "payload",
            len: event.payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

impl Writer {
    /// Checks `events` against the applied head and indexes and applies them with one atomic
    /// `apply_batch`, with chunks grouping consecutive events of one recorded-at, as the original's
    /// group commits did. Returns the
    /// new applied head; the caller makes it durable. On error nothing is applied and the index is
    /// as it was.
    pub(crate) fn apply_replicated(
        &mut self,
        events: &[StoredEvent],
    ) -> Result<Head, ReplicationError> {
        if let Some(cause) = self.shared.poisoned() {
            return Err(StorageError::Poisoned { cause }.into());
        }
        let mut decoded = Vec::with_capacity(events.len());
        let mut head = self.head;
        for stored in events {
            let refuse = |reason| ReplicationError::Refused {
                seq: stored.seq,
                reason,
            };
            if Some(stored.seq) != head.seq.checked_add(1) {
                return Err(refuse(Refusal::NotNext { head: head.seq }));
            }
            if stored.prev_hash != head.hash {
                return Err(refuse(Refusal::PrevHashMismatch {
                    stated: stored.prev_hash,
                    head: head.hash,
                }));
            }
            let event = stored.decode().map_err(refuse)?;
            check_limits(&event).map_err(|reason| refuse(Refusal::Invalid(reason)))?;
            head = Head {
                seq: event.seq,
                hash: event.hash,
            };
            decoded.push(event);
        }
        let Some(first) = decoded.first() else {
            return Err(ReplicationError::EmptyBatch);
        };
        let first_seq = first.seq;

        let index_lock = self.index.clone();
        let mut index = index_lock
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut staged = 0usize;
        let mut failure = None;
        for event in &decoded {
            if let Err(error) = self.stage(&mut index, event, first_seq, &decoded) {
                failure = Some(error);
                break;
            }
            staged += 1;
        }
        let unstage_all = |index: &mut crate::index::Index, count: usize| {
            for event in decoded[..count].iter().rev() {
                index.unstage(fingerprint(&event.event_id), &event.stream_key, event.seq);
            }
        };
        if let Some(error) = failure {
            unstage_all(&mut index, staged);
            return Err(error);
        }
        drop(index);

        let values: Vec<Vec<u8>> = events
            .iter()
            .map(|stored| [&stored.canonical[..], &stored.hash.0[..]].concat())
            .collect();
        let mut batch = sled::Batch::default();
        let mut large_value = false;
        let mut offset = 0usize;
        // One run of chunks per recorded-at: the original's group commits.
        for run in decoded.chunk_by(|a, b| a.recorded_at_unix_nanos == b.recorded_at_unix_nanos) {
            let entries: Vec<format::ChunkEntry<'_>> = run
                .iter()
                .zip(&values[offset..])
                .map(|(event, value)| format::ChunkEntry {
                    event_id: &event.event_id,
                    stream_key: &event.stream_key,
                    stored: value,
                })
                .collect();
            if let Some(first) = run.first() {
                large_value |= crate::writer::insert_chunks(
                    &mut batch,
                    first.seq,
                    first.recorded_at_unix_nanos,
                    &entries,
                    self.chunk_target_bytes,
                );
            }
            offset += run.len();
        }
        batch.insert(
            format::META_HEAD_KEY,
            &format::encode_head(head.seq, head.hash)[..],
        );
        if large_value && !self.shared.blobs_possible.load(Ordering::SeqCst) {
            // As in a group commit: syncs list blob files from this batch on, and the marker goes
            // atomically with the first large value.
            self.shared.blobs_possible.store(true, Ordering::SeqCst);
            batch.remove(format::META_SMALL_VALUES_KEY);
        }
        if let Err(error) = self.tree.apply_batch(batch) {
            let cause = StorageError::from(error).to_string();
            self.shared.poison(cause.clone());
            let mut index = index_lock
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            unstage_all(&mut index, staged);
            return Err(StorageError::Poisoned { cause }.into());
        }
        self.head = head;
        *self
            .shared
            .applied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = head;
        Ok(head)
    }

    /// Stages one replicated event in the index after checking its stream version and that its id
    /// is new; `batch` holds the events staged before it (from `first_seq` on).
    fn stage(
        &self,
        index: &mut crate::index::Index,
        event: &RecordedEvent,
        first_seq: u64,
        batch: &[RecordedEvent],
    ) -> Result<(), ReplicationError> {
        let refuse = |reason| ReplicationError::Refused {
            seq: event.seq,
            reason,
        };
        let print = fingerprint(&event.event_id);
        for seq in index.candidates_by_fingerprint(print).collect::<Vec<_>>() {
            let earlier_id = if seq >= first_seq {
                usize::try_from(seq - first_seq)
                    .ok()
                    .and_then(|at| batch.get(at))
                    .map(|earlier| earlier.event_id.clone())
            } else {
                crate::read::read_event(&self.tree, seq)?.map(|earlier| earlier.event_id)
            };
            if earlier_id.as_deref() == Some(event.event_id.as_str()) {
                return Err(refuse(Refusal::DuplicateEventId {
                    event_id: event.event_id.clone(),
                    original_seq: seq,
                }));
            }
        }
        index
            .insert_next(print, &event.stream_key, |current| {
                if current.checked_add(1) == Some(event.stream_version) {
                    Ok(event.seq)
                } else {
                    Err(Refusal::StreamVersion {
                        stream_key: event.stream_key.clone(),
                        current,
                        found: event.stream_version,
                    })
                }
            })
            .map(|_| ())
            .map_err(refuse)
    }
}

/// The SHA-256 of canonical bytes, for receivers that check a hash before building a
/// [`StoredEvent`].
pub fn canonical_hash(canonical: &[u8]) -> Hash {
    Hash(Sha256::digest(canonical).into())
}
