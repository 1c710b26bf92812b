//! Wrote the small format version 1 golden log in this directory: run as an example of
//! `crates/storage` at commit 04e2f44 (`cargo run -p myolog-storage --example make_v1_golden -- DIR
//! > events.tsv`, the head on stderr), then `tar --sort=name -czf log.tar.gz -C DIR .` and the first
//! three columns of its output kept. Not built here: today's storage writes format version 2.
#![allow(clippy::unwrap_used)]
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use myolog_storage::{Clock, EventLog, ExpectedVersion, LogOptions, NewEvent};

#[derive(Debug, Default)]
struct Ticking(AtomicI64);
impl Clock for Ticking {
    fn now_unix_nanos(&self) -> i64 {
        1_767_225_600_000_000_000 + self.0.fetch_add(1, Ordering::SeqCst) * 1_000_000
    }
}

fn payload(id: &str, len: usize) -> Vec<u8> {
    let mut state = id.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |s, b| {
        (s ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn event(id: &str, stream: &str, kind: &str, len: usize) -> NewEvent {
    NewEvent {
        event_id: id.into(),
        stream_key: stream.into(),
        expected_version: ExpectedVersion::Any,
        event_type: format!("golden.v1.{kind}").into(),
        schema_version: 1,
        payload: payload(id, len),
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("log directory");
    let log = EventLog::open(
        &path,
        LogOptions {
            clock: Arc::new(Ticking::default()),
            ..LogOptions::default()
        },
    )
    .unwrap();
    let streams = [
        "study/STIR",
        "subject/STIR-001",
        "subject/STIR-002",
        "subject/STIR-003",
    ];
    log.append(
        vec![event(
            "study-registered",
            streams[0],
            "StudyRegistered",
            120,
        )],
        "admin@sponsor",
    )
    .unwrap();
    // Enrolment of three subjects in one batch.
    log.append(
        (1..=3)
            .map(|n| event(&format!("enrol-{n}"), streams[n], "SubjectEnrolled", 200))
            .collect(),
        "edc@site-1",
    )
    .unwrap();
    // Seventy visit records in one batch: more than one version 1 commit record (64 per record).
    log.append(
        (0..70)
            .map(|n| {
                event(
                    &format!("visit-{n}"),
                    streams[1 + n % 3],
                    "VisitRecorded",
                    250 + n * 3,
                )
            })
            .collect(),
        "edc@site-1",
    )
    .unwrap();
    // A retry of an acknowledged batch: answered as duplicates, nothing written.
    log.append(
        vec![event("visit-5", streams[3], "VisitRecorded", 265)],
        "edc@site-1",
    )
    .unwrap();
    // Corrections and a retraction, one event per append.
    log.append(
        vec![event("correct-visit-4", streams[2], "VisitCorrected", 260)],
        "monitor@cro",
    )
    .unwrap();
    log.append(
        vec![event("correct-visit-7", streams[2], "VisitCorrected", 260)],
        "monitor@cro",
    )
    .unwrap();
    log.append(
        vec![event("retract-visit-9", streams[1], "VisitRetracted", 40)],
        "monitor@cro",
    )
    .unwrap();
    // One event larger than 4 KiB: the log loses its small-values marker.
    log.append(
        vec![event(
            "attachment-1",
            streams[3],
            "SourceDocumentAttached",
            6000,
        )],
        "edc@site-2",
    )
    .unwrap();
    log.append(
        (0..5)
            .map(|n| event(&format!("late-{n}"), streams[n % 4], "VisitRecorded", 300))
            .collect(),
        "edc@site-2",
    )
    .unwrap();
    let head = log.head();
    assert!(log.verify().unwrap().is_intact());
    eprintln!("head {} {}", head.seq, head.hash);
    println!("seq\trecorded_at_unix_nanos\thash\tcanonical_sha256");
    for stored in log.read_stored_range(..) {
        let stored = stored.unwrap();
        println!(
            "{}\t{}\t{}\t{}",
            stored.seq,
            stored.recorded_at_unix_nanos,
            stored.hash,
            myolog_storage::canonical_hash(&stored.canonical)
        );
    }
}
