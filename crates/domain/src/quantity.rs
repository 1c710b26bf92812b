//! Exact decimal quantities: parsing JSON number text without binary floating point and checking a
//! value against a range and a maximum number of decimal places (docs/clinical.md#10-exact-arithmetic: inputs are decimals).

use crate::error::Problem;
use rust_decimal::Decimal;

/// The allowed range and precision of one kind of decimal input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecimalRule {
    pub min: Decimal,
    /// When true the minimum itself is not allowed (ULN > 0).
    pub min_exclusive: bool,
    pub max: Decimal,
    pub max_decimals: u32,
    pub unit: &'static str,
}

impl DecimalRule {
    pub fn allowed(&self) -> String {
        let lower = if self.min_exclusive {
            format!("greater than {}", self.min)
        } else {
            format!("from {}", self.min)
        };
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        let decimals = match self.max_decimals {
            0 => "an integer".to_string(),
            1 => "at most 1 decimal place".to_string(),
            n => format!("at most {n} decimal places"),
        };
        format!("{lower} to {}{unit}, {decimals}", self.max)
    }

    /// Checks range and precision; trailing zeros do not count as precision (`6.00` is `6`).
    pub fn check(&self, value: Decimal) -> Result<Decimal, Problem> {
        let normalized = value.normalize();
        let below = if self.min_exclusive {
            normalized <= self.min
        } else {
            normalized < self.min
        };
        if below || normalized > self.max {
            return Err(Problem::OutOfRange {
                value: normalized.to_string(),
                allowed: self.allowed(),
            });
        }
        if normalized.scale() > self.max_decimals {
            return Err(Problem::TooPrecise {
                value: normalized.to_string(),
                max_decimals: self.max_decimals,
                allowed: self.allowed(),
            });
        }
        Ok(normalized)
    }
}

/// Parses the text of a JSON number exactly: `0.6` is six tenths, `6e-1` too.
pub fn parse_exact_decimal(text: &str) -> Result<Decimal, Problem> {
    let not_representable = || Problem::NotRepresentable {
        value: text.to_string(),
        allowed: "a finite decimal with at most 28 significant digits".to_string(),
    };
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).map_err(|_| not_representable())
    } else {
        Decimal::from_str_exact(text).map_err(|_| not_representable())
    }
}
