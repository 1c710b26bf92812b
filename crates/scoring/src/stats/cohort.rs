//! Cohort-table building blocks: a statistic or the reason it is not evaluable, and the full paired
//! comparison of one measure (baseline, visit, change, both tests) that docs/clinical.md#9-cohort-statistics describes.

use serde::Serialize;

use super::{
    PairedTTest, StatsError, Summary, WilcoxonOptions, WilcoxonTest, paired_differences,
    paired_t_test, summarize, wilcoxon_with,
};

/// A statistic, or why it could not be computed. Serialises as the statistic's own fields plus
/// `"status": "evaluable"`, or as `{"status": "not_evaluable", "reason": CODE, "message": TEXT}`, so a
/// table never shows a missing test as "not significant".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome<T> {
    Evaluable(T),
    NotEvaluable {
        /// [`StatsError::code`].
        reason: &'static str,
        /// [`StatsError`]'s `Display` text.
        message: String,
    },
}

impl<T> Outcome<T> {
    /// The statistic, if evaluable.
    pub fn value(&self) -> Option<&T> {
        match self {
            Outcome::Evaluable(v) => Some(v),
            Outcome::NotEvaluable { .. } => None,
        }
    }
}

impl<T> From<Result<T, StatsError>> for Outcome<T> {
    fn from(result: Result<T, StatsError>) -> Self {
        match result {
            Ok(v) => Outcome::Evaluable(v),
            Err(e) => Outcome::NotEvaluable {
                reason: e.code(),
                message: e.to_string(),
            },
        }
    }
}

/// One continuous measure over the participants with both a baseline and a visit value: n, mean +/- SD,
/// median [IQR] at baseline, at the visit and of the change, the paired t-test and the Wilcoxon
/// signed-rank test on the change (docs/clinical.md#9-cohort-statistics).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedComparison {
    /// Pairs compared (participants with both values).
    pub n_pairs: usize,
    pub baseline: Outcome<Summary>,
    pub followup: Outcome<Summary>,
    /// Of `followup - baseline`.
    pub change: Outcome<Summary>,
    pub t_test: Outcome<PairedTTest>,
    pub wilcoxon: Outcome<WilcoxonTest>,
}

/// Compares `before[i]` with `after[i]` (the same participant; drop participants missing either value
/// before calling). Mismatched lengths or non-finite values are an error for the whole comparison;
/// otherwise each part is evaluated on its own and says why when it cannot be.
pub fn paired_comparison(
    before: &[f64],
    after: &[f64],
    wilcoxon_options: WilcoxonOptions,
) -> Result<PairedComparison, StatsError> {
    let change = paired_differences(before, after)?;
    Ok(PairedComparison {
        n_pairs: change.len(),
        baseline: summarize(before).into(),
        followup: summarize(after).into(),
        change: summarize(&change).into(),
        t_test: paired_t_test(&change).into(),
        wilcoxon: wilcoxon_with(&change, wilcoxon_options).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_paired_comparison_serialises_not_evaluable_parts() {
        let c = paired_comparison(&[3.0, 4.0], &[5.0, 6.0], WilcoxonOptions::default()).unwrap();
        assert_eq!(c.n_pairs, 2);
        assert!(c.wilcoxon.value().is_some());
        assert_eq!(
            c.t_test,
            Outcome::NotEvaluable {
                reason: "zero_variance",
                message: "not evaluable: all differences equal (2), the standard deviation is zero"
                    .to_owned()
            }
        );
    }
}
