//! Glucocorticoid dose in mg/day prednisone-equivalent (BIRD's prednisone-free response;
//! docs/clinical.md#8-glucocorticoid-dose-and-prednisone-free-response).

use crate::error::Problem;
use crate::quantity::DecimalRule;
use rust_decimal::Decimal;

/// 0 to 2000 mg/day (above any pulse), at most 2 decimals.
const PREDNISONE_MG_PER_DAY: DecimalRule = DecimalRule {
    min: Decimal::ZERO,
    min_exclusive: false,
    max: Decimal::from_parts(2000, 0, 0, false, 0),
    max_decimals: 2,
    unit: "mg/day",
};

/// A daily dose in mg prednisone-equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrednisoneEquivalentDose(Decimal);

impl PrednisoneEquivalentDose {
    pub const fn mg_per_day(self) -> Decimal {
        self.0
    }

    /// True for 0 mg/day.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl TryFrom<Decimal> for PrednisoneEquivalentDose {
    type Error = Problem;
    fn try_from(value: Decimal) -> Result<Self, Problem> {
        PREDNISONE_MG_PER_DAY.check(value).map(Self)
    }
}
