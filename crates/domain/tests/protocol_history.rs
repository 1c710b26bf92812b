//! An amendment that widens a window: the same visit is a deviation under version 1 and on time under
//! version 2, and each result names the version it used; a protocol registered under another study id
//! names both ids in every version.

use myolog_domain::protocol::{DayWindow, Protocol, ProtocolHistory, VisitTiming};

const STIR: &str = include_str!("../../../protocols/stir.toml");

fn load(name: &str, text: &str) -> Protocol {
    Protocol::from_toml(name, text)
        .unwrap_or_else(|errors| panic!("{name} does not validate:\n{errors}"))
}

fn amendment(version: u32, window: &str) -> String {
    STIR.replace("version = 1 ", &format!("version = {version} "))
        .replace(
            "[study]",
            "[protocol.amendment]\nsummary = \"Week 12 window widened\"\n\n[study]",
        )
        .replace("window = [77, 91]", window)
}

#[test]
fn each_version_classifies_visits_by_its_own_windows() {
    let mut history = ProtocolHistory::new(load("protocols/stir.toml", STIR));
    let amended = history
        .amend(load("stir v2", &amendment(2, "window = [74, 94]")))
        .map(|reference| reference.to_string());
    assert_eq!(amended, Ok("STIR v2".to_string()));
    assert_eq!(history.current().reference().to_string(), "STIR v2");

    let per_version: Vec<(String, Result<VisitTiming, String>)> = history
        .versions()
        .map(|protocol| {
            (
                protocol.reference().to_string(),
                protocol
                    .classify_visit("TOFA", "W12", 93)
                    .map_err(|error| error.to_string()),
            )
        })
        .collect();
    assert_eq!(
        per_version,
        vec![
            (
                "STIR v1".to_string(),
                Ok(VisitTiming::OutsideWindow {
                    encounter: "W12".into(),
                    window: DayWindow {
                        first_day: 77,
                        last_day: 91
                    },
                    days_outside: 2
                }),
            ),
            (
                "STIR v2".to_string(),
                Ok(VisitTiming::InWindow {
                    encounter: "W12".into(),
                    target_day: 84,
                    days_from_target: 9
                })
            ),
        ]
    );
    assert_eq!(
        history.version(1).map(|protocol| protocol.version()),
        Some(1)
    );
    assert_eq!(history.version(3), None);
}

#[test]
fn an_amendment_must_be_the_next_version_of_the_same_study() {
    let mut history = ProtocolHistory::new(load("protocols/stir.toml", STIR));
    let skipped = history
        .amend(load("stir v3", &amendment(3, "window = [74, 94]")))
        .map_err(|error| error.to_string());
    assert_eq!(
        skipped,
        Err("expected protocol version 2 (the next one), found version 3".to_string())
    );
    let other = load(
        "protocols/bird.toml",
        include_str!("../../../protocols/bird.toml"),
    );
    let other_study = history.amend(other).map_err(|error| error.to_string());
    assert_eq!(
        other_study,
        Err(
            "the amendment is for study BIRD, but the registered protocol is for study STIR"
                .to_string()
        )
    );
    assert_eq!(history.versions().count(), 1);
}

#[test]
fn a_protocol_registered_under_another_study_id_names_both_in_every_version() {
    // (registered under, reference of v1, reference of v2)
    let cases = [
        ("STIR", "STIR v1", "STIR v2"),
        (
            "STIR-DEMO",
            "STIR v1 registered as STIR-DEMO",
            "STIR v2 registered as STIR-DEMO",
        ),
    ];
    for (study, v1, v2) in cases {
        let mut registered = load("protocols/stir.toml", STIR);
        registered.register_under(study);
        assert_eq!(
            registered.registered_as(),
            (study != "STIR").then_some(study)
        );
        let mut history = ProtocolHistory::new(registered);
        // The amendment's own file knows nothing of the registered id: the history carries it.
        let amended = history
            .amend(load("stir v2", &amendment(2, "window = [74, 94]")))
            .map(|reference| reference.to_string());
        assert_eq!(amended, Ok(v2.to_string()), "{study}");
        let names: Vec<String> = history
            .versions()
            .map(|protocol| protocol.reference().to_string())
            .collect();
        assert_eq!(names, [v1, v2], "{study}");
    }
}
