//! Eligibility from a subject's recorded baseline visit: the instruments are scored here (HAQ-DI from
//! items, MMT-8 from grades, CDASI from the form, the globals on their scale) and the values handed to
//! the protocol's criterion-by-criterion evaluator in `myolog_domain::protocol`.

use crate::cdasi::cdasi_scores;
use crate::core_set::visit_haq_di;
use crate::mmt::mmt8_total;
use myolog_domain::conventions::ScoringConventions;
use myolog_domain::global::{GlobalAssessment, GlobalScale as InputGlobalScale};
use myolog_domain::protocol::{
    BaselineMeasures, EligibilityReport, EnzymeResult, GlobalScale, GlobalValue, Mmt8Total,
    Protocol,
};
use myolog_domain::visit::VisitAssessments;
use rust_decimal::Decimal;

/// Baseline facts eligibility needs that are not visit assessments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectFacts {
    /// Completed years at baseline.
    pub age_years: Option<u32>,
    /// The investigator's judgement that the muscle disease is active.
    pub muscle_active: Option<bool>,
    /// Weeks the current prednisone dose has been stable before baseline.
    pub prednisone_stable_weeks: Option<u32>,
}

/// The values eligibility rules read, scored from one visit. A measure that cannot be computed
/// (a missing MMT-8 grade, too few HAQ categories) is absent, so its rules are "not evaluable".
pub fn baseline_measures(
    visit: &VisitAssessments,
    facts: &SubjectFacts,
    conventions: &ScoringConventions,
) -> BaselineMeasures {
    let cdasi = visit.cdasi.as_ref().map(cdasi_scores);
    BaselineMeasures {
        age_years: facts.age_years.map(Decimal::from),
        cdasi_activity: cdasi.map(|scores| Decimal::from(scores.activity)),
        cdasi_damage: cdasi.map(|scores| Decimal::from(scores.damage)),
        mmt8: visit
            .mmt8
            .as_ref()
            .and_then(|assessment| mmt8_total(assessment).ok())
            .map(|score| Mmt8Total {
                total: Decimal::from(score.total),
                max: score.scale.max_total(),
            }),
        physician_global: visit.physician_global.map(global_value),
        patient_global: visit.patient_global.map(global_value),
        extramuscular_global: visit.extramuscular_global.map(global_value),
        // HAQ-DI with 6 or 7 answered categories (k/6, k/7) has no finite decimal: rounded to 6
        // places it still orders exactly against thresholds of at most 3 decimals, which protocol
        // validation enforces (the nearest such k/7 is 1/7000 away from any of them).
        haq_di: visit
            .haq
            .as_ref()
            .and_then(|haq| visit_haq_di(haq, conventions).ok())
            .and_then(|ratio| ratio.to_display_decimal()),
        prednisone_mg_per_day: visit.prednisone_mg_per_day.map(|dose| dose.mg_per_day()),
        prednisone_stable_weeks: facts.prednisone_stable_weeks.map(Decimal::from),
        enzymes: visit
            .enzymes
            .iter()
            .map(|(enzyme, measurement)| EnzymeResult {
                name: enzyme.key().to_string(),
                value: measurement.value(),
                upper_limit_of_normal: measurement.uln(),
            })
            .collect(),
        muscle_active: facts.muscle_active,
    }
}

/// Checks a subject's eligibility from the baseline visit, scoring with the protocol's conventions.
pub fn check_eligibility(
    protocol: &Protocol,
    baseline: &VisitAssessments,
    facts: &SubjectFacts,
) -> EligibilityReport {
    let conventions = protocol.conventions().scoring();
    protocol.check_eligibility(&baseline_measures(baseline, facts, &conventions))
}

fn global_value(assessment: GlobalAssessment) -> GlobalValue {
    GlobalValue {
        value: assessment.value(),
        scale: match assessment.scale() {
            InputGlobalScale::VasCm => GlobalScale::VasCm,
            InputGlobalScale::Likert => GlobalScale::Likert,
        },
    }
}
