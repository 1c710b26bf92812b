//! Archive benchmark: what `serve --archive` (a directory target, and an S3 bucket) costs the ingest path and how
//! far behind it runs, measured side by side in the same run on fresh logs, interleaved rounds,
//! medians. Plain `main` (harness = false), not run in CI.
//!
//! `cargo bench -p myolog-server --bench archive`. Per round, in this order (the first two swap
//! places every other round so neither always runs on a warmer disk):
//!
//! 1. ingest, archive OFF: 16 Submit streams over loopback, each sending visits of 10 events
//!    (~300 bytes each) lock-step with durable acks, as the ingest benchmark does;
//! 2. ingest, archive ON: the same load with an `Archiver` on a directory with `serve`'s default
//!    policy (1,000 events or 5 s), its lag sampled every 20 ms while the load runs;
//! 3. ingest, archive ON plus a follower: a second `App` copying the first over loopback with
//!    `follower::run` (the default 200 ms poll), its lag sampled likewise;
//! 4. `--ack-after-archive` at 1 stream: per-batch latency with the flag off and on (the archive on
//!    in both, each with `serve`'s default segment age for that mode: 5 s, 20 ms);
//! 5. restore of run 2's archive into an empty directory against the bare scan (`read_range`) of
//!    the same log;
//! 6. when moto's standalone S3 server is installed (`python3 -m moto.server`, as the tests use),
//!    runs 1 and 2 again with the archive in a bucket of moto on a loopback port the benchmark
//!    starts itself (a new prefix per run), and a restore from the bucket. moto is Python on the
//!    same cores, so these figures are reported, not gated. Without moto a line says they were
//!    skipped.
//!
//! Sizes: `MYOLOG_BENCH_ROUNDS` [5], `MYOLOG_BENCH_PER_STREAM` [300] (visits per stream at 16
//! streams), `MYOLOG_BENCH_ACK_BATCHES` [200] (visits at 1 stream); a smoke run:
//! `MYOLOG_BENCH_ROUNDS=1 MYOLOG_BENCH_PER_STREAM=5 MYOLOG_BENCH_ACK_BATCHES=5`.

mod support;
use support::{setup_batches, stream_batches};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use myolog_archive::{
    ArchiveTarget, Archiver, LagHandle, RestoreOptions, SegmentName, SegmentPolicy,
};
use myolog_proto::v1 as pb;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_server::app::{App, AppConfig, ArchiveGuard};
use myolog_server::follower::{self, FollowerLagHandle, Primary};
use myolog_server::server::{self, Running};
use myolog_storage::{EventLog, LogOptions};
use myolog_synth::Cohort;
use prost::Message;
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;

/// How often the lag samplers look: often enough to see a 1,000-event segment build up at
/// tens of thousands of events per second, cheap enough (a mutex and an atomic) not to matter.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Lag samples (events behind, seconds behind) taken while a load ran.
#[derive(Default)]
struct LagSamples {
    events: Vec<f64>,
    seconds: Vec<f64>,
}

impl LagSamples {
    fn push(&mut self, events: u64, seconds: f64) {
        self.events.push(events as f64);
        self.seconds.push(seconds);
    }
}

/// One timed load's result.
struct Measured {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Archive lag while the load ran (archive on only).
    archive_lag: LagSamples,
    /// The same, as the archiver's `LagHandle` (what /metrics shows) reported it.
    reported_lag: LagSamples,
    /// Follower lag while the load ran (with a follower only).
    follower_lag: LagSamples,
    /// From the end of the load until the archive (and follower) held every event.
    drain: Duration,
}

impl Measured {
    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

fn latencies_ms(latencies: &[Duration]) -> Vec<f64> {
    latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

/// What runs beside the server in one configuration.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Off,
    Archive,
    ArchiveAndFollower,
}

/// The archiver of a running server, stopped (and fully shipped) by `stop`.
struct RunningArchiver {
    lag: LagHandle,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningArchiver {
    async fn start(
        running: &Running,
        target: ArchiveTarget,
        policy: SegmentPolicy,
        ack: bool,
    ) -> RunningArchiver {
        let archiver = Archiver::start(running.app.log().clone(), target, 1, policy)
            .await
            .expect("archiver");
        let lag = archiver.lag_handle();
        running.app.set_archive_guard(ArchiveGuard {
            lag: lag.clone(),
            max_lag_events: None,
            ack_after_archive: ack,
        });
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            archiver
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .expect("archiver run");
        });
        RunningArchiver { lag, stop, task }
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.expect("archiver task");
    }
}

/// Runs `streams` lock-step Submit streams of `per_stream` visits against `url`; returns the
/// events sent, the wall time and every batch's latency.
async fn load(
    url: &str,
    template: &pb::SubmitRequest,
    streams: usize,
    per_stream: usize,
) -> (usize, Duration, Vec<Duration>) {
    let work: Vec<Vec<pb::SubmitRequest>> = (0..streams)
        .map(|s| stream_batches(template, s, per_stream))
        .collect();
    let events: usize = work.iter().flatten().map(|b| b.events.len()).sum();
    let mut clients = Vec::new();
    for _ in 0..streams {
        clients.push(
            IngestClient::connect(url.to_string())
                .await
                .expect("connect"),
        );
    }
    let gate = Arc::new(tokio::sync::Barrier::new(streams + 1));
    let mut tasks = Vec::new();
    for (mut client, batches) in clients.into_iter().zip(work) {
        let gate = Arc::clone(&gate);
        tasks.push(tokio::spawn(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let mut answers = client
                .submit(ReceiverStream::new(rx))
                .await
                .expect("submit")
                .into_inner();
            gate.wait().await;
            let mut latencies = Vec::with_capacity(batches.len());
            for batch in batches {
                let start = Instant::now();
                tx.send(batch).await.expect("send");
                let answer = answers
                    .message()
                    .await
                    .expect("answer")
                    .expect("one answer per batch");
                assert!(
                    answer.rejection.is_none(),
                    "rejected: {:?}",
                    answer.rejection
                );
                latencies.push(start.elapsed());
            }
            latencies
        }));
    }
    gate.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("stream task"));
    }
    (events, start.elapsed(), latencies)
}

/// Where a run's archive goes: a directory on the log's disk, or a prefix of the moto bucket.
enum ArchivePlace {
    Directory(PathBuf),
    S3(ArchiveTarget),
}

impl ArchivePlace {
    fn target(&self) -> ArchiveTarget {
        match self {
            ArchivePlace::Directory(dir) => {
                ArchiveTarget::local_directory(dir).expect("archive target")
            }
            ArchivePlace::S3(target) => target.clone(),
        }
    }
}

/// One 16-stream (or 1-stream) load on a fresh log with `side` beside the server. The archive
/// directory is `archive_dir` (kept for the restore measurement); the log stays in `data_dir`.
#[allow(clippy::too_many_arguments)]
async fn ingest(
    template: &pb::SubmitRequest,
    streams: usize,
    per_stream: usize,
    side: Side,
    policy: SegmentPolicy,
    ack: bool,
    data_dir: &Path,
    archive: &ArchivePlace,
) -> Measured {
    let running = server::start(AppConfig::new(data_dir), ([127, 0, 0, 1], 0).into())
        .await
        .expect("server");
    let url = running.url();
    let mut setup = IngestClient::connect(url.clone()).await.expect("connect");
    for batch in setup_batches(template, streams) {
        setup.append(batch).await.expect("setup");
    }
    let archiver = match side {
        Side::Off => None,
        Side::Archive | Side::ArchiveAndFollower => {
            Some(RunningArchiver::start(&running, archive.target(), policy, ack).await)
        }
    };
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let (follower_stop, follower_stopped) = watch::channel(false);
    let follower = if side == Side::ArchiveAndFollower {
        let config = AppConfig {
            follow: Some(url.clone()),
            ..AppConfig::new(follower_dir.path())
        };
        let app = App::open(config).await.expect("follower app");
        let lag = FollowerLagHandle::default();
        let primary = Primary {
            url: url.clone(),
            endpoint: tonic::transport::Endpoint::from_shared(url.clone()).expect("endpoint"),
            authorization: None,
        };
        let task = {
            let (app, lag) = (Arc::clone(&app), lag.clone());
            let mut stopped = follower_stopped.clone();
            tokio::spawn(async move {
                follower::run(app, primary, Duration::from_millis(200), lag, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .expect("follower");
            })
        };
        Some((app, task))
    } else {
        None
    };
    // Let the follower catch up with the setup events so the load starts from a quiet state.
    if let Some((app, _)) = &follower {
        while app.head_seq() < running.app.head_seq() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // The samplers. The archive's progress is read from the directory itself (the newest sealed
    // segment's last sequence): the archiver's `LagHandle` is refreshed only when its catch-up loop
    // ends, so under a steady load it lags the archive; it is sampled too, to show by how much.
    // Seconds behind: the age of the oldest event the archive (or the follower) lacks, read from
    // the primary's log.
    let (sampling_stop, sampling_stopped) = watch::channel(false);
    let sampler = {
        let primary = Arc::clone(&running.app);
        let archive_lag = archiver.as_ref().map(|a| a.lag.clone());
        let segments = match archive {
            ArchivePlace::Directory(dir) => Some(dir.join("segments")),
            ArchivePlace::S3(_) => None,
        };
        let follower_app = follower.as_ref().map(|(app, _)| Arc::clone(app));
        let stopped = sampling_stopped.clone();
        tokio::spawn(async move {
            let mut archive = LagSamples::default();
            let mut reported = LagSamples::default();
            let mut follow = LagSamples::default();
            while !*stopped.borrow() {
                tokio::time::sleep(SAMPLE_EVERY).await;
                let head = primary.head_seq();
                if let Some(lag) = &archive_lag {
                    // A bucket is not listed while the load runs (each listing is an HTTP
                    // call to the store sharing the cores): the archiver's own report is used.
                    let archived = match &segments {
                        Some(segments) => newest_archived(segments),
                        None => lag.get().archived_seq,
                    };
                    archive.push(
                        head.saturating_sub(archived),
                        oldest_missing_age(primary.log(), archived, head),
                    );
                    let lag = lag.get();
                    reported.push(head.saturating_sub(lag.archived_seq), lag.seconds_behind);
                }
                if let Some(app) = &follower_app {
                    let local = app.head_seq();
                    follow.push(
                        head.saturating_sub(local),
                        oldest_missing_age(primary.log(), local, head),
                    );
                }
            }
            (archive, reported, follow)
        })
    };

    let (events, elapsed, latencies) = load(&url, template, streams, per_stream).await;
    sampling_stop.send_replace(true);
    let (archive_lag, reported_lag, follower_lag) = sampler.await.expect("sampler");

    let drained_at = Instant::now();
    let head = running.app.head_seq();
    if let Some((app, _)) = &follower {
        while app.head_seq() < head {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    if let Some(archiver) = archiver {
        // Without a stop the archive would wait up to the segment age; the stop ships the tail,
        // as a clean shutdown does, so the drain is the time to catch up at the load's end.
        archiver.stop().await;
    }
    let drain = drained_at.elapsed();
    if let Some((app, task)) = follower {
        follower_stop.send_replace(true);
        task.await.expect("follower task");
        let _ = tokio::task::spawn_blocking(move || drop(app)).await;
    }
    running.stop().await.expect("stop");
    Measured {
        events,
        elapsed,
        latencies,
        archive_lag,
        reported_lag,
        follower_lag,
        drain,
    }
}

/// The last sequence of the newest segment in the archive's `segments` folder (0 when empty).
fn newest_archived(segments: &Path) -> u64 {
    std::fs::read_dir(segments)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| SegmentName::parse(entry.file_name().to_str()?))
        .map(|name| name.last_seq)
        .max()
        .unwrap_or(0)
}

/// Age of event `have + 1`, the oldest one a copy holding `have` lacks (0 when it lacks none).
fn oldest_missing_age(log: &EventLog, have: u64, head: u64) -> f64 {
    if have >= head {
        return 0.0;
    }
    log.read_range(have + 1..=have + 1)
        .next()
        .and_then(Result::ok)
        .map_or(0.0, |e| age_seconds(e.recorded_at_unix_nanos))
}

fn age_seconds(recorded_at_unix_nanos: i64) -> f64 {
    let now = myolog_storage::unix_nanos_from_system_time(std::time::SystemTime::now());
    now.saturating_sub(recorded_at_unix_nanos).max(0) as f64 / 1e9
}

/// Reads every event of the log in `dir` (each decoded into an owned event), as `replay` does
/// before projecting: the bare scan the restore is compared with.
fn bare_scan(dir: &Path) -> (u64, Duration) {
    let log = EventLog::open(dir, LogOptions::default()).expect("open log");
    let start = Instant::now();
    let mut n = 0u64;
    for event in log.read_range(..) {
        let event = event.expect("read");
        std::hint::black_box(event.payload.len());
        n += 1;
    }
    (n, start.elapsed())
}

async fn restore_once(archive: &ArchivePlace) -> (u64, Duration) {
    let target = archive.target();
    let into = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    let report = myolog_archive::restore(&target, into.path(), RestoreOptions::default())
        .await
        .expect("restore");
    (report.events_appended, start.elapsed())
}

fn main() {
    let rounds = env_usize("MYOLOG_BENCH_ROUNDS", 5).max(1);
    let per_stream = env_usize("MYOLOG_BENCH_PER_STREAM", 300).max(1);
    let ack_batches = env_usize("MYOLOG_BENCH_ACK_BATCHES", 200).max(1);
    const STREAMS: usize = 16;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let template = Cohort::new(7, 1).visit_batch(0, "baseline");
    let event_bytes = template.encoded_len() / template.events.len().max(1);
    // serve's defaults: 1,000 events or 5 s; with --ack-after-archive the age drops to 20 ms.
    let default_policy = SegmentPolicy::default();
    let ack_policy = SegmentPolicy {
        max_events: default_policy.max_events,
        max_age: Duration::from_millis(20),
    };
    println!(
        "Archive benchmark: {STREAMS} streams x {per_stream} visits of {} events (~{event_bytes} B \
         each), {rounds} interleaved rounds, directory archive on the same disk",
        template.events.len()
    );

    let scratch = tempfile::tempdir().expect("tempdir");
    let run = |side: Side, streams: usize, n: usize, policy: SegmentPolicy, ack: bool| {
        let data = tempfile::tempdir_in(scratch.path()).expect("tempdir");
        let archive = tempfile::tempdir_in(scratch.path()).expect("tempdir");
        let place = ArchivePlace::Directory(archive.path().to_path_buf());
        let measured = runtime.block_on(ingest(
            &template,
            streams,
            n,
            side,
            policy,
            ack,
            data.path(),
            &place,
        ));
        (measured, data, place, archive)
    };
    let moto = Moto::start();
    let mut s3_runs = 0usize;
    let mut run_s3 = |side: Side| {
        let moto = moto.as_ref().expect("moto runs");
        let data = tempfile::tempdir_in(scratch.path()).expect("tempdir");
        s3_runs += 1;
        let place = ArchivePlace::S3(moto.target(&format!("run{s3_runs}")));
        let measured = runtime.block_on(ingest(
            &template,
            STREAMS,
            per_stream,
            side,
            default_policy,
            false,
            data.path(),
            &place,
        ));
        (measured, place)
    };

    // Warm-up: page cache, sled files, thread pools, the archive directory's first fsyncs.
    let _ = run(Side::Archive, 2, 5, default_policy, false);

    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut with_follower = Vec::new();
    let mut ack_off = Vec::new();
    let mut ack_on = Vec::new();
    let mut scans = Vec::new();
    let mut restores = Vec::new();
    let mut s3_off = Vec::new();
    let mut s3_on = Vec::new();
    let mut s3_restores = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [Side::Off, Side::Archive]
        } else {
            [Side::Archive, Side::Off]
        };
        let mut kept = None;
        for side in order {
            let (m, data, place, archive) = run(side, STREAMS, per_stream, default_policy, false);
            if side == Side::Off {
                off.push(m);
            } else {
                on.push(m);
                kept = Some((data, place, archive));
            }
        }
        let (m, ..) = run(
            Side::ArchiveAndFollower,
            STREAMS,
            per_stream,
            default_policy,
            false,
        );
        with_follower.push(m);
        let (m, ..) = run(Side::Archive, 1, ack_batches, default_policy, false);
        ack_off.push(m);
        let (m, ..) = run(Side::Archive, 1, ack_batches, ack_policy, true);
        ack_on.push(m);
        if let Some((data, place, _archive)) = kept {
            scans.push(bare_scan(data.path()));
            restores.push(runtime.block_on(restore_once(&place)));
        }
        if moto.is_some() {
            for side in order {
                let (m, place) = run_s3(side);
                if side == Side::Off {
                    s3_off.push(m);
                } else {
                    s3_on.push(m);
                    s3_restores.push(runtime.block_on(restore_once(&place)));
                }
            }
        }
        let (o, a) = (off.last(), on.last());
        if let (Some(o), Some(a)) = (o, a) {
            let s3 = match (s3_off.last(), s3_on.last()) {
                (Some(o), Some(a)) => format!(
                    "; S3 off {:.0} ev/s, on {:.0} ev/s ({:.2})",
                    o.events_per_sec(),
                    a.events_per_sec(),
                    a.events_per_sec() / o.events_per_sec()
                ),
                _ => String::new(),
            };
            println!(
                "  round {}: off {:.0} ev/s, on {:.0} ev/s ({:.2}), +follower {:.0} ev/s{s3}",
                round + 1,
                o.events_per_sec(),
                a.events_per_sec(),
                a.events_per_sec() / o.events_per_sec(),
                with_follower.last().map_or(0.0, Measured::events_per_sec),
            );
        }
    }

    let rate = |runs: &[Measured]| {
        median(
            &runs
                .iter()
                .map(Measured::events_per_sec)
                .collect::<Vec<_>>(),
        )
    };
    let ratios: Vec<f64> = off
        .iter()
        .zip(&on)
        .map(|(o, a)| a.events_per_sec() / o.events_per_sec())
        .collect();
    let batch_ms = |runs: &[Measured], p: f64| {
        median(
            &runs
                .iter()
                .map(|m| percentile(&latencies_ms(&m.latencies), p))
                .collect::<Vec<_>>(),
        )
    };
    println!();
    println!("1. Ingest, {STREAMS} streams, durable acks (median of {rounds} rounds)");
    println!(
        "   events/round {} | archive off {:.0} ev/s | archive on {:.0} ev/s | on+follower {:.0} ev/s",
        off.first().map_or(0, |m| m.events),
        rate(&off),
        rate(&on),
        rate(&with_follower)
    );
    println!(
        "   on/off: median of per-round ratios {:.3} (min {:.3}, max {:.3}); ratio of medians {:.3}",
        median(&ratios),
        percentile(&ratios, 0.0),
        percentile(&ratios, 100.0),
        rate(&on) / rate(&off)
    );
    println!(
        "   batch latency p50/p99 ms: off {:.2}/{:.2}, on {:.2}/{:.2}",
        batch_ms(&off, 50.0),
        batch_ms(&off, 99.0),
        batch_ms(&on, 50.0),
        batch_ms(&on, 99.0)
    );
    let lag_line = |name: &str, runs: &[Measured], pick: fn(&Measured) -> &LagSamples| {
        let per = |f: fn(&LagSamples) -> &Vec<f64>, p: f64| {
            median(
                &runs
                    .iter()
                    .map(|m| percentile(f(pick(m)), p))
                    .collect::<Vec<_>>(),
            )
        };
        println!(
            "   {name}: events behind p50 {:.0} / p99 {:.0} / max {:.0}; seconds behind p50 {:.3} / \
             max {:.3}; catch-up after the load {:.0} ms (medians over rounds; {} samples per round)",
            per(|s| &s.events, 50.0),
            per(|s| &s.events, 99.0),
            per(|s| &s.events, 100.0),
            per(|s| &s.seconds, 50.0),
            per(|s| &s.seconds, 100.0),
            median(
                &runs
                    .iter()
                    .map(|m| m.drain.as_secs_f64() * 1e3)
                    .collect::<Vec<_>>()
            ),
            runs.first().map_or(0, |m| pick(m).events.len()),
        );
    };
    println!(
        "2. Archive lag at that load (sampled every {} ms)",
        SAMPLE_EVERY.as_millis()
    );
    lag_line("archive", &on, |m| &m.archive_lag);
    lag_line("as the archiver reported it", &on, |m| &m.reported_lag);
    println!("5. Follower lag at that load (poll 200 ms)");
    lag_line("follower", &with_follower, |m| &m.follower_lag);
    println!("   archive lag with the follower running:");
    lag_line("archive", &with_follower, |m| &m.archive_lag);
    println!("3. --ack-after-archive, 1 stream x {ack_batches} visits (median of {rounds} rounds)");
    println!(
        "   per-batch ms p50/p99: off (age 5 s) {:.2}/{:.2}, on (age 20 ms) {:.2}/{:.2}; \
         ev/s off {:.0}, on {:.0}",
        batch_ms(&ack_off, 50.0),
        batch_ms(&ack_off, 99.0),
        batch_ms(&ack_on, 50.0),
        batch_ms(&ack_on, 99.0),
        rate(&ack_off),
        rate(&ack_on)
    );
    let per_sec = |runs: &[(u64, Duration)]| {
        median(
            &runs
                .iter()
                .map(|(n, d)| *n as f64 / d.as_secs_f64())
                .collect::<Vec<_>>(),
        )
    };
    println!(
        "4. Restore of the archived log ({} events): restore {:.0} ev/s, bare scan {:.0} ev/s \
         (restore / scan {:.3})",
        restores.first().map_or(0, |r| r.0),
        per_sec(&restores),
        per_sec(&scans),
        per_sec(&restores) / per_sec(&scans)
    );
    if moto.is_none() {
        println!(
            "6. S3 archive: skipped, moto's server is not installed (`pip install -r \
             requirements-test.txt` at the workspace root)"
        );
        return;
    }
    let s3_ratios: Vec<f64> = s3_off
        .iter()
        .zip(&s3_on)
        .map(|(o, a)| a.events_per_sec() / o.events_per_sec())
        .collect();
    println!(
        "6. S3 archive (moto's server on loopback, sharing the cores: reported, not gated), \
         {STREAMS} streams, median of {rounds} rounds"
    );
    println!(
        "   archive off {:.0} ev/s | archive on {:.0} ev/s | on/off: median of per-round ratios \
         {:.3} (min {:.3}, max {:.3})",
        rate(&s3_off),
        rate(&s3_on),
        median(&s3_ratios),
        percentile(&s3_ratios, 0.0),
        percentile(&s3_ratios, 100.0)
    );
    println!(
        "   batch latency p50/p99 ms: off {:.2}/{:.2}, on {:.2}/{:.2}",
        batch_ms(&s3_off, 50.0),
        batch_ms(&s3_off, 99.0),
        batch_ms(&s3_on, 50.0),
        batch_ms(&s3_on, 99.0)
    );
    lag_line("S3 archive, as the archiver reported it", &s3_on, |m| {
        &m.archive_lag
    });
    println!(
        "   restore from the bucket ({} events): {:.0} ev/s (directory archive {:.0} ev/s)",
        s3_restores.first().map_or(0, |r| r.0),
        per_sec(&s3_restores),
        per_sec(&restores)
    );
}

const BUCKET: &str = "myolog-bench";

/// moto's standalone S3 server on a loopback port, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts moto and creates the bucket; `None` (and a line saying so) when moto is not
    /// installed or does not come up.
    fn start() -> Option<Moto> {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server, flask, werkzeug"])
            .output()
            .is_ok_and(|output| output.status.success());
        if !installed {
            println!("S3 figures skipped: moto's server is not installed (python3 -m moto.server)");
            return None;
        }
        // A port free a moment ago; moto binds it itself (it cannot report a port it chose).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .ok()?
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || matches!(moto.child.try_wait(), Ok(Some(_))) {
                println!("S3 figures skipped: moto's server did not listen on port {port}");
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Err(error) = moto.create_bucket() {
            println!("S3 figures skipped: creating the bucket on moto: {error}");
            return None;
        }
        Some(moto)
    }

    /// A plain unsigned PUT, which moto accepts.
    fn create_bucket(&mut self) -> std::io::Result<()> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: \
             close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        if response.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(std::io::Error::other(response))
        }
    }

    fn target(&self, prefix: &str) -> ArchiveTarget {
        let endpoint = format!("http://127.0.0.1:{}", self.port);
        ArchiveTarget::s3_with_settings(
            BUCKET,
            prefix,
            &[
                ("AWS_ACCESS_KEY_ID", "bench"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT", &endpoint),
                ("AWS_ALLOW_HTTP", "true"),
            ],
        )
        .expect("S3 target")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
