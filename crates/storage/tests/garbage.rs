//! No bytes on disk make the log panic: arbitrary values written through raw sled under event and
//! commit-record keys still let the log open, read and verify, each failure being a typed error or a
//! verify report.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{event, open};
use myolog_storage::format;
use myolog_storage::{ExpectedVersion, StorageError};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Damage {
    /// Replace event `seq`'s value with these bytes.
    Event(u64, Vec<u8>),
    /// Replace (or add) a commit record at this first seq with these bytes.
    Commit(u64, Vec<u8>),
    /// A commit record that decodes but claims a huge sequence range.
    HugeCommit(u64),
    /// Keep a valid prefix of event `seq` and append garbage.
    EventTail(u64, usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..200);
    prop_oneof![
        (1u64..8, bytes.clone()).prop_map(|(seq, b)| Damage::Event(seq, b)),
        (0u64..9, bytes.clone()).prop_map(|(seq, b)| Damage::Commit(seq, b)),
        (1u64..8).prop_map(Damage::HugeCommit),
        (1u64..8, 0usize..300, bytes).prop_map(|(seq, keep, b)| Damage::EventTail(seq, keep, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_stored_bytes_never_panic(damages in proptest::collection::vec(damage(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        {
            let log = open(&path);
            log.append(vec![event("a", "s", ExpectedVersion::Any), event("b", "t", ExpectedVersion::Any)], "p").unwrap();
            for n in 0..5 {
                log.append(vec![event(&format!("n{n}"), "s", ExpectedVersion::Any)], "p").unwrap();
            }
        }
        {
            let db = common::raw_sled(&path);
            let tree = db.open_tree(format::TREE_NAME).unwrap();
            for damage in &damages {
                match damage {
                    Damage::Event(seq, bytes) => {
                        tree.insert(format::event_key(*seq), bytes.clone()).unwrap();
                    }
                    Damage::Commit(seq, bytes) => {
                        tree.insert(format::commit_key(*seq), bytes.clone()).unwrap();
                    }
                    Damage::HugeCommit(seq) => {
                        let record = format::CommitRecord {
                            first_seq: u64::MAX - 1,
                            recorded_at_unix_nanos: 0,
                            last_hash: myolog_storage::Hash::ZERO,
                            entries: vec![("x".into(), "s".into()); 3],
                        };
                        tree.insert(format::commit_key(*seq), record.encode()).unwrap();
                    }
                    Damage::EventTail(seq, keep, bytes) => {
                        if let Some(value) = tree.get(format::event_key(*seq)).unwrap() {
                            let mut value = value.to_vec();
                            value.truncate(*keep);
                            value.extend_from_slice(bytes);
                            tree.insert(format::event_key(*seq), value).unwrap();
                        }
                    }
                }
            }
            db.flush().unwrap();
        }
        match myolog_storage::EventLog::open(&path, common::options()) {
            Ok(log) => {
                let _ = log.verify().unwrap();
                for event in log.read_range(..) {
                    let _ = event;
                }
                for stream in ["s", "t"] {
                    for event in log.read_stream(stream, 1) {
                        let _ = event;
                    }
                }
                let _ = log.get_by_event_id("a");
                let _ = log.append(vec![event("later", "s", ExpectedVersion::Any)], "p");
                let _ = log.verify().unwrap();
            }
            // Opening may refuse a log whose head event is damaged; it must say so with a type.
            Err(StorageError::Corrupt { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected open error: {other}"),
        }
    }
}
