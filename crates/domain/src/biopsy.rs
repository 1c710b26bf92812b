//! Skin-biopsy STAT1 immunohistochemistry (STIR secondary outcome; docs/clinical.md#7-biomarkers-and-skin-biopsy): a semi-quantitative
//! score or the percent of positive cells. The kind travels with the value so the two never mix.

use crate::error::Problem;
use crate::quantity::DecimalRule;
use rust_decimal::Decimal;

/// Semi-quantitative IHC score 0-4, at most one decimal (a mean of readers) [D].
pub(crate) const STAT1_IHC_SCORE: DecimalRule = DecimalRule {
    min: Decimal::ZERO,
    min_exclusive: false,
    max: Decimal::from_parts(4, 0, 0, false, 0),
    max_decimals: 1,
    unit: "",
};

/// Percent of positive cells, 0-100 with at most one decimal.
pub(crate) const STAT1_PERCENT: DecimalRule = DecimalRule {
    min: Decimal::ZERO,
    min_exclusive: false,
    max: Decimal::ONE_HUNDRED,
    max_decimals: 1,
    unit: "%",
};

/// A STAT1 result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat1 {
    IhcScore(Decimal),
    PercentPositive(Decimal),
}

impl Stat1 {
    pub fn ihc_score(value: Decimal) -> Result<Self, Problem> {
        STAT1_IHC_SCORE.check(value).map(Stat1::IhcScore)
    }

    pub fn percent_positive(value: Decimal) -> Result<Self, Problem> {
        STAT1_PERCENT.check(value).map(Stat1::PercentPositive)
    }

    /// The kind's name in outputs.
    pub const fn kind(self) -> &'static str {
        match self {
            Stat1::IhcScore(_) => "ihc_score",
            Stat1::PercentPositive(_) => "percent_positive",
        }
    }

    pub const fn value(self) -> Decimal {
        match self {
            Stat1::IhcScore(value) | Stat1::PercentPositive(value) => value,
        }
    }
}
