//! Exact rational arithmetic for every band and threshold decision (spec section 8: with binary floats
//! PhGA 1.1 -> 0.6 cm is 5.000000000000001% and HAQ 1.0 -> 0.8 is 19.999999999999996%).
//!
//! [`Ratio`] holds `numerator / denominator` in `i128`, reduced, and compares without overflow (by
//! continued fractions), so a threshold test is exact for every value the domain types admit. Output
//! numbers are rounded for display only ([`Ratio::to_display_decimal`]), never for a decision.

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use std::cmp::Ordering;
use thiserror::Error;

/// Decimal places kept when an exact value that does not terminate is shown in JSON.
pub const DISPLAY_DECIMALS: u32 = 6;

/// An intermediate result left the `i128` range; the computation is reported as not computable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("exact arithmetic overflowed; the inputs are too large or too precise")]
pub struct Overflow;

/// An exact rational number with a positive denominator, in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ratio {
    numerator: i128,
    denominator: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    pub const ZERO: Ratio = Ratio {
        numerator: 0,
        denominator: 1,
    };

    /// `numerator / denominator`; `Err` for a zero denominator or `i128::MIN` (no exact negation).
    pub fn new(numerator: i128, denominator: i128) -> Result<Self, Overflow> {
        if denominator == 0 || numerator == i128::MIN || denominator == i128::MIN {
            return Err(Overflow);
        }
        let divisor = gcd(numerator, denominator).max(1);
        let sign = if denominator < 0 { -1 } else { 1 };
        Ok(Self {
            numerator: sign * numerator / divisor,
            denominator: sign * denominator / divisor,
        })
    }

    /// An integer.
    pub const fn integer(value: i64) -> Self {
        Self {
            numerator: value as i128,
            denominator: 1,
        }
    }

    /// A decimal, exactly (mantissa / 10^scale; a `Decimal` has at most 28 decimal places).
    pub fn from_decimal(value: Decimal) -> Self {
        let normalized = value.normalize();
        let denominator = 10_i128.pow(normalized.scale());
        // A Decimal's mantissa is below 2^96 and its scale at most 28, so `new` cannot fail here.
        Self::new(normalized.mantissa(), denominator).unwrap_or(Self::ZERO)
    }

    pub const fn numerator(self) -> i128 {
        self.numerator
    }

    pub const fn denominator(self) -> i128 {
        self.denominator
    }

    pub fn is_zero(self) -> bool {
        self.numerator == 0
    }

    pub fn is_negative(self) -> bool {
        self.numerator < 0
    }

    pub fn checked_add(self, other: Self) -> Result<Self, Overflow> {
        let left = self
            .numerator
            .checked_mul(other.denominator)
            .ok_or(Overflow)?;
        let right = other
            .numerator
            .checked_mul(self.denominator)
            .ok_or(Overflow)?;
        let denominator = self
            .denominator
            .checked_mul(other.denominator)
            .ok_or(Overflow)?;
        Self::new(left.checked_add(right).ok_or(Overflow)?, denominator)
    }

    pub fn checked_sub(self, other: Self) -> Result<Self, Overflow> {
        self.checked_add(Self {
            numerator: -other.numerator,
            denominator: other.denominator,
        })
    }

    pub fn checked_mul(self, other: Self) -> Result<Self, Overflow> {
        // Cross-reduce first to keep the products small.
        let first = gcd(self.numerator, other.denominator).max(1);
        let second = gcd(other.numerator, self.denominator).max(1);
        let numerator = (self.numerator / first)
            .checked_mul(other.numerator / second)
            .ok_or(Overflow)?;
        let denominator = (self.denominator / second)
            .checked_mul(other.denominator / first)
            .ok_or(Overflow)?;
        Self::new(numerator, denominator)
    }

    /// `self / other`; `Err` when `other` is zero.
    pub fn checked_div(self, other: Self) -> Result<Self, Overflow> {
        if other.numerator == 0 {
            return Err(Overflow);
        }
        self.checked_mul(Self::new(other.denominator, other.numerator)?)
    }

    /// The value rounded half away from zero to [`DISPLAY_DECIMALS`] places, for output only.
    /// `None` if it does not fit a `Decimal`.
    pub fn to_display_decimal(self) -> Option<Decimal> {
        let whole = self.numerator / self.denominator;
        let remainder = self.numerator % self.denominator;
        let scale = 10_i128.pow(DISPLAY_DECIMALS);
        // remainder/denominator in [0, 1) scaled to DISPLAY_DECIMALS places, rounded half away from zero.
        let scaled = remainder.checked_mul(scale)?;
        let mut fraction = scaled / self.denominator;
        let rest = (scaled % self.denominator).abs();
        if rest.checked_mul(2)? >= self.denominator {
            fraction += if self.numerator < 0 { -1 } else { 1 };
        }
        let total = whole.checked_mul(scale)?.checked_add(fraction)?;
        Decimal::try_from_i128_with_scale(total, DISPLAY_DECIMALS)
            .ok()
            .map(|value| value.normalize())
    }

    /// The value as a float, for outputs that are floats by nature (log2 fold change).
    pub fn to_f64(self) -> f64 {
        self.numerator as f64 / self.denominator as f64
    }
}

impl Ord for Ratio {
    /// Exact comparison by continued-fraction expansion: no products, so no overflow.
    fn cmp(&self, other: &Self) -> Ordering {
        let (mut a, mut b, mut c, mut d) = (
            self.numerator,
            self.denominator,
            other.numerator,
            other.denominator,
        );
        let mut flipped = false;
        loop {
            let (whole_left, whole_right) = (a.div_euclid(b), c.div_euclid(d));
            if whole_left != whole_right {
                let order = whole_left.cmp(&whole_right);
                return if flipped { order.reverse() } else { order };
            }
            let (rest_left, rest_right) = (a.rem_euclid(b), c.rem_euclid(d));
            let order = match (rest_left == 0, rest_right == 0) {
                (true, true) => return Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => {
                    // rest_left/b vs rest_right/d  <=>  d/rest_right vs b/rest_left
                    (a, b, c, d) = (b, rest_left, d, rest_right);
                    flipped = !flipped;
                    continue;
                }
            };
            return if flipped { order.reverse() } else { order };
        }
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Ratio {
    /// As a JSON number rounded to [`DISPLAY_DECIMALS`] places (null if it cannot be shown).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_display_decimal() {
            Some(value) => JsonNumber(value).serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}

/// A decimal written as a JSON number: integers without a fraction (`60`, not `60.0`), others with
/// their shortest exact digits (`2.25`). Values here have at most 15 significant digits, which a
/// binary64 round-trips, so the printed digits are the decimal's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonNumber(pub Decimal);

impl Serialize for JsonNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0.normalize();
        if value.scale() == 0
            && let Ok(integer) = i64::try_from(value.mantissa())
        {
            return serializer.serialize_i64(integer);
        }
        let text = value.to_string();
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => serializer.serialize_f64(float),
            _ => serializer.serialize_str(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn ratio(n: i128, d: i128) -> Ratio {
        Ratio::new(n, d).expect("valid ratio")
    }

    #[test]
    fn compares_exactly() {
        fn check(left: Ratio, right: Ratio, expected: Ordering) {
            assert_eq!(left.cmp(&right), expected, "{left:?} vs {right:?}");
            assert_eq!(
                right.cmp(&left),
                expected.reverse(),
                "{right:?} vs {left:?}"
            );
        }
        check(ratio(1, 3), ratio(1, 3), Ordering::Equal);
        check(ratio(2, 6), ratio(1, 3), Ordering::Equal);
        check(ratio(1, 3), ratio(1, 2), Ordering::Less);
        check(ratio(-1, 3), ratio(1, 3), Ordering::Less);
        check(ratio(-1, 2), ratio(-1, 3), Ordering::Less);
        check(
            ratio(5, 1),
            ratio(49_999_999, 10_000_000),
            Ordering::Greater,
        );
        check(
            ratio(i128::MAX, 3),
            ratio(i128::MAX - 1, 3),
            Ordering::Greater,
        );
        check(
            ratio(i128::MAX, i128::MAX - 1),
            ratio(i128::MAX - 1, i128::MAX - 2),
            Ordering::Less,
        );
        check(Ratio::ZERO, ratio(0, 7), Ordering::Equal);
    }

    #[test]
    fn displays_rounded_half_away_from_zero() {
        fn check(value: Ratio, expected: &str) {
            let shown = value.to_display_decimal().expect("fits");
            assert_eq!(
                shown,
                Decimal::from_str(expected).expect("decimal"),
                "{value:?}"
            );
        }
        check(ratio(1, 3), "0.333333");
        check(ratio(2, 3), "0.666667");
        check(ratio(-2, 3), "-0.666667");
        check(ratio(9, 4), "2.25");
        check(ratio(-9, 4), "-2.25");
        check(ratio(1, 2_000_000), "0.000001");
        check(ratio(-1, 2_000_000), "-0.000001");
        check(ratio(100, 1), "100");
    }

    #[test]
    fn writes_json_numbers_without_float_noise() {
        fn check(value: &str, expected: &str) {
            let number = JsonNumber(Decimal::from_str(value).expect("decimal"));
            assert_eq!(serde_json::to_string(&number).expect("json"), expected);
        }
        check("60", "60");
        check("60.0", "60");
        check("2.25", "2.25");
        check("0.6", "0.6");
        check("-12", "-12");
        check("67.5", "67.5");
        check("33.333333", "33.333333");
    }

    proptest! {
        #[test]
        fn comparison_agrees_with_cross_multiplication(a in -10_000i128..10_000, b in 1i128..10_000, c in -10_000i128..10_000, d in 1i128..10_000) {
            prop_assert_eq!(ratio(a, b).cmp(&ratio(c, d)), (a * d).cmp(&(c * b)));
        }

        #[test]
        fn arithmetic_is_exact(a in -10_000i128..10_000, b in 1i128..10_000, c in -10_000i128..10_000, d in 1i128..10_000) {
            let sum = ratio(a, b).checked_add(ratio(c, d)).expect("no overflow");
            prop_assert_eq!(sum, ratio(a * d + c * b, b * d));
            let product = ratio(a, b).checked_mul(ratio(c, d)).expect("no overflow");
            prop_assert_eq!(product, ratio(a * c, b * d));
        }
    }
}
