//! Helpers shared by the archive tests: logs with a deterministic clock, their stored events, and
//! copies of archive directories to damage.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use myolog_storage::{Clock, EventLog, ExpectedVersion, LogOptions, NewEvent, StoredEvent};

/// A clock that ticks one millisecond per reading, from 2026-01-01T00:00:00Z.
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

/// Opens a log after an earlier handle of this process was dropped (sled frees its lock lazily).
pub fn reopen(path: &Path) -> EventLog {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match EventLog::open(path, options()) {
            Ok(log) => return log,
            Err(myolog_storage::StorageError::InUse { .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("reopen {}: {error}", path.display()),
        }
    }
}

pub fn new_event(event_id: &str, stream_key: &str, payload: Vec<u8>) -> NewEvent {
    NewEvent {
        event_id: event_id.to_owned(),
        stream_key: stream_key.to_owned(),
        expected_version: ExpectedVersion::Any,
        event_type: "test.v1.Thing".into(),
        schema_version: 1,
        payload,
    }
}

/// Appends `count` events named `<tag>-<n>` in batches of 1 to 40 (each batch its own recorded-at),
/// across 7 streams.
pub fn append_events(log: &EventLog, tag: &str, count: usize) {
    let mut n = 0;
    let mut batch_size = 1;
    while n < count {
        let size = batch_size.min(count - n);
        let batch = (n..n + size)
            .map(|i| {
                new_event(
                    &format!("{tag}-{i}"),
                    &format!("study/subject-{}", i % 7),
                    format!("{{\"{tag}\":{i}}}").into_bytes(),
                )
            })
            .collect();
        log.append(batch, "edc@site-1").expect("append");
        n += size;
        batch_size = batch_size % 40 + 1;
    }
}

pub fn stored(log: &EventLog) -> Vec<StoredEvent> {
    log.read_stored_range(..)
        .collect::<Result<Vec<_>, _>>()
        .expect("read stored events")
}

/// Copies a directory tree (an archive directory to damage without touching the original).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
