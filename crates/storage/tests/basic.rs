//! Appends, reads and reopening: the everyday paths of the log.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{event, open, reopen};
use myolog_storage::{AppendError, ExpectedVersion, Hash, NewEvent};

#[test]
fn appended_events_read_back_by_sequence_stream_and_id_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = open(&path);
    assert_eq!(log.head().seq, 0);
    let appended = log
        .append(
            vec![
                event("a1", "study/s1", ExpectedVersion::Exactly(0)),
                event("a2", "study/s1", ExpectedVersion::Exactly(1)),
                event("b1", "study/s2", ExpectedVersion::Any),
            ],
            "edc@site-1",
        )
        .unwrap();
    assert_eq!(
        appended.iter().map(|a| a.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        appended
            .iter()
            .map(|a| a.stream_version)
            .collect::<Vec<_>>(),
        [1, 2, 1]
    );
    assert!(appended.iter().all(|a| !a.duplicate));
    assert_eq!(log.head().seq, 3);
    assert_eq!(log.head().hash, appended[2].hash);

    let replay: Vec<_> = log.read_range(..).map(Result::unwrap).collect();
    assert_eq!(replay.len(), 3);
    assert_eq!(replay[0].prev_hash, Hash::ZERO);
    assert_eq!(replay[1].prev_hash, replay[0].hash);
    assert_eq!(replay[0].recorded_by, "edc@site-1");
    assert_eq!(replay[2].payload, common::payload_for("b1"));

    let stream: Vec<_> = log
        .read_stream("study/s1", 1)
        .map(|e| e.unwrap().event_id)
        .collect();
    assert_eq!(stream, ["a1", "a2"]);
    assert_eq!(log.get_by_event_id("b1").unwrap().unwrap().seq, 3);
    assert!(log.get_by_event_id("nope").unwrap().is_none());
    assert!(log.verify().unwrap().is_intact());
    drop(log);

    let log = reopen(&path);
    assert_eq!(log.head().seq, 3);
    let more = log
        .append(
            vec![event("a3", "study/s1", ExpectedVersion::Exactly(2))],
            "edc@site-1",
        )
        .unwrap();
    assert_eq!((more[0].seq, more[0].stream_version), (4, 3));
    let report = log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, 4);

    let err = log
        .append(
            vec![event("a4", "study/s1", ExpectedVersion::Exactly(2))],
            "edc",
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::WrongExpectedVersion {
                expected: 2,
                actual: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_log_and_its_iterators_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    fn sendable<T: Send>() {}
    shareable::<myolog_storage::EventLog>();
    sendable::<myolog_storage::EventIter>();
    sendable::<myolog_storage::StreamIter>();
    sendable::<myolog_storage::StorageError>();
    sendable::<AppendError>();
}

#[test]
fn range_reads_follow_their_bounds_and_stop_at_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"));
    for n in 1..=5 {
        log.append(
            vec![event(&format!("e{n}"), "s", ExpectedVersion::Any)],
            "p",
        )
        .unwrap();
    }
    let seqs = |range: (std::ops::Bound<u64>, std::ops::Bound<u64>)| -> Vec<u64> {
        log.read_range(range).map(|e| e.unwrap().seq).collect()
    };
    use std::ops::Bound::*;
    type Range = (std::ops::Bound<u64>, std::ops::Bound<u64>);
    let cases: &[(Range, &[u64])] = &[
        ((Unbounded, Unbounded), &[1, 2, 3, 4, 5]),
        ((Included(2), Excluded(4)), &[2, 3]),
        ((Excluded(2), Included(4)), &[3, 4]),
        ((Included(4), Unbounded), &[4, 5]),
        ((Included(4), Included(99)), &[4, 5]),
        ((Included(6), Unbounded), &[]),
        ((Included(4), Excluded(2)), &[]),
        ((Excluded(3), Excluded(4)), &[]),
        ((Unbounded, Excluded(0)), &[]),
        ((Included(0), Included(1)), &[1]),
        ((Included(u64::MAX), Unbounded), &[]),
    ];
    for (range, expected) in cases {
        assert_eq!(seqs(*range), *expected, "{range:?}");
    }
    assert_eq!(log.read_range(..).last().unwrap().unwrap().seq, 5);
    assert!(log.get(6).unwrap().is_none());
    assert_eq!(log.get(5).unwrap().unwrap().event_id, "e5");
}

/// The small-values marker lets commits skip listing `<log>/blobs`; that is only sound if sled
/// really writes no blob file while every value is at most `SMALL_VALUE_LIMIT`, and if the first
/// larger value removes the marker atomically with itself.
#[test]
fn no_blob_file_while_values_are_small_and_the_first_large_value_removes_the_marker() {
    use myolog_storage::format;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let blob_count = |path: &std::path::Path| {
        std::fs::read_dir(path.join("blobs"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    };
    let log = open(&path);
    // Stored values just under the limit, enough of them for many leaf splits and consolidations.
    let payload_bytes = 3_850;
    let stored = format::encode_event(&format::EventFields {
        seq: 1,
        stream_key: "s-0",
        stream_version: 1,
        event_id: "small-00000",
        event_type: "test.v1.Event",
        schema_version: 1,
        payload: &vec![0; payload_bytes],
        recorded_at_unix_nanos: 0,
        recorded_by: "tester",
        prev_hash: Hash::ZERO,
    })
    .0
    .len();
    assert!(stored <= format::SMALL_VALUE_LIMIT, "{stored}");
    for round in 0..12 {
        let batch = (0..50)
            .map(|i| NewEvent {
                event_id: format!("small-{:05}", round * 50 + i),
                stream_key: format!("s-{}", i % 7),
                expected_version: ExpectedVersion::Any,
                event_type: "test.v1.Event".into(),
                schema_version: 1,
                payload: vec![u8::try_from(i).unwrap(); payload_bytes],
            })
            .collect();
        log.append(batch, "tester").unwrap();
    }
    assert_eq!(blob_count(&path), 0);
    let large = NewEvent {
        payload: vec![7; 200 * 1024],
        ..event("large", "s-0", ExpectedVersion::Any)
    };
    log.append(vec![large], "tester").unwrap();
    assert!(
        blob_count(&path) > 0,
        "sled wrote no blob for a 200 KiB value"
    );
    drop(log);
    {
        let db = common::raw_sled(&path);
        let tree = db.open_tree(format::TREE_NAME).unwrap();
        assert!(!tree.contains_key(format::META_SMALL_VALUES_KEY).unwrap());
    }
    let log = reopen(&path);
    assert_eq!(log.head().seq, 601);
    assert!(log.verify().unwrap().is_intact());
}

#[test]
fn large_batches_hashed_on_two_threads_chain_exactly_as_the_format_says() {
    use myolog_storage::format::{EventFields, encode_event};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = open(&path);
    // Sizes below, at and well above the size from which a group's hashing is shared.
    for (batch, size) in [(1usize, 63usize), (2, 64), (3, 65), (4, 1000), (5, 301)] {
        let events: Vec<NewEvent> = (0..size)
            .map(|i| {
                event(
                    &format!("b{batch}-e{i}"),
                    &format!("s{}", i % 7),
                    ExpectedVersion::Any,
                )
            })
            .collect();
        let appended = log.append(events, "tester").unwrap();
        assert_eq!(appended.len(), size);
    }
    let mut prev = Hash::ZERO;
    let mut count = 0;
    for recorded in log.read_range(..) {
        let recorded = recorded.unwrap();
        assert_eq!(recorded.prev_hash, prev, "seq {}", recorded.seq);
        let (_, hash) = encode_event(&EventFields {
            seq: recorded.seq,
            stream_key: &recorded.stream_key,
            stream_version: recorded.stream_version,
            event_id: &recorded.event_id,
            event_type: &recorded.event_type,
            schema_version: recorded.schema_version,
            payload: &recorded.payload,
            recorded_at_unix_nanos: recorded.recorded_at_unix_nanos,
            recorded_by: &recorded.recorded_by,
            prev_hash: prev,
        });
        assert_eq!(recorded.hash, hash, "seq {}", recorded.seq);
        prev = hash;
        count += 1;
    }
    assert_eq!(count, 63 + 64 + 65 + 1000 + 301);
    let report = log.verify().unwrap();
    assert_eq!(report.first_bad, None);
    assert_eq!(report.events_checked, count);
    drop(log);
    let log = reopen(&path);
    assert_eq!(log.verify().unwrap().first_bad, None);
    assert_eq!(log.head().hash, prev);
}
