//! The on-disk format, version 2: key layout of the single sled tree, the canonical event encoding
//! that is the input of the chain hash, and the chunks that store events. Version 1 (one key per
//! event plus commit records) is read only by [`crate::legacy_v1`], for `myolog migrate`.
//!
//! # One tree, prefixed keys
//!
//! Everything lives in one sled tree named [`TREE_NAME`]. A group commit inserts its chunks and then
//! the head record, which is its commit point: sled recovers its log as a prefix, so after a crash
//! the chunks past the head record are a cut commit that opening removes (see `log::recover`).
//! Replicated appends and the creation of a log write one atomic `apply_batch` instead.
//!
//! | key                               | value                                                   |
//! |-----------------------------------|---------------------------------------------------------|
//! | `k` ‖ first seq of the chunk (u64 BE) | chunk (below): consecutive events of one group commit |
//! | `m` ‖ `head`                      | seq (u64 BE) ‖ hash of the last event                   |
//! | `m` ‖ `magic`                     | `myolog-log`                                            |
//! | `m` ‖ `format`                    | format version (u32 BE)                                 |
//! | `m` ‖ `small-values`              | `1`, present only while every value ever stored is small |
//!
//! Big-endian sequence numbers make sled's byte order the log order, so a range scan over chunk
//! keys is the replay, and the chunk holding seq `n` is the last chunk key at or before `n`
//! (`range(..=key(n)).next_back()`).
//!
//! # Chunks: a few sled values per group commit, instead of one per event
//!
//! sled 0.34 copies the whole leaf on every insert into it, so the cost of a commit grows with the
//! number of keys it inserts, far more than with their bytes. Version 1 inserted one key per event
//! plus one commit record per 64 events; version 2 packs a group commit's events into chunks of at
//! most [`CHUNK_TARGET_BYTES`] (an event larger than that gets a chunk of its own) and inserts
//! those and the head record. A chunk holds everything the commit record held (ids and stream keys,
//! recorded-at, last hash), so the in-memory indexes are rebuilt at open from the chunk tables
//! without decoding an event.
//!
//! ```text
//! "MYOLOGCK"            8 bytes
//! chunk version         u16   (1)
//! first seq             u64
//! event count           u32   (at least 1)
//! recorded at           i64   (the group's commit time; every event of the chunk carries it)
//! last event hash       32 bytes
//! per event, in order:  event id (u32 length ‖ bytes), stream key (u32 length ‖ bytes),
//!                       stored length (u32)
//! per event, in order:  stored event: canonical bytes ‖ event hash (32 bytes)
//! checksum              u32   CRC-32 (IEEE 802.3) of everything before it
//! ```
//!
//! Every read checks the checksum of the chunk it reads before decoding an event of it; `verify`
//! checks each event's own hash, the chain and the table first, so that it names the first bad
//! sequence, and the checksum last. The checksum guards against damaged bytes (a torn or rotten
//! value), not against forgery: that is the chain's job, and the chain is SHA-256. So it is a CRC,
//! as in PostgreSQL's WAL and Kafka's record batches: a SHA-256 pass over every chunk read was a
//! tenth of a full replay's CPU (perf), the CRC (PCLMULQDQ, through sled's own crc32fast) a
//! fraction of that.
//!
//! ## Chunk size
//!
//! [`CHUNK_TARGET_BYTES`] is 4 KiB. Chunks up to [`SMALL_VALUE_LIMIT`] keep the log's small-values
//! marker, so a commit need not list `<log>/blobs` before its fsync, and keep every sled leaf far
//! below the 128 KiB at which sled writes a node as a blob file (a leaf holds at most 17 keys).
//! Measured with the storage bench at 16 appenders x 10 events of ~300 B (docs/benchmarks.md,
//! "Format version 2 against version 1"): 16 KiB chunks were within a few percent of 4 KiB (the
//! machine's noise) and 64 KiB chunks slower in two runs of three, so nothing pays for giving up
//! those two guarantees.
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
//! The event hash is SHA-256 (FIPS 180-4) of exactly these bytes; they are the same in format
//! versions 1 and 2, so migrating a log changes no hash. SHA-256 rather than BLAKE3 because
//! it is the FIPS-approved hash that regulators' and auditors' tools (`sha256sum`, `openssl dgst`,
//! validated crypto modules) verify without Myolog code, and with SHA-NI it is not the bottleneck.
//! A stored event is the canonical bytes followed by the hash, so verifying an event is one hash of
//! the stored prefix, and the decoder rejects anything that is not exactly this layout, which makes
//! the encoding of a decoded event unique.
//!
//! Idempotency compares the client-provided content only — stream key, event type, schema version
//! and payload, never the server-assigned fields — so a retry of the same event matches however late
//! it comes. The writer compares those fields directly (exact, and no second hash per appended
//! event); [`content_digest`] is the equivalent digest for tools that want one: SHA-256 of
//! `"MYOLOGCD"`, u16 1, then stream key, event type, schema version and payload encoded as above.

use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::error::DecodeError;
use crate::event::{Hash, RecordedEvent};

/// The sled tree holding the whole log.
pub const TREE_NAME: &[u8] = b"myolog";
/// The value of the `magic` meta key: what makes a sled database a Myolog log.
pub const MAGIC: &[u8] = b"myolog-log";
/// The newest on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// The writer's chunk size, in bytes: see the module docs (chunk size) for the measurement behind
/// it.
pub const CHUNK_TARGET_BYTES: usize = 4096;

/// Key prefix of chunks.
pub const CHUNK_PREFIX: u8 = b'k';
/// Key prefix of metadata.
pub const META_PREFIX: u8 = b'm';

/// Meta key of the magic value.
pub const META_MAGIC_KEY: &[u8] = b"mmagic";
/// Meta key of the format version.
pub const META_FORMAT_KEY: &[u8] = b"mformat";
/// Meta key present (value `1`) while no value above [`SMALL_VALUE_LIMIT`] was ever stored in the
/// tree. Written when a log is created and removed by the first group commit that stores a larger
/// value, before that value; logs created before the key existed lack it. While it is
/// present sled cannot have written a blob file (see [`crate::durability`]), so commits skip listing
/// `<log>/blobs`. It is an optimisation only: a log without it is synced exactly as before.
pub const META_SMALL_VALUES_KEY: &[u8] = b"msmall-values";

/// Largest stored value (a chunk) that keeps [`META_SMALL_VALUES_KEY`]. sled 0.34
/// writes a log item to a blob file only above segment size / 4 (512 KiB / 4 = 128 KiB, less
/// headers; the log never changes sled's segment size). The largest items it writes for this tree
/// are whole leaf nodes, rewritten on consolidation and by the segment cleaner; a leaf is split once
/// it holds more than 16 entries, so it never holds more than 17 of our keys (9 bytes) and values.
/// 17 x (4 KiB + key + length varints) is about 70 KiB, half the threshold; index nodes hold up
/// to 257 short separator keys and child ids (under 8 KiB).
pub const SMALL_VALUE_LIMIT: usize = 4096;

const EVENT_TAG: &[u8; 8] = b"MYOLOGEV";
const CONTENT_TAG: &[u8; 8] = b"MYOLOGCD";
const CHUNK_TAG: &[u8; 8] = b"MYOLOGCK";
const RECORD_VERSION: u16 = 1;
const CHUNK_VERSION: u16 = 1;
pub(crate) const HASH_LEN: usize = 32;

/// The key of the chunk whose first event is `first_seq`.
pub fn chunk_key(first_seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = CHUNK_PREFIX;
    key[1..].copy_from_slice(&first_seq.to_be_bytes());
    key
}

/// The first sequence in a chunk key; `None` if the key is not one.
pub fn seq_from_chunk_key(key: &[u8]) -> Option<u64> {
    match key {
        [CHUNK_PREFIX, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// Meta key of the head record: the seq (u64 BE) and hash (32 bytes) of the last event, written
/// after every commit's chunks as its commit point. It is what lets `verify` notice that a whole
/// trailing chunk was deleted.
pub const META_HEAD_KEY: &[u8] = b"mhead";

/// Encodes the head record.
pub fn encode_head(seq: u64, hash: Hash) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&seq.to_be_bytes());
    out[8..].copy_from_slice(&hash.0);
    out
}

/// Decodes the head record.
pub fn decode_head(bytes: &[u8]) -> Result<(u64, Hash), DecodeError> {
    let mut reader = Reader::new(bytes);
    let seq = reader.u64("head seq")?;
    let hash = reader.hash("head hash")?;
    reader.finish()?;
    Ok((seq, hash))
}

/// One event as a chunk holds it: the id and stream key the index is rebuilt from, and the stored
/// event (canonical bytes ‖ event hash).
#[derive(Clone, Copy, Debug)]
pub struct ChunkEntry<'a> {
    pub event_id: &'a str,
    pub stream_key: &'a str,
    pub stored: &'a [u8],
}

impl ChunkEntry<'_> {
    /// The bytes this entry adds to a chunk.
    pub fn encoded_len(&self) -> usize {
        3 * 4 + self.event_id.len() + self.stream_key.len() + self.stored.len()
    }
}

/// Fixed bytes of every chunk: tag, version, first seq, count, recorded-at, last hash, checksum.
pub const CHUNK_OVERHEAD: usize = 8 + 2 + 8 + 4 + 8 + HASH_LEN + CHECKSUM_LEN;

/// Bytes of a chunk's checksum (a CRC-32, big-endian) at its end.
pub const CHECKSUM_LEN: usize = 4;

/// Splits entries of `sizes` bytes (see [`ChunkEntry::encoded_len`]) into consecutive chunks of at
/// most `target_bytes` each, except that an entry larger than that gets a chunk of its own.
/// Returns the number of entries of each chunk, in order.
pub fn chunk_lengths(sizes: impl IntoIterator<Item = usize>, target_bytes: usize) -> Vec<usize> {
    let mut lengths = Vec::new();
    let mut count = 0usize;
    let mut bytes = CHUNK_OVERHEAD;
    for size in sizes {
        if count > 0 && bytes + size > target_bytes {
            lengths.push(count);
            count = 0;
            bytes = CHUNK_OVERHEAD;
        }
        count += 1;
        bytes += size;
    }
    if count > 0 {
        lengths.push(count);
    }
    lengths
}

/// The event hash at the end of a stored event (zeros if it is too short to hold one).
pub fn stored_hash(stored: &[u8]) -> Hash {
    let mut hash = Hash::ZERO;
    if let Some(tail) = stored.len().checked_sub(HASH_LEN).map(|at| &stored[at..]) {
        hash.0.copy_from_slice(tail);
    }
    hash
}

/// Encodes a chunk of consecutive events starting at `first_seq`, all recorded at `recorded_at`
/// (one group commit's), ending on event hash `last_hash`, with its checksum. `entries` must not
/// be empty.
pub fn encode_chunk(
    first_seq: u64,
    recorded_at_unix_nanos: i64,
    last_hash: Hash,
    entries: &[ChunkEntry<'_>],
) -> Vec<u8> {
    let variable: usize = entries.iter().map(ChunkEntry::encoded_len).sum();
    let mut out = Vec::with_capacity(CHUNK_OVERHEAD + variable);
    out.extend_from_slice(CHUNK_TAG);
    out.extend_from_slice(&CHUNK_VERSION.to_be_bytes());
    out.extend_from_slice(&first_seq.to_be_bytes());
    out.extend_from_slice(&length_prefix(entries.len()));
    out.extend_from_slice(&recorded_at_unix_nanos.to_be_bytes());
    out.extend_from_slice(&last_hash.0);
    for entry in entries {
        put_bytes(&mut out, entry.event_id.as_bytes());
        put_bytes(&mut out, entry.stream_key.as_bytes());
        out.extend_from_slice(&length_prefix(entry.stored.len()));
    }
    for entry in entries {
        out.extend_from_slice(entry.stored);
    }
    let checksum = crc32fast::hash(&out);
    out.extend_from_slice(&checksum.to_be_bytes());
    out
}

/// Where one entry's parts lie in a chunk's bytes.
#[derive(Clone, Debug)]
struct EntrySpan {
    event_id: Range<usize>,
    stream_key: Range<usize>,
    stored: Range<usize>,
}

/// A stored chunk, its layout checked and its entries located; events are decoded one at a time
/// on demand. Holds sled's buffer (reference-counted), not a copy.
#[derive(Clone)]
pub struct Chunk {
    bytes: sled::IVec,
    first_seq: u64,
    recorded_at_unix_nanos: i64,
    last_hash: Hash,
    entries: Vec<EntrySpan>,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("first_seq", &self.first_seq)
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Chunk {
    /// Checks the layout of a stored chunk strictly (tag, version, lengths, UTF-8 of ids and
    /// stream keys, nothing trailing) but neither its checksum nor any event.
    pub fn parse(bytes: impl Into<sled::IVec>) -> Result<Chunk, DecodeError> {
        let bytes: sled::IVec = bytes.into();
        let mut reader = Reader::new(&bytes);
        if reader.take(CHUNK_TAG.len(), "chunk tag")? != CHUNK_TAG {
            return Err(DecodeError::BadTag);
        }
        let version = reader.u16("chunk version")?;
        if version != CHUNK_VERSION {
            return Err(DecodeError::UnsupportedRecordVersion(version));
        }
        let first_seq = reader.u64("chunk first seq")?;
        let count = reader.u32("chunk event count")?;
        let recorded_at_unix_nanos = i64::from_be_bytes(reader.array("chunk recorded at")?);
        let last_hash = reader.hash("chunk last hash")?;
        if count == 0 {
            return Err(DecodeError::Truncated {
                field: "chunk entries (count is 0)",
            });
        }
        if first_seq.checked_add(u64::from(count)).is_none() {
            return Err(DecodeError::Truncated {
                field: "chunk first seq (beyond the sequence space)",
            });
        }
        let total = bytes.len();
        let offset = |reader: &Reader<'_>| total - reader.remaining();
        // Each entry takes at least 12 bytes; never trust a count to size an allocation.
        let mut spans = Vec::with_capacity((count as usize).min(reader.remaining() / 12));
        let mut stored_lens = Vec::with_capacity(spans.capacity());
        for _ in 0..count {
            let id = reader.bytes("chunk event id")?;
            std::str::from_utf8(id).map_err(|_| DecodeError::InvalidUtf8 {
                field: "chunk event id",
            })?;
            let id_end = offset(&reader);
            let id_range = id_end - id.len()..id_end;
            let stream = reader.bytes("chunk stream key")?;
            std::str::from_utf8(stream).map_err(|_| DecodeError::InvalidUtf8 {
                field: "chunk stream key",
            })?;
            let stream_end = offset(&reader);
            let stream_range = stream_end - stream.len()..stream_end;
            let stored_len = reader.u32("chunk stored length")? as usize;
            if stored_len < 2 * HASH_LEN {
                return Err(DecodeError::Truncated {
                    field: "chunk stored event (shorter than its hashes)",
                });
            }
            stored_lens.push(stored_len);
            spans.push(EntrySpan {
                event_id: id_range,
                stream_key: stream_range,
                stored: 0..0,
            });
        }
        for (span, stored_len) in spans.iter_mut().zip(stored_lens) {
            let start = offset(&reader);
            reader.take(stored_len, "chunk stored event")?;
            span.stored = start..start + stored_len;
        }
        reader.take(CHECKSUM_LEN, "chunk checksum")?;
        reader.finish()?;
        Ok(Chunk {
            bytes,
            first_seq,
            recorded_at_unix_nanos,
            last_hash,
            entries: spans,
        })
    }

    /// [`Chunk::parse`], then the checksum: what every read does.
    pub fn parse_checked(bytes: impl Into<sled::IVec>) -> Result<Chunk, DecodeError> {
        let chunk = Chunk::parse(bytes)?;
        if !chunk.checksum_matches() {
            return Err(DecodeError::ChecksumMismatch);
        }
        Ok(chunk)
    }

    /// Whether the stored checksum is the CRC-32 of the bytes before it.
    pub fn checksum_matches(&self) -> bool {
        let body = self.bytes.len() - CHECKSUM_LEN;
        crc32fast::hash(&self.bytes[..body]).to_be_bytes()[..] == self.bytes[body..]
    }

    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The sequence of the chunk's last event (parse checked it does not overflow).
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64 - 1
    }

    /// Number of events; never zero.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never true: parse refuses an empty chunk.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn recorded_at_unix_nanos(&self) -> i64 {
        self.recorded_at_unix_nanos
    }

    /// Index of `seq` among the chunk's events, if it holds it.
    pub fn position_of(&self, seq: u64) -> Option<usize> {
        let offset = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        (offset < self.entries.len()).then_some(offset)
    }

    fn text(&self, range: &Range<usize>) -> &str {
        // Checked to be UTF-8 by `parse`.
        std::str::from_utf8(&self.bytes[range.clone()]).unwrap_or_default()
    }

    /// The event id the chunk's table gives entry `at` (`None` out of range).
    pub fn event_id(&self, at: usize) -> Option<&str> {
        self.entries.get(at).map(|span| self.text(&span.event_id))
    }

    /// The stream key the chunk's table gives entry `at`.
    pub fn stream_key(&self, at: usize) -> Option<&str> {
        self.entries.get(at).map(|span| self.text(&span.stream_key))
    }

    /// The stored event (canonical bytes ‖ hash) of entry `at`.
    pub fn stored(&self, at: usize) -> Option<&[u8]> {
        self.entries
            .get(at)
            .map(|span| &self.bytes[span.stored.clone()])
    }

    /// The hash the chunk ends on, as its header records it (`verify` checks it against the
    /// last event's).
    pub fn last_hash(&self) -> Hash {
        self.last_hash
    }

    /// Decodes entry `at` (layout only, as [`decode_event`]) and checks that it is the event of
    /// its position: `Err` names the problem, including an event claiming another seq.
    pub fn event(&self, at: usize) -> Result<RecordedEvent, DecodeError> {
        let stored = self.stored(at).ok_or(DecodeError::Truncated {
            field: "chunk entry (out of range)",
        })?;
        let event = decode_event(stored)?;
        if event.seq != self.first_seq + at as u64 {
            return Err(DecodeError::OutOfPlace {
                claimed_seq: event.seq,
            });
        }
        Ok(event)
    }
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

pub(crate) fn length_prefix(len: usize) -> [u8; 4] {
    // Every variable field is bounded far below 4 GiB by the append validation (MAX_* constants).
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&length_prefix(bytes.len()));
    out.extend_from_slice(bytes);
}

/// A cursor over untrusted bytes: every read is bounds-checked and names the field it was reading.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn take(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < len {
            return Err(DecodeError::Truncated { field });
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn hash(&mut self, field: &'static str) -> Result<Hash, DecodeError> {
        Ok(Hash(self.array(field)?))
    }

    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated { field })?;
        self.take(len, field)
    }

    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
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
