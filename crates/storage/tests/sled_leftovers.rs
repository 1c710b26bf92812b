//! What sled 0.34 leaves in a log directory when a process is killed in the middle of one of its
//! own non-atomic file writes, and that the next open recovers from it with every event intact.
//!
//! Both states were reached by the SIGKILL crash test in CI before the log mended them; here they
//! are built byte for byte, so each is tested on every run rather than when a kill happens to land
//! inside a write of a few microseconds:
//! * a snapshot cut while sled wrote `snap.<lsn>.generating` (sled renames it only when complete,
//!   but its reader takes a `.generating` file as a snapshot and fails with "Read corrupted data");
//! * a `conf` cut while sled created the database (sled writes it in place, text then CRC).
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::path::Path;

use common::{event, open, payload_for};
use myolog_storage::{EventLog, ExpectedVersion};

/// sled 0.34's `conf` text for the options every log is opened with (segment size 512 KiB, no
/// compression), before its CRC.
const SLED_CONF_TEXT: &str = "segment_size: 524288\nuse_compression: false\nversion: 0.34\n";

/// A log of `events` events, closed and reopened once more, so that sled has written a snapshot.
fn log_with_snapshot(path: &Path, events: usize) {
    {
        let log = open(path);
        for n in 0..events / 2 {
            log.append(
                vec![event(&format!("a{n}"), "s", ExpectedVersion::Any)],
                "t",
            )
            .unwrap();
        }
    }
    let log = open(path);
    for n in events / 2..events {
        log.append(
            vec![event(&format!("a{n}"), "s", ExpectedVersion::Any)],
            "t",
        )
        .unwrap();
    }
}

fn snapshot_names(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("snap."))
        .collect();
    names.sort();
    names
}

/// Opens the log, checks it holds exactly the events `a0..a{events}` on an intact chain, and that
/// a new append continues it.
fn assert_recovered(path: &Path, events: usize, case: &str) {
    let log = EventLog::open(path, common::options())
        .unwrap_or_else(|error| panic!("{case}: reopen failed: {error}"));
    let ids: Vec<String> = log
        .read_range(..)
        .map(|event| {
            let event = event.unwrap();
            assert_eq!(event.payload, payload_for(&event.event_id), "{case}");
            event.event_id
        })
        .collect();
    let expected: Vec<String> = (0..events).map(|n| format!("a{n}")).collect();
    assert_eq!(ids, expected, "{case}");
    assert!(log.verify().unwrap().is_intact(), "{case}");
    let appended = log
        .append(vec![event("after", "s", ExpectedVersion::Any)], "t")
        .unwrap();
    assert_eq!(appended[0].seq, events as u64 + 1, "{case}");
}

#[test]
fn a_snapshot_cut_by_a_kill_is_discarded() {
    // (case, bytes of the cut `.generating` file)
    let garbage: Vec<u8> = (0..300u32).map(|n| (n * 37 % 251) as u8).collect();
    let check = |case: &str, cut: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        log_with_snapshot(&path, 40);
        let snapshots = snapshot_names(&path);
        assert!(
            snapshots.iter().any(|name| !name.ends_with(".generating")),
            "{case}: sled wrote no snapshot to cut: {snapshots:?}"
        );
        // A later stable LSN than any snapshot written, as the next open would have had.
        std::fs::write(path.join("snap.7FFFFFFFFFFFFFFF.generating"), cut).unwrap();
        assert_recovered(&path, 40, case);
        assert!(
            snapshot_names(&path)
                .iter()
                .all(|name| !name.ends_with(".generating")),
            "{case}: the cut snapshot is still there"
        );
    };
    check("created, nothing written", b"");
    check("a few bytes", &garbage[..5]);
    check("body without length and crc", &garbage[..200]);
    check("body with a wrong crc", &garbage);
}

#[test]
fn a_configuration_cut_while_the_log_was_created_is_rewritten() {
    // sled creates `blobs/`, then `db` (empty until the first write), then writes `conf` in place.
    let check = |case: &str, conf: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::create_dir_all(path.join("blobs")).unwrap();
        std::fs::write(path.join("db"), b"").unwrap();
        std::fs::write(path.join("conf"), conf).unwrap();
        assert_recovered(&path, 0, case);
        let log_again = open(&path);
        assert_eq!(log_again.head().seq, 1, "{case}");
    };
    let text = SLED_CONF_TEXT.as_bytes();
    // An empty `db` next to a snapshot is damage, not a creation: the cut `conf` stays, the open
    // fails, and no empty log is made in its place.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    log_with_snapshot(&path, 4);
    let snapshot = snapshot_names(&path);
    assert!(!snapshot.is_empty(), "sled wrote no snapshot");
    std::fs::write(path.join("db"), b"").unwrap();
    std::fs::write(path.join("conf"), &text[..9]).unwrap();
    assert!(EventLog::open(&path, common::options()).is_err());
    assert_eq!(std::fs::read(path.join("conf")).unwrap(), &text[..9]);
    assert_eq!(snapshot_names(&path), snapshot);

    check("nine bytes", &text[..9]);
    check("cut in the version line", &text[..text.len() - 3]);
    check("text without its crc", text);
    check("text and half a crc", &[text, &[0x12, 0x34][..]].concat());
}
