//! Robustness properties: hostile or broken input never panics the server's parsers. Each property
//! runs a fixed number of cases (below, and in docs/operations.md), so a CI run tries the same amount:
//!
//! - arbitrary bytes as a SubmitRequest or Event -> protobuf decode -> domain conversion;
//! - real events (the synthetic cohort) with bytes flipped, inserted or cut -> decode -> conversion;
//! - real events with their identifier and date fields replaced by arbitrary strings (well-typed
//!   messages with hostile content) -> conversion;
//! - arbitrary well-typed events (every body kind; globals, MMT-8, HAQ, HAQ-DI forms with arbitrary
//!   numbers, enum values and decimal text) -> conversion, as a batch and after an encode round trip;
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
use myolog_storage::{Hash, RecordedEvent};
use myolog_synth::{Cohort, VISITS};
use myolog_wire as wire;
use proptest::prelude::*;
use prost::Message;

/// Cases per property (the robustness paragraph of docs/operations.md quotes these).
const BYTES_CASES: u32 = 4000;
const MUTATION_CASES: u32 = 2000;
const TOML_CASES: u32 = 1000;
const WELL_TYPED_CASES: u32 = 2000;

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

// The strategies below are boxed: unboxed, their nested generic types made proptest's value
// generation overflow the 2 MiB test-thread stack in debug builds (the conversions themselves run
// fine on 2 MiB; checked with the generated values on a 2 MiB thread).
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        ".{0,12}",
        "-?[0-9]{0,4}(\\.[0-9]{0,6})?",
        Just(String::new()),
        Just("1e9999".to_string()),
        Just("9".repeat(100)),
    ]
    .boxed()
}

fn grade() -> BoxedStrategy<pb::MmtGrade> {
    (
        proptest::option::of(any::<u32>()),
        proptest::option::of(0u32..12),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(grade, right, left)| pb::MmtGrade { grade, right, left })
        .boxed()
}

fn vas() -> BoxedStrategy<Option<pb::Vas>> {
    proptest::option::of(prop_oneof![
        text().prop_map(|cm| pb::Vas {
            value: Some(pb::vas::Value::Cm(cm))
        }),
        any::<u32>().prop_map(|mm| pb::Vas {
            value: Some(pb::vas::Value::Mm(mm))
        }),
        Just(pb::Vas { value: None }),
    ])
    .boxed()
}

fn haq_items() -> BoxedStrategy<Vec<pb::HaqItem>> {
    proptest::collection::vec(
        proptest::option::of(0u32..6).prop_map(|score| pb::HaqItem { score }),
        0..4,
    )
    .boxed()
}

fn instrument() -> BoxedStrategy<Option<pb::assessment_recorded::Instrument>> {
    use pb::assessment_recorded::Instrument;
    proptest::option::of(prop_oneof![
        (vas(), vas(), vas()).prop_map(|(p, q, e)| Instrument::Globals(pb::Globals {
            physician_global: p,
            patient_global: q,
            extramuscular_global: e,
        })),
        (
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            proptest::collection::vec(grade(), 8),
        )
            .prop_map(|(max, total, g)| Instrument::Mmt8(pb::Mmt8 {
                max,
                total,
                grades: Some(pb::Mmt8Grades {
                    neck_flexors: Some(g[0]),
                    deltoid: Some(g[1]),
                    biceps: Some(g[2]),
                    wrist_extensors: Some(g[3]),
                    gluteus_maximus: Some(g[4]),
                    gluteus_medius: Some(g[5]),
                    quadriceps: Some(g[6]),
                    ankle_dorsiflexors: Some(g[7]),
                }),
            })),
        (
            proptest::collection::vec(haq_items(), 8),
            proptest::collection::vec(any::<i32>(), 0..4),
            proptest::collection::vec(any::<i32>(), 0..4),
        )
            .prop_map(|(items, aids, help)| Instrument::Haq(pb::Haq {
                items: Some(pb::HaqItems {
                    dressing: items[0].clone(),
                    arising: items[1].clone(),
                    eating: items[2].clone(),
                    walking: items[3].clone(),
                    hygiene: items[4].clone(),
                    reach: items[5].clone(),
                    grip: items[6].clone(),
                    activities: items[7].clone(),
                }),
                aids,
                help,
            })),
        text().prop_map(|value| Instrument::HaqDi(pb::HaqDi { value })),
    ])
    .boxed()
}

fn body() -> BoxedStrategy<Option<pb::event::Body>> {
    use pb::event::Body;
    proptest::option::of(prop_oneof![
        (text(), any::<i32>(), text()).prop_map(|(title, population, baseline_visit_id)| {
            Body::StudyRegistered(pb::StudyRegistered {
                title,
                population,
                baseline_visit_id,
                ..Default::default()
            })
        }),
        (
            (text(), any::<i32>(), text()),
            (
                any::<Option<u32>>(),
                any::<Option<bool>>(),
                any::<Option<u32>>()
            )
        )
            .prop_map(
                |((arm, population, site_id), (age_years, muscle_active, stable_weeks))| {
                    Body::SubjectEnrolled(pb::SubjectEnrolled {
                        arm,
                        population,
                        site_id,
                        age_years,
                        muscle_active,
                        prednisone_stable_weeks: stable_weeks,
                        ..Default::default()
                    })
                }
            ),
        text().prop_map(|reason| Body::SubjectWithdrawn(pb::SubjectWithdrawn { reason })),
        text().prop_map(|reason| Body::StudyLocked(pb::StudyLocked { reason })),
        text().prop_map(|reason| Body::StudyUnlocked(pb::StudyUnlocked { reason })),
        text().prop_map(|reason| Body::StudyUnblinded(pb::StudyUnblinded { reason })),
        (any::<i32>(), text(), text()).prop_map(|(kind, drug, mg_per_day)| {
            Body::DoseRecorded(pb::DoseRecorded {
                kind,
                drug,
                mg_per_day,
            })
        }),
        instrument().prop_map(|instrument| {
            Body::AssessmentRecorded(pb::AssessmentRecorded { instrument })
        }),
        (text(), text(), instrument()).prop_map(|(supersedes_event_id, reason, instrument)| {
            Body::AssessmentCorrected(pb::AssessmentCorrected {
                supersedes_event_id,
                reason,
                corrected: Some(pb::AssessmentRecorded { instrument }),
            })
        }),
    ])
    .boxed()
}

fn event() -> BoxedStrategy<pb::Event> {
    (
        prop_oneof![text(), Just("E1".to_string())],
        prop_oneof![text(), Just("STIR".to_string())],
        prop_oneof![text(), Just("S001".to_string())],
        prop_oneof![text(), Just("baseline".to_string())],
        prop_oneof![
            text(),
            Just("2024-01-15".to_string()),
            Just("2024-02-30".to_string())
        ],
        body(),
    )
        .prop_map(
            |(event_id, study_id, subject_id, visit_id, clinical_date, body)| pb::Event {
                event_id,
                study_id,
                subject_id,
                visit_id,
                clinical_date,
                body,
            },
        )
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: WELL_TYPED_CASES, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_well_typed_events_never_panic(events in proptest::collection::vec(event(), 1..4)) {
        let _ = wire::batch_from_proto(&events);
        for event in &events {
            let _ = wire::event_from_proto(event, "event");
            convert_bytes(&event.encode_to_vec());
        }
    }
}
