//! Which visits an endpoint compares: MYOJAK's delayed-start baseline switch (from randomisation vs
//! from the subject's own first dose), follow-up timing against the window, missing visits, and how
//! the missing-data rule counts a subject.

use myolog_domain::protocol::{
    AttendedVisit, BaselineVisit, EndpointVisits, FollowupVisit, MissingDataRule, Protocol,
    ResponderStatus, VisitTiming,
};

fn load(name: &str, text: &str) -> Protocol {
    Protocol::from_toml(name, text)
        .unwrap_or_else(|errors| panic!("{name} does not validate:\n{errors}"))
}

fn visits(list: &[(&str, i32)]) -> Vec<AttendedVisit> {
    list.iter()
        .map(|(visit_id, day)| AttendedVisit {
            visit_id: visit_id.to_string(),
            day: *day,
        })
        .collect()
}

/// One line per endpoint, as a reviewer would write it down.
fn describe(resolved: &EndpointVisits) -> String {
    let baseline = match &resolved.baseline {
        BaselineVisit::Found {
            visit_id,
            day,
            anchor_day,
        } => format!("baseline {visit_id} day {day} (anchor day {anchor_day})"),
        BaselineVisit::BaselineVisitMissing { visit_id } => format!("baseline {visit_id} missing"),
        BaselineVisit::FirstDoseNotRecorded => "baseline: first dose not recorded".to_string(),
        BaselineVisit::NoVisitBeforeFirstDose { first_dose_day } => {
            format!("baseline: no visit on or before day {first_dose_day}")
        }
    };
    let followup = match &resolved.followup {
        FollowupVisit::Found {
            visit_id,
            day,
            timing: VisitTiming::InWindow {
                days_from_target, ..
            },
        } => {
            format!("follow-up {visit_id} day {day} in window ({days_from_target:+} from target)")
        }
        FollowupVisit::Found {
            visit_id,
            day,
            timing:
                VisitTiming::OutsideWindow {
                    window,
                    days_outside,
                    ..
                },
        } => {
            format!(
                "follow-up {visit_id} day {day} outside window {window} by {days_outside:+} days"
            )
        }
        FollowupVisit::NotAfterBaseline {
            visit_id,
            day,
            baseline_day,
        } => {
            format!("follow-up {visit_id} day {day} is not after the baseline day {baseline_day}")
        }
        FollowupVisit::Missing { visit_id, optional } => {
            format!(
                "follow-up {visit_id} missing{}",
                if *optional { " (optional visit)" } else { "" }
            )
        }
    };
    format!("{}: {baseline}; {followup}", resolved.endpoint)
}

/// (endpoint, arm, attended visits, first dose day, expected line or error)
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<AttendedVisit>,
    Option<i32>,
    Result<&'a str, &'a str>,
);

fn check(protocol: &Protocol, cases: Vec<Case<'_>>) {
    let differences: Vec<String> = cases
        .into_iter()
        .filter_map(|(endpoint, arm, attended, first_dose_day, expected)| {
            let actual = protocol
                .endpoint_visits(endpoint, arm, &attended, first_dose_day)
                .map(|resolved| describe(&resolved))
                .map_err(|error| error.to_string());
            let expected = expected.map(str::to_string).map_err(str::to_string);
            (actual != expected)
                .then(|| format!("{endpoint} {arm}: expected {expected:?}, actual {actual:?}"))
        })
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

const DELAYED_VISITS: &[(&str, i32)] = &[
    ("SCR", -30),
    ("BL", 0),
    ("W4", 28),
    ("W8", 56),
    ("W12", 84),
    ("W16", 112),
    ("W20", 140),
    ("W24", 168),
    ("W28", 196),
    ("W32", 224),
    ("W36", 250),
];
const IMMEDIATE_VISITS: &[(&str, i32)] = &[
    ("SCR", -30),
    ("BL", -1),
    ("W4", 28),
    ("W8", 56),
    ("W12", 84),
    ("W16", 112),
    ("W20", 140),
    ("W24", 170),
];

#[test]
fn myojak_outcomes_from_randomisation_and_from_the_own_first_dose() {
    let myojak = load(
        "protocols/myojak.toml",
        include_str!("../../../protocols/myojak.toml"),
    );
    let delayed = || visits(DELAYED_VISITS);
    check(
        &myojak,
        vec![
            (
                "TIS_W12",
                "DELAYED",
                delayed(),
                Some(85),
                Ok(
                    "TIS_W12: baseline BL day 0 (anchor day 0); follow-up W12 day 84 in window (+0 from target)",
                ),
            ),
            (
                "TIS_12W_DRUG",
                "DELAYED",
                delayed(),
                Some(85),
                Ok(
                    "TIS_12W_DRUG: baseline W12 day 84 (anchor day 85); follow-up W24 day 168 in window (+0 from target)",
                ),
            ),
            (
                "TIS_24W_DRUG",
                "DELAYED",
                delayed(),
                Some(85),
                Ok(
                    "TIS_24W_DRUG: baseline W12 day 84 (anchor day 85); follow-up W36 day 250 in window (-2 from target)",
                ),
            ),
            (
                "TIS_24W_DRUG",
                "DELAYED",
                delayed(),
                Some(84),
                Ok(
                    "TIS_24W_DRUG: baseline W12 day 84 (anchor day 84); follow-up W36 day 250 in window (-2 from target)",
                ),
            ),
            (
                "TIS_24W_DRUG",
                "DELAYED",
                delayed(),
                Some(83),
                Ok(
                    "TIS_24W_DRUG: baseline W8 day 56 (anchor day 83); follow-up W36 day 250 in window (-2 from target)",
                ),
            ),
            (
                "TIS_24W_DRUG",
                "DELAYED",
                delayed(),
                None,
                Ok(
                    "TIS_24W_DRUG: baseline: first dose not recorded; follow-up W36 day 250 in window (-2 from target)",
                ),
            ),
            (
                "TIS_12W_DRUG",
                "DELAYED",
                delayed(),
                Some(170),
                Ok(
                    "TIS_12W_DRUG: baseline W24 day 168 (anchor day 170); follow-up W24 day 168 is not after the baseline day 168",
                ),
            ),
            (
                "TIS_24W_DRUG",
                "DELAYED",
                visits(&DELAYED_VISITS[..10]),
                Some(85),
                Ok("TIS_24W_DRUG: baseline W12 day 84 (anchor day 85); follow-up W36 missing"),
            ),
            (
                "TIS_24W_DRUG",
                "DELAYED",
                visits(&[("W4", 28)]),
                Some(20),
                Ok("TIS_24W_DRUG: baseline: no visit on or before day 20; follow-up W36 missing"),
            ),
            (
                "TIS_24W_DRUG",
                "IMMED",
                visits(IMMEDIATE_VISITS),
                Some(0),
                Ok(
                    "TIS_24W_DRUG: baseline BL day -1 (anchor day 0); follow-up W24 day 170 in window (+2 from target)",
                ),
            ),
            (
                "TIS_W24",
                "IMMED",
                visits(&IMMEDIATE_VISITS[2..]),
                Some(0),
                Ok(
                    "TIS_W24: baseline BL missing; follow-up W24 day 170 in window (+2 from target)",
                ),
            ),
            (
                "TIS_24W_DRUG",
                "IMMED",
                // W36 is the immediate arm's end of follow-up: planned, but not this endpoint's
                // visit (24 weeks on drug is W24 for the immediate arm).
                visits(&[("BL", 0), ("W36", 252)]),
                Some(0),
                Ok("TIS_24W_DRUG: baseline BL day 0 (anchor day 0); follow-up W24 missing"),
            ),
            (
                "TIS_24W_DRUG",
                "IMMED",
                visits(&[("BL", 0), ("W40", 280)]),
                Some(0),
                Err(
                    "visit `W40` is not planned for arm `IMMED`; expected one of SCR, BL, W4, W8, W12, W16, W20, W24, W28, W32, W36",
                ),
            ),
            (
                "TIS_W36",
                "DELAYED",
                delayed(),
                Some(85),
                Err(
                    "unknown endpoint `TIS_W36`; expected one of TIS_W12, TISCAT_W12, DOI_W12, CDASI_W12, TIS_W24, TIS_12W_DRUG, TIS_24W_DRUG, TISCAT_24W_DRUG, DOI_24W_DRUG, CDASI_24W_DRUG",
                ),
            ),
            (
                "TIS_W12",
                "LATE",
                delayed(),
                Some(85),
                Err("unknown arm `LATE`; expected one of IMMED, DELAYED"),
            ),
        ],
    );
}

#[test]
fn stir_deviation_and_optional_extension_visit() {
    let stir = load(
        "protocols/stir.toml",
        include_str!("../../../protocols/stir.toml"),
    );
    check(
        &stir,
        vec![
            (
                "DOI_W12",
                "TOFA",
                visits(&[("BL", 0), ("W4", 28), ("W12", 95)]),
                Some(0),
                Ok(
                    "DOI_W12: baseline BL day 0 (anchor day 0); follow-up W12 day 95 outside window [77, 91] by +4 days",
                ),
            ),
            (
                "DOI_W16",
                "TOFA",
                visits(&[("BL", 0), ("W12", 84)]),
                Some(0),
                Ok(
                    "DOI_W16: baseline BL day 0 (anchor day 0); follow-up W16 missing (optional visit)",
                ),
            ),
        ],
    );
}

#[test]
fn missing_visits_are_non_responders_only_under_non_responder_imputation() {
    use MissingDataRule::{Missing, NonResponderImputation};
    use ResponderStatus::{Missing as VisitMissing, NonResponder, NotEvaluable, Responder};
    let cases = [
        (Missing, Responder, Some(true)),
        (Missing, NonResponder, Some(false)),
        (Missing, NotEvaluable, None),
        (Missing, VisitMissing, None),
        (NonResponderImputation, Responder, Some(true)),
        (NonResponderImputation, NonResponder, Some(false)),
        (NonResponderImputation, NotEvaluable, Some(false)),
        (NonResponderImputation, VisitMissing, Some(false)),
    ];
    let actual: Vec<_> = cases
        .iter()
        .map(|(rule, status, _)| (*rule, *status, rule.counts_as(*status)))
        .collect();
    assert_eq!(actual, cases);
}
