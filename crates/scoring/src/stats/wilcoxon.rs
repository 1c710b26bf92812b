//! The Wilcoxon signed-rank test on paired differences: exact null distribution for small samples
//! without ties, normal approximation with tie correction otherwise.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use super::{StatsError, check_finite};

/// Largest number of non-zero differences for which [`WilcoxonMethod::Auto`] uses the exact
/// distribution (scipy's `method='auto'` threshold, scipy >= 1.9).
pub const EXACT_AUTO_MAX_N: usize = 50;

/// Largest number of non-zero differences for which [`WilcoxonMethod::Exact`] may be forced. The exact
/// distribution costs O(n^3) time; beyond this the normal approximation is accurate anyway.
pub const EXACT_MAX_N: usize = 200;

/// How to obtain the p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonMethod {
    /// Exact when there are at most [`EXACT_AUTO_MAX_N`] non-zero differences and no ties among their
    /// absolute values; the normal approximation otherwise (docs/clinical.md#9-cohort-statistics).
    #[default]
    Auto,
    /// Always exact; ties are [`StatsError::ExactNotApplicable`] (the tie-free null distribution would
    /// be wrong for them).
    Exact,
    /// Always the normal approximation with tie correction.
    Normal,
}

/// Options of [`wilcoxon_with`]. The default is the documented one (docs/clinical.md) and scipy's: automatic method, no
/// continuity correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct WilcoxonOptions {
    pub method: WilcoxonMethod,
    /// Shift `W+ - mean` by 0.5 towards zero in the normal approximation (R's default `correct=TRUE`;
    /// scipy's default is `correction=False`, and so is ours). Ignored by the exact method.
    pub continuity_correction: bool,
}

/// A two-sided Wilcoxon signed-rank test of "the differences are symmetric about zero".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WilcoxonTest {
    /// `"wilcoxon-exact"` or `"wilcoxon-normal"`: which p-value this is.
    pub method: &'static str,
    /// Always `"two-sided"`.
    pub alternative: &'static str,
    /// Always `"wilcox"`: zero differences are dropped before ranking (Wilcoxon 1945; scipy's default
    /// `zero_method='wilcox'`).
    pub zero_method: &'static str,
    /// Whether a continuity correction was applied (only ever with the normal method).
    pub continuity_correction: bool,
    /// All differences given.
    pub n: usize,
    /// Differences equal to zero (dropped).
    pub n_zero: usize,
    /// Differences ranked: `n - n_zero`.
    pub n_used: usize,
    /// Whether any absolute non-zero differences are tied (mid-ranks used).
    pub ties: bool,
    /// Sum of the ranks of the positive differences.
    pub w_plus: f64,
    /// Sum of the ranks of the negative differences.
    pub w_minus: f64,
    /// `min(W+, W-)`, the statistic scipy reports for the two-sided test.
    pub statistic: f64,
    /// Standardised `W+` of the normal approximation (after any continuity correction); `None` for the
    /// exact method. Positive when the differences are mostly positive.
    pub z: Option<f64>,
    pub p_value: f64,
}

/// [`wilcoxon_with`] with the default options.
pub fn wilcoxon(differences: &[f64]) -> Result<WilcoxonTest, StatsError> {
    wilcoxon_with(differences, WilcoxonOptions::default())
}

/// The signed-rank test of Wilcoxon (1945), "Individual comparisons by ranking methods", Biometrics
/// Bulletin 1:80-83, two-sided, on paired differences (see
/// [`paired_differences`](super::paired_differences)).
///
/// Conventions (each recorded in the result):
/// - Zero differences are dropped and the rest ranked by absolute value, ties getting mid-ranks
///   (`zero_method='wilcox'` of `scipy.stats.wilcoxon`). Ties are exact `f64` equality.
/// - Exact: the null distribution of `W+` over the `2^n` equally likely sign patterns, by counting
///   subsets of `{1..n}` per rank sum; `p = min(1, 2 min(P(W+ <= w), P(W+ >= w)))` as in scipy. With
///   n = 10 the smallest possible p is `2/1024` (docs/clinical.md#9-cohort-statistics).
/// - Normal: `z = (W+ - n(n+1)/4) / sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48)` over tie groups of size t
///   (Hollander & Wolfe, Nonparametric Statistical Methods, 3.1), `p = 2 P(Z > |z|)`, without continuity
///   correction unless asked for. This is scipy's `method='asymptotic'` (called `'approx'` before 1.9).
/// - [`WilcoxonMethod::Auto`] chooses exact when at most [`EXACT_AUTO_MAX_N`] differences are non-zero
///   and none are tied. scipy 1.17's `method='auto'` is the same rule except with zeros or ties among at
///   most 13 differences, where it runs an exact sign-flip permutation test instead, and with zeros among
///   14..50 differences, where it uses the normal approximation; we follow the documented rule
///   (docs/clinical.md#9-cohort-statistics: exact for small n without ties, normal approximation with
///   tie correction otherwise) and decide after dropping zeros.
///
/// All differences zero is [`StatsError::AllZero`]; empty input is [`StatsError::Empty`].
pub fn wilcoxon_with(
    differences: &[f64],
    options: WilcoxonOptions,
) -> Result<WilcoxonTest, StatsError> {
    if differences.is_empty() {
        return Err(StatsError::Empty);
    }
    check_finite(differences)?;
    let n = differences.len();
    let mut nonzero: Vec<f64> = differences.iter().copied().filter(|&d| d != 0.0).collect();
    let n_used = nonzero.len();
    if n_used == 0 {
        return Err(StatsError::AllZero { n });
    }
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));

    // Mid-ranks over runs of equal absolute value; remember the run lengths for the tie correction.
    let (mut w_plus, mut w_minus) = (0.0, 0.0);
    let mut tie_sizes = Vec::new();
    let mut start = 0;
    while start < n_used {
        let mut end = start + 1;
        while end < n_used && nonzero[end].abs() == nonzero[start].abs() {
            end += 1;
        }
        // Ranks start+1 ..= end, averaged.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &d in &nonzero[start..end] {
            if d > 0.0 {
                w_plus += rank;
            } else {
                w_minus += rank;
            }
        }
        if end - start > 1 {
            tie_sizes.push(end - start);
        }
        start = end;
    }
    let ties = !tie_sizes.is_empty();

    let exact = match options.method {
        WilcoxonMethod::Auto => !ties && n_used <= EXACT_AUTO_MAX_N,
        WilcoxonMethod::Normal => false,
        WilcoxonMethod::Exact if ties => {
            return Err(StatsError::ExactNotApplicable {
                why: format!(
                    "{} tied groups among the absolute differences",
                    tie_sizes.len()
                ),
            });
        }
        WilcoxonMethod::Exact if n_used > EXACT_MAX_N => {
            return Err(StatsError::ExactNotApplicable {
                why: format!("{n_used} non-zero differences exceed the limit of {EXACT_MAX_N}"),
            });
        }
        WilcoxonMethod::Exact => true,
    };

    let (method, z, p_value, correction) = if exact {
        // Without ties W+ is an integer sum of ranks.
        let p = exact_two_sided_p(n_used, w_plus.round() as usize);
        ("wilcoxon-exact", None, p, false)
    } else {
        let (z, p) = normal_two_sided(n_used, w_plus, &tie_sizes, options.continuity_correction)?;
        ("wilcoxon-normal", Some(z), p, options.continuity_correction)
    };

    Ok(WilcoxonTest {
        method,
        alternative: "two-sided",
        zero_method: "wilcox",
        continuity_correction: correction,
        n,
        n_zero: n - n_used,
        n_used,
        ties,
        w_plus,
        w_minus,
        statistic: w_plus.min(w_minus),
        z,
        p_value,
    })
}

/// Probability of each value 0..=n(n+1)/2 of `W+` under the null hypothesis for `n` untied ranks.
/// Each step adds rank k with probability 1/2 in or out; the entries are counts / 2^n, exact in binary
/// floating point while the counts fit in 53 bits (n <= 50 or so) and accurate to rounding beyond.
fn exact_null_distribution(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut p = vec![0.0; max + 1];
    p[0] = 1.0;
    for k in 1..=n {
        let top = k * (k + 1) / 2;
        for s in (0..=top).rev() {
            let with_k = if s >= k { p[s - k] } else { 0.0 };
            p[s] = 0.5 * (p[s] + with_k);
        }
    }
    p
}

/// Two-sided exact p-value of `W+ = w` with `n` untied non-zero differences.
fn exact_two_sided_p(n: usize, w: usize) -> f64 {
    let p = exact_null_distribution(n);
    let w = w.min(p.len() - 1);
    let cdf: f64 = p[..=w].iter().sum();
    let sf: f64 = p[w..].iter().sum();
    (2.0 * cdf.min(sf)).min(1.0)
}

/// Normal approximation with tie correction; returns (z, two-sided p).
fn normal_two_sided(
    n: usize,
    w_plus: f64,
    tie_sizes: &[usize],
    continuity_correction: bool,
) -> Result<(f64, f64), StatsError> {
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let tie_term: f64 = tie_sizes
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    // var > 0 for every n >= 1 even when all values tie: n(n+1)(2n+1)/24 > (n^3 - n)/48.
    let se = var.sqrt();
    let mut diff = w_plus - mean;
    if continuity_correction {
        diff -= 0.5 * sign(diff);
    }
    let z = diff / se;
    let normal = Normal::new(0.0, 1.0).map_err(|e| StatsError::Numerical {
        what: format!("standard normal: {e}"),
    })?;
    let p = (2.0 * normal.sf(z.abs())).min(1.0);
    Ok((z, p))
}

/// Sign with sign(0) = 0 (unlike `f64::signum`), as numpy's `sign` that scipy uses.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_null_distribution_sums_to_one_and_is_symmetric() {
        for n in [1, 2, 5, 10, 25, 50] {
            let p = exact_null_distribution(n);
            let total: f64 = p.iter().sum();
            assert!((total - 1.0).abs() < 1e-12, "n={n} total={total}");
            for s in 0..p.len() {
                assert_eq!(p[s], p[p.len() - 1 - s], "n={n} s={s}");
            }
        }
        // n = 3: sums 0,1,2,3,3,4,5,6 over 8 sign patterns.
        assert_eq!(
            exact_null_distribution(3),
            vec![0.125, 0.125, 0.125, 0.25, 0.125, 0.125, 0.125]
        );
    }
}
