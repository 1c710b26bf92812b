//! Replay: the log read from sequence 1 up to a point (a sequence or a recorded-at time), applied to
//! a fresh [`Projection`] exactly as the service does at start-up ([`crate::decode_stored`] then
//! [`Projection::apply`]), then every outcome computed with [`crate::outcomes`]. Each outcome carries
//! its provenance: the last sequence included, the chain hash at that sequence, the algorithm ids and
//! versions it used and the engine version.
//!
//! Output order is fixed (study, subject, then the service's visit order) and every JSON object is
//! built with sorted keys, so replaying the same log twice gives byte-identical output.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use myolog_storage::{EventLog, Hash};
use serde_json::{Value, json};

use super::progress::Progress;
use super::table::write_csv_row;
use super::{AuditError, ENGINE_VERSION};
use crate::decode_stored;
use myolog_domain::event::{Event, EventBody, StudyId, SubjectId};
use myolog_projection::outcome as outcomes;
use myolog_projection::report::{
    CohortOutcomes, CohortVisit, Proportion, Summary, VisitOutcome, tis_category_key,
};
use myolog_projection::{Projection, Study, Subject};

/// The point of the log to replay up to (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Everything stored when the replay starts.
    Head,
    /// Events 1..=N. N = 0 replays nothing.
    Sequence(u64),
    /// The events recorded at or before this instant (Unix nanoseconds, server clock): the log is read
    /// in sequence order and stops at the first event recorded later.
    Time(i64),
}

/// Where an outcome came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// Last log sequence applied (0 for an empty replay).
    pub last_sequence: u64,
    /// SHA-256 chain hash of that event, hex (64 zeros for an empty replay): with `verify`, it pins
    /// every event up to `last_sequence`.
    pub chain_hash: String,
    /// Algorithm ids with versions, e.g. `doi-2004@1`, sorted.
    pub algorithms: Vec<String>,
    /// The engine (crate) version that computed the outcome.
    pub engine_version: &'static str,
    /// The study's protocol version in force at `last_sequence`, whose conventions scored the
    /// outcome (e.g. `STIR v2`); `None` for a study registered without a protocol.
    pub protocol: Option<String>,
}

/// One recomputed outcome and its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayedOutcome {
    pub outcome: VisitOutcome,
    pub provenance: Provenance,
}

/// The log up to a point, projected.
#[derive(Debug)]
pub struct Replay {
    /// The projection built from the events 1..=`last_sequence`.
    pub projection: Projection,
    /// Last sequence applied.
    pub last_sequence: u64,
    /// Chain hash of that event.
    pub chain_hash: Hash,
    /// Recorded-at of that event (Unix nanoseconds), if any event was applied.
    pub last_recorded_at: Option<i64>,
    /// The log's head when the replay started.
    pub head_sequence: u64,
}

/// Events decoded per parallel step: large enough to amortise the threads, small enough to stream.
const CHUNK: usize = 4096;

/// Subjects scored per unit of parallel work in [`Replay::write_all_outcomes`]: a few dozen
/// outcomes, small enough to spread evenly over the threads and to stream.
const SUBJECT_BLOCK: usize = 16;

/// Worker threads for decoding and scoring: the machine's parallelism, at most 8.
fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Joins every worker (none is left running) and tells whether any of them panicked.
fn join_all<T>(workers: Vec<std::thread::ScopedJoinHandle<'_, T>>) -> bool {
    workers
        .into_iter()
        .map(|worker| worker.join().is_err())
        .filter(|panicked| *panicked)
        .count()
        > 0
}

/// One chunk of the log, decoded.
#[derive(Debug, Default)]
struct DecodedChunk {
    /// Sequence, recorded-by (kept only where the projection reads it: a study lock names who
    /// set it) and the decoded event, in order.
    events: Vec<(u64, Option<String>, Event)>,
    /// Sequence, chain hash and recorded-at of the chunk's last event applied.
    last: Option<(u64, Hash, i64)>,
    /// The as-of time was reached in this chunk: nothing after it is applied.
    cut: bool,
}

type Decoded = Result<DecodedChunk, AuditError>;

/// Reads and decodes the events of `range` (stopping at the first one recorded after an as-of time).
fn read_chunk(
    log: &EventLog,
    range: std::ops::RangeInclusive<u64>,
    as_of: AsOf,
    mut events: Vec<(u64, Option<String>, Event)>,
) -> Decoded {
    events.clear();
    events.reserve(CHUNK);
    let mut chunk = DecodedChunk {
        events,
        ..DecodedChunk::default()
    };
    for stored in log.read_range(range) {
        let stored = stored?;
        if let AsOf::Time(until) = as_of
            && stored.recorded_at_unix_nanos > until
        {
            chunk.cut = true;
            break;
        }
        let event = decode_stored(&stored).map_err(|reason| AuditError::Decode {
            seq: stored.seq,
            reason,
        })?;
        chunk.last = Some((stored.seq, stored.hash, stored.recorded_at_unix_nanos));
        // Only a study lock's principal is read by the projection: the rest of the stored event is
        // freed here, before its chunk waits for its turn to be applied.
        let recorded_by =
            matches!(event.body, EventBody::StudyLocked { .. }).then_some(stored.recorded_by);
        chunk.events.push((stored.seq, recorded_by, event));
    }
    Ok(chunk)
}

/// Reads the log up to `as_of` into a fresh projection.
pub fn project(log: &EventLog, as_of: AsOf, progress: &mut Progress) -> Result<Replay, AuditError> {
    let head = log.head();
    let last = match as_of {
        AsOf::Head | AsOf::Time(_) => head.seq,
        AsOf::Sequence(seq) if seq > head.seq => {
            return Err(AuditError::BeyondHead {
                requested: seq,
                head: head.seq,
            });
        }
        AsOf::Sequence(seq) => seq,
    };
    let mut replay = Replay {
        // Sized for the events to apply (a log of a million events holds about a million ids).
        projection: Projection::with_capacity(usize::try_from(last).unwrap_or(0)),
        last_sequence: 0,
        chain_hash: Hash::default(),
        last_recorded_at: None,
        head_sequence: head.seq,
    };
    if last == 0 {
        return Ok(replay);
    }
    // Reading and decoding the events costs more than applying them, and only applying is
    // order-dependent: one worker per core claims the next chunk of sequence numbers, reads and
    // decodes it, then waits for its turn and applies it itself, so chunks are applied in sequence
    // order while the other workers read on. No thread sits between reading and applying: with one
    // worker per core, nothing else competes for the cores, and each event is allocated, applied
    // and (where the projection does not keep it) freed by one thread, which glibc's allocator
    // needs to stay fast (it serialises frees of another thread's memory behind a lock).
    let chunk_size = CHUNK as u64;
    let chunks = last.div_ceil(chunk_size);
    let turn = Mutex::new(Turn {
        next: 0,
        stopped: false,
        result: Ok(()),
        replay: &mut replay,
        progress,
    });
    let turned = Condvar::new();
    let claimed = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..parallelism())
            .map(|_| {
                scope.spawn(|| {
                    // A worker that dies unexpectedly stops the replay instead of leaving the others
                    // waiting for a turn that never comes.
                    let _stop_on_panic = StopOnPanic {
                        turn: &turn,
                        turned: &turned,
                    };
                    let mut events = Vec::new();
                    loop {
                        let index = claimed.fetch_add(1, Ordering::Relaxed);
                        if index >= chunks {
                            return;
                        }
                        let first = index * chunk_size + 1;
                        let range = first..=last.min(first + chunk_size - 1);
                        let decoded =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                read_chunk(log, range, as_of, std::mem::take(&mut events))
                            }))
                            .unwrap_or(Err(AuditError::Worker("a log reading thread panicked")));
                        let mut state = lock_turn(&turn);
                        while state.next != index && !state.stopped {
                            state = turned
                                .wait(state)
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                        }
                        if state.stopped {
                            return;
                        }
                        match decoded {
                            Ok(chunk) => events = state.apply(chunk),
                            Err(error) => state.stop(Err(error)),
                        }
                        state.next += 1;
                        drop(state);
                        turned.notify_all();
                    }
                })
            })
            .collect();
        let panicked = join_all(workers);
        let mut state = lock_turn(&turn);
        if panicked && state.result.is_ok() {
            state.result = Err(AuditError::Worker("a log reading thread panicked"));
        }
    });
    let state = turn
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (result, applied, stopped) = (state.result, state.next, state.stopped);
    result?;
    // Every chunk applied, or the as-of time reached: anything else is a lost chunk.
    if applied < chunks && !stopped {
        return Err(AuditError::Worker("a log reading thread panicked"));
    }
    // The service reports its head as "as of"; the replay reports the last event it applied.
    replay.projection.head_seq = replay.last_sequence;
    Ok(replay)
}

/// The applying side of [`project`], shared by its workers: whose turn it is and where the events go.
struct Turn<'a> {
    /// The chunk to apply next.
    next: u64,
    /// An error, a panic or the as-of time ended the replay: nothing more is applied.
    stopped: bool,
    result: Result<(), AuditError>,
    replay: &'a mut Replay,
    progress: &'a mut Progress,
}

impl Turn<'_> {
    /// Applies a decoded chunk in order; hands back its emptied vector for the next chunk.
    fn apply(&mut self, chunk: DecodedChunk) -> Vec<(u64, Option<String>, Event)> {
        let mut events = chunk.events;
        let replay = &mut *self.replay;
        let progress = &mut *self.progress;
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for (seq, recorded_by, event) in events.drain(..) {
                replay.projection.apply_owned(
                    seq,
                    event,
                    recorded_by.as_deref().unwrap_or_default(),
                );
                progress.tick();
            }
        }));
        if applied.is_err() {
            self.stop(Err(AuditError::Worker("an applying thread panicked")));
            return Vec::new();
        }
        if let Some((seq, hash, recorded_at)) = chunk.last {
            replay.last_sequence = seq;
            replay.chain_hash = hash;
            replay.last_recorded_at = Some(recorded_at);
        }
        if chunk.cut {
            self.stop(Ok(()));
        }
        events
    }

    fn stop(&mut self, result: Result<(), AuditError>) {
        self.stopped = true;
        if self.result.is_ok() {
            self.result = result;
        }
    }
}

fn lock_turn<'a, 'b>(turn: &'a Mutex<Turn<'b>>) -> std::sync::MutexGuard<'a, Turn<'b>> {
    turn.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stops the replay when a worker unwinds outside the parts that catch panics.
struct StopOnPanic<'a, 'b> {
    turn: &'a Mutex<Turn<'b>>,
    turned: &'a Condvar,
}

impl Drop for StopOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock_turn(self.turn).stop(Err(AuditError::Worker("a log reading thread panicked")));
            self.turned.notify_all();
        }
    }
}

impl Replay {
    /// Every subject x follow-up visit outcome, ordered by study, subject, then visit (date, id) —
    /// the service's own order — each with its provenance.
    pub fn outcomes(&self) -> Vec<ReplayedOutcome> {
        let subjects: Vec<_> = self
            .projection
            .studies
            .iter()
            .flat_map(|(study_id, study)| {
                study
                    .subjects
                    .iter()
                    .map(move |(subject_id, subject)| (study_id, study, subject_id, subject))
            })
            .collect();
        let score = |part: &[(&StudyId, &Study, &SubjectId, &Subject)]| {
            let mut out = Vec::new();
            for (study_id, study, subject_id, subject) in part {
                let protocol = protocol_of(study);
                for outcome in outcomes::subject_outcomes(
                    study_id,
                    study,
                    subject_id,
                    subject,
                    self.last_sequence,
                ) {
                    let provenance = self.provenance(&outcome, protocol.clone());
                    out.push(ReplayedOutcome {
                        outcome,
                        provenance,
                    });
                }
            }
            out
        };
        let threads = parallelism();
        if threads <= 1 || subjects.len() < 64 {
            return score(&subjects);
        }
        // Subjects are independent: score contiguous slices in parallel and concatenate in order,
        // so the output is the same as the sequential one.
        let size = subjects.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = subjects
                .chunks(size)
                .map(|part| scope.spawn(move || score(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|handle| handle.join().unwrap_or_default())
                .collect()
        })
    }

    /// Every subject of every study, in output order.
    fn subjects(&self) -> Vec<(&StudyId, &Study, &SubjectId, &Subject)> {
        self.projection
            .studies
            .iter()
            .flat_map(|(study_id, study)| {
                study
                    .subjects
                    .iter()
                    .map(move |(subject_id, subject)| (study_id, study, subject_id, subject))
            })
            .collect()
    }

    /// Writes every outcome in `format`: the same bytes as `write_outcomes(&self.outcomes(), ..)`
    /// (what `myolog replay` prints), but without holding every outcome in memory (a million-event
    /// log has about 10^5, a few KiB each). Blocks of subjects are scored and rendered on every core
    /// and written in order as they complete. Returns the number of outcomes written.
    pub fn write_all_outcomes(
        &self,
        format: Format,
        out: &mut impl Write,
    ) -> Result<u64, AuditError> {
        if format == Format::Csv {
            write_csv_row(out, &CSV_COLUMNS)?;
        }
        let subjects = self.subjects();
        let blocks: Vec<_> = subjects.chunks(SUBJECT_BLOCK).collect();
        let chain_hash = self.chain_hash.to_hex();
        let render = |block: &[(&StudyId, &Study, &SubjectId, &Subject)], mut bytes: Vec<u8>| {
            bytes.clear();
            let mut records = 0u64;
            for (study_id, study, subject_id, subject) in block {
                let protocol = protocol_of(study);
                for outcome in outcomes::subject_outcomes(
                    study_id,
                    study,
                    subject_id,
                    subject,
                    self.last_sequence,
                ) {
                    let replayed = ReplayedOutcome {
                        provenance: Provenance {
                            last_sequence: self.last_sequence,
                            chain_hash: chain_hash.clone(),
                            algorithms: algorithms(&outcome),
                            engine_version: ENGINE_VERSION,
                            protocol: protocol.clone(),
                        },
                        outcome,
                    };
                    match format {
                        Format::Jsonl => write_jsonl_record(&replayed, &mut bytes),
                        // Writing into a `Vec` cannot fail.
                        Format::Csv => {
                            let _ = write_csv_row(&mut bytes, &csv_record(&replayed));
                        }
                    }
                    records += 1;
                }
            }
            (bytes, records)
        };
        let threads = parallelism();
        if threads <= 1 || blocks.len() < 2 {
            let (mut bytes, mut total) = (Vec::new(), 0);
            for block in blocks {
                let records;
                (bytes, records) = render(block, bytes);
                total += records;
                out.write_all(&bytes)?;
            }
            out.flush()?;
            return Ok(total);
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let mut total = 0;
        // Written blocks' buffers go back to the workers: a fresh half-megabyte buffer per block
        // (mapped, faulted in, freed by another thread) cost more than filling it.
        let (recycle_tx, recycle_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(threads * 8);
        let recycle_rx = std::sync::Mutex::new(recycle_rx);
        std::thread::scope(|scope| -> Result<(), AuditError> {
            // Bounded: a slow writer holds back the scoring instead of buffering the whole output.
            let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, (Vec<u8>, u64))>(threads * 4);
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let tx = tx.clone();
                    let (next, stop, blocks, render, recycle_rx) =
                        (&next, &stop, &blocks, &render, &recycle_rx);
                    scope.spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(block) = blocks.get(index) else {
                                return;
                            };
                            let buffer = recycle_rx
                                .lock()
                                .ok()
                                .and_then(|recycled| recycled.try_recv().ok())
                                .unwrap_or_default();
                            if tx.send((index, render(block, buffer))).is_err() {
                                return;
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            // Blocks finish out of order: keep the early ones until their predecessors are written.
            let mut pending = BTreeMap::new();
            let mut written = 0;
            let mut result: Result<(), AuditError> = Ok(());
            for (index, rendered) in &rx {
                pending.insert(index, rendered);
                while let Some((bytes, records)) = pending.remove(&written) {
                    total += records;
                    if let Err(error) = out.write_all(&bytes) {
                        result = Err(error.into());
                        break;
                    }
                    written += 1;
                    // A full return channel just lets this buffer go.
                    let _ = recycle_tx.try_send(bytes);
                }
                if result.is_err() {
                    break;
                }
            }
            // On a write error the workers stop at their next block or send.
            stop.store(true, Ordering::Relaxed);
            drop(rx);
            let panicked = join_all(workers);
            result?;
            if panicked || written != blocks.len() {
                return Err(AuditError::Worker("a scoring thread panicked"));
            }
            Ok(())
        })?;
        out.flush()?;
        Ok(total)
    }

    /// Cohort statistics per study, in study order.
    pub fn cohorts(&self) -> Vec<CohortOutcomes> {
        self.projection
            .studies
            .iter()
            .map(|(id, study)| outcomes::cohort(id, study, None, self.last_sequence))
            .collect()
    }

    fn provenance(&self, outcome: &VisitOutcome, protocol: Option<String>) -> Provenance {
        Provenance {
            last_sequence: self.last_sequence,
            chain_hash: self.chain_hash.to_hex(),
            algorithms: algorithms(outcome),
            engine_version: ENGINE_VERSION,
            protocol,
        }
    }
}

/// The protocol version in force in a replayed study, as an outcome's provenance names it.
fn protocol_of(study: &Study) -> Option<String> {
    outcomes::protocol_in_force(study).map(|protocol| protocol.reference().to_string())
}

/// Every algorithm id of an outcome's scoring result, sorted and unique.
pub fn algorithms(outcome: &VisitOutcome) -> Vec<String> {
    outcome
        .algorithms()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// `none`, `minimal`, `moderate`, `major`; empty when not evaluable.
pub fn tis_category(outcome: &VisitOutcome) -> &'static str {
    outcome.tis_category().map_or("", tis_category_key)
}

fn clinical_date(outcome: &VisitOutcome) -> String {
    outcome
        .clinical_date
        .map(|date| date.to_string())
        .unwrap_or_default()
}

/// Appends one outcome as a JSON line: the sorted-key object of the service's summary fields,
/// the full scoring result and the provenance, written field by field in
/// sorted-key order rather than through a `Value` tree (which cost more than scoring the outcome).
/// The scoring result is serialised in its own field order, as the service's `result_json` is: an
/// auditor can compare it byte for byte with what the service answered, and re-sorting its keys was
/// a fifth of a replay's work. `tests::records_match_to_json_whatever_is_absent` holds it to all that.
pub fn write_jsonl_record(replayed: &ReplayedOutcome, out: &mut Vec<u8>) {
    // Serialising strings, numbers and string lists into a `Vec` cannot fail.
    fn put<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, key: &str, value: &T) {
        out.extend_from_slice(key.as_bytes());
        let _ = serde_json::to_writer(&mut *out, value);
    }
    let o = &replayed.outcome;
    let p = &replayed.provenance;
    put(out, "{\"baseline_visit_id\":", o.baseline_visit_id.as_str());
    match o.cdasi() {
        Some(c) => {
            put(out, ",\"cdasi\":{\"activity_change\":", &c.activity_change);
            put(out, ",\"baseline_activity\":", &c.baseline_activity);
            put(out, ",\"followup_activity\":", &c.followup_activity);
            put(out, ",\"mcid_reached\":", &c.mcid_reached);
            out.push(b'}');
        }
        None => out.extend_from_slice(b",\"cdasi\":null"),
    }
    put(out, ",\"clinical_date\":", &clinical_date(o));
    put(out, ",\"doi\":{\"algorithm\":", o.result.doi.algorithm);
    put(out, ",\"improved\":", &o.doi_improved());
    put(out, ",\"status\":", o.doi_status());
    put(out, ",\"worsened\":", &o.doi_worsened());
    out.push(b'}');
    put(out, ",\"provenance\":{\"algorithms\":", &p.algorithms);
    put(out, ",\"chain_hash\":", &p.chain_hash);
    put(out, ",\"engine_version\":", p.engine_version);
    put(out, ",\"last_sequence\":", &p.last_sequence);
    put(out, ",\"protocol\":", &p.protocol);
    put(out, "},\"result\":", &o.result);
    put(out, ",\"study_id\":", o.study_id.as_str());
    put(out, ",\"subject_id\":", o.subject_id.as_str());
    put(out, ",\"tis\":{\"algorithm\":", o.result.tis.algorithm);
    let category = tis_category(o);
    put(
        out,
        ",\"category\":",
        &(!category.is_empty()).then_some(category),
    );
    put(out, ",\"evaluable\":", &o.tis_evaluable());
    put(out, ",\"missing\":", &o.tis_missing());
    let score = o.tis_score();
    put(out, ",\"score\":", &(!score.is_empty()).then_some(&score));
    out.push(b'}');
    put(out, ",\"visit_id\":", o.visit_id.as_str());
    out.extend_from_slice(b"}\n");
}

/// Output formats of `replay` and `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines: one object per line.
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// The CSV columns of a replay.
pub const CSV_COLUMNS: [&str; 22] = [
    "study_id",
    "subject_id",
    "visit_id",
    "baseline_visit_id",
    "clinical_date",
    "doi_status",
    "doi_improved",
    "doi_worsened",
    "doi_algorithm",
    "tis_evaluable",
    "tis_score",
    "tis_category",
    "tis_missing",
    "tis_algorithm",
    "cdasi_baseline_activity",
    "cdasi_followup_activity",
    "cdasi_activity_change",
    "cdasi_mcid_reached",
    "last_sequence",
    "chain_hash",
    "algorithms",
    "engine_version",
];

fn csv_record(replayed: &ReplayedOutcome) -> Vec<String> {
    let o = &replayed.outcome;
    let p = &replayed.provenance;
    let cdasi = o.cdasi();
    let text = |v: Option<String>| v.unwrap_or_default();
    vec![
        o.study_id.to_string(),
        o.subject_id.to_string(),
        o.visit_id.to_string(),
        o.baseline_visit_id.to_string(),
        clinical_date(o),
        o.doi_status().to_string(),
        o.doi_improved().join(";"),
        o.doi_worsened().join(";"),
        o.result.doi.algorithm.to_string(),
        o.tis_evaluable().to_string(),
        o.tis_score(),
        tis_category(o).to_string(),
        o.tis_missing().join(";"),
        o.result.tis.algorithm.to_string(),
        text(
            cdasi
                .and_then(|c| c.baseline_activity)
                .map(|v| v.to_string()),
        ),
        text(
            cdasi
                .and_then(|c| c.followup_activity)
                .map(|v| v.to_string()),
        ),
        text(cdasi.and_then(|c| c.activity_change).map(|v| v.to_string())),
        text(cdasi.map(|c| c.mcid_reached.to_string())),
        p.last_sequence.to_string(),
        p.chain_hash.clone(),
        p.algorithms.join(";"),
        p.engine_version.to_string(),
    ]
}

/// Writes replayed outcomes in `format`.
pub fn write_outcomes(
    outcomes: &[ReplayedOutcome],
    format: Format,
    out: &mut impl Write,
) -> Result<(), AuditError> {
    match format {
        Format::Jsonl => {
            let mut line = Vec::new();
            for replayed in outcomes {
                line.clear();
                write_jsonl_record(replayed, &mut line);
                out.write_all(&line)?;
            }
        }
        Format::Csv => {
            write_csv_row(out, &CSV_COLUMNS)?;
            for replayed in outcomes {
                write_csv_row(out, &csv_record(replayed))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The CSV columns of the cohort statistics.
pub const COHORT_COLUMNS: [&str; 26] = [
    "study_id",
    "enrolled",
    "visit_id",
    "arm",
    "subjects",
    "doi_responders",
    "doi_evaluable",
    "doi_ci_low",
    "doi_ci_high",
    "tis_evaluable",
    "tis_none",
    "tis_minimal",
    "tis_moderate",
    "tis_major",
    "cdasi_pairs",
    "cdasi_baseline_mean",
    "cdasi_baseline_sd",
    "cdasi_visit_mean",
    "cdasi_visit_sd",
    "cdasi_change_mean",
    "cdasi_change_sd",
    "cdasi_paired_t_p",
    "cdasi_wilcoxon_p",
    "cdasi_mcid_reached",
    "last_sequence",
    "chain_hash",
];

fn proportion_json(p: Option<&Proportion>) -> Value {
    p.map_or(Value::Null, |p| {
        json!({"responders": p.responders, "total": p.total, "ci_low": p.ci_low, "ci_high": p.ci_high})
    })
}

fn summary_json(s: Option<&Summary>) -> Value {
    s.map_or(Value::Null, |s| {
        json!({"n": s.n, "mean": s.mean, "sd": s.sd, "median": s.median, "q1": s.q1, "q3": s.q3})
    })
}

/// Writes the cohort statistics: per study x follow-up visit, the row of every subject (`arm`
/// empty), then one row per arm with data at that visit (GetCohort's `CohortVisit.arms`: protocol
/// order; without a protocol, the arm labels as enrolled). An arm row's `enrolled` counts the
/// subjects enrolled on that arm.
pub fn write_cohorts(
    replay: &Replay,
    format: Format,
    out: &mut impl Write,
) -> Result<(), AuditError> {
    let hash = replay.chain_hash.to_hex();
    if format == Format::Csv {
        write_csv_row(out, &COHORT_COLUMNS)?;
    }
    for (study_id, study) in &replay.projection.studies {
        let cohort = outcomes::cohort(study_id, study, None, replay.last_sequence);
        let mut enrolled_on: BTreeMap<&str, u32> = BTreeMap::new();
        for arm in study.subjects.values().filter_map(|s| study.arm_of(s)) {
            *enrolled_on.entry(arm).or_default() += 1;
        }
        for pooled in &cohort.visits {
            let rows = std::iter::once((cohort.enrolled, pooled)).chain(
                pooled
                    .arms
                    .iter()
                    .map(|arm| (enrolled_on.get(arm.arm.as_str()).copied().unwrap_or(0), arm)),
            );
            for (enrolled, visit) in rows {
                let row = CohortRow {
                    study_id: &cohort.study_id,
                    enrolled,
                    visit,
                };
                row.write(format, replay.last_sequence, &hash, out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// One record of [`write_cohorts`]: a study's statistics at one visit, over every subject or (with
/// `visit.arm` set) over one arm's.
struct CohortRow<'a> {
    study_id: &'a str,
    enrolled: u32,
    visit: &'a CohortVisit,
}

impl CohortRow<'_> {
    fn write(
        &self,
        format: Format,
        last_sequence: u64,
        hash: &str,
        out: &mut impl Write,
    ) -> Result<(), AuditError> {
        let v = self.visit;
        let tis = v.tis.unwrap_or_default();
        let cdasi = v.cdasi_activity.clone().unwrap_or_default();
        match format {
            Format::Jsonl => {
                let record = json!({
                    "study_id": self.study_id,
                    "enrolled": self.enrolled,
                    "visit_id": v.visit_id,
                    "arm": v.arm,
                    "subjects": v.subjects,
                    "doi_responders": proportion_json(v.doi_responders.as_ref()),
                    "tis": {
                        "evaluable": tis.evaluable,
                        "none": tis.none,
                        "minimal": tis.minimal,
                        "moderate": tis.moderate,
                        "major": tis.major,
                        "at_least_minimal": proportion_json(tis.at_least_minimal.as_ref()),
                    },
                    "cdasi_activity": {
                        "n": cdasi.n,
                        "baseline": summary_json(cdasi.baseline.as_ref()),
                        "visit": summary_json(cdasi.visit.as_ref()),
                        "change": summary_json(cdasi.change.as_ref()),
                        "paired_t_p": cdasi.paired_t_p,
                        "wilcoxon_p": cdasi.wilcoxon_p,
                        "wilcoxon_method": cdasi.wilcoxon_method,
                    },
                    "cdasi_mcid": proportion_json(v.cdasi_mcid.as_ref()),
                    "provenance": {
                        "last_sequence": last_sequence,
                        "chain_hash": hash,
                        "engine_version": ENGINE_VERSION,
                    },
                });
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
            Format::Csv => {
                let doi = v.doi_responders.unwrap_or_default();
                let mean_sd = |s: Option<&Summary>| {
                    s.filter(|s| s.n > 0)
                        .map_or((String::new(), String::new()), |s| {
                            (s.mean.to_string(), s.sd.to_string())
                        })
                };
                let (bm, bs) = mean_sd(cdasi.baseline.as_ref());
                let (vm, vs) = mean_sd(cdasi.visit.as_ref());
                let (cm, cs) = mean_sd(cdasi.change.as_ref());
                let p = |p: Option<f64>| p.map(|p| p.to_string()).unwrap_or_default();
                let record = vec![
                    self.study_id.to_string(),
                    self.enrolled.to_string(),
                    v.visit_id.clone(),
                    v.arm.clone(),
                    v.subjects.to_string(),
                    doi.responders.to_string(),
                    doi.total.to_string(),
                    doi.ci_low.to_string(),
                    doi.ci_high.to_string(),
                    tis.evaluable.to_string(),
                    tis.none.to_string(),
                    tis.minimal.to_string(),
                    tis.moderate.to_string(),
                    tis.major.to_string(),
                    cdasi.n.to_string(),
                    bm,
                    bs,
                    vm,
                    vs,
                    cm,
                    cs,
                    p(cdasi.paired_t_p),
                    p(cdasi.wilcoxon_p),
                    v.cdasi_mcid
                        .map(|m| m.responders.to_string())
                        .unwrap_or_default(),
                    last_sequence.to_string(),
                    hash.to_string(),
                ];
                write_csv_row(out, &record)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// One outcome as a JSON object (sorted keys): the service's summary fields, the full scoring result
    /// and the provenance.
    fn to_json(replayed: &ReplayedOutcome) -> Value {
        let o = &replayed.outcome;
        let p = &replayed.provenance;
        let score = o.tis_score();
        let category = tis_category(o);
        json!({
            "study_id": o.study_id.as_str(),
            "subject_id": o.subject_id.as_str(),
            "visit_id": o.visit_id.as_str(),
            "baseline_visit_id": o.baseline_visit_id.as_str(),
            "clinical_date": clinical_date(o),
            "doi": {
                "status": o.doi_status(),
                "improved": o.doi_improved(),
                "worsened": o.doi_worsened(),
                "algorithm": o.result.doi.algorithm,
            },
            "tis": {
                "evaluable": o.tis_evaluable(),
                "score": (!score.is_empty()).then_some(&score),
                "category": (!category.is_empty()).then_some(category),
                "missing": o.tis_missing(),
                "algorithm": o.result.tis.algorithm,
            },
            "cdasi": o.cdasi().map(|c| json!({
                "baseline_activity": c.baseline_activity,
                "followup_activity": c.followup_activity,
                "activity_change": c.activity_change,
                "mcid_reached": c.mcid_reached,
            })),
            "result": serde_json::from_str::<Value>(&myolog_wire::outcome::result_json(&o.result))
                .unwrap_or(Value::Null),
            "provenance": {
                "last_sequence": p.last_sequence,
                "chain_hash": p.chain_hash,
                "algorithms": p.algorithms,
                "engine_version": p.engine_version,
                "protocol": p.protocol,
            },
        })
    }

    use myolog_storage::{ExpectedVersion, LogOptions, NewEvent};
    use myolog_synth::Cohort;

    /// A log of the synthetic cohort stored as the service stores it: `subjects` subjects, enough
    /// for several read chunks and scoring blocks.
    fn cohort_log(dir: &std::path::Path, subjects: usize) -> EventLog {
        crate::test_log::cohort_log(&dir.join("log"), &Cohort::new(2017, subjects));
        EventLog::open(dir.join("log"), LogOptions::default()).expect("log opens")
    }

    /// What `myolog replay` printed before it streamed: the outcomes collected, then each one's
    /// record, one after the other.
    fn collected(replay: &Replay, format: Format) -> Vec<u8> {
        let outcomes = replay.outcomes();
        let mut out = Vec::new();
        match format {
            Format::Jsonl => {
                for replayed in &outcomes {
                    write_jsonl_record(replayed, &mut out);
                }
            }
            Format::Csv => write_outcomes(&outcomes, format, &mut out).expect("csv"),
        }
        out
    }

    #[test]
    fn streamed_outcomes_are_the_bytes_of_the_collected_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        // 130 subjects: about 4800 events (two read chunks), nine scoring blocks.
        let log = cohort_log(dir.path(), 130);
        let head = log.head().seq;
        assert!(head > CHUNK as u64, "{head} events");
        let chunk = CHUNK as u64;
        for as_of in [
            AsOf::Head,
            AsOf::Sequence(1),
            AsOf::Sequence(chunk),
            AsOf::Sequence(chunk + 1),
            AsOf::Sequence(head / 2),
            AsOf::Sequence(0),
        ] {
            let replay = project(&log, as_of, &mut Progress::hidden()).expect("replay");
            let expected_last = match as_of {
                AsOf::Sequence(seq) => seq,
                _ => head,
            };
            assert_eq!(replay.last_sequence, expected_last, "{as_of:?}");
            for format in [Format::Jsonl, Format::Csv] {
                let mut streamed = Vec::new();
                let records = replay
                    .write_all_outcomes(format, &mut streamed)
                    .expect("write");
                assert_eq!(records, replay.outcomes().len() as u64, "{as_of:?}");
                let expected = collected(&replay, format);
                assert_eq!(
                    String::from_utf8_lossy(&streamed),
                    String::from_utf8_lossy(&expected),
                    "{as_of:?} {format:?}"
                );
                let mut written = Vec::new();
                write_outcomes(&replay.outcomes(), format, &mut written).expect("write");
                assert_eq!(written, expected, "{as_of:?} {format:?}");
            }
        }
    }

    /// The reference the parallel projection must equal: every stored event decoded and applied
    /// in sequence order on one thread, stopping at `until` (a recorded-at time) if given.
    fn applied_in_order(log: &EventLog, until: Option<i64>) -> Replay {
        let head = log.head();
        let mut replay = Replay {
            projection: Projection::with_capacity(0),
            last_sequence: 0,
            chain_hash: Hash::default(),
            last_recorded_at: None,
            head_sequence: head.seq,
        };
        for stored in log.read_range(1..=head.seq) {
            let stored = stored.expect("read");
            if until.is_some_and(|until| stored.recorded_at_unix_nanos > until) {
                break;
            }
            let event = decode_stored(&stored).expect("decodes");
            replay
                .projection
                .apply_owned(stored.seq, event, &stored.recorded_by);
            replay.last_sequence = stored.seq;
            replay.chain_hash = stored.hash;
            replay.last_recorded_at = Some(stored.recorded_at_unix_nanos);
        }
        replay.projection.head_seq = replay.last_sequence;
        replay
    }

    #[test]
    fn the_parallel_projection_applies_every_event_in_sequence_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        // About 4800 events: two read chunks, so the workers take turns.
        let log = cohort_log(dir.path(), 130);
        let head = log.head().seq;
        assert!(head > CHUNK as u64, "{head} events");
        let recorded_at = |seq: u64| {
            log.get(seq)
                .expect("read")
                .expect("stored")
                .recorded_at_unix_nanos
        };
        // As of the head, and as of times that cut inside the first and the second chunk.
        let cuts = [
            None,
            Some(recorded_at(100)),
            Some(recorded_at(CHUNK as u64 + 300)),
        ];
        for until in cuts {
            let as_of = until.map_or(AsOf::Head, AsOf::Time);
            let replay = project(&log, as_of, &mut Progress::hidden()).expect("replay");
            let expected = applied_in_order(&log, until);
            assert!(expected.last_sequence > 0, "{as_of:?}");
            assert_eq!(
                (
                    replay.last_sequence,
                    replay.chain_hash,
                    replay.last_recorded_at
                ),
                (
                    expected.last_sequence,
                    expected.chain_hash,
                    expected.last_recorded_at
                ),
                "{as_of:?}"
            );
            assert_eq!(
                replay.projection.head_seq, expected.projection.head_seq,
                "{as_of:?}"
            );
            assert_eq!(
                collected(&replay, Format::Jsonl),
                collected(&expected, Format::Jsonl),
                "{as_of:?}"
            );
        }

        // An undecodable event in the second chunk fails the replay naming it; up to the event
        // before it, the replay works.
        let bad = log
            .append(
                vec![NewEvent {
                    event_id: "not-protobuf".into(),
                    stream_key: "study/STIR".into(),
                    expected_version: ExpectedVersion::Any,
                    event_type: "Garbage".into(),
                    schema_version: myolog_wire::stored::SCHEMA_VERSION,
                    payload: vec![0xff; 7],
                }],
                "test",
            )
            .expect("the log stores opaque payloads")[0]
            .seq;
        match project(&log, AsOf::Head, &mut Progress::hidden()) {
            Err(AuditError::Decode { seq, .. }) => assert_eq!(seq, bad),
            other => panic!(
                "expected a decode error at {bad}, got {:?}",
                other.map(|r| r.last_sequence)
            ),
        }
        let before = project(&log, AsOf::Sequence(bad - 1), &mut Progress::hidden())
            .expect("replay before the bad event");
        assert_eq!(before.last_sequence, bad - 1);
    }

    #[test]
    fn records_match_to_json_whatever_is_absent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = cohort_log(dir.path(), 3);
        let replay = project(&log, AsOf::Head, &mut Progress::hidden()).expect("replay");
        let outcomes = replay.outcomes();
        assert!(!outcomes.is_empty());
        let mut variants = Vec::new();
        for replayed in outcomes {
            let mut no_cdasi = replayed.clone();
            no_cdasi.outcome.result.cdasi = None;
            no_cdasi.provenance.protocol = None;
            let mut not_evaluable = replayed.clone();
            not_evaluable.outcome.result.tis.status = myolog_scoring::tis::TisStatus::NotEvaluable;
            not_evaluable.outcome.result.tis.score = None;
            not_evaluable.outcome.result.tis.category = None;
            variants.extend([replayed, no_cdasi, not_evaluable]);
        }
        for replayed in variants {
            let mut line = Vec::new();
            write_jsonl_record(&replayed, &mut line);
            let text = String::from_utf8(line).expect("UTF-8");
            let record = text.strip_suffix('\n').expect("one line");
            assert!(!record.contains('\n'), "{record}");
            let parsed: Value = serde_json::from_str(record).expect("a JSON object");
            assert_eq!(parsed, to_json(&replayed), "{record}");
            // Every key but the result's is sorted: the line is `to_json` with the result's bytes,
            // which are the service's `result_json`.
            let verbatim = myolog_wire::outcome::result_json(&replayed.outcome.result);
            let mut sorted = serde_json::to_string(&to_json(&replayed)).expect("json");
            let canonical = serde_json::to_string(&parsed["result"]).expect("json");
            sorted = sorted.replacen(
                &format!("\"result\":{canonical}"),
                &format!("\"result\":{verbatim}"),
                1,
            );
            assert_eq!(record, sorted);
        }
    }

    /// The typed list of algorithm ids is every `"algorithm"` the result's JSON names, and nothing else.
    #[test]
    fn algorithms_are_every_algorithm_the_result_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = cohort_log(dir.path(), 3);
        let replay = project(&log, AsOf::Head, &mut Progress::hidden()).expect("replay");
        for replayed in replay.outcomes() {
            let json = serde_json::to_value(&replayed.outcome.result).expect("json");
            let mut named = BTreeSet::new();
            collect_algorithms(&json, &mut named);
            assert_eq!(
                algorithms(&replayed.outcome),
                named.into_iter().collect::<Vec<_>>()
            );
            assert!(
                replayed
                    .provenance
                    .algorithms
                    .contains(&"doi-2004@1".to_string())
            );
        }
    }

    fn collect_algorithms(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("algorithm", Value::String(id)) => {
                            out.insert(id.clone());
                        }
                        _ => collect_algorithms(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_algorithms(item, out)),
            _ => {}
        }
    }
}
