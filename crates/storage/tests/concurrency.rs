//! Many threads appending at once — to their own streams, to one shared stream with optimistic
//! concurrency, and retrying the same event ids — leave a contiguous, verifiable log with no lost
//! and no doubled events.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Barrier};

use common::{event, open};
use myolog_storage::{AppendError, EventLog, ExpectedVersion};

fn assert_contiguous_and_intact(log: &EventLog) -> Vec<myolog_storage::RecordedEvent> {
    let events: Vec<_> = log.read_range(..).map(Result::unwrap).collect();
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as u64 + 1);
    }
    assert_eq!(events.len() as u64, log.head().seq);
    let ids: HashSet<_> = events.iter().map(|e| &e.event_id).collect();
    assert_eq!(ids.len(), events.len(), "an event id was recorded twice");
    let report = log.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    events
}

#[test]
fn threads_on_their_own_streams_with_exact_expected_versions_all_succeed() {
    const THREADS: usize = 16;
    const BATCHES: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let stream = format!("study/subject-{thread}");
                let mut version = 0;
                for batch in 0..BATCHES {
                    let size = 1 + (batch + thread as u64) % 4;
                    let events = (0..size)
                        .map(|i| {
                            event(
                                &format!("t{thread}-b{batch}-{i}"),
                                &stream,
                                ExpectedVersion::Exactly(version + i),
                            )
                        })
                        .collect();
                    let appended = log.append(events, "site").unwrap();
                    assert_eq!(appended.last().unwrap().stream_version, version + size);
                    version += size;
                }
                version
            })
        })
        .collect();
    let versions: Vec<u64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let events = assert_contiguous_and_intact(&log);
    assert_eq!(events.len() as u64, versions.iter().sum::<u64>());
    let mut per_stream: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for event in &events {
        per_stream
            .entry(&event.stream_key)
            .or_default()
            .push(event.stream_version);
    }
    for (thread, version) in versions.iter().enumerate() {
        let stream = format!("study/subject-{thread}");
        assert_eq!(
            per_stream[stream.as_str()],
            (1..=*version).collect::<Vec<_>>()
        );
        assert_eq!(log.stream_version(&stream).unwrap(), *version);
        let read: Vec<_> = log
            .read_stream(&stream, 1)
            .map(|e| e.unwrap().stream_version)
            .collect();
        assert_eq!(read, (1..=*version).collect::<Vec<_>>());
    }
}

#[test]
fn racing_writers_on_one_stream_lose_no_update() {
    const THREADS: usize = 8;
    const EVENTS_PER_THREAD: usize = 15;
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut conflicts = 0;
                for n in 0..EVENTS_PER_THREAD {
                    // Read-decide-append with the version read; on conflict, re-read and retry.
                    loop {
                        let seen = log.stream_version("shared").unwrap();
                        let attempt = event(
                            &format!("t{thread}-{n}-at-{seen}"),
                            "shared",
                            ExpectedVersion::Exactly(seen),
                        );
                        match log.append(vec![attempt], "site") {
                            Ok(appended) => {
                                assert_eq!(appended[0].stream_version, seen + 1);
                                break;
                            }
                            Err(AppendError::WrongExpectedVersion {
                                actual, expected, ..
                            }) => {
                                assert!(actual > expected);
                                conflicts += 1;
                            }
                            Err(other) => panic!("{other}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let events = assert_contiguous_and_intact(&log);
    assert_eq!(events.len(), THREADS * EVENTS_PER_THREAD);
    assert_eq!(
        log.stream_version("shared").unwrap(),
        (THREADS * EVENTS_PER_THREAD) as u64
    );
    // Each recorded event's id names the version it saw: exactly one less than the one it got.
    for event in &events {
        let seen: u64 = event
            .event_id
            .rsplit("-at-")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(event.stream_version, seen + 1);
    }
    println!("{conflicts} optimistic-concurrency conflicts were retried");
}

#[test]
fn simultaneous_first_writes_to_a_new_stream_admit_exactly_one() {
    const THREADS: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"));
    for round in 0..5 {
        let stream = format!("fresh-{round}");
        let start = Arc::new(Barrier::new(THREADS));
        let outcomes: Vec<bool> = (0..THREADS)
            .map(|thread| {
                let (log, start, stream) = (log.clone(), start.clone(), stream.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let batch = vec![
                        event(
                            &format!("{stream}-t{thread}-a"),
                            &stream,
                            ExpectedVersion::Exactly(0),
                        ),
                        event(
                            &format!("{stream}-t{thread}-b"),
                            &stream,
                            ExpectedVersion::Exactly(1),
                        ),
                    ];
                    match log.append(batch, "site") {
                        Ok(_) => true,
                        Err(AppendError::WrongExpectedVersion { .. }) => false,
                        Err(other) => panic!("{other}"),
                    }
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect();
        assert_eq!(
            outcomes.iter().filter(|won| **won).count(),
            1,
            "round {round}: {outcomes:?}"
        );
        assert_eq!(log.stream_version(&stream).unwrap(), 2);
    }
    assert_eq!(assert_contiguous_and_intact(&log).len(), 10);
}

#[test]
fn concurrent_retries_of_the_same_events_record_each_once() {
    const THREADS: usize = 8;
    const IDS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut answers = HashMap::new();
                // Every thread submits all ids, in its own order and batching, as a retrying EDC would.
                let mut order: Vec<usize> = (0..IDS).collect();
                order.rotate_left(thread * 5 % IDS);
                if thread % 2 == 1 {
                    order.reverse();
                }
                for chunk in order.chunks(1 + thread % 3) {
                    let batch = chunk
                        .iter()
                        .map(|id| {
                            event(
                                &format!("shared-{id}"),
                                &format!("s{}", id % 4),
                                ExpectedVersion::Any,
                            )
                        })
                        .collect();
                    let appended = log.append(batch, "site").unwrap();
                    for (id, appended) in chunk.iter().zip(appended) {
                        answers.insert(*id, (appended.seq, appended.hash));
                    }
                }
                answers
            })
        })
        .collect();
    let answers: Vec<HashMap<usize, _>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    for id in 0..IDS {
        let first = answers[0][&id];
        assert!(
            answers.iter().all(|a| a[&id] == first),
            "threads disagree on shared-{id}"
        );
    }
    let events = assert_contiguous_and_intact(&log);
    assert_eq!(events.len(), IDS);
}

#[test]
fn with_a_small_group_cap_every_batch_commits_whole_even_one_larger_than_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        EventLog::open(
            dir.path().join("log"),
            myolog_storage::LogOptions {
                max_group_events: 5,
                ..common::options()
            },
        )
        .unwrap(),
    );
    let threads = 8;
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..10)
                    .map(|round| {
                        // Sizes 1..=12: many batches fit a group of 5 together, some exceed it.
                        let size = 1 + (thread * 10 + round) % 12;
                        let batch: Vec<_> = (0..size)
                            .map(|n| {
                                event(
                                    &format!("t{thread}-r{round}-e{n}"),
                                    &format!("stream-{thread}"),
                                    ExpectedVersion::Any,
                                )
                            })
                            .collect();
                        let appended = log.append(batch, "tester").unwrap();
                        // A batch is atomic and contiguous, whatever group carried it.
                        for pair in appended.windows(2) {
                            assert_eq!(pair[1].seq, pair[0].seq + 1);
                        }
                        size
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    let total: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let events = assert_contiguous_and_intact(&log);
    assert_eq!(events.len(), total);
}

/// A verify that starts on an empty log while its first commits land must see either no events or
/// a head record that covers them: a commit's chunks and head record are one atomic batch.
#[test]
fn verify_racing_the_first_appends_of_an_empty_log_finds_it_intact() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir.path().join("log"));
        let start = Arc::new(Barrier::new(2));
        let appender = {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for batch in 0..5 {
                    let id = format!("r{round}-b{batch}");
                    log.append(
                        vec![event(&id, "study/subject-1", ExpectedVersion::Any)],
                        "tester",
                    )
                    .unwrap();
                }
            })
        };
        start.wait();
        for _ in 0..20 {
            let report = log.verify().unwrap();
            assert!(report.is_intact(), "round {round}: {report:?}");
        }
        appender.join().unwrap();
        assert_contiguous_and_intact(&log);
    }
}

/// Queued appenders are handed the apply role one after another; a replicated append waiting for
/// the role must still get it between their groups, and every appender must still be answered.
#[test]
fn a_replicated_append_gets_the_apply_role_between_busy_appenders_groups() {
    const APPENDERS: usize = 8;
    const BATCHES: usize = 40;
    const REPLICATED_TRIES: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"));
    // Event 1 of another log: it can never continue this log's head once the appenders started,
    // so each try takes the apply role, is refused, and hands the role on.
    let other = open(&dir.path().join("other"));
    other
        .append(
            vec![event("elsewhere", "s", ExpectedVersion::Any)],
            "tester",
        )
        .unwrap();
    let foreign: Vec<_> = other.read_stored_range(..).map(Result::unwrap).collect();
    log.append(vec![event("first", "s", ExpectedVersion::Any)], "tester")
        .unwrap();
    let start = Arc::new(Barrier::new(APPENDERS + 1));
    let (finished, finishing) = std::sync::mpsc::channel();
    for thread in 0..APPENDERS {
        let (log, start, finished) = (log.clone(), start.clone(), finished.clone());
        std::thread::spawn(move || {
            start.wait();
            for batch in 0..BATCHES {
                let events = (0..3)
                    .map(|n| {
                        event(
                            &format!("t{thread}-b{batch}-e{n}"),
                            &format!("stream-{thread}"),
                            ExpectedVersion::Any,
                        )
                    })
                    .collect();
                log.append(events, "tester").unwrap();
            }
            finished.send("appender").unwrap();
        });
    }
    {
        let (log, start, finished) = (log.clone(), start.clone(), finished.clone());
        std::thread::spawn(move || {
            start.wait();
            for _ in 0..REPLICATED_TRIES {
                let refused = log.append_replicated(&foreign);
                assert!(
                    matches!(
                        refused,
                        Err(myolog_storage::ReplicationError::Refused { .. })
                    ),
                    "{refused:?}"
                );
            }
            finished.send("replicator").unwrap();
        });
    }
    for _ in 0..=APPENDERS {
        // A lost hand-over would leave a thread waiting forever: fail instead of hanging.
        finishing
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("every appender and the replicated append finish");
    }
    let events = assert_contiguous_and_intact(&log);
    assert_eq!(events.len(), 1 + APPENDERS * BATCHES * 3);
}
