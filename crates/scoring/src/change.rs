//! Change between two visits: absolute change, percent change relative to baseline, fold change and
//! log2 fold change (biomarkers, STAT1; docs/clinical.md#7-biomarkers-and-skin-biopsy), and the improvement
//! percentages of the DOI (relative to baseline, docs/clinical.md#5-imacs-definition-of-improvement) and the TIS (relative to the scale range,
//! docs/clinical.md#6-total-improvement-score).

use crate::exact::{Overflow, Ratio};
use rust_decimal::Decimal;
use serde::Serialize;

/// Algorithm name and version, reported with every biomarker change.
pub const BIOMARKER_ALGORITHM: &str = "biomarker-change@1";

/// Improvement relative to baseline, positive when the measure got better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelativeImprovement {
    /// (baseline - follow-up) / baseline x 100, or (follow-up - baseline) / baseline x 100 for measures
    /// where higher is better.
    Percent(Ratio),
    /// Baseline 0 and follow-up 0: no change, 0% [D].
    BaselineZeroUnchanged,
    /// Baseline 0 and follow-up above 0: no percentage exists; for a lower-is-better measure this is
    /// a worsening, for MMT an improvement [D].
    BaselineZeroRose,
}

impl RelativeImprovement {
    /// The percentage, where one exists (0 for an unchanged zero baseline).
    pub fn percent(self) -> Option<Ratio> {
        match self {
            RelativeImprovement::Percent(percent) => Some(percent),
            RelativeImprovement::BaselineZeroUnchanged => Some(Ratio::ZERO),
            RelativeImprovement::BaselineZeroRose => None,
        }
    }
}

/// Improvement relative to baseline, in percent. Values are non-negative (domain types), so a zero
/// baseline can only stay or rise.
pub fn relative_improvement_pct(
    baseline: Ratio,
    followup: Ratio,
    higher_is_better: bool,
) -> Result<RelativeImprovement, Overflow> {
    if baseline.is_zero() {
        return Ok(if followup.is_zero() {
            RelativeImprovement::BaselineZeroUnchanged
        } else {
            RelativeImprovement::BaselineZeroRose
        });
    }
    let gain = if higher_is_better {
        followup.checked_sub(baseline)?
    } else {
        baseline.checked_sub(followup)?
    };
    Ok(RelativeImprovement::Percent(
        gain.checked_div(baseline)?
            .checked_mul(Ratio::integer(100))?,
    ))
}

/// Improvement as a percentage of the scale's range: (baseline - follow-up) / range x 100, or the
/// reverse for higher-is-better measures (2016 TIS "absolute percent change", docs/clinical.md#6-total-improvement-score).
pub fn range_improvement_pct(
    baseline: Ratio,
    followup: Ratio,
    range: Ratio,
    higher_is_better: bool,
) -> Result<Ratio, Overflow> {
    let gain = if higher_is_better {
        followup.checked_sub(baseline)?
    } else {
        baseline.checked_sub(followup)?
    };
    gain.checked_div(range)?.checked_mul(Ratio::integer(100))
}

/// Percent change relative to baseline, signed (positive = rose): (follow-up - baseline) / baseline
/// x 100. `None` for a zero baseline.
pub fn percent_change(baseline: Decimal, followup: Decimal) -> Option<Ratio> {
    let baseline = Ratio::from_decimal(baseline);
    if baseline.is_zero() {
        return None;
    }
    Ratio::from_decimal(followup)
        .checked_sub(baseline)
        .and_then(|change| change.checked_div(baseline))
        .and_then(|relative| relative.checked_mul(Ratio::integer(100)))
        .ok()
}

/// Fold change follow-up / baseline. `None` for a zero baseline.
pub fn fold_change(baseline: Decimal, followup: Decimal) -> Option<Ratio> {
    let baseline = Ratio::from_decimal(baseline);
    if baseline.is_zero() {
        return None;
    }
    Ratio::from_decimal(followup).checked_div(baseline).ok()
}

/// log2 of the fold change, a float by nature. `None` when either value is zero.
pub fn log2_fold_change(baseline: Decimal, followup: Decimal) -> Option<f64> {
    let fold = fold_change(baseline, followup)?;
    if fold.is_zero() {
        return None;
    }
    // log2(n/d) = log2(n) - log2(d): stays accurate when n and d are large.
    Some((fold.numerator() as f64).log2() - (fold.denominator() as f64).log2())
}

/// Change of one biomarker between two visits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BiomarkerChange {
    pub baseline: crate::exact::JsonNumber,
    pub followup: crate::exact::JsonNumber,
    /// Follow-up minus baseline.
    pub change: crate::exact::JsonNumber,
    /// Relative to baseline; null when the baseline is 0.
    pub percent_change: Option<Ratio>,
    /// Follow-up / baseline; null when the baseline is 0.
    pub fold_change: Option<Ratio>,
    /// log2 of the fold change; null when either value is 0.
    pub log2_fold_change: Option<f64>,
}

/// All change measures of a biomarker.
pub fn biomarker_change(baseline: Decimal, followup: Decimal) -> BiomarkerChange {
    BiomarkerChange {
        baseline: crate::exact::JsonNumber(baseline),
        followup: crate::exact::JsonNumber(followup),
        change: crate::exact::JsonNumber(followup - baseline),
        percent_change: percent_change(baseline, followup),
        fold_change: fold_change(baseline, followup),
        log2_fold_change: log2_fold_change(baseline, followup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn decimal(text: &str) -> Decimal {
        Decimal::from_str(text).expect("decimal")
    }

    fn ratio_text(value: Option<Ratio>) -> Option<String> {
        value
            .and_then(Ratio::to_display_decimal)
            .map(|shown| shown.to_string())
    }

    #[test]
    fn biomarker_changes() {
        fn check(
            baseline: &str,
            followup: &str,
            expected: (&str, Option<&str>, Option<&str>, Option<f64>),
        ) {
            let result = biomarker_change(decimal(baseline), decimal(followup));
            assert_eq!(
                result.change.0,
                decimal(expected.0),
                "change {baseline} -> {followup}"
            );
            assert_eq!(
                ratio_text(result.percent_change).as_deref(),
                expected.1,
                "percent {baseline} -> {followup}"
            );
            assert_eq!(
                ratio_text(result.fold_change).as_deref(),
                expected.2,
                "fold {baseline} -> {followup}"
            );
            match (result.log2_fold_change, expected.3) {
                (Some(actual), Some(wanted)) => {
                    assert!((actual - wanted).abs() < 1e-12, "log2 {actual} vs {wanted}")
                }
                (actual, wanted) => assert_eq!(actual, wanted, "log2 {baseline} -> {followup}"),
            }
        }
        check(
            "400",
            "100",
            ("-300", Some("-75"), Some("0.25"), Some(-2.0)),
        );
        check("100", "400", ("300", Some("300"), Some("4"), Some(2.0)));
        check("350.5", "350.5", ("0", Some("0"), Some("1"), Some(0.0)));
        check("0", "10", ("10", None, None, None));
        check("10", "0", ("-10", Some("-100"), Some("0"), None));
        check(
            "3",
            "1",
            (
                "-2",
                Some("-66.666667"),
                Some("0.333333"),
                Some((1.0f64 / 3.0).log2()),
            ),
        );
        check(
            "1.1",
            "0.6",
            (
                "-0.5",
                Some("-45.454545"),
                Some("0.545455"),
                Some((6.0f64 / 11.0).log2()),
            ),
        );
    }

    #[test]
    fn relative_improvement() {
        fn check(
            baseline: &str,
            followup: &str,
            higher_is_better: bool,
            expected: RelativeImprovement,
        ) {
            let actual = relative_improvement_pct(
                Ratio::from_decimal(decimal(baseline)),
                Ratio::from_decimal(decimal(followup)),
                higher_is_better,
            );
            assert_eq!(actual, Ok(expected), "{baseline} -> {followup}");
        }
        let percent =
            |n: i128, d: i128| RelativeImprovement::Percent(Ratio::new(n, d).expect("ratio"));
        check("1.0", "0.8", false, percent(20, 1));
        check("1.1", "0.6", false, percent(500, 11));
        check("5", "6", false, percent(-20, 1));
        check("60", "72", true, percent(20, 1));
        check("60", "45", true, percent(-25, 1));
        check("0", "0", false, RelativeImprovement::BaselineZeroUnchanged);
        check("0", "0.1", false, RelativeImprovement::BaselineZeroRose);
        check("0", "10", true, RelativeImprovement::BaselineZeroRose);
    }
}
