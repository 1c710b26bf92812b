//! Format version 1 logs: `open` refuses them naming `myolog migrate`, and the migration copies
//! the small golden version 1 log (tests/data/golden-v1-small, written by the last version 1
//! build) event for event: the same seqs, recorded-at times, hashes and canonical bytes, and a
//! copy that verifies, reads by stream and id, and appends on.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::event;
use myolog_storage::legacy_v1::{self, LegacyLog, MigrationError};
use myolog_storage::{EventLog, ExpectedVersion, Hash, LogOptions, StorageError};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/golden-v1-small")
        .join(name)
}

/// The golden version 1 log unpacked into `dir/v1`.
fn unpack(dir: &Path) -> PathBuf {
    let log = dir.join("v1");
    std::fs::create_dir_all(&log).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(golden("log.tar.gz"))
        .arg("-C")
        .arg(&log)
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar -xzf log.tar.gz");
    log
}

/// (seq, recorded-at, hash) of every event, as the version 1 build printed them.
fn golden_events() -> Vec<(u64, i64, Hash)> {
    std::fs::read_to_string(golden("events.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (
                fields[0].parse().unwrap(),
                fields[1].parse().unwrap(),
                Hash::from_hex(fields[2]).unwrap(),
            )
        })
        .collect()
}

const GOLDEN_HEAD_SEQ: u64 = 83;
const GOLDEN_HEAD_HASH: &str = "29f7cce7803a4005326d61d825d5b6234642f4b52a0f761fa0376bc8e5da364f";

#[test]
fn opening_a_version_1_log_fails_naming_the_migration_command() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = unpack(dir.path());
    let error = EventLog::open(&v1, LogOptions::default()).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::NeedsMigration {
                found: 1,
                supported: 2,
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    let command = format!("myolog migrate --from {} --to ", v1.display());
    assert!(message.contains(&command), "{message}");
    // The refusal wrote nothing: the version 1 reader still finds the whole log.
    let legacy = LegacyLog::open(&v1).unwrap();
    assert_eq!(legacy.head().unwrap().seq, GOLDEN_HEAD_SEQ);
}

#[test]
fn the_golden_version_1_log_migrates_event_for_event_and_the_copy_works_on() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = unpack(dir.path());
    let v2 = dir.path().join("v2");
    let report = legacy_v1::migrate(&v1, &v2, LogOptions::default()).unwrap();
    assert_eq!(report.events, GOLDEN_HEAD_SEQ);
    assert_eq!(report.head.seq, GOLDEN_HEAD_SEQ);
    assert_eq!(report.head.hash.to_hex(), GOLDEN_HEAD_HASH);

    // The version 1 reader and the copy hold the same stored events, byte for byte.
    let originals: Vec<_> = {
        let legacy = LegacyLog::open(&v1).unwrap();
        assert!(legacy.verify().unwrap().is_intact());
        legacy.stored_events().map(Result::unwrap).collect()
    };
    let log = EventLog::open(&v2, LogOptions::default()).unwrap();
    let copies: Vec<_> = log.read_stored_range(..).map(Result::unwrap).collect();
    assert_eq!(copies, originals);
    let summary: Vec<_> = copies
        .iter()
        .map(|stored| (stored.seq, stored.recorded_at_unix_nanos, stored.hash))
        .collect();
    assert_eq!(summary, golden_events());
    let report = log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, GOLDEN_HEAD_SEQ);

    // Reads by stream and id see what the original's appends wrote.
    let subject_2: Vec<_> = log
        .read_stream("subject/STIR-002", 1)
        .map(|event| event.unwrap().event_id)
        .collect();
    assert_eq!(subject_2.first().map(String::as_str), Some("enrol-2"));
    assert!(subject_2.contains(&"correct-visit-7".to_owned()));
    let attachment = log.get_by_event_id("attachment-1").unwrap().unwrap();
    assert_eq!(attachment.payload.len(), 6000);
    assert_eq!(attachment.recorded_by, "edc@site-2");

    // Appends continue the chain, and a retry of an original event is answered as the original.
    let retry = log
        .append(
            vec![myolog_storage::NewEvent {
                expected_version: ExpectedVersion::Any,
                ..log_event_as_new(&log, "visit-5")
            }],
            "edc@site-1",
        )
        .unwrap();
    assert!(retry[0].duplicate);
    let appended = log
        .append(
            vec![event(
                "after-migration",
                "subject/STIR-001",
                ExpectedVersion::Any,
            )],
            "p",
        )
        .unwrap();
    assert_eq!(appended[0].seq, GOLDEN_HEAD_SEQ + 1);
    assert_eq!(
        log.get(GOLDEN_HEAD_SEQ + 1)
            .unwrap()
            .unwrap()
            .prev_hash
            .to_hex(),
        GOLDEN_HEAD_HASH
    );
    assert!(log.verify().unwrap().is_intact());
}

/// The stored event `event_id` as a new submission (its client-provided content).
fn log_event_as_new(log: &EventLog, event_id: &str) -> myolog_storage::NewEvent {
    let recorded = log.get_by_event_id(event_id).unwrap().unwrap();
    myolog_storage::NewEvent {
        event_id: recorded.event_id,
        stream_key: recorded.stream_key,
        expected_version: ExpectedVersion::Any,
        event_type: recorded.event_type.into(),
        schema_version: recorded.schema_version,
        payload: recorded.payload,
    }
}

#[test]
fn migrating_into_a_log_that_has_events_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = unpack(dir.path());
    let v2 = dir.path().join("v2");
    {
        let log = EventLog::open(&v2, LogOptions::default()).unwrap();
        log.append(vec![event("x", "s", ExpectedVersion::Any)], "p")
            .unwrap();
    }
    let error = legacy_v1::migrate(&v1, &v2, LogOptions::default()).unwrap_err();
    assert!(
        matches!(error, MigrationError::DestinationNotEmpty { events: 1, .. }),
        "{error}"
    );
}

#[test]
fn a_tampered_version_1_log_is_not_migrated_and_the_error_names_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = unpack(dir.path());
    {
        let db = common::raw_sled(&v1);
        let tree = db.open_tree(myolog_storage::format::TREE_NAME).unwrap();
        let key = legacy_v1::event_key(10);
        let mut value = tree.get(key).unwrap().unwrap().to_vec();
        // A byte of the payload (before recorded-by, recorded-at and the two hashes).
        let at = value.len() - 150;
        value[at] ^= 1;
        tree.insert(key, value).unwrap();
        db.flush().unwrap();
    }
    let error = legacy_v1::migrate(&v1, &dir.path().join("v2"), LogOptions::default()).unwrap_err();
    assert!(
        matches!(error, MigrationError::Refused { seq: 10, .. }),
        "{error}"
    );
}
