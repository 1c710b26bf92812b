//! Myolog's event log against raw sled doing the same work, in the same run, on the same disk.
//!
//! Appends: durable events per second at batch sizes 1, 10, 100, 1000 with 1, 4 and 16 concurrent
//! appenders. Myolog appends events with ~1 KB payloads through `EventLog::append` (validation,
//! idempotency check, hash chain, commit records, group commit). Raw sled, per batch and per appender
//! thread: one `apply_batch` of the same number of values, `flush`, and `fdatasync` of `<dir>/db` —
//! what "durable" costs without a log on top — twice: with values of the payload size, and with
//! values of Myolog's stored event size (payload + envelope), which separates the cost of the bytes
//! the envelope adds from the cost of the log's logic. Replay: a full scan of 1,000,000 ~1 KB events through `read_range(..)` (decoded into
//! owned events) against a raw sled `iter()` over the same number of same-size values.
//!
//! The machine is shared and noisy (fsync latency varies several-fold from minute to minute), so
//! the two sides are measured interleaved: each append scenario alternates Myolog and raw sled in
//! `MYOLOG_BENCH_SLICES` slices, and replay alternates full scans, so both see the same conditions.
//! Each append side runs in its own child process of this binary (see `Side`): sled's epoch garbage
//! collector and IO threads are process-wide, and in a shared process each side would free part of
//! the previous side's garbage.
//! Besides the ratio of the totals, the table prints the median of the per-slice ratios (robust to
//! a burst of load hitting one side's slice) and the process CPU time per event of each side
//! (all threads, sled's included), which other engineers' builds disturb far less than throughput.
//!
//! Environment (defaults in brackets): `MYOLOG_BENCH_SECONDS` per side per append scenario [3],
//! `MYOLOG_BENCH_SLICES` [6], `MYOLOG_BENCH_SCANS` replay passes per side [3],
//! `MYOLOG_BENCH_REPLAY_EVENTS` [1000000], `MYOLOG_BENCH_VALUE_BYTES` [1024],
//! `MYOLOG_BENCH_BATCHES` [1,10,100,1000], `MYOLOG_BENCH_THREADS` [1,4,16]; `MYOLOG_BENCH_DEBUG` (set)
//! prints every slice's rate and CPU time to stderr; `MYOLOG_BENCH_SKIP_REPLAY=1` skips replay.
//! Further Myolog sides, interleaved with the others in every slice and compared in a second table:
//! `MYOLOG_BENCH_BASELINE=<path>`, another build of this bench (e.g. of the last commit with format
//! version 1, built from a `git worktree`), whose Myolog side runs in its own child process; and
//! `MYOLOG_BENCH_CHUNK_SIZES=<bytes,...>`, Myolog with other `LogOptions::chunk_target_bytes`. A CI smoke run:
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
    slices: usize,
    scans: usize,
    replay_events: u64,
    value_bytes: usize,
    batches: Vec<usize>,
    threads: Vec<usize>,
    /// Another build of this bench (e.g. of the last format version 1 commit) whose Myolog side
    /// runs as one more side of every append scenario.
    baseline: Option<std::path::PathBuf>,
    /// Chunk sizes (`LogOptions::chunk_target_bytes`) measured as further Myolog sides.
    chunk_sizes: Vec<usize>,
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
    if let Ok(spec) = std::env::var(SIDE_VAR) {
        serve_side(Side::from_spec(&spec));
        return;
    }
    let settings = Settings {
        seconds: env_or("MYOLOG_BENCH_SECONDS", 3.0),
        slices: env_or("MYOLOG_BENCH_SLICES", 6usize).max(1),
        scans: env_or("MYOLOG_BENCH_SCANS", 3usize).max(1),
        replay_events: env_or("MYOLOG_BENCH_REPLAY_EVENTS", 1_000_000),
        value_bytes: env_or("MYOLOG_BENCH_VALUE_BYTES", 1024),
        batches: env_list("MYOLOG_BENCH_BATCHES", &[1, 10, 100, 1000]),
        threads: env_list("MYOLOG_BENCH_THREADS", &[1, 4, 16]),
        baseline: std::env::var_os("MYOLOG_BENCH_BASELINE").map(Into::into),
        chunk_sizes: env_list("MYOLOG_BENCH_CHUNK_SIZES", &[]),
    };
    // `cargo bench` passes `--bench`; a filter argument is not supported, so ignore arguments.
    print_machine();
    println!();
    let stored_bytes = stored_event_bytes(settings.value_bytes);
    println!(
        "| appenders | batch | Myolog events/s | raw sled, {} B values | Myolog / raw | raw sled, {stored_bytes} B values (Myolog's stored event size) | Myolog / raw | median per-slice Myolog / raw ({} B, {stored_bytes} B) | CPU µs per event: Myolog, raw {} B, raw {stored_bytes} B |",
        settings.value_bytes, settings.value_bytes, settings.value_bytes
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut comparisons = Vec::new();
    for &threads in &settings.threads {
        for &batch in &settings.batches {
            let sides = append_scenario(&settings, threads, batch, stored_bytes);
            for (label, other) in sides.iter().skip(3) {
                comparisons.push((
                    threads,
                    batch,
                    label.clone(),
                    sides[0].1.clone_rates(),
                    other.clone_rates(),
                ));
            }
            let sides: Vec<&SideResult> = sides.iter().map(|(_, side)| side).collect();
            let (myolog, raw, raw_same_bytes) = (&sides[0], &sides[1], &sides[2]);
            println!(
                "| {threads} | {batch} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2}, {:.2} | {:.1}, {:.1}, {:.1} |",
                myolog.rate,
                raw.rate,
                myolog.rate / raw.rate,
                raw_same_bytes.rate,
                myolog.rate / raw_same_bytes.rate,
                median_slice_ratio(&myolog.slice_rates, &raw.slice_rates),
                median_slice_ratio(&myolog.slice_rates, &raw_same_bytes.slice_rates),
                myolog.cpu_micros_per_event,
                raw.cpu_micros_per_event,
                raw_same_bytes.cpu_micros_per_event,
            );
        }
    }
    if !comparisons.is_empty() {
        println!();
        println!(
            "| appenders | batch | other side | Myolog events/s | other events/s | Myolog / other | median per-slice Myolog / other | mean ms per append: Myolog, other | CPU µs per event: Myolog, other |"
        );
        println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        for (threads, batch, label, mine, other) in &comparisons {
            let per_append = |rate: f64| *threads as f64 * *batch as f64 / rate * 1e3;
            println!(
                "| {threads} | {batch} | {label} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2}, {:.2} | {:.1}, {:.1} |",
                mine.rate,
                other.rate,
                mine.rate / other.rate,
                median_slice_ratio(&mine.slice_rates, &other.slice_rates),
                per_append(mine.rate),
                per_append(other.rate),
                mine.cpu_micros_per_event,
                other.cpu_micros_per_event,
            );
        }
    }
    if env_or("MYOLOG_BENCH_SKIP_REPLAY", 0u8) == 1 {
        return;
    }
    println!();
    let replay = replay_scenario(&settings);
    println!(
        "| replay of {} events of {} B | Myolog events/s | raw sled events/s | Myolog / raw |",
        settings.replay_events, settings.value_bytes
    );
    println!("|---|---:|---:|---:|");
    for (label, myolog, raw) in replay {
        println!("| {label} | {myolog:.0} | {raw:.0} | {:.2} |", myolog / raw);
    }
}

/// Distinguishes the event ids of successive measurement slices.
static ROUND_BASE: AtomicU64 = AtomicU64::new(0);

type Work = Arc<dyn Fn(usize, u64) + Send + Sync>;

/// The stored size of a benchmark event: payload plus Myolog's envelope.
fn stored_event_bytes(payload_bytes: usize) -> usize {
    let payload = value_of(payload_bytes, 1);
    let (value, _) = myolog_storage::format::encode_event(&myolog_storage::format::EventFields {
        seq: 1,
        stream_key: "study/subject-17",
        stream_version: 1,
        event_id: "t0-r4294967296-e0",
        event_type: "bench.v1.Measured",
        schema_version: 1,
        payload: &payload,
        recorded_at_unix_nanos: 0,
        recorded_by: "bench",
        prev_hash: myolog_storage::Hash::ZERO,
    });
    value.len()
}

/// One append scenario's result per side: events/s over all slices, the median of the per-slice
/// ratios to the Myolog side's rate (the slices of one round run back to back, so their ratio is
/// the least disturbed by the machine's minute-to-minute drift), and process CPU per event.
struct SideResult {
    rate: f64,
    slice_rates: Vec<f64>,
    cpu_micros_per_event: f64,
}

impl SideResult {
    fn clone_rates(&self) -> SideResult {
        SideResult {
            rate: self.rate,
            slice_rates: self.slice_rates.clone(),
            cpu_micros_per_event: self.cpu_micros_per_event,
        }
    }
}

/// One side of an append scenario, measured in its own child process of this bench binary.
///
/// sled 0.34's epoch-based garbage collection (crossbeam-epoch's global collector) and its IO
/// thread pool are process-wide: in one process, the side measured after another frees part of
/// that side's deferred garbage (old page versions) whenever it pins, and shares its IO threads.
/// So each side gets a process, a heap and sled's globals of its own, and the parent only
/// orchestrates the interleaved slices.
#[derive(Clone, Copy)]
enum Side {
    /// `chunk_bytes` 0: the default chunk size (and what a bench binary of format version 1,
    /// which reads only the first three words of the side description, runs).
    Myolog {
        batch: usize,
        payload_bytes: usize,
        chunk_bytes: usize,
    },
    Raw {
        batch: usize,
        value_bytes: usize,
    },
}

/// The environment variable that turns the bench binary into one side's child process.
const SIDE_VAR: &str = "MYOLOG_BENCH_SIDE";

impl Side {
    fn to_spec(self) -> String {
        match self {
            Side::Myolog {
                batch,
                payload_bytes,
                chunk_bytes,
            } => format!("myolog {batch} {payload_bytes} {chunk_bytes}"),
            Side::Raw { batch, value_bytes } => format!("raw {batch} {value_bytes}"),
        }
    }

    fn from_spec(spec: &str) -> Side {
        let words: Vec<&str> = spec.split_whitespace().collect();
        let number = |at: usize| words[at].parse::<usize>().unwrap();
        match words[0] {
            "myolog" => Side::Myolog {
                batch: number(1),
                payload_bytes: number(2),
                chunk_bytes: if words.len() > 3 { number(3) } else { 0 },
            },
            "raw" => Side::Raw {
                batch: number(1),
                value_bytes: number(2),
            },
            other => panic!("{SIDE_VAR}: unknown side {other:?} (myolog or raw)"),
        }
    }

    fn batch(self) -> usize {
        match self {
            Side::Myolog { batch, .. } | Side::Raw { batch, .. } => batch,
        }
    }
}

/// A running child process serving one [`Side`]: the parent writes `run <threads> <seconds>`
/// lines, the child answers `<events> <seconds> <cpu seconds>` for each.
struct SideProcess {
    child: std::process::Child,
    /// `None` once dropped: closing the child's stdin is what ends it.
    commands: Option<std::process::ChildStdin>,
    answers: std::io::BufReader<std::process::ChildStdout>,
}

impl SideProcess {
    /// Starts `side` in a child of `binary` (another build of this bench) or of this binary.
    fn start(side: Side, binary: Option<&Path>) -> SideProcess {
        let exe = binary.map_or_else(|| std::env::current_exe().unwrap(), Path::to_path_buf);
        let mut child = std::process::Command::new(exe)
            .env(SIDE_VAR, side.to_spec())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let commands = child.stdin.take().unwrap();
        let mut answers = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        std::io::BufRead::read_line(&mut answers, &mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "side process failed to start");
        SideProcess {
            child,
            commands: Some(commands),
            answers,
        }
    }

    /// Runs one slice: (events, seconds, process CPU seconds of the child during the slice).
    fn run(&mut self, threads: usize, seconds: f64) -> (f64, f64, f64) {
        use std::io::{BufRead, Write};
        let commands = self.commands.as_mut().unwrap();
        writeln!(commands, "run {threads} {seconds}").unwrap();
        commands.flush().unwrap();
        let mut line = String::new();
        self.answers.read_line(&mut line).unwrap();
        let numbers: Vec<f64> = line
            .split_whitespace()
            .map(|word| word.parse().unwrap())
            .collect();
        assert_eq!(numbers.len(), 3, "side process answered {line:?}");
        (numbers[0], numbers[1], numbers[2])
    }
}

impl Drop for SideProcess {
    fn drop(&mut self) {
        // Closing stdin ends the child's command loop; it then removes its directory and exits.
        drop(self.commands.take());
        let _ = self.child.wait();
    }
}

/// The child process's main: opens the side's store in a fresh directory and runs slices on
/// command until its stdin closes.
fn serve_side(side: Side) {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let work = match side {
        Side::Myolog {
            batch,
            payload_bytes,
            chunk_bytes,
        } => myolog_appends(dir.path(), payload_bytes, batch, chunk_bytes),
        Side::Raw { batch, value_bytes } => raw_appends(dir.path(), value_bytes, batch),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let threads: usize = words[1].parse().unwrap();
        let seconds: f64 = words[2].parse().unwrap();
        let cpu_before = process_cpu_seconds();
        let (events, elapsed) = measure(threads, seconds, side.batch(), work.clone());
        let cpu = process_cpu_seconds() - cpu_before;
        writeln!(out, "{events} {elapsed} {cpu}").unwrap();
        out.flush().unwrap();
    }
}

/// Runs Myolog, raw sled with payload-size values and raw sled with stored-size values, then the
/// baseline build's Myolog and Myolog at each extra chunk size, each in its own process (see
/// [`Side`]), rotating which goes first in each slice. Returns (label, result) in that order.
fn append_scenario(
    settings: &Settings,
    threads: usize,
    batch: usize,
    stored_bytes: usize,
) -> Vec<(String, SideResult)> {
    let myolog = |chunk_bytes| Side::Myolog {
        batch,
        payload_bytes: settings.value_bytes,
        chunk_bytes,
    };
    let mut specs: Vec<(String, Side, Option<&Path>)> = vec![
        ("Myolog".into(), myolog(0), None),
        (
            "raw".into(),
            Side::Raw {
                batch,
                value_bytes: settings.value_bytes,
            },
            None,
        ),
        (
            "raw stored size".into(),
            Side::Raw {
                batch,
                value_bytes: stored_bytes,
            },
            None,
        ),
    ];
    if let Some(baseline) = &settings.baseline {
        specs.push(("baseline build".into(), myolog(0), Some(baseline.as_path())));
    }
    for &chunk_bytes in &settings.chunk_sizes {
        specs.push((
            format!("chunks of {chunk_bytes} B"),
            myolog(chunk_bytes),
            None,
        ));
    }
    let mut sides: Vec<SideProcess> = specs
        .iter()
        .map(|(_, side, binary)| SideProcess::start(*side, *binary))
        .collect();
    let slice_seconds = settings.seconds / settings.slices as f64;
    let mut totals = vec![(0.0, 0.0, 0.0); sides.len()];
    let mut slice_rates = vec![Vec::new(); sides.len()];
    for slice in 0..settings.slices {
        for turn in 0..sides.len() {
            let side = (slice + turn) % sides.len();
            let (events, seconds, cpu) = sides[side].run(threads, slice_seconds);
            totals[side].0 += events;
            totals[side].1 += seconds;
            totals[side].2 += cpu;
            slice_rates[side].push(events / seconds);
            if std::env::var_os("MYOLOG_BENCH_DEBUG").is_some() {
                eprintln!(
                    "slice {slice} side {side}: {:.0}/s cpu {cpu:.2}s",
                    events / seconds
                );
            }
        }
    }
    drop(sides);
    specs
        .into_iter()
        .zip(totals.iter().zip(slice_rates))
        .map(|((label, _, _), (&(events, seconds, cpu), slice_rates))| {
            (
                label,
                SideResult {
                    rate: events / seconds,
                    slice_rates,
                    cpu_micros_per_event: cpu * 1e6 / events,
                },
            )
        })
        .collect()
}

/// The median over slices of `mine[i] / theirs[i]`.
fn median_slice_ratio(mine: &[f64], theirs: &[f64]) -> f64 {
    let ratios: Vec<f64> = mine.iter().zip(theirs).map(|(m, t)| m / t).collect();
    median(&ratios)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// User + system CPU time of this whole process (all threads, sled's background threads included)
/// from `/proc/self/stat`, in seconds; 0 where unavailable. Clock ticks are 10 ms, fine over slices.
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

/// Runs `work(thread, round)` on `threads` threads until `seconds` elapse; returns the events done
/// (calls x `events_per_call`) and the seconds taken.
fn measure(threads: usize, seconds: f64, events_per_call: usize, work: Work) -> (f64, f64) {
    let start = Arc::new(Barrier::new(threads + 1));
    let calls = Arc::new(AtomicU64::new(0));
    let deadline_nanos = Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (start, calls, work) = (start.clone(), calls.clone(), work.clone());
            std::thread::spawn(move || {
                start.wait();
                let began = Instant::now();
                // Rounds continue across slices, so event ids stay unique.
                let mut round = ROUND_BASE.fetch_add(1 << 32, Ordering::Relaxed);
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
    (
        calls.load(Ordering::Relaxed) as f64 * events_per_call as f64,
        elapsed,
    )
}

fn myolog_appends(dir: &Path, payload_bytes: usize, batch: usize, chunk_bytes: usize) -> Work {
    let mut options = LogOptions::default();
    if chunk_bytes > 0 {
        options.chunk_target_bytes = chunk_bytes;
    }
    let log = EventLog::open(dir.join("log"), options).unwrap();
    let payload = value_of(payload_bytes, 1);
    Arc::new(move |thread: usize, round: u64| {
        let events = (0..batch)
            .map(|i| NewEvent {
                event_id: format!("t{thread}-r{round}-e{i}"),
                stream_key: format!(
                    "study/subject-{}",
                    (round as usize).wrapping_mul(batch).wrapping_add(i) % 64
                ),
                expected_version: ExpectedVersion::Any,
                event_type: "bench.v1.Measured".into(),
                schema_version: 1,
                payload: payload.clone(),
            })
            .collect();
        log.append(events, "bench").unwrap();
    })
}

fn raw_appends(dir: &Path, value_bytes: usize, batch: usize) -> Work {
    let db = raw_sled_config(dir, &LogOptions::default()).open().unwrap();
    let db_file = File::open(dir.join("db")).unwrap();
    let next_key = AtomicU64::new(0);
    let value = value_of(value_bytes, 1);
    Arc::new(move |_thread: usize, _round: u64| {
        let first = next_key.fetch_add(batch as u64, Ordering::Relaxed);
        let mut sled_batch = sled::Batch::default();
        for key in first..first + batch as u64 {
            sled_batch.insert(&key.to_be_bytes(), value.clone());
        }
        db.apply_batch(sled_batch).unwrap();
        db.flush().unwrap();
        db_file.sync_data().unwrap();
    })
}

type Scan = Box<dyn Fn() -> f64>;

/// Writes both replay data sets, reopens both, then alternates full scans. Returns (label, Myolog
/// events/s, raw events/s) rows: the first pass after reopening, and the median pass.
fn replay_scenario(settings: &Settings) -> Vec<(String, f64, f64)> {
    let myolog_dir = tempfile::tempdir().unwrap();
    let raw_dir = tempfile::tempdir().unwrap();
    let myolog = myolog_replay(myolog_dir.path(), settings);
    let raw = raw_replay(raw_dir.path(), settings);
    let (mut myolog_rates, mut raw_rates) = (Vec::new(), Vec::new());
    for pass in 0..settings.scans {
        if pass % 2 == 0 {
            myolog_rates.push(myolog());
            raw_rates.push(raw());
        } else {
            raw_rates.push(raw());
            myolog_rates.push(myolog());
        }
    }
    vec![
        (
            "first scan after reopen".into(),
            myolog_rates[0],
            raw_rates[0],
        ),
        (
            format!("median of {} scans", settings.scans),
            median(&myolog_rates),
            median(&raw_rates),
        ),
    ]
}

fn myolog_replay(dir: &Path, settings: &Settings) -> Scan {
    let path = dir.join("log");
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
    // Reopening rebuilds the in-memory indexes from the commit records. The time includes any
    // wait for sled's lazily released lock, so it is an upper bound.
    let began = Instant::now();
    let log = EventLog::open(
        &path,
        LogOptions {
            lock_wait: Duration::from_secs(30),
            ..LogOptions::default()
        },
    )
    .unwrap();
    println!(
        "reopening the {}-event log (indexes rebuilt from commit records) took {:.0} ms",
        settings.replay_events,
        began.elapsed().as_secs_f64() * 1000.0
    );
    let expected = settings.replay_events;
    Box::new(move || {
        let began = Instant::now();
        let mut count = 0u64;
        let mut bytes = 0usize;
        for event in log.read_range(..) {
            bytes += event.unwrap().payload.len();
            count += 1;
        }
        assert_eq!(count, expected);
        assert!(bytes > 0);
        count as f64 / began.elapsed().as_secs_f64()
    })
}

fn raw_replay(dir: &Path, settings: &Settings) -> Scan {
    let value = value_of(settings.value_bytes, 2);
    {
        let db = raw_sled_config(dir, &LogOptions::default()).open().unwrap();
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
    // sled releases its lock lazily after a drop (see `LogOptions::lock_wait`).
    let db = loop {
        match raw_sled_config(dir, &LogOptions::default()).open() {
            Ok(db) => break db,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let expected = settings.replay_events;
    Box::new(move || {
        let began = Instant::now();
        let mut count = 0u64;
        let mut bytes = 0usize;
        for entry in db.iter() {
            bytes += entry.unwrap().1.len();
            count += 1;
        }
        assert_eq!(count, expected);
        assert!(bytes > 0);
        count as f64 / began.elapsed().as_secs_f64()
    })
}
