//! Myolog's event log against raw sled doing the same work, in the same run, on the same disk.
//!
//! Appends: durable events per second at batch sizes 1, 10, 100, 1000 with 1, 4 and 16 concurrent
//! appenders. Myolog appends ~1 KB events through `EventLog::append` (group commit, hash chain, three
//! index entries per event). Raw sled, per batch and per appender thread: one `apply_batch` of the same
//! number of same-size values, `flush`, and `fdatasync` of `<dir>/db` — what "durable" costs without
//! a log on top. Replay: a full scan of 1,000,000 ~1 KB events through `read_range(..)` (decoded into
//! owned events) against a raw sled `iter()` over the same number of same-size values.
//!
//! Environment (defaults in brackets): `MYOLOG_BENCH_SECONDS` per append measurement [3],
//! `MYOLOG_BENCH_REPLAY_EVENTS` [1000000], `MYOLOG_BENCH_VALUE_BYTES` [1024],
//! `MYOLOG_BENCH_BATCHES` [1,10,100,1000], `MYOLOG_BENCH_THREADS` [1,4,16]. A CI smoke run:
//! `MYOLOG_BENCH_SECONDS=0.2 MYOLOG_BENCH_REPLAY_EVENTS=20000 cargo bench -p myolog-storage`.
#![allow(clippy::unwrap_used)] // A benchmark that cannot set itself up should stop loudly.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use myolog_storage::{EventLog, ExpectedVersion, LogOptions, NewEvent};

struct Settings {
    seconds: f64,
    replay_events: u64,
    value_bytes: usize,
    batches: Vec<usize>,
    threads: Vec<usize>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|text| {
            text.split(',')
                .filter_map(|item| item.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| default.to_vec())
}

/// The sled configuration `EventLog` uses (see `LogOptions::sled_config`), so both sides run the
/// same engine settings.
fn raw_sled_config(path: &Path, options: &LogOptions) -> sled::Config {
    sled::Config::new()
        .path(path)
        .cache_capacity(options.cache_capacity_bytes)
        .flush_every_ms(None)
}

fn value_of(size: usize, salt: u64) -> Vec<u8> {
    // Incompressible-looking bytes, so neither side benefits from repetitive data.
    let mut state = salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn main() {
    let settings = Settings {
        seconds: env_or("MYOLOG_BENCH_SECONDS", 3.0),
        replay_events: env_or("MYOLOG_BENCH_REPLAY_EVENTS", 1_000_000),
        value_bytes: env_or("MYOLOG_BENCH_VALUE_BYTES", 1024),
        batches: env_list("MYOLOG_BENCH_BATCHES", &[1, 10, 100, 1000]),
        threads: env_list("MYOLOG_BENCH_THREADS", &[1, 4, 16]),
    };
    // `cargo bench` passes `--bench`; a filter argument is not supported, so ignore arguments.
    print_machine();
    println!();
    println!("| appenders | batch | Myolog events/s | raw sled events/s | Myolog / raw |");
    println!("|---:|---:|---:|---:|---:|");
    for &threads in &settings.threads {
        for &batch in &settings.batches {
            let myolog = myolog_appends(&settings, threads, batch);
            let raw = raw_appends(&settings, threads, batch);
            println!(
                "| {threads} | {batch} | {myolog:.0} | {raw:.0} | {:.2} |",
                myolog / raw
            );
        }
    }
    println!();
    let (myolog_cold, myolog_warm) = myolog_replay(&settings);
    let (raw_cold, raw_warm) = raw_replay(&settings);
    println!(
        "| replay of {} events of {} B | Myolog events/s | raw sled events/s | Myolog / raw |",
        settings.replay_events, settings.value_bytes
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| first scan after reopen | {myolog_cold:.0} | {raw_cold:.0} | {:.2} |",
        myolog_cold / raw_cold
    );
    println!(
        "| second scan | {myolog_warm:.0} | {raw_warm:.0} | {:.2} |",
        myolog_warm / raw_warm
    );
}

fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("machine: {cores} cores (available parallelism), CPU {cpu}");
    println!(
        "value size {} B; every append is durable (flush + fdatasync) before it is counted",
        env_or("MYOLOG_BENCH_VALUE_BYTES", 1024usize)
    );
}

/// Runs `work(thread, round)` on `threads` threads until `seconds` elapse; returns events per second
/// given `events_per_call`.
fn measure(
    threads: usize,
    seconds: f64,
    events_per_call: usize,
    work: Arc<dyn Fn(usize, u64) + Send + Sync>,
) -> f64 {
    let start = Arc::new(Barrier::new(threads + 1));
    let calls = Arc::new(AtomicU64::new(0));
    let deadline_nanos = Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (start, calls, work) = (start.clone(), calls.clone(), work.clone());
            std::thread::spawn(move || {
                start.wait();
                let began = Instant::now();
                let mut round = 0;
                while began.elapsed() < deadline_nanos {
                    work(thread, round);
                    round += 1;
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for worker in workers {
        worker.join().unwrap();
    }
    let elapsed = began.elapsed().as_secs_f64();
    calls.load(Ordering::Relaxed) as f64 * events_per_call as f64 / elapsed
}

fn myolog_appends(settings: &Settings, threads: usize, batch: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path().join("log"), LogOptions::default()).unwrap();
    let payload = value_of(settings.value_bytes, 1);
    let work = Arc::new(move |thread: usize, round: u64| {
        let events = (0..batch)
            .map(|i| NewEvent {
                event_id: format!("t{thread}-r{round}-e{i}"),
                stream_key: format!("study/subject-{}", (round as usize * batch + i) % 64),
                expected_version: ExpectedVersion::Any,
                event_type: "bench.v1.Measured".into(),
                schema_version: 1,
                payload: payload.clone(),
            })
            .collect();
        log.append(events, "bench").unwrap();
    });
    measure(threads, settings.seconds, batch, work)
}

fn raw_appends(settings: &Settings, threads: usize, batch: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let db = raw_sled_config(dir.path(), &LogOptions::default())
        .open()
        .unwrap();
    let db_file = Arc::new(File::open(dir.path().join("db")).unwrap());
    let next_key = Arc::new(AtomicU64::new(0));
    let value = value_of(settings.value_bytes, 1);
    let work = Arc::new(move |_thread: usize, _round: u64| {
        let first = next_key.fetch_add(batch as u64, Ordering::Relaxed);
        let mut sled_batch = sled::Batch::default();
        for key in first..first + batch as u64 {
            sled_batch.insert(&key.to_be_bytes(), value.clone());
        }
        db.apply_batch(sled_batch).unwrap();
        db.flush().unwrap();
        db_file.sync_data().unwrap();
    });
    measure(threads, settings.seconds, batch, work)
}

/// Writes the replay data set, reopens, and times two full scans. Returns events/s of each.
fn myolog_replay(settings: &Settings) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let payload = value_of(settings.value_bytes, 2);
    {
        let log = EventLog::open(&path, LogOptions::default()).unwrap();
        let mut written = 0u64;
        while written < settings.replay_events {
            let size = (settings.replay_events - written).min(1000);
            let events = (written..written + size)
                .map(|n| NewEvent {
                    event_id: format!("replay-{n}"),
                    stream_key: format!("study/subject-{}", n % 256),
                    expected_version: ExpectedVersion::Any,
                    event_type: "bench.v1.Measured".into(),
                    schema_version: 1,
                    payload: payload.clone(),
                })
                .collect();
            log.append(events, "bench").unwrap();
            written += size;
        }
    }
    let log = open_retrying(&path);
    let scan = || {
        let began = Instant::now();
        let mut count = 0u64;
        let mut bytes = 0usize;
        for event in log.read_range(..) {
            bytes += event.unwrap().payload.len();
            count += 1;
        }
        assert_eq!(count, settings.replay_events);
        assert!(bytes > 0);
        count as f64 / began.elapsed().as_secs_f64()
    };
    (scan(), scan())
}

fn open_retrying(path: &Path) -> EventLog {
    EventLog::open(
        path,
        LogOptions {
            lock_wait: Duration::from_secs(30),
            ..LogOptions::default()
        },
    )
    .unwrap()
}

fn raw_replay(settings: &Settings) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let value = value_of(settings.value_bytes, 2);
    {
        let db = raw_sled_config(dir.path(), &LogOptions::default())
            .open()
            .unwrap();
        let mut written = 0u64;
        while written < settings.replay_events {
            let size = (settings.replay_events - written).min(1000);
            let mut batch = sled::Batch::default();
            for key in written..written + size {
                batch.insert(&key.to_be_bytes(), value.clone());
            }
            db.apply_batch(batch).unwrap();
            written += size;
        }
        db.flush().unwrap();
    }
    let db = loop {
        match raw_sled_config(dir.path(), &LogOptions::default()).open() {
            Ok(db) => break db,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let scan = || {
        let began = Instant::now();
        let mut count = 0u64;
        let mut bytes = 0usize;
        for entry in db.iter() {
            bytes += entry.unwrap().1.len();
            count += 1;
        }
        assert_eq!(count, settings.replay_events);
        assert!(bytes > 0);
        count as f64 / began.elapsed().as_secs_f64()
    };
    (scan(), scan())
}
