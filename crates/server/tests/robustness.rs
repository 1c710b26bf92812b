//! Robustness properties: hostile or broken input never panics the server's parsers. Each property
//! runs a fixed number of cases (below, and in the README), so a CI run tries the same amount:
//!
//! - arbitrary bytes as a SubmitRequest or Event -> protobuf decode -> domain conversion;
//! - real events (the synthetic cohort) with bytes flipped, inserted or cut -> decode -> conversion;
//! - real events with their identifier and date fields replaced by arbitrary strings (well-typed
//!   messages with hostile content) -> conversion;
//! - a stored payload (arbitrary bytes, arbitrary schema version) -> `app::decode_stored`, as the
//!   server does for every event of the log at start;
//! - arbitrary text, and real protocol files with characters replaced or cut, ->
//!   `Protocol::from_toml`;
//! - the auth inputs: arbitrary `authorization` values, principals-file text, and certificate bytes.
//!
//! "Never panics" is the property: each case's result (Ok or an error) is ignored.

use std::path::Path;
use std::sync::OnceLock;

use myolog_domain::protocol::Protocol;
use myolog_proto::v1 as pb;
use myolog_server::app::decode_stored;
use myolog_server::auth::principals::PrincipalsFile;
use myolog_server::auth::{tls, tokens};
use myolog_server::synth::{Cohort, VISITS};
use myolog_server::wire;
use myolog_storage::{Hash, RecordedEvent};
use proptest::prelude::*;
use prost::Message;

/// Cases per property (the README's robustness paragraph quotes these).
const BYTES_CASES: u32 = 4000;
const MUTATION_CASES: u32 = 2000;
const TOML_CASES: u32 = 1000;

/// Every event of a small synthetic cohort, encoded: enrollment, all visits, the correction.
/// (Built once: the properties draw from it thousands of times.)
fn real_events() -> &'static [pb::Event] {
    static EVENTS: OnceLock<Vec<pb::Event>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let cohort = Cohort::new(7, 2);
        let mut events = cohort.enrollment().events;
        for (visit, _) in VISITS {
            for index in 0..cohort.len() {
                events.extend(cohort.visit_batch(index, visit).events);
            }
        }
        events.extend(cohort.correction().events);
        events
    })
}

/// The three protocol files of `protocols/`.
fn protocols() -> &'static [String] {
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocols");
        ["stir.toml", "bird.toml", "myojak.toml"]
            .iter()
            .map(|name| std::fs::read_to_string(dir.join(name)).expect("protocol file"))
            .collect()
    })
}

/// Decodes and converts; the outcome is irrelevant, only that it returns.
fn convert_bytes(bytes: &[u8]) {
    if let Ok(request) = pb::SubmitRequest::decode(bytes) {
        let _ = wire::batch_from_proto(&request.events);
    }
    if let Ok(event) = pb::Event::decode(bytes) {
        let _ = wire::event_from_proto(&event, "event");
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Cut(usize),
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match *mutation {
            Mutation::Flip(at, mask) => {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b ^= mask;
                }
            }
            Mutation::Insert(at, byte) => bytes.insert((at % len).min(bytes.len()), byte),
            Mutation::Cut(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(a, m)| Mutation::Flip(a, m)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        any::<usize>().prop_map(Mutation::Cut),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: BYTES_CASES, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_wire(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        convert_bytes(&bytes);
    }

    #[test]
    fn arbitrary_payloads_never_panic_the_log_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        schema_version in prop_oneof![Just(1u32), any::<u32>()],
    ) {
        let stored = RecordedEvent {
            seq: 1,
            stream_key: "s".into(),
            stream_version: 1,
            event_id: "e".into(),
            event_type: "t".into(),
            schema_version,
            payload: bytes,
            recorded_at_unix_nanos: 0,
            recorded_by: "p".into(),
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        };
        let _ = decode_stored(&stored);
    }

    #[test]
    fn arbitrary_auth_inputs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = tokens::parse_bearer(&bytes);
        let _ = tls::subject_common_name(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = PrincipalsFile::parse(&text, Path::new("p.toml"));
        let _ = tokens::parse_hash(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: MUTATION_CASES, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_events_never_panic(
        index in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let events = real_events();
        let event = &events[index.index(events.len())];
        let bytes = mutate(event.encode_to_vec(), &mutations);
        convert_bytes(&bytes);
        let stored = RecordedEvent {
            seq: 1,
            stream_key: "s".into(),
            stream_version: 1,
            event_id: "e".into(),
            event_type: "t".into(),
            schema_version: 1,
            payload: bytes,
            recorded_at_unix_nanos: 0,
            recorded_by: "p".into(),
            prev_hash: Hash::ZERO,
            hash: Hash::ZERO,
        };
        let _ = decode_stored(&stored);
    }

    #[test]
    fn hostile_strings_in_real_events_never_panic(
        index in any::<prop::sample::Index>(),
        field in 0usize..5,
        text in prop_oneof![
            ".*",
            "[0-9.eE+-]{0,40}",
            "[0-9]{1,5}-[0-9]{1,3}-[0-9]{1,3}",
            Just(String::from("\u{0}")),
            Just("9".repeat(400)),
        ],
    ) {
        let events = real_events();
        let mut event = events[index.index(events.len())].clone();
        match field {
            0 => event.event_id = text,
            1 => event.study_id = text,
            2 => event.subject_id = text,
            3 => event.visit_id = text,
            _ => event.clinical_date = text,
        }
        let _ = wire::event_from_proto(&event, "event");
        let _ = wire::batch_from_proto(&[event.clone(), event]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: TOML_CASES, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_the_protocol_parser(text in ".{0,400}") {
        let _ = Protocol::from_toml("arbitrary.toml", &text);
    }

    #[test]
    fn mutated_protocol_files_never_panic_the_parser(
        which in 0usize..3,
        at in any::<prop::sample::Index>(),
        replacement in prop_oneof![".{0,3}", Just(String::from("\"")), Just(String::from("[")), Just(String::from("\n"))],
        cut in any::<bool>(),
    ) {
        let files = protocols();
        let text = &files[which];
        let chars: Vec<char> = text.chars().collect();
        let at = at.index(chars.len().max(1));
        let mut mutated: String = chars[..at.min(chars.len())].iter().collect();
        mutated.push_str(&replacement);
        if !cut {
            mutated.extend(chars.iter().skip(at + 1));
        }
        let _ = Protocol::from_toml("mutated.toml", &mutated);
    }
}
