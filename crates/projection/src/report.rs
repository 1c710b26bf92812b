//! The outcomes a read reports, as typed values: one subject x visit with its full scoring result,
//! its place in the protocol's schedule and its endpoints; a cohort's per-visit statistics; a
//! subject's or a cohort's eligibility. Field for field what the service answers (the `wire` crate
//! maps each onto its protobuf message) and what the audit outputs write, so both read one value.

use myolog_domain::event::{ClinicalDate, StudyId, SubjectId, VisitId};
use myolog_domain::protocol::ResponderStatus;
use myolog_scoring::CaseOutcome;
use myolog_scoring::doi::DoiStatus;
use myolog_scoring::protocol_eval::{EndpointCohort, EndpointResult};
use myolog_scoring::tis::{TisCategory, TisStatus};

/// One follow-up visit of one subject scored against the subject's baseline visit.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitOutcome {
    pub study_id: StudyId,
    pub subject_id: SubjectId,
    pub visit_id: VisitId,
    pub baseline_visit_id: VisitId,
    /// The latest assessment date recorded for the visit.
    pub clinical_date: Option<ClinicalDate>,
    /// The complete scoring result (the `myolog score` contract), naming the protocol version whose
    /// conventions scored it.
    pub result: CaseOutcome,
    /// Last log sequence reflected.
    pub as_of_sequence: u64,
    /// The visit against the protocol's schedule; `None` without a protocol.
    pub schedule: Option<VisitSchedule>,
    /// The subject's endpoints as of this outcome (set in ingest answers and watch updates).
    pub endpoints: Vec<EndpointOutcome>,
}

impl VisitOutcome {
    /// `met`, `not_met` or `not_evaluable`.
    pub fn doi_status(&self) -> &'static str {
        match self.result.doi.status {
            DoiStatus::Met => "met",
            DoiStatus::NotMet => "not_met",
            DoiStatus::NotEvaluable => "not_evaluable",
        }
    }

    /// The DOI's improved and worsened measures, by key.
    pub fn doi_improved(&self) -> Vec<String> {
        self.result
            .doi
            .improved
            .iter()
            .map(|m| m.key().to_string())
            .collect()
    }

    pub fn doi_worsened(&self) -> Vec<String> {
        self.result
            .doi
            .worsened
            .iter()
            .map(|m| m.key().to_string())
            .collect()
    }

    pub fn tis_evaluable(&self) -> bool {
        self.result.tis.status == TisStatus::Evaluable
    }

    /// The TIS as exact decimal text without trailing zeros; empty when not evaluable.
    pub fn tis_score(&self) -> String {
        self.result
            .tis
            .score
            .map(|s| s.0.normalize().to_string())
            .unwrap_or_default()
    }

    /// `none`, `minimal`, `moderate`, `major`; `None` when not evaluable.
    pub fn tis_category(&self) -> Option<TisCategory> {
        self.result.tis.category
    }

    pub fn tis_missing(&self) -> Vec<String> {
        self.result
            .tis
            .missing
            .iter()
            .map(|m| m.key().to_string())
            .collect()
    }

    /// CDASI activity at both visits and its change; `None` when CDASI was recorded at neither.
    pub fn cdasi(&self) -> Option<CdasiChange> {
        let c = self.result.cdasi.as_ref()?;
        if c.baseline.is_none() && c.followup.is_none() {
            return None;
        }
        Some(CdasiChange {
            baseline_activity: c.baseline.map(|s| u32::from(s.activity)),
            followup_activity: c.followup.map(|s| u32::from(s.activity)),
            activity_change: c.activity_change,
            mcid_reached: c.mcid_reached.unwrap_or(false),
        })
    }

    /// Every algorithm id the result names (DOI, TIS and each measure's own), sorted and unique.
    pub fn algorithms(&self) -> Vec<&'static str> {
        self.result.algorithms()
    }
}

/// The key of a TIS category, as every output spells it.
pub fn tis_category_key(category: TisCategory) -> &'static str {
    match category {
        TisCategory::None => "none",
        TisCategory::Minimal => "minimal",
        TisCategory::Moderate => "moderate",
        TisCategory::Major => "major",
    }
}

/// CDASI activity baseline vs visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdasiChange {
    pub baseline_activity: Option<u32>,
    pub followup_activity: Option<u32>,
    pub activity_change: Option<i32>,
    pub mcid_reached: bool,
}

/// Where a visit fell in the protocol's schedule; outside its window it is a protocol deviation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitSchedule {
    /// The protocol version, e.g. `STIR v1`.
    pub protocol: String,
    pub protocol_version: u32,
    pub encounter: String,
    pub study_day: i32,
    pub target_day: i32,
    pub window_first_day: i32,
    pub window_last_day: i32,
    pub deviation: bool,
    /// Days before (negative) or after (positive) the window; 0 inside it.
    pub days_outside: i32,
    pub deviation_text: String,
}

/// One protocol endpoint of one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointOutcome {
    pub result: EndpointResult,
    /// Whether the endpoint's follow-up visit was outside its window.
    pub deviation: bool,
}

impl EndpointOutcome {
    /// `responder`, `non_responder`, `not_evaluable`, `missing`; empty without a responder rule.
    pub fn responder(&self) -> &'static str {
        match self.result.responder {
            Some(ResponderStatus::Responder) => "responder",
            Some(ResponderStatus::NonResponder) => "non_responder",
            Some(ResponderStatus::NotEvaluable) => "not_evaluable",
            Some(ResponderStatus::Missing) => "missing",
            None => "",
        }
    }
}

/// A responder proportion with its exact (Clopper-Pearson) 95% CI; 0..0 when there is no subject.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Proportion {
    pub responders: u32,
    pub total: u32,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Descriptive statistics of one sample; all zero for an empty one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub n: u32,
    pub mean: f64,
    pub sd: f64,
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
}

/// Baseline vs visit for the subjects with both, with the paired t and Wilcoxon signed-rank tests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairedComparison {
    pub n: u32,
    pub baseline: Option<Summary>,
    pub visit: Option<Summary>,
    pub change: Option<Summary>,
    pub paired_t_p: Option<f64>,
    pub wilcoxon_p: Option<f64>,
    pub wilcoxon_method: String,
}

/// TIS improvement categories over the subjects with an evaluable TIS.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TisCategories {
    pub evaluable: u32,
    pub none: u32,
    pub minimal: u32,
    pub moderate: u32,
    pub major: u32,
    pub at_least_minimal: Option<Proportion>,
}

/// The statistics of one follow-up visit over a cohort (or over one arm of it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CohortVisit {
    pub visit_id: String,
    pub subjects: u32,
    pub doi_responders: Option<Proportion>,
    pub tis: Option<TisCategories>,
    pub cdasi_activity: Option<PairedComparison>,
    pub cdasi_mcid: Option<Proportion>,
    /// The arm code of a per-arm table; empty for the pooled one.
    pub arm: String,
    /// The per-arm tables of a pooled one, in protocol order.
    pub arms: Vec<CohortVisit>,
}

/// A study's cohort statistics per follow-up visit, its endpoint tables and its eligibility.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CohortOutcomes {
    pub study_id: String,
    pub enrolled: u32,
    pub visits: Vec<CohortVisit>,
    pub endpoints: Vec<ArmedEndpointTable>,
    pub eligibility: Option<EligibilityTable>,
    pub as_of_sequence: u64,
}

/// One subject's eligibility under one protocol version, criterion by criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectEligibility {
    pub protocol: String,
    pub protocol_version: u32,
    /// `eligible`, `not_eligible` or `not_evaluable`.
    pub verdict: String,
    pub baseline_visit_id: String,
    pub criteria: Vec<CriterionOutcome>,
}

/// One criterion's verdict for one subject, with every value its rules saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionOutcome {
    pub id: String,
    /// `inclusion` or `exclusion`.
    pub category: String,
    pub text: String,
    pub verdict: String,
    pub explanation: String,
    pub seen: Vec<SeenValue>,
}

/// What one leaf rule saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenValue {
    pub rule: String,
    pub value: String,
    pub verdict: String,
}

/// Eligibility over every enrolled subject: n/N per overall verdict and per criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityTable {
    pub protocol: String,
    pub protocol_version: u32,
    pub subjects: u32,
    pub eligible: u32,
    pub not_eligible: u32,
    pub not_evaluable: u32,
    pub criteria: Vec<CriterionCounts>,
}

/// How many subjects got each verdict on one criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionCounts {
    pub id: String,
    pub text: String,
    pub met: u32,
    pub not_met: u32,
    pub not_applicable: u32,
    pub not_evaluable: u32,
}

/// One protocol endpoint tabulated over every enrolled subject and over each arm's subjects.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmedEndpointTable {
    pub pooled: EndpointCohort,
    /// Per arm of the protocol, in protocol order: (arm code, the table over its subjects).
    pub arms: Vec<(String, EndpointCohort)>,
}
