//! The protocol files as they were before the registry re-derivation (tests/data/protocols-v0/, byte
//! copies from main) still parse, and evaluate, exactly as they did: a log that registered them replays
//! to the same results. The expected lines are those the earlier tests asserted for the same subjects.

use myolog_domain::protocol::{
    BaselineMeasures, EligibilityVerdict, EnzymeResult, GlobalValue, Mmt8Total, Protocol,
};
use rust_decimal::Decimal;

const STIR: &str = include_str!("../../../tests/data/protocols-v0/stir.toml");
const MYOJAK: &str = include_str!("../../../tests/data/protocols-v0/myojak.toml");
const BIRD: &str = include_str!("../../../tests/data/protocols-v0/bird.toml");

fn load(name: &str, text: &str) -> Protocol {
    match Protocol::from_toml(name, text) {
        Ok(protocol) => protocol,
        Err(errors) => panic!("{name} no longer validates:\n{errors}"),
    }
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).expect("test decimals are written exactly")
}

fn lines(protocol: &Protocol, measures: &BaselineMeasures) -> (EligibilityVerdict, Vec<String>) {
    let report = protocol.check_eligibility(measures);
    let lines = report
        .criteria
        .iter()
        .map(|criterion| format!("{}: {}", criterion.id, criterion.result))
        .collect();
    (report.verdict, lines)
}

#[test]
fn earlier_protocol_files_summarise_as_before() {
    let summaries: Vec<String> = [("stir", STIR), ("myojak", MYOJAK), ("bird", BIRD)]
        .iter()
        .map(|(name, text)| {
            let protocol = load(name, text);
            assert_eq!(protocol.source_toml(), *text);
            protocol.summary()
        })
        .collect();
    assert_eq!(
        summaries,
        [
            "STIR v1 (NCT03002649): 1 arm, 3 epochs, 6 visits, 4 eligibility criteria, 9 endpoints; primary DOI_W12 (doi at W12)",
            "MYOJAK v1 (NCT04208464): 2 arms, 4 epochs, 11 visits, 2 eligibility criteria, 10 endpoints; primary TIS_W12 (tis_score at W12)",
            "BIRD v1 (NCT04972760): 2 arms, 2 epochs, 8 visits, 4 eligibility criteria, 6 endpoints; primary PFTIS_W24 (prednisone_free_tis at W24)",
        ]
    );
}

#[test]
fn earlier_protocol_files_decide_eligibility_as_before() {
    let stir = load("stir v0", STIR);
    let subject = BaselineMeasures {
        age_years: Some(dec("45")),
        cdasi_activity: Some(dec("28")),
        mmt8: Some(Mmt8Total {
            total: dec("130"),
            max: 150,
        }),
        muscle_active: Some(true),
        prednisone_mg_per_day: Some(dec("10")),
        prednisone_stable_weeks: Some(dec("3")),
        ..BaselineMeasures::default()
    };
    // Stable for 3 weeks: the earlier file asked for 4 [D], so not eligible under it.
    assert_eq!(
        lines(&stir, &subject),
        (
            EligibilityVerdict::NotEligible,
            vec![
                "IN01: age_years >= 18 saw 45: met".to_string(),
                "IN02: cdasi_activity >= 5 saw 28: met".to_string(),
                "IN03: if [muscle_active is true saw true: met] then [mmt8_total < 142 saw 130: met]: met".to_string(),
                "IN04: all of [prednisone_mg_per_day <= 20 saw 10: met; prednisone_stable_weeks >= 4 saw 3: not met]: not met".to_string(),
            ]
        )
    );

    let bird = load("bird v0", BIRD);
    let subject = BaselineMeasures {
        age_years: Some(dec("50")),
        cdasi_activity: Some(dec("10")),
        mmt8: Some(Mmt8Total {
            total: dec("130"),
            max: 150,
        }),
        physician_global: Some(GlobalValue::vas_cm(dec("5.0"))),
        patient_global: Some(GlobalValue::vas_cm(dec("2.0"))),
        extramuscular_global: Some(GlobalValue::vas_cm(dec("1.0"))),
        haq_di: Some(dec("0.125")),
        enzymes: vec![EnzymeResult {
            name: "CK".to_string(),
            value: dec("400"),
            upper_limit_of_normal: dec("200"),
        }],
        prednisone_mg_per_day: Some(dec("20")),
        prednisone_stable_weeks: Some(dec("6")),
        ..BaselineMeasures::default()
    };
    assert_eq!(
        lines(&bird, &subject),
        (
            EligibilityVerdict::Eligible,
            vec![
                "IN01: all of [age_years >= 18 saw 50: met; age_years < 65 saw 50: met]: met".to_string(),
                "IN02: any of [mmt8_total < 145 saw 130: met; cdasi_activity > 20 saw 10: not met]: met".to_string(),
                "IN03: at least 2 of [physician_global > 3 saw 5.0: met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: met".to_string(),
                "IN04: all of [prednisone_mg_per_day < 30 saw 20: met; prednisone_stable_weeks >= 4 saw 6: met]: met".to_string(),
            ]
        )
    );

    let myojak = load("myojak v0", MYOJAK);
    let subject = BaselineMeasures {
        age_years: Some(dec("40")),
        mmt8: Some(Mmt8Total {
            total: dec("150"),
            max: 150,
        }),
        cdasi_activity: Some(dec("5")),
        ..BaselineMeasures::default()
    };
    // Full strength with CDASI 5: eligible under the earlier file's "or CDASI >= 5" branch.
    assert_eq!(
        lines(&myojak, &subject),
        (
            EligibilityVerdict::Eligible,
            vec![
                "IN01: age_years >= 18 saw 40: met".to_string(),
                "IN02: any of [mmt8_total < 150 saw 150: not met; cdasi_activity >= 5 saw 5: met]: met".to_string(),
            ]
        )
    );
    // The earlier MYOJAK schedule: week 36 for the delayed arm only, no week 40.
    assert_eq!(
        myojak
            .encounter("W36")
            .map(|encounter| encounter.arms.clone()),
        Some(vec!["DELAYED".to_string()])
    );
    assert!(myojak.encounter("W40").is_none());
}

/// TA, TV and TI of the earlier STIR file are the bytes the earlier build wrote.
#[test]
fn earlier_stir_trial_design_is_unchanged() {
    let datasets = load("stir v0", STIR).trial_design();
    assert_eq!(
        datasets.ta_csv(),
        include_str!("../../../tests/data/protocols-v0/tdm-stir/ta.csv")
    );
    assert_eq!(
        datasets.tv_csv(),
        include_str!("../../../tests/data/protocols-v0/tdm-stir/tv.csv")
    );
    assert_eq!(
        datasets.ti_csv(),
        include_str!("../../../tests/data/protocols-v0/tdm-stir/ti.csv")
    );
}
