//! Responder proportions with the exact (Clopper-Pearson) confidence interval.

use serde::Serialize;
use statrs::function::beta::checked_beta_reg;

use super::{CONFIDENCE_LEVEL, StatsError, bisect, check_level};

/// A responder proportion `responders / n` with its two-sided exact confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proportion {
    /// Always `"clopper-pearson"`.
    pub method: &'static str,
    pub responders: u64,
    pub n: u64,
    /// `responders / n`.
    pub estimate: f64,
    pub confidence_level: f64,
    pub ci_lower: f64,
    pub ci_upper: f64,
}

impl Proportion {
    /// The usual table cell, `"3/10 (30.0%; 95% CI 6.7% to 65.2%)"`, percentages to `decimals`.
    pub fn display(&self, decimals: usize) -> String {
        format!(
            "{}/{} ({:.d$}%; {}% CI {:.d$}% to {:.d$}%)",
            self.responders,
            self.n,
            100.0 * self.estimate,
            // Rounded to 0.1 so that 0.9 prints as 90, not 90.00000000000001.
            (1000.0 * self.confidence_level).round() / 10.0,
            100.0 * self.ci_lower,
            100.0 * self.ci_upper,
            d = decimals
        )
    }
}

/// `responders / n` with the exact Clopper-Pearson 95% interval; see [`clopper_pearson`].
pub fn responder_proportion(responders: u64, n: u64) -> Result<Proportion, StatsError> {
    clopper_pearson(responders, n, CONFIDENCE_LEVEL)
}

/// The exact two-sided confidence interval for a binomial proportion of Clopper & Pearson (1934),
/// "The use of confidence or fiducial limits illustrated in the case of the binomial", Biometrika
/// 26:404-413, in its beta-quantile form: with `alpha = 1 - level`,
/// `lower = B(alpha/2; x, n-x+1)` and `upper = B(1-alpha/2; x+1, n-x)`, where `B(q; a, b)` is the
/// beta quantile. By convention `lower = 0` when `x = 0` and `upper = 1` when `x = n`; the other end
/// then has the closed form `(alpha/2)^(1/n)` (resp. `1 - (alpha/2)^(1/n)`), used directly.
/// Matches `scipy.stats.binomtest(x, n).proportion_ci(level, method='exact')` and R's `binom.test`.
///
/// `n = 0` is not evaluable ([`StatsError::NoParticipants`]); `x > n` is invalid.
pub fn clopper_pearson(responders: u64, n: u64, level: f64) -> Result<Proportion, StatsError> {
    check_level(level)?;
    if n == 0 {
        return Err(StatsError::NoParticipants);
    }
    if responders > n {
        return Err(StatsError::RespondersExceedN { responders, n });
    }
    let (x, nf) = (responders as f64, n as f64);
    let alpha = 1.0 - level;
    let ci_lower = if responders == 0 {
        0.0
    } else if responders == n {
        (alpha / 2.0).powf(1.0 / nf)
    } else {
        beta_quantile(x, nf - x + 1.0, alpha / 2.0)?
    };
    let ci_upper = if responders == n {
        1.0
    } else if responders == 0 {
        1.0 - (alpha / 2.0).powf(1.0 / nf)
    } else {
        beta_quantile(x + 1.0, nf - x, 1.0 - alpha / 2.0)?
    };
    Ok(Proportion {
        method: "clopper-pearson",
        responders,
        n,
        estimate: x / nf,
        confidence_level: level,
        ci_lower,
        ci_upper,
    })
}

/// The `q` quantile of the Beta(a, b) distribution: the `x` with `I_x(a, b) = q`, by bisection on statrs' regularised
/// incomplete beta (see `bisect` for why not `Beta::inverse_cdf`).
fn beta_quantile(a: f64, b: f64, q: f64) -> Result<f64, StatsError> {
    bisect(0.0, 1.0, q, true, |x| {
        checked_beta_reg(a, b, x).map_err(|e| StatsError::Numerical {
            what: format!("I_{x}({a}, {b}): {e}"),
        })
    })
}
