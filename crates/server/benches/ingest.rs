//! Ingest benchmark: events per second through `Ingest.Submit` over loopback gRPC with durable acks,
//! side by side with the storage crate's direct `EventLog::append` of the same events in the same
//! run, for 1 and 16 concurrent streams; ack latency p50/p99; the ratio Submit / direct.
//!
//! `cargo bench -p myolog-server --bench ingest` (plain `main`, no harness). Each stream sends one
//! visit (10 forms = 10 events) per batch and waits for its answer before the next (lock-step, as an
//! EDC does); the direct appenders do the same with one thread per stream. Every configuration runs
//! on a fresh log in a temporary directory on the same disk; after a warm-up, each configuration runs
//! three times alternating direct and Submit, and the median run of each is printed.

mod support;
use support::{setup_batches, stream_batches};

use std::sync::Arc;
use std::time::{Duration, Instant};

use myolog_proto::v1 as pb;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_server::app::{AppConfig, SCHEMA_VERSION};
use myolog_server::server;
use myolog_storage::{EventLog, ExpectedVersion, LogOptions, NewEvent};
use myolog_synth::{Cohort, STUDY};
use myolog_wire as wire;
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;

/// One timed configuration's result.
struct Measured {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)]
    }
}

fn to_new_events(batch: &pb::SubmitRequest) -> Vec<NewEvent> {
    let events = wire::batch_from_proto(&batch.events).unwrap_or_default();
    batch
        .events
        .iter()
        .zip(&events)
        .map(|(w, e)| NewEvent {
            event_id: e.event_id.to_string(),
            stream_key: wire::stream_key(e),
            expected_version: ExpectedVersion::Any,
            event_type: e.body.type_name().into(),
            schema_version: SCHEMA_VERSION,
            payload: w.encode_to_vec(),
        })
        .collect()
}

fn direct(template: &pb::SubmitRequest, streams: usize, per_stream: usize) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open log");
    for batch in setup_batches(template, streams) {
        log.append(to_new_events(&batch), "bench")
            .expect("setup append");
    }
    let work: Vec<Vec<Vec<NewEvent>>> = (0..streams)
        .map(|s| {
            stream_batches(template, s, per_stream)
                .iter()
                .map(to_new_events)
                .collect()
        })
        .collect();
    let events: usize = work.iter().flatten().map(Vec::len).sum();
    let barrier = Arc::new(std::sync::Barrier::new(streams + 1));
    let handles: Vec<_> = work
        .into_iter()
        .map(|batches| {
            let log = log.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut latencies = Vec::with_capacity(batches.len());
                for batch in batches {
                    let start = Instant::now();
                    log.append(batch, "bench").expect("append");
                    latencies.push(start.elapsed());
                }
                latencies
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("appender"))
        .collect();
    let elapsed = start.elapsed();
    drop(log);
    Measured {
        events,
        elapsed,
        latencies,
    }
}

async fn submit(template: &pb::SubmitRequest, streams: usize, per_stream: usize) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = server::start(AppConfig::new(dir.path()), ([127, 0, 0, 1], 0).into())
        .await
        .expect("server");
    let url = running.url();
    let mut setup_client = IngestClient::connect(url.clone()).await.expect("connect");
    for batch in setup_batches(template, streams) {
        setup_client.append(batch).await.expect("setup");
    }
    let work: Vec<Vec<pb::SubmitRequest>> = (0..streams)
        .map(|s| stream_batches(template, s, per_stream))
        .collect();
    let events: usize = work.iter().flatten().map(|b| b.events.len()).sum();
    let mut clients = Vec::new();
    for _ in 0..streams {
        clients.push(IngestClient::connect(url.clone()).await.expect("connect"));
    }
    let start_gate = Arc::new(tokio::sync::Barrier::new(streams + 1));
    let mut tasks = Vec::new();
    for (mut client, batches) in clients.into_iter().zip(work) {
        let gate = Arc::clone(&start_gate);
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
    start_gate.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("stream task"));
    }
    let elapsed = start.elapsed();
    running.stop().await.expect("stop");
    Measured {
        events,
        elapsed,
        latencies,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let template = Cohort::new(7, 1).visit_batch(0, "baseline");
    println!(
        "Ingest benchmark: {STUDY}-like visits of {} events per batch, durable acks (fdatasync)",
        template.events.len()
    );
    println!(
        "{:>7} {:>8} | {:>14} {:>9} {:>9} | {:>14} {:>9} {:>9} | {:>6}",
        "streams",
        "events",
        "direct ev/s",
        "p50 ms",
        "p99 ms",
        "Submit ev/s",
        "p50 ms",
        "p99 ms",
        "ratio"
    );
    // Warm-up (page cache, sled files, thread pools), then ROUNDS alternating runs per configuration;
    // the median run of each side is reported.
    let _ = direct(&template, 1, 10);
    let _ = runtime.block_on(submit(&template, 1, 10));
    const ROUNDS: usize = 3;
    for (streams, per_stream) in [
        (1usize, if quick { 50 } else { 300 }),
        (16, if quick { 10 } else { 60 }),
    ] {
        let mut d_runs = Vec::new();
        let mut s_runs = Vec::new();
        for _ in 0..ROUNDS {
            d_runs.push(direct(&template, streams, per_stream));
            s_runs.push(runtime.block_on(submit(&template, streams, per_stream)));
        }
        d_runs.sort_by(|a, b| a.events_per_sec().total_cmp(&b.events_per_sec()));
        s_runs.sort_by(|a, b| a.events_per_sec().total_cmp(&b.events_per_sec()));
        let (d, s) = (&d_runs[ROUNDS / 2], &s_runs[ROUNDS / 2]);
        println!(
            "{:>7} {:>8} | {:>14.0} {:>9} {:>9} | {:>14.0} {:>9} {:>9} | {:>5.0}%",
            streams,
            s.events,
            d.events_per_sec(),
            ms(d.percentile(50.0)),
            ms(d.percentile(99.0)),
            s.events_per_sec(),
            ms(s.percentile(50.0)),
            ms(s.percentile(99.0)),
            100.0 * s.events_per_sec() / d.events_per_sec()
        );
    }
}
