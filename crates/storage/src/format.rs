//! The on-disk format, version 1: key layout of the single sled tree, the canonical event encoding
//! that is both the stored value and the input of the chain hash, and the commit records.
//!
//! # One tree, prefixed keys
//!
//! Everything lives in one sled tree named [`TREE_NAME`], because sled applies a `Batch` atomically
//! only within one tree: one `apply_batch` then writes a whole group commit — its events and its
//! commit record — or nothing of it, without the cost of a cross-tree transaction.
//!
//! | key                               | value                                                   |
//! |-----------------------------------|---------------------------------------------------------|
//! | `e` ‖ seq (u64 BE)                | canonical event bytes ‖ event hash (32 bytes)           |
//! | `c` ‖ first seq of the group (u64 BE) | commit record (below)                               |
//! | `m` ‖ `magic`                     | `myolog-log`                                            |
//! | `m` ‖ `format`                    | format version (u32 BE)                                 |
//! | `m` ‖ `small-values`              | `1`, present only while every value ever stored is small |
//!
//! Big-endian sequence numbers make sled's byte order the log order, so a range scan is the replay.
//!
//! # Commit records: one per group commit (per 64 events), instead of per-event index entries
//!
//! Every sled insert costs about as much as the fsync it shares at large batches, so per-event index
//! keys (event id -> seq, stream/version -> seq) would cost three inserts per event, a third of raw
//! sled's throughput (measured). Instead each group commit writes one commit record per up to
//! [`MAX_EVENTS_PER_COMMIT_RECORD`] events naming, in
//! sequence order, each event's id and stream key, plus the group's recorded-at and the hash of its
//! last event. At open, the log rebuilds its in-memory indexes (event-id fingerprint -> seq, stream ->
//! seqs; stream versions are positions in the stream) from the commit records alone, which are a
//! few dozen bytes per event, never the events. The last commit record is the head record: its end
//! sequence and last hash are the log's head, so a deleted tail event is detected by `verify`.
//!
//! ```text
//! "MYOLOGCR"            8 bytes
//! record version        u16   (1)
//! first seq             u64
//! event count           u32
//! recorded at           i64   (the group's commit time; every event of the group carries it)
//! last event hash       32 bytes
//! per event, in order:  event id (u32 length ‖ bytes), stream key (u32 length ‖ bytes)
//! ```
//!
//! # Canonical event encoding (the hash input)
//!
//! Fields in this fixed order; integers big-endian; strings UTF-8; every variable-length field is
//! preceded by its length as a u32 BE:
//!
//! ```text
//! "MYOLOGEV"            8 bytes, domain separation: these bytes hash nothing but Myolog events
//! record version        u16   (1)
//! seq                   u64
//! stream key            u32 length ‖ bytes
//! stream version        u64
//! event id              u32 length ‖ bytes
//! event type            u32 length ‖ bytes
//! schema version        u32
//! payload               u32 length ‖ bytes
//! recorded at           i64   nanoseconds since 1970-01-01T00:00:00Z, UTC
//! recorded by           u32 length ‖ bytes
//! previous hash         32 bytes (zeros for seq 1)
//! ```
//!
//! The event hash is SHA-256 (FIPS 180-4) of exactly these bytes. SHA-256 rather than BLAKE3 because
//! it is the FIPS-approved hash that regulators' and auditors' tools (`sha256sum`, `openssl dgst`,
//! validated crypto modules) verify without Myolog code, and with SHA-NI it is not the bottleneck.
//! The stored value is the canonical bytes followed by the hash, so verifying an event is one hash of
//! the stored prefix, and the decoder rejects anything that is not exactly this layout, which makes
//! the encoding of a decoded event unique.
//!
//! Idempotency compares the client-provided content only — stream key, event type, schema version
//! and payload, never the server-assigned fields — so a retry of the same event matches however late
//! it comes. The writer compares those fields directly (exact, and no second hash per appended
//! event); [`content_digest`] is the equivalent digest for tools that want one: SHA-256 of
//! `"MYOLOGCD"`, u16 1, then stream key, event type, schema version and payload encoded as above.

use sha2::{Digest, Sha256};

use crate::error::DecodeError;
use crate::event::{Hash, RecordedEvent};

/// The sled tree holding the whole log.
pub const TREE_NAME: &[u8] = b"myolog";
/// The value of the `magic` meta key: what makes a sled database a Myolog log.
pub const MAGIC: &[u8] = b"myolog-log";
/// The newest on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Most events one commit record names. A group commit writes one record per this many events:
/// sled 0.34 keeps up to 16 entries per leaf and copies the whole leaf on every insert into it, so
/// records of a few KB (not one record of a whole group's thousands of events) keep commit-record
/// leaves cheap.
pub const MAX_EVENTS_PER_COMMIT_RECORD: usize = 64;

/// Key prefix of event records.
pub const EVENT_PREFIX: u8 = b'e';
/// Key prefix of commit records.
pub const COMMIT_PREFIX: u8 = b'c';
/// Key prefix of metadata.
pub const META_PREFIX: u8 = b'm';

/// Meta key of the magic value.
pub const META_MAGIC_KEY: &[u8] = b"mmagic";
/// Meta key of the format version.
pub const META_FORMAT_KEY: &[u8] = b"mformat";
/// Meta key present (value `1`) while no value above [`SMALL_VALUE_LIMIT`] was ever stored in the
/// tree. Written when a log is created and removed, in the same atomic batch, by the first group
/// commit that stores a larger value; logs created before the key existed lack it. While it is
/// present sled cannot have written a blob file (see [`crate::durability`]), so commits skip listing
/// `<log>/blobs`. It is an optimisation only: a log without it is synced exactly as before.
pub const META_SMALL_VALUES_KEY: &[u8] = b"msmall-values";

/// Largest stored value (event or commit record) that keeps [`META_SMALL_VALUES_KEY`]. sled 0.34
/// writes a log item to a blob file only above segment size / 4 (512 KiB / 4 = 128 KiB, less
/// headers; the log never changes sled's segment size). The largest items it writes for this tree
/// are whole leaf nodes, rewritten on consolidation and by the segment cleaner; a leaf is split once
/// it holds more than 16 entries, so it never holds more than 17 of our keys (9 bytes) and values.
/// 17 x (4 KiB + key + length varints) is about 70 KiB, half the threshold; index nodes hold up
/// to 257 short separator keys and child ids (under 8 KiB).
pub const SMALL_VALUE_LIMIT: usize = 4096;

const EVENT_TAG: &[u8; 8] = b"MYOLOGEV";
const CONTENT_TAG: &[u8; 8] = b"MYOLOGCD";
const COMMIT_TAG: &[u8; 8] = b"MYOLOGCR";
const RECORD_VERSION: u16 = 1;
const HASH_LEN: usize = 32;

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
        let mut reader = Reader::new(bytes);
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
    let mut out = Vec::with_capacity(8 + 2 + 8 + 4 + 8 + HASH_LEN + variable);
    out.extend_from_slice(COMMIT_TAG);
    out.extend_from_slice(&RECORD_VERSION.to_be_bytes());
    out.extend_from_slice(&first_seq.to_be_bytes());
    out.extend_from_slice(&length_prefix(entries.len()));
    out.extend_from_slice(&recorded_at_unix_nanos.to_be_bytes());
    out.extend_from_slice(&last_hash.0);
    for (event_id, stream_key) in entries {
        put_bytes(&mut out, event_id.as_bytes());
        put_bytes(&mut out, stream_key.as_bytes());
    }
    out
}

/// The content digest of the client-provided fields of an event (see the module docs).
pub fn content_digest(
    stream_key: &str,
    event_type: &str,
    schema_version: u32,
    payload: &[u8],
) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(CONTENT_TAG);
    hasher.update(RECORD_VERSION.to_be_bytes());
    hasher.update(length_prefix(stream_key.len()));
    hasher.update(stream_key.as_bytes());
    hasher.update(length_prefix(event_type.len()));
    hasher.update(event_type.as_bytes());
    hasher.update(schema_version.to_be_bytes());
    hasher.update(length_prefix(payload.len()));
    hasher.update(payload);
    Hash(hasher.finalize().into())
}

/// The fields of an event, borrowed, in canonical order: what [`encode_event`] writes.
#[derive(Clone, Copy, Debug)]
pub struct EventFields<'a> {
    pub seq: u64,
    pub stream_key: &'a str,
    pub stream_version: u64,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: &'a [u8],
    pub recorded_at_unix_nanos: i64,
    pub recorded_by: &'a str,
    pub prev_hash: Hash,
}

/// Encodes an event as stored: canonical bytes followed by their SHA-256. Returns the value and the
/// event hash.
pub fn encode_event(fields: &EventFields<'_>) -> (Vec<u8>, Hash) {
    let mut out = Vec::new();
    let hash = encode_event_into(&mut out, fields);
    (out, hash)
}

/// [`encode_event`] into `out` (cleared first), returning the event hash.
pub fn encode_event_into(out: &mut Vec<u8>, fields: &EventFields<'_>) -> Hash {
    out.clear();
    out.reserve(encoded_event_len(fields));
    put_event_before_prev_hash(out, fields);
    out.extend_from_slice(&fields.prev_hash.0);
    let hash = Hash(Sha256::digest(&out[..]).into());
    out.extend_from_slice(&hash.0);
    hash
}

/// The stored length of an event: canonical bytes and hash.
fn encoded_event_len(fields: &EventFields<'_>) -> usize {
    let variable = fields.stream_key.len()
        + fields.event_id.len()
        + fields.event_type.len()
        + fields.payload.len()
        + fields.recorded_by.len();
    8 + 2 + 8 + 8 + 4 + 8 + 4 + 8 + 5 * 4 + variable + 2 * HASH_LEN
}

/// The canonical encoding up to, not including, the previous hash: everything of an event that
/// does not depend on the chain.
fn put_event_before_prev_hash(out: &mut Vec<u8>, fields: &EventFields<'_>) {
    out.extend_from_slice(EVENT_TAG);
    out.extend_from_slice(&RECORD_VERSION.to_be_bytes());
    out.extend_from_slice(&fields.seq.to_be_bytes());
    put_bytes(out, fields.stream_key.as_bytes());
    out.extend_from_slice(&fields.stream_version.to_be_bytes());
    put_bytes(out, fields.event_id.as_bytes());
    put_bytes(out, fields.event_type.as_bytes());
    out.extend_from_slice(&fields.schema_version.to_be_bytes());
    put_bytes(out, fields.payload);
    out.extend_from_slice(&fields.recorded_at_unix_nanos.to_be_bytes());
    put_bytes(out, fields.recorded_by.as_bytes());
}

/// An event encoded up to its previous hash, which comes last in the canonical bytes, with SHA-256
/// already run over every complete 64-byte block before it: what the writer prepares for many
/// events at once (on two threads for a large group), so that only [`PreparedEvent::seal`] — at
/// most two SHA-256 blocks and two 32-byte copies — runs in chain order. The stored bytes and the
/// hash are exactly [`encode_event`]'s (SHA-256 is computed block by block from the start, so its
/// state after the prefix does not depend on what follows).
#[derive(Clone)]
pub struct PreparedEvent {
    /// The final stored value, with the previous hash and the hash still zero: sled's own buffer
    /// (never shared before it is sealed, so sealing writes into it without a copy).
    value: sled::IVec,
    /// SHA-256 state, after the bytes before the previous hash once [`PreparedEvent::hash_prefix`]
    /// ran.
    hasher: Sha256,
    prefix_hashed: bool,
}

impl std::fmt::Debug for PreparedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedEvent")
            .field("len", &self.value.len())
            .field("prefix_hashed", &self.prefix_hashed)
            .finish_non_exhaustive()
    }
}

impl PreparedEvent {
    /// Encodes `fields` except `fields.prev_hash` (ignored: the chain supplies it to
    /// [`PreparedEvent::seal`]) through `scratch` into the buffer sled will keep.
    pub fn new(scratch: &mut Vec<u8>, fields: &EventFields<'_>) -> PreparedEvent {
        scratch.clear();
        scratch.reserve(encoded_event_len(fields));
        put_event_before_prev_hash(scratch, fields);
        scratch.extend_from_slice(&[0u8; 2 * HASH_LEN]);
        PreparedEvent {
            value: sled::IVec::from(&scratch[..]),
            hasher: Sha256::new(),
            prefix_hashed: false,
        }
    }

    /// Forgets any hashing done so far (after a panic may have interrupted it).
    pub fn reset_hash(&mut self) {
        self.hasher = Sha256::new();
        self.prefix_hashed = false;
    }

    /// Runs SHA-256 over the bytes before the previous hash (any thread, any order of events).
    pub fn hash_prefix(&mut self) {
        if !self.prefix_hashed {
            let prefix_len = self.value.len() - 2 * HASH_LEN;
            self.hasher.update(&self.value[..prefix_len]);
            self.prefix_hashed = true;
        }
    }

    /// The stored value's length.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Never true: an encoded event has at least its tag.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// Completes the event after `prev_hash`: returns the stored value and the event hash.
    pub fn seal(mut self, prev_hash: Hash) -> (sled::IVec, Hash) {
        self.hash_prefix();
        self.hasher.update(prev_hash.0);
        let hash = Hash(self.hasher.finalize().into());
        // `IVec`'s mutable view copies only a shared buffer, and this one is not shared.
        let bytes: &mut [u8] = &mut self.value;
        let len = bytes.len();
        bytes[len - 2 * HASH_LEN..len - HASH_LEN].copy_from_slice(&prev_hash.0);
        bytes[len - HASH_LEN..].copy_from_slice(&hash.0);
        (self.value, hash)
    }
}

/// Decodes a stored event value, checking its layout strictly but not its hash.
pub fn decode_event(bytes: &[u8]) -> Result<RecordedEvent, DecodeError> {
    let mut reader = Reader::new(bytes);
    if reader.take(EVENT_TAG.len(), "record tag")? != EVENT_TAG {
        return Err(DecodeError::BadTag);
    }
    let record_version = reader.u16("record version")?;
    if record_version != RECORD_VERSION {
        return Err(DecodeError::UnsupportedRecordVersion(record_version));
    }
    let event = RecordedEvent {
        seq: reader.u64("seq")?,
        stream_key: reader.string("stream key")?,
        stream_version: reader.u64("stream version")?,
        event_id: reader.string("event id")?,
        event_type: reader.string("event type")?,
        schema_version: reader.u32("schema version")?,
        payload: reader.bytes("payload")?.to_vec(),
        recorded_at_unix_nanos: i64::from_be_bytes(reader.array("recorded at")?),
        recorded_by: reader.string("recorded by")?,
        prev_hash: reader.hash("previous hash")?,
        hash: reader.hash("event hash")?,
    };
    reader.finish()?;
    Ok(event)
}

/// Decodes a stored event and checks that its stored hash is the SHA-256 of its canonical bytes.
pub fn decode_and_check_event(bytes: &[u8]) -> Result<RecordedEvent, CheckError> {
    let event = decode_event(bytes).map_err(CheckError::Undecodable)?;
    // decode_event succeeded, so the value ends with the 32-byte hash.
    let canonical = &bytes[..bytes.len() - HASH_LEN];
    let recomputed = Hash(Sha256::digest(canonical).into());
    if recomputed != event.hash {
        return Err(CheckError::HashMismatch {
            stored: event.hash,
            recomputed,
        });
    }
    Ok(event)
}

/// Why one stored event failed its own check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    Undecodable(DecodeError),
    HashMismatch { stored: Hash, recomputed: Hash },
}

fn length_prefix(len: usize) -> [u8; 4] {
    // Every variable field is bounded far below 4 GiB by the append validation (MAX_* constants).
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&length_prefix(bytes.len()));
    out.extend_from_slice(bytes);
}

/// A cursor over untrusted bytes: every read is bounds-checked and names the field it was reading.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < len {
            return Err(DecodeError::Truncated { field });
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn hash(&mut self, field: &'static str) -> Result<Hash, DecodeError> {
        Ok(Hash(self.array(field)?))
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated { field })?;
        self.take(len, field)
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: self.bytes.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_and_sealed_event_is_byte_for_byte_the_encoded_event() {
        for payload_len in [0, 1, 7, 55, 56, 63, 64, 100, 1024, 5000] {
            let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7 + 3) as u8).collect();
            for prev in [Hash::ZERO, Hash([0xab; 32])] {
                let fields = EventFields {
                    seq: 42,
                    stream_key: "study/subject-17",
                    stream_version: 3,
                    event_id: "edc-7f3a",
                    event_type: "myolog.v1.MmtAssessed",
                    schema_version: 2,
                    payload: &payload,
                    recorded_at_unix_nanos: -5,
                    recorded_by: "edc@site-12",
                    prev_hash: prev,
                };
                let (expected, expected_hash) = encode_event(&fields);
                let mut scratch = vec![1, 2, 3];
                let prepared = PreparedEvent::new(
                    &mut scratch,
                    &EventFields {
                        prev_hash: Hash([0x55; 32]),
                        ..fields
                    },
                );
                assert_eq!(prepared.len(), expected.len());
                let (value, hash) = prepared.seal(prev);
                assert_eq!(hash, expected_hash, "payload {payload_len}");
                assert_eq!(&value[..], &expected[..], "payload {payload_len}");
                assert_eq!(decode_and_check_event(&value).map(|e| e.hash), Ok(hash));
            }
        }
    }
}
