//! Which study a registered protocol belongs to. A protocol file names its trial (`study.id`); a
//! StudyRegistered names the study in the log. They must agree, unless the event says explicitly
//! that it registers the protocol under another id (`protocol_study_id` = the protocol's own id):
//! otherwise a typo in a study id, or the wrong file, would silently put one trial's schedule and
//! endpoints on another trial's data. The explicit mapping stays in the stored event, and the
//! domain event carries it into every outcome's protocol reference (`STIR v1 registered as
//! STIR-DEMO`).
//!
//! Checked at ingest only: a log written before this rule may hold a protocol under another id
//! without the field, and replay must still read it (its outcomes name both ids all the same).

use myolog_domain::event::{Event, EventBody, EventId};
use myolog_proto::v1 as pb;

use myolog_projection::Violation;

/// The violations of a valid batch (`events` decoded from `wire`, index by index) against the rule
/// above; events already in the log (`stored`) are retries and are not judged again.
pub fn check_protocol_study_ids(
    wire: &[pb::Event],
    events: &[Event],
    stored: impl Fn(&EventId) -> bool,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (index, (wire_event, event)) in wire.iter().zip(events).enumerate() {
        let (
            Some(pb::event::Body::StudyRegistered(registered)),
            EventBody::StudyRegistered { protocol, .. },
        ) = (&wire_event.body, &event.body)
        else {
            continue;
        };
        if stored(&event.event_id) {
            continue;
        }
        let declared = registered.protocol_study_id.as_str();
        // Quoted in the answer: a long value is cut, as no study id is that long.
        let quoted = match declared.char_indices().nth(64) {
            Some((end, _)) => format!("{}...", &declared[..end]),
            None => declared.to_string(),
        };
        let path = format!("events[{index}]");
        let Some(protocol) = protocol else {
            if !declared.is_empty() {
                violations.push(Violation::new(
                    format!("{path}.study_registered.protocol_study_id"),
                    format!(
                        "`{quoted}` names a protocol's study id, but the event carries no protocol \
                         (protocol_toml is empty); leave protocol_study_id empty"
                    ),
                ));
            }
            continue;
        };
        let own = protocol.study().id.as_str();
        let study = event.study.as_str();
        let file = if registered.protocol_file.is_empty() {
            String::new()
        } else {
            format!(" ({})", registered.protocol_file)
        };
        if declared.is_empty() && study != own {
            violations.push(Violation::new(
                format!("{path}.study_id"),
                format!(
                    "study id {study} is not the protocol's study id {own}{file}; register the \
                     study as {own}, or set study_registered.protocol_study_id to {own} to register \
                     {own}'s protocol under {study}"
                ),
            ));
        } else if !declared.is_empty() && declared != own {
            let fix = if study == own {
                format!("leave it empty, or send {own}")
            } else {
                format!("send {own} to register {own}'s protocol under {study}")
            };
            violations.push(Violation::new(
                format!("{path}.study_registered.protocol_study_id"),
                format!("`{quoted}` is not the protocol's study id {own}{file}; {fix}"),
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    const STIR: &str = include_str!("../../../protocols/stir.toml");

    fn registration(study: &str, declared: &str, toml: &str) -> pb::Event {
        pb::Event {
            source_audit: None,
            event_id: format!("{study}.registered"),
            study_id: study.into(),
            subject_id: String::new(),
            visit_id: String::new(),
            clinical_date: "2024-01-01".into(),
            body: Some(pb::event::Body::StudyRegistered(pb::StudyRegistered {
                population: pb::Population::Adult as i32,
                protocol_file: if toml.is_empty() { "" } else { "stir.toml" }.into(),
                protocol_toml: toml.into(),
                protocol_study_id: declared.into(),
                ..Default::default()
            })),
        }
    }

    /// (study id, protocol_study_id, with STIR's protocol, the violation as (field, text)).
    type Case<'a> = (&'a str, &'a str, bool, Option<(&'a str, &'a str)>);

    #[test]
    fn the_registered_study_id_is_the_protocols_unless_the_event_maps_it() {
        let cases: [Case; 7] = [
            ("STIR", "", true, None),
            ("STIR", "STIR", true, None),
            ("STIR-DEMO", "STIR", true, None),
            ("PLAIN", "", false, None),
            (
                "STIR-DEMO",
                "",
                true,
                Some((
                    "events[0].study_id",
                    "study id STIR-DEMO is not the protocol's study id STIR (stir.toml); register \
                     the study as STIR, or set study_registered.protocol_study_id to STIR to \
                     register STIR's protocol under STIR-DEMO",
                )),
            ),
            (
                "STIR-DEMO",
                "BIRD",
                true,
                Some((
                    "events[0].study_registered.protocol_study_id",
                    "`BIRD` is not the protocol's study id STIR (stir.toml); send STIR to register \
                     STIR's protocol under STIR-DEMO",
                )),
            ),
            (
                "PLAIN",
                "STIR",
                false,
                Some((
                    "events[0].study_registered.protocol_study_id",
                    "`STIR` names a protocol's study id, but the event carries no protocol \
                     (protocol_toml is empty); leave protocol_study_id empty",
                )),
            ),
        ];
        for (study, declared, with_protocol, expected) in cases {
            let wire = vec![registration(
                study,
                declared,
                if with_protocol { STIR } else { "" },
            )];
            let events = crate::event::batch_from_proto(&wire).expect("a valid event");
            let found: Vec<(String, String)> = check_protocol_study_ids(&wire, &events, |_| false)
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect();
            let expected: Vec<(String, String)> = expected
                .into_iter()
                .map(|(field, text)| (field.to_string(), text.to_string()))
                .collect();
            assert_eq!(found, expected, "{study} {declared:?} {with_protocol}");
            // A retry of an event already in the log is not judged again.
            assert!(check_protocol_study_ids(&wire, &events, |_| true).is_empty());
        }
        // A value longer than any study id is quoted cut.
        let wire = vec![registration("STIR", &"X".repeat(100), STIR)];
        let events = crate::event::batch_from_proto(&wire).expect("a valid event");
        let found: Vec<String> = check_protocol_study_ids(&wire, &events, |_| false)
            .into_iter()
            .map(|v| v.description)
            .collect();
        assert_eq!(
            found,
            [format!(
                "`{}...` is not the protocol's study id STIR (stir.toml); leave it empty, or send \
                 STIR",
                "X".repeat(64)
            )]
        );
    }

    #[test]
    fn a_protocol_under_another_id_names_both_in_its_reference() {
        // (study id, protocol_study_id, reference)
        let cases = [
            ("STIR", "", "STIR v1"),
            ("STIR-DEMO", "STIR", "STIR v1 registered as STIR-DEMO"),
        ];
        for (study, declared, reference) in cases {
            let events = crate::event::batch_from_proto(&[registration(study, declared, STIR)])
                .expect("a valid event");
            let protocol = match events.first().map(|event| &event.body) {
                Some(EventBody::StudyRegistered {
                    protocol: Some(protocol),
                    ..
                }) => protocol.reference().to_string(),
                other => format!("no protocol: {other:?}"),
            };
            assert_eq!(protocol, reference, "{study}");
        }
    }
}
