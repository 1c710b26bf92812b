//! Small bounded integer scores (Kendall grades, HAQ items, CDASI items, Likert globals) as one
//! const-generic newtype, so every ordinal item is range-checked once, in one place.

use crate::error::Problem;
use rust_decimal::Decimal;

/// An integer score from 0 to `MAX` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedScore<const MAX: u8>(u8);

impl<const MAX: u8> BoundedScore<MAX> {
    /// The largest value the score can take.
    pub const MAX: u8 = MAX;

    /// The score as an integer.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Describes the allowed values for error messages.
    pub fn allowed() -> String {
        format!("an integer from 0 to {MAX}")
    }

    /// Validates an exact decimal (JSON number): an integer from 0 to `MAX`. `8.0` is accepted as 8.
    pub fn from_decimal(value: Decimal) -> Result<Self, Problem> {
        let normalized = value.normalize();
        if normalized.scale() != 0 {
            return Err(Problem::TooPrecise {
                value: normalized.to_string(),
                max_decimals: 0,
                allowed: Self::allowed(),
            });
        }
        if normalized < Decimal::ZERO || normalized > Decimal::from(MAX) {
            return Err(Problem::OutOfRange {
                value: normalized.to_string(),
                allowed: Self::allowed(),
            });
        }
        let as_u8 = u8::try_from(normalized.mantissa()).map_err(|_| Problem::OutOfRange {
            value: normalized.to_string(),
            allowed: Self::allowed(),
        })?;
        Ok(Self(as_u8))
    }
}

impl<const MAX: u8> TryFrom<u8> for BoundedScore<MAX> {
    type Error = Problem;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        if value > MAX {
            return Err(Problem::OutOfRange {
                value: value.to_string(),
                allowed: Self::allowed(),
            });
        }
        Ok(Self(value))
    }
}

impl<const MAX: u8> From<BoundedScore<MAX>> for u8 {
    fn from(score: BoundedScore<MAX>) -> u8 {
        score.0
    }
}
