//! The values that go into and come out of the log: what a client submits ([`NewEvent`]), what the
//! log recorded ([`RecordedEvent`]), what an append answers ([`Appended`]) and the chain head.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest accepted event id, stream key, event type or principal, in bytes. Keys of the log's
/// indexes embed these strings, and sled keeps keys in memory-resident index nodes, so they stay short.
pub const MAX_NAME_BYTES: usize = 512;

/// Largest accepted payload, in bytes. sled 0.34 writes any log item above 128 KiB (its default
/// segment size / 4) to a separate blob file; we fsync those too, but clinical events are small and a
/// bound keeps one client from filling the disk with one call.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// A SHA-256 digest: an event's chain hash, the previous event's hash, or a content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The previous-hash of event 1 and the head hash of an empty log: 32 zero bytes.
    pub const ZERO: Hash = Hash([0; 32]);

    /// Lower-case hexadecimal, 64 characters: the form auditors compare.
    pub fn to_hex(&self) -> String {
        let mut hex = String::with_capacity(64);
        for byte in self.0 {
            hex.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
        hex
    }

    /// Parses 64 hexadecimal characters (either case); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Hash> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (index, pair) in bytes.chunks_exact(2).enumerate() {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            out[index] = u8::try_from(high * 16 + low).ok()?;
        }
        Some(Hash(out))
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// The stream version an event expects its stream to be at before it is appended.
///
/// Versions count from 1 within a stream; a stream with no events is at version 0. Within one batch,
/// each event's expectation is checked against the stream as left by the batch's earlier events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check: append at whatever the stream's next version is.
    Any,
    /// The stream must be exactly at this version (0: the stream must not exist yet).
    Exactly(u64),
}

impl From<Option<u64>> for ExpectedVersion {
    /// `None` is [`ExpectedVersion::Any`], `Some(v)` is [`ExpectedVersion::Exactly`]: the shape of an
    /// optional protobuf field.
    fn from(expected: Option<u64>) -> Self {
        expected.map_or(ExpectedVersion::Any, ExpectedVersion::Exactly)
    }
}

/// One event as a client submits it. Everything here is client-provided; the log adds the sequence,
/// stream version, recorded-at, recorded-by and the hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// The idempotency key, unique across the whole log (e.g. a UUID chosen by the EDC).
    pub event_id: String,
    /// The stream the event belongs to, e.g. `study/subject`. Opaque to storage.
    pub stream_key: String,
    /// Optimistic-concurrency precondition; not part of the event's content.
    pub expected_version: ExpectedVersion,
    /// The payload's type name, e.g. `myolog.v1.MmtAssessed`. Opaque to storage. A `Cow` because
    /// type names are usually constants of the caller's schema: borrowing them saves an allocation
    /// and a free per event on the append path.
    pub event_type: Cow<'static, str>,
    /// The payload's schema version, so old events stay decodable after the schema evolves.
    pub schema_version: u32,
    /// The payload: opaque bytes.
    pub payload: Vec<u8>,
}

/// An event as the log recorded it: the envelope and the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Global sequence number: 1, 2, 3, ... without gaps, across restarts.
    pub seq: u64,
    pub stream_key: String,
    /// Version within the stream: 1, 2, 3, ... without gaps.
    pub stream_version: u64,
    pub event_id: String,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Vec<u8>,
    /// Server clock (UTC) when the event's batch was committed: nanoseconds since 1970-01-01T00:00:00Z.
    pub recorded_at_unix_nanos: i64,
    /// The authenticated principal that appended the event.
    pub recorded_by: String,
    /// The hash of event `seq - 1` ([`Hash::ZERO`] for event 1).
    pub prev_hash: Hash,
    /// SHA-256 of this event's canonical encoding (see [`crate::format`]).
    pub hash: Hash,
}

impl RecordedEvent {
    /// Recorded-at as a [`SystemTime`].
    pub fn recorded_at(&self) -> SystemTime {
        system_time_from_unix_nanos(self.recorded_at_unix_nanos)
    }
}

/// What an append answers for each event of the batch, in the batch's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: Hash,
    pub stream_version: u64,
    /// True when the event id had been recorded before with the same content: nothing was written and
    /// these are the original event's sequence, hash and stream version.
    pub duplicate: bool,
}

/// The last event of the log: its sequence and hash (`0` and [`Hash::ZERO`] when the log is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
}

/// The source of recorded-at timestamps. The default is the system clock; tests inject their own.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, as nanoseconds since the Unix epoch, UTC.
    fn now_unix_nanos(&self) -> i64;
}

/// The server's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_nanos(&self) -> i64 {
        unix_nanos_from_system_time(SystemTime::now())
    }
}

/// Nanoseconds since the Unix epoch; saturates outside the years 1677..2262 that an i64 covers.
pub fn unix_nanos_from_system_time(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos())
            .map(|nanos| -nanos)
            .unwrap_or(i64::MIN),
    }
}

/// The inverse of [`unix_nanos_from_system_time`].
pub fn system_time_from_unix_nanos(nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}
