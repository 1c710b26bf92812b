//! Eligibility served from the projection: each subject's criteria checked against the protocol's
//! baseline visit and the facts reported at enrolment (`GetSubject`), and a per-criterion count table
//! over the enrolled subjects (`GetCohort`). Also which protocol version a read asks for.
//!
//! The decisions are the pure ones of `myolog_scoring::protocol_eval::check_eligibility`; this module
//! only gathers their inputs. The prednisone dose a criterion reads is the glucocorticoid
//! `DoseRecorded` in effect at the baseline visit, because the service records doses as events, not as
//! a visit measure.

use myolog_domain::event::{ClinicalDate, Dose, StudyId};
use std::collections::BTreeMap;

use myolog_domain::protocol::{
    CriterionCategory, DoseChange, EligibilityReport, EligibilityVerdict, Flag, Protocol,
    RuleResult, Verdict, protocol_day, treatments_before,
};
use myolog_domain::visit::VisitAssessments;
use myolog_scoring::protocol_eval::{SubjectFacts, check_eligibility};

use crate::Violation;
use crate::report::{
    CriterionCounts, CriterionOutcome, EligibilityTable, SeenValue, SubjectEligibility,
};
use crate::state::{Study, Subject};

/// The protocol version a read asks for: the version in force when `version` is `None`; `Ok(None)`
/// for a study without a protocol asked for no version. A version the study does not have is a
/// violation of the request's `protocol_version`, listing the versions that exist.
pub fn protocol_version<'a>(
    study_id: &StudyId,
    study: &'a Study,
    version: Option<u32>,
) -> Result<Option<&'a Protocol>, Violation> {
    let Some(history) = &study.protocol else {
        return match version {
            None => Ok(None),
            Some(version) => Err(Violation::new(
                "protocol_version",
                format!(
                    "protocol version {version} was asked for, but study {study_id} was registered \
                     without a protocol; leave protocol_version unset"
                ),
            )),
        };
    };
    let Some(version) = version else {
        return Ok(Some(history.current()));
    };
    history.version(version).map(Some).ok_or_else(|| {
        let versions: Vec<String> = history
            .versions()
            .map(|protocol| protocol.version().to_string())
            .collect();
        Violation::new(
            "protocol_version",
            format!(
                "study {study_id} has no protocol version {version}; its versions are {}",
                versions.join(", ")
            ),
        )
    })
}

/// What one subject's eligibility is checked against: the protocol's baseline visit (empty when not
/// recorded) with the glucocorticoid dose in effect at it, and the enrolment facts.
fn report(protocol: &Protocol, subject: &Subject) -> (Option<String>, EligibilityReport) {
    let baseline_id = &protocol.baseline_encounter().id;
    let baseline = subject
        .visits
        .iter()
        .find(|(id, _)| id.as_str() == *baseline_id);
    let mut assessments = baseline
        .map(|(_, visit)| visit.assessments())
        .unwrap_or_else(VisitAssessments::default);
    // Day 0 is the latest a baseline can be; without a baseline visit the dose at enrolment counts.
    let as_of = baseline
        .and_then(|(_, visit)| visit.last_date)
        .unwrap_or(subject.enrolled_on);
    assessments.prednisone_mg_per_day = glucocorticoid_in_effect(subject, as_of);
    let facts = subject_facts(subject, as_of);
    (
        baseline.map(|(id, _)| id.to_string()),
        check_eligibility(protocol, &assessments, &facts),
    )
}

/// The enrolment facts and the glucocorticoid history as the rules read them, with `baseline` as
/// day 0 of the history, of the consent date and of each prior treatment's last dose.
fn subject_facts(subject: &Subject, baseline: ClinicalDate) -> SubjectFacts {
    let enrolment = &subject.facts;
    let recorded = enrolment.flags();
    let flags = [
        (Flag::TreatmentNaive, recorded.treatment_naive),
        (Flag::GlucocorticoidExposed, recorded.glucocorticoid_exposed),
        (Flag::OnImmunosuppressant, recorded.on_immunosuppressant),
        (Flag::SkinBiopsyProven, recorded.skin_biopsy_proven),
        (
            Flag::BohanPeterDefiniteOrProbable,
            recorded.bohan_peter_definite_or_probable,
        ),
        (
            Flag::Enmc239Dermatomyositis,
            recorded.enmc_239_dermatomyositis,
        ),
        (
            Flag::ActiveExtramuscularDisease,
            recorded.active_extramuscular_disease,
        ),
        (
            Flag::RecentInflammationBiopsyOrMri,
            recorded.recent_inflammation_biopsy_or_mri,
        ),
        (
            Flag::SevereSwallowingTrouble,
            recorded.severe_swallowing_trouble,
        ),
        (
            Flag::NegativeCancerScreening,
            recorded.negative_cancer_screening,
        ),
    ]
    .into_iter()
    .filter_map(|(flag, value)| value.map(|value| (flag, value)))
    .collect();
    SubjectFacts {
        age_years: enrolment.age_years(),
        muscle_active: enrolment.muscle_active(),
        prednisone_stable_weeks: enrolment.prednisone_stable_weeks(),
        flags,
        eular_acr_probability_percent: enrolment.eular_acr_probability_percent(),
        fi3_percent_of_upper: enrolment.fi3_percent_of_upper(),
        immunosuppressant_stable_months: enrolment.immunosuppressant_stable_months(),
        disease_duration_months: enrolment.disease_duration_months(),
        glucocorticoid_treated_weeks: enrolment.glucocorticoid_treated_weeks(),
        glucocorticoid_history: glucocorticoid_history(subject, baseline),
        consent_days_before_baseline: enrolment
            .informed_consent_date()
            .map(|consent| protocol_day(consent, baseline)),
        treatment_history: enrolment
            .treatment_history()
            .map(|history| treatments_before(history, baseline)),
        attestations: enrolment.attestations().iter().cloned().collect(),
    }
}

/// The glucocorticoid records up to `baseline` as dose changes on days relative to it, in day order;
/// of two on one day only the one entered later, as in [`glucocorticoid_in_effect`].
fn glucocorticoid_history(subject: &Subject, baseline: ClinicalDate) -> Vec<DoseChange> {
    let mut by_day: BTreeMap<i32, DoseChange> = BTreeMap::new();
    for (recorded_on, dose) in &subject.doses {
        if let Dose::Glucocorticoid { mg_per_day, .. } = dose
            && *recorded_on <= baseline
        {
            let day = protocol_day(baseline, *recorded_on);
            by_day.insert(
                day,
                DoseChange {
                    day,
                    mg_per_day: mg_per_day.mg_per_day(),
                },
            );
        }
    }
    by_day.into_values().collect()
}

/// The glucocorticoid dose in effect on `date`: the latest record on or before it (of two on one
/// day, the one entered later, as the projection keeps records in sequence order).
fn glucocorticoid_in_effect(
    subject: &Subject,
    date: ClinicalDate,
) -> Option<myolog_domain::glucocorticoid::PrednisoneEquivalentDose> {
    let mut in_effect = None;
    let mut effective_from = None;
    for (recorded_on, dose) in &subject.doses {
        if let Dose::Glucocorticoid { mg_per_day, .. } = dose
            && *recorded_on <= date
            && effective_from.is_none_or(|from| *recorded_on >= from)
        {
            in_effect = Some(*mg_per_day);
            effective_from = Some(*recorded_on);
        }
    }
    in_effect
}

fn verdict_key(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Met => "met",
        Verdict::NotMet => "not_met",
        Verdict::NotApplicable => "not_applicable",
        Verdict::NotEvaluable => "not_evaluable",
    }
}

fn overall_key(verdict: EligibilityVerdict) -> &'static str {
    match verdict {
        EligibilityVerdict::Eligible => "eligible",
        EligibilityVerdict::NotEligible => "not_eligible",
        EligibilityVerdict::NotEvaluable => "not_evaluable",
    }
}

/// Every leaf rule of a result with what it saw, in rule order.
fn leaves(result: &RuleResult, out: &mut Vec<SeenValue>) {
    if result.parts.is_empty() {
        out.push(SeenValue {
            rule: result.rule.clone(),
            value: result.seen.to_string(),
            verdict: verdict_key(result.verdict).to_string(),
        });
    }
    for part in &result.parts {
        leaves(part, out);
    }
}

/// One subject's eligibility under `protocol`, criterion by criterion.
pub fn subject_eligibility(protocol: &Protocol, subject: &Subject) -> SubjectEligibility {
    let (baseline, report) = report(protocol, subject);
    SubjectEligibility {
        protocol: protocol.reference().to_string(),
        protocol_version: protocol.version(),
        verdict: overall_key(report.verdict).to_string(),
        baseline_visit_id: baseline.unwrap_or_default(),
        criteria: report
            .criteria
            .iter()
            .map(|criterion| {
                let mut seen = Vec::new();
                leaves(&criterion.result, &mut seen);
                CriterionOutcome {
                    id: criterion.id.clone(),
                    category: match criterion.category {
                        CriterionCategory::Inclusion => "inclusion",
                        CriterionCategory::Exclusion => "exclusion",
                    }
                    .to_string(),
                    text: criterion.text.clone(),
                    verdict: verdict_key(criterion.verdict).to_string(),
                    explanation: criterion.result.to_string(),
                    seen,
                }
            })
            .collect(),
    }
}

/// Eligibility over every enrolled subject of `study` under `protocol`: n/N eligible and, per
/// criterion, how many subjects have each verdict.
pub fn cohort_eligibility(protocol: &Protocol, study: &Study) -> EligibilityTable {
    let reports: Vec<EligibilityReport> = study
        .subjects
        .values()
        .map(|subject| report(protocol, subject).1)
        .collect();
    let count = |verdict: EligibilityVerdict| {
        let n = reports
            .iter()
            .filter(|report| report.verdict == verdict)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    EligibilityTable {
        protocol: protocol.reference().to_string(),
        protocol_version: protocol.version(),
        subjects: u32::try_from(reports.len()).unwrap_or(u32::MAX),
        eligible: count(EligibilityVerdict::Eligible),
        not_eligible: count(EligibilityVerdict::NotEligible),
        not_evaluable: count(EligibilityVerdict::NotEvaluable),
        criteria: protocol
            .eligibility()
            .iter()
            .enumerate()
            .map(|(index, criterion)| {
                let count = |verdict: Verdict| {
                    let n = reports
                        .iter()
                        .filter(|report| {
                            report
                                .criteria
                                .get(index)
                                .is_some_and(|result| result.verdict == verdict)
                        })
                        .count();
                    u32::try_from(n).unwrap_or(u32::MAX)
                };
                CriterionCounts {
                    id: criterion.id.clone(),
                    text: criterion.text.clone(),
                    met: count(Verdict::Met),
                    not_met: count(Verdict::NotMet),
                    not_applicable: count(Verdict::NotApplicable),
                    not_evaluable: count(Verdict::NotEvaluable),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {

    use myolog_domain::Decimal;
    use myolog_domain::event::EnrolmentFacts;
    use myolog_domain::glucocorticoid::PrednisoneEquivalentDose;

    use super::*;

    fn on(day: u8) -> ClinicalDate {
        ClinicalDate::new(2024, 3, day).expect("a date")
    }

    fn prednisone(day: u8, mg: u32) -> (ClinicalDate, Dose) {
        (
            on(day),
            Dose::Glucocorticoid {
                drug: "prednisone".into(),
                mg_per_day: PrednisoneEquivalentDose::try_from(Decimal::from(mg)).expect("a dose"),
            },
        )
    }

    /// The history the glucocorticoid rules read: records up to the baseline day, on days counted
    /// from it, in day order whatever order they were entered in; of two on one day the later entry;
    /// study drug and records after baseline left out. The consent date becomes days before baseline.
    #[test]
    fn subject_facts_carry_the_glucocorticoid_history_and_the_consent() {
        let facts = EnrolmentFacts::from_input(myolog_domain::event::EnrolmentFactsInput {
            informed_consent_date: Some(on(3)),
            ..Default::default()
        })
        .expect("facts");
        let subject = Subject {
            arm: String::new(),
            site: None,
            enrolled_on: on(20),
            population: None,
            facts,
            withdrawn: false,
            visits: BTreeMap::new(),
            doses: vec![
                prednisone(15, 10),
                prednisone(2, 30),
                prednisone(15, 12),
                prednisone(25, 5),
                (
                    on(10),
                    Dose::StudyDrug {
                        drug: "tofacitinib".into(),
                        mg_per_day: PrednisoneEquivalentDose::try_from(Decimal::from(11))
                            .expect("a dose"),
                    },
                ),
            ],
        };
        let facts = subject_facts(&subject, on(20));
        let history: Vec<(i32, Decimal)> = facts
            .glucocorticoid_history
            .iter()
            .map(|change| (change.day, change.mg_per_day))
            .collect();
        assert_eq!(history, [(-18, Decimal::from(30)), (-5, Decimal::from(12))]);
        assert_eq!(facts.consent_days_before_baseline, Some(17));
        assert!(facts.flags.is_empty());
    }

    /// The dose in effect is the latest dated record on or before the day, whatever order the
    /// records were entered in; of two on one day, the one entered later; study drug never counts.
    #[test]
    fn the_glucocorticoid_in_effect_is_the_latest_record_on_or_before_the_day() {
        let study_drug = (
            on(4),
            Dose::StudyDrug {
                drug: "tofacitinib".into(),
                mg_per_day: PrednisoneEquivalentDose::try_from(Decimal::from(11)).expect("a dose"),
            },
        );
        let subject = Subject {
            arm: String::new(),
            site: None,
            enrolled_on: on(1),
            population: None,
            facts: EnrolmentFacts::default(),
            withdrawn: false,
            visits: BTreeMap::new(),
            // Entered in this order: the day-10 record before the day-2 one.
            doses: vec![
                prednisone(10, 0),
                prednisone(2, 20),
                prednisone(5, 15),
                prednisone(5, 12),
                study_drug,
            ],
        };
        let cases = [
            (1, None),
            (2, Some(20)),
            (4, Some(20)),
            (5, Some(12)),
            (9, Some(12)),
            (10, Some(0)),
            (20, Some(0)),
        ];
        for (day, expected) in cases {
            let got = glucocorticoid_in_effect(&subject, on(day)).map(|dose| dose.mg_per_day());
            assert_eq!(got, expected.map(Decimal::from), "day {day}");
        }
    }
}
