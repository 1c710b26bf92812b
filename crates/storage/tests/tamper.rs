//! Tampering through raw sled underneath the log: verify must name the first bad sequence and why.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{event, open};
use myolog_storage::format::{self, EventFields};
use myolog_storage::{ExpectedVersion, FailureReason, VerifyReport};

const EVENTS: u64 = 6;

/// Writes events 1..=6 alternating over two streams, closes the log and returns its path.
fn intact_log(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("log");
    let log = open(&path);
    for seq in 1..=EVENTS {
        let stream = if seq % 2 == 0 {
            "study/even"
        } else {
            "study/odd"
        };
        log.append(
            vec![event(&format!("ev-{seq}"), stream, ExpectedVersion::Any)],
            "tester",
        )
        .unwrap();
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

fn stored(tree: &sled::Tree, seq: u64) -> Vec<u8> {
    tree.get(format::event_key(seq)).unwrap().unwrap().to_vec()
}

/// Re-encodes event `seq` with `alter` applied and a freshly computed hash, and (if `fix_index`)
/// points the event-id index at the new hash: a forger who knows the format.
fn forge(tree: &sled::Tree, seq: u64, fix_index: bool, alter: impl FnOnce(&mut Vec<u8>)) {
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
    if fix_index {
        let index_key = format::event_id_key(&event.event_id);
        let mut entry =
            format::EventIdEntry::decode(&tree.get(&index_key).unwrap().unwrap()).unwrap();
        entry.hash = hash;
        tree.insert(index_key, &entry.encode()[..]).unwrap();
    }
    tree.insert(format::event_key(seq), value).unwrap();
}

fn flip(tree: &sled::Tree, seq: u64, offset_from_end: usize) {
    let mut value = stored(tree, seq);
    let at = value.len() - offset_from_end;
    value[at] ^= 0x01;
    tree.insert(format::event_key(seq), value).unwrap();
}

type Tamper = fn(&sled::Tree);
type ReasonCheck = fn(&FailureReason) -> bool;
/// (what was done, the tampering, the first bad seq verify must name, the reason it must give)
type TamperCase = (&'static str, Tamper, u64, ReasonCheck);

#[test]
fn verify_names_the_first_bad_sequence_for_each_kind_of_tampering() {
    let cases: &[TamperCase] = &[
        (
            "flip a payload byte of event 3",
            |t| flip(t, 3, 32 + 32 + 8 + 4 + 6 + 10),
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
                t.insert(format::event_key(2), value).unwrap();
            },
            2,
            |r| matches!(r, FailureReason::Undecodable(_)),
        ),
        (
            "truncate event 4",
            |t| {
                let value = stored(t, 4);
                t.insert(format::event_key(4), &value[..value.len() / 2])
                    .unwrap();
            },
            4,
            |r| matches!(r, FailureReason::Undecodable(_)),
        ),
        (
            "delete event 3",
            |t| {
                t.remove(format::event_key(3)).unwrap();
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
                t.remove(format::event_key(EVENTS)).unwrap();
            },
            EVENTS,
            |r| matches!(r, FailureReason::Missing { next_present: None }),
        ),
        (
            "swap events 2 and 5",
            |t| {
                let (two, five) = (stored(t, 2), stored(t, 5));
                t.insert(format::event_key(2), five).unwrap();
                t.insert(format::event_key(5), two).unwrap();
            },
            2,
            |r| matches!(r, FailureReason::OutOfPlace { claimed_seq: 5 }),
        ),
        (
            "rewrite event 3's payload, re-hash it, leave the index",
            |t| forge(t, 3, false, |p| p[0] ^= 1),
            3,
            |r| matches!(r, FailureReason::IndexMismatch { .. }),
        ),
        (
            "rewrite event 3's payload, re-hash it and its index",
            |t| forge(t, 3, true, |p| p[0] ^= 1),
            4,
            |r| matches!(r, FailureReason::LinkBroken { .. }),
        ),
        (
            "rewrite the last event's payload and re-hash it",
            |t| forge(t, EVENTS, true, |p| p.push(0)),
            EVENTS,
            |r| matches!(r, FailureReason::HeadMismatch { .. }),
        ),
        (
            "delete event 3's event-id index entry",
            |t| {
                t.remove(format::event_id_key("ev-3")).unwrap();
            },
            3,
            |r| matches!(r, FailureReason::IndexMismatch { .. }),
        ),
        (
            "delete event 4's stream index entry",
            |t| {
                t.remove(format::stream_key("study/even", 2)).unwrap();
            },
            4,
            |r| matches!(r, FailureReason::IndexMismatch { .. }),
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
        t.insert(format::event_key(2), &b"MYOLOGEV\x00\x01garbage"[..])
            .unwrap();
    });
    let log = open(&path);
    let results: Vec<_> = log.read_range(..).collect();
    assert_eq!(results.len() as u64, EVENTS);
    let error = results[1].as_ref().unwrap_err();
    assert!(error.to_string().contains("event seq 2"), "{error}");
    assert!(log.get(2).is_err());
    // Appends continue past the damage; the chain still names seq 2 as the first bad one.
    log.append(
        vec![event("after", "study/odd", ExpectedVersion::Any)],
        "tester",
    )
    .unwrap();
    assert_eq!(log.verify().unwrap().first_bad.unwrap().seq, 2);
}
