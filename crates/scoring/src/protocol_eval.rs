//! Eligibility from a subject's recorded baseline visit: the instruments are scored here (HAQ-DI from
//! items, MMT-8 from grades, CDASI from the form, the globals on their scale) and the values handed to
//! the protocol's criterion-by-criterion evaluator in `myolog_domain::protocol`; and each endpoint
//! computed for one subject as the protocol defines it (visits, baseline rule, conventions, responder
//! rule, missing-data rule).

use crate::cdasi::{CdasiChange, CdasiScores, cdasi_change, cdasi_scores};
use crate::change::{BiomarkerChange, biomarker_change};
use crate::core_set::{core_set, visit_haq_di};
use crate::doi::{DoiOutcome, DoiStatus, doi};
use crate::mmt::mmt8_total;
use crate::stats::{
    Outcome as StatsOutcome, PairedComparison, Proportion, Summary, WilcoxonOptions,
    paired_comparison, responder_proportion, summarize,
};
use crate::tis::{TisOutcome, tis, tis_category};
use myolog_domain::conventions::ScoringConventions;
use myolog_domain::global::GlobalAssessment;
use myolog_domain::lab::LabCode;
use myolog_domain::protocol::{
    AttendedVisit, BaselineMeasures, BaselineVisit, DoseChange, EligibilityReport, Endpoint,
    EndpointVisits, EndpointVisitsError, EnzymeResult, Flag, FollowupVisit, GlobalValue,
    GlucocorticoidRecord, MissingDataRule, Mmt8Total, Outcome, Population, PrednisoneFreeResult,
    Protocol, ProtocolRef, ResponderRule, ResponderStatus, TisCategory, VisitTiming,
};
use myolog_domain::treatment_history::{AttestationCode, TreatmentBeforeBaseline};
use myolog_domain::visit::VisitAssessments;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

/// Baseline facts eligibility needs that are not visit assessments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectFacts {
    /// Completed years at baseline.
    pub age_years: Option<u32>,
    /// The investigator's judgement that the muscle disease is active.
    pub muscle_active: Option<bool>,
    /// Weeks the current prednisone dose has been stable before baseline.
    pub prednisone_stable_weeks: Option<u32>,
    /// The other yes/no facts recorded at enrolment; a flag not listed was not recorded.
    pub flags: Vec<(Flag, bool)>,
    pub eular_acr_probability_percent: Option<Decimal>,
    pub fi3_percent_of_upper: Option<Decimal>,
    pub immunosuppressant_stable_months: Option<u32>,
    pub disease_duration_months: Option<u32>,
    pub glucocorticoid_treated_weeks: Option<u32>,
    /// Glucocorticoid dose records up to baseline, day 0 = baseline, in day order.
    pub glucocorticoid_history: Vec<DoseChange>,
    /// Days from the informed consent to the baseline visit.
    pub consent_days_before_baseline: Option<i32>,
    /// Drugs received before the trial, last doses counted back from baseline; `None`: not reported.
    pub treatment_history: Option<Vec<TreatmentBeforeBaseline>>,
    /// The investigator's attestations; a code not listed was not attested.
    pub attestations: Vec<(AttestationCode, bool)>,
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
        flags: facts.flags.clone(),
        eular_acr_probability_percent: facts.eular_acr_probability_percent,
        fi3_percent_of_upper: facts.fi3_percent_of_upper,
        immunosuppressant_stable_months: facts.immunosuppressant_stable_months.map(Decimal::from),
        disease_duration_months: facts.disease_duration_months.map(Decimal::from),
        glucocorticoid_treated_weeks: facts.glucocorticoid_treated_weeks.map(Decimal::from),
        glucocorticoid_history: facts.glucocorticoid_history.clone(),
        consent_days_before_baseline: facts.consent_days_before_baseline,
        treatment_history: facts.treatment_history.clone(),
        attestations: facts.attestations.clone(),
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
        scale: assessment.scale(),
    }
}

/// A visit a subject attended with what was recorded at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedVisit {
    pub visit: AttendedVisit,
    pub assessments: VisitAssessments,
}

/// Everything about one subject an endpoint can read.
#[derive(Debug, Clone, Copy)]
pub struct SubjectRecord<'a> {
    pub arm: &'a str,
    pub visits: &'a [RecordedVisit],
    /// The actual first dose, days since day 0 (for own-first-dose baselines).
    pub first_dose_day: Option<i32>,
    pub glucocorticoid: &'a [GlucocorticoidRecord],
}

/// The computed value of an endpoint for one subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum EndpointValue {
    Doi(DoiOutcome),
    Tis(TisOutcome),
    Cdasi {
        baseline: CdasiScores,
        followup: CdasiScores,
        change: CdasiChange,
    },
    Biomarker {
        analyte: String,
        change: BiomarkerChange,
    },
    Stat1 {
        kind: &'static str,
        baseline: Decimal,
        followup: Decimal,
        change: Decimal,
    },
    PrednisoneFree {
        tis: TisOutcome,
        result: PrednisoneFreeResult,
    },
    /// Both visits are there but the instrument cannot be compared; says why.
    NotEvaluable(String),
}

impl EndpointValue {
    /// Both visits were there, but the outcome could not be computed (a measure missing, too few
    /// dose records in the glucocorticoid window, a scale changed between visits).
    pub fn is_not_evaluable(&self) -> bool {
        match self {
            EndpointValue::NotEvaluable(_) => true,
            EndpointValue::Doi(outcome) => outcome.status == DoiStatus::NotEvaluable,
            EndpointValue::Tis(outcome) => outcome.score.is_none(),
            EndpointValue::PrednisoneFree { result, .. } => result.is_met().is_none(),
            EndpointValue::Cdasi { .. }
            | EndpointValue::Biomarker { .. }
            | EndpointValue::Stat1 { .. } => false,
        }
    }
}

/// One subject's result on one endpoint, naming the protocol version it used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointResult {
    pub protocol: ProtocolRef,
    pub endpoint: String,
    pub visits: EndpointVisits,
    /// `None` when a visit the endpoint needs is missing.
    pub value: Option<EndpointValue>,
    /// `None` for an endpoint without a responder rule (a continuous outcome).
    pub responder: Option<ResponderStatus>,
    /// How the subject counts in n/N under the endpoint's missing-data rule (`None`: left out).
    pub counts_as_responder: Option<bool>,
}

/// Computes one endpoint for one subject: finds the baseline and follow-up visits by the protocol's
/// rules, scores the outcome with the protocol's conventions and applies the responder rule.
pub fn evaluate_endpoint(
    protocol: &Protocol,
    endpoint_id: &str,
    subject: &SubjectRecord<'_>,
) -> Result<EndpointResult, EndpointVisitsError> {
    let attended: Vec<AttendedVisit> = subject
        .visits
        .iter()
        .map(|recorded| recorded.visit.clone())
        .collect();
    let visits =
        protocol.endpoint_visits(endpoint_id, subject.arm, &attended, subject.first_dose_day)?;
    let Some(endpoint) = protocol.endpoint(endpoint_id) else {
        return Err(EndpointVisitsError::UnknownEndpoint {
            endpoint: endpoint_id.to_string(),
            known: protocol
                .endpoints()
                .iter()
                .map(|endpoint| endpoint.id.clone())
                .collect(),
        });
    };
    let assessments_of = |visit_id: &str| {
        subject
            .visits
            .iter()
            .find(|recorded| recorded.visit.visit_id == visit_id)
            .map(|recorded| &recorded.assessments)
    };
    let pair = match (&visits.baseline, &visits.followup) {
        (
            BaselineVisit::Found {
                visit_id: baseline, ..
            },
            FollowupVisit::Found {
                visit_id: followup, ..
            },
        ) => assessments_of(baseline).zip(assessments_of(followup)),
        _ => None,
    };
    let not_after_baseline = matches!(visits.followup, FollowupVisit::NotAfterBaseline { .. });
    let value = match pair {
        Some((baseline, followup)) => Some(endpoint_value(
            protocol,
            endpoint,
            baseline,
            followup,
            subject.glucocorticoid,
        )),
        None if not_after_baseline => Some(EndpointValue::NotEvaluable(
            "the follow-up visit is not after the baseline visit".to_string(),
        )),
        None => None,
    };
    let responder = endpoint.responder.map(|rule| match &value {
        None => ResponderStatus::Missing,
        Some(value) => responder_status(rule, value, protocol.study().population),
    });
    let counts_as_responder = responder.and_then(|status| endpoint.missing_data.counts_as(status));
    Ok(EndpointResult {
        protocol: protocol.reference(),
        endpoint: endpoint.id.clone(),
        visits,
        value,
        responder,
        counts_as_responder,
    })
}

fn endpoint_value(
    protocol: &Protocol,
    endpoint: &Endpoint,
    baseline: &VisitAssessments,
    followup: &VisitAssessments,
    glucocorticoid: &[GlucocorticoidRecord],
) -> EndpointValue {
    let conventions = protocol.conventions().scoring();
    let population = protocol.study().population;
    match &endpoint.outcome {
        Outcome::Doi => EndpointValue::Doi(doi(
            &core_set(baseline, followup, &conventions),
            &conventions,
        )),
        Outcome::TisScore | Outcome::TisCategory => {
            EndpointValue::Tis(tis(&core_set(baseline, followup, &conventions), population))
        }
        Outcome::CdasiActivityChange | Outcome::CdasiMcid => {
            match (&baseline.cdasi, &followup.cdasi) {
                (Some(before), Some(after)) => {
                    let (baseline, followup) = (cdasi_scores(before), cdasi_scores(after));
                    EndpointValue::Cdasi {
                        baseline,
                        followup,
                        change: cdasi_change(baseline, followup, conventions.cdasi_mcid),
                    }
                }
                _ => EndpointValue::NotEvaluable(missing_at(
                    "CDASI",
                    baseline.cdasi.is_none(),
                    followup.cdasi.is_none(),
                )),
            }
        }
        Outcome::BiomarkerFoldChange { analyte } => {
            let code = LabCode::ALL
                .into_iter()
                .find(|code| code.key().eq_ignore_ascii_case(analyte));
            let value_at = |visit: &VisitAssessments| {
                code.and_then(|code| visit.labs.get(&code))
                    .map(|lab| lab.value())
            };
            match (value_at(baseline), value_at(followup)) {
                (Some(before), Some(after)) => EndpointValue::Biomarker {
                    analyte: analyte.clone(),
                    change: biomarker_change(before, after),
                },
                (before, after) => EndpointValue::NotEvaluable(missing_at(
                    analyte,
                    before.is_none(),
                    after.is_none(),
                )),
            }
        }
        Outcome::Stat1Change => match (baseline.stat1, followup.stat1) {
            (Some(before), Some(after)) if before.kind() == after.kind() => EndpointValue::Stat1 {
                kind: before.kind(),
                baseline: before.value(),
                followup: after.value(),
                change: after.value() - before.value(),
            },
            (Some(before), Some(after)) => EndpointValue::NotEvaluable(format!(
                "STAT1 recorded as {} at baseline and {} at follow-up",
                before.kind(),
                after.kind()
            )),
            (before, after) => {
                EndpointValue::NotEvaluable(missing_at("STAT1", before.is_none(), after.is_none()))
            }
        },
        Outcome::PrednisoneFreeTis { .. } => {
            let tis_outcome = tis(&core_set(baseline, followup, &conventions), population);
            let score = tis_outcome.score.map(|score| score.0);
            match endpoint.outcome.prednisone_free(score, glucocorticoid) {
                Some(result) => EndpointValue::PrednisoneFree {
                    tis: tis_outcome,
                    result,
                },
                None => EndpointValue::NotEvaluable("not a prednisone-free outcome".to_string()),
            }
        }
    }
}

fn missing_at(what: &str, at_baseline: bool, at_followup: bool) -> String {
    let visits = match (at_baseline, at_followup) {
        (true, true) => "baseline and follow-up",
        (true, false) => "baseline",
        _ => "follow-up",
    };
    format!("{what} not recorded at {visits}")
}

fn responder_status(
    rule: ResponderRule,
    value: &EndpointValue,
    population: Population,
) -> ResponderStatus {
    let from = |met: Option<bool>| match met {
        Some(true) => ResponderStatus::Responder,
        Some(false) => ResponderStatus::NonResponder,
        None => ResponderStatus::NotEvaluable,
    };
    match (rule, value) {
        (ResponderRule::DoiMet, EndpointValue::Doi(outcome)) => from(match outcome.status {
            DoiStatus::Met => Some(true),
            DoiStatus::NotMet => Some(false),
            DoiStatus::NotEvaluable => None,
        }),
        (ResponderRule::TisAtLeast(points), EndpointValue::Tis(outcome)) => {
            from(outcome.score.map(|score| score.0 >= points))
        }
        (ResponderRule::TisCategoryAtLeast(category), EndpointValue::Tis(outcome)) => from(
            outcome
                .score
                .map(|score| tis_category(score.0, population) >= category),
        ),
        (ResponderRule::CdasiMcidReached { .. }, EndpointValue::Cdasi { change, .. }) => {
            from(Some(change.mcid_reached))
        }
        (ResponderRule::PrednisoneFreeTisMet, EndpointValue::PrednisoneFree { result, .. }) => {
            from(result.is_met())
        }
        _ => ResponderStatus::NotEvaluable,
    }
}

/// One endpoint over a cohort, as a trial paper tabulates it (docs/clinical.md#9-cohort-statistics): how many subjects,
/// how many missing, not evaluable or seen outside the visit window; responders n/N with the exact
/// 95% CI under the endpoint's missing-data rule; TIS categories with counts; and for continuous
/// outcomes the paired baseline/visit comparison (mean +/- SD, median [IQR], paired t and Wilcoxon).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointCohort {
    pub protocol: ProtocolRef,
    pub endpoint: String,
    pub missing_data: MissingDataRule,
    pub subjects: usize,
    pub missing: usize,
    pub not_evaluable: usize,
    /// Follow-up visits outside their window (protocol deviations; still scored).
    pub deviations: usize,
    pub responders: Option<StatsOutcome<Proportion>>,
    /// Every category with its count, `none` to `major`.
    pub categories: Option<Vec<(TisCategory, usize)>>,
    /// The TIS values of the evaluable subjects.
    pub scores: Option<StatsOutcome<Summary>>,
    /// Baseline vs visit values (CDASI activity, the analyte, STAT1).
    pub paired: Option<StatsOutcome<PairedComparison>>,
}

/// Tabulates one endpoint over the results of a cohort (results of other endpoints are ignored).
/// `None` for an endpoint the protocol does not have.
pub fn endpoint_cohort<'a>(
    protocol: &Protocol,
    endpoint_id: &str,
    results: impl IntoIterator<Item = &'a EndpointResult>,
) -> Option<EndpointCohort> {
    let endpoint = protocol.endpoint(endpoint_id)?;
    let results: Vec<&EndpointResult> = results
        .into_iter()
        .filter(|result| result.endpoint == endpoint.id)
        .collect();
    let count = |wanted: &dyn Fn(&EndpointResult) -> bool| {
        results.iter().filter(|result| wanted(result)).count()
    };
    let missing = count(&|result| result.value.is_none());
    let not_evaluable = count(&|result| {
        result
            .value
            .as_ref()
            .is_some_and(EndpointValue::is_not_evaluable)
    });
    let deviations = count(&|result| {
        matches!(
            result.visits.followup,
            FollowupVisit::Found {
                timing: VisitTiming::OutsideWindow { .. },
                ..
            }
        )
    });
    let responders = endpoint.responder.map(|_| {
        let counted: Vec<bool> = results
            .iter()
            .filter_map(|result| result.counts_as_responder)
            .collect();
        let yes = counted.iter().filter(|responder| **responder).count();
        responder_proportion(yes as u64, counted.len() as u64).into()
    });
    let tis_scores: Vec<Decimal> = results
        .iter()
        .filter_map(|result| match &result.value {
            Some(EndpointValue::Tis(outcome)) => outcome.score.map(|score| score.0),
            _ => None,
        })
        .collect();
    let population = protocol.study().population;
    let categories = matches!(endpoint.outcome, Outcome::TisCategory).then(|| {
        [
            TisCategory::None,
            TisCategory::Minimal,
            TisCategory::Moderate,
            TisCategory::Major,
        ]
        .into_iter()
        .map(|category| {
            let in_category = tis_scores
                .iter()
                .filter(|score| tis_category(**score, population) == category)
                .count();
            (category, in_category)
        })
        .collect()
    });
    let scores = matches!(endpoint.outcome, Outcome::TisScore)
        .then(|| summarize(&to_floats(&tis_scores)).into());
    let pairs: Vec<(Decimal, Decimal)> = results
        .iter()
        .filter_map(|result| match &result.value {
            Some(EndpointValue::Cdasi {
                baseline, followup, ..
            }) => Some((
                Decimal::from(baseline.activity),
                Decimal::from(followup.activity),
            )),
            Some(EndpointValue::Biomarker { change, .. }) => {
                Some((change.baseline.0, change.followup.0))
            }
            Some(EndpointValue::Stat1 {
                baseline, followup, ..
            }) => Some((*baseline, *followup)),
            _ => None,
        })
        .collect();
    let continuous = matches!(
        endpoint.outcome,
        Outcome::CdasiActivityChange | Outcome::BiomarkerFoldChange { .. } | Outcome::Stat1Change
    );
    let paired = continuous.then(|| {
        let before: Vec<Decimal> = pairs.iter().map(|(before, _)| *before).collect();
        let after: Vec<Decimal> = pairs.iter().map(|(_, after)| *after).collect();
        paired_comparison(
            &to_floats(&before),
            &to_floats(&after),
            WilcoxonOptions::default(),
        )
        .into()
    });
    Some(EndpointCohort {
        protocol: protocol.reference(),
        endpoint: endpoint.id.clone(),
        missing_data: endpoint.missing_data,
        subjects: results.len(),
        missing,
        not_evaluable,
        deviations,
        responders,
        categories,
        scores,
        paired,
    })
}

/// Cohort statistics are estimates and use floating point (ARCHITECTURE.md); decisions above do not.
fn to_floats(values: &[Decimal]) -> Vec<f64> {
    values
        .iter()
        .map(|value| value.to_f64().unwrap_or(f64::NAN))
        .collect()
}
