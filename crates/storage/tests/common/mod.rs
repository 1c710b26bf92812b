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
