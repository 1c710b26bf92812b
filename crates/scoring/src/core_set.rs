//! The six IMACS core set measures of a baseline/follow-up pair, as exact values ready for the DOI
//! and the TIS: the three globals, MMT-8 total, HAQ-DI and the enzyme most abnormal at baseline
//! (highest value/ULN; docs/clinical.md#1-imacs-core-set-measures). A measure that cannot be compared says why.

use crate::exact::{Overflow, Ratio};
use crate::haq_di::haq_di;
use crate::mmt::mmt8_total;
use myolog_domain::conventions::ScoringConventions;
use myolog_domain::enzyme::{Enzyme, EnzymeMeasurement, EnzymePanel};
use myolog_domain::global::{GlobalKind, GlobalScale};
use myolog_domain::haq::Haq;
use myolog_domain::mmt8::MmtScale;
use myolog_domain::visit::VisitAssessments;
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// The six core set measures, named as in the `myolog score` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreMeasure {
    PhysicianGlobal,
    PatientGlobal,
    ExtramuscularGlobal,
    Mmt,
    Haq,
    Enzyme,
}

impl CoreMeasure {
    pub const ALL: [CoreMeasure; 6] = [
        CoreMeasure::PhysicianGlobal,
        CoreMeasure::PatientGlobal,
        CoreMeasure::ExtramuscularGlobal,
        CoreMeasure::Mmt,
        CoreMeasure::Haq,
        CoreMeasure::Enzyme,
    ];

    pub const fn key(self) -> &'static str {
        match self {
            CoreMeasure::PhysicianGlobal => "physician_global",
            CoreMeasure::PatientGlobal => "patient_global",
            CoreMeasure::ExtramuscularGlobal => "extramuscular_global",
            CoreMeasure::Mmt => "mmt",
            CoreMeasure::Haq => "haq",
            CoreMeasure::Enzyme => "enzyme",
        }
    }

    /// Only muscle strength improves upwards.
    pub const fn higher_is_better(self) -> bool {
        matches!(self, CoreMeasure::Mmt)
    }
}

/// The scale a measure was compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasureScale {
    Global(GlobalScale),
    Mmt(MmtScale),
    HaqDi,
    /// Values are multiples of the ULN of this enzyme.
    EnzymeTimesUln(Enzyme),
}

/// Baseline and follow-up values of one measure, exact, on one scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasurePair {
    pub baseline: Ratio,
    pub followup: Ratio,
    pub scale: MeasureScale,
}

/// Why a measure cannot be compared between the two visits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unavailable {
    #[error("not assessed at {0}")]
    NotAssessed(&'static str),
    #[error("not computable at {visit}: {reason}")]
    NotComputable { visit: &'static str, reason: String },
    #[error(
        "recorded on different scales ({baseline} at baseline, {followup} at follow-up); scales are never mixed"
    )]
    ScaleMismatch { baseline: String, followup: String },
    #[error("{0} (the most abnormal enzyme at baseline) not measured at follow-up")]
    EnzymeMissingAtFollowup(&'static str),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Overflow(#[from] Overflow),
}

/// The enzyme chosen at baseline and its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnzymeChoice {
    pub enzyme: Enzyme,
    pub baseline: EnzymeMeasurement,
    pub followup: Option<EnzymeMeasurement>,
}

/// The core set of a case: each measure's pair or why it is unavailable, and the enzyme chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreSet {
    pub measures: BTreeMap<CoreMeasure, Result<MeasurePair, Unavailable>>,
    pub enzyme: Option<EnzymeChoice>,
}

impl CoreSet {
    pub fn get(&self, measure: CoreMeasure) -> Result<&MeasurePair, &Unavailable> {
        match self.measures.get(&measure) {
            Some(Ok(pair)) => Ok(pair),
            Some(Err(reason)) => Err(reason),
            None => Err(&Unavailable::NotAssessed("baseline and follow-up")),
        }
    }
}

/// A measure's value as a multiple of its ULN.
pub fn times_uln(measurement: EnzymeMeasurement) -> Result<Ratio, Overflow> {
    Ratio::from_decimal(measurement.value()).checked_div(Ratio::from_decimal(measurement.uln()))
}

/// The most abnormal enzyme: highest value/ULN; ties go to the first in the order ck, aldolase, ldh,
/// ast, alt [D]. Enzymes within normal limits are eligible too (the sources leave it open:
/// docs/clinical.md#11-conventions-where-the-sources-are-silent).
pub fn most_abnormal_enzyme(panel: &EnzymePanel) -> Option<(Enzyme, EnzymeMeasurement)> {
    let mut best: Option<(Enzyme, EnzymeMeasurement, Ratio)> = None;
    for enzyme in Enzyme::ALL {
        let Some(measurement) = panel.get(&enzyme) else {
            continue;
        };
        let Ok(ratio) = times_uln(*measurement) else {
            continue;
        };
        if best
            .as_ref()
            .is_none_or(|(_, _, best_ratio)| ratio > *best_ratio)
        {
            best = Some((enzyme, *measurement, ratio));
        }
    }
    best.map(|(enzyme, measurement, _)| (enzyme, measurement))
}

fn pair_of<T>(baseline: Option<T>, followup: Option<T>) -> Result<(T, T), Unavailable> {
    match (baseline, followup) {
        (Some(baseline), Some(followup)) => Ok((baseline, followup)),
        (None, None) => Err(Unavailable::NotAssessed("baseline and follow-up")),
        (None, Some(_)) => Err(Unavailable::NotAssessed("baseline")),
        (Some(_), None) => Err(Unavailable::NotAssessed("follow-up")),
    }
}

/// The HAQ-DI of one visit, exactly, or why it is not computable.
pub fn visit_haq_di(haq: &Haq, conventions: &ScoringConventions) -> Result<Ratio, String> {
    match haq {
        Haq::Score(score) => Ok(Ratio::from_decimal(score.get())),
        Haq::Items(items) => haq_di(items, conventions.haq_min_categories)
            .map(|result| result.value())
            .map_err(|error| error.to_string()),
    }
}

/// Builds the six measures of a baseline/follow-up pair.
pub fn core_set(
    baseline: &VisitAssessments,
    followup: &VisitAssessments,
    conventions: &ScoringConventions,
) -> CoreSet {
    let mut measures = BTreeMap::new();
    for (measure, kind) in [
        (CoreMeasure::PhysicianGlobal, GlobalKind::Physician),
        (CoreMeasure::PatientGlobal, GlobalKind::Patient),
        (CoreMeasure::ExtramuscularGlobal, GlobalKind::Extramuscular),
    ] {
        let pair =
            pair_of(baseline.global(kind), followup.global(kind)).and_then(|(before, after)| {
                if before.scale() != after.scale() {
                    return Err(Unavailable::ScaleMismatch {
                        baseline: before.scale().name().to_string(),
                        followup: after.scale().name().to_string(),
                    });
                }
                Ok(MeasurePair {
                    baseline: Ratio::from_decimal(before.value()),
                    followup: Ratio::from_decimal(after.value()),
                    scale: MeasureScale::Global(before.scale()),
                })
            });
        measures.insert(measure, pair);
    }

    let mmt =
        pair_of(baseline.mmt8.as_ref(), followup.mmt8.as_ref()).and_then(|(before, after)| {
            let before = mmt8_total(before).map_err(|error| Unavailable::NotComputable {
                visit: "baseline",
                reason: error.to_string(),
            })?;
            let after = mmt8_total(after).map_err(|error| Unavailable::NotComputable {
                visit: "follow-up",
                reason: error.to_string(),
            })?;
            if before.scale != after.scale {
                return Err(Unavailable::ScaleMismatch {
                    baseline: format!("MMT-8 max {}", before.scale.max_total()),
                    followup: format!("MMT-8 max {}", after.scale.max_total()),
                });
            }
            Ok(MeasurePair {
                baseline: Ratio::integer(i64::from(before.total)),
                followup: Ratio::integer(i64::from(after.total)),
                scale: MeasureScale::Mmt(before.scale),
            })
        });
    measures.insert(CoreMeasure::Mmt, mmt);

    let haq = pair_of(baseline.haq.as_ref(), followup.haq.as_ref()).and_then(|(before, after)| {
        let before =
            visit_haq_di(before, conventions).map_err(|reason| Unavailable::NotComputable {
                visit: "baseline",
                reason,
            })?;
        let after =
            visit_haq_di(after, conventions).map_err(|reason| Unavailable::NotComputable {
                visit: "follow-up",
                reason,
            })?;
        Ok(MeasurePair {
            baseline: before,
            followup: after,
            scale: MeasureScale::HaqDi,
        })
    });
    measures.insert(CoreMeasure::Haq, haq);

    let choice =
        most_abnormal_enzyme(&baseline.enzymes).map(|(enzyme, measurement)| EnzymeChoice {
            enzyme,
            baseline: measurement,
            followup: followup.enzymes.get(&enzyme).copied(),
        });
    let enzyme = match choice {
        None if followup.enzymes.is_empty() => {
            Err(Unavailable::NotAssessed("baseline and follow-up"))
        }
        None => Err(Unavailable::NotAssessed("baseline")),
        Some(EnzymeChoice {
            enzyme,
            followup: None,
            ..
        }) => Err(Unavailable::EnzymeMissingAtFollowup(enzyme.key())),
        Some(EnzymeChoice {
            enzyme,
            baseline,
            followup: Some(after),
        }) => times_uln(baseline)
            .and_then(|before| {
                Ok(MeasurePair {
                    baseline: before,
                    followup: times_uln(after)?,
                    scale: MeasureScale::EnzymeTimesUln(enzyme),
                })
            })
            .map_err(Unavailable::from),
    };
    measures.insert(CoreMeasure::Enzyme, enzyme);
    CoreSet {
        measures,
        enzyme: choice,
    }
}
