//! Replay to all outcomes against the storage crate's bare scan, in the same run, over the same log.
//!
//! The log holds copies of the synthetic STIR-like cohort ([`myolog_synth`]), 500 subjects per
//! study, up to the requested number of events (about 37 events per subject: enrollment and five
//! visits of item-level forms), appended through `EventLog::append` exactly as the service stores
//! them (canonical protobuf payloads). Then, alternating and best of `MYOLOG_BENCH_ROUNDS`:
//!
//! - bare scan: `EventLog::read_range(1..=head)`, every event decoded into an owned `RecordedEvent`;
//! - replay: `audit::replay::project` (the same scan, each payload decoded and validated into a domain
//!   event, applied to a fresh projection), then `Replay::write_all_outcomes` exactly as
//!   `myolog replay` runs it: every subject x follow-up visit scored with the scoring crate, with
//!   provenance, written as JSON Lines through a `BufWriter` into a byte-counting sink.
//!
//! Environment: `MYOLOG_BENCH_REPLAY_EVENTS` [1000000], `MYOLOG_BENCH_ROUNDS` [3];
//! `MYOLOG_BENCH_LOG=<dir>` replays the log already in `<dir>` instead of writing one (e.g. a
//! migrated copy of the log another build wrote, to compare on-disk formats on the same events);
//! `MYOLOG_BENCH_KEEP=<dir>` writes the log into `<dir>` and keeps it. A quick run:
//! `MYOLOG_BENCH_REPLAY_EVENTS=50000 cargo bench -p myolog-server --bench replay`.

#![allow(clippy::unwrap_used)] // A benchmark that cannot set itself up should stop loudly.

// The allocator the `myolog` binary ships with, so memory and time are what `serve` would show.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use myolog_audit::progress::Progress;
use myolog_audit::replay::{self, AsOf, Format};
use myolog_server::app;
use myolog_storage::{EventLog, ExpectedVersion, LogOptions, NewEvent};
use myolog_synth::{self as synth, Cohort, VISITS};
use myolog_wire as wire;
use prost::Message;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// Subjects per synthetic study: the generator spaces baselines a week apart, so one study of
/// tens of thousands of subjects would run past the last valid clinical date (2200-12-31).
const SUBJECTS_PER_STUDY: usize = 500;

/// Appends copies of the cohort (one study each), grouped into appends of up to ~1000 events.
fn fill(log: &EventLog, target_events: u64) -> u64 {
    let per_subject = 37;
    let subjects = usize::try_from(target_events / per_subject).unwrap().max(1);
    let mut pending: Vec<NewEvent> = Vec::new();
    let flush = |pending: &mut Vec<NewEvent>| {
        if !pending.is_empty() {
            log.append(std::mem::take(pending), "bench").unwrap();
        }
    };
    let studies = subjects.div_ceil(SUBJECTS_PER_STUDY);
    for copy in 0..studies {
        let n = SUBJECTS_PER_STUDY.min(subjects - copy * SUBJECTS_PER_STUDY);
        let cohort = Cohort::new(2017 + copy as u64, n);
        let study = format!("STIR-B{copy:04}");
        let mut batches = vec![cohort.enrollment()];
        for (visit, _) in VISITS {
            for index in 0..cohort.len() {
                batches.push(cohort.visit_batch(index, visit));
            }
        }
        for request in batches {
            for wire_event in &request.events {
                let mut wire_event = wire_event.clone();
                wire_event.event_id = wire_event.event_id.replacen(synth::STUDY, &study, 1);
                wire_event.study_id.clone_from(&study);
                let event = wire::event_from_proto(&wire_event, "event").unwrap();
                pending.push(NewEvent {
                    event_id: event.event_id.to_string(),
                    stream_key: wire::stream_key(&event),
                    expected_version: ExpectedVersion::Any,
                    event_type: event.body.type_name().into(),
                    schema_version: app::SCHEMA_VERSION,
                    payload: wire_event.encode_to_vec(),
                });
                if pending.len() >= 1000 {
                    flush(&mut pending);
                }
            }
        }
    }
    flush(&mut pending);
    log.head().seq
}

fn bare_scan(log: &EventLog, head: u64) -> (Duration, u64) {
    let started = Instant::now();
    let mut count = 0u64;
    for event in log.read_range(1..=head) {
        black_box(event.unwrap());
        count += 1;
    }
    (started.elapsed(), count)
}

/// Counts the bytes written, so the JSONL output is produced in full but not kept (and the sink
/// costs next to nothing: reading every byte to count lines was 1-2% of the replay).
#[derive(Debug, Default)]
struct CountingSink {
    bytes: u64,
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `myolog replay` does: project, score every outcome, write them as JSONL (here to a sink).
fn replay_all(log: &EventLog) -> (Duration, Duration, usize, u64) {
    let started = Instant::now();
    let replayed = replay::project(log, AsOf::Head, &mut Progress::hidden()).unwrap();
    let projected = started.elapsed();
    let mut sink = CountingSink::default();
    let outcomes = replayed
        .write_all_outcomes(Format::Jsonl, &mut std::io::BufWriter::new(&mut sink))
        .unwrap();
    let total = started.elapsed();
    (
        projected,
        total,
        usize::try_from(outcomes).unwrap(),
        sink.bytes,
    )
}

/// Process CPU time (user + system, all threads) in seconds, from `/proc/self/stat` (0 elsewhere):
/// on a shared machine it moves less with the load than wall time does.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rate(events: u64, time: Duration) -> f64 {
    events as f64 / time.as_secs_f64()
}

fn main() {
    let target: u64 = env_or("MYOLOG_BENCH_REPLAY_EVENTS", 1_000_000);
    let rounds: usize = env_or("MYOLOG_BENCH_ROUNDS", 3);
    let dir = tempfile::tempdir().unwrap();
    let existing = std::env::var_os("MYOLOG_BENCH_LOG").map(std::path::PathBuf::from);
    let path = existing
        .clone()
        .or_else(|| std::env::var_os("MYOLOG_BENCH_KEEP").map(Into::into))
        .unwrap_or_else(|| dir.path().join("log"));
    let log = EventLog::open(&path, LogOptions::default()).unwrap();
    let head = if existing.is_some() {
        log.head().seq
    } else {
        let started = Instant::now();
        let head = fill(&log, target);
        eprintln!(
            "wrote {head} events in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        head
    };

    let mut best_scan = Duration::MAX;
    let mut best_project = Duration::MAX;
    let mut best_replay = Duration::MAX;
    let mut outcomes = 0;
    for round in 0..rounds.max(1) {
        let cpu_before = process_cpu_seconds();
        let (scan, scanned) = bare_scan(&log, head);
        let cpu_scan = process_cpu_seconds() - cpu_before;
        assert_eq!(scanned, head);
        let (project, total, n, bytes) = replay_all(&log);
        let cpu_replay = process_cpu_seconds() - cpu_before - cpu_scan;
        outcomes = n;
        let micros = |cpu: f64| cpu * 1e6 / head as f64;
        eprintln!(
            "round {round}: scan {:.2} s ({:.2} µs CPU per event), replay {:.2} s (projection {:.2} s; \
             {:.2} µs CPU per event; {bytes} bytes of JSONL)",
            scan.as_secs_f64(),
            micros(cpu_scan),
            total.as_secs_f64(),
            project.as_secs_f64(),
            micros(cpu_replay),
        );
        best_scan = best_scan.min(scan);
        best_project = best_project.min(project);
        best_replay = best_replay.min(total);
    }
    let scan_rate = rate(head, best_scan);
    let replay_rate = rate(head, best_replay);
    println!("| {head} events (best of {rounds}) | time | events/s | vs bare scan |");
    println!("|---|---:|---:|---:|");
    println!(
        "| bare scan (`EventLog::read_range`) | {:.2} s | {:.0} | 1.00 |",
        best_scan.as_secs_f64(),
        scan_rate
    );
    println!(
        "| replay: decode + projection only | {:.2} s | {:.0} | {:.2} |",
        best_project.as_secs_f64(),
        rate(head, best_project),
        rate(head, best_project) / scan_rate
    );
    println!(
        "| replay to all outcomes ({outcomes} subject x visit outcomes, JSONL written) | {:.2} s | {:.0} | {:.2} |",
        best_replay.as_secs_f64(),
        replay_rate,
        replay_rate / scan_rate
    );
    println!(
        "\ntarget: replay >= 0.5 x bare scan: {}",
        if replay_rate >= 0.5 * scan_rate {
            "met"
        } else {
            "NOT met"
        }
    );
}
