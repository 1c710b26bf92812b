//! Restart: how long a server takes from process start to SERVING with a big log, and the memory it
//! holds, against the bare scan of the same log; the migration of a format version 1 log; and the
//! resident memory under repeated reads.
//!
//! Each measurement runs in a fresh child process of this binary (so its peak resident memory,
//! `VmHWM` from `/proc/self/status`, is its own), timed by the parent from spawn to the child's
//! report; the kinds alternate round by round and the table gives medians. The page cache is warm
//! (the log was just written or read): this is a restart, not a cold boot.
//!
//! - bare scan: `EventLog::open` (index rebuild from the chunk tables) and `read_range(1..=head)`,
//!   every event decoded into an owned `RecordedEvent`;
//! - start to SERVING: `App::open_blocking`, what `myolog serve` runs before it reports SERVING (open,
//!   index rebuild, every event decoded and applied to the projection);
//! - migrate (with `MYOLOG_BENCH_V1_LOG`): `legacy_v1::migrate` of that format version 1 log into a
//!   fresh directory (copy, fsync per batch of 10,000, verify);
//! - repeated reads: one process opens the log and runs `MYOLOG_BENCH_READ_ROUNDS` rounds of a full
//!   scan, 10,000 reads by seq and 1,000 by event id, printing `VmRSS` after each round.
//!
//! Environment: `MYOLOG_BENCH_LOG=<dir>` (required: a format version 2 log, e.g. kept by the replay
//! bench with `MYOLOG_BENCH_KEEP`, or migrated), `MYOLOG_BENCH_V1_LOG=<dir>` (optional),
//! `MYOLOG_BENCH_ROUNDS` [3], `MYOLOG_BENCH_READ_ROUNDS` [5].

#![allow(clippy::unwrap_used)] // A benchmark that cannot set itself up should stop loudly.

// The allocator the `myolog` binary ships with, so memory and time are what `serve` would show.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::hint::black_box;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use myolog_server::app::{App, AppConfig};
use myolog_storage::{EventLog, LogOptions};

/// The variable that makes this binary a measuring child: `scan`, `serve`, `migrate` or `reads`.
const MODE_VAR: &str = "MYOLOG_BENCH_RESTART_MODE";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/self/status` field in KiB (`VmHWM`, `VmRSS`); 0 where there is none.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    if let Ok(mode) = std::env::var(MODE_VAR) {
        child(&mode);
        return;
    }
    let log: PathBuf = std::env::var_os("MYOLOG_BENCH_LOG")
        .expect("MYOLOG_BENCH_LOG=<dir of a log>")
        .into();
    let v1 = std::env::var_os("MYOLOG_BENCH_V1_LOG").map(PathBuf::from);
    let rounds: usize = env_or("MYOLOG_BENCH_ROUNDS", 3).max(1);
    let head = EventLog::open(&log, LogOptions::default())
        .unwrap()
        .head()
        .seq;
    let mut kinds = vec!["scan", "serve"];
    if v1.is_some() {
        kinds.push("migrate");
    }
    let mut results: Vec<Vec<(f64, u64)>> = vec![Vec::new(); kinds.len()];
    let scratch = tempfile::tempdir().unwrap();
    for round in 0..rounds {
        for turn in 0..kinds.len() {
            let kind = (round + turn) % kinds.len();
            let target = scratch.path().join(format!("migrated-{round}"));
            let (seconds, hwm_kib) = run_child(kinds[kind], &log, v1.as_deref(), &target);
            eprintln!(
                "round {round} {}: {seconds:.2} s, VmHWM {} MiB",
                kinds[kind],
                hwm_kib / 1024
            );
            if target.exists() {
                std::fs::remove_dir_all(&target).unwrap();
            }
            results[kind].push((seconds, hwm_kib));
        }
    }
    println!("| {head} events (median of {rounds}) | time | peak resident memory (VmHWM) |");
    println!("|---|---:|---:|");
    let labels = [
        "bare scan (open + `read_range`)",
        "start to SERVING (`App::open_blocking`)",
        "`myolog migrate` of the format version 1 log",
    ];
    let mut medians = Vec::new();
    for (kind, samples) in results.iter_mut().enumerate() {
        let (seconds, hwm) = median(samples);
        medians.push(seconds);
        println!("| {} | {seconds:.2} s | {} MiB |", labels[kind], hwm / 1024);
    }
    println!(
        "\ntarget: SERVING within bare scan + 2 s: {} ({:.2} s over the bare scan)",
        if medians[1] <= medians[0] + 2.0 {
            "met"
        } else {
            "NOT met"
        },
        medians[1] - medians[0]
    );
    let read_rounds: usize = env_or("MYOLOG_BENCH_READ_ROUNDS", 5);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(MODE_VAR, "reads")
        .env("MYOLOG_BENCH_READ_ROUNDS", read_rounds.to_string())
        .env("MYOLOG_BENCH_LOG", &log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(child.wait().unwrap().success(), "reads child failed");
    println!("\n| repeated reads: round | VmRSS after the round |");
    println!("|---:|---:|");
    for line in lines {
        let (round, rss) = line.split_once(' ').unwrap();
        println!("| {round} | {} MiB |", rss.parse::<u64>().unwrap() / 1024);
    }
}

/// The median time and the peak memory of the same sample (by time).
fn median(samples: &mut [(f64, u64)]) -> (f64, u64) {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    samples[samples.len() / 2]
}

/// Runs one measuring child; returns (seconds from spawn to its report, its VmHWM in KiB).
fn run_child(kind: &str, log: &Path, v1: Option<&Path>, target: &Path) -> (f64, u64) {
    let started = Instant::now();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(MODE_VAR, kind)
        .env("MYOLOG_BENCH_LOG", log)
        .env("MYOLOG_BENCH_TARGET", target)
        .stdout(Stdio::piped());
    if let Some(v1) = v1 {
        command.env("MYOLOG_BENCH_V1_LOG", v1);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(child.wait().unwrap().success(), "{kind} child failed");
    (seconds, line.trim().parse().unwrap())
}

/// A measuring child: does its one thing, then prints its VmHWM (the parent times it).
fn child(mode: &str) {
    let log: PathBuf = std::env::var_os("MYOLOG_BENCH_LOG").unwrap().into();
    match mode {
        "scan" => {
            let log = EventLog::open(&log, LogOptions::default()).unwrap();
            let head = log.head().seq;
            let mut count = 0u64;
            for event in log.read_range(1..=head) {
                black_box(event.unwrap());
                count += 1;
            }
            assert_eq!(count, head);
        }
        "serve" => {
            black_box(App::open_blocking(&AppConfig::new(&log)).unwrap());
        }
        "migrate" => {
            let from: PathBuf = std::env::var_os("MYOLOG_BENCH_V1_LOG").unwrap().into();
            let to: PathBuf = std::env::var_os("MYOLOG_BENCH_TARGET").unwrap().into();
            let report =
                myolog_storage::legacy_v1::migrate(&from, &to, LogOptions::default()).unwrap();
            black_box(report);
        }
        "reads" => {
            reads(&log);
            return;
        }
        other => panic!("{MODE_VAR}: unknown mode {other:?}"),
    }
    println!("{}", status_kib("VmHWM"));
}

/// Rounds of reads on one open log, printing `<round> <VmRSS KiB>` after each.
fn reads(path: &Path) {
    let log = EventLog::open(path, LogOptions::default()).unwrap();
    let head = log.head().seq;
    let rounds: usize = env_or("MYOLOG_BENCH_READ_ROUNDS", 5);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 1..=rounds {
        for event in log.read_range(..) {
            black_box(event.unwrap());
        }
        for _ in 0..10_000 {
            let seq = 1 + next() % head;
            let event = log.get(seq).unwrap().unwrap();
            if seq.is_multiple_of(10) {
                let by_id = log.get_by_event_id(&event.event_id).unwrap().unwrap();
                assert_eq!(by_id.seq, seq);
            }
        }
        println!("{round} {}", status_kib("VmRSS"));
    }
}
