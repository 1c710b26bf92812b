//! BIRD's primary endpoint: prednisone-free moderate improvement at week 24 over the protocol's
//! glucocorticoid window (days 140-168). The window edge: the dose stops the day before, on and after
//! the window starts; no record in the window is "not evaluable", never "met".

use myolog_domain::protocol::{GlucocorticoidRecord, Outcome, Protocol};
use rust_decimal::Decimal;

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).expect("test decimals are written exactly")
}

/// A taper of 20 mg from day 0, 10 from day 56 and 5 from day 112, then the listed (day, mg) records.
fn taper_then(records: &[(i32, &str)]) -> Vec<GlucocorticoidRecord> {
    [(0, "20"), (56, "10"), (112, "5")]
        .iter()
        .chain(records)
        .map(|(day, mg)| GlucocorticoidRecord {
            day: *day,
            mg_per_day: dec(mg),
        })
        .collect()
}

/// (case, TIS or not evaluable, dose records, expected result as text)
type Case<'a> = (&'a str, Option<&'a str>, Vec<GlucocorticoidRecord>, &'a str);

fn check(outcome: &Outcome, cases: Vec<Case<'_>>) {
    let differences: Vec<String> = cases
        .into_iter()
        .filter_map(|(case, tis, records, expected)| {
            let actual = outcome
                .prednisone_free(tis.map(dec), &records)
                .map(|result| result.to_string());
            (actual.as_deref() != Some(expected))
                .then(|| format!("case {case:?}: expected {expected:?}, actual {actual:?}"))
        })
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

const MET_ONE_RECORD: &str =
    "met: TIS 45 >= 40 and 0 mg/day over days [140, 168] (1 dose record(s) in the window)";
const NO_RECORD: &str = "not evaluable: 0 dose record(s) within days [140, 168], at least 1 needed";

#[test]
fn bird_prednisone_free_moderate_improvement_at_week_24() {
    let bird = Protocol::from_toml(
        "protocols/bird.toml",
        include_str!("../../../protocols/bird.toml"),
    )
    .expect("BIRD validates");
    let outcome = bird
        .endpoint("PFTIS_W24")
        .map(|endpoint| endpoint.outcome.clone())
        .expect("BIRD has PFTIS_W24");
    check(
        &outcome,
        vec![
            (
                "stops the day before the window, confirmed at week 24",
                Some("45"),
                taper_then(&[(139, "0"), (168, "0")]),
                MET_ONE_RECORD,
            ),
            (
                "stops the day before the window, no record in it",
                Some("45"),
                taper_then(&[(139, "0")]),
                NO_RECORD,
            ),
            (
                "stops on the window's first day",
                Some("45"),
                taper_then(&[(140, "0")]),
                MET_ONE_RECORD,
            ),
            (
                "stops the day after the window starts",
                Some("45"),
                taper_then(&[(141, "0"), (168, "0")]),
                "not met: 5 mg/day in effect on day 140, within days [140, 168]",
            ),
            (
                "restarted inside the window",
                Some("45"),
                taper_then(&[(139, "0"), (150, "2.5"), (160, "0")]),
                "not met: 2.5 mg/day in effect on day 150, within days [140, 168]",
            ),
            (
                "TIS just below the threshold",
                Some("39.5"),
                taper_then(&[(139, "0"), (168, "0")]),
                "not met: TIS 39.5 < 40",
            ),
            (
                "TIS exactly the threshold",
                Some("40"),
                taper_then(&[(139, "0"), (168, "0")]),
                "met: TIS 40 >= 40 and 0 mg/day over days [140, 168] (1 dose record(s) in the window)",
            ),
            (
                "TIS not evaluable but prednisone in the window settles it",
                None,
                taper_then(&[(141, "0")]),
                "not met: 5 mg/day in effect on day 140, within days [140, 168]",
            ),
            (
                "TIS not evaluable, prednisone-free",
                None,
                taper_then(&[(139, "0"), (168, "0")]),
                "not evaluable: TIS not evaluable",
            ),
            ("no dose record at all", Some("45"), Vec::new(), NO_RECORD),
            (
                "the only later record is after the window",
                Some("45"),
                taper_then(&[(139, "0"), (169, "0")]),
                NO_RECORD,
            ),
            (
                "records in any order",
                Some("45"),
                vec![
                    GlucocorticoidRecord {
                        day: 168,
                        mg_per_day: dec("0"),
                    },
                    GlucocorticoidRecord {
                        day: 139,
                        mg_per_day: dec("0"),
                    },
                    GlucocorticoidRecord {
                        day: 0,
                        mg_per_day: dec("20"),
                    },
                ],
                MET_ONE_RECORD,
            ),
            (
                "a same-day correction: the later record is in effect",
                Some("45"),
                taper_then(&[(139, "0"), (150, "5"), (150, "0")]),
                MET_ONE_RECORD,
            ),
            (
                "two records in the window",
                Some("45"),
                taper_then(&[(140, "0"), (168, "0")]),
                "met: TIS 45 >= 40 and 0 mg/day over days [140, 168] (2 dose record(s) in the window)",
            ),
        ],
    );
}

#[test]
fn a_custom_window_and_record_count_come_from_the_protocol() {
    let text = include_str!("../../../protocols/bird.toml")
        .replace(
            "glucocorticoid_window = [140, 168]",
            "glucocorticoid_window = [112, 168]",
        )
        .replace(
            "min_dose_records_in_window = 1 ",
            "min_dose_records_in_window = 2 ",
        );
    let bird =
        Protocol::from_toml("bird with weeks 16-24", &text).expect("the amended BIRD validates");
    let outcome = bird
        .endpoint("PFTIS_W24")
        .map(|endpoint| endpoint.outcome.clone())
        .expect("BIRD has PFTIS_W24");
    check(
        &outcome,
        vec![
            (
                "5 mg until day 139 is inside the longer window",
                Some("45"),
                taper_then(&[(139, "0"), (168, "0")]),
                "not met: 5 mg/day in effect on day 112, within days [112, 168]",
            ),
            (
                "one record is fewer than two",
                Some("45"),
                vec![
                    GlucocorticoidRecord {
                        day: 100,
                        mg_per_day: dec("0"),
                    },
                    GlucocorticoidRecord {
                        day: 168,
                        mg_per_day: dec("0"),
                    },
                ],
                "not evaluable: 1 dose record(s) within days [112, 168], at least 2 needed",
            ),
        ],
    );
    assert_eq!(Outcome::Doi.prednisone_free(Some(dec("45")), &[]), None);
}
