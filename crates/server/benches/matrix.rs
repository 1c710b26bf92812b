//! The ingest benchmark matrix: events per second, ack latency (p50/p99) and the server's CPU time
//! per event through `Ingest.Submit` (client stream) and `Ingest.Append` (unary), over
//! {1, 4, 16} streams x {1, 10, 100} events per request x events of ~300 B and ~1 KB, each cell beside
//! the storage crate's direct `EventLog::append` of the same events, plus cells with a `Watch`
//! subscriber or `GetCohort` readers active. Not a CI test: a measuring tool (plain `main`).
//!
//! The server under test is a real `myolog serve` process, so its CPU time is read from
//! `/proc/PID/stat` alone (the load generator runs in this process and is not counted). With
//! `MYOLOG_MATRIX_BASE_BIN` pointing at another build's `myolog`, every cell also runs that build's
//! `serve`, interleaved round by round, and the table shows medians of each side and the median of
//! the per-round new/base ratios. How to run it and every knob: docs/benchmarks.md#the-ingest-matrix.

// The shared load generator; this bench uses its setup batches only.
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use myolog_proto::v1 as pb;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_proto::v1::outcomes_client::OutcomesClient;
use myolog_server::app::SCHEMA_VERSION;
use myolog_storage::{EventLog, ExpectedVersion, LogOptions, NewEvent};
use myolog_synth::{Cohort, STUDY};
use myolog_wire as wire;
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;

/// How the batches travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// One `Ingest.Submit` stream per client, one batch after another (lock-step).
    Submit,
    /// One unary `Ingest.Append` per batch.
    Append,
}

/// What else runs against the server while it ingests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readers {
    None,
    /// One `Outcomes.Watch` subscriber of the study, draining its stream.
    Watch,
    /// `MYOLOG_MATRIX_COHORT_READERS` clients polling `Outcomes.GetCohort`.
    Cohort,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy)]
struct Cell {
    call: Call,
    streams: usize,
    events_per_request: usize,
    event_bytes: usize,
    readers: Readers,
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} |",
            match self.call {
                Call::Submit => "Submit",
                Call::Append => "Append",
            },
            self.streams,
            self.events_per_request,
            if self.event_bytes >= 1000 {
                "1 KB"
            } else {
                "300 B"
            },
            match self.readers {
                Readers::None => "-",
                Readers::Watch => "Watch",
                Readers::Cohort => "GetCohort",
            }
        )
    }
}

/// The knobs, all from the environment (see docs/benchmarks.md).
struct Settings {
    seconds: f64,
    rounds: usize,
    streams: Vec<usize>,
    events_per_request: Vec<usize>,
    event_bytes: Vec<usize>,
    calls: Vec<Call>,
    readers: Vec<Readers>,
    /// Reader cells run at these streams only (one batch size, 300 B events, Submit).
    reader_streams: Vec<usize>,
    cohort_readers: usize,
    /// Each GetCohort reader's pause between calls (a dashboard polling, not a load test of reads).
    cohort_pause_ms: u64,
    direct: bool,
    new_bin: PathBuf,
    base_bin: Option<PathBuf>,
    /// Where the logs live (a temporary directory under it per run).
    scratch: Option<PathBuf>,
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_numbers(name: &str, default: &str) -> Vec<usize> {
    env_list(name, default)
        .iter()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{name}: {s:?} is not a whole number"))
        })
        .collect()
}

impl Settings {
    fn from_env() -> Settings {
        let calls = env_list("MYOLOG_MATRIX_CALLS", "submit,append")
            .iter()
            .map(|s| match s.as_str() {
                "submit" => Call::Submit,
                "append" => Call::Append,
                other => panic!("MYOLOG_MATRIX_CALLS: {other:?} is not submit or append"),
            })
            .collect();
        let readers = env_list("MYOLOG_MATRIX_READERS", "watch,cohort")
            .iter()
            .map(|s| match s.as_str() {
                "watch" => Readers::Watch,
                "cohort" => Readers::Cohort,
                other => panic!("MYOLOG_MATRIX_READERS: {other:?} is not watch or cohort"),
            })
            .collect();
        let new_bin = std::env::var_os("MYOLOG_MATRIX_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(default_bin);
        Settings {
            seconds: std::env::var("MYOLOG_MATRIX_SECONDS")
                .ok()
                .map(|s| s.parse().expect("MYOLOG_MATRIX_SECONDS: seconds"))
                .unwrap_or(2.0),
            rounds: env_numbers("MYOLOG_MATRIX_ROUNDS", "5")[0].max(1),
            streams: env_numbers("MYOLOG_MATRIX_STREAMS", "1,4,16"),
            events_per_request: env_numbers("MYOLOG_MATRIX_BATCH", "1,10,100"),
            event_bytes: env_numbers("MYOLOG_MATRIX_EVENT_BYTES", "300,1024"),
            calls,
            readers,
            reader_streams: env_numbers("MYOLOG_MATRIX_READER_STREAMS", "1,16"),
            cohort_readers: env_numbers("MYOLOG_MATRIX_COHORT_READERS", "2")[0],
            cohort_pause_ms: env_numbers("MYOLOG_MATRIX_COHORT_PAUSE_MS", "100")[0] as u64,
            direct: std::env::var("MYOLOG_MATRIX_DIRECT").map_or(true, |v| v != "0"),
            new_bin,
            base_bin: std::env::var_os("MYOLOG_MATRIX_BASE_BIN").map(PathBuf::from),
            scratch: std::env::var_os("MYOLOG_MATRIX_DIR").map(PathBuf::from),
        }
    }

    fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for &call in &self.calls {
            for &event_bytes in &self.event_bytes {
                for &events_per_request in &self.events_per_request {
                    for &streams in &self.streams {
                        cells.push(Cell {
                            call,
                            streams,
                            events_per_request,
                            event_bytes,
                            readers: Readers::None,
                        });
                    }
                }
            }
        }
        for &readers in &self.readers {
            for &streams in &self.reader_streams {
                cells.push(Cell {
                    call: Call::Submit,
                    streams,
                    events_per_request: 10,
                    event_bytes: 300,
                    readers,
                });
            }
        }
        cells
    }
}

/// `target/release/myolog` beside this bench binary (`target/release/deps/matrix-*`).
fn default_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("bench binary path");
    exe.parent()
        .and_then(Path::parent)
        .map(|release| release.join("myolog"))
        .expect("bench binary under target/<profile>/deps")
}

/// The stream's events in order: visits `v1, v2, ...`, each the template's forms with unique ids,
/// padded to about `event_bytes` by a source audit record (as an EDC's audit trail would carry).
struct EventSource {
    template: Vec<pb::Event>,
    stream: usize,
    next: usize,
    pad: Option<pb::SourceAudit>,
}

impl EventSource {
    fn new(template: &pb::SubmitRequest, stream: usize, event_bytes: usize) -> EventSource {
        let typical = template
            .events
            .iter()
            .map(Message::encoded_len)
            .sum::<usize>()
            / template.events.len();
        let pad = (event_bytes > typical + 40).then(|| pb::SourceAudit {
            user: "edc.user.0042".into(),
            timestamp: "2026-01-15T09:30:00".into(),
            utc_offset: "Z".into(),
            reason: "x".repeat(event_bytes - typical - 40),
            ..Default::default()
        });
        EventSource {
            template: template.events.clone(),
            stream,
            next: 0,
            pad,
        }
    }

    fn batch(&mut self, events: usize) -> pb::SubmitRequest {
        let first = self.next;
        self.next += events;
        let events = (first..first + events)
            .map(|n| {
                let (visit, form) = (n / self.template.len() + 1, n % self.template.len());
                pb::Event {
                    source_audit: self.pad.clone(),
                    event_id: format!("b{}.v{visit}.{form}", self.stream),
                    subject_id: format!("B{:03}", self.stream),
                    visit_id: format!("v{visit}"),
                    ..self.template[form].clone()
                }
            })
            .collect();
        pb::SubmitRequest {
            batch_id: format!("{}/{first}", self.stream),
            events,
        }
    }
}

/// One side's measurement of one cell in one round.
#[derive(Debug, Clone, Default)]
struct Run {
    events: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time of the measured process (the server, or this process for the direct side).
    cpu: Duration,
    reader_calls: u64,
}

impl Run {
    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_us_per_event(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.events.max(1) as f64
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
    }
}

fn to_new_events(batch: &pb::SubmitRequest) -> Vec<NewEvent> {
    let events = wire::batch_from_proto(&batch.events).expect("valid synthetic batch");
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

/// CPU time (user + system) of a process so far, from `/proc/PID/stat`.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "pid (comm) ".
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks())
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

fn direct(template: &pb::SubmitRequest, cell: Cell, seconds: f64, scratch: &Path) -> Run {
    let dir = tempfile::tempdir_in(scratch).expect("tempdir");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open log");
    for batch in support::setup_batches(template, cell.streams) {
        log.append(to_new_events(&batch), "bench")
            .expect("setup append");
    }
    // Each appender makes its batches as it goes, as the gRPC clients do (the same work on the
    // same cores for every side); the direct side's CPU time therefore includes making them.
    let barrier = Arc::new(std::sync::Barrier::new(cell.streams + 1));
    let deadline = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..cell.streams)
        .map(|s| {
            let log = log.clone();
            let barrier = Arc::clone(&barrier);
            let mut source = EventSource::new(template, s, cell.event_bytes);
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let mut latencies = Vec::new();
                let mut events = 0u64;
                while start.elapsed() < deadline {
                    let batch = to_new_events(&source.batch(cell.events_per_request));
                    let n = batch.len() as u64;
                    let sent = Instant::now();
                    log.append(batch, "bench").expect("append");
                    latencies.push(sent.elapsed());
                    events += n;
                }
                (events, latencies)
            })
        })
        .collect();
    let cpu_before = process_cpu(std::process::id());
    barrier.wait();
    let start = Instant::now();
    let mut run = Run::default();
    for handle in handles {
        let (events, latencies) = handle.join().expect("appender");
        run.events += events;
        run.latencies.extend(latencies);
    }
    run.elapsed = start.elapsed();
    run.cpu = process_cpu(std::process::id()) - cpu_before;
    drop(log);
    run
}

/// A `myolog serve` child on loopback ports of its own, stopped (and its log removed) on drop.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

impl Server {
    async fn start(bin: &Path, scratch: &Path) -> Server {
        let dir = tempfile::tempdir_in(scratch).expect("tempdir");
        let port = free_port();
        let stderr = std::fs::File::create(dir.path().join("serve.log")).expect("serve.log");
        let child = Command::new(bin)
            .arg("serve")
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--data")
            .arg(dir.path().join("log"))
            // The bench is one principal with up to 16 streams and thousands of batches a second.
            .args([
                "--rate-per-principal",
                "0",
                "--max-streams-per-principal",
                "256",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let url = format!("http://127.0.0.1:{port}");
        let server = Server {
            child,
            url,
            _dir: dir,
        };
        let start = Instant::now();
        while IngestClient::connect(server.url.clone()).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} serve did not listen within 30 s",
                bin.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    fn cpu(&self) -> Duration {
        process_cpu(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends batches on one stream until the deadline; returns (events, per-batch latencies).
async fn one_stream(
    url: String,
    call: Call,
    mut source: EventSource,
    per_request: usize,
    gate: Arc<tokio::sync::Barrier>,
    deadline: Duration,
) -> (u64, Vec<Duration>) {
    let mut client = IngestClient::connect(url).await.expect("connect");
    let mut latencies = Vec::new();
    let mut events = 0u64;
    let check = |answer: &pb::SubmitResponse| {
        assert!(
            answer.rejection.is_none(),
            "rejected: {:?}",
            answer.rejection
        );
        assert!(!answer.acks.is_empty(), "an answer without acks");
    };
    match call {
        Call::Submit => {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let mut answers = client
                .submit(ReceiverStream::new(rx))
                .await
                .expect("submit")
                .into_inner();
            gate.wait().await;
            let start = Instant::now();
            while start.elapsed() < deadline {
                let batch = source.batch(per_request);
                let sent = Instant::now();
                tx.send(batch).await.expect("send");
                let answer = answers
                    .message()
                    .await
                    .expect("answer")
                    .expect("one answer per batch");
                latencies.push(sent.elapsed());
                check(&answer);
                events += answer.acks.len() as u64;
            }
        }
        Call::Append => {
            gate.wait().await;
            let start = Instant::now();
            while start.elapsed() < deadline {
                let batch = source.batch(per_request);
                let sent = Instant::now();
                let answer = client.append(batch).await.expect("append").into_inner();
                latencies.push(sent.elapsed());
                check(&answer);
                events += answer.acks.len() as u64;
            }
        }
    }
    (events, latencies)
}

async fn through_server(
    bin: &Path,
    template: &pb::SubmitRequest,
    cell: Cell,
    settings: &Settings,
    scratch: &Path,
) -> Run {
    let server = Server::start(bin, scratch).await;
    let mut setup = IngestClient::connect(server.url.clone())
        .await
        .expect("connect");
    for batch in support::setup_batches(template, cell.streams) {
        setup.append(batch).await.expect("setup");
    }
    let stop_readers = Arc::new(AtomicBool::new(false));
    let reader_calls = Arc::new(AtomicU64::new(0));
    let mut reader_tasks = Vec::new();
    match cell.readers {
        Readers::None => {}
        Readers::Watch => {
            let mut outcomes = OutcomesClient::connect(server.url.clone())
                .await
                .expect("connect");
            let mut stream = outcomes
                .watch(pb::WatchRequest {
                    study_id: STUDY.into(),
                })
                .await
                .expect("watch")
                .into_inner();
            let seen = Arc::clone(&reader_calls);
            reader_tasks.push(tokio::spawn(async move {
                while let Ok(Some(_)) = stream.message().await {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        Readers::Cohort => {
            for _ in 0..settings.cohort_readers {
                let mut outcomes = OutcomesClient::connect(server.url.clone())
                    .await
                    .expect("connect");
                let stop = Arc::clone(&stop_readers);
                let calls = Arc::clone(&reader_calls);
                let pause = Duration::from_millis(settings.cohort_pause_ms);
                reader_tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        outcomes
                            .get_cohort(pb::GetCohortRequest {
                                study_id: STUDY.into(),
                                visit_id: String::new(),
                                protocol_version: None,
                            })
                            .await
                            .expect("GetCohort");
                        calls.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(pause).await;
                    }
                }));
            }
        }
    }
    let gate = Arc::new(tokio::sync::Barrier::new(cell.streams + 1));
    let deadline = Duration::from_secs_f64(settings.seconds);
    let tasks: Vec<_> = (0..cell.streams)
        .map(|s| {
            tokio::spawn(one_stream(
                server.url.clone(),
                cell.call,
                EventSource::new(template, s, cell.event_bytes),
                cell.events_per_request,
                Arc::clone(&gate),
                deadline,
            ))
        })
        .collect();
    let watched_before = reader_calls.load(Ordering::Relaxed);
    gate.wait().await;
    let cpu_before = server.cpu();
    let start = Instant::now();
    let mut run = Run::default();
    for task in tasks {
        let (events, latencies) = task.await.expect("stream task");
        run.events += events;
        run.latencies.extend(latencies);
    }
    run.elapsed = start.elapsed();
    run.cpu = server.cpu() - cpu_before;
    run.reader_calls = reader_calls.load(Ordering::Relaxed) - watched_before;
    // Readers finish their call in flight before the server goes; a Watch stream never ends.
    stop_readers.store(true, Ordering::Relaxed);
    for task in reader_tasks {
        if cell.readers == Readers::Watch {
            task.abort();
        } else {
            task.await.expect("GetCohort reader");
        }
    }
    drop(server);
    run
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn main() {
    let settings = Settings::from_env();
    assert!(
        settings.new_bin.exists(),
        "{} not found: `cargo build --release -p myolog-cli` first, or set MYOLOG_MATRIX_BIN",
        settings.new_bin.display()
    );
    if let Some(base) = &settings.base_bin {
        assert!(
            base.exists(),
            "MYOLOG_MATRIX_BASE_BIN {} not found",
            base.display()
        );
    }
    let scratch_root = settings.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let template = Cohort::new(7, 1).visit_batch(0, "baseline");
    let cells = settings.cells();
    let mut sides: Vec<(&str, Option<&Path>)> = Vec::new();
    if settings.direct {
        sides.push(("direct", None));
    }
    sides.push(("new", Some(settings.new_bin.as_path())));
    if let Some(base) = &settings.base_bin {
        sides.push(("base", Some(base.as_path())));
    }
    println!(
        "Ingest matrix: {} cells x {} rounds x {} sides, {} s each; new = {}{}",
        cells.len(),
        settings.rounds,
        sides.len(),
        settings.seconds,
        settings.new_bin.display(),
        settings
            .base_bin
            .as_ref()
            .map(|b| format!(", base = {}", b.display()))
            .unwrap_or_default()
    );
    // results[cell][side] = one Run per round.
    let mut results: Vec<Vec<Vec<Run>>> = vec![vec![Vec::new(); sides.len()]; cells.len()];
    // Warm-up: page cache, both binaries' pages, the disk.
    for (_, bin) in &sides {
        let warm = Cell {
            call: Call::Submit,
            streams: 1,
            events_per_request: 10,
            event_bytes: 300,
            readers: Readers::None,
        };
        match bin {
            None => drop(direct(&template, warm, 0.2, &scratch_root)),
            Some(bin) => drop(runtime.block_on(through_server(
                bin,
                &template,
                warm,
                &Settings {
                    seconds: 0.2,
                    ..Settings::from_env()
                },
                &scratch_root,
            ))),
        }
    }
    for round in 0..settings.rounds {
        for (c, cell) in cells.iter().enumerate() {
            // The sides take turns going first, so none always runs on a warmer or colder disk.
            for k in 0..sides.len() {
                let s = (k + round + c) % sides.len();
                let run = match sides[s].1 {
                    None => direct(&template, *cell, settings.seconds, &scratch_root),
                    Some(bin) => runtime.block_on(through_server(
                        bin,
                        &template,
                        *cell,
                        &settings,
                        &scratch_root,
                    )),
                };
                if std::env::var_os("MYOLOG_MATRIX_DEBUG").is_some() {
                    eprintln!(
                        "round {round} {} {}: {:.0} ev/s, {:.1} us CPU/ev, p99 {:.2} ms",
                        cell.label(),
                        sides[s].0,
                        run.events_per_sec(),
                        run.cpu_us_per_event(),
                        run.percentile_ms(99.0)
                    );
                }
                results[c][s].push(run);
            }
        }
        eprintln!("round {} of {} done", round + 1, settings.rounds);
    }
    print_table(&cells, &sides, &results);
}

fn print_table(cells: &[Cell], sides: &[(&str, Option<&Path>)], results: &[Vec<Vec<Run>>]) {
    let mut header = String::from("| call | streams | ev/req | event | readers |");
    let mut rule = String::from("|---|---:|---:|---|---|");
    for (name, _) in sides {
        header.push_str(&format!(
            " {name} ev/s | {name} p50 ms | {name} p99 ms | {name} CPU µs/ev |"
        ));
        rule.push_str("---:|---:|---:|---:|");
    }
    let new = sides.iter().position(|(n, _)| *n == "new");
    let base = sides.iter().position(|(n, _)| *n == "base");
    let direct = sides.iter().position(|(n, _)| *n == "direct");
    if base.is_some() {
        header.push_str(" new/base ev/s | new/base CPU/ev |");
        rule.push_str("---:|---:|");
    }
    if direct.is_some() {
        header.push_str(" new/direct ev/s |");
        rule.push_str("---:|");
    }
    header.push_str(" reader calls (new) |");
    rule.push_str("---:|");
    println!("{header}\n{rule}");
    for (c, cell) in cells.iter().enumerate() {
        let mut line = cell.label();
        for runs in &results[c] {
            let pick = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
            line.push_str(&format!(
                " {:.0} | {:.2} | {:.2} | {:.1} |",
                pick(&Run::events_per_sec),
                pick(&|r| r.percentile_ms(50.0)),
                pick(&|r| r.percentile_ms(99.0)),
                pick(&Run::cpu_us_per_event)
            ));
        }
        // Ratios per round (the two sides of a round ran back to back), then their median.
        let ratio = |a: usize, b: usize, f: &dyn Fn(&Run) -> f64| {
            median(
                results[c][a]
                    .iter()
                    .zip(&results[c][b])
                    .map(|(x, y)| f(x) / f(y))
                    .collect(),
            )
        };
        if let (Some(n), Some(b)) = (new, base) {
            line.push_str(&format!(
                " {:.2} | {:.2} |",
                ratio(n, b, &Run::events_per_sec),
                ratio(n, b, &Run::cpu_us_per_event)
            ));
        }
        if let (Some(n), Some(d)) = (new, direct) {
            line.push_str(&format!(" {:.2} |", ratio(n, d, &Run::events_per_sec)));
        }
        let calls = new.map_or(0.0, |n| {
            median(
                results[c][n]
                    .iter()
                    .map(|r| r.reader_calls as f64)
                    .collect(),
            )
        });
        line.push_str(&format!(" {calls:.0} |"));
        println!("{line}");
    }
}
