//! IMACS definition of improvement, 2004 (Rider et al., Arthritis Rheum 2004;50:2281;
//! docs/clinical.md#5-imacs-definition-of-improvement):
//! at least 3 of the 6 core set measures improved by >= 20%, no more than 2 worsened by >= 25%, and
//! MMT not among the worsened. Percent change relative to baseline [D]; boundaries inclusive; with
//! fewer than 3 measures available the DOI is not evaluable, never "not met".

use crate::change::{RelativeImprovement, relative_improvement_pct};
use crate::core_set::{CoreMeasure, CoreSet, Unavailable};
use crate::exact::Ratio;
use myolog_domain::conventions::ScoringConventions;
use serde::Serialize;
use std::collections::BTreeMap;

/// Algorithm name and version of the DOI.
pub const DOI_ALGORITHM: &str = "doi-2004@1";

/// Improvement of at least this percent counts as improved (inclusive).
pub const IMPROVED_AT_LEAST_PCT: i64 = 20;
/// Worsening of at least this percent counts as worsened (inclusive).
pub const WORSENED_AT_LEAST_PCT: i64 = 25;
/// Fewer available measures than this: not evaluable.
pub const MINIMUM_AVAILABLE: usize = 3;

/// The DOI verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DoiStatus {
    Met,
    NotMet,
    NotEvaluable,
}

/// One measure's DOI classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DoiMeasure {
    /// Improvement relative to baseline in percent (positive = better); null when the baseline was 0
    /// and the value rose (no percentage exists).
    pub improvement_pct: Option<Ratio>,
    pub improved: bool,
    pub worsened: bool,
    pub baseline_zero: bool,
}

/// The conventions the DOI used, reported with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoiConventions {
    pub percent_change: &'static str,
    pub improved_if_improvement_pct_at_least: i64,
    pub worsened_if_worsening_pct_at_least: i64,
    pub boundaries: &'static str,
    pub minimum_available_measures: usize,
    /// The enzyme used (most abnormal at baseline), if any.
    pub enzyme: Option<&'static str>,
    pub enzyme_selection: &'static str,
    pub enzyme_compared_as: &'static str,
    pub baseline_zero_rule: &'static str,
    /// Measures whose baseline was 0.
    pub baseline_zero_measures: Vec<CoreMeasure>,
    pub haq_min_categories: usize,
    /// Which definition was applied (see docs/clinical.md#12-known-discrepancies-with-the-published-sources).
    pub definition: &'static str,
}

/// The DOI result of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoiOutcome {
    pub status: DoiStatus,
    pub improved: Vec<CoreMeasure>,
    pub worsened: Vec<CoreMeasure>,
    pub available: Vec<CoreMeasure>,
    pub missing: Vec<CoreMeasure>,
    /// Why each missing measure is missing.
    pub missing_reasons: BTreeMap<CoreMeasure, String>,
    /// Why the DOI is not met or not evaluable; null when met.
    pub reason: Option<String>,
    pub algorithm: &'static str,
    pub conventions: DoiConventions,
    /// Per-measure classification (shown under `measures` in the case result).
    #[serde(skip)]
    pub per_measure: BTreeMap<CoreMeasure, DoiMeasure>,
}

/// Classifies one measure from its improvement.
pub fn classify(improvement: RelativeImprovement, higher_is_better: bool) -> DoiMeasure {
    let improved_at = Ratio::integer(IMPROVED_AT_LEAST_PCT);
    let worsened_at = Ratio::integer(-WORSENED_AT_LEAST_PCT);
    match improvement {
        RelativeImprovement::Percent(percent) => DoiMeasure {
            improvement_pct: Some(percent),
            improved: percent >= improved_at,
            worsened: percent <= worsened_at,
            baseline_zero: false,
        },
        RelativeImprovement::BaselineZeroUnchanged => DoiMeasure {
            improvement_pct: Some(Ratio::ZERO),
            improved: false,
            worsened: false,
            baseline_zero: true,
        },
        RelativeImprovement::BaselineZeroRose => DoiMeasure {
            improvement_pct: None,
            improved: higher_is_better,
            worsened: !higher_is_better,
            baseline_zero: true,
        },
    }
}

/// Evaluates the DOI on a case's core set.
pub fn doi(core: &CoreSet, conventions: &ScoringConventions) -> DoiOutcome {
    let mut per_measure = BTreeMap::new();
    let mut missing_reasons = BTreeMap::new();
    for measure in CoreMeasure::ALL {
        let classified = core
            .get(measure)
            .map_err(Unavailable::to_string)
            .and_then(|pair| {
                relative_improvement_pct(pair.baseline, pair.followup, measure.higher_is_better())
                    .map(|improvement| classify(improvement, measure.higher_is_better()))
                    .map_err(|overflow| overflow.to_string())
            });
        match classified {
            Ok(result) => {
                per_measure.insert(measure, result);
            }
            Err(reason) => {
                missing_reasons.insert(measure, reason);
            }
        }
    }
    let select = |keep: fn(&DoiMeasure) -> bool| {
        per_measure
            .iter()
            .filter(|(_, result)| keep(result))
            .map(|(measure, _)| *measure)
            .collect::<Vec<_>>()
    };
    let improved = select(|result| result.improved);
    let worsened = select(|result| result.worsened);
    let available: Vec<CoreMeasure> = per_measure.keys().copied().collect();
    let mmt_worsened = worsened.contains(&CoreMeasure::Mmt);
    let (status, reason) = if available.len() < MINIMUM_AVAILABLE {
        (
            DoiStatus::NotEvaluable,
            Some(format!(
                "{} of 6 core set measures available, at least {MINIMUM_AVAILABLE} needed",
                available.len()
            )),
        )
    } else if improved.len() < 3 {
        (
            DoiStatus::NotMet,
            Some(format!(
                "{} measure(s) improved by >= 20%, 3 needed",
                improved.len()
            )),
        )
    } else if worsened.len() > 2 {
        (
            DoiStatus::NotMet,
            Some(format!(
                "{} measures worsened by >= 25%, at most 2 allowed",
                worsened.len()
            )),
        )
    } else if mmt_worsened {
        (
            DoiStatus::NotMet,
            Some("MMT worsened by >= 25%".to_string()),
        )
    } else {
        (DoiStatus::Met, None)
    };
    DoiOutcome {
        status,
        improved,
        worsened,
        available,
        missing: missing_reasons.keys().copied().collect(),
        missing_reasons,
        reason,
        algorithm: DOI_ALGORITHM,
        conventions: DoiConventions {
            percent_change: "relative_to_baseline",
            improved_if_improvement_pct_at_least: IMPROVED_AT_LEAST_PCT,
            worsened_if_worsening_pct_at_least: WORSENED_AT_LEAST_PCT,
            boundaries: "inclusive",
            minimum_available_measures: MINIMUM_AVAILABLE,
            enzyme: core.enzyme.map(|choice| choice.enzyme.key()),
            enzyme_selection: ENZYME_SELECTION,
            enzyme_compared_as: "multiple_of_uln",
            baseline_zero_rule: "lower-is-better measure with baseline 0: no improvement possible (0%), any rise \
                                 is worsened; MMT with baseline 0: any rise is improved",
            baseline_zero_measures: per_measure
                .iter()
                .filter(|(_, result)| result.baseline_zero)
                .map(|(measure, _)| *measure)
                .collect(),
            haq_min_categories: conventions.haq_min_categories.count(),
            definition: DOI_DEFINITION,
        },
        per_measure,
    }
}

/// How the enzyme is chosen, as reported in conventions.
pub const ENZYME_SELECTION: &str =
    "most abnormal at baseline: highest value/ULN; ties in the order ck, aldolase, ldh, ast, alt";

/// The definition applied, as reported in conventions.
/// Rider et al. 2004 rank this definition highest and call it "common to the adult and pediatric
/// working groups", so it is not an adult definition stretched to juvenile cases.
pub const DOI_DEFINITION: &str = "IMACS DOI common to the adult and paediatric working groups (Rider 2004; \
                                  docs/clinical.md#5-imacs-definition-of-improvement)";
