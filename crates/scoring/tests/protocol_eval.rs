//! Eligibility from recorded baseline visits: instruments scored from items (HAQ-DI, MMT-8 grades,
//! globals on their scale, enzymes with ULN), then BIRD's criteria checked one by one.

use myolog_domain::enzyme::{Enzyme, EnzymeMeasurement, EnzymeUnit};
use myolog_domain::global::{GlobalAssessment, VasCm};
use myolog_domain::glucocorticoid::PrednisoneEquivalentDose;
use myolog_domain::haq::{Haq, HaqItemScore, HaqItems};
use myolog_domain::mmt8::{BilateralGrades, KendallGrade, Mmt8};
use myolog_domain::protocol::{EligibilityVerdict, Flag, Protocol};
use myolog_domain::treatment_history::AttestationCode;
use myolog_domain::visit::VisitAssessments;
use myolog_scoring::protocol_eval::{SubjectFacts, check_eligibility};
use rust_decimal::Decimal;
use std::collections::BTreeSet;

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).expect("test decimals are written exactly")
}

fn grade(value: u8) -> Option<KendallGrade> {
    Some(KendallGrade::from_decimal(Decimal::from(value)).expect("a Kendall grade 0-10"))
}

fn item(value: u8) -> Option<HaqItemScore> {
    Some(HaqItemScore::from_decimal(Decimal::from(value)).expect("a HAQ item 0-3"))
}

/// Dressing and arising score 1, every other category 0; `answered_categories` 8 or 7 (activities blank).
fn haq_with_category_sum_two(answered_categories: usize) -> Haq {
    let answered = |count: usize, first: u8| -> Vec<Option<HaqItemScore>> {
        (0..count)
            .map(|index| if index == 0 { item(first) } else { item(0) })
            .collect()
    };
    let activities = if answered_categories == 8 {
        answered(3, 0)
    } else {
        vec![None; 3]
    };
    let answers = [
        answered(2, 1),
        answered(2, 1),
        answered(3, 0),
        answered(2, 0),
        answered(3, 0),
        answered(2, 0),
        answered(3, 0),
        activities,
    ];
    Haq::Items(Box::new(
        HaqItems::new(answers, BTreeSet::new(), BTreeSet::new()).expect("item counts per category"),
    ))
}

/// Bilateral grades totalling 150 minus `weak_sides` (each weak side graded 9).
fn bilateral_mmt8(weak_sides: usize) -> Mmt8 {
    let mut grades = BilateralGrades {
        neck_flexors: grade(10),
        limbs: [[grade(10), grade(10)]; 7],
    };
    for side in 0..weak_sides {
        grades.limbs[side / 2][side % 2] = grade(9);
    }
    Mmt8::Bilateral(grades)
}

fn vas(cm: &str) -> Option<GlobalAssessment> {
    Some(GlobalAssessment::Vas(
        VasCm::from_cm(dec(cm)).expect("a VAS in cm"),
    ))
}

/// PhGA exactly 3 cm (not abnormal), PtGA 3.1 cm, HAQ-DI 2/8 = 0.25 (not abnormal), CK 250 (ULN 200),
/// MMT-8 144 of 150, no CDASI.
fn bird_baseline() -> VisitAssessments {
    let mut visit = VisitAssessments {
        physician_global: vas("3.0"),
        patient_global: vas("3.1"),
        mmt8: Some(bilateral_mmt8(6)),
        haq: Some(haq_with_category_sum_two(8)),
        prednisone_mg_per_day: Some(PrednisoneEquivalentDose::try_from(dec("10")).expect("a dose")),
        ..VisitAssessments::default()
    };
    let ck = EnzymeMeasurement::new(dec("250"), dec("200"), EnzymeUnit::UnitsPerLitre)
        .expect("an enzyme result");
    visit.enzymes.insert(Enzyme::Ck, ck);
    visit
}

/// A relapsing BIRD patient on prednisone and no other immunosuppressant, consented a week before
/// baseline, diagnosed by the ENMC criteria, affiliated to social security, without swallowing trouble.
fn facts() -> SubjectFacts {
    SubjectFacts {
        age_years: Some(50),
        muscle_active: Some(true),
        prednisone_stable_weeks: Some(6),
        flags: vec![
            (Flag::TreatmentNaive, false),
            (Flag::GlucocorticoidExposed, true),
            (Flag::OnImmunosuppressant, false),
            (Flag::Enmc239Dermatomyositis, true),
            (Flag::SevereSwallowingTrouble, false),
        ],
        consent_days_before_baseline: Some(7),
        attestations: vec![(
            AttestationCode::new("SOCIAL_SECURITY").expect("a code"),
            true,
        )],
        ..SubjectFacts::default()
    }
}

/// BIRD's criteria after IN04, which no case here changes.
const REST: &[&str] = &[
    "IN05: if [all of [treatment_naive is false saw false: met; on_immunosuppressant is true saw false: not met]: not met] then [immunosuppressant_stable_months >= 3 saw nothing: not evaluable]: not applicable",
    "IN06: enmc_239_dermatomyositis is true saw true: met",
    "IN07: informed consent on or before baseline saw 7 days: met",
    "IN08: attested SOCIAL_SECURITY is true saw true: met",
    "EX01: severe_swallowing_trouble is true saw false: not met",
];

/// (case, change to the baseline visit, verdict, the line of each criterion)
type Case<'a> = (
    &'a str,
    fn(&mut VisitAssessments),
    EligibilityVerdict,
    &'a [&'a str],
);

fn check(protocol: &Protocol, cases: &[Case<'_>]) {
    let mut differences = Vec::new();
    for (name, change, verdict, lines) in cases {
        let mut visit = bird_baseline();
        change(&mut visit);
        let report = check_eligibility(protocol, &visit, &facts());
        let actual: Vec<String> = report
            .criteria
            .iter()
            .map(|criterion| format!("{}: {}", criterion.id, criterion.result))
            .collect();
        let lines: Vec<&str> = lines.iter().chain(REST).copied().collect();
        if report.verdict != *verdict || actual != lines {
            differences.push(format!(
                "case {name:?}:\n  expected {verdict:?} {lines:#?}\n  actual {:?} {actual:#?}",
                report.verdict
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn bird_eligibility_from_recorded_instruments() {
    let bird = Protocol::from_toml(
        "protocols/bird.toml",
        include_str!("../../../protocols/bird.toml"),
    )
    .expect("BIRD validates");
    const AGE: &str = "IN01: all of [age_years >= 18 saw 50: met; age_years < 65 saw 50: met]: met";
    const MMT_144: &str = "IN02: any of [mmt8_total < 145 saw 144: met; cdasi_activity > 20 saw nothing: not evaluable]: met";
    // IGN-BIRD-EL inclusion 4: the prednisone rule is for relapsing patients exposed to corticosteroids.
    const PREDNISONE: &str = "IN04: if [all of [treatment_naive is false saw false: met; glucocorticoid_exposed is true saw true: met]: met] then [all of [prednisone_mg_per_day < 30 saw 10: met; prednisone_stable_weeks >= 4 saw 6: met]: met]: met";
    use EligibilityVerdict::{Eligible, NotEvaluable};
    check(
        &bird,
        &[
            (
                "HAQ-DI 2/8 = 0.25 is not above 0.25; PtGA and CK make two",
                |_| {},
                Eligible,
                &[
                    AGE,
                    MMT_144,
                    "IN03: at least 2 of [physician_global > 3 saw 3: not met; patient_global > 3 saw 3.1: met; extramuscular_global > 3 saw nothing: not evaluable; haq_di > 0.25 saw 0.25: not met; any enzyme > ULN saw ck 250 (ULN 200): met]: met",
                    PREDNISONE,
                ],
            ),
            (
                "HAQ-DI 2/7 with a category unanswered is above 0.25",
                |visit| {
                    visit.patient_global = vas("3.0");
                    visit.haq = Some(haq_with_category_sum_two(7));
                },
                Eligible,
                &[
                    AGE,
                    MMT_144,
                    "IN03: at least 2 of [physician_global > 3 saw 3: not met; patient_global > 3 saw 3: not met; extramuscular_global > 3 saw nothing: not evaluable; haq_di > 0.25 saw 0.285714: met; any enzyme > ULN saw ck 250 (ULN 200): met]: met",
                    PREDNISONE,
                ],
            ),
            (
                "MMT-8 145 of 150 and no CDASI: activity not evaluable",
                |visit| visit.mmt8 = Some(bilateral_mmt8(5)),
                NotEvaluable,
                &[
                    AGE,
                    "IN02: any of [mmt8_total < 145 saw 145: not met; cdasi_activity > 20 saw nothing: not evaluable]: not evaluable",
                    "IN03: at least 2 of [physician_global > 3 saw 3: not met; patient_global > 3 saw 3.1: met; extramuscular_global > 3 saw nothing: not evaluable; haq_di > 0.25 saw 0.25: not met; any enzyme > ULN saw ck 250 (ULN 200): met]: met",
                    PREDNISONE,
                ],
            ),
            (
                "an MMT-8 grade missing: total not computable",
                |visit| {
                    if let Some(Mmt8::Bilateral(grades)) = visit.mmt8.as_mut() {
                        grades.neck_flexors = None;
                    }
                },
                NotEvaluable,
                &[
                    AGE,
                    "IN02: any of [mmt8_total < 145 saw nothing: not evaluable; cdasi_activity > 20 saw nothing: not evaluable]: not evaluable",
                    "IN03: at least 2 of [physician_global > 3 saw 3: not met; patient_global > 3 saw 3.1: met; extramuscular_global > 3 saw nothing: not evaluable; haq_di > 0.25 saw 0.25: not met; any enzyme > ULN saw ck 250 (ULN 200): met]: met",
                    PREDNISONE,
                ],
            ),
        ],
    );
}
