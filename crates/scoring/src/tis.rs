//! 2016 ACR/EULAR myositis response criteria: the Total Improvement Score (Aggarwal et al., Ann Rheum
//! Dis 2017;76:792 (adult); Rider et al., Rheumatology 2017;56:1884, Table 3 (juvenile and the
//! conditional points); docs/clinical.md#6-total-improvement-score). Points per measure by improvement band, a value exactly on an
//! edge in the lower band, worsening scoring 0; TIS = sum (0-100); adult thresholds 20/40/60,
//! juvenile 30/45/70. All six measures are needed [D].

use crate::change::range_improvement_pct;
use crate::core_set::{CoreMeasure, CoreSet, MeasurePair, MeasureScale, Unavailable};
use crate::doi::ENZYME_SELECTION;
use crate::exact::{JsonNumber, Overflow, Ratio};
use myolog_domain::global::GlobalScale;
use myolog_domain::visit::Population;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// Algorithm name and version of the TIS.
pub const TIS_ALGORITHM: &str = "tis-2016@1";

/// Upper edges (inclusive) of the first four bands of a points table, in percent; above the last
/// edge is the fifth band.
type Edges = [i64; 4];
/// Points of the five bands (first band 0).
type Points = [Decimal; 5];

const GLOBAL_EDGES: Edges = [5, 15, 25, 40];
const MMT_EDGES: Edges = [2, 10, 20, 30];

const fn points(tenths: [i64; 5]) -> Points {
    [
        Decimal::from_parts(tenths[0] as u32, 0, 0, false, 1),
        Decimal::from_parts(tenths[1] as u32, 0, 0, false, 1),
        Decimal::from_parts(tenths[2] as u32, 0, 0, false, 1),
        Decimal::from_parts(tenths[3] as u32, 0, 0, false, 1),
        Decimal::from_parts(tenths[4] as u32, 0, 0, false, 1),
    ]
}

/// The points table of a measure: band edges and points (Rider 2017, Table 3).
pub fn points_table(measure: CoreMeasure) -> (Edges, Points) {
    match measure {
        CoreMeasure::PhysicianGlobal => (GLOBAL_EDGES, points([0, 75, 150, 175, 200])),
        CoreMeasure::PatientGlobal => (GLOBAL_EDGES, points([0, 25, 50, 75, 100])),
        CoreMeasure::Haq => (GLOBAL_EDGES, points([0, 50, 75, 75, 100])),
        CoreMeasure::Enzyme => (GLOBAL_EDGES, points([0, 25, 50, 75, 75])),
        CoreMeasure::ExtramuscularGlobal => (GLOBAL_EDGES, points([0, 75, 125, 150, 200])),
        CoreMeasure::Mmt => (MMT_EDGES, points([0, 100, 200, 275, 325])),
    }
}

/// Points for an improvement percentage: the band whose upper edge is the first at or above it
/// (so a value on an edge belongs to the lower band); worsening and no change fall in the first
/// band and score 0.
pub fn tis_points(measure: CoreMeasure, improvement_pct: Ratio) -> Decimal {
    let (edges, points) = points_table(measure);
    let band = edges
        .iter()
        .position(|edge| improvement_pct <= Ratio::integer(*edge))
        .unwrap_or(edges.len());
    points[band]
}

/// TIS response category: the domain's one type.
pub use myolog_domain::protocol::TisCategory;

/// Category thresholds (minimal, moderate, major), inclusive.
pub const fn category_thresholds(population: Population) -> [i64; 3] {
    match population {
        Population::Adult => [20, 40, 60],
        Population::Juvenile => [30, 45, 70],
    }
}

/// The category of a score.
pub fn tis_category(score: Decimal, population: Population) -> TisCategory {
    let [minimal, moderate, major] = category_thresholds(population).map(Decimal::from);
    if score >= major {
        TisCategory::Major
    } else if score >= moderate {
        TisCategory::Moderate
    } else if score >= minimal {
        TisCategory::Minimal
    } else {
        TisCategory::None
    }
}

/// Whether the TIS could be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TisStatus {
    Evaluable,
    NotEvaluable,
}

/// How each measure's percent change was computed, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TisChangeRules {
    pub globals: &'static str,
    pub haq: &'static str,
    pub mmt: &'static str,
    pub enzyme: &'static str,
}

/// The conventions the TIS used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TisConventions {
    pub population: &'static str,
    /// Minimal, moderate, major (inclusive).
    pub category_thresholds: [i64; 3],
    pub percent_change: TisChangeRules,
    pub band_edges: &'static str,
    pub enzyme: Option<&'static str>,
    pub enzyme_selection: &'static str,
    pub enzyme_baseline_zero: &'static str,
    pub missing_measures: &'static str,
    /// MMT maximum used (80 or 150), if MMT was available.
    pub mmt_max: Option<u16>,
}

/// The TIS result of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TisOutcome {
    pub status: TisStatus,
    /// Null when not evaluable.
    pub score: Option<JsonNumber>,
    /// Null when not evaluable.
    pub category: Option<TisCategory>,
    /// Points of every measure that could be scored.
    pub points: BTreeMap<CoreMeasure, JsonNumber>,
    pub missing: Vec<CoreMeasure>,
    pub missing_reasons: BTreeMap<CoreMeasure, String>,
    pub algorithm: &'static str,
    pub conventions: TisConventions,
    /// Improvement percent used for the points (shown under `measures` in the case result).
    #[serde(skip)]
    pub change_pct: BTreeMap<CoreMeasure, Ratio>,
}

/// The TIS improvement percentage of one measure (positive = better).
pub fn tis_change_pct(measure: CoreMeasure, pair: &MeasurePair) -> Result<Ratio, Unavailable> {
    let range = match pair.scale {
        MeasureScale::Global(GlobalScale::VasCm) => Ratio::integer(10),
        MeasureScale::Global(GlobalScale::Likert) => {
            return Err(Unavailable::Unsupported(
                "Likert globals have no agreed TIS percent change (docs/clinical.md#11-conventions-where-the-sources-are-silent); give the 10 cm VAS".to_string(),
            ));
        }
        MeasureScale::HaqDi => Ratio::integer(3),
        MeasureScale::Mmt(scale) => Ratio::integer(i64::from(scale.max_total())),
        MeasureScale::EnzymeTimesUln(_) => {
            // Relative to baseline; a zero baseline leaves no room to improve: 0% [D].
            if pair.baseline.is_zero() {
                return Ok(Ratio::ZERO);
            }
            return Ok(pair
                .baseline
                .checked_sub(pair.followup)
                .and_then(|gain| gain.checked_div(pair.baseline))
                .and_then(|relative| relative.checked_mul(Ratio::integer(100)))?);
        }
    };
    range_improvement_pct(
        pair.baseline,
        pair.followup,
        range,
        measure.higher_is_better(),
    )
    .map_err(|overflow: Overflow| Unavailable::Overflow(overflow))
}

/// Scores the TIS of a case.
pub fn tis(core: &CoreSet, population: Population) -> TisOutcome {
    let mut points = BTreeMap::new();
    let mut change_pct = BTreeMap::new();
    let mut missing_reasons = BTreeMap::new();
    let mut mmt_max = None;
    for measure in CoreMeasure::ALL {
        let change = core.get(measure).map_err(Clone::clone).and_then(|pair| {
            if let MeasureScale::Mmt(scale) = pair.scale {
                mmt_max = Some(scale.max_total());
            }
            tis_change_pct(measure, pair)
        });
        match change {
            Ok(percent) => {
                points.insert(measure, JsonNumber(tis_points(measure, percent)));
                change_pct.insert(measure, percent);
            }
            Err(reason) => {
                missing_reasons.insert(measure, reason.to_string());
            }
        }
    }
    let (status, score, category) = if missing_reasons.is_empty() {
        let score: Decimal = points.values().map(|points| points.0).sum();
        (
            TisStatus::Evaluable,
            Some(JsonNumber(score)),
            Some(tis_category(score, population)),
        )
    } else {
        (TisStatus::NotEvaluable, None, None)
    };
    TisOutcome {
        status,
        score,
        category,
        points,
        missing: missing_reasons.keys().copied().collect(),
        missing_reasons,
        algorithm: TIS_ALGORITHM,
        conventions: TisConventions {
            population: population.key(),
            category_thresholds: category_thresholds(population),
            percent_change: TisChangeRules {
                globals: "change / 10 cm x 100",
                haq: "change / 3 x 100",
                mmt: "change / maximum total (80 or 150) x 100",
                enzyme: "change / baseline x 100, on value/ULN",
            },
            band_edges: "a value exactly on an edge belongs to the lower band; worsening scores 0",
            enzyme: core.enzyme.map(|choice| choice.enzyme.key()),
            enzyme_selection: ENZYME_SELECTION,
            enzyme_baseline_zero: "baseline 0: no improvement possible (0%)",
            missing_measures: "all six measures are needed; otherwise not evaluable",
            mmt_max,
        },
        change_pct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points at `percent` (given as numerator/denominator) for a measure.
    fn check(measure: CoreMeasure, numerator: i128, denominator: i128, expected: &str) {
        let percent = Ratio::new(numerator, denominator).expect("ratio");
        let expected: Decimal = expected.parse().expect("decimal");
        assert_eq!(
            tis_points(measure, percent),
            expected,
            "{measure:?} at {numerator}/{denominator}%"
        );
    }

    #[test]
    fn every_band_edge_of_every_measure_belongs_to_the_lower_band() {
        let tables: [(CoreMeasure, [i128; 4], [&str; 5]); 6] = [
            (
                CoreMeasure::PhysicianGlobal,
                [5, 15, 25, 40],
                ["0", "7.5", "15", "17.5", "20"],
            ),
            (
                CoreMeasure::PatientGlobal,
                [5, 15, 25, 40],
                ["0", "2.5", "5", "7.5", "10"],
            ),
            (
                CoreMeasure::Haq,
                [5, 15, 25, 40],
                ["0", "5", "7.5", "7.5", "10"],
            ),
            (
                CoreMeasure::Enzyme,
                [5, 15, 25, 40],
                ["0", "2.5", "5", "7.5", "7.5"],
            ),
            (
                CoreMeasure::ExtramuscularGlobal,
                [5, 15, 25, 40],
                ["0", "7.5", "12.5", "15", "20"],
            ),
            (
                CoreMeasure::Mmt,
                [2, 10, 20, 30],
                ["0", "10", "20", "27.5", "32.5"],
            ),
        ];
        for (measure, edges, points) in tables {
            // Worsening and no change score 0.
            check(measure, -100, 1, points[0]);
            check(measure, 0, 1, points[0]);
            for (band, edge) in edges.into_iter().enumerate() {
                // Exactly on the edge: the lower band; one millionth above: the next band.
                check(measure, edge, 1, points[band]);
                check(measure, edge * 1_000_000 - 1, 1_000_000, points[band]);
                check(measure, edge * 1_000_000 + 1, 1_000_000, points[band + 1]);
            }
            check(measure, 100, 1, points[4]);
        }
    }

    #[test]
    fn maximum_total_is_100() {
        let total: Decimal = CoreMeasure::ALL
            .into_iter()
            .map(|measure| tis_points(measure, Ratio::integer(100)))
            .sum();
        assert_eq!(total, Decimal::ONE_HUNDRED);
    }
}
