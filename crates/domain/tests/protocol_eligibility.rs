//! Eligibility per trial, criterion by criterion, with the value each rule saw: the edges the trial
//! texts name (docs/protocols.md) (STIR: CDASI 4/5, MMT-8 141/142 when muscle is active; BIRD: MMT-8 144/145, CDASI 20/21,
//! abnormal measures counted with VAS exactly 3.0 and HAQ-DI exactly 0.25 not abnormal).

use myolog_domain::protocol::{
    BaselineMeasures, EligibilityVerdict, EnzymeResult, GlobalScale, GlobalValue, Mmt8Total,
    Protocol,
};
use rust_decimal::Decimal;

fn load(name: &str, text: &str) -> Protocol {
    match Protocol::from_toml(name, text) {
        Ok(protocol) => protocol,
        Err(errors) => panic!("{name} does not validate:\n{errors}"),
    }
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).expect("test decimals are written exactly")
}

fn vas(cm: &str) -> GlobalValue {
    GlobalValue::vas_cm(dec(cm))
}

fn mmt8_of_150(total: &str) -> Option<Mmt8Total> {
    Some(Mmt8Total {
        total: dec(total),
        max: 150,
    })
}

fn enzyme(name: &str, value: &str, upper_limit_of_normal: &str) -> EnzymeResult {
    EnzymeResult {
        name: name.to_string(),
        value: dec(value),
        upper_limit_of_normal: dec(upper_limit_of_normal),
    }
}

/// One case: a name, a change to the trial's typical eligible subject, the verdict, one line per criterion.
type Case<'a> = (
    &'a str,
    fn(&mut BaselineMeasures),
    EligibilityVerdict,
    &'a [&'a str],
);

/// Evaluates each case and returns every difference from the expected verdict and lines.
fn check(protocol: &Protocol, typical: &BaselineMeasures, cases: &[Case<'_>]) {
    let mut differences = Vec::new();
    for (name, change, verdict, lines) in cases {
        let mut measures = typical.clone();
        change(&mut measures);
        let report = protocol.check_eligibility(&measures);
        let actual_lines: Vec<String> = report
            .criteria
            .iter()
            .map(|criterion| format!("{}: {}", criterion.id, criterion.result))
            .collect();
        if report.verdict != *verdict || actual_lines != *lines {
            differences.push(format!(
                "case {name:?}:\n  expected {verdict:?} {lines:#?}\n  actual {:?} {actual_lines:#?}",
                report.verdict
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

use EligibilityVerdict::{Eligible, NotEligible, NotEvaluable};

fn typical_stir_subject() -> BaselineMeasures {
    BaselineMeasures {
        age_years: Some(dec("45")),
        cdasi_activity: Some(dec("28")),
        mmt8: mmt8_of_150("130"),
        muscle_active: Some(true),
        prednisone_mg_per_day: Some(dec("10")),
        prednisone_stable_weeks: Some(dec("8")),
        ..BaselineMeasures::default()
    }
}

#[test]
fn stir_eligibility() {
    let stir = load(
        "protocols/stir.toml",
        include_str!("../../../protocols/stir.toml"),
    );
    const AGE: &str = "IN01: age_years >= 18 saw 45: met";
    const CDASI_28: &str = "IN02: cdasi_activity >= 5 saw 28: met";
    const MUSCLE_130: &str =
        "IN03: if [muscle_active is true saw true: met] then [mmt8_total < 142 saw 130: met]: met";
    const PREDNISONE: &str = "IN04: all of [prednisone_mg_per_day <= 20 saw 10: met; prednisone_stable_weeks >= 4 saw 8: met]: met";
    check(
        &stir,
        &typical_stir_subject(),
        &[
            (
                "typical",
                |_| {},
                Eligible,
                &[AGE, CDASI_28, MUSCLE_130, PREDNISONE],
            ),
            (
                "CDASI 4 is below 5",
                |m| m.cdasi_activity = Some(dec("4")),
                NotEligible,
                &[
                    AGE,
                    "IN02: cdasi_activity >= 5 saw 4: not met",
                    MUSCLE_130,
                    PREDNISONE,
                ],
            ),
            (
                "CDASI 5 is the edge and passes",
                |m| m.cdasi_activity = Some(dec("5")),
                Eligible,
                &[
                    AGE,
                    "IN02: cdasi_activity >= 5 saw 5: met",
                    MUSCLE_130,
                    PREDNISONE,
                ],
            ),
            (
                "MMT-8 141 of 150 with active muscle passes",
                |m| m.mmt8 = mmt8_of_150("141"),
                Eligible,
                &[
                    AGE,
                    CDASI_28,
                    "IN03: if [muscle_active is true saw true: met] then [mmt8_total < 142 saw 141: met]: met",
                    PREDNISONE,
                ],
            ),
            (
                "MMT-8 142 of 150 with active muscle fails",
                |m| m.mmt8 = mmt8_of_150("142"),
                NotEligible,
                &[
                    AGE,
                    CDASI_28,
                    "IN03: if [muscle_active is true saw true: met] then [mmt8_total < 142 saw 142: not met]: not met",
                    PREDNISONE,
                ],
            ),
            (
                "MMT-8 142 without active muscle: the rule does not apply",
                |m| {
                    m.mmt8 = mmt8_of_150("142");
                    m.muscle_active = Some(false);
                },
                Eligible,
                &[
                    AGE,
                    CDASI_28,
                    "IN03: if [muscle_active is true saw false: not met] then [mmt8_total < 142 saw 142: not met]: not applicable",
                    PREDNISONE,
                ],
            ),
            (
                "muscle activity not recorded",
                |m| m.muscle_active = None,
                NotEvaluable,
                &[
                    AGE,
                    CDASI_28,
                    "IN03: if [muscle_active is true saw nothing: not evaluable] then [mmt8_total < 142 saw 130: met]: not evaluable",
                    PREDNISONE,
                ],
            ),
            (
                "CDASI not recorded",
                |m| m.cdasi_activity = None,
                NotEvaluable,
                &[
                    AGE,
                    "IN02: cdasi_activity >= 5 saw nothing: not evaluable",
                    MUSCLE_130,
                    PREDNISONE,
                ],
            ),
            (
                "MMT-8 on the 0-80 scale is never read as 0-150",
                |m| {
                    m.mmt8 = Some(Mmt8Total {
                        total: dec("70"),
                        max: 80,
                    })
                },
                NotEvaluable,
                &[
                    AGE,
                    CDASI_28,
                    "IN03: if [muscle_active is true saw true: met] then [mmt8_total < 142 saw 70 on 0-80, not on 0-150: not evaluable]: not evaluable",
                    PREDNISONE,
                ],
            ),
            (
                "a criterion not met outweighs one not evaluable",
                |m| {
                    m.age_years = Some(dec("17"));
                    m.cdasi_activity = None;
                },
                NotEligible,
                &[
                    "IN01: age_years >= 18 saw 17: not met",
                    "IN02: cdasi_activity >= 5 saw nothing: not evaluable",
                    MUSCLE_130,
                    PREDNISONE,
                ],
            ),
            (
                "prednisone above 20 mg/day",
                |m| m.prednisone_mg_per_day = Some(dec("20.5")),
                NotEligible,
                &[
                    AGE,
                    CDASI_28,
                    MUSCLE_130,
                    "IN04: all of [prednisone_mg_per_day <= 20 saw 20.5: not met; prednisone_stable_weeks >= 4 saw 8: met]: not met",
                ],
            ),
        ],
    );
}

/// PhGA 5.0 cm and CK 400 (ULN 200) abnormal; PtGA 2.0, extramuscular 1.0, HAQ-DI 0.125 not.
fn typical_bird_subject() -> BaselineMeasures {
    BaselineMeasures {
        age_years: Some(dec("50")),
        cdasi_activity: Some(dec("10")),
        mmt8: mmt8_of_150("130"),
        physician_global: Some(vas("5.0")),
        patient_global: Some(vas("2.0")),
        extramuscular_global: Some(vas("1.0")),
        haq_di: Some(dec("0.125")),
        enzymes: vec![enzyme("CK", "400", "200")],
        prednisone_mg_per_day: Some(dec("20")),
        prednisone_stable_weeks: Some(dec("6")),
        ..BaselineMeasures::default()
    }
}

#[test]
fn bird_eligibility() {
    let bird = load(
        "protocols/bird.toml",
        include_str!("../../../protocols/bird.toml"),
    );
    const AGE: &str = "IN01: all of [age_years >= 18 saw 50: met; age_years < 65 saw 50: met]: met";
    const ACTIVE: &str =
        "IN02: any of [mmt8_total < 145 saw 130: met; cdasi_activity > 20 saw 10: not met]: met";
    const ABNORMAL_TWO: &str = "IN03: at least 2 of [physician_global > 3 saw 5.0: met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: met";
    const PREDNISONE: &str = "IN04: all of [prednisone_mg_per_day < 30 saw 20: met; prednisone_stable_weeks >= 4 saw 6: met]: met";
    check(
        &bird,
        &typical_bird_subject(),
        &[
            (
                "typical",
                |_| {},
                Eligible,
                &[AGE, ACTIVE, ABNORMAL_TWO, PREDNISONE],
            ),
            (
                "MMT-8 144 of 150 passes",
                |m| m.mmt8 = mmt8_of_150("144"),
                Eligible,
                &[
                    AGE,
                    "IN02: any of [mmt8_total < 145 saw 144: met; cdasi_activity > 20 saw 10: not met]: met",
                    ABNORMAL_TWO,
                    PREDNISONE,
                ],
            ),
            (
                "MMT-8 145 of 150 with CDASI 20 fails",
                |m| {
                    m.mmt8 = mmt8_of_150("145");
                    m.cdasi_activity = Some(dec("20"));
                },
                NotEligible,
                &[
                    AGE,
                    "IN02: any of [mmt8_total < 145 saw 145: not met; cdasi_activity > 20 saw 20: not met]: not met",
                    ABNORMAL_TWO,
                    PREDNISONE,
                ],
            ),
            (
                "MMT-8 145 of 150 with CDASI 21 passes",
                |m| {
                    m.mmt8 = mmt8_of_150("145");
                    m.cdasi_activity = Some(dec("21"));
                },
                Eligible,
                &[
                    AGE,
                    "IN02: any of [mmt8_total < 145 saw 145: not met; cdasi_activity > 20 saw 21: met]: met",
                    ABNORMAL_TWO,
                    PREDNISONE,
                ],
            ),
            (
                "MMT-8 missing but CDASI 21 settles it",
                |m| {
                    m.mmt8 = None;
                    m.cdasi_activity = Some(dec("21"));
                },
                Eligible,
                &[
                    AGE,
                    "IN02: any of [mmt8_total < 145 saw nothing: not evaluable; cdasi_activity > 20 saw 21: met]: met",
                    ABNORMAL_TWO,
                    PREDNISONE,
                ],
            ),
            (
                "PhGA exactly 3.0 cm is not above 3: one abnormal measure",
                |m| m.physician_global = Some(vas("3.0")),
                NotEligible,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 3.0: not met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: not met",
                    PREDNISONE,
                ],
            ),
            (
                "PhGA 3.1 cm is above 3",
                |m| m.physician_global = Some(vas("3.1")),
                Eligible,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 3.1: met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: met",
                    PREDNISONE,
                ],
            ),
            (
                "HAQ-DI exactly 0.25 is not above 0.25",
                |m| {
                    m.physician_global = Some(vas("3.0"));
                    m.haq_di = Some(dec("0.25"));
                },
                NotEligible,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 3.0: not met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.25: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: not met",
                    PREDNISONE,
                ],
            ),
            (
                "HAQ-DI 0.375 is above 0.25",
                |m| {
                    m.physician_global = Some(vas("3.0"));
                    m.haq_di = Some(dec("0.375"));
                },
                Eligible,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 3.0: not met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.375: met; any enzyme > ULN saw CK 400 (ULN 200): met]: met",
                    PREDNISONE,
                ],
            ),
            (
                "an enzyme at its ULN is not above it",
                |m| m.enzymes = vec![enzyme("CK", "200", "200")],
                NotEligible,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 5.0: met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 200 (ULN 200): not met]: not met",
                    PREDNISONE,
                ],
            ),
            (
                "the most abnormal enzyme is the highest value/ULN, not the highest value",
                |m| {
                    m.enzymes = vec![enzyme("CK", "150", "200"), enzyme("aldolase", "9", "7.5")];
                },
                Eligible,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 5.0: met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw aldolase 9 (ULN 7.5): met]: met",
                    PREDNISONE,
                ],
            ),
            (
                "one abnormal, two unknown: could still reach two",
                |m| {
                    m.enzymes = Vec::new();
                    m.patient_global = None;
                },
                NotEvaluable,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 5.0: met; patient_global > 3 saw nothing: not evaluable; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw nothing: not evaluable]: not evaluable",
                    PREDNISONE,
                ],
            ),
            (
                "none abnormal, one unknown: cannot reach two",
                |m| {
                    m.physician_global = Some(vas("1.0"));
                    m.enzymes = Vec::new();
                },
                NotEligible,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 1.0: not met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw nothing: not evaluable]: not met",
                    PREDNISONE,
                ],
            ),
            (
                "a Likert physician global is never read as cm",
                |m| {
                    m.physician_global = Some(GlobalValue {
                        value: dec("4"),
                        scale: GlobalScale::Likert,
                    })
                },
                NotEvaluable,
                &[
                    AGE,
                    ACTIVE,
                    "IN03: at least 2 of [physician_global > 3 saw 4 on likert_0_4, not on vas_cm: not evaluable; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: not evaluable",
                    PREDNISONE,
                ],
            ),
            (
                "age 18 passes",
                |m| m.age_years = Some(dec("18")),
                Eligible,
                &[
                    "IN01: all of [age_years >= 18 saw 18: met; age_years < 65 saw 18: met]: met",
                    ACTIVE,
                    ABNORMAL_TWO,
                    PREDNISONE,
                ],
            ),
            (
                "age 64 passes",
                |m| m.age_years = Some(dec("64")),
                Eligible,
                &[
                    "IN01: all of [age_years >= 18 saw 64: met; age_years < 65 saw 64: met]: met",
                    ACTIVE,
                    ABNORMAL_TWO,
                    PREDNISONE,
                ],
            ),
            (
                "age 65 fails",
                |m| m.age_years = Some(dec("65")),
                NotEligible,
                &[
                    "IN01: all of [age_years >= 18 saw 65: met; age_years < 65 saw 65: not met]: not met",
                    ACTIVE,
                    ABNORMAL_TWO,
                    PREDNISONE,
                ],
            ),
            (
                "prednisone 30 mg/day fails",
                |m| m.prednisone_mg_per_day = Some(dec("30")),
                NotEligible,
                &[
                    AGE,
                    ACTIVE,
                    ABNORMAL_TWO,
                    "IN04: all of [prednisone_mg_per_day < 30 saw 30: not met; prednisone_stable_weeks >= 4 saw 6: met]: not met",
                ],
            ),
        ],
    );
}

#[test]
fn bird_upper_age_bound_is_a_protocol_parameter() {
    let text = include_str!("../../../protocols/bird.toml").replace(
        r#"{ kind = "compare", measure = "age_years", op = "<", value = 65 }"#,
        r#"{ kind = "compare", measure = "age_years", op = "<", value = 75 }"#,
    );
    let bird_75 = load("bird with age < 75", &text);
    check(
        &bird_75,
        &typical_bird_subject(),
        &[(
            "age 70 passes when the bound is 75",
            |m| m.age_years = Some(dec("70")),
            Eligible,
            &[
                "IN01: all of [age_years >= 18 saw 70: met; age_years < 75 saw 70: met]: met",
                "IN02: any of [mmt8_total < 145 saw 130: met; cdasi_activity > 20 saw 10: not met]: met",
                "IN03: at least 2 of [physician_global > 3 saw 5.0: met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: met",
                "IN04: all of [prednisone_mg_per_day < 30 saw 20: met; prednisone_stable_weeks >= 4 saw 6: met]: met",
            ],
        )],
    );
    let tdm = bird_75.trial_design();
    assert!(
        tdm.ts
            .iter()
            .any(|row| row.tsparmcd == "AGEMAX" && row.tsval == "P74Y")
    );
}

#[test]
fn myojak_eligibility() {
    let myojak = load(
        "protocols/myojak.toml",
        include_str!("../../../protocols/myojak.toml"),
    );
    let typical = BaselineMeasures {
        age_years: Some(dec("40")),
        mmt8: mmt8_of_150("150"),
        cdasi_activity: Some(dec("4")),
        ..BaselineMeasures::default()
    };
    check(
        &myojak,
        &typical,
        &[
            (
                "full strength and CDASI 4: no activity criterion",
                |_| {},
                NotEligible,
                &[
                    "IN01: age_years >= 18 saw 40: met",
                    "IN02: any of [mmt8_total < 150 saw 150: not met; cdasi_activity >= 5 saw 4: not met]: not met",
                ],
            ),
            (
                "MMT-8 149 of 150",
                |m| m.mmt8 = mmt8_of_150("149"),
                Eligible,
                &[
                    "IN01: age_years >= 18 saw 40: met",
                    "IN02: any of [mmt8_total < 150 saw 149: met; cdasi_activity >= 5 saw 4: not met]: met",
                ],
            ),
        ],
    );
}
