//! Sealing cost: the CPU the archiver spends per 1,000-event segment, apart from the upload —
//! reading the events back from the log, the check before sealing (`Segment::check_events`) with
//! the encoding, and, for comparison, the encoding followed by a full `Segment::decode` (the check
//! a restore makes, and what sealing ran until the in-memory check replaced it). Plain `main`
//! (harness = false), not run in CI; no IO is timed, only the log's reads from its cache.
//!
//! `cargo bench -p myolog-archive --bench seal`. Sizes: `MYOLOG_BENCH_SEGMENTS` [10] segments of
//! 1,000 events with a 108-byte payload (the ingest benchmark's event size), `MYOLOG_BENCH_ROUNDS`
//! [50] passes over them; medians of the per-pass times.

use std::time::{Duration, Instant};

use myolog_archive::Segment;
use myolog_storage::{EventLog, ExpectedVersion, Hash, LogOptions, NewEvent, StoredEvent};

const EVENTS_PER_SEGMENT: u64 = 1_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn read_segment(log: &EventLog, first: u64) -> Vec<StoredEvent> {
    log.read_stored_range(first..=first + EVENTS_PER_SEGMENT - 1)
        .collect::<Result<_, _>>()
        .expect("read")
}

fn main() {
    let segments = env_usize("MYOLOG_BENCH_SEGMENTS", 10).max(1) as u64;
    let rounds = env_usize("MYOLOG_BENCH_ROUNDS", 50).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("log");
    for batch in 0..segments * EVENTS_PER_SEGMENT / 100 {
        let events = (0..100)
            .map(|i| NewEvent {
                event_id: format!("e{batch}-{i}"),
                stream_key: format!("study/subject-{}", i % 16),
                expected_version: ExpectedVersion::Any,
                event_type: "myolog.v1.FormSubmitted".into(),
                schema_version: 1,
                payload: vec![7; 108],
            })
            .collect();
        log.append(events, "edc@site-1").expect("append");
    }
    let firsts: Vec<u64> = (0..segments).map(|k| k * EVENTS_PER_SEGMENT + 1).collect();
    let mut sealed = Vec::new();
    let mut chain = Hash::ZERO;
    for &first in &firsts {
        let events = read_segment(&log, first);
        let after = events.last().map_or(chain, |event| event.hash);
        sealed.push((
            first,
            Segment {
                epoch: 1,
                chain_before: chain,
                events,
            },
        ));
        chain = after;
    }
    let bytes: usize = sealed
        .iter()
        .map(|(_, segment)| segment.encode().len())
        .sum();

    let time = |pass: &mut dyn FnMut()| {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            pass();
            times.push(started.elapsed() / segments as u32);
        }
        median(times)
    };
    let read = time(&mut || {
        for &first in &firsts {
            std::hint::black_box(read_segment(&log, first));
        }
    });
    let seal = time(&mut || {
        for (first, segment) in &sealed {
            segment.check_events(*first).expect("check");
            std::hint::black_box(segment.encode());
        }
    });
    let round_trip = time(&mut || {
        for (_, segment) in &sealed {
            let encoded = segment.encode();
            std::hint::black_box(Segment::decode(&encoded, &segment.name()).expect("decode"));
        }
    });
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "Sealing: {segments} segments of {EVENTS_PER_SEGMENT} events ({} bytes each encoded), \
         median of {rounds} passes, per segment:",
        bytes / segments as usize
    );
    println!(
        "  read back from the log (read_stored_range)   {:>7.0} us",
        micros(read)
    );
    println!(
        "  check_events + encode (what sealing runs)   {:>7.0} us",
        micros(seal)
    );
    println!(
        "  encode + decode (the restore's full check)   {:>7.0} us   (seal / this {:.2})",
        micros(round_trip),
        micros(seal) / micros(round_trip)
    );
    println!(
        "  archiver CPU per 1,000 events: {:.0} us now, {:.0} us with the full check ({:.2})",
        micros(read + seal),
        micros(read + round_trip),
        micros(read + seal) / micros(read + round_trip)
    );
}
