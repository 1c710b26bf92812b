//! A group commit cut by a crash: its chunks reached sled's log, its head record (the commit point,
//! inserted last) did not. Opening must remove exactly such a cut commit — never acknowledged —
//! and keep reporting anything else past the head record as damage. The cut is made with raw sled
//! underneath a closed log, as the crash would leave it: the head record set back to an earlier
//! commit's (or removed), the later commits' chunks left in place.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{event, open, options, raw_sled, stored};
use myolog_storage::format;
use myolog_storage::{CutCommit, EventLog, ExpectedVersion, Hash, LogOptions};

/// Writes `commits` (sizes of one-batch commits) and returns the log's path; event ids `ev-<seq>`.
fn log_of(dir: &tempfile::TempDir, commits: &[u64]) -> std::path::PathBuf {
    let path = dir.path().join("log");
    let log = open(&path);
    let mut seq = 0;
    for &size in commits {
        let batch = (0..size)
            .map(|_| {
                seq += 1;
                event(&format!("ev-{seq}"), "study/s", ExpectedVersion::Any)
            })
            .collect();
        log.append(batch, "tester").unwrap();
    }
    path
}

/// Sets the head record back to event `seq` (removes it for 0), as a cut commit leaves it.
fn cut_back_to(path: &std::path::Path, seq: u64) {
    let db = raw_sled(path);
    let tree = db.open_tree(format::TREE_NAME).unwrap();
    if seq == 0 {
        tree.remove(format::META_HEAD_KEY).unwrap();
    } else {
        let hash = format::stored_hash(&stored(&tree, seq));
        tree.insert(format::META_HEAD_KEY, &format::encode_head(seq, hash)[..])
            .unwrap();
    }
    db.flush().unwrap();
}

/// One case: the commits written, the seq the head record is set back to, and what opening must
/// find: `Ok(cut)` — the cut commit removed, the log intact up to the head record — or `Err(())`,
/// damage that refuses appends.
fn check(commits: &[u64], head_record_at: u64, expected: Result<Option<CutCommit>, ()>) {
    let dir = tempfile::tempdir().unwrap();
    let path = log_of(&dir, commits);
    cut_back_to(&path, head_record_at);
    let log = open(&path);
    match expected {
        Ok(cut) => {
            assert_eq!(
                log.removed_cut_commit(),
                cut,
                "{commits:?} cut at {head_record_at}"
            );
            assert_eq!(log.head().seq, head_record_at);
            let report = log.verify().unwrap();
            assert!(report.is_intact(), "{report:?}");
            assert_eq!(report.events_checked, head_record_at);
            // The next append continues the chain from the head record, and survives a reopen.
            let next = head_record_at + 1;
            let appended = log
                .append(
                    vec![event("after-the-cut", "study/s", ExpectedVersion::Any)],
                    "tester",
                )
                .unwrap();
            assert_eq!(appended[0].seq, next);
            let previous = log
                .get(head_record_at)
                .unwrap()
                .map_or(Hash::ZERO, |e| e.hash);
            assert_eq!(log.get(next).unwrap().unwrap().prev_hash, previous);
            drop(log);
            let log = open(&path);
            assert_eq!(log.removed_cut_commit(), None);
            assert_eq!(log.head().seq, next);
            assert!(log.verify().unwrap().is_intact());
        }
        Err(()) => {
            assert_eq!(log.removed_cut_commit(), None);
            let refused = log.append(
                vec![event("after-the-damage", "study/s", ExpectedVersion::Any)],
                "tester",
            );
            assert!(
                refused.is_err(),
                "{commits:?} cut at {head_record_at}: {refused:?}"
            );
        }
    }
}

#[test]
fn a_cut_group_commit_is_removed_at_open_and_nothing_else_is() {
    let cut = |first_seq, last_seq| {
        Ok(Some(CutCommit {
            first_seq,
            last_seq,
        }))
    };
    // Nothing cut: the head record is where the chunks end.
    check(&[3, 3], 6, Ok(None));
    // The last commit cut: removed.
    check(&[3, 3], 3, cut(4, 6));
    // The first commit of a new log cut (no head record at all): removed.
    check(&[3], 0, cut(1, 3));
    // A commit of several chunks (500 events of ~150 B: 4 KiB chunks), cut: removed whole.
    check(&[2, 500], 2, cut(3, 502));
    // Two commits past the head record: not what one cut commit leaves, so damage.
    check(&[3, 3, 3], 3, Err(()));
    check(&[1, 1], 0, Err(()));
}

#[test]
fn chunks_past_the_head_record_beyond_one_group_commit_are_damage_not_removed() {
    // 500 events in one commit past the head record: more than a log whose groups and batches hold
    // at most 100 events can have cut, so it is damage; and a log opened with the default limits
    // (the same bytes) removes it as a cut commit.
    let dir = tempfile::tempdir().unwrap();
    let path = log_of(&dir, &[2, 500]);
    cut_back_to(&path, 2);
    let small_groups = LogOptions {
        max_group_events: 100,
        max_batch_events: 100,
        ..options()
    };
    let log = EventLog::open(&path, small_groups).unwrap();
    assert_eq!(log.removed_cut_commit(), None);
    assert_eq!(log.head().seq, 2);
    let refused = log.append(
        vec![event("after-the-damage", "study/s", ExpectedVersion::Any)],
        "tester",
    );
    assert!(refused.is_err(), "{refused:?}");
    drop(log);
    let log = open(&path);
    let cut = CutCommit {
        first_seq: 3,
        last_seq: 502,
    };
    assert_eq!(log.removed_cut_commit(), Some(cut));
}
