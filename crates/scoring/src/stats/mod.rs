//! Cohort statistics (docs/clinical.md#9-cohort-statistics): responder proportions with exact Clopper-Pearson confidence
//! intervals, the paired t-test, the Wilcoxon signed-rank test and descriptive summaries.
//!
//! These are estimates, so unlike band and threshold decisions they use binary floating point
//! (ARCHITECTURE.md). Every function is pure: values in, a plain `serde::Serialize` result out, with a
//! `method` field naming the procedure and its conventions so that a statistician can check any number
//! against another package. Inputs that make a statistic meaningless (no participants, NaN, all
//! differences equal, ...) are [`StatsError`] values that say why; nothing here panics on data.
//!
//! Distribution functions come from `statrs` 0.18: `StudentsT::sf`, `Normal::sf` and the regularised
//! incomplete beta function. Quantiles (Clopper-Pearson limits, the t critical value) are found by
//! bisection on those CDFs rather than with statrs' `inverse_cdf`, which loses accuracy silently for
//! large parameters. The reference implementation for every convention is scipy.stats (1.17): the
//! test suite runs scipy on the same data and compares to 1e-9 relative
//! (`crates/scoring/tests/stats_scipy.rs`).
//!
//! Conventions, in one place:
//! - Paired differences are `after - before` (follow-up minus baseline), see [`paired_differences`];
//!   this is `scipy.stats.ttest_rel(after, before)`.
//! - Confidence level is 95% unless a `_with_level` function is used.
//! - Quartiles use linear interpolation between order statistics, Hyndman & Fan (1996) type 7
//!   (numpy's and R's default).
//! - Wilcoxon: zero differences are dropped (Wilcoxon 1945, scipy's `zero_method='wilcox'`), no
//!   continuity correction by default (scipy's `correction=False`); see [`wilcoxon`] for when the exact
//!   distribution is used.

mod cohort;
mod descriptive;
mod proportion;
mod ttest;
mod wilcoxon;

pub use cohort::{Outcome, PairedComparison, paired_comparison};
pub use descriptive::{Summary, summarize};
pub use proportion::{Proportion, clopper_pearson, responder_proportion};
pub use ttest::{PairedTTest, paired_t_test, paired_t_test_with_level};
pub use wilcoxon::{
    EXACT_AUTO_MAX_N, EXACT_MAX_N, WilcoxonMethod, WilcoxonOptions, WilcoxonTest, wilcoxon,
    wilcoxon_with,
};

use serde::Serialize;

/// The default two-sided confidence level of every interval here.
pub const CONFIDENCE_LEVEL: f64 = 0.95;

/// Why a statistic could not be computed. The `Display` text is meant for a cohort table's
/// "not evaluable" cell; the serialised form carries a stable `reason` code.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StatsError {
    /// No observations at all (an empty cohort or visit).
    #[error("not evaluable: no observations")]
    Empty,
    /// Fewer observations than the procedure needs.
    #[error("not evaluable: {procedure} needs at least {needed} observations, got {got}")]
    TooFew {
        procedure: &'static str,
        needed: usize,
        got: usize,
    },
    /// An input was NaN or infinite: always a data error upstream, never silently dropped.
    #[error("invalid input: value at index {index} is not finite")]
    NonFinite { index: usize },
    /// Before and after series of different lengths.
    #[error("invalid input: {before} values before but {after} after")]
    LengthMismatch { before: usize, after: usize },
    /// More responders than participants.
    #[error("invalid input: {responders} responders out of {n}")]
    RespondersExceedN { responders: u64, n: u64 },
    /// A confidence level outside (0, 1).
    #[error("invalid input: confidence level {level} is not in (0, 1)")]
    InvalidLevel { level: f64 },
    /// The responder denominator is zero.
    #[error("not evaluable: no evaluable participants (N = 0)")]
    NoParticipants,
    /// Every paired difference is the same value, so the t statistic is 0/0 or x/0.
    #[error("not evaluable: all differences equal ({value}), the standard deviation is zero")]
    ZeroVariance { value: f64 },
    /// Every difference is zero, so the signed-rank test has nothing to rank.
    #[error("not evaluable: all {n} differences are zero")]
    AllZero { n: usize },
    /// The exact Wilcoxon distribution was requested but does not apply.
    #[error("not evaluable exactly: {why}")]
    ExactNotApplicable { why: String },
    /// A distribution could not be constructed; unreachable for valid inputs, reported rather than
    /// panicking.
    #[error("numerical failure: {what}")]
    Numerical { what: String },
}

impl StatsError {
    /// A stable, machine-readable code (the serialised `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            StatsError::Empty => "empty",
            StatsError::TooFew { .. } => "too_few",
            StatsError::NonFinite { .. } => "non_finite",
            StatsError::LengthMismatch { .. } => "length_mismatch",
            StatsError::RespondersExceedN { .. } => "responders_exceed_n",
            StatsError::InvalidLevel { .. } => "invalid_level",
            StatsError::NoParticipants => "no_participants",
            StatsError::ZeroVariance { .. } => "zero_variance",
            StatsError::AllZero { .. } => "all_zero",
            StatsError::ExactNotApplicable { .. } => "exact_not_applicable",
            StatsError::Numerical { .. } => "numerical",
        }
    }
}

/// Paired differences `after[i] - before[i]` (follow-up minus baseline, so a fall in CDASI is
/// negative). Compute the differences exactly (e.g. with `rust_decimal`) and convert when the inputs
/// are decimals: the Wilcoxon test's tie detection compares the differences for exact equality, and
/// `1.1 - 0.6 != 0.5` in binary floating point.
pub fn paired_differences(before: &[f64], after: &[f64]) -> Result<Vec<f64>, StatsError> {
    if before.len() != after.len() {
        return Err(StatsError::LengthMismatch {
            before: before.len(),
            after: after.len(),
        });
    }
    check_finite(before)?;
    check_finite(after)?;
    Ok(after.iter().zip(before).map(|(a, b)| a - b).collect())
}

/// Solves `f(x) = target` for a continuous monotone `f` on `[lo, hi]` by bisection down to adjacent
/// floating-point numbers (at most 2100 halvings, enough to cross every finite f64 gap). Used instead
/// of statrs' `inverse_cdf` for the beta and Student t quantiles, which lose accuracy silently for
/// extreme parameters (e.g. a beta quantile off by 1e-3 relative at n = 10^6, a t quantile off by 1e-6
/// at 10^5 degrees of freedom); bisection is only as accurate as `f` itself, which statrs computes well.
fn bisect(
    mut lo: f64,
    mut hi: f64,
    target: f64,
    increasing: bool,
    f: impl Fn(f64) -> Result<f64, StatsError>,
) -> Result<f64, StatsError> {
    for _ in 0..2100 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        let below = f(mid)? < target;
        if below == increasing {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo + (hi - lo) / 2.0)
}

/// Rejects NaN and infinities, naming the first offending index.
fn check_finite(values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFinite { index }),
        None => Ok(()),
    }
}

/// Rejects confidence levels outside the open interval (0, 1) (NaN included).
fn check_level(level: f64) -> Result<(), StatsError> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidLevel { level })
    }
}

/// Arithmetic mean, two-pass corrected (the second pass removes most of the rounding error of the
/// first; Higham 2002, section 1.9) so results agree with numpy's pairwise summation to ~1e-15.
fn mean(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let m = values.iter().sum::<f64>() / n;
    m + values.iter().map(|v| v - m).sum::<f64>() / n
}

/// Sample standard deviation with the n - 1 denominator, two-pass; `None` for n < 2.
fn sample_sd(values: &[f64], mean: f64) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    Some((ss / (values.len() - 1) as f64).sqrt())
}
