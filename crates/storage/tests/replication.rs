//! Copying a log event for event: `read_stored_range` on the original, `append_replicated` on the
//! copy. The copy must serve, replay and verify exactly like the original; an event that does not
//! chain onto the copy's head is refused with its sequence and writes nothing; and a copy killed
//! at any moment reopens as a verified prefix of the original holding every acknowledged batch.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{event, open};
use myolog_storage::format::{EventFields, encode_event};
use myolog_storage::{
    EventLog, ExpectedVersion, Hash, Refusal, ReplicationError, StorageError, StoredEvent,
};

/// An original log: several streams, batches of several sizes, each batch its own recorded-at,
/// one payload large enough to be stored in a blob file by sled.
fn original(path: &Path, batches: usize) -> EventLog {
    let log = open(path);
    for batch in 0..batches {
        let size = 1 + batch % 7;
        let events = (0..size)
            .map(|n| {
                let mut new = event(
                    &format!("b{batch}-e{n}"),
                    &format!("stream-{}", (batch + n) % 5),
                    ExpectedVersion::Any,
                );
                if batch == 3 && n == 0 {
                    new.payload = vec![7; 200 * 1024];
                }
                new
            })
            .collect();
        log.append(events, &format!("principal-{}", batch % 3))
            .unwrap();
    }
    log
}

fn stored(log: &EventLog, range: impl std::ops::RangeBounds<u64>) -> Vec<StoredEvent> {
    log.read_stored_range(range)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn copy_in_batches(source: &EventLog, target: &EventLog, batch: usize) {
    let all = stored(source, ..);
    for chunk in all.chunks(batch) {
        let head = target.append_replicated(chunk).unwrap();
        assert_eq!(head.seq, chunk.last().unwrap().seq);
        assert_eq!(head.hash, chunk.last().unwrap().hash);
    }
}

#[test]
fn a_copy_serves_replays_and_verifies_exactly_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let source = original(&dir.path().join("source"), 40);
    let copy_path = dir.path().join("copy");
    {
        let copy = open(&copy_path);
        copy_in_batches(&source, &copy, 13);
    }
    // Reopened, so the indexes come from the commit records the replicated append wrote.
    let copy = common::reopen(&copy_path);
    assert_eq!(copy.head(), source.head());
    let original_events: Vec<_> = source.read_range(..).map(Result::unwrap).collect();
    let copied_events: Vec<_> = copy.read_range(..).map(Result::unwrap).collect();
    assert_eq!(copied_events, original_events);
    assert_eq!(stored(&copy, ..), stored(&source, ..));
    let report = copy.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, source.head().seq);
    for stream in 0..5 {
        let key = format!("stream-{stream}");
        assert_eq!(
            copy.stream_version(&key).unwrap(),
            source.stream_version(&key).unwrap()
        );
        let copied: Vec<_> = copy.read_stream(&key, 1).map(Result::unwrap).collect();
        let original: Vec<_> = source.read_stream(&key, 1).map(Result::unwrap).collect();
        assert_eq!(copied, original);
    }
    assert_eq!(
        copy.get_by_event_id("b17-e2").unwrap(),
        source.get_by_event_id("b17-e2").unwrap()
    );
    // The indexes are whole: a retry of an original event is a duplicate with its original seq,
    // and optimistic concurrency sees the copied stream versions.
    let original_event = source.get_by_event_id("b5-e1").unwrap().unwrap();
    let retry = copy
        .append(
            vec![event(
                "b5-e1",
                &original_event.stream_key,
                ExpectedVersion::Any,
            )],
            "someone",
        )
        .unwrap();
    assert!(retry[0].duplicate);
    assert_eq!(retry[0].seq, original_event.seq);
    let version = copy.stream_version("stream-2").unwrap();
    let next = copy
        .append(
            vec![event("new", "stream-2", ExpectedVersion::Exactly(version))],
            "someone",
        )
        .unwrap();
    assert_eq!(next[0].seq, source.head().seq + 1);
    assert_eq!(next[0].stream_version, version + 1);
    assert!(copy.verify().unwrap().is_intact());
}

/// An event chained onto `head` with the given fields; `prev` is its previous hash.
fn forged(seq: u64, event_id: &str, stream_version: u64, prev: Hash) -> StoredEvent {
    let payload = common::payload_for(event_id);
    let (value, hash) = encode_event(&EventFields {
        seq,
        stream_key: "stream-0",
        stream_version,
        event_id,
        event_type: "test.v1.Thing",
        schema_version: 1,
        payload: &payload,
        recorded_at_unix_nanos: 1_767_225_600_000_000_000,
        recorded_by: "forger",
        prev_hash: prev,
    });
    StoredEvent::from_canonical(value[..value.len() - 32].to_vec(), hash).unwrap()
}

fn refusal(result: Result<myolog_storage::Head, ReplicationError>) -> (u64, Refusal) {
    match result {
        Err(ReplicationError::Refused { seq, reason }) => (seq, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_event_that_does_not_chain_onto_the_head_is_refused_by_sequence_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let source = original(&dir.path().join("source"), 6);
    let all = stored(&source, ..);
    let copy = open(&dir.path().join("copy"));
    copy.append_replicated(&all[..5]).unwrap();
    let head = copy.head();

    // A gap: event 7 offered at head 5.
    let (seq, reason) = refusal(copy.append_replicated(&all[6..8]));
    assert_eq!((seq, reason), (7, Refusal::NotNext { head: 5 }));
    // A replay of what the copy already has.
    let (seq, _) = refusal(copy.append_replicated(&all[4..6]));
    assert_eq!(seq, 5);

    // Altered content: one payload byte, hash as stated. Refused in the middle of a batch whose
    // first event is fine: nothing of the batch is written.
    let mut altered = all[5..8].to_vec();
    let at = altered[1].canonical.len() - 60;
    altered[1].canonical[at] ^= 1;
    let (seq, reason) = refusal(copy.append_replicated(&altered));
    assert_eq!(seq, 7);
    assert!(matches!(reason, Refusal::HashMismatch { .. }), "{reason}");
    assert_eq!(copy.head(), head);

    // A stated hash that is not the event's.
    let mut wrong_hash = all[5..6].to_vec();
    wrong_hash[0].hash.0[0] ^= 1;
    let (seq, reason) = refusal(copy.append_replicated(&wrong_hash));
    assert_eq!(seq, 6);
    assert!(matches!(reason, Refusal::HashMismatch { .. }), "{reason}");

    // A stated previous hash or recorded-at that the canonical bytes do not carry.
    let mut wrong_field = all[5..6].to_vec();
    wrong_field[0].recorded_at_unix_nanos += 1;
    let (seq, reason) = refusal(copy.append_replicated(&wrong_field));
    assert_eq!(
        (seq, reason),
        (
            6,
            Refusal::FieldDisagrees {
                field: "recorded-at"
            }
        )
    );

    // Correctly hashed, but chained onto another history.
    let other_history = forged(6, "fresh", 1, Hash([9; 32]));
    let (seq, reason) = refusal(copy.append_replicated(&[other_history]));
    assert_eq!(seq, 6);
    assert!(
        matches!(reason, Refusal::PrevHashMismatch { .. }),
        "{reason}"
    );

    // Correctly chained, but reusing an event id, or skipping a stream version.
    let reused = forged(6, "b0-e0", 2, head.hash);
    let (seq, reason) = refusal(copy.append_replicated(&[reused]));
    assert_eq!(seq, 6);
    assert!(
        matches!(
            reason,
            Refusal::DuplicateEventId {
                original_seq: 1,
                ..
            }
        ),
        "{reason}"
    );
    let skipping = forged(6, "fresh", 9, head.hash);
    let (seq, reason) = refusal(copy.append_replicated(&[skipping]));
    assert_eq!(seq, 6);
    assert!(matches!(reason, Refusal::StreamVersion { .. }), "{reason}");

    assert!(matches!(
        copy.append_replicated(&[]),
        Err(ReplicationError::EmptyBatch)
    ));
    // Every refusal left the copy as it was: the rest of the original still chains on.
    assert_eq!(copy.head(), head);
    copy.append_replicated(&all[5..]).unwrap();
    assert_eq!(copy.head(), source.head());
    assert!(copy.verify().unwrap().is_intact());
}

#[test]
fn canonical_bytes_that_do_not_decode_are_refused_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let copy = open(&dir.path().join("copy"));
    for canonical in [Vec::new(), b"MYOLOGEV".to_vec(), vec![0xff; 300]] {
        let hash = myolog_storage::canonical_hash(&canonical);
        let event = StoredEvent {
            seq: 1,
            recorded_at_unix_nanos: 0,
            prev_hash: Hash::ZERO,
            hash,
            canonical,
        };
        let (seq, reason) = refusal(copy.append_replicated(&[event]));
        assert_eq!(seq, 1);
        assert!(matches!(reason, Refusal::Undecodable(_)), "{reason}");
    }
    assert_eq!(copy.head().seq, 0);
}

const CHILD_SOURCE_VAR: &str = "MYOLOG_TEST_REPLICATION_CHILD_SOURCE";
const CHILD_TARGET_VAR: &str = "MYOLOG_TEST_REPLICATION_CHILD_TARGET";
const KILLS: u64 = 16;

/// Run by `a_copy_killed_at_any_moment_reopens_as_a_verified_prefix_of_the_original` in a child
/// process: copies the source onto the target from the target's head in batches of 1 to 3 and
/// prints `ACK <seq>` after each returns; loops until killed.
#[test]
fn replication_child_copies_until_killed() {
    let (Ok(source), Ok(target)) = (
        std::env::var(CHILD_SOURCE_VAR),
        std::env::var(CHILD_TARGET_VAR),
    ) else {
        return;
    };
    let source = open_after_kill(Path::new(&source));
    let target = open_after_kill(Path::new(&target));
    let mut out = std::io::stdout();
    let mut size = 1;
    loop {
        let from = target.head().seq + 1;
        let batch = stored(&source, from..from + size);
        if batch.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let head = target.append_replicated(&batch).unwrap();
        writeln!(out, "ACK {}", head.seq).unwrap();
        out.flush().unwrap();
        size = size % 3 + 1;
    }
}

#[test]
fn a_copy_killed_at_any_moment_reopens_as_a_verified_prefix_of_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source");
    let target_path = dir.path().join("target");
    let expected: Vec<StoredEvent> = {
        let source = original(&source_path, 400);
        stored(&source, ..)
    };
    let mut acked = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "replication_child_copies_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_SOURCE_VAR, &source_path)
            .env(CHILD_TARGET_VAR, &target_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (acks, acked_seqs) = std::sync::mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            // Only complete lines count: a line cut by the kill was never fully acknowledged.
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(seq) = line.strip_prefix("ACK ").and_then(|rest| {
                    rest.strip_suffix('\n')
                        .and_then(|seq| seq.parse::<u64>().ok())
                }) {
                    let _ = acks.send(seq);
                }
                line.clear();
            }
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if round % 2 == 0 {
            // Odd rounds kill while the child starts and opens both logs; even rounds wait for its
            // first acknowledgement (however loaded the machine) and kill it mid-copy.
            if let Ok(seq) = acked_seqs.recv_timeout(Duration::from_secs(30)) {
                acked = acked.max(seq);
            }
            std::thread::sleep(Duration::from_millis(seed % 40));
        } else {
            std::thread::sleep(Duration::from_millis(5 + seed % 60));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        acked = acked.max(acked_seqs.try_iter().max().unwrap_or(0));

        let target = open_after_kill(&target_path);
        let head = target.head();
        assert!(
            head.seq >= acked,
            "round {round}: head {} behind acknowledged {acked}",
            head.seq
        );
        let report = target.verify().unwrap();
        assert!(report.is_intact(), "round {round}: {report:?}");
        let copied = stored(&target, ..);
        assert_eq!(
            copied[..],
            expected[..copied.len()],
            "round {round}: not a prefix"
        );
        println!("round {round}: copied {} of {}", head.seq, expected.len());
        if head.seq == expected.len() as u64 {
            break;
        }
    }
    assert!(acked > 0, "no child acknowledged anything");
}

fn open_after_kill(path: &Path) -> EventLog {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match EventLog::open(path, common::options()) {
            Ok(log) => return log,
            Err(StorageError::InUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(error) => panic!("reopen after kill failed: {error}"),
        }
    }
}
