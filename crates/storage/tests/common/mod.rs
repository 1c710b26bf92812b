//! Helpers shared by the storage integration tests: temp logs and event builders.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use myolog_storage::{Clock, EventLog, ExpectedVersion, LogOptions, NewEvent};

/// A clock that ticks one millisecond per reading, starting 2026-01-01T00:00:00Z.
#[derive(Debug, Default)]
pub struct TickingClock {
    ticks: AtomicI64,
}

impl Clock for TickingClock {
    fn now_unix_nanos(&self) -> i64 {
        1_767_225_600_000_000_000 + self.ticks.fetch_add(1, Ordering::SeqCst) * 1_000_000
    }
}

pub fn options() -> LogOptions {
    LogOptions {
        clock: Arc::new(TickingClock::default()),
        cache_capacity_bytes: 16 * 1024 * 1024,
        ..LogOptions::default()
    }
}

pub fn open(path: &Path) -> EventLog {
    EventLog::open(path, options()).expect("open log")
}

/// Reopens a log right after its last handle was dropped, in this process.
pub fn reopen(path: &Path) -> EventLog {
    open(path)
}

pub fn event(event_id: &str, stream_key: &str, expected: ExpectedVersion) -> NewEvent {
    NewEvent {
        event_id: event_id.to_owned(),
        stream_key: stream_key.to_owned(),
        expected_version: expected,
        event_type: "test.v1.Thing".into(),
        schema_version: 1,
        payload: payload_for(event_id),
    }
}

/// A deterministic payload per event id, so any reader can check an event is intact.
pub fn payload_for(event_id: &str) -> Vec<u8> {
    let mut payload = format!("payload of {event_id}:").into_bytes();
    let mut state = event_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    for _ in 0..64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        payload.push(state as u8);
    }
    payload
}

/// Opens a log directory with raw sled, as a tamperer would. Retries briefly: sled 0.34 releases
/// its file lock only when its epoch-based garbage collector drops the last reference of an
/// earlier handle in this process.
pub fn raw_sled(path: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(error)
                if std::time::Instant::now() < deadline && error.to_string().contains("lock") =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => panic!("raw sled open of {}: {error}", path.display()),
        }
    }
}

/// A stored chunk taken apart, as a tamperer who knows the format would: edit it and write it
/// back with [`RawChunk::write`] (which computes a valid checksum, so only the log's own checks of
/// the events, the chunk table and the chain stand in the way).
#[derive(Clone, Debug)]
pub struct RawChunk {
    pub first_seq: u64,
    pub recorded_at: i64,
    pub last_hash: myolog_storage::Hash,
    /// (event id, stream key, stored event) in order.
    pub entries: Vec<(String, String, Vec<u8>)>,
}

impl RawChunk {
    /// The chunk stored under first seq `first_seq`.
    pub fn read(tree: &sled::Tree, first_seq: u64) -> RawChunk {
        use myolog_storage::format;
        let value = tree.get(format::chunk_key(first_seq)).unwrap().unwrap();
        let chunk = format::Chunk::parse(value).unwrap();
        RawChunk {
            first_seq: chunk.first_seq(),
            recorded_at: chunk.recorded_at_unix_nanos(),
            last_hash: chunk.last_hash(),
            entries: (0..chunk.len())
                .map(|at| {
                    (
                        chunk.event_id(at).unwrap().to_owned(),
                        chunk.stream_key(at).unwrap().to_owned(),
                        chunk.stored(at).unwrap().to_vec(),
                    )
                })
                .collect(),
        }
    }

    /// The first seq of the chunk holding `seq`.
    pub fn holding(tree: &sled::Tree, seq: u64) -> RawChunk {
        use myolog_storage::format;
        let (key, _) = tree
            .range(format::chunk_key(0)..=format::chunk_key(seq))
            .next_back()
            .unwrap()
            .unwrap();
        RawChunk::read(tree, format::seq_from_chunk_key(&key).unwrap())
    }

    /// Writes the chunk under the key of its `first_seq`, with a valid checksum.
    pub fn write(&self, tree: &sled::Tree) {
        use myolog_storage::format;
        let entries: Vec<format::ChunkEntry<'_>> = self
            .entries
            .iter()
            .map(|(event_id, stream_key, stored)| format::ChunkEntry {
                event_id,
                stream_key,
                stored,
            })
            .collect();
        let bytes =
            format::encode_chunk(self.first_seq, self.recorded_at, self.last_hash, &entries);
        tree.insert(format::chunk_key(self.first_seq), bytes)
            .unwrap();
    }
}

/// The stored bytes (canonical ‖ hash) of event `seq`.
pub fn stored(tree: &sled::Tree, seq: u64) -> Vec<u8> {
    let chunk = RawChunk::holding(tree, seq);
    chunk.entries[(seq - chunk.first_seq) as usize].2.clone()
}

/// Replaces the stored bytes of event `seq` inside its chunk (checksum recomputed).
pub fn set_stored(tree: &sled::Tree, seq: u64, value: Vec<u8>) {
    let mut chunk = RawChunk::holding(tree, seq);
    chunk.entries[(seq - chunk.first_seq) as usize].2 = value;
    chunk.write(tree);
}
