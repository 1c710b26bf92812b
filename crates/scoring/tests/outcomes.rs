//! End-to-end scoring of `myolog score` cases: every IMACS DOI 2004 rule, every 2016 TIS band edge of
//! every measure (a value exactly on an edge falls in the lower band), the TIS categories, the documented
//! floating-point traps (section 8), CDASI and HAQ-DI conventions, and the measures reported.
//! One `check` helper per table; inputs are JSON exactly as a statistician would write them.

use myolog_domain::case::ScoreCase;
use myolog_domain::visit::Population;
use myolog_scoring::score_case;
use myolog_scoring::tis::{TisCategory, tis_category};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::str::FromStr;

/// The default visit: every core set measure present, moderately active disease.
fn default_visit() -> BTreeMap<&'static str, String> {
    [
        ("physician_global", "5"),
        ("patient_global", "5"),
        ("extramuscular_global", "5"),
        ("mmt8", r#"{"total": 40, "max": 80}"#),
        ("haq_di", "1.5"),
        ("enzymes", r#"{"ck": {"value": 2000, "uln": 200}}"#),
    ]
    .into_iter()
    .map(|(key, value)| (key, value.to_string()))
    .collect()
}

/// A visit: the default with `overrides` applied; an empty override value removes the measure.
fn visit(overrides: &[(&'static str, &str)]) -> String {
    let mut fields = default_visit();
    for (key, value) in overrides {
        if value.is_empty() {
            fields.remove(key);
        } else {
            fields.insert(key, value.to_string());
        }
    }
    let body = fields
        .iter()
        .map(|(key, value)| format!("\"{key}\": {value}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{{{body}}}")
}

/// Scores a case and returns its result JSON.
fn score(population: &str, baseline: &str, followup: &str, extra: &str) -> Value {
    let input = format!(
        r#"{{"population": "{population}", "baseline": {baseline}, "followup": {followup}{extra}}}"#
    );
    let case = ScoreCase::from_json(&input).unwrap_or_else(|error| panic!("{input}: {error}"));
    serde_json::to_value(score_case(&case)).expect("outcome serialises")
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn doi_2004_rules() {
    /// `expected`: (status, improved, worsened, missing).
    fn check(
        baseline: &[(&'static str, &str)],
        followup: &[(&'static str, &str)],
        expected: (&str, &[&str], &[&str], &[&str]),
    ) {
        let result = score("adult", &visit(baseline), &visit(followup), "");
        let doi = &result["doi"];
        let actual = (
            doi["status"].as_str().unwrap_or("?").to_string(),
            names(&doi["improved"]),
            names(&doi["worsened"]),
            names(&doi["missing"]),
        );
        let wanted = (
            expected.0.to_string(),
            expected
                .1
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
            expected
                .2
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
            expected
                .3
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
        );
        assert_eq!(actual, wanted, "{baseline:?} -> {followup:?}\n{doi:#}");
        assert_eq!(doi["algorithm"], "doi-2004@1");
    }
    let three_improved: &[(&str, &str)] = &[
        ("physician_global", "3"),
        ("patient_global", "3"),
        ("haq_di", "1"),
    ];

    // No change: nothing improved.
    check(&[], &[], ("not_met", &[], &[], &[]));
    // Three improved by >= 20%: met.
    check(
        &[],
        three_improved,
        (
            "met",
            &["physician_global", "patient_global", "haq"],
            &[],
            &[],
        ),
    );
    // Two improved: not met.
    check(
        &[],
        &[("physician_global", "3"), ("patient_global", "3")],
        ("not_met", &["physician_global", "patient_global"], &[], &[]),
    );
    // Exactly 20% counts as improved (inclusive), including the HAQ 1.0 -> 0.8 trap
    // (docs/clinical.md#10-exact-arithmetic).
    check(
        &[("haq_di", "1.0")],
        &[
            ("physician_global", "4"),
            ("patient_global", "4"),
            ("haq_di", "0.8"),
        ],
        (
            "met",
            &["physician_global", "patient_global", "haq"],
            &[],
            &[],
        ),
    );
    check(
        &[("haq_di", "1.1")],
        &[
            ("physician_global", "4"),
            ("patient_global", "4"),
            ("haq_di", "0.88"),
        ],
        (
            "met",
            &["physician_global", "patient_global", "haq"],
            &[],
            &[],
        ),
    );
    // Just under 20%: PhGA 10 -> 8.1 is 19%.
    check(
        &[("physician_global", "10")],
        &[
            ("physician_global", "8.1"),
            ("patient_global", "4"),
            ("haq_di", "1.2"),
        ],
        ("not_met", &["patient_global", "haq"], &[], &[]),
    );
    // MMT improves upwards: 40 -> 48 is +20%.
    check(
        &[],
        &[
            ("mmt8", r#"{"total": 48, "max": 80}"#),
            ("patient_global", "4"),
            ("haq_di", "1.2"),
        ],
        ("met", &["patient_global", "mmt", "haq"], &[], &[]),
    );
    check(
        &[],
        &[
            ("mmt8", r#"{"total": 47, "max": 80}"#),
            ("patient_global", "4"),
            ("haq_di", "1.2"),
        ],
        ("not_met", &["patient_global", "haq"], &[], &[]),
    );
    // Enzyme relative to baseline: CK 2000 -> 1600 is 20%.
    check(
        &[],
        &[
            ("enzymes", r#"{"ck": {"value": 1600, "uln": 200}}"#),
            ("patient_global", "4"),
            ("haq_di", "1.2"),
        ],
        ("met", &["patient_global", "haq", "enzyme"], &[], &[]),
    );
    // Worsened exactly 25% (inclusive): 4 -> 5; two worsened still allows met.
    check(
        &[
            ("extramuscular_global", "4"),
            ("enzymes", r#"{"ck": {"value": 1600, "uln": 200}}"#),
        ],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            ("haq_di", "1"),
            ("extramuscular_global", "5"),
            ("enzymes", r#"{"ck": {"value": 2000, "uln": 200}}"#),
        ],
        (
            "met",
            &["physician_global", "patient_global", "haq"],
            &["extramuscular_global", "enzyme"],
            &[],
        ),
    );
    // Just under 25% worse is not worsened: 4 -> 4.9 is 22.5%.
    check(
        &[("extramuscular_global", "4")],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            ("haq_di", "1"),
            ("extramuscular_global", "4.9"),
        ],
        (
            "met",
            &["physician_global", "patient_global", "haq"],
            &[],
            &[],
        ),
    );
    // Three worsened: not met, however many improved.
    check(
        &[
            ("physician_global", "4"),
            ("patient_global", "4"),
            ("extramuscular_global", "4"),
        ],
        &[
            ("physician_global", "5"),
            ("patient_global", "5"),
            ("extramuscular_global", "5"),
            ("haq_di", "1"),
            ("mmt8", r#"{"total": 50, "max": 80}"#),
            ("enzymes", r#"{"ck": {"value": 1000, "uln": 200}}"#),
        ],
        (
            "not_met",
            &["mmt", "haq", "enzyme"],
            &["physician_global", "patient_global", "extramuscular_global"],
            &[],
        ),
    );
    // MMT among the worsened: not met, even with three improved and one worsened.
    check(
        &[],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            ("haq_di", "1"),
            ("mmt8", r#"{"total": 30, "max": 80}"#),
        ],
        (
            "not_met",
            &["physician_global", "patient_global", "haq"],
            &["mmt"],
            &[],
        ),
    );
    // MMT down 22.5% is not worsened.
    check(
        &[],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            ("haq_di", "1"),
            ("mmt8", r#"{"total": 31, "max": 80}"#),
        ],
        (
            "met",
            &["physician_global", "patient_global", "haq"],
            &[],
            &[],
        ),
    );
    // Baseline zero on a lower-is-better measure: any rise is worsened, no change is neither.
    check(
        &[("extramuscular_global", "0")],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            ("haq_di", "1"),
            ("extramuscular_global", "0.1"),
        ],
        (
            "met",
            &["physician_global", "patient_global", "haq"],
            &["extramuscular_global"],
            &[],
        ),
    );
    check(
        &[("extramuscular_global", "0")],
        &[("extramuscular_global", "0")],
        ("not_met", &[], &[], &[]),
    );
    // Missing measures are named and not counted; three available suffice.
    check(
        &[("mmt8", ""), ("haq_di", ""), ("enzymes", "")],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            ("extramuscular_global", "3"),
        ],
        (
            "met",
            &["physician_global", "patient_global", "extramuscular_global"],
            &[],
            &["mmt", "haq", "enzyme"],
        ),
    );
    // Fewer than three available: not evaluable, never not met, even if all improved.
    check(
        &[("mmt8", ""), ("haq_di", ""), ("enzymes", "")],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            ("extramuscular_global", ""),
        ],
        (
            "not_evaluable",
            &["physician_global", "patient_global"],
            &[],
            &["extramuscular_global", "mmt", "haq", "enzyme"],
        ),
    );
    check(
        &[
            ("physician_global", ""),
            ("patient_global", ""),
            ("extramuscular_global", ""),
            ("mmt8", ""),
            ("haq_di", ""),
            ("enzymes", ""),
        ],
        &[],
        (
            "not_evaluable",
            &[],
            &[],
            &[
                "physician_global",
                "patient_global",
                "extramuscular_global",
                "mmt",
                "haq",
                "enzyme",
            ],
        ),
    );
    // Most abnormal enzyme at baseline by value/ULN: aldolase 3x beats CK 2x; its change decides.
    check(
        &[(
            "enzymes",
            r#"{"ck": {"value": 400, "uln": 200}, "aldolase": {"value": 24, "uln": 8}}"#,
        )],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            (
                "enzymes",
                r#"{"ck": {"value": 800, "uln": 200}, "aldolase": {"value": 12, "uln": 8}}"#,
            ),
        ],
        (
            "met",
            &["physician_global", "patient_global", "enzyme"],
            &[],
            &[],
        ),
    );
    // Ties go to CK (first in ck, aldolase, ldh, ast, alt).
    check(
        &[(
            "enzymes",
            r#"{"ldh": {"value": 500, "uln": 250}, "ck": {"value": 400, "uln": 200}}"#,
        )],
        &[
            ("physician_global", "3"),
            ("patient_global", "3"),
            (
                "enzymes",
                r#"{"ck": {"value": 200, "uln": 200}, "ldh": {"value": 500, "uln": 250}}"#,
            ),
        ],
        (
            "met",
            &["physician_global", "patient_global", "enzyme"],
            &[],
            &[],
        ),
    );
    // The chosen enzyme missing at follow-up: the enzyme measure is missing (no switching enzymes).
    check(
        &[(
            "enzymes",
            r#"{"ck": {"value": 400, "uln": 200}, "aldolase": {"value": 24, "uln": 8}}"#,
        )],
        &[("enzymes", r#"{"ck": {"value": 100, "uln": 200}}"#)],
        ("not_met", &[], &[], &["enzyme"]),
    );
    // MMT scales never mix; HAQ items not computable at follow-up make HAQ missing.
    check(
        &[],
        &[("mmt8", r#"{"total": 140, "max": 150}"#)],
        ("not_met", &[], &[], &["mmt"]),
    );
    check(
        &[],
        &[
            ("haq_di", ""),
            ("haq", r#"{"items": {"dressing": [0, 0]}}"#),
        ],
        ("not_met", &[], &[], &["haq"]),
    );
    // MMT grades with a missing grade: the total is not computable.
    check(
        &[],
        &[(
            "mmt8",
            r#"{"max": 80, "grades": {"neck_flexors": 10, "deltoid": 10}}"#,
        )],
        ("not_met", &[], &[], &["mmt"]),
    );
}

#[test]
fn doi_reports_reasons_and_conventions() {
    let result = score(
        "adult",
        &visit(&[
            ("extramuscular_global", "0"),
            (
                "enzymes",
                r#"{"ck": {"value": 400, "uln": 200}, "aldolase": {"value": 24, "uln": 8}}"#,
            ),
        ]),
        &visit(&[
            ("extramuscular_global", "1"),
            ("enzymes", r#"{"ck": {"value": 100, "uln": 200}}"#),
            ("haq_di", ""),
        ]),
        r#", "conventions": {"haq_min_categories": 7}"#,
    );
    let doi = &result["doi"];
    assert_eq!(
        doi["missing_reasons"]["enzyme"],
        "aldolase (the most abnormal enzyme at baseline) not measured at follow-up"
    );
    assert_eq!(doi["missing_reasons"]["haq"], "not assessed at follow-up");
    assert_eq!(doi["conventions"]["enzyme"], "aldolase");
    assert_eq!(doi["conventions"]["percent_change"], "relative_to_baseline");
    assert_eq!(
        doi["conventions"]["baseline_zero_measures"],
        serde_json::json!(["extramuscular_global"])
    );
    assert_eq!(doi["conventions"]["haq_min_categories"], 7);
    assert_eq!(doi["conventions"]["boundaries"], "inclusive");
    assert_eq!(doi["reason"], "0 measure(s) improved by >= 20%, 3 needed");
    assert_eq!(
        result["measures"]["extramuscular_global"]["improvement_pct"],
        Value::Null
    );
}

/// Every TIS band edge of every measure, from real inputs: exactly on an edge -> lower band.
#[test]
fn tis_points_at_every_band_edge() {
    fn check(
        key: &'static str,
        baseline: &str,
        followup: &str,
        measure: &str,
        expected_points: f64,
    ) {
        let result = score(
            "adult",
            &visit(&[(key, baseline)]),
            &visit(&[(key, followup)]),
            "",
        );
        let points = result["tis"]["points"][measure].as_f64();
        assert_eq!(
            points,
            Some(expected_points),
            "{measure}: {baseline} -> {followup}\n{:#}",
            result["tis"]
        );
    }
    // Globals, change / 10 cm: edges 5, 15, 25, 40 %.
    for (key, measure, points) in [
        (
            "physician_global",
            "physician_global",
            [0.0, 7.5, 15.0, 17.5, 20.0],
        ),
        (
            "patient_global",
            "patient_global",
            [0.0, 2.5, 5.0, 7.5, 10.0],
        ),
        (
            "extramuscular_global",
            "extramuscular_global",
            [0.0, 7.5, 12.5, 15.0, 20.0],
        ),
    ] {
        check(key, "10", "10", measure, points[0]);
        check(key, "5", "6", measure, points[0]);
        check(key, "10", "9.5", measure, points[0]);
        check(key, "10", "9.4", measure, points[1]);
        check(key, "10", "8.5", measure, points[1]);
        check(key, "10", "8.4", measure, points[2]);
        check(key, "10", "7.5", measure, points[2]);
        check(key, "10", "7.4", measure, points[3]);
        check(key, "10", "6", measure, points[3]);
        check(key, "10", "5.9", measure, points[4]);
        check(key, "10", "0", measure, points[4]);
        // Exactness trap (docs/clinical.md#10-exact-arithmetic): 1.1 -> 0.6 cm is exactly 5%, not 5.000000000000001%.
        check(key, "1.1", "0.6", measure, points[0]);
        check(key, "1.1", "0.5", measure, points[1]);
        // mm input is the same scale: 55 mm -> 40 mm is 15%.
        check(key, r#"{"mm": 55}"#, r#"{"mm": 40}"#, measure, points[1]);
    }
    // HAQ-DI, change / 3: edges 0.15, 0.45, 0.75, 1.2.
    for (followup, points) in [
        ("3", 0.0),
        ("2.85", 0.0),
        ("2.849", 5.0),
        ("2.55", 5.0),
        ("2.549", 7.5),
        ("2.25", 7.5),
        ("2.249", 7.5),
        ("1.8", 7.5),
        ("1.799", 10.0),
        ("0", 10.0),
    ] {
        check("haq_di", "3", followup, "haq", points);
    }
    check("haq_di", "1", "1.5", "haq", 0.0);
    // MMT, change / 150: edges 3, 15, 30, 45 points of MMT.
    for (followup, points) in [
        (100, 0.0),
        (90, 0.0),
        (103, 0.0),
        (104, 10.0),
        (115, 10.0),
        (116, 20.0),
        (130, 20.0),
        (131, 27.5),
        (145, 27.5),
        (146, 32.5),
    ] {
        check(
            "mmt8",
            r#"{"total": 100, "max": 150}"#,
            &format!(r#"{{"total": {followup}, "max": 150}}"#),
            "mmt",
            points,
        );
    }
    // MMT, change / 80: 1 point is 1.25%, 2 points 2.5%; edges 8, 16, 24 exactly.
    for (followup, points) in [
        (41, 0.0),
        (42, 10.0),
        (48, 10.0),
        (49, 20.0),
        (56, 20.0),
        (57, 27.5),
        (64, 27.5),
        (65, 32.5),
    ] {
        check(
            "mmt8",
            r#"{"total": 40, "max": 80}"#,
            &format!(r#"{{"total": {followup}, "max": 80}}"#),
            "mmt",
            points,
        );
    }
    // Enzyme, relative to baseline: CK 2000 -> 1900 is 5%.
    for (followup, points) in [
        (2500, 0.0),
        (2000, 0.0),
        (1900, 0.0),
        (1899, 2.5),
        (1700, 2.5),
        (1699, 5.0),
        (1500, 5.0),
        (1499, 7.5),
        (1200, 7.5),
        (1199, 7.5),
        (0, 7.5),
    ] {
        check(
            "enzymes",
            r#"{"ck": {"value": 2000, "uln": 200}}"#,
            &format!(r#"{{"ck": {{"value": {followup}, "uln": 200}}}}"#),
            "enzyme",
            points,
        );
    }
    // Enzyme baseline 0: no improvement possible.
    check(
        "enzymes",
        r#"{"ck": {"value": 0, "uln": 200}}"#,
        r#"{"ck": {"value": 0, "uln": 200}}"#,
        "enzyme",
        0.0,
    );
    check(
        "enzymes",
        r#"{"ck": {"value": 0, "uln": 200}}"#,
        r#"{"ck": {"value": 50, "uln": 200}}"#,
        "enzyme",
        0.0,
    );
}

#[test]
fn tis_category_thresholds() {
    fn check(score: &str, population: Population, expected: TisCategory) {
        let score = Decimal::from_str(score).expect("decimal");
        assert_eq!(
            tis_category(score, population),
            expected,
            "{score} {population:?}"
        );
    }
    use Population::{Adult, Juvenile};
    use TisCategory::{Major, Minimal, Moderate, None};
    for (score, adult, juvenile) in [
        ("0", None, None),
        ("17.5", None, None),
        ("20", Minimal, None),
        ("27.5", Minimal, None),
        ("30", Minimal, Minimal),
        ("37.5", Minimal, Minimal),
        ("40", Moderate, Minimal),
        ("42.5", Moderate, Minimal),
        ("45", Moderate, Moderate),
        ("57.5", Moderate, Moderate),
        ("60", Major, Moderate),
        ("67.5", Major, Moderate),
        ("70", Major, Major),
        ("100", Major, Major),
    ] {
        check(score, Adult, adult);
        check(score, Juvenile, juvenile);
    }
}

#[test]
fn tis_scores_and_evaluability() {
    /// `expected`: (status, score, category, missing).
    fn check(
        population: &str,
        baseline: &[(&'static str, &str)],
        followup: &[(&'static str, &str)],
        extra: &str,
        expected: (&str, Option<f64>, Option<&str>, &[&str]),
    ) {
        let result = score(population, &visit(baseline), &visit(followup), extra);
        let tis = &result["tis"];
        let actual = (
            tis["status"].as_str().unwrap_or("?").to_string(),
            tis["score"].as_f64(),
            tis["category"].as_str().map(str::to_string),
            names(&tis["missing"]),
        );
        let wanted = (
            expected.0.to_string(),
            expected.1,
            expected.2.map(str::to_string),
            expected
                .3
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
        );
        assert_eq!(actual, wanted, "{tis:#}");
        assert_eq!(tis["algorithm"], "tis-2016@1");
    }
    let strong: &[(&str, &str)] = &[
        ("physician_global", "1"),                            // 40% -> 17.5
        ("patient_global", "1"),                              // 40% -> 7.5
        ("extramuscular_global", "0.9"),                      // 41% -> 20
        ("mmt8", r#"{"total": 65, "max": 80}"#),              // 31.25% -> 32.5
        ("haq_di", "0.3"),                                    // 40% -> 7.5
        ("enzymes", r#"{"ck": {"value": 200, "uln": 200}}"#), // 90% -> 7.5
    ];
    check(
        "adult",
        &[],
        strong,
        "",
        ("evaluable", Some(92.5), Some("major"), &[]),
    );
    check(
        "juvenile",
        &[],
        strong,
        "",
        ("evaluable", Some(92.5), Some("major"), &[]),
    );
    // 17.5 + 2.5 + 7.5 + 10 = 37.5: adult minimal, juvenile minimal; +2.5 -> 40: adult moderate, juvenile minimal.
    let moderate: &[(&str, &str)] = &[
        ("physician_global", "1"),
        ("patient_global", "4"),
        ("extramuscular_global", "4"),
        ("mmt8", r#"{"total": 42, "max": 80}"#),
    ];
    check(
        "adult",
        &[],
        moderate,
        "",
        ("evaluable", Some(37.5), Some("minimal"), &[]),
    );
    let forty: &[(&str, &str)] = &[
        ("physician_global", "1"),
        ("patient_global", "4"),
        ("extramuscular_global", "4"),
        ("mmt8", r#"{"total": 42, "max": 80}"#),
        ("haq_di", "1.0"),
    ];
    // HAQ 1.5 -> 1.0 is 16.7% of 3 -> 7.5: 45.
    check(
        "adult",
        &[],
        forty,
        "",
        ("evaluable", Some(45.0), Some("moderate"), &[]),
    );
    check(
        "juvenile",
        &[],
        forty,
        "",
        ("evaluable", Some(45.0), Some("moderate"), &[]),
    );
    // No change: 0, none.
    check(
        "adult",
        &[],
        &[],
        "",
        ("evaluable", Some(0.0), Some("none"), &[]),
    );
    // Worsening everywhere still scores 0, never negative.
    check(
        "adult",
        &[],
        &[
            ("physician_global", "9"),
            ("patient_global", "9"),
            ("extramuscular_global", "9"),
            ("mmt8", r#"{"total": 10, "max": 80}"#),
            ("haq_di", "3"),
            ("enzymes", r#"{"ck": {"value": 9000, "uln": 200}}"#),
        ],
        "",
        ("evaluable", Some(0.0), Some("none"), &[]),
    );
    // Any measure missing: not evaluable, naming it.
    check(
        "adult",
        &[("enzymes", "")],
        strong,
        "",
        ("not_evaluable", None, None, &["enzyme"]),
    );
    check(
        "adult",
        &[],
        &[("haq_di", ""), ("mmt8", "")],
        "",
        ("not_evaluable", None, None, &["mmt", "haq"]),
    );
    // Likert globals: allowed by the study for the DOI, but no agreed TIS formula.
    check(
        "adult",
        &[("physician_global", r#"{"likert": 3}"#)],
        &[("physician_global", r#"{"likert": 1}"#)],
        r#", "conventions": {"allow_likert_globals": true}"#,
        ("not_evaluable", None, None, &["physician_global"]),
    );
}

#[test]
fn measures_report_both_percentages() {
    let result = score(
        "adult",
        &visit(&[
            ("physician_global", "1.1"),
            ("enzymes", r#"{"ck": {"value": 2000, "uln": 200}}"#),
        ]),
        &visit(&[
            ("physician_global", "0.6"),
            ("haq_di", "1.2"),
            (
                "enzymes",
                r#"{"ck": {"value": 3, "uln": 0.1, "unit": "ukat/L"}}"#,
            ),
        ]),
        "",
    );
    let measures = &result["measures"];
    // 1.1 -> 0.6: DOI 45.454545% of baseline, TIS exactly 5% of the 10 cm range.
    assert_eq!(measures["physician_global"]["baseline"], 1.1);
    assert_eq!(measures["physician_global"]["followup"], 0.6);
    assert_eq!(measures["physician_global"]["improvement_pct"], 45.454545);
    assert_eq!(measures["physician_global"]["tis_change_pct"], 5);
    assert_eq!(measures["physician_global"]["scale"], "vas_cm");
    assert_eq!(measures["haq"]["improvement_pct"], 20);
    assert_eq!(measures["haq"]["tis_change_pct"], 10);
    // 3 ukat/L = 180 U/L with ULN 6 U/L: 30 x ULN against 10 x ULN at baseline: worse by 200%.
    assert_eq!(measures["enzyme"]["enzyme"], "ck");
    assert_eq!(measures["enzyme"]["followup"], 180);
    assert_eq!(measures["enzyme"]["followup_uln"], 6);
    assert_eq!(measures["enzyme"]["baseline_x_uln"], 10);
    assert_eq!(measures["enzyme"]["followup_x_uln"], 30);
    assert_eq!(measures["enzyme"]["improvement_pct"], -200);
    assert_eq!(measures["mmt"]["improvement_pct"], 0);
}

#[test]
fn cdasi_change_mcid_and_severity() {
    /// `expected`: (baseline activity, damage, follow-up activity, damage, mcid_reached, baseline band).
    fn check(
        baseline: &str,
        followup: &str,
        extra: &str,
        expected: (u64, u64, u64, u64, Option<bool>, &str),
    ) {
        let result = score(
            "adult",
            &format!(r#"{{"cdasi": {baseline}}}"#),
            &format!(r#"{{"cdasi": {followup}}}"#),
            extra,
        );
        let cdasi = &result["cdasi"];
        let actual = (
            cdasi["baseline"]["activity"].as_u64().unwrap_or(999),
            cdasi["baseline"]["damage"].as_u64().unwrap_or(999),
            cdasi["followup"]["activity"].as_u64().unwrap_or(999),
            cdasi["followup"]["damage"].as_u64().unwrap_or(999),
            cdasi["mcid_reached"].as_bool(),
            cdasi["severity"]["baseline"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
        );
        assert_eq!(
            actual,
            (
                expected.0,
                expected.1,
                expected.2,
                expected.3,
                expected.4,
                expected.5.to_string()
            ),
            "{cdasi:#}"
        );
        assert_eq!(cdasi["algorithm"], "cdasi-v2@1");
    }
    let rich = r#"{"locations": {"scalp": {"erythema": 2, "scale": 1, "erosion": 0, "poikiloderma": 1, "calcinosis": 0}, "malar": {"erythema": 3, "scale": 2, "erosion": 1}, "v_neck": {"erythema": 2, "poikiloderma": 1}}, "gottron_hands": {"erythema": 2, "papules": true, "ulceration": 1, "damage": 1}, "periungual": 1, "alopecia": 1}"#;
    // 3 + 6 + 2 + (2 x 2 + 1) + 1 + 1 = 18 activity; 1 + 1 + 1 = 3 damage.
    let fewer = r#"{"locations": {"scalp": {"erythema": 1}, "malar": {"erythema": 1}}, "gottron_hands": {"erythema": 2, "papules": false, "damage": 2}}"#;
    // 1 + 1 + 2 = 4 activity; 2 damage.
    check(
        rich,
        fewer,
        "",
        (18, 3, 4, 2, Some(true), "moderate_severe"),
    );
    check(
        rich,
        fewer,
        r#", "conventions": {"cdasi_severity_cutoff": 19}"#,
        (18, 3, 4, 2, Some(true), "mild"),
    );
    let fourteen = r#"{"locations": {"malar": {"erythema": 3, "scale": 2, "erosion": 1}, "scalp": {"erythema": 3, "scale": 2, "erosion": 1}}, "periungual": 2}"#;
    let ten = r#"{"locations": {"malar": {"erythema": 3, "scale": 2, "erosion": 1}, "scalp": {"erythema": 3, "scale": 1}}}"#;
    // 14 -> 10: change 4 reaches the UPenn MCID (4) but not Stanford's (5). An activity of exactly 14
    // is mild under the Stanford cut-off: Anyanwu 2015, "CDASI activity scores of 14 or less
    // characterized mild disease".
    check(fourteen, ten, "", (14, 0, 10, 0, Some(true), "mild"));
    check(
        fourteen,
        ten,
        r#", "conventions": {"cdasi_mcid": 5}"#,
        (14, 0, 10, 0, Some(false), "mild"),
    );
    // Exactly 19 under the UPenn cut-off: "a CDASI activity score of 19 differentiated mild from
    // moderate and severe disease" leaves the side of 19 open; we count it as moderate/severe [D].
    let nineteen = rich.replace(r#""periungual": 1"#, r#""periungual": 2"#);
    check(
        &nineteen,
        fewer,
        r#", "conventions": {"cdasi_severity_cutoff": 19}"#,
        (19, 3, 4, 2, Some(true), "moderate_severe"),
    );
    let upenn = score(
        "adult",
        &format!(r#"{{"cdasi": {nineteen}}}"#),
        &format!(r#"{{"cdasi": {fewer}}}"#),
        r#", "conventions": {"cdasi_severity_cutoff": 19}"#,
    );
    assert_eq!(
        upenn["cdasi"]["conventions"]["severity_rule"],
        "activity >= 19: moderate_severe [D: the source leaves the side of 19 open]; below: mild"
    );
    let thirteen = r#"{"locations": {"malar": {"erythema": 3, "scale": 2, "erosion": 1}, "scalp": {"erythema": 3, "scale": 2, "erosion": 1}}, "periungual": 1}"#;
    check(thirteen, thirteen, "", (13, 0, 13, 0, Some(false), "mild"));
    check("{}", "{}", "", (0, 0, 0, 0, Some(false), "mild"));

    let result = score(
        "adult",
        r#"{"cdasi": {}}"#,
        "{}",
        r#", "conventions": {"cdasi_mcid": 5, "cdasi_severity_cutoff": 19}"#,
    );
    assert_eq!(result["cdasi"]["activity_change"], Value::Null);
    assert_eq!(result["cdasi"]["mcid_reached"], Value::Null);
    assert_eq!(result["cdasi"]["conventions"]["mcid"], 5);
    assert_eq!(result["cdasi"]["conventions"]["mcid_source"], "Stanford");
    assert_eq!(result["cdasi"]["conventions"]["severity_cutoff"], 19);
    assert_eq!(
        result["cdasi"]["conventions"]["severity_cutoff_source"],
        "UPenn"
    );
}

#[test]
fn haq_di_and_mmt8_from_items() {
    let issue_items = r#"{"items": {"dressing": [2, 1], "arising": [0, 3], "eating": [1, 0, 2], "walking": [0, 1], "hygiene": [0, 1, 1], "reach": [3, 3], "grip": [1, 1, 3], "activities": [0, 0, 1]}, "aids": ["cane", "built_up_chair"], "help": ["dressing"]}"#;
    let seven_answered = r#"{"items": {"dressing": [1, null], "arising": [1, 1], "eating": [1, 0, 0], "walking": [1, 0], "hygiene": [1, 1, 1], "reach": [1, 1], "grip": [2, 1, 1]}}"#;
    fn check(haq: &str, extra: &str, expected: Option<f64>) {
        let result = score(
            "adult",
            &visit(&[("haq_di", ""), ("haq", haq)]),
            &visit(&[]),
            extra,
        );
        assert_eq!(
            result["haq_di"]["baseline"].as_f64(),
            expected,
            "{haq}\n{:#}",
            result["haq_di"]
        );
        assert_eq!(result["haq_di"]["algorithm"], "haq-di@1");
    }
    // 2,3,2,1,1,3,3,1 with cane raising walking to 2: 17/8.
    check(issue_items, "", Some(2.125));
    // Seven answered categories: 8/7, shown rounded to 6 places.
    check(seven_answered, "", Some(1.142857));
    check(
        seven_answered,
        r#", "conventions": {"haq_min_categories": 7}"#,
        Some(1.142857),
    );
    let six_answered = r#"{"items": {"dressing": [1, null], "arising": [1, 1], "eating": [1, 0, 0], "walking": [1, 0], "hygiene": [1, 1, 1], "reach": [1, 1]}}"#;
    check(six_answered, "", Some(1.0));
    check(
        six_answered,
        r#", "conventions": {"haq_min_categories": 7}"#,
        None,
    );

    let result = score(
        "adult",
        &visit(&[("haq_di", ""), ("haq", six_answered)]),
        &visit(&[]),
        r#", "conventions": {"haq_min_categories": 7}"#,
    );
    assert_eq!(
        result["haq_di"]["not_computable"]["baseline"],
        "HAQ-DI not computable: 6 of 8 categories answered, at least 7 needed"
    );
    assert_eq!(
        result["haq_di"]["category_scores"]["baseline"],
        serde_json::json!({"dressing": 1, "arising": 1, "eating": 1, "walking": 1, "hygiene": 1, "reach": 1, "grip": null, "activities": null})
    );
    assert_eq!(result["haq_di"]["category_scores"].get("followup"), None);
    assert_eq!(
        result["doi"]["missing_reasons"]["haq"],
        "not computable at baseline: HAQ-DI not computable: 6 of 8 categories answered, at least 7 needed"
    );

    let grades = r#"{"max": 150, "grades": {"neck_flexors": 8, "deltoid": [9, 8], "biceps": [9, 9], "wrist_extensors": [10, 10], "gluteus_maximus": [7, 8], "gluteus_medius": [8, 8], "quadriceps": [9, 9], "ankle_dorsiflexors": [10, 10]}}"#;
    let result = score(
        "adult",
        &visit(&[("mmt8", grades)]),
        &visit(&[("mmt8", r#"{"total": 140, "max": 150}"#)]),
        "",
    );
    assert_eq!(
        result["mmt8"]["baseline"],
        8 + 17 + 18 + 20 + 15 + 16 + 18 + 20
    );
    assert_eq!(result["mmt8"]["followup"], 140);
    assert_eq!(result["mmt8"]["algorithm"], "mmt8@1");
    let missing = r#"{"max": 80, "grades": {"neck_flexors": 8, "deltoid": 9}}"#;
    let result = score("adult", &visit(&[("mmt8", missing)]), &visit(&[]), "");
    assert_eq!(result["mmt8"]["baseline"], Value::Null);
    assert_eq!(
        result["mmt8"]["missing_grades"]["baseline"],
        serde_json::json!([
            "biceps",
            "wrist_extensors",
            "gluteus_maximus",
            "gluteus_medius",
            "quadriceps",
            "ankle_dorsiflexors"
        ])
    );
}

#[test]
fn biomarkers_stat1_and_prednisone() {
    let result = score(
        "adult",
        r#"{"labs": {"cxcl9": {"value": 400, "unit": "pg/mL"}, "cxcl10": {"value": 0, "unit": "pg/mL"}}, "stat1": {"percent_positive": 40}, "prednisone_mg_per_day": 20}"#,
        r#"{"labs": {"cxcl9": {"value": 100, "unit": "pg/mL"}, "cxcl10": {"value": 50, "unit": "pg/mL"}}, "stat1": {"percent_positive": 10}, "prednisone_mg_per_day": 0}"#,
        "",
    );
    let cxcl9 = &result["labs"]["cxcl9"];
    assert_eq!(
        (
            cxcl9["change"].as_f64(),
            cxcl9["percent_change"].as_f64(),
            cxcl9["fold_change"].as_f64(),
            cxcl9["log2_fold_change"].as_f64()
        ),
        (Some(-300.0), Some(-75.0), Some(0.25), Some(-2.0))
    );
    assert_eq!(cxcl9["unit"], "pg/mL");
    assert_eq!(cxcl9["algorithm"], "biomarker-change@1");
    let cxcl10 = &result["labs"]["cxcl10"];
    assert_eq!(
        (
            cxcl10["change"].as_f64(),
            cxcl10["percent_change"].as_f64(),
            cxcl10["fold_change"].as_f64()
        ),
        (Some(50.0), None, None)
    );
    assert_eq!(result["stat1"]["unit"], "percent_positive");
    assert_eq!(result["stat1"]["change"], -30);
    assert_eq!(result["prednisone_mg_per_day"]["change"], -20);
    assert_eq!(
        result["prednisone_mg_per_day"]["log2_fold_change"],
        Value::Null
    );

    let mixed = score(
        "adult",
        r#"{"stat1": {"ihc_score": 2}}"#,
        r#"{"stat1": {"percent_positive": 10}}"#,
        "",
    );
    assert_eq!(mixed["stat1"]["change"], Value::Null);
    assert!(
        mixed["stat1"]["note"]
            .as_str()
            .unwrap_or_default()
            .contains("never compared")
    );
}

#[test]
fn likert_globals_compare_only_with_likert() {
    /// `expected`: (DOI status, improved, missing).
    fn check(baseline: &str, followup: &str, expected: (&str, &[&str], &[&str])) {
        let allow = r#", "conventions": {"allow_likert_globals": true}"#;
        let base = visit(&[
            ("physician_global", baseline),
            ("patient_global", "5"),
            ("haq_di", "1"),
        ]);
        let follow = visit(&[
            ("physician_global", followup),
            ("patient_global", "3"),
            ("haq_di", "0.5"),
        ]);
        let result = score("adult", &base, &follow, allow);
        let doi = &result["doi"];
        let actual = (
            doi["status"].as_str().unwrap_or("?").to_string(),
            names(&doi["improved"]),
            names(&doi["missing"]),
        );
        let wanted = (
            expected.0.to_string(),
            expected
                .1
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
            expected
                .2
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
        );
        assert_eq!(actual, wanted, "{baseline} -> {followup}\n{doi:#}");
    }
    // Likert 4 -> 3 is 25% better relative to baseline.
    check(
        r#"{"likert": 4}"#,
        r#"{"likert": 3}"#,
        ("met", &["physician_global", "patient_global", "haq"], &[]),
    );
    check(
        r#"{"likert": 4}"#,
        r#"{"likert": 4}"#,
        ("not_met", &["patient_global", "haq"], &[]),
    );
    // VAS at one visit and Likert at the other: never compared.
    check(
        "8",
        r#"{"likert": 1}"#,
        ("not_met", &["patient_global", "haq"], &["physician_global"]),
    );
    let result = score(
        "adult",
        &visit(&[("physician_global", "8")]),
        &visit(&[("physician_global", r#"{"likert": 1}"#)]),
        r#", "conventions": {"allow_likert_globals": true}"#,
    );
    assert_eq!(
        result["doi"]["missing_reasons"]["physician_global"],
        "recorded on different scales (vas_cm at baseline, likert_0_4 at follow-up); scales are never mixed"
    );
}
