//! Tampering through raw sled underneath the log: verify must name the first bad sequence and why.
//! Most tampering re-encodes the chunk with a valid checksum (a forger who knows the format), so
//! the checks of the events, chunk tables, chain and head record must find it; the raw flips at
//! the end leave the checksum stale.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{RawChunk, event, open, set_stored, stored};
use myolog_storage::format::{self, EventFields};
use myolog_storage::{AppendError, ExpectedVersion, FailureReason, StorageError, VerifyReport};

const EVENTS: u64 = 6;

/// Writes events 1..=6 over two streams in four commits — [1], [2], [3, 4, 5], [6] — so that some
/// chunks hold one event and one holds three; closes the log and returns its path.
fn intact_log(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("log");
    let log = open(&path);
    let stream = |seq: u64| {
        if seq.is_multiple_of(2) {
            "study/even"
        } else {
            "study/odd"
        }
    };
    for batch in [&[1u64][..], &[2], &[3, 4, 5], &[6]] {
        let events = batch
            .iter()
            .map(|&seq| event(&format!("ev-{seq}"), stream(seq), ExpectedVersion::Any))
            .collect();
        log.append(events, "tester").unwrap();
    }
    assert!(log.verify().unwrap().is_intact());
    path
}

fn with_raw_tree(path: &std::path::Path, tamper: impl FnOnce(&sled::Tree)) {
    let db = common::raw_sled(path);
    let tree = db.open_tree(format::TREE_NAME).unwrap();
    tamper(&tree);
    db.flush().unwrap();
}

fn rewrite_chunk(tree: &sled::Tree, first_seq: u64, change: impl FnOnce(&mut RawChunk)) {
    let mut chunk = RawChunk::read(tree, first_seq);
    change(&mut chunk);
    chunk.write(tree);
}

/// Re-encodes event `seq` with `alter` applied to its payload and a freshly computed hash: a forger
/// who knows the format. With `fix_commit_of`, the chunk starting there is made to end on the new
/// hash too.
fn forge(
    tree: &sled::Tree,
    seq: u64,
    fix_commit_of: Option<u64>,
    alter: impl FnOnce(&mut Vec<u8>),
) {
    let mut event = format::decode_event(&stored(tree, seq)).unwrap();
    alter(&mut event.payload);
    let (value, hash) = format::encode_event(&EventFields {
        seq: event.seq,
        stream_key: &event.stream_key,
        stream_version: event.stream_version,
        event_id: &event.event_id,
        event_type: &event.event_type,
        schema_version: event.schema_version,
        payload: &event.payload,
        recorded_at_unix_nanos: event.recorded_at_unix_nanos,
        recorded_by: &event.recorded_by,
        prev_hash: event.prev_hash,
    });
    set_stored(tree, seq, value);
    if let Some(first_seq) = fix_commit_of {
        rewrite_chunk(tree, first_seq, |chunk| chunk.last_hash = hash);
    }
}

fn flip(tree: &sled::Tree, seq: u64, offset_from_end: usize) {
    let mut value = stored(tree, seq);
    let at = value.len() - offset_from_end;
    value[at] ^= 0x01;
    set_stored(tree, seq, value);
}

/// Flips one byte of the stored chunk `first_seq` at `offset_from_end`, leaving its checksum stale.
fn flip_raw_chunk(tree: &sled::Tree, first_seq: u64, offset_from_end: usize) {
    let key = format::chunk_key(first_seq);
    let mut value = tree.get(key).unwrap().unwrap().to_vec();
    let at = value.len() - offset_from_end;
    value[at] ^= 0x01;
    tree.insert(key, value).unwrap();
}

type Tamper = fn(&sled::Tree);
type ReasonCheck = fn(&FailureReason) -> bool;
/// (what was done, the tampering, the first bad seq verify must name, the reason it must give)
type TamperCase = (&'static str, Tamper, u64, ReasonCheck);

/// Bytes from the end of a stored event to inside its payload: past the hash, previous hash,
/// recorded-by ("tester" with its length), recorded-at, and into the payload's last bytes.
const INTO_PAYLOAD: usize = 32 + 32 + (4 + 6) + 8 + 10;

#[test]
fn verify_names_the_first_bad_sequence_for_each_kind_of_tampering() {
    let cases: &[TamperCase] = &[
        (
            "flip a payload byte of event 3",
            |t| flip(t, 3, INTO_PAYLOAD),
            3,
            |r| matches!(r, FailureReason::ContentAltered { .. }),
        ),
        (
            "flip a byte of event 3's stored hash",
            |t| flip(t, 3, 1),
            3,
            |r| matches!(r, FailureReason::ContentAltered { .. }),
        ),
        (
            "flip a byte of event 2's record tag",
            |t| {
                let mut value = stored(t, 2);
                value[0] ^= 0xff;
                set_stored(t, 2, value);
            },
            2,
            |r| matches!(r, FailureReason::Undecodable(_)),
        ),
        (
            "truncate event 4",
            |t| {
                let value = stored(t, 4);
                set_stored(t, 4, value[..value.len() / 2].to_vec());
            },
            4,
            |r| matches!(r, FailureReason::Undecodable(_)),
        ),
        (
            "delete event 3 (the chunk of 3..5 then starts at 4)",
            |t| {
                let mut chunk = RawChunk::read(t, 3);
                chunk.entries.remove(0);
                chunk.first_seq = 4;
                t.remove(format::chunk_key(3)).unwrap();
                chunk.write(t);
            },
            3,
            |r| {
                matches!(
                    r,
                    FailureReason::Missing {
                        next_present: Some(4)
                    }
                )
            },
        ),
        (
            "delete the last event",
            |t| {
                // Its chunk holds it alone; the head record stays.
                t.remove(format::chunk_key(EVENTS)).unwrap();
            },
            EVENTS,
            |r| matches!(r, FailureReason::Missing { next_present: None }),
        ),
        (
            "swap events 2 and 5",
            |t| {
                let (two, five) = (stored(t, 2), stored(t, 5));
                set_stored(t, 2, five);
                set_stored(t, 5, two);
            },
            2,
            |r| matches!(r, FailureReason::OutOfPlace { claimed_seq: 5 }),
        ),
        (
            "rewrite event 4 (mid-commit) and re-hash it",
            |t| forge(t, 4, None, |p| p[0] ^= 1),
            5,
            |r| matches!(r, FailureReason::LinkBroken { .. }),
        ),
        (
            "rewrite event 5 (ends a chunk) and re-hash it",
            |t| forge(t, 5, None, |p| p[0] ^= 1),
            5,
            |r| matches!(r, FailureReason::CommitRecordMismatch { .. }),
        ),
        (
            "rewrite event 2, re-hash it and its chunk's last hash",
            |t| forge(t, 2, Some(2), |p| p[0] ^= 1),
            3,
            |r| matches!(r, FailureReason::LinkBroken { .. }),
        ),
        (
            "rewrite the last event and re-hash it",
            |t| forge(t, EVENTS, None, |p| p.push(0)),
            EVENTS,
            |r| matches!(r, FailureReason::CommitRecordMismatch { .. }),
        ),
        (
            "rename event 4 in its chunk's table",
            |t| {
                rewrite_chunk(t, 3, |chunk| chunk.entries[1].0 = "someone-else".into());
            },
            4,
            |r| matches!(r, FailureReason::CommitRecordMismatch { .. }),
        ),
        (
            "flip the tag of the chunk of events 3..5",
            |t| {
                let key = format::chunk_key(3);
                let mut value = t.get(key).unwrap().unwrap().to_vec();
                value[0] ^= 0xff;
                t.insert(key, value).unwrap();
            },
            3,
            |r| matches!(r, FailureReason::CommitRecordUndecodable(_)),
        ),
        (
            "delete the chunk of events 3..5",
            |t| {
                t.remove(format::chunk_key(3)).unwrap();
            },
            3,
            |r| {
                matches!(
                    r,
                    FailureReason::Missing {
                        next_present: Some(6)
                    }
                )
            },
        ),
        (
            "change the recorded-at of the chunk of events 3..5",
            |t| rewrite_chunk(t, 3, |chunk| chunk.recorded_at += 1),
            3,
            |r| matches!(r, FailureReason::CommitRecordMismatch { .. }),
        ),
        (
            "give the head record another hash",
            |t| {
                let five = format::stored_hash(&stored(t, 5));
                t.insert(
                    format::META_HEAD_KEY,
                    &format::encode_head(EVENTS, five)[..],
                )
                .unwrap();
            },
            6,
            |r| matches!(r, FailureReason::CommitRecordMismatch { .. }),
        ),
        (
            "flip a payload byte of event 4 in place (stale checksum)",
            // Event 5's stored bytes and the checksum follow event 4's.
            |t| {
                flip_raw_chunk(
                    t,
                    3,
                    format::CHECKSUM_LEN + stored(t, 5).len() + INTO_PAYLOAD,
                )
            },
            4,
            |r| matches!(r, FailureReason::ContentAltered { .. }),
        ),
        (
            "flip a byte of the checksum of the chunk of events 3..5",
            |t| flip_raw_chunk(t, 3, 1),
            3,
            |r| matches!(r, FailureReason::ChunkChecksumMismatch),
        ),
    ];
    for (what, tamper, expected_seq, reason_is_right) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = intact_log(&dir);
        with_raw_tree(&path, tamper);
        let log = open(&path);
        let report: VerifyReport = log.verify().unwrap();
        let failure = report
            .first_bad
            .clone()
            .unwrap_or_else(|| panic!("{what}: verify found nothing"));
        assert_eq!(failure.seq, *expected_seq, "{what}: {failure}");
        assert!(
            reason_is_right(&failure.reason),
            "{what}: unexpected reason: {failure}"
        );
        assert_eq!(report.events_checked, expected_seq - 1, "{what}");
    }
}

#[test]
fn reads_of_a_corrupted_event_return_a_typed_error_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = intact_log(&dir);
    with_raw_tree(&path, |t| {
        let mut garbage = b"MYOLOGEV\x00\x01".to_vec();
        garbage.resize(100, b'g');
        set_stored(t, 2, garbage);
    });
    let log = open(&path);
    let results: Vec<_> = log.read_range(..).collect();
    assert_eq!(results.len() as u64, EVENTS);
    let error = results[1].as_ref().unwrap_err();
    assert!(error.to_string().contains("event seq 2"), "{error}");
    assert!(log.get(2).is_err());
    assert!(log.read_stream("study/even", 1).next().unwrap().is_err());
    // Appends continue past damage to an event; the chain still names seq 2 as the first bad one.
    log.append(
        vec![event("after", "study/odd", ExpectedVersion::Any)],
        "tester",
    )
    .unwrap();
    assert_eq!(log.verify().unwrap().first_bad.unwrap().seq, 2);
}

#[test]
fn a_damaged_chunk_refuses_appends_and_reads_stop_before_it_but_verify_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = intact_log(&dir);
    with_raw_tree(&path, |t| {
        t.insert(format::chunk_key(3), &b"MYOLOGCK garbage"[..])
            .unwrap();
    });
    let log = open(&path);
    let error = log
        .append(
            vec![event("new", "study/odd", ExpectedVersion::Any)],
            "tester",
        )
        .unwrap_err();
    assert!(
        matches!(error, AppendError::Storage(StorageError::Poisoned { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("seq 3"), "{error}");
    // The head stops at the last intact chunk; verify still walks everything and names the damage.
    assert_eq!(log.head().seq, 2);
    assert_eq!(log.read_range(..).count(), 2);
    assert_eq!(log.verify().unwrap().first_bad.unwrap().seq, 3);
}
