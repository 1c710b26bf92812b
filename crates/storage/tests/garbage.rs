//! No bytes on disk make the log panic: arbitrary values written through raw sled under chunk keys
//! and the head record still let the log open, read and verify, each failure being a typed error or a
//! verify report.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{event, open};
use myolog_storage::format;
use myolog_storage::{ExpectedVersion, StorageError};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Damage {
    /// Replace (or add) the chunk stored under this first seq with these bytes.
    Chunk(u64, Vec<u8>),
    /// A chunk with a valid checksum that claims a huge sequence range.
    HugeChunk(u64),
    /// Keep a valid prefix of the chunk at this first seq and append garbage.
    ChunkTail(u64, usize, Vec<u8>),
    /// Replace the head record with these bytes.
    Head(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..200);
    prop_oneof![
        (0u64..9, bytes.clone()).prop_map(|(seq, b)| Damage::Chunk(seq, b)),
        (1u64..8).prop_map(Damage::HugeChunk),
        (1u64..8, 0usize..600, bytes.clone())
            .prop_map(|(seq, keep, b)| Damage::ChunkTail(seq, keep, b)),
        bytes.prop_map(Damage::Head),
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
                    Damage::Chunk(seq, bytes) => {
                        tree.insert(format::chunk_key(*seq), bytes.clone()).unwrap();
                    }
                    Damage::HugeChunk(seq) => {
                        let stored = vec![0u8; 80];
                        let entry = format::ChunkEntry { event_id: "x", stream_key: "s", stored: &stored };
                        let chunk = format::encode_chunk(u64::MAX - 1, 0, myolog_storage::Hash::ZERO, &[entry; 3]);
                        tree.insert(format::chunk_key(*seq), chunk).unwrap();
                    }
                    Damage::ChunkTail(seq, keep, bytes) => {
                        if let Some(value) = tree.get(format::chunk_key(*seq)).unwrap() {
                            let mut value = value.to_vec();
                            value.truncate(*keep);
                            value.extend_from_slice(bytes);
                            tree.insert(format::chunk_key(*seq), value).unwrap();
                        }
                    }
                    Damage::Head(bytes) => {
                        tree.insert(format::META_HEAD_KEY, bytes.clone()).unwrap();
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
