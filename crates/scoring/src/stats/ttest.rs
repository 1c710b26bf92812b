//! The paired (one-sample on differences) Student t-test with the confidence interval of the mean
//! difference.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{CONFIDENCE_LEVEL, StatsError, bisect, check_finite, check_level, mean, sample_sd};

/// A two-sided paired t-test of "mean difference = 0".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedTTest {
    /// Always `"paired-t"`.
    pub method: &'static str,
    /// Always `"two-sided"`.
    pub alternative: &'static str,
    pub n: usize,
    /// Degrees of freedom, n - 1.
    pub df: f64,
    pub mean_difference: f64,
    /// SD of the differences (n - 1 denominator).
    pub sd_difference: f64,
    /// Standard error of the mean difference, SD / sqrt(n).
    pub standard_error: f64,
    pub t: f64,
    pub p_value: f64,
    pub confidence_level: f64,
    /// Confidence interval of the mean difference.
    pub ci_lower: f64,
    pub ci_upper: f64,
}

/// [`paired_t_test_with_level`] at 95%.
pub fn paired_t_test(differences: &[f64]) -> Result<PairedTTest, StatsError> {
    paired_t_test_with_level(differences, CONFIDENCE_LEVEL)
}

/// Student's (1908) t-test on paired differences (make them with
/// [`paired_differences`](super::paired_differences)): `t = mean / (sd / sqrt n)` on `n - 1` degrees of
/// freedom, two-sided `p = 2 P(T > |t|)`, and the interval `mean +/- t(1 - alpha/2, n - 1) sd / sqrt n`.
/// Matches `scipy.stats.ttest_rel(after, before)` and its `confidence_interval(level)`.
///
/// Needs n >= 2 ([`StatsError::TooFew`]). When every difference is equal the standard deviation is zero
/// and t is undefined (0/0) or infinite; that is [`StatsError::ZeroVariance`], not a p-value of 0 or NaN.
pub fn paired_t_test_with_level(
    differences: &[f64],
    level: f64,
) -> Result<PairedTTest, StatsError> {
    check_level(level)?;
    if differences.is_empty() {
        return Err(StatsError::Empty);
    }
    check_finite(differences)?;
    let n = differences.len();
    let m = mean(differences);
    let Some(sd) = sample_sd(differences, m) else {
        return Err(StatsError::TooFew {
            procedure: "paired t-test",
            needed: 2,
            got: n,
        });
    };
    // Exact equality, not a tolerance: any spread at all gives a finite t, as in scipy.
    if differences.iter().all(|&d| d == differences[0]) || sd == 0.0 {
        return Err(StatsError::ZeroVariance {
            value: differences[0],
        });
    }
    let df = (n - 1) as f64;
    let se = sd / (n as f64).sqrt();
    let t = m / se;
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|e| StatsError::Numerical {
        what: format!("Student t with {df} df: {e}"),
    })?;
    // sf(|t|) is computed from the regularised incomplete beta directly, without 1 - cdf cancellation,
    // so tiny p-values keep their relative precision.
    let p_value = (2.0 * dist.sf(t.abs())).min(1.0);
    let crit = t_critical(&dist, (1.0 - level) / 2.0)?;
    Ok(PairedTTest {
        method: "paired-t",
        alternative: "two-sided",
        n,
        df,
        mean_difference: m,
        sd_difference: sd,
        standard_error: se,
        t,
        p_value,
        confidence_level: level,
        ci_lower: m - crit * se,
        ci_upper: m + crit * se,
    })
}

/// The upper `tail` quantile of Student t: the `t > 0` with `P(T > t) = tail`, by bisection on the
/// survival function (statrs' `inverse_cdf` drifts by ~1e-6 relative at 10^5 degrees of freedom).
fn t_critical(dist: &StudentsT, tail: f64) -> Result<f64, StatsError> {
    // Bracket: double the upper end until its tail is below the target (t(0.9995, 1 df) is ~637).
    let mut hi = 2.0;
    while dist.sf(hi) > tail {
        hi *= 2.0;
        if !hi.is_finite() {
            return Err(StatsError::Numerical {
                what: format!("no finite t quantile for tail {tail}"),
            });
        }
    }
    bisect(0.0, hi, tail, false, |t| Ok(dist.sf(t)))
}
