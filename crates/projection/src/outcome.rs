//! Outcomes from the projection: per subject x visit with the scoring crate against the subject's
//! baseline visit, and per cohort x visit with the statistics module (DOI responders with
//! Clopper-Pearson CI, TIS categories, CDASI activity baseline vs visit with paired t and Wilcoxon),
//! all under the protocol version in force (or one a read asks for), as the typed values of
//! [`crate::report`].

use std::collections::BTreeMap;

use myolog_domain::event::{StudyId, SubjectId, VisitId};
use myolog_domain::visit::{Population, VisitAssessments};
use myolog_scoring::stats::{self, Outcome, WilcoxonOptions};

use myolog_domain::Decimal;
use myolog_domain::event::{ClinicalDate, Dose};
use myolog_domain::protocol::{
    AttendedVisit, FollowupVisit, GlucocorticoidRecord, Protocol, VisitTiming, protocol_day,
};
use myolog_scoring::protocol_eval::{
    EndpointResult, RecordedVisit, SubjectRecord, endpoint_cohort, evaluate_endpoint,
};

pub use crate::report::ArmedEndpointTable;
use crate::report::{
    CohortOutcomes, CohortVisit, EndpointOutcome, PairedComparison, Proportion, Summary,
    TisCategories, VisitOutcome, VisitSchedule,
};
use crate::score::{baseline_case, score, score_followup};
use crate::state::{Study, Subject, Visit, baseline_of, followups, protocol_arm};
use myolog_scoring::CaseOutcome;
use myolog_scoring::doi::DoiStatus;
use myolog_scoring::tis::{TisCategory, TisStatus};

/// The population whose thresholds apply to a subject.
pub fn population_of(study: &Study, subject: &Subject) -> Population {
    subject.population.unwrap_or(study.population)
}

/// The protocol version in force in the projection (the latest it has applied): the one whose
/// conventions score every outcome and whose schedule and endpoints a read reports by default.
pub fn protocol_in_force(study: &Study) -> Option<&Protocol> {
    study.protocol.as_ref().map(|history| history.current())
}

/// The outcomes of every follow-up visit of one subject, in visit order, under the protocol
/// version in force.
pub fn subject_outcomes(
    study_id: &StudyId,
    study: &Study,
    subject_id: &SubjectId,
    subject: &Subject,
    as_of: u64,
) -> Vec<VisitOutcome> {
    subject_outcomes_under(
        protocol_in_force(study),
        study_id,
        study,
        subject_id,
        subject,
        as_of,
    )
}

/// [`subject_outcomes`] under a given protocol version (GetSubject asked for an earlier one): its
/// conventions score the visits and its schedule places them.
pub fn subject_outcomes_under(
    protocol: Option<&Protocol>,
    study_id: &StudyId,
    study: &Study,
    subject_id: &SubjectId,
    subject: &Subject,
    as_of: u64,
) -> Vec<VisitOutcome> {
    let Some((baseline_id, baseline)) = baseline_of(study, subject) else {
        return Vec::new();
    };
    let mut case = baseline_case(
        population_of(study, subject),
        protocol,
        baseline.assessments(),
    );
    followups(study, subject)
        .into_iter()
        .map(|(visit_id, visit)| {
            let scored = score_followup(&mut case, visit.assessments());
            let mut outcome = visit_outcome(
                study_id,
                subject_id,
                visit_id,
                baseline_id,
                visit.last_date,
                scored,
                as_of,
            );
            outcome.schedule =
                protocol.and_then(|protocol| schedule_under(protocol, subject, visit_id, visit));
            outcome
        })
        .collect()
}

/// The outcome of one follow-up visit of one subject (`None` for the baseline visit or an unknown
/// visit), under the protocol version in force.
pub fn one_visit_outcome(
    study_id: &StudyId,
    study: &Study,
    subject_id: &SubjectId,
    subject: &Subject,
    visit_id: &VisitId,
    as_of: u64,
) -> Option<VisitOutcome> {
    let (baseline_id, baseline) = baseline_of(study, subject)?;
    if baseline_id == visit_id {
        return None;
    }
    let visit = subject.visits.get(visit_id)?;
    let protocol = protocol_in_force(study);
    let scored = score(
        population_of(study, subject),
        protocol,
        &baseline.assessments(),
        &visit.assessments(),
    );
    let mut outcome = visit_outcome(
        study_id,
        subject_id,
        visit_id,
        baseline_id,
        visit.last_date,
        scored,
        as_of,
    );
    outcome.schedule = schedule_of(study, subject, visit_id, visit);
    Some(outcome)
}

/// The visit against the protocol in force: its study day (from enrolment, day 0), window and
/// whether it is a deviation. `None` without a protocol, or for a visit the protocol does not know
/// (only possible for data stored before the protocol was amended).
pub fn schedule_of(
    study: &Study,
    subject: &Subject,
    visit_id: &VisitId,
    visit: &Visit,
) -> Option<VisitSchedule> {
    schedule_under(study.protocol.as_ref()?.current(), subject, visit_id, visit)
}

/// [`schedule_of`] under a given protocol version (GetSubject asked for an earlier one); `None` for
/// a visit that version does not know (one an amendment added).
pub fn schedule_under(
    protocol: &Protocol,
    subject: &Subject,
    visit_id: &VisitId,
    visit: &Visit,
) -> Option<VisitSchedule> {
    let encounter = protocol.encounter(visit_id.as_str())?;
    let day = protocol_day(subject.enrolled_on, visit.first_date?);
    // A multi-arm subject whose arm is not yet known is placed by the encounter's own window.
    let timing = match protocol_arm(protocol, &subject.arm) {
        Some(arm) => protocol.classify_visit(arm, visit_id.as_str(), day).ok()?,
        None if encounter.window.contains(day) => VisitTiming::InWindow {
            encounter: encounter.id.clone(),
            target_day: encounter.target_day,
            days_from_target: day - encounter.target_day,
        },
        None => VisitTiming::OutsideWindow {
            encounter: encounter.id.clone(),
            window: encounter.window,
            days_outside: if day < encounter.window.first_day {
                day - encounter.window.first_day
            } else {
                day - encounter.window.last_day
            },
        },
    };
    let window = encounter.window;
    let (days_outside, deviation_text) = match timing {
        VisitTiming::InWindow { .. } => (0, String::new()),
        VisitTiming::OutsideWindow { days_outside, .. } => (
            days_outside,
            format!(
                "protocol deviation: {} on day {day} is {} day{} {} its window (days {} to {})",
                encounter.id,
                days_outside.unsigned_abs(),
                if days_outside.unsigned_abs() == 1 {
                    ""
                } else {
                    "s"
                },
                if days_outside < 0 { "before" } else { "after" },
                window.first_day,
                window.last_day
            ),
        ),
    };
    Some(VisitSchedule {
        protocol: protocol.reference().to_string(),
        protocol_version: protocol.version(),
        encounter: encounter.id.clone(),
        study_day: day,
        target_day: encounter.target_day,
        window_first_day: window.first_day,
        window_last_day: window.last_day,
        deviation: days_outside != 0,
        days_outside,
        deviation_text,
    })
}

fn visit_outcome(
    study_id: &StudyId,
    subject_id: &SubjectId,
    visit_id: &VisitId,
    baseline_id: &VisitId,
    date: Option<ClinicalDate>,
    result: CaseOutcome,
    as_of: u64,
) -> VisitOutcome {
    VisitOutcome {
        study_id: study_id.clone(),
        subject_id: subject_id.clone(),
        visit_id: visit_id.clone(),
        baseline_visit_id: baseline_id.clone(),
        clinical_date: date,
        result,
        as_of_sequence: as_of,
        schedule: None,
        endpoints: Vec::new(),
    }
}

/// One subject's record as the protocol's endpoints read it: each visit on its protocol day (from
/// enrolment, day 0), the first study-drug dose above 0 (a delayed start's own baseline) and the
/// glucocorticoid records (prednisone-free endpoints), all from the projection.
fn endpoint_results(protocol: &Protocol, subject: &Subject) -> Vec<EndpointResult> {
    let day_of = |date: ClinicalDate| protocol_day(subject.enrolled_on, date);
    let visits: Vec<RecordedVisit> = subject
        .visits
        .iter()
        .filter_map(|(id, visit)| {
            Some(RecordedVisit {
                visit: AttendedVisit {
                    visit_id: id.to_string(),
                    day: day_of(visit.first_date?),
                },
                assessments: visit.assessments(),
            })
        })
        .collect();
    let first_dose_day = subject
        .doses
        .iter()
        .filter(|(_, dose)| {
            matches!(dose, Dose::StudyDrug { .. }) && dose.mg_per_day() > Decimal::ZERO
        })
        .map(|(date, _)| day_of(*date))
        .min();
    let mut glucocorticoid: Vec<GlucocorticoidRecord> = subject
        .doses
        .iter()
        .filter_map(|(date, dose)| match dose {
            Dose::Glucocorticoid { mg_per_day, .. } => Some(GlucocorticoidRecord {
                day: day_of(*date),
                mg_per_day: mg_per_day.mg_per_day(),
            }),
            Dose::StudyDrug { .. } => None,
        })
        .collect();
    // Stable: of two records on one day, the later entered stays later (it is the dose in effect).
    glucocorticoid.sort_by_key(|record| record.day);
    let record = SubjectRecord {
        arm: protocol_arm(protocol, &subject.arm).unwrap_or(subject.arm.as_str()),
        visits: &visits,
        first_dose_day,
        glucocorticoid: &glucocorticoid,
    };
    protocol
        .endpoints()
        .iter()
        // An endpoint that cannot place this subject (arm not yet known) has no result yet.
        .filter_map(|endpoint| evaluate_endpoint(protocol, &endpoint.id, &record).ok())
        .collect()
}

/// The protocol's endpoints for one subject (GetSubject), under the protocol version in force.
pub fn subject_endpoints(study: &Study, subject: &Subject) -> Vec<EndpointOutcome> {
    let Some(history) = &study.protocol else {
        return Vec::new();
    };
    subject_endpoints_under(history.current(), subject)
}

/// The protocol's endpoints for one subject under a given protocol version (GetSubject asked for
/// an earlier one).
pub fn subject_endpoints_under(protocol: &Protocol, subject: &Subject) -> Vec<EndpointOutcome> {
    endpoint_results(protocol, subject)
        .into_iter()
        .map(|result| EndpointOutcome {
            deviation: matches!(
                &result.visits.followup,
                FollowupVisit::Found { timing, .. } if timing.is_deviation()
            ),
            result,
        })
        .collect()
}

/// One table per protocol endpoint over every enrolled subject (GetCohort), with its per-arm tables.
pub fn cohort_endpoints(study: &Study) -> Vec<ArmedEndpointTable> {
    endpoint_tables(study)
}

/// One table per protocol endpoint over every enrolled subject, each also per arm of the protocol
/// (a subject whose arm is not known yet counts in the pooled table only), as the scoring crate
/// tabulates them: GetCohort's tables and the audit outputs' (the report shows categories and
/// summaries the wire table only carries as JSON).
pub fn endpoint_tables_under(protocol: &Protocol, study: &Study) -> Vec<ArmedEndpointTable> {
    let by_subject: Vec<(Option<&str>, Vec<EndpointResult>)> = study
        .subjects
        .values()
        .map(|subject| {
            (
                protocol_arm(protocol, &subject.arm),
                endpoint_results(protocol, subject),
            )
        })
        .collect();
    protocol
        .endpoints()
        .iter()
        .filter_map(|endpoint| {
            let pooled = by_subject.iter().flat_map(|(_, results)| results);
            let pooled = endpoint_cohort(protocol, &endpoint.id, pooled)?;
            let arms = protocol
                .arms()
                .iter()
                .filter_map(|arm| {
                    let on_arm = by_subject
                        .iter()
                        .filter(|(subject_arm, _)| *subject_arm == Some(arm.code.as_str()))
                        .flat_map(|(_, results)| results);
                    Some((
                        arm.code.clone(),
                        endpoint_cohort(protocol, &endpoint.id, on_arm)?,
                    ))
                })
                .collect();
            Some(ArmedEndpointTable { pooled, arms })
        })
        .collect()
}

/// Scores one subject at one visit directly (what the service reports for a study without a
/// protocol), for tests and tools.
pub fn score_visit(
    population: Population,
    baseline: &VisitAssessments,
    followup: &VisitAssessments,
) -> CaseOutcome {
    score(population, None, baseline, followup)
}

fn proportion(responders: u64, total: u64) -> Proportion {
    let (ci_low, ci_high) = stats::responder_proportion(responders, total)
        .map(|p| (p.ci_lower, p.ci_upper))
        .unwrap_or((0.0, 0.0));
    Proportion {
        responders: u32::try_from(responders).unwrap_or(u32::MAX),
        total: u32::try_from(total).unwrap_or(u32::MAX),
        ci_low,
        ci_high,
    }
}

fn summary(outcome: &Outcome<stats::Summary>) -> Summary {
    match outcome.value() {
        Some(s) => Summary {
            n: u32::try_from(s.n).unwrap_or(u32::MAX),
            mean: s.mean,
            sd: s.sd.unwrap_or(0.0),
            median: s.median,
            q1: s.q1,
            q3: s.q3,
        },
        None => Summary::default(),
    }
}

fn paired(before: &[f64], after: &[f64]) -> PairedComparison {
    let n = u32::try_from(before.len()).unwrap_or(u32::MAX);
    match stats::paired_comparison(before, after, WilcoxonOptions::default()) {
        Ok(c) => PairedComparison {
            n,
            baseline: Some(summary(&c.baseline)),
            visit: Some(summary(&c.followup)),
            change: Some(summary(&c.change)),
            paired_t_p: c.t_test.value().map(|t| t.p_value),
            wilcoxon_p: c.wilcoxon.value().map(|w| w.p_value),
            wilcoxon_method: c
                .wilcoxon
                .value()
                .map(|w| w.method.to_string())
                .unwrap_or_default(),
        },
        Err(_) => PairedComparison {
            n,
            ..Default::default()
        },
    }
}

/// Cohort statistics of a study per follow-up visit (or of one visit), under the protocol version
/// in force.
pub fn cohort(
    study_id: &StudyId,
    study: &Study,
    only_visit: Option<&str>,
    as_of: u64,
) -> CohortOutcomes {
    cohort_under(protocol_in_force(study), study_id, study, only_visit, as_of)
}

/// [`cohort`] under a given protocol version: its conventions score every visit, its arms order
/// the per-arm tables, and its endpoints and eligibility are tabulated.
pub fn cohort_under(
    protocol: Option<&Protocol>,
    study_id: &StudyId,
    study: &Study,
    only_visit: Option<&str>,
    as_of: u64,
) -> CohortOutcomes {
    let mut per_visit: BTreeMap<VisitId, VisitResults<'_>> = BTreeMap::new();
    for subject in study.subjects.values() {
        let Some((_, baseline)) = baseline_of(study, subject) else {
            continue;
        };
        let arm = study.arm_of(subject);
        let baseline_assessments = baseline.assessments();
        let population = population_of(study, subject);
        for (visit_id, visit) in followups(study, subject) {
            if only_visit.is_some_and(|only| only != visit_id.as_str()) {
                continue;
            }
            let entry = per_visit
                .entry(visit_id.clone())
                .or_insert((visit.first_date, Vec::new()));
            entry.0 = match (entry.0, visit.first_date) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            entry.1.push((
                arm,
                score(
                    population,
                    protocol,
                    &baseline_assessments,
                    &visit.assessments(),
                ),
            ));
        }
    }
    let mut visits: Vec<_> = per_visit
        .into_iter()
        .map(|(id, (date, scored))| (id, date, scored))
        .collect();
    visits.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    // Arms in protocol order; without a protocol, the labels as enrolled, in label order.
    let arms: Vec<&str> = match protocol {
        Some(protocol) => protocol
            .arms()
            .iter()
            .map(|arm| arm.code.as_str())
            .collect(),
        None => study
            .subjects
            .values()
            .map(|subject| subject.arm.as_str())
            .filter(|arm| !arm.is_empty())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    CohortOutcomes {
        study_id: study_id.to_string(),
        enrolled: u32::try_from(study.subjects.len()).unwrap_or(u32::MAX),
        visits: visits
            .iter()
            .map(|(id, _, scored)| {
                let mut table = cohort_visit(id, scored.iter().map(|(_, s)| s));
                table.arms = arms
                    .iter()
                    .filter(|arm| scored.iter().any(|(on, _)| on == &Some(**arm)))
                    .map(|arm| {
                        let on_arm = scored
                            .iter()
                            .filter(|(on, _)| on == &Some(*arm))
                            .map(|(_, s)| s);
                        CohortVisit {
                            arm: (*arm).to_string(),
                            ..cohort_visit(id, on_arm)
                        }
                    })
                    .collect();
                table
            })
            .collect(),
        endpoints: protocol
            .map(|protocol| endpoint_tables_under(protocol, study))
            .unwrap_or_default(),
        eligibility: protocol
            .map(|protocol| crate::eligibility::cohort_eligibility(protocol, study)),
        as_of_sequence: as_of,
    }
}

/// One visit's earliest date and each subject's arm (`None`: not known) and scored result.
type VisitResults<'a> = (
    Option<myolog_domain::event::ClinicalDate>,
    Vec<(Option<&'a str>, CaseOutcome)>,
);

/// The statistics of one visit over the given subjects' results (without per-arm tables).
fn cohort_visit<'a>(
    visit_id: &VisitId,
    scored: impl IntoIterator<Item = &'a CaseOutcome>,
) -> CohortVisit {
    let scored: Vec<&CaseOutcome> = scored.into_iter().collect();
    let doi_met = scored
        .iter()
        .filter(|s| s.doi.status == DoiStatus::Met)
        .count() as u64;
    let doi_evaluable = scored
        .iter()
        .filter(|s| s.doi.status == DoiStatus::Met || s.doi.status == DoiStatus::NotMet)
        .count() as u64;
    let mut tis = TisCategories::default();
    for s in scored
        .iter()
        .filter(|s| s.tis.status == TisStatus::Evaluable)
    {
        tis.evaluable += 1;
        match s.tis.category {
            Some(TisCategory::None) | None => tis.none += 1,
            Some(TisCategory::Minimal) => tis.minimal += 1,
            Some(TisCategory::Moderate) => tis.moderate += 1,
            Some(TisCategory::Major) => tis.major += 1,
        }
    }
    tis.at_least_minimal = Some(proportion(
        u64::from(tis.minimal + tis.moderate + tis.major),
        u64::from(tis.evaluable),
    ));
    let pairs: Vec<(f64, f64, bool)> = scored
        .iter()
        .filter_map(|s| {
            let c = s.cdasi.as_ref()?;
            Some((
                f64::from(c.baseline?.activity),
                f64::from(c.followup?.activity),
                c.mcid_reached.unwrap_or(false),
            ))
        })
        .collect();
    let before: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let after: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let mcid = pairs.iter().filter(|p| p.2).count() as u64;
    CohortVisit {
        visit_id: visit_id.to_string(),
        subjects: u32::try_from(scored.len()).unwrap_or(u32::MAX),
        doi_responders: Some(proportion(doi_met, doi_evaluable)),
        tis: Some(tis),
        cdasi_activity: Some(paired(&before, &after)),
        cdasi_mcid: Some(proportion(mcid, pairs.len() as u64)),
        arm: String::new(),
        arms: Vec::new(),
    }
}

/// The protocol's endpoint results for one subject as the scoring crate computes them (the audit
/// outputs read the values and visits, not only the wire summary), under the protocol version in
/// force; empty for a study without a protocol.
pub fn subject_endpoint_results(study: &Study, subject: &Subject) -> Vec<EndpointResult> {
    study
        .protocol
        .as_ref()
        .map(|history| endpoint_results(history.current(), subject))
        .unwrap_or_default()
}

/// [`endpoint_tables_under`] the protocol version in force; empty for a study without a protocol.
pub fn endpoint_tables(study: &Study) -> Vec<ArmedEndpointTable> {
    study
        .protocol
        .as_ref()
        .map(|history| endpoint_tables_under(history.current(), study))
        .unwrap_or_default()
}
