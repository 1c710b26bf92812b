//! The append-only, hash-chained, durable event log on sled. The only crate that knows sled.
//!
//! Events are opaque, versioned payloads (type name + schema version + bytes) with an envelope the
//! log assigns: a contiguous global sequence, a per-stream version, recorded-at (server UTC clock),
//! recorded-by (the caller's principal) and a SHA-256 hash chain. The crate knows nothing of clinical
//! meaning. See [`format`] for the on-disk layout and the canonical encoding that is hashed.
//!
//! * [`EventLog::open`] — open or create a log directory.
//! * [`EventLog::append`] — atomic, idempotent, optimistically concurrent, durable (group commit).
//! * [`EventLog::read_range`], [`EventLog::read_stream`], [`EventLog::get_by_event_id`],
//!   [`EventLog::head`] — reads; [`EventLog::verify`] — the audit walk.
//! * [`EventLog::read_stored_range`], [`EventLog::append_replicated`] — copying a log event for
//!   event with its hashes (archives, restores, followers).
//!
//! * [`legacy_v1::LegacyLog`] — the read-only reader of format version 1 logs, for `myolog
//!   migrate`; [`EventLog::open`] refuses them with [`StorageError::NeedsMigration`].
//!
//! There is deliberately no API that updates or deletes an event: a correction is a new event.

mod durability;
mod error;
mod event;
pub mod format;
mod index;
mod leftovers;
pub mod legacy_v1;
mod log;
mod read;
mod replication;
mod verify;
mod writer;

pub use error::{AppendError, BackendError, DecodeError, InvalidEvent, StorageError};
pub use event::{
    Appended, Clock, ExpectedVersion, Hash, Head, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES, NewEvent,
    RecordedEvent, SystemClock, system_time_from_unix_nanos, unix_nanos_from_system_time,
};
pub use log::{CutCommit, EventIter, EventLog, LogOptions, StoredEventIter, StreamIter};
pub use replication::{Refusal, ReplicationError, StoredEvent, canonical_hash};
pub use verify::{FailureReason, VerifyFailure, VerifyReport};
