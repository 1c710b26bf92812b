//! Appends, reads and reopening: the everyday paths of the log.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{event, open, reopen};
use myolog_storage::{AppendError, ExpectedVersion, Hash};

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
