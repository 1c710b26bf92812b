//! Typed outcomes onto the wire: a subject x visit outcome with its DOI, TIS and CDASI summaries and
//! its full scoring result as JSON text, schedules, endpoints, cohort tables and eligibility.

use myolog_projection::outcome::ArmedEndpointTable;
use myolog_projection::report::{
    CdasiChange, CohortOutcomes, CohortVisit, CriterionCounts, CriterionOutcome, EligibilityTable,
    EndpointOutcome, PairedComparison, Proportion, SeenValue, SubjectEligibility, Summary,
    TisCategories, VisitOutcome, VisitSchedule,
};
use myolog_proto::v1 as pb;
use myolog_scoring::CaseOutcome;
use myolog_scoring::doi::DoiStatus;
use myolog_scoring::protocol_eval::EndpointCohort;
use myolog_scoring::tis::TisCategory;

/// One subject x visit outcome as answers and `Watch` carry it.
pub fn visit_outcome(outcome: &VisitOutcome) -> pb::VisitOutcome {
    pb::VisitOutcome {
        study_id: outcome.study_id.to_string(),
        subject_id: outcome.subject_id.to_string(),
        visit_id: outcome.visit_id.to_string(),
        baseline_visit_id: outcome.baseline_visit_id.to_string(),
        clinical_date: outcome
            .clinical_date
            .map(|date| date.to_string())
            .unwrap_or_default(),
        doi: Some(pb::Doi {
            status: match outcome.result.doi.status {
                DoiStatus::Met => pb::DoiStatus::Met,
                DoiStatus::NotMet => pb::DoiStatus::NotMet,
                DoiStatus::NotEvaluable => pb::DoiStatus::NotEvaluable,
            } as i32,
            improved: outcome.doi_improved(),
            worsened: outcome.doi_worsened(),
            algorithm: outcome.result.doi.algorithm.to_string(),
        }),
        tis: Some(pb::Tis {
            evaluable: outcome.tis_evaluable(),
            score: outcome.tis_score(),
            category: tis_category(outcome.tis_category()) as i32,
            missing: outcome.tis_missing(),
            algorithm: outcome.result.tis.algorithm.to_string(),
        }),
        cdasi: outcome.cdasi().map(cdasi_change),
        result_json: result_json(&outcome.result),
        as_of_sequence: outcome.as_of_sequence,
        schedule: outcome.schedule.as_ref().map(schedule),
        endpoints: outcome.endpoints.iter().map(endpoint_outcome).collect(),
    }
}

fn tis_category(category: Option<TisCategory>) -> pb::TisCategory {
    match category {
        None => pb::TisCategory::Unspecified,
        Some(TisCategory::None) => pb::TisCategory::None,
        Some(TisCategory::Minimal) => pb::TisCategory::Minimal,
        Some(TisCategory::Moderate) => pb::TisCategory::Moderate,
        Some(TisCategory::Major) => pb::TisCategory::Major,
    }
}

fn cdasi_change(change: CdasiChange) -> pb::CdasiChange {
    pb::CdasiChange {
        baseline_activity: change.baseline_activity,
        followup_activity: change.followup_activity,
        activity_change: change.activity_change,
        mcid_reached: change.mcid_reached,
    }
}

/// The result in the `myolog score` JSON contract, as `serde_json::to_string` writes it, but
/// serialised into a per-thread buffer that keeps its capacity: growing a fresh buffer from empty
/// for every outcome (a few KiB each) was most of the cost of serialising a replay's outcomes.
pub fn result_json(outcome: &CaseOutcome) -> String {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        match serde_json::to_writer(&mut *buffer, outcome) {
            // serde_json writes valid UTF-8; checking it is cheaper than the lossy conversion.
            Ok(()) => std::str::from_utf8(buffer)
                .map(str::to_owned)
                .unwrap_or_else(|_| String::from_utf8_lossy(buffer).into_owned()),
            Err(e) => format!("{{\"error\":\"{e}\"}}"),
        }
    })
}

pub fn schedule(schedule: &VisitSchedule) -> pb::VisitSchedule {
    pb::VisitSchedule {
        protocol: schedule.protocol.clone(),
        protocol_version: schedule.protocol_version,
        encounter: schedule.encounter.clone(),
        study_day: schedule.study_day,
        target_day: schedule.target_day,
        window_first_day: schedule.window_first_day,
        window_last_day: schedule.window_last_day,
        deviation: schedule.deviation,
        days_outside: schedule.days_outside,
        deviation_text: schedule.deviation_text.clone(),
    }
}

pub fn endpoint_outcome(endpoint: &EndpointOutcome) -> pb::EndpointOutcome {
    pb::EndpointOutcome {
        protocol: endpoint.result.protocol.to_string(),
        protocol_version: endpoint.result.protocol.version,
        endpoint: endpoint.result.endpoint.clone(),
        responder: endpoint.responder().to_string(),
        counts_as_responder: endpoint.result.counts_as_responder,
        deviation: endpoint.deviation,
        result_json: serde_json::to_string(&endpoint.result).unwrap_or_default(),
    }
}

/// One endpoint's pooled table with its per-arm tables.
pub fn endpoint_table(table: &ArmedEndpointTable) -> pb::EndpointTable {
    let mut pooled = cohort_table(&table.pooled);
    pooled.arms = table
        .arms
        .iter()
        .map(|(arm, cohort)| {
            let arm_table = cohort_table(cohort);
            pb::EndpointArmTable {
                arm: arm.clone(),
                subjects: arm_table.subjects,
                missing: arm_table.missing,
                not_evaluable: arm_table.not_evaluable,
                deviations: arm_table.deviations,
                responders: arm_table.responders,
                table_json: arm_table.table_json,
            }
        })
        .collect();
    pooled
}

/// One tabulated endpoint (without its per-arm tables).
fn cohort_table(table: &EndpointCohort) -> pb::EndpointTable {
    pb::EndpointTable {
        protocol: table.protocol.to_string(),
        endpoint: table.endpoint.clone(),
        subjects: count(table.subjects),
        missing: count(table.missing),
        not_evaluable: count(table.not_evaluable),
        deviations: count(table.deviations),
        responders: table.responders.as_ref().map(|outcome| {
            outcome
                .value()
                .map(|p| pb::Proportion {
                    responders: count(p.responders),
                    total: count(p.n),
                    ci_low: p.ci_lower,
                    ci_high: p.ci_upper,
                })
                .unwrap_or_default()
        }),
        table_json: serde_json::to_string(table).unwrap_or_default(),
        arms: Vec::new(),
    }
}

fn count(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

pub fn cohort(cohort: &CohortOutcomes) -> pb::CohortOutcomes {
    pb::CohortOutcomes {
        study_id: cohort.study_id.clone(),
        enrolled: cohort.enrolled,
        visits: cohort.visits.iter().map(cohort_visit).collect(),
        as_of_sequence: cohort.as_of_sequence,
        endpoints: cohort.endpoints.iter().map(endpoint_table).collect(),
        eligibility: cohort.eligibility.as_ref().map(eligibility_table),
    }
}

pub fn cohort_visit(visit: &CohortVisit) -> pb::CohortVisit {
    pb::CohortVisit {
        visit_id: visit.visit_id.clone(),
        subjects: visit.subjects,
        doi_responders: visit.doi_responders.map(proportion),
        tis: visit.tis.map(tis_categories),
        cdasi_activity: visit.cdasi_activity.as_ref().map(paired),
        cdasi_mcid: visit.cdasi_mcid.map(proportion),
        arm: visit.arm.clone(),
        arms: visit.arms.iter().map(cohort_visit).collect(),
    }
}

fn proportion(p: Proportion) -> pb::Proportion {
    pb::Proportion {
        responders: p.responders,
        total: p.total,
        ci_low: p.ci_low,
        ci_high: p.ci_high,
    }
}

fn tis_categories(tis: TisCategories) -> pb::TisCategories {
    pb::TisCategories {
        evaluable: tis.evaluable,
        none: tis.none,
        minimal: tis.minimal,
        moderate: tis.moderate,
        major: tis.major,
        at_least_minimal: tis.at_least_minimal.map(proportion),
    }
}

fn summary(s: Summary) -> pb::Summary {
    pb::Summary {
        n: s.n,
        mean: s.mean,
        sd: s.sd,
        median: s.median,
        q1: s.q1,
        q3: s.q3,
    }
}

fn paired(c: &PairedComparison) -> pb::PairedComparison {
    pb::PairedComparison {
        n: c.n,
        baseline: c.baseline.map(summary),
        visit: c.visit.map(summary),
        change: c.change.map(summary),
        paired_t_p: c.paired_t_p,
        wilcoxon_p: c.wilcoxon_p,
        wilcoxon_method: c.wilcoxon_method.clone(),
    }
}

pub fn subject_eligibility(eligibility: &SubjectEligibility) -> pb::SubjectEligibility {
    pb::SubjectEligibility {
        protocol: eligibility.protocol.clone(),
        protocol_version: eligibility.protocol_version,
        verdict: eligibility.verdict.clone(),
        baseline_visit_id: eligibility.baseline_visit_id.clone(),
        criteria: eligibility.criteria.iter().map(criterion_outcome).collect(),
    }
}

fn criterion_outcome(criterion: &CriterionOutcome) -> pb::CriterionOutcome {
    pb::CriterionOutcome {
        id: criterion.id.clone(),
        category: criterion.category.clone(),
        text: criterion.text.clone(),
        verdict: criterion.verdict.clone(),
        explanation: criterion.explanation.clone(),
        seen: criterion.seen.iter().map(seen_value).collect(),
    }
}

fn seen_value(seen: &SeenValue) -> pb::SeenValue {
    pb::SeenValue {
        rule: seen.rule.clone(),
        value: seen.value.clone(),
        verdict: seen.verdict.clone(),
    }
}

pub fn eligibility_table(table: &EligibilityTable) -> pb::EligibilityTable {
    pb::EligibilityTable {
        protocol: table.protocol.clone(),
        protocol_version: table.protocol_version,
        subjects: table.subjects,
        eligible: table.eligible,
        not_eligible: table.not_eligible,
        not_evaluable: table.not_evaluable,
        criteria: table.criteria.iter().map(criterion_counts).collect(),
    }
}

fn criterion_counts(counts: &CriterionCounts) -> pb::CriterionCounts {
    pb::CriterionCounts {
        id: counts.id.clone(),
        text: counts.text.clone(),
        met: counts.met,
        not_met: counts.not_met,
        not_applicable: counts.not_applicable,
        not_evaluable: counts.not_evaluable,
    }
}
