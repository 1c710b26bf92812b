//! Descriptive summaries of a continuous measure: n, mean +/- SD, median [IQR].

use serde::Serialize;

use super::{StatsError, check_finite, mean, sample_sd};

/// n, mean, SD, median and quartiles of one sample (a visit's values or the paired changes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Always `"descriptive"`.
    pub method: &'static str,
    /// Always `"hyndman-fan-type-7"`: linear interpolation between order statistics.
    pub quantile_definition: &'static str,
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (denominator n - 1); `None` when n = 1.
    pub sd: Option<f64>,
    pub median: f64,
    /// First quartile (25th percentile).
    pub q1: f64,
    /// Third quartile (75th percentile).
    pub q3: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// The usual table cell, `"mean +/- SD, median [Q1, Q3]"`, rounded to `decimals`; the SD reads
    /// `NA` when n = 1.
    pub fn display(&self, decimals: usize) -> String {
        let sd = match self.sd {
            Some(sd) => format!("{sd:.decimals$}"),
            None => "NA".to_owned(),
        };
        format!(
            "{:.d$} +/- {sd}, {:.d$} [{:.d$}, {:.d$}]",
            self.mean,
            self.median,
            self.q1,
            self.q3,
            d = decimals
        )
    }
}

/// Summarises a sample. Quartiles and median use Hyndman & Fan (1996), "Sample quantiles in
/// statistical packages", Am Stat 50:361-365, definition 7: with sorted values `x[0..n]` and
/// `h = (n - 1) p`, `Q(p) = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h])`. This is the
/// default of `numpy.percentile` (`method='linear'`) and of R's `quantile`; other packages (SAS, SPSS)
/// default to other definitions, so small samples may differ from them.
///
/// Empty input is [`StatsError::Empty`]; NaN or infinity is [`StatsError::NonFinite`].
pub fn summarize(values: &[f64]) -> Result<Summary, StatsError> {
    if values.is_empty() {
        return Err(StatsError::Empty);
    }
    check_finite(values)?;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let m = mean(values);
    Ok(Summary {
        method: "descriptive",
        quantile_definition: "hyndman-fan-type-7",
        n: values.len(),
        mean: m,
        sd: sample_sd(values, m),
        median: quantile_type7(&sorted, 0.5),
        q1: quantile_type7(&sorted, 0.25),
        q3: quantile_type7(&sorted, 0.75),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
    })
}

/// Type-7 quantile of non-empty sorted data.
fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    match sorted.get(lo + 1) {
        Some(&hi) if frac > 0.0 => sorted[lo] + frac * (hi - sorted[lo]),
        _ => sorted[lo],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_type7_quartiles_of_one_to_four() {
        let s = summarize(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (1.75, 2.5, 3.25));
        assert_eq!(s.display(2), "2.50 +/- 1.29, 2.50 [1.75, 3.25]");
    }

    #[test]
    fn stats_single_value_has_no_sd() {
        let s = summarize(&[7.0]).unwrap();
        assert_eq!(s.sd, None);
        assert_eq!(s.display(1), "7.0 +/- NA, 7.0 [7.0, 7.0]");
    }
}
