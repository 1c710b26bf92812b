//! Idempotency, optimistic concurrency and input validation, as tables of append steps and their
//! expected answers.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use common::{open, options};
use myolog_storage::{AppendError, EventLog, ExpectedVersion, InvalidEvent, LogOptions, NewEvent};

/// One event of a step: (event id, stream, expected version, payload tag).
type Spec = (&'static str, &'static str, Option<u64>, &'static str);

/// What a step must answer: per event (seq, stream version, duplicate), or an error kind.
#[derive(Debug)]
enum Outcome {
    Appended(&'static [(u64, u64, bool)]),
    WrongVersion {
        index: usize,
        expected: u64,
        actual: u64,
    },
    IdConflict {
        index: usize,
        original_seq: Option<u64>,
    },
}

/// A named scenario: append steps, each a batch and what it must answer.
type Scenario = (&'static str, &'static [(&'static [Spec], Outcome)]);

fn new_event((event_id, stream_key, expected, payload): Spec) -> NewEvent {
    NewEvent {
        event_id: event_id.into(),
        stream_key: stream_key.into(),
        expected_version: ExpectedVersion::from(expected),
        event_type: if payload == "other-type" {
            "test.v1.Other".into()
        } else {
            "test.v1.Thing".into()
        },
        schema_version: 1,
        payload: payload.as_bytes().to_vec(),
    }
}

#[test]
fn retries_duplicates_and_expected_versions_follow_the_table() {
    use Outcome::*;
    let scenarios: &[Scenario] = &[
        (
            "a retry returns the original",
            &[
                (&[("a", "s", Some(0), "x")], Appended(&[(1, 1, false)])),
                (&[("a", "s", Some(0), "x")], Appended(&[(1, 1, true)])),
            ],
        ),
        (
            "a retry after the stream moved on is still a duplicate, not a version conflict",
            &[
                (&[("a", "s", Some(0), "x")], Appended(&[(1, 1, false)])),
                (&[("b", "s", Some(1), "y")], Appended(&[(2, 2, false)])),
                (&[("a", "s", Some(0), "x")], Appended(&[(1, 1, true)])),
            ],
        ),
        (
            "the same id with another payload is a conflict",
            &[
                (&[("a", "s", None, "x")], Appended(&[(1, 1, false)])),
                (
                    &[("a", "s", None, "changed")],
                    IdConflict {
                        index: 0,
                        original_seq: Some(1),
                    },
                ),
            ],
        ),
        (
            "the same id on another stream is a conflict",
            &[
                (&[("a", "s", None, "x")], Appended(&[(1, 1, false)])),
                (
                    &[("a", "t", None, "x")],
                    IdConflict {
                        index: 0,
                        original_seq: Some(1),
                    },
                ),
            ],
        ),
        (
            "the same id with another event type is a conflict",
            &[
                (&[("a", "s", None, "x")], Appended(&[(1, 1, false)])),
                (
                    &[("a", "s", None, "other-type")],
                    IdConflict {
                        index: 0,
                        original_seq: Some(1),
                    },
                ),
            ],
        ),
        (
            "a duplicate within one batch is answered with the first occurrence",
            &[(
                &[
                    ("a", "s", None, "x"),
                    ("a", "s", None, "x"),
                    ("b", "s", None, "y"),
                ],
                Appended(&[(1, 1, false), (1, 1, true), (2, 2, false)]),
            )],
        ),
        (
            "a conflicting id within one batch rejects the batch",
            &[
                (
                    &[("a", "s", None, "x"), ("a", "s", None, "changed")],
                    IdConflict {
                        index: 1,
                        original_seq: None,
                    },
                ),
                (&[("c", "s", None, "z")], Appended(&[(1, 1, false)])),
            ],
        ),
        (
            "a retried batch writes only its new events",
            &[
                (&[("a", "s", None, "x")], Appended(&[(1, 1, false)])),
                (
                    &[("a", "s", None, "x"), ("b", "s", None, "y")],
                    Appended(&[(1, 1, true), (2, 2, false)]),
                ),
            ],
        ),
        (
            "expected versions chain within a batch",
            &[(
                &[
                    ("a", "s", Some(0), "x"),
                    ("b", "s", Some(1), "y"),
                    ("c", "t", Some(0), "z"),
                    ("d", "s", Some(2), "w"),
                ],
                Appended(&[(1, 1, false), (2, 2, false), (3, 1, false), (4, 3, false)]),
            )],
        ),
        (
            "one wrong expected version rejects the whole batch",
            &[
                (&[("a", "s", None, "x")], Appended(&[(1, 1, false)])),
                (
                    &[("b", "t", Some(0), "y"), ("c", "s", Some(0), "z")],
                    WrongVersion {
                        index: 1,
                        expected: 0,
                        actual: 1,
                    },
                ),
                (&[("b", "t", Some(0), "y")], Appended(&[(2, 1, false)])),
            ],
        ),
        (
            "expecting a version from the future is refused",
            &[(
                &[("a", "s", Some(3), "x")],
                WrongVersion {
                    index: 0,
                    expected: 3,
                    actual: 0,
                },
            )],
        ),
    ];
    for (scenario, steps) in scenarios {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir.path().join("log"));
        for (step, (specs, expected)) in steps.iter().enumerate() {
            let head_before = log.head();
            let result = log.append(specs.iter().copied().map(new_event).collect(), "tester");
            let context = format!("{scenario}, step {step}: {result:?}");
            match (expected, &result) {
                (Appended(want), Ok(got)) => {
                    let got: Vec<_> = got
                        .iter()
                        .map(|a| (a.seq, a.stream_version, a.duplicate))
                        .collect();
                    assert_eq!(&got[..], *want, "{context}");
                }
                (
                    WrongVersion {
                        index,
                        expected,
                        actual,
                    },
                    Err(AppendError::WrongExpectedVersion {
                        index: i,
                        expected: e,
                        actual: a,
                        ..
                    }),
                ) => assert_eq!((index, expected, actual), (i, e, a), "{context}"),
                (
                    IdConflict {
                        index,
                        original_seq,
                    },
                    Err(AppendError::EventIdConflict {
                        index: i,
                        original_seq: o,
                        ..
                    }),
                ) => assert_eq!((index, original_seq), (i, o), "{context}"),
                _ => panic!("{context}: expected {expected:?}"),
            }
            if result.is_err() {
                assert_eq!(
                    log.head(),
                    head_before,
                    "{context}: a rejected batch moved the head"
                );
            }
        }
        let report = log.verify().unwrap();
        assert!(report.is_intact(), "{scenario}: {report:?}");
    }
}

#[test]
fn malformed_appends_are_refused_before_anything_is_written() {
    let valid = || new_event(("a", "s", None, "x"));
    let long = "x".repeat(myolog_storage::MAX_NAME_BYTES + 1);
    type Case = (
        &'static str,
        Box<dyn Fn(&str) -> (Vec<NewEvent>, String)>,
        fn(&AppendError) -> bool,
    );
    let cases: Vec<Case> = vec![
        ("empty batch", Box::new(|_| (vec![], "p".into())), |e| {
            matches!(e, AppendError::EmptyBatch)
        }),
        (
            "batch over the limit",
            Box::new(move |_| (vec![valid(); 5], "p".into())),
            |e| matches!(e, AppendError::BatchTooLarge { len: 5, max: 4 }),
        ),
        (
            "empty principal",
            Box::new(move |_| (vec![valid()], String::new())),
            |e| matches!(e, AppendError::InvalidPrincipal(InvalidEvent::Empty { .. })),
        ),
        (
            "empty event id",
            Box::new(|_| (vec![new_event(("", "s", None, "x"))], "p".into())),
            |e| {
                matches!(
                    e,
                    AppendError::InvalidEvent {
                        index: 0,
                        reason: InvalidEvent::Empty { field: "event id" }
                    }
                )
            },
        ),
        (
            "empty stream key in the second event",
            Box::new(move |_| (vec![valid(), new_event(("b", "", None, "x"))], "p".into())),
            |e| {
                matches!(
                    e,
                    AppendError::InvalidEvent {
                        index: 1,
                        reason: InvalidEvent::Empty {
                            field: "stream key"
                        }
                    }
                )
            },
        ),
        (
            "overlong event id",
            Box::new(|long| {
                let mut event = new_event(("a", "s", None, "x"));
                event.event_id = long.to_owned();
                (vec![event], "p".into())
            }),
            |e| {
                matches!(
                    e,
                    AppendError::InvalidEvent {
                        reason: InvalidEvent::TooLong {
                            field: "event id",
                            ..
                        },
                        ..
                    }
                )
            },
        ),
        (
            "oversized payload",
            Box::new(|_| {
                let mut event = new_event(("a", "s", None, "x"));
                event.payload = vec![0; myolog_storage::MAX_PAYLOAD_BYTES + 1];
                (vec![event], "p".into())
            }),
            |e| {
                matches!(
                    e,
                    AppendError::InvalidEvent {
                        reason: InvalidEvent::TooLong {
                            field: "payload",
                            ..
                        },
                        ..
                    }
                )
            },
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(
        dir.path().join("log"),
        LogOptions {
            max_batch_events: 4,
            ..options()
        },
    )
    .unwrap();
    for (what, make, is_expected) in &cases {
        let (batch, principal) = make(&long);
        let error = log.append(batch, &principal).expect_err(what);
        assert!(is_expected(&error), "{what}: {error}");
        assert_eq!(log.head().seq, 0, "{what}");
    }
}
