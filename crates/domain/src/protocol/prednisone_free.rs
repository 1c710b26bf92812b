//! BIRD's primary endpoint decided from a TIS value and glucocorticoid dose records: TIS at or above
//! the threshold *and* no glucocorticoid over the protocol's window (default [D] weeks 20-24), with at
//! least the required number of dose records inside the window. Too few records is "not evaluable",
//! never "met": absence of evidence of prednisone is not evidence of its absence.
//!
//! A dose record is the daily dose in effect from its day on, so the dose in effect on the window's
//! first day is the last record on or before that day, even if it was recorded earlier.

use super::model::{DayWindow, Outcome};
use rust_decimal::Decimal;
use serde::Serialize;
use std::fmt;

/// A glucocorticoid dose in effect from `day` (days since day 0), in mg/day prednisone-equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GlucocorticoidRecord {
    pub day: i32,
    pub mg_per_day: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PrednisoneFreeResult {
    Met {
        tis: Decimal,
        threshold: Decimal,
        window: DayWindow,
        records_in_window: u32,
    },
    /// TIS below the threshold.
    TisBelowThreshold { tis: Decimal, threshold: Decimal },
    /// A dose above 0 in effect on `day` within the window.
    GlucocorticoidInWindow {
        day: i32,
        mg_per_day: Decimal,
        window: DayWindow,
    },
    /// The TIS could not be computed (a core set measure missing).
    TisNotEvaluable,
    /// Fewer dose records inside the window than the protocol requires.
    TooFewDoseRecords {
        found: u32,
        needed: u32,
        window: DayWindow,
    },
}

impl PrednisoneFreeResult {
    /// `Some(true)` met, `Some(false)` not met, `None` not evaluable.
    pub fn is_met(&self) -> Option<bool> {
        match self {
            PrednisoneFreeResult::Met { .. } => Some(true),
            PrednisoneFreeResult::TisBelowThreshold { .. }
            | PrednisoneFreeResult::GlucocorticoidInWindow { .. } => Some(false),
            PrednisoneFreeResult::TisNotEvaluable
            | PrednisoneFreeResult::TooFewDoseRecords { .. } => None,
        }
    }
}

impl fmt::Display for PrednisoneFreeResult {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrednisoneFreeResult::Met {
                tis,
                threshold,
                window,
                records_in_window,
            } => write!(
                formatter,
                "met: TIS {tis} >= {threshold} and 0 mg/day over days {window} ({records_in_window} dose record(s) in the window)"
            ),
            PrednisoneFreeResult::TisBelowThreshold { tis, threshold } => {
                write!(formatter, "not met: TIS {tis} < {threshold}")
            }
            PrednisoneFreeResult::GlucocorticoidInWindow {
                day,
                mg_per_day,
                window,
            } => write!(
                formatter,
                "not met: {mg_per_day} mg/day in effect on day {day}, within days {window}"
            ),
            PrednisoneFreeResult::TisNotEvaluable => {
                formatter.write_str("not evaluable: TIS not evaluable")
            }
            PrednisoneFreeResult::TooFewDoseRecords {
                found,
                needed,
                window,
            } => write!(
                formatter,
                "not evaluable: {found} dose record(s) within days {window}, at least {needed} needed"
            ),
        }
    }
}

impl Outcome {
    /// Decides a prednisone-free TIS endpoint; `None` for any other outcome.
    /// `tis` is `None` when the TIS is not evaluable; `records` may come in any order.
    pub fn prednisone_free(
        &self,
        tis: Option<Decimal>,
        records: &[GlucocorticoidRecord],
    ) -> Option<PrednisoneFreeResult> {
        let Outcome::PrednisoneFreeTis {
            threshold,
            glucocorticoid_window: window,
            min_dose_records_in_window,
        } = self
        else {
            return None;
        };
        let (threshold, window, needed) = (*threshold, *window, *min_dose_records_in_window);
        // Normalised so a result reads `TIS 65`, not `TIS 65.0`: the value is the same.
        let tis = tis.map(|tis| tis.normalize());
        if let Some(tis) = tis
            && tis < threshold
        {
            return Some(PrednisoneFreeResult::TisBelowThreshold { tis, threshold });
        }
        let mut sorted: Vec<GlucocorticoidRecord> = records.to_vec();
        sorted.sort_by_key(|record| record.day);
        // The sort is stable: of two records on one day, the later one in the input is in effect.
        let mut ordered: Vec<GlucocorticoidRecord> = Vec::with_capacity(sorted.len());
        for record in sorted {
            match ordered.last_mut() {
                Some(previous) if previous.day == record.day => *previous = record,
                _ => ordered.push(record),
            }
        }
        let carried_in = ordered
            .iter()
            .rev()
            .find(|record| record.day <= window.first_day)
            .map(|record| GlucocorticoidRecord {
                day: window.first_day,
                mg_per_day: record.mg_per_day,
            });
        let inside: Vec<GlucocorticoidRecord> = ordered
            .iter()
            .copied()
            .filter(|record| window.contains(record.day))
            .collect();
        let on_prednisone = carried_in
            .iter()
            .chain(inside.iter())
            .find(|record| record.mg_per_day > Decimal::ZERO);
        if let Some(record) = on_prednisone {
            return Some(PrednisoneFreeResult::GlucocorticoidInWindow {
                day: record.day,
                mg_per_day: record.mg_per_day,
                window,
            });
        }
        let Some(tis) = tis else {
            return Some(PrednisoneFreeResult::TisNotEvaluable);
        };
        let found = u32::try_from(inside.len()).unwrap_or(u32::MAX);
        if found < needed {
            return Some(PrednisoneFreeResult::TooFewDoseRecords {
                found,
                needed,
                window,
            });
        }
        Some(PrednisoneFreeResult::Met {
            tis,
            threshold,
            window,
            records_in_window: found,
        })
    }
}
