//! Eligibility per trial, criterion by criterion, with the value each rule saw: the edges the trial
//! texts name (docs/protocols.md) (STIR: CDASI 4/5, MMT-8 141/142 when muscle is active, prednisone
//! stable 2 weeks; BIRD: MMT-8 144/145, CDASI 20/21, abnormal measures counted with VAS exactly 3.0 and
//! HAQ-DI exactly 0.25 not abnormal, the prednisone rule only for relapsing patients; MYOJAK: weakness
//! or low endurance together with another sign of activity).

use myolog_domain::protocol::{
    BaselineMeasures, DoseChange, EligibilityVerdict, EnzymeResult, Flag, GlobalScale, GlobalValue,
    Mmt8Total, Protocol,
};
use myolog_domain::treatment_history::{
    AttestationCode, Elapsed, PriorDrug, TreatmentBeforeBaseline, TreatmentResponse,
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

/// Evaluates each case and returns every difference from the expected verdict and lines. `rest` are
/// the lines of the criteria after those a case lists, which no case here changes; every line is
/// still compared.
fn check(protocol: &Protocol, typical: &BaselineMeasures, rest: &[&str], cases: &[Case<'_>]) {
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
        let lines: Vec<&str> = lines.iter().chain(rest).copied().collect();
        if report.verdict != *verdict || actual_lines != lines {
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
        // 20 mg/day from 12 weeks before baseline, 10 mg/day from 8 weeks before: the dose in effect
        // when the 8-week window opens (day -56) is 10, so the maximum within it is 10.
        glucocorticoid_history: vec![
            DoseChange {
                day: -84,
                mg_per_day: dec("20"),
            },
            DoseChange {
                day: -56,
                mg_per_day: dec("10"),
            },
        ],
        disease_duration_months: Some(dec("14")),
        flags: vec![
            (Flag::BohanPeterDefiniteOrProbable, true),
            (Flag::SkinBiopsyProven, true),
            (Flag::NegativeCancerScreening, true),
        ],
        // A year on glucocorticoids, which failed, as did methotrexate, stopped 16 weeks (112 days,
        // 3 completed months) before the first dose; IVIG helped, last given 150 days (4 months)
        // before. Never rituximab, cyclophosphamide, azathioprine, mycophenolate or tacrolimus.
        glucocorticoid_treated_weeks: Some(dec("52")),
        treatment_history: Some(vec![
            prior(
                PriorDrug::Glucocorticoid,
                None,
                Some(TreatmentResponse::Failed),
            ),
            prior(
                PriorDrug::Methotrexate,
                Some((112, 3)),
                Some(TreatmentResponse::Failed),
            ),
            prior(
                PriorDrug::Ivig,
                Some((150, 4)),
                Some(TreatmentResponse::Responded),
            ),
        ]),
        // A woman of child-bearing potential with a negative pregnancy test.
        attestations: vec![
            (code("CHILDBEARING_POTENTIAL"), true),
            (code("NEG_PREG_TEST"), true),
        ],
        ..BaselineMeasures::default()
    }
}

fn prior(
    drug: PriorDrug,
    last_dose: Option<(i32, i32)>,
    response: Option<TreatmentResponse>,
) -> TreatmentBeforeBaseline {
    TreatmentBeforeBaseline {
        drug,
        last_dose: last_dose.map(|(days, completed_months)| Elapsed {
            days,
            completed_months,
        }),
        response,
    }
}

fn code(text: &str) -> AttestationCode {
    AttestationCode::new(text).expect("a valid code")
}

/// STIR's criteria after IN04, as the typical subject meets them.
const STIR_REST: &[&str] = &[
    "IN05: max glucocorticoid mg/day within 8 weeks before baseline <= 80 saw 10: met",
    "IN06: all of [bohan_peter_definite_or_probable is true saw true: met; disease_duration_months >= 6 saw 14: met]: met",
    "IN07: skin_biopsy_proven is true saw true: met",
    "IN08: negative_cancer_screening is true saw true: met",
    STIR_REFRACTORY,
    "IN10: no azathioprine or mycophenolate or tacrolimus within 12 weeks before baseline saw none of them received: met",
    "IN11: no rituximab within 12 months before baseline saw none of them received: met",
    "IN12: no ivig within 3 months before baseline saw ivig last given 150 days (4 completed months) before baseline: met",
    "IN13: no cyclophosphamide within 12 months before baseline saw none of them received: met",
    "IN14: no methotrexate within 12 weeks before baseline saw methotrexate last given 112 days (3 completed months) before baseline: met",
    STIR_PREGNANCY,
];

/// IN09 of the typical subject: refractory by failure of glucocorticoids and methotrexate.
const STIR_REFRACTORY: &str = "IN09: any of [all of [glucocorticoid_treated_weeks >= 12 saw 52: met; glucocorticoid failed saw 1: met; methotrexate/mycophenolate/azathioprine failed saw 1: met]: met; glucocorticoid/methotrexate/mycophenolate/azathioprine intolerant saw 0: not met]: met";
const STIR_PREGNANCY: &str = "IN15: if [attested CHILDBEARING_POTENTIAL is true saw true: met] then [attested NEG_PREG_TEST is true saw true: met]: met";

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
    const PREDNISONE: &str = "IN04: all of [prednisone_mg_per_day <= 20 saw 10: met; prednisone_stable_weeks >= 2 saw 8: met]: met";
    check(
        &stir,
        &typical_stir_subject(),
        STIR_REST,
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
                    "IN04: all of [prednisone_mg_per_day <= 20 saw 20.5: not met; prednisone_stable_weeks >= 2 saw 8: met]: not met",
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
        // Relapsing, on prednisone, no other immunosuppressant: IN04 applies, IN05 does not.
        flags: vec![
            (Flag::TreatmentNaive, false),
            (Flag::GlucocorticoidExposed, true),
            (Flag::OnImmunosuppressant, false),
            (Flag::Enmc239Dermatomyositis, true),
            (Flag::SevereSwallowingTrouble, false),
        ],
        consent_days_before_baseline: Some(14),
        attestations: vec![(code("SOCIAL_SECURITY"), true)],
        ..BaselineMeasures::default()
    }
}

/// BIRD's criteria after IN04, as the typical subject meets them (EX01 not met: not excluded).
const BIRD_REST: &[&str] = &[
    "IN05: if [all of [treatment_naive is false saw false: met; on_immunosuppressant is true saw false: not met]: not met] then [immunosuppressant_stable_months >= 3 saw nothing: not evaluable]: not applicable",
    "IN06: enmc_239_dermatomyositis is true saw true: met",
    "IN07: informed consent on or before baseline saw 14 days: met",
    "IN08: attested SOCIAL_SECURITY is true saw true: met",
    "EX01: severe_swallowing_trouble is true saw false: not met",
];

/// IN04 of a relapsing patient exposed to corticosteroids, with its prednisone part.
macro_rules! bird_in04 {
    ($mg:literal, $weeks:literal, $dose_verdict:literal, $verdict:literal) => {
        concat!(
            "IN04: if [all of [treatment_naive is false saw false: met; glucocorticoid_exposed is true saw true: met]: met] then [all of [prednisone_mg_per_day < 30 saw ",
            $mg,
            ": ",
            $dose_verdict,
            "; prednisone_stable_weeks >= 4 saw ",
            $weeks,
            ": met]: ",
            $verdict,
            "]: ",
            $verdict
        )
    };
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
    const PREDNISONE: &str = bird_in04!("20", "6", "met", "met");
    check(
        &bird,
        &typical_bird_subject(),
        BIRD_REST,
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
                    bird_in04!("30", "6", "not met", "not met"),
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
        BIRD_REST,
        &[(
            "age 70 passes when the bound is 75",
            |m| m.age_years = Some(dec("70")),
            Eligible,
            &[
                "IN01: all of [age_years >= 18 saw 70: met; age_years < 75 saw 70: met]: met",
                "IN02: any of [mmt8_total < 145 saw 130: met; cdasi_activity > 20 saw 10: not met]: met",
                "IN03: at least 2 of [physician_global > 3 saw 5.0: met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: met",
                bird_in04!("20", "6", "met", "met"),
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
    // Full strength (MMT-8 150 of 150) and normal endurance (FI-3 at 85 % of its upper value), with a
    // dermatomyositis rash but no other sign. The registry rule needs weakness or low endurance AND
    // another sign, so the rash alone does not make the subject eligible (the old rule's "or CDASI
    // >= 5" branch would have).
    let typical = BaselineMeasures {
        age_years: Some(dec("40")),
        mmt8: mmt8_of_150("150"),
        fi3_percent_of_upper: Some(dec("85")),
        cdasi_activity: Some(dec("12")),
        enzymes: vec![enzyme("CK", "150", "200")],
        prednisone_mg_per_day: Some(dec("15")),
        prednisone_stable_weeks: Some(dec("6")),
        eular_acr_probability_percent: Some(dec("90.5")),
        glucocorticoid_treated_weeks: Some(dec("20")),
        // 30 mg/day from 20 weeks before baseline, tapered to 15 mg/day 6 weeks before: a 14-week run
        // at 20 mg/day or more.
        glucocorticoid_history: vec![
            DoseChange {
                day: -140,
                mg_per_day: dec("30"),
            },
            DoseChange {
                day: -42,
                mg_per_day: dec("15"),
            },
        ],
        flags: vec![
            (Flag::ActiveExtramuscularDisease, true),
            (Flag::RecentInflammationBiopsyOrMri, false),
        ],
        ..BaselineMeasures::default()
    };
    const REST: &[&str] = &[
        "IN03: all of [prednisone_mg_per_day <= 20 saw 15: met; prednisone_stable_weeks >= 4 saw 6: met]: met",
        "IN04: eular_acr_probability_percent >= 55 saw 90.5: met",
        "IN05: all of [glucocorticoid_treated_weeks >= 12 saw 20: met; glucocorticoid >= 20 mg/day for >= 4 weeks before baseline saw 98 days: met]: met",
    ];
    const AGE: &str = "IN01: age_years >= 18 saw 40: met";
    check(
        &myojak,
        &typical,
        REST,
        &[
            (
                "full strength, normal endurance and a rash: no weakness, so not eligible",
                |_| {},
                NotEligible,
                &[
                    AGE,
                    "IN02: all of [any of [mmt8_total < 150 saw 150: not met; fi3_percent_of_upper < 20 saw 85: not met]: not met; any of [any enzyme > ULN saw CK 150 (ULN 200): not met; recent_inflammation_biopsy_or_mri is true saw false: not met; active_extramuscular_disease is true saw true: met]: met]: not met",
                ],
            ),
            (
                "MMT-8 149 of 150 and a rash",
                |m| m.mmt8 = mmt8_of_150("149"),
                Eligible,
                &[
                    AGE,
                    "IN02: all of [any of [mmt8_total < 150 saw 149: met; fi3_percent_of_upper < 20 saw 85: not met]: met; any of [any enzyme > ULN saw CK 150 (ULN 200): not met; recent_inflammation_biopsy_or_mri is true saw false: not met; active_extramuscular_disease is true saw true: met]: met]: met",
                ],
            ),
            (
                "full strength but FI-3 at 19.5 % (low endurance) and a rash",
                |m| m.fi3_percent_of_upper = Some(dec("19.5")),
                Eligible,
                &[
                    AGE,
                    "IN02: all of [any of [mmt8_total < 150 saw 150: not met; fi3_percent_of_upper < 20 saw 19.5: met]: met; any of [any enzyme > ULN saw CK 150 (ULN 200): not met; recent_inflammation_biopsy_or_mri is true saw false: not met; active_extramuscular_disease is true saw true: met]: met]: met",
                ],
            ),
            (
                "weak but no other sign of activity",
                |m| {
                    m.mmt8 = mmt8_of_150("120");
                    m.flags = vec![
                        (Flag::ActiveExtramuscularDisease, false),
                        (Flag::RecentInflammationBiopsyOrMri, false),
                    ];
                },
                NotEligible,
                &[
                    AGE,
                    "IN02: all of [any of [mmt8_total < 150 saw 120: met; fi3_percent_of_upper < 20 saw 85: not met]: met; any of [any enzyme > ULN saw CK 150 (ULN 200): not met; recent_inflammation_biopsy_or_mri is true saw false: not met; active_extramuscular_disease is true saw false: not met]: not met]: not met",
                ],
            ),
            (
                "full strength and FI-3 not recorded: weakness cannot be ruled out",
                |m| m.fi3_percent_of_upper = None,
                NotEvaluable,
                &[
                    AGE,
                    "IN02: all of [any of [mmt8_total < 150 saw 150: not met; fi3_percent_of_upper < 20 saw nothing: not evaluable]: not evaluable; any of [any enzyme > ULN saw CK 150 (ULN 200): not met; recent_inflammation_biopsy_or_mri is true saw false: not met; active_extramuscular_disease is true saw true: met]: met]: not evaluable",
                ],
            ),
        ],
    );
}

/// CTX-STIR inclusion 7: a dose "stable for at least 2 weeks prior to baseline" (the file said 4 [D]
/// before): 2 weeks passes, 1 fails; and a dose above 80 mg/day inside the 8 weeks excludes.
#[test]
fn stir_prednisone_stable_two_weeks_and_no_high_dose_within_eight() {
    let stir = load(
        "protocols/stir.toml",
        include_str!("../../../protocols/stir.toml"),
    );
    const AGE: &str = "IN01: age_years >= 18 saw 45: met";
    const CDASI_28: &str = "IN02: cdasi_activity >= 5 saw 28: met";
    const MUSCLE_130: &str =
        "IN03: if [muscle_active is true saw true: met] then [mmt8_total < 142 saw 130: met]: met";
    check(
        &stir,
        &typical_stir_subject(),
        STIR_REST,
        &[
            (
                "stable for exactly 2 weeks",
                |m| m.prednisone_stable_weeks = Some(dec("2")),
                Eligible,
                &[
                    AGE,
                    CDASI_28,
                    MUSCLE_130,
                    "IN04: all of [prednisone_mg_per_day <= 20 saw 10: met; prednisone_stable_weeks >= 2 saw 2: met]: met",
                ],
            ),
            (
                "stable for 1 week",
                |m| m.prednisone_stable_weeks = Some(dec("1")),
                NotEligible,
                &[
                    AGE,
                    CDASI_28,
                    MUSCLE_130,
                    "IN04: all of [prednisone_mg_per_day <= 20 saw 10: met; prednisone_stable_weeks >= 2 saw 1: not met]: not met",
                ],
            ),
        ],
    );
    const STABLE: &str = "IN04: all of [prednisone_mg_per_day <= 20 saw 10: met; prednisone_stable_weeks >= 2 saw 8: met]: met";
    let cases: [(&str, Vec<DoseChange>, EligibilityVerdict, &str); 4] = [
        (
            "100 mg/day from 9 weeks before, in effect when the window opens",
            vec![
                DoseChange {
                    day: -63,
                    mg_per_day: dec("100"),
                },
                DoseChange {
                    day: -14,
                    mg_per_day: dec("10"),
                },
            ],
            NotEligible,
            "IN05: max glucocorticoid mg/day within 8 weeks before baseline <= 80 saw 100: not met",
        ),
        (
            "100 mg/day ended the day before the window: not in it",
            vec![
                DoseChange {
                    day: -70,
                    mg_per_day: dec("100"),
                },
                DoseChange {
                    day: -57,
                    mg_per_day: dec("10"),
                },
            ],
            Eligible,
            "IN05: max glucocorticoid mg/day within 8 weeks before baseline <= 80 saw 10: met",
        ),
        (
            "records start inside the window: earlier doses unknown",
            vec![DoseChange {
                day: -20,
                mg_per_day: dec("10"),
            }],
            NotEvaluable,
            "IN05: max glucocorticoid mg/day within 8 weeks before baseline <= 80 saw 10: not evaluable",
        ),
        (
            "records start inside the window at 90 mg/day: above 80 whatever came before",
            vec![
                DoseChange {
                    day: -20,
                    mg_per_day: dec("90"),
                },
                DoseChange {
                    day: -14,
                    mg_per_day: dec("10"),
                },
            ],
            NotEligible,
            "IN05: max glucocorticoid mg/day within 8 weeks before baseline <= 80 saw 90: not met",
        ),
    ];
    for (name, history, verdict, line) in cases {
        let mut subject = typical_stir_subject();
        subject.glucocorticoid_history = history;
        let report = stir.check_eligibility(&subject);
        let lines: Vec<String> = report
            .criteria
            .iter()
            .map(|criterion| format!("{}: {}", criterion.id, criterion.result))
            .collect();
        assert_eq!(report.verdict, verdict, "{name}");
        assert_eq!(lines[3], STABLE, "{name}");
        assert_eq!(lines[4], line, "{name}");
    }
}

/// IGN-BIRD-EL inclusion 4 applies "for relapsing/non naïve DM patients" only: a treatment-naive
/// patient on no prednisone at all is eligible, where the old rule (for every subject) left them not
/// evaluable for want of a dose.
#[test]
fn bird_treatment_naive_patient_without_prednisone_is_eligible() {
    let bird = load(
        "protocols/bird.toml",
        include_str!("../../../protocols/bird.toml"),
    );
    let mut naive = typical_bird_subject();
    naive.prednisone_mg_per_day = None;
    naive.prednisone_stable_weeks = None;
    naive.flags = vec![
        (Flag::TreatmentNaive, true),
        (Flag::Enmc239Dermatomyositis, true),
        (Flag::SevereSwallowingTrouble, false),
    ];
    let report = bird.check_eligibility(&naive);
    let lines: Vec<String> = report
        .criteria
        .iter()
        .map(|criterion| format!("{}: {}", criterion.id, criterion.result))
        .collect();
    assert_eq!(report.verdict, Eligible, "{lines:#?}");
    assert_eq!(
        lines[3],
        "IN04: if [all of [treatment_naive is false saw true: not met; glucocorticoid_exposed is true saw nothing: not evaluable]: not met] then [all of [prednisone_mg_per_day < 30 saw nothing: not evaluable; prednisone_stable_weeks >= 4 saw nothing: not evaluable]: not evaluable]: not applicable"
    );
    assert_eq!(
        lines[4],
        "IN05: if [all of [treatment_naive is false saw true: not met; on_immunosuppressant is true saw nothing: not evaluable]: not met] then [immunosuppressant_stable_months >= 3 saw nothing: not evaluable]: not applicable"
    );

    // Relapsing, on an immunosuppressant stable for 2 months: IN05 applies and fails.
    let mut relapsing = typical_bird_subject();
    relapsing
        .flags
        .retain(|(flag, _)| *flag != Flag::OnImmunosuppressant);
    relapsing.flags.push((Flag::OnImmunosuppressant, true));
    relapsing.immunosuppressant_stable_months = Some(dec("2"));
    let report = bird.check_eligibility(&relapsing);
    assert_eq!(report.verdict, NotEligible);
    assert_eq!(
        report.criteria[4].result.to_string(),
        "if [all of [treatment_naive is false saw false: met; on_immunosuppressant is true saw true: met]: met] then [immunosuppressant_stable_months >= 3 saw 2: not met]: not met"
    );

    // Severe swallowing trouble excludes; consent after the baseline visit fails IN07; no consent
    // date is not evaluable, never "not met".
    let mut swallowing = typical_bird_subject();
    swallowing
        .flags
        .retain(|(flag, _)| *flag != Flag::SevereSwallowingTrouble);
    swallowing.flags.push((Flag::SevereSwallowingTrouble, true));
    assert_eq!(bird.check_eligibility(&swallowing).verdict, NotEligible);
    let mut late_consent = typical_bird_subject();
    late_consent.consent_days_before_baseline = Some(-1);
    assert_eq!(bird.check_eligibility(&late_consent).verdict, NotEligible);
    let mut no_consent = typical_bird_subject();
    no_consent.consent_days_before_baseline = None;
    assert_eq!(bird.check_eligibility(&no_consent).verdict, NotEvaluable);
}

/// One case over a trial's later criteria: a name, a change to the typical subject, the verdict, and
/// the lines that differ from the typical subject's (matched by criterion id); every other line must
/// stay as the typical subject has it.
type ChangedCase<'a> = (
    &'a str,
    fn(&mut BaselineMeasures),
    EligibilityVerdict,
    &'a [&'a str],
);

fn check_changes(
    protocol: &Protocol,
    typical: &BaselineMeasures,
    typical_lines: &[&str],
    cases: &[ChangedCase<'_>],
) {
    let mut differences = Vec::new();
    for (name, change, verdict, changed) in cases {
        let mut measures = typical.clone();
        change(&mut measures);
        let report = protocol.check_eligibility(&measures);
        let actual: Vec<String> = report
            .criteria
            .iter()
            .map(|criterion| format!("{}: {}", criterion.id, criterion.result))
            .collect();
        let id = |line: &str| line.split(':').next().unwrap_or_default().to_string();
        let expected: Vec<String> = typical_lines
            .iter()
            .map(|line| {
                changed
                    .iter()
                    .find(|replacement| id(replacement) == id(line))
                    .unwrap_or(line)
                    .to_string()
            })
            .collect();
        if report.verdict != *verdict || actual != expected {
            differences.push(format!(
                "case {name:?}:\n  expected {verdict:?} {expected:#?}\n  actual {:?} {actual:#?}",
                report.verdict
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

fn set_prior(
    measures: &mut BaselineMeasures,
    drug: PriorDrug,
    last_dose: Option<(i32, i32)>,
    response: Option<TreatmentResponse>,
) {
    let history = measures.treatment_history.get_or_insert_with(Vec::new);
    history.retain(|treatment| treatment.drug != drug);
    history.push(prior(drug, last_dose, response));
}

/// STIR's refractory definition, washouts and pregnancy test, each edge derived by hand from the
/// registry words quoted in protocols/stir.toml: a washout of 12 weeks is met at day 84 and not at 83;
/// one of 12 months at 12 completed months and not at 11; a drug never received needs none; a last
/// dose or response not recorded, or no history at all, is not evaluable, never "not met".
#[test]
fn stir_refractory_washouts_and_pregnancy_test() {
    let stir = load(
        "protocols/stir.toml",
        include_str!("../../../protocols/stir.toml"),
    );
    let typical: Vec<&str> = [
        "IN01: age_years >= 18 saw 45: met",
        "IN02: cdasi_activity >= 5 saw 28: met",
        "IN03: if [muscle_active is true saw true: met] then [mmt8_total < 142 saw 130: met]: met",
        "IN04: all of [prednisone_mg_per_day <= 20 saw 10: met; prednisone_stable_weeks >= 2 saw 8: met]: met",
    ]
    .into_iter()
    .chain(STIR_REST.iter().copied())
    .collect();
    check_changes(
        &stir,
        &typical_stir_subject(),
        &typical,
        &[
            ("typical", |_| {}, Eligible, &[]),
            (
                "methotrexate stopped 83 days before the first dose: one day short of 12 weeks",
                |m| {
                    set_prior(
                        m,
                        PriorDrug::Methotrexate,
                        Some((83, 2)),
                        Some(TreatmentResponse::Failed),
                    )
                },
                NotEligible,
                &[
                    "IN14: no methotrexate within 12 weeks before baseline saw methotrexate last given 83 days (2 completed months) before baseline: not met",
                ],
            ),
            (
                "methotrexate stopped exactly 12 weeks before",
                |m| {
                    set_prior(
                        m,
                        PriorDrug::Methotrexate,
                        Some((84, 2)),
                        Some(TreatmentResponse::Failed),
                    )
                },
                Eligible,
                &[
                    "IN14: no methotrexate within 12 weeks before baseline saw methotrexate last given 84 days (2 completed months) before baseline: met",
                ],
            ),
            (
                "rituximab 11 completed months before",
                |m| set_prior(m, PriorDrug::Rituximab, Some((360, 11)), None),
                NotEligible,
                &[
                    "IN11: no rituximab within 12 months before baseline saw rituximab last given 360 days (11 completed months) before baseline: not met",
                ],
            ),
            (
                "rituximab 12 completed months before",
                |m| set_prior(m, PriorDrug::Rituximab, Some((366, 12)), None),
                Eligible,
                &[
                    "IN11: no rituximab within 12 months before baseline saw rituximab last given 366 days (12 completed months) before baseline: met",
                ],
            ),
            (
                "tacrolimus 10 weeks before: the azathioprine, mycophenolate and tacrolimus line fails",
                |m| {
                    set_prior(
                        m,
                        PriorDrug::Tacrolimus,
                        Some((70, 2)),
                        Some(TreatmentResponse::Responded),
                    )
                },
                NotEligible,
                &[
                    "IN10: no azathioprine or mycophenolate or tacrolimus within 12 weeks before baseline saw tacrolimus last given 70 days (2 completed months) before baseline: not met",
                ],
            ),
            (
                "IVIG received, last dose not recorded",
                |m| set_prior(m, PriorDrug::Ivig, None, Some(TreatmentResponse::Responded)),
                NotEvaluable,
                &["IN12: no ivig within 3 months before baseline saw nothing: not evaluable"],
            ),
            (
                "no treatment history reported",
                |m| m.treatment_history = None,
                NotEvaluable,
                &[
                    "IN09: any of [all of [glucocorticoid_treated_weeks >= 12 saw 52: met; glucocorticoid failed saw nothing: not evaluable; methotrexate/mycophenolate/azathioprine failed saw nothing: not evaluable]: not evaluable; glucocorticoid/methotrexate/mycophenolate/azathioprine intolerant saw nothing: not evaluable]: not evaluable",
                    "IN10: no azathioprine or mycophenolate or tacrolimus within 12 weeks before baseline saw nothing: not evaluable",
                    "IN11: no rituximab within 12 months before baseline saw nothing: not evaluable",
                    "IN12: no ivig within 3 months before baseline saw nothing: not evaluable",
                    "IN13: no cyclophosphamide within 12 months before baseline saw nothing: not evaluable",
                    "IN14: no methotrexate within 12 weeks before baseline saw nothing: not evaluable",
                ],
            ),
            (
                "only 10 weeks of steroids and nothing intolerated: not refractory",
                |m| m.glucocorticoid_treated_weeks = Some(dec("10")),
                NotEligible,
                &[
                    "IN09: any of [all of [glucocorticoid_treated_weeks >= 12 saw 10: not met; glucocorticoid failed saw 1: met; methotrexate/mycophenolate/azathioprine failed saw 1: met]: not met; glucocorticoid/methotrexate/mycophenolate/azathioprine intolerant saw 0: not met]: not met",
                ],
            ),
            (
                "methotrexate helped, azathioprine not tolerated: refractory by intolerance",
                |m| {
                    set_prior(
                        m,
                        PriorDrug::Methotrexate,
                        Some((112, 3)),
                        Some(TreatmentResponse::Responded),
                    );
                    set_prior(
                        m,
                        PriorDrug::Azathioprine,
                        Some((200, 6)),
                        Some(TreatmentResponse::Intolerant),
                    );
                },
                Eligible,
                &[
                    "IN09: any of [all of [glucocorticoid_treated_weeks >= 12 saw 52: met; glucocorticoid failed saw 1: met; methotrexate/mycophenolate/azathioprine failed saw 0: not met]: not met; glucocorticoid/methotrexate/mycophenolate/azathioprine intolerant saw 1: met]: met",
                    "IN10: no azathioprine or mycophenolate or tacrolimus within 12 weeks before baseline saw azathioprine last given 200 days (6 completed months) before baseline: met",
                ],
            ),
            (
                "methotrexate's response not recorded and no other agent: undecided",
                |m| set_prior(m, PriorDrug::Methotrexate, Some((112, 3)), None),
                NotEvaluable,
                &[
                    "IN09: any of [all of [glucocorticoid_treated_weeks >= 12 saw 52: met; glucocorticoid failed saw 1: met; methotrexate/mycophenolate/azathioprine failed saw 0: not evaluable]: not evaluable; glucocorticoid/methotrexate/mycophenolate/azathioprine intolerant saw 0: not evaluable]: not evaluable",
                ],
            ),
            (
                "not of child-bearing potential: no pregnancy test needed",
                |m| m.attestations = vec![(code("CHILDBEARING_POTENTIAL"), false)],
                Eligible,
                &[
                    "IN15: if [attested CHILDBEARING_POTENTIAL is true saw false: not met] then [attested NEG_PREG_TEST is true saw nothing: not evaluable]: not applicable",
                ],
            ),
            (
                "child-bearing potential, pregnancy test not attested",
                |m| m.attestations = vec![(code("CHILDBEARING_POTENTIAL"), true)],
                NotEvaluable,
                &[
                    "IN15: if [attested CHILDBEARING_POTENTIAL is true saw true: met] then [attested NEG_PREG_TEST is true saw nothing: not evaluable]: not evaluable",
                ],
            ),
            (
                "pregnancy test not negative",
                |m| {
                    m.attestations = vec![
                        (code("CHILDBEARING_POTENTIAL"), true),
                        (code("NEG_PREG_TEST"), false),
                    ]
                },
                NotEligible,
                &[
                    "IN15: if [attested CHILDBEARING_POTENTIAL is true saw true: met] then [attested NEG_PREG_TEST is true saw false: not met]: not met",
                ],
            ),
        ],
    );
}

/// BIRD's social security affiliation: attested yes, no, or not attested.
#[test]
fn bird_social_security_is_attested() {
    let bird = load(
        "protocols/bird.toml",
        include_str!("../../../protocols/bird.toml"),
    );
    let typical: Vec<&str> = [
        "IN01: all of [age_years >= 18 saw 50: met; age_years < 65 saw 50: met]: met",
        "IN02: any of [mmt8_total < 145 saw 130: met; cdasi_activity > 20 saw 10: not met]: met",
        "IN03: at least 2 of [physician_global > 3 saw 5.0: met; patient_global > 3 saw 2.0: not met; extramuscular_global > 3 saw 1.0: not met; haq_di > 0.25 saw 0.125: not met; any enzyme > ULN saw CK 400 (ULN 200): met]: met",
        bird_in04!("20", "6", "met", "met"),
    ]
    .into_iter()
    .chain(BIRD_REST.iter().copied())
    .collect();
    check_changes(
        &bird,
        &typical_bird_subject(),
        &typical,
        &[
            ("typical", |_| {}, Eligible, &[]),
            (
                "not affiliated",
                |m| m.attestations = vec![(code("SOCIAL_SECURITY"), false)],
                NotEligible,
                &["IN08: attested SOCIAL_SECURITY is true saw false: not met"],
            ),
            (
                "not attested",
                |m| m.attestations = Vec::new(),
                NotEvaluable,
                &["IN08: attested SOCIAL_SECURITY is true saw nothing: not evaluable"],
            ),
        ],
    );
}
