//! Property tests of the response criteria: the TIS stays within 0-100 and never drops when any single
//! measure improves more; the DOI does not change when an enzyme and its ULN are scaled by the same
//! factor (a unit change, or a lab with another reference range).

use myolog_domain::case::ScoreCase;
use myolog_domain::conventions::ScoringConventions;
use myolog_domain::enzyme::{Enzyme, EnzymeMeasurement, EnzymePanel, EnzymeUnit};
use myolog_domain::global::{GlobalAssessment, VasCm};
use myolog_domain::haq::{Haq, HaqDiScore};
use myolog_domain::mmt8::{Mmt8, MmtScale, MmtTotal};
use myolog_domain::visit::{Population, VisitAssessments};
use myolog_scoring::score_case;
use proptest::prelude::*;
use rust_decimal::Decimal;

/// The six core set inputs in their smallest units: tenths of cm, MMT points, thousandths of HAQ,
/// and enzyme values with their ULNs in U/L.
#[derive(Debug, Clone, Copy)]
struct CoreInputs {
    physician_tenths: i64,
    patient_tenths: i64,
    extramuscular_tenths: i64,
    mmt: u16,
    haq_thousandths: i64,
    ck: (i64, i64),
    aldolase: (i64, i64),
}

fn core_inputs(mmt_max: u16) -> impl Strategy<Value = CoreInputs> {
    (
        0i64..=100,
        0i64..=100,
        0i64..=100,
        0..=mmt_max,
        0i64..=3000,
        (0i64..=5000, 1i64..=500),
        (0i64..=5000, 1i64..=500),
    )
        .prop_map(
            |(physician, patient, extramuscular, mmt, haq, ck, aldolase)| CoreInputs {
                physician_tenths: physician,
                patient_tenths: patient,
                extramuscular_tenths: extramuscular,
                mmt,
                haq_thousandths: haq,
                ck,
                aldolase,
            },
        )
}

fn vas(tenths: i64) -> Option<GlobalAssessment> {
    Some(GlobalAssessment::Vas(
        VasCm::from_cm(Decimal::new(tenths, 1)).expect("0-10 cm"),
    ))
}

fn enzyme(value: i64, uln: i64, unit: EnzymeUnit) -> EnzymeMeasurement {
    EnzymeMeasurement::new(Decimal::from(value), Decimal::from(uln), unit).expect("valid enzyme")
}

fn visit(inputs: CoreInputs, scale: MmtScale) -> VisitAssessments {
    let mut enzymes = EnzymePanel::new();
    enzymes.insert(
        Enzyme::Ck,
        enzyme(inputs.ck.0, inputs.ck.1, EnzymeUnit::UnitsPerLitre),
    );
    enzymes.insert(
        Enzyme::Aldolase,
        enzyme(
            inputs.aldolase.0,
            inputs.aldolase.1,
            EnzymeUnit::UnitsPerLitre,
        ),
    );
    VisitAssessments {
        physician_global: vas(inputs.physician_tenths),
        patient_global: vas(inputs.patient_tenths),
        extramuscular_global: vas(inputs.extramuscular_tenths),
        mmt8: Some(Mmt8::Total(
            MmtTotal::new(inputs.mmt, scale).expect("in range"),
        )),
        haq: Some(Haq::Score(
            HaqDiScore::try_from(Decimal::new(inputs.haq_thousandths, 3)).expect("0-3"),
        )),
        enzymes,
        ..VisitAssessments::default()
    }
}

fn case(
    baseline: VisitAssessments,
    followup: VisitAssessments,
    population: Population,
) -> ScoreCase {
    ScoreCase {
        id: None,
        population,
        baseline,
        followup,
        conventions: ScoringConventions::default(),
    }
}

fn tis_score(case: &ScoreCase) -> Decimal {
    score_case(case)
        .tis
        .score
        .map(|score| score.0)
        .unwrap_or(Decimal::NEGATIVE_ONE)
}

/// Makes measure `which` of the follow-up better by `step` (clamped to the scale).
fn improve(mut inputs: CoreInputs, which: usize, step: i64, mmt_max: u16) -> CoreInputs {
    let lower = |value: i64| (value - step).max(0);
    match which {
        0 => inputs.physician_tenths = lower(inputs.physician_tenths),
        1 => inputs.patient_tenths = lower(inputs.patient_tenths),
        2 => inputs.extramuscular_tenths = lower(inputs.extramuscular_tenths),
        3 => inputs.mmt = (i64::from(inputs.mmt) + step).min(i64::from(mmt_max)) as u16,
        4 => inputs.haq_thousandths = lower(inputs.haq_thousandths),
        _ => {
            // Both enzymes fall, so whichever was most abnormal at baseline improves.
            inputs.ck.0 = lower(inputs.ck.0);
            inputs.aldolase.0 = lower(inputs.aldolase.0);
        }
    }
    inputs
}

proptest! {
    #[test]
    fn tis_is_within_0_and_100(
        bilateral in any::<bool>(),
        juvenile in any::<bool>(),
        (baseline, followup) in (core_inputs(150), core_inputs(150)),
    ) {
        let (scale, max) = if bilateral { (MmtScale::Bilateral, 150) } else { (MmtScale::Unilateral, 80) };
        let clamp = |mut inputs: CoreInputs| { inputs.mmt = inputs.mmt.min(max); inputs };
        let population = if juvenile { Population::Juvenile } else { Population::Adult };
        let score = tis_score(&case(visit(clamp(baseline), scale), visit(clamp(followup), scale), population));
        prop_assert!(score >= Decimal::ZERO && score <= Decimal::ONE_HUNDRED, "{score}");
    }

    #[test]
    fn tis_never_drops_when_one_measure_improves_more(
        (baseline, followup) in (core_inputs(80), core_inputs(80)),
        which in 0usize..6,
        step in 1i64..=3000,
    ) {
        let before = tis_score(&case(visit(baseline, MmtScale::Unilateral), visit(followup, MmtScale::Unilateral), Population::Adult));
        let better = improve(followup, which, step, 80);
        let after = tis_score(&case(visit(baseline, MmtScale::Unilateral), visit(better, MmtScale::Unilateral), Population::Adult));
        prop_assert!(after >= before, "measure {which}: {before} -> {after}");
    }

    #[test]
    fn doi_is_unchanged_when_an_enzyme_and_its_uln_are_scaled_together(
        (baseline, followup) in (core_inputs(80), core_inputs(80)),
        factor in prop::sample::select(vec![2i64, 3, 7, 60, 1000]),
        scale_baseline in any::<bool>(),
        scale_followup in any::<bool>(),
        scale_ck in any::<bool>(),
        as_microkatal in any::<bool>(),
    ) {
        let original = case(visit(baseline, MmtScale::Unilateral), visit(followup, MmtScale::Unilateral), Population::Adult);
        let mut scaled = original.clone();
        let target = if scale_ck { Enzyme::Ck } else { Enzyme::Aldolase };
        for (visit, apply, inputs) in [(&mut scaled.baseline, scale_baseline, baseline), (&mut scaled.followup, scale_followup, followup)] {
            if !apply {
                continue;
            }
            let (value, uln) = if scale_ck { inputs.ck } else { inputs.aldolase };
            // The same factor, optionally reported in ukat/L (which scales both by another 60).
            let unit = if as_microkatal { EnzymeUnit::MicrokatalPerLitre } else { EnzymeUnit::UnitsPerLitre };
            let replacement = enzyme(value * factor, uln * factor, unit);
            visit.enzymes.insert(target, replacement);
        }
        let expected = score_case(&original).doi;
        let actual = score_case(&scaled).doi;
        prop_assert_eq!(&actual.status, &expected.status);
        prop_assert_eq!(&actual.improved, &expected.improved);
        prop_assert_eq!(&actual.worsened, &expected.worsened);
        prop_assert_eq!(actual.conventions.enzyme, expected.conventions.enzyme);
    }
}

/// A full case (items, grades, CDASI, labs) whose numbers come from `numbers`, in and out of range.
fn case_text(numbers: &[String]) -> String {
    let n = |index: usize| numbers[index % numbers.len()].as_str();
    format!(
        r#"{{"population": "juvenile", "baseline": {{"physician_global": {}, "patient_global": {}, "extramuscular_global": {}, "mmt8": {{"max": 80, "grades": {{"neck_flexors": {}, "deltoid": {}, "biceps": {}, "wrist_extensors": {}, "gluteus_maximus": {}, "gluteus_medius": {}, "quadriceps": {}, "ankle_dorsiflexors": {}}}}}, "haq": {{"items": {{"dressing": [{}, {}], "arising": [{}, null], "eating": [{}, 0, 1], "walking": [0, {}], "hygiene": [1, 1, {}], "reach": [{}, 0], "grip": [0, 0, 0]}}, "aids": ["jar_opener"]}}, "enzymes": {{"ck": {{"value": {}, "uln": {}}}, "ldh": {{"value": {}, "uln": 250}}}}, "labs": {{"cxcl10": {{"value": {}, "unit": "pg/mL"}}}}}}, "followup": {{"physician_global": {}, "patient_global": {}, "extramuscular_global": {}, "mmt8": {{"total": {}, "max": 80}}, "haq_di": {}, "enzymes": {{"ck": {{"value": {}, "uln": 200}}, "ldh": {{"value": {}, "uln": 250}}}}, "labs": {{"cxcl10": {{"value": {}, "unit": "pg/mL"}}}}}}}}"#,
        n(0),
        n(1),
        n(2),
        n(3),
        n(4),
        n(5),
        n(6),
        n(7),
        n(8),
        n(9),
        n(10),
        n(11),
        n(12),
        n(13),
        n(14),
        n(15),
        n(16),
        n(17),
        n(18),
        n(19),
        n(20),
        n(21),
        n(22),
        n(23),
        n(24),
        n(25),
        n(26),
        n(27),
        n(28),
        n(29)
    )
}

proptest! {
    #[test]
    fn every_accepted_case_scores_without_panicking_and_within_range(
        // Mostly valid everywhere (1-3 fits every slot), sometimes out of range or over-precise.
        numbers in prop::collection::vec(
            prop_oneof![
                95 => (1i64..=3).prop_map(|value| value.to_string()),
                3 => (0i64..=12).prop_map(|value| value.to_string()),
                2 => (0i64..=100, 0u32..=2).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale).to_string()),
            ],
            30,
        ),
    ) {
        let Ok(case) = ScoreCase::from_json(&case_text(&numbers)) else { return Ok(()) };
        let outcome = score_case(&case);
        let json = serde_json::to_value(&outcome).expect("serialises");
        if let Some(score) = json["tis"]["score"].as_f64() {
            prop_assert!((0.0..=100.0).contains(&score), "{score}");
        }
        for visit in ["baseline", "followup"] {
            if let Some(haq) = json["haq_di"][visit].as_f64() {
                prop_assert!((0.0..=3.0).contains(&haq), "{haq}");
            }
        }
        prop_assert!(json["doi"]["status"].is_string());
    }
}
