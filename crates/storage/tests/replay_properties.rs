//! Property tests: any interleaving of appends from several clients — with retries, reused ids and
//! wrong expected versions — replays to exactly the accepted events, in order, before and after a
//! reopen; and concurrent appenders' batches land whole and in each client's order.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::collections::HashMap;

use common::open;
use myolog_storage::{AppendError, ExpectedVersion, NewEvent};
use proptest::prelude::*;

/// One event as generated: small pools of ids and streams make retries and conflicts frequent.
#[derive(Clone, Debug)]
struct EventSpec {
    id: u8,
    stream: u8,
    expected: Option<u8>,
    variant: u8,
}

#[derive(Clone, Debug)]
struct Step {
    client: u8,
    events: Vec<EventSpec>,
}

fn step() -> impl Strategy<Value = Step> {
    let event = (0u8..24, 0u8..3, proptest::option::of(0u8..6), 0u8..2).prop_map(
        |(id, stream, expected, variant)| EventSpec {
            id,
            stream,
            expected,
            variant,
        },
    );
    (0u8..3, proptest::collection::vec(event, 1..5))
        .prop_map(|(client, events)| Step { client, events })
}

fn to_new_event(spec: &EventSpec) -> NewEvent {
    NewEvent {
        event_id: format!("id-{}", spec.id),
        stream_key: format!("stream-{}", spec.stream),
        expected_version: ExpectedVersion::from(spec.expected.map(u64::from)),
        event_type: "prop.v1.Event".into(),
        schema_version: 1,
        payload: vec![spec.id, spec.stream, spec.variant],
    }
}

/// What the log should hold: the reference model of append semantics.
#[derive(Default)]
struct Model {
    /// (event id, stream, stream version, payload, principal) in sequence order.
    log: Vec<(String, String, u64, Vec<u8>, String)>,
    ids: HashMap<String, usize>,
    streams: HashMap<String, u64>,
}

impl Model {
    /// Applies a batch under the log's rules: Ok(per event (seq, stream version, duplicate)) or the
    /// name of the error.
    fn append(
        &mut self,
        batch: &[NewEvent],
        principal: &str,
    ) -> Result<Vec<(u64, u64, bool)>, &'static str> {
        let mut staged = Vec::new();
        let mut staged_ids: HashMap<String, usize> = HashMap::new();
        let mut staged_streams: HashMap<String, u64> = HashMap::new();
        let mut answers = Vec::new();
        for event in batch {
            let earlier = staged_ids
                .get(&event.event_id)
                .map(|&i| &staged[i - self.log.len()])
                .or_else(|| self.ids.get(&event.event_id).map(|&i| &self.log[i]))
                .cloned();
            if let Some((_, stream, version, payload, _)) = earlier {
                if stream != event.stream_key || payload != event.payload {
                    return Err("conflict");
                }
                let index = staged_ids
                    .get(&event.event_id)
                    .or_else(|| self.ids.get(&event.event_id))
                    .unwrap();
                answers.push((*index as u64 + 1, version, true));
                continue;
            }
            let current = staged_streams
                .get(&event.stream_key)
                .or_else(|| self.streams.get(&event.stream_key))
                .copied()
                .unwrap_or(0);
            if let ExpectedVersion::Exactly(expected) = event.expected_version
                && expected != current
            {
                return Err("wrong version");
            }
            let index = self.log.len() + staged.len();
            staged_ids.insert(event.event_id.clone(), index);
            staged_streams.insert(event.stream_key.clone(), current + 1);
            staged.push((
                event.event_id.clone(),
                event.stream_key.clone(),
                current + 1,
                event.payload.clone(),
                principal.to_owned(),
            ));
            answers.push((index as u64 + 1, current + 1, false));
        }
        self.ids.extend(staged_ids);
        self.streams.extend(staged_streams);
        self.log.extend(staged);
        Ok(answers)
    }
}

fn error_name(error: &AppendError) -> &'static str {
    match error {
        AppendError::EventIdConflict { .. } => "conflict",
        AppendError::WrongExpectedVersion { .. } => "wrong version",
        other => panic!("unexpected error {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_of_appends_replays_exactly(steps in proptest::collection::vec(step(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = open(&path);
        let mut model = Model::default();
        for step in &steps {
            let batch: Vec<NewEvent> = step.events.iter().map(to_new_event).collect();
            let principal = format!("client-{}", step.client);
            let expected = model.append(&batch, &principal);
            let actual = log
                .append(batch, &principal)
                .map(|appended| appended.iter().map(|a| (a.seq, a.stream_version, a.duplicate)).collect::<Vec<_>>())
                .map_err(|error| error_name(&error));
            prop_assert_eq!(actual, expected);
        }
        let check = |log: &myolog_storage::EventLog| -> Result<(), TestCaseError> {
            let replay: Vec<_> = log
                .read_range(..)
                .map(|e| {
                    let e = e.unwrap();
                    (e.event_id, e.stream_key, e.stream_version, e.payload, e.recorded_by)
                })
                .collect();
            prop_assert_eq!(&replay, &model.log);
            for stream in 0..3 {
                let key = format!("stream-{stream}");
                let from_log: Vec<_> = log.read_stream(&key, 1).map(|e| e.unwrap().event_id).collect();
                let from_model: Vec<_> = model.log.iter().filter(|e| e.1 == key).map(|e| e.0.clone()).collect();
                prop_assert_eq!(from_log, from_model);
            }
            let report = log.verify().unwrap();
            prop_assert!(report.is_intact(), "{:?}", report);
            prop_assert_eq!(report.events_checked, model.log.len() as u64);
            Ok(())
        };
        check(&log)?;
        drop(log);
        check(&open(&path))?;
    }

    #[test]
    fn concurrent_clients_batches_land_whole_and_in_client_order(
        batch_sizes in proptest::collection::vec(proptest::collection::vec(1usize..6, 1..8), 2..5)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir.path().join("log"));
        let clients: Vec<_> = batch_sizes
            .iter()
            .cloned()
            .enumerate()
            .map(|(client, sizes)| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut batches = Vec::new();
                    for (batch, size) in sizes.into_iter().enumerate() {
                        let ids: Vec<String> = (0..size).map(|i| format!("c{client}-b{batch}-e{i}")).collect();
                        let events = ids
                            .iter()
                            .map(|id| common::event(id, &format!("client-{client}"), ExpectedVersion::Any))
                            .collect();
                        let appended = log.append(events, &format!("client-{client}")).unwrap();
                        batches.push((ids, appended.iter().map(|a| a.seq).collect::<Vec<_>>()));
                    }
                    batches
                })
            })
            .collect();
        let per_client: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let replay: Vec<_> = log.read_range(..).map(|e| e.unwrap()).collect();
        let total: usize = batch_sizes.iter().flatten().sum();
        prop_assert_eq!(replay.len(), total);
        for batches in &per_client {
            let mut last_seq = 0;
            for (ids, seqs) in batches {
                // Whole: a batch occupies consecutive sequence numbers. In order: after the client's
                // previous batch.
                prop_assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
                prop_assert!(seqs[0] > last_seq);
                last_seq = *seqs.last().unwrap();
                for (id, seq) in ids.iter().zip(seqs) {
                    prop_assert_eq!(&replay[*seq as usize - 1].event_id, id);
                }
            }
        }
        prop_assert!(log.verify().unwrap().is_intact());
    }
}
