//! One entry point for a baseline/follow-up case: [`score_case`] computes the DOI, the TIS, the
//! core set measures, HAQ-DI, MMT-8, CDASI, biomarkers, STAT1 and prednisone dose change, and
//! [`CaseOutcome`] serialises to the result JSON of the `myolog score` contract (`docs/reference/score-json.md`).

use crate::cdasi::{
    CDASI_ALGORITHM, CdasiScores, CdasiSeverity, cdasi_change, cdasi_scores, cdasi_severity,
    cdasi_severity_rule,
};
use crate::change::{BIOMARKER_ALGORITHM, biomarker_change};
use crate::core_set::{CoreMeasure, CoreSet, core_set, times_uln, visit_haq_di};
use crate::doi::{DoiOutcome, doi};
use crate::exact::{JsonNumber, Ratio};
use crate::haq_di::{HAQ_DI_ALGORITHM, category_score};
use crate::mmt::{MMT8_ALGORITHM, mmt8_total};
use crate::tis::{TisOutcome, tis};
use myolog_domain::case::ScoreCase;
use myolog_domain::conventions::ScoringConventions;
use myolog_domain::global::GlobalKind;
use myolog_domain::haq::{Haq, HaqCategory};
use myolog_domain::mmt8::Mmt8;
use myolog_domain::visit::VisitAssessments;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything computed for one case. Optional sections are left out of the JSON when absent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseOutcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub population: &'static str,
    /// The study conventions this result was scored under and the protocol version that set them;
    /// absent when a case is scored on its own (`myolog score`), whose conventions are in each part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conventions: Option<StudyConventions>,
    pub doi: DoiOutcome,
    pub tis: TisOutcome,
    /// Each core set measure recorded at either visit.
    pub measures: BTreeMap<CoreMeasure, MeasureSummary>,
    /// Present when HAQ items were given at either visit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub haq_di: Option<HaqDiSummary>,
    /// Present when MMT-8 grades were given at either visit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mmt8: Option<Mmt8Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cdasi: Option<CdasiSummary>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labs: BTreeMap<&'static str, LabSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat1: Option<LabSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prednisone_mg_per_day: Option<LabSummary>,
}

impl CaseOutcome {
    /// Every algorithm id with its version that computed a part of this result (`doi-2004@1`, ...),
    /// sorted and unique: what an outcome's provenance names.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut ids = std::collections::BTreeSet::new();
        ids.insert(self.doi.algorithm);
        ids.insert(self.tis.algorithm);
        ids.extend(self.haq_di.as_ref().map(|part| part.algorithm));
        ids.extend(self.mmt8.as_ref().map(|part| part.algorithm));
        ids.extend(self.cdasi.as_ref().map(|part| part.algorithm));
        ids.extend(self.labs.values().map(|lab| lab.algorithm));
        ids.extend(self.stat1.as_ref().map(|lab| lab.algorithm));
        ids.extend(self.prednisone_mg_per_day.as_ref().map(|lab| lab.algorithm));
        ids.retain(|id| !id.is_empty());
        ids.into_iter().collect()
    }
}

/// The conventions a study's protocol chose, named with the protocol version in force when the
/// result was computed, so a reader can tell which version's choices decided a boundary case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StudyConventions {
    /// The protocol version, e.g. `STIR v2` (`registered as ...` when registered under another id).
    pub protocol: String,
    pub protocol_version: u32,
    pub haq_min_categories: usize,
    pub cdasi_mcid: u8,
    pub cdasi_severity_cutoff: u8,
}

impl StudyConventions {
    pub fn new(protocol: String, protocol_version: u32, conventions: &ScoringConventions) -> Self {
        StudyConventions {
            protocol,
            protocol_version,
            haq_min_categories: conventions.haq_min_categories.count(),
            cdasi_mcid: conventions.cdasi_mcid.points(),
            cdasi_severity_cutoff: conventions.cdasi_severity_cutoff.points(),
        }
    }
}

/// One core set measure at both visits with its DOI and TIS percentages (positive = better).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasureSummary {
    pub baseline: Option<Ratio>,
    pub followup: Option<Ratio>,
    pub improvement_pct: Option<Ratio>,
    pub tis_change_pct: Option<Ratio>,
    /// The scale (`vas_cm`, `likert_0_4`, `mmt8_max_80`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<String>,
    /// Enzyme only: which enzyme, the ULNs and the values as multiples of ULN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enzyme: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_uln: Option<Ratio>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followup_uln: Option<Ratio>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_x_uln: Option<Ratio>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followup_x_uln: Option<Ratio>,
}

/// HAQ-DI computed from items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HaqDiSummary {
    pub baseline: Option<Ratio>,
    pub followup: Option<Ratio>,
    /// Why a visit's HAQ-DI could not be computed.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub not_computable: BTreeMap<&'static str, String>,
    /// Per visit given as items: each category's score (null = unanswered), for auditing the mean.
    pub category_scores: BTreeMap<&'static str, BTreeMap<&'static str, Option<u8>>>,
    pub algorithm: &'static str,
    pub conventions: HaqDiConventions,
}

/// The HAQ-DI conventions used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HaqDiConventions {
    pub min_answered_categories: usize,
    pub aids_and_help: &'static str,
    pub other_aid: &'static str,
}

/// MMT-8 totals computed from grades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mmt8Summary {
    pub baseline: Option<u16>,
    pub followup: Option<u16>,
    pub baseline_max: Option<u16>,
    pub followup_max: Option<u16>,
    /// Missing grades per visit (the total is then not computable: no imputation).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing_grades: BTreeMap<&'static str, Vec<String>>,
    pub algorithm: &'static str,
    pub conventions: Mmt8Conventions,
}

/// The MMT-8 conventions used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mmt8Conventions {
    pub missing_grade: &'static str,
}

/// CDASI totals, change, MCID and severity band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CdasiSummary {
    pub baseline: Option<CdasiScores>,
    pub followup: Option<CdasiScores>,
    pub activity_change: Option<i32>,
    pub damage_change: Option<i32>,
    pub mcid_reached: Option<bool>,
    pub severity: CdasiSeverityBands,
    pub algorithm: &'static str,
    pub conventions: CdasiConventions,
}

/// Severity band at each visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CdasiSeverityBands {
    pub baseline: Option<CdasiSeverity>,
    pub followup: Option<CdasiSeverity>,
}

/// The CDASI conventions used (Anyanwu 2015).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CdasiConventions {
    pub mcid: u8,
    pub mcid_source: &'static str,
    pub severity_cutoff: u8,
    pub severity_cutoff_source: &'static str,
    pub severity_rule: &'static str,
}

/// A biomarker (or STAT1, or prednisone dose) at both visits and its change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabSummary {
    pub unit: &'static str,
    pub baseline: Option<JsonNumber>,
    pub followup: Option<JsonNumber>,
    pub change: Option<JsonNumber>,
    pub percent_change: Option<Ratio>,
    pub fold_change: Option<Ratio>,
    pub log2_fold_change: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub algorithm: &'static str,
}

fn lab_summary(
    unit: &'static str,
    baseline: Option<rust_decimal::Decimal>,
    followup: Option<rust_decimal::Decimal>,
) -> LabSummary {
    let mut summary = LabSummary {
        unit,
        baseline: baseline.map(JsonNumber),
        followup: followup.map(JsonNumber),
        change: None,
        percent_change: None,
        fold_change: None,
        log2_fold_change: None,
        note: None,
        algorithm: BIOMARKER_ALGORITHM,
    };
    if let (Some(before), Some(after)) = (baseline, followup) {
        let change = biomarker_change(before, after);
        summary.change = Some(change.change);
        summary.percent_change = change.percent_change;
        summary.fold_change = change.fold_change;
        summary.log2_fold_change = change.log2_fold_change;
    }
    summary
}

/// The value of a core measure at one visit, for display (enzyme: the chosen enzyme's value in U/L).
fn visit_value(
    measure: CoreMeasure,
    visit: &VisitAssessments,
    core: &CoreSet,
    conventions: &ScoringConventions,
) -> Option<Ratio> {
    let global = |kind| {
        visit
            .global(kind)
            .map(|global| Ratio::from_decimal(global.value()))
    };
    match measure {
        CoreMeasure::PhysicianGlobal => global(GlobalKind::Physician),
        CoreMeasure::PatientGlobal => global(GlobalKind::Patient),
        CoreMeasure::ExtramuscularGlobal => global(GlobalKind::Extramuscular),
        CoreMeasure::Mmt => visit
            .mmt8
            .as_ref()
            .and_then(|mmt| mmt8_total(mmt).ok())
            .map(|score| Ratio::integer(score.total.into())),
        CoreMeasure::Haq => visit
            .haq
            .as_ref()
            .and_then(|haq| visit_haq_di(haq, conventions).ok()),
        CoreMeasure::Enzyme => {
            let enzyme = core.enzyme?.enzyme;
            visit
                .enzymes
                .get(&enzyme)
                .map(|measurement| Ratio::from_decimal(measurement.value()))
        }
    }
}

fn has_measure(measure: CoreMeasure, visit: &VisitAssessments) -> bool {
    match measure {
        CoreMeasure::PhysicianGlobal => visit.physician_global.is_some(),
        CoreMeasure::PatientGlobal => visit.patient_global.is_some(),
        CoreMeasure::ExtramuscularGlobal => visit.extramuscular_global.is_some(),
        CoreMeasure::Mmt => visit.mmt8.is_some(),
        CoreMeasure::Haq => visit.haq.is_some(),
        CoreMeasure::Enzyme => !visit.enzymes.is_empty(),
    }
}

fn scale_name(measure: CoreMeasure, case: &ScoreCase) -> Option<String> {
    let visit = if has_measure(measure, &case.baseline) {
        &case.baseline
    } else {
        &case.followup
    };
    match measure {
        CoreMeasure::PhysicianGlobal
        | CoreMeasure::PatientGlobal
        | CoreMeasure::ExtramuscularGlobal => {
            let kind = match measure {
                CoreMeasure::PhysicianGlobal => GlobalKind::Physician,
                CoreMeasure::PatientGlobal => GlobalKind::Patient,
                _ => GlobalKind::Extramuscular,
            };
            visit
                .global(kind)
                .map(|global| global.scale().name().to_string())
        }
        CoreMeasure::Mmt => visit
            .mmt8
            .as_ref()
            .map(|mmt| format!("mmt8_max_{}", mmt.scale().max_total())),
        CoreMeasure::Haq => Some("haq_di_0_3".to_string()),
        CoreMeasure::Enzyme => Some("u_per_l".to_string()),
    }
}

fn measure_summaries(
    case: &ScoreCase,
    core: &CoreSet,
    doi: &DoiOutcome,
    tis: &TisOutcome,
) -> BTreeMap<CoreMeasure, MeasureSummary> {
    let mut summaries = BTreeMap::new();
    for measure in CoreMeasure::ALL {
        if !has_measure(measure, &case.baseline) && !has_measure(measure, &case.followup) {
            continue;
        }
        let mut summary = MeasureSummary {
            baseline: visit_value(measure, &case.baseline, core, &case.conventions),
            followup: visit_value(measure, &case.followup, core, &case.conventions),
            improvement_pct: doi
                .per_measure
                .get(&measure)
                .and_then(|result| result.improvement_pct),
            tis_change_pct: tis.change_pct.get(&measure).copied(),
            scale: scale_name(measure, case),
            enzyme: None,
            baseline_uln: None,
            followup_uln: None,
            baseline_x_uln: None,
            followup_x_uln: None,
        };
        if let (CoreMeasure::Enzyme, Some(choice)) = (measure, core.enzyme) {
            summary.enzyme = Some(choice.enzyme.key());
            summary.baseline_uln = Some(Ratio::from_decimal(choice.baseline.uln()));
            summary.baseline_x_uln = times_uln(choice.baseline).ok();
            summary.followup_uln = choice
                .followup
                .map(|after| Ratio::from_decimal(after.uln()));
            summary.followup_x_uln = choice.followup.and_then(|after| times_uln(after).ok());
        }
        summaries.insert(measure, summary);
    }
    summaries
}

fn haq_summary(case: &ScoreCase) -> Option<HaqDiSummary> {
    let from_items = |visit: &VisitAssessments| matches!(visit.haq, Some(Haq::Items(_)));
    if !from_items(&case.baseline) && !from_items(&case.followup) {
        return None;
    }
    let mut not_computable = BTreeMap::new();
    let mut value = |name: &'static str, visit: &VisitAssessments| match &visit.haq {
        None => None,
        Some(haq) => match visit_haq_di(haq, &case.conventions) {
            Ok(value) => Some(value),
            Err(reason) => {
                not_computable.insert(name, reason);
                None
            }
        },
    };
    let baseline = value("baseline", &case.baseline);
    let followup = value("followup", &case.followup);
    let mut category_scores = BTreeMap::new();
    for (name, visit) in [("baseline", &case.baseline), ("followup", &case.followup)] {
        if let Some(Haq::Items(items)) = &visit.haq {
            let scores = HaqCategory::ALL
                .into_iter()
                .map(|category| (category.key(), category_score(items, category)))
                .collect();
            category_scores.insert(name, scores);
        }
    }
    Some(HaqDiSummary {
        baseline,
        followup,
        not_computable,
        category_scores,
        algorithm: HAQ_DI_ALGORITHM,
        conventions: HaqDiConventions {
            min_answered_categories: case.conventions.haq_min_categories.count(),
            aids_and_help: "an aid/device or help raises an answered category to at least 2",
            other_aid: "\"other\" names no category and raises none",
        },
    })
}

fn mmt_summary(case: &ScoreCase) -> Option<Mmt8Summary> {
    let graded = |visit: &VisitAssessments| {
        matches!(visit.mmt8, Some(Mmt8::Unilateral(_) | Mmt8::Bilateral(_)))
    };
    if !graded(&case.baseline) && !graded(&case.followup) {
        return None;
    }
    let mut missing_grades = BTreeMap::new();
    let mut total = |name: &'static str, visit: &VisitAssessments| {
        let result = mmt8_total(visit.mmt8.as_ref()?);
        match result {
            Ok(score) => Some(score.total),
            Err(error) => {
                missing_grades.insert(name, error.missing);
                None
            }
        }
    };
    let baseline = total("baseline", &case.baseline);
    let followup = total("followup", &case.followup);
    Some(Mmt8Summary {
        baseline,
        followup,
        baseline_max: case
            .baseline
            .mmt8
            .as_ref()
            .map(|mmt| mmt.scale().max_total()),
        followup_max: case
            .followup
            .mmt8
            .as_ref()
            .map(|mmt| mmt.scale().max_total()),
        missing_grades,
        algorithm: MMT8_ALGORITHM,
        conventions: Mmt8Conventions {
            missing_grade: "total not computable (no imputation)",
        },
    })
}

fn cdasi_summary(case: &ScoreCase) -> Option<CdasiSummary> {
    if case.baseline.cdasi.is_none() && case.followup.cdasi.is_none() {
        return None;
    }
    let conventions = case.conventions;
    let baseline = case.baseline.cdasi.as_ref().map(cdasi_scores);
    let followup = case.followup.cdasi.as_ref().map(cdasi_scores);
    let change = baseline
        .zip(followup)
        .map(|(before, after)| cdasi_change(before, after, conventions.cdasi_mcid));
    let band = |scores: Option<CdasiScores>| {
        scores.map(|scores| cdasi_severity(scores.activity, conventions.cdasi_severity_cutoff))
    };
    Some(CdasiSummary {
        baseline,
        followup,
        activity_change: change.map(|change| change.activity_change),
        damage_change: change.map(|change| change.damage_change),
        mcid_reached: change.map(|change| change.mcid_reached),
        severity: CdasiSeverityBands {
            baseline: band(baseline),
            followup: band(followup),
        },
        algorithm: CDASI_ALGORITHM,
        conventions: CdasiConventions {
            mcid: conventions.cdasi_mcid.points(),
            mcid_source: conventions.cdasi_mcid.source(),
            severity_cutoff: conventions.cdasi_severity_cutoff.points(),
            severity_cutoff_source: conventions.cdasi_severity_cutoff.source(),
            severity_rule: cdasi_severity_rule(conventions.cdasi_severity_cutoff),
        },
    })
}

/// Scores one case: the single entry point for `myolog score` and the server.
pub fn score_case(case: &ScoreCase) -> CaseOutcome {
    let core = core_set(&case.baseline, &case.followup, &case.conventions);
    let doi = doi(&core, &case.conventions);
    let tis = tis(&core, case.population);
    let measures = measure_summaries(case, &core, &doi, &tis);

    let mut labs = BTreeMap::new();
    for code in case.baseline.labs.keys().chain(case.followup.labs.keys()) {
        let value =
            |visit: &VisitAssessments| visit.labs.get(code).map(|measurement| measurement.value());
        labs.insert(
            code.key(),
            lab_summary(code.unit(), value(&case.baseline), value(&case.followup)),
        );
    }
    let stat1 = match (case.baseline.stat1, case.followup.stat1) {
        (None, None) => None,
        (Some(before), Some(after)) if before.kind() != after.kind() => {
            let mut summary = lab_summary(before.kind(), Some(before.value()), None);
            summary.followup = Some(JsonNumber(after.value()));
            summary.note = Some(format!(
                "baseline is {} and follow-up {}: kinds are never compared",
                before.kind(),
                after.kind()
            ));
            Some(summary)
        }
        (before, after) => {
            let kind = before.or(after).map_or("ihc_score", |stat1| stat1.kind());
            Some(lab_summary(
                kind,
                before.map(|stat1| stat1.value()),
                after.map(|stat1| stat1.value()),
            ))
        }
    };
    let prednisone = match (
        case.baseline.prednisone_mg_per_day,
        case.followup.prednisone_mg_per_day,
    ) {
        (None, None) => None,
        (before, after) => Some(lab_summary(
            "mg/day prednisone-equivalent",
            before.map(|dose| dose.mg_per_day()),
            after.map(|dose| dose.mg_per_day()),
        )),
    };

    CaseOutcome {
        id: case.id.clone(),
        population: case.population.key(),
        conventions: None,
        haq_di: haq_summary(case),
        mmt8: mmt_summary(case),
        cdasi: cdasi_summary(case),
        labs,
        stat1,
        prednisone_mg_per_day: prednisone,
        doi,
        tis,
        measures,
    }
}
