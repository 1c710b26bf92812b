//! Every way the log can refuse or fail, as typed values: opening ([`StorageError`]), appending
//! ([`AppendError`]) and decoding stored bytes ([`DecodeError`]). No byte sequence on disk panics.

use std::path::PathBuf;

/// Why stored bytes could not be decoded. Reported by reads as [`StorageError::Corrupt`] and by
/// `verify` as the reason for the first bad sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated while reading {field}")]
    Truncated { field: &'static str },
    #[error("not an event record (bad tag)")]
    BadTag,
    #[error("unsupported event record version {0}")]
    UnsupportedRecordVersion(u16),
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("{count} unexpected trailing bytes")]
    TrailingBytes { count: usize },
    #[error("the chunk's checksum does not match its bytes")]
    ChecksumMismatch,
    #[error("the stored event claims seq {claimed_seq}, not the seq of its place in the chunk")]
    OutOfPlace { claimed_seq: u64 },
}

/// The storage engine underneath (sled) failed. Opaque so that no other crate names a sled type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(#[from] pub(crate) sled::Error);

/// Failures of opening, reading or verifying the log, and of the disk during an append.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the event log at {path} is in use by another process (or another open handle)")]
    InUse { path: PathBuf },
    #[error("{path} is not a Myolog event log: {reason}")]
    NotAMyologLog { path: PathBuf, reason: String },
    #[error("no event log at {path} and creating one was not requested")]
    Missing { path: PathBuf },
    #[error(
        "the event log at {path} has format version {found}; this build reads up to {supported}: \
         upgrade Myolog"
    )]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "the event log at {path} has the older format version {found}; this build reads version \
         {supported}: convert it offline with `myolog migrate --from {path} --to NEW_DIRECTORY` \
         (the original is left as it is)"
    )]
    NeedsMigration {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("corrupt stored data at {location}: {reason}")]
    Corrupt {
        location: String,
        reason: DecodeError,
    },
    #[error("I/O error while {action}: {source}")]
    Io {
        action: &'static str,
        source: std::io::Error,
    },
    #[error("storage engine error: {0}")]
    Backend(#[from] BackendError),
    #[error(
        "an earlier commit failed ({cause}); the log refuses further appends until it is reopened"
    )]
    Poisoned { cause: String },
    /// A bug guard: every queued append is answered by the commit that takes it.
    #[error("internal error: an append was dropped without an answer")]
    AnswerLost,
}

impl From<sled::Error> for StorageError {
    fn from(error: sled::Error) -> Self {
        StorageError::Backend(BackendError(error))
    }
}

/// Why a submitted event is invalid on its own, before any state is consulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} bytes; at most {max} are accepted")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

/// Why an append wrote nothing. Every variant except [`AppendError::Storage`] is the client's: the
/// batch is rejected as a whole and no other batch is affected.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("empty batch")]
    EmptyBatch,
    #[error("batch of {len} events; at most {max} are accepted")]
    BatchTooLarge { len: usize, max: usize },
    #[error("the principal (recorded-by) is invalid: {0}")]
    InvalidPrincipal(InvalidEvent),
    #[error("event {index} of the batch is invalid: {reason}")]
    InvalidEvent { index: usize, reason: InvalidEvent },
    #[error(
        "event {index} ({event_id}): stream {stream_key} is at version {actual}, the event expected \
         {expected}"
    )]
    WrongExpectedVersion {
        index: usize,
        event_id: String,
        stream_key: String,
        expected: u64,
        actual: u64,
    },
    /// `original_seq` is `None` when the earlier use of the id is in the same batch.
    #[error(
        "event {index}: event id {event_id} was already used (seq {original_seq:?}) with different \
         content"
    )]
    EventIdConflict {
        index: usize,
        event_id: String,
        original_seq: Option<u64>,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}
