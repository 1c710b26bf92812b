//! Exact rational arithmetic for every band and threshold decision (docs/clinical.md#10-exact-arithmetic: with binary floats
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

fn gcd(a: i128, b: i128) -> i128 {
    let (a, b) = (a.unsigned_abs(), b.unsigned_abs());
    // Scores, sums and percentages keep every operand far below 2^64: there a 64-bit binary gcd
    // (shifts and subtractions) replaces the 128-bit remainders, which are library calls and were a
    // visible share of a replay's scoring time. The gcd is the same number either way.
    match (u64::try_from(a), u64::try_from(b)) {
        (Ok(a), Ok(b)) => i128::from(gcd_u64(a, b)),
        _ => gcd_u128(a, b) as i128,
    }
}

/// Stein's binary gcd; `gcd_u64(0, 0) == 0`.
fn gcd_u64(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            (a, b) = (b, a);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

fn gcd_u128(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `value / divisor` for an exact divisor, in 64-bit arithmetic when both fit (a hardware division
/// instead of a 128-bit library call); the quotient is the same.
fn divide(value: i128, divisor: i128) -> i128 {
    match (i64::try_from(value), i64::try_from(divisor)) {
        // i64::MIN / -1 is the one 64-bit quotient that does not fit; checked_div leaves it to i128.
        (Ok(v), Ok(d)) => match v.checked_div(d) {
            Some(q) => i128::from(q),
            None => value / divisor,
        },
        _ => value / divisor,
    }
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
            numerator: sign * divide(numerator, divisor),
            denominator: sign * divide(denominator, divisor),
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
        // `new` reduces by the gcd, trailing zeros included, so the decimal need not be normalised.
        let denominator = 10_i128.pow(value.scale());
        // A Decimal's mantissa is below 2^96 and its scale at most 28, so `new` cannot fail here.
        Self::new(value.mantissa(), denominator).unwrap_or(Self::ZERO)
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
        let numerator = divide(self.numerator, first)
            .checked_mul(divide(other.numerator, second))
            .ok_or(Overflow)?;
        let denominator = divide(self.denominator, second)
            .checked_mul(divide(other.denominator, first))
            .ok_or(Overflow)?;
        // Both operands are in lowest terms, so after the cross-reduction so is the product (a
        // factor shared by its numerator and denominator would divide one operand's numerator and
        // denominator), and its denominator is positive: no third gcd. A zero operand is 0/1, so a
        // zero product is 0/1 too.
        if numerator == i128::MIN {
            return Err(Overflow);
        }
        Ok(Self {
            numerator,
            denominator,
        })
    }

    /// `self / other`; `Err` when `other` is zero.
    pub fn checked_div(self, other: Self) -> Result<Self, Overflow> {
        if other.numerator == 0 {
            return Err(Overflow);
        }
        // The reciprocal of a ratio in lowest terms is in lowest terms: only the sign moves.
        let sign = other.numerator.signum();
        self.checked_mul(Self {
            numerator: sign * other.denominator,
            denominator: sign * other.numerator,
        })
    }

    /// The value rounded half away from zero to [`DISPLAY_DECIMALS`] places, for output only.
    /// `None` if it does not fit a `Decimal`.
    pub fn to_display_decimal(self) -> Option<Decimal> {
        Decimal::try_from_i128_with_scale(self.display_scaled()?, DISPLAY_DECIMALS)
            .ok()
            .map(|value| value.normalize())
    }

    /// The value times 10^[`DISPLAY_DECIMALS`], rounded half away from zero: the mantissa of
    /// [`Ratio::to_display_decimal`] before it is normalised. `None` on overflow.
    fn display_scaled(self) -> Option<i128> {
        let scale = 10_i128.pow(DISPLAY_DECIMALS);
        // The same steps in 64-bit arithmetic when nothing can leave it: |remainder| < denominator
        // < 2^43, so remainder * 10^6 < 2^63 (hardware divisions instead of 128-bit library calls).
        if let (Ok(numerator), Ok(denominator)) = (
            i64::try_from(self.numerator),
            i64::try_from(self.denominator),
        ) && denominator < 1 << 43
        {
            let whole = numerator / denominator;
            let scaled = (numerator % denominator) * 1_000_000;
            let mut fraction = scaled / denominator;
            if (scaled % denominator).abs() * 2 >= denominator {
                fraction += if numerator < 0 { -1 } else { 1 };
            }
            // |whole| < 2^63, so whole * 10^6 fits an i128 (the checked steps below never fail here).
            return Some(i128::from(whole) * scale + i128::from(fraction));
        }
        let whole = self.numerator / self.denominator;
        let remainder = self.numerator % self.denominator;
        // remainder/denominator in [0, 1) scaled to DISPLAY_DECIMALS places, rounded half away from zero.
        let scaled = remainder.checked_mul(scale)?;
        let mut fraction = scaled / self.denominator;
        let rest = (scaled % self.denominator).abs();
        if rest.checked_mul(2)? >= self.denominator {
            fraction += if self.numerator < 0 { -1 } else { 1 };
        }
        whole.checked_mul(scale)?.checked_add(fraction)
    }

    /// The value as a float, for outputs that are floats by nature (log2 fold change).
    pub fn to_f64(self) -> f64 {
        self.numerator as f64 / self.denominator as f64
    }
}

impl Ord for Ratio {
    /// Exact comparison by continued-fraction expansion: no products, so no overflow.
    fn cmp(&self, other: &Self) -> Ordering {
        // Denominators are positive, so a/b vs c/d is a*d vs c*b; with all four within 64 bits the
        // products fit an i128 and need no division at all (the usual case: scores and thresholds).
        if let (Ok(a), Ok(b), Ok(c), Ok(d)) = (
            i64::try_from(self.numerator),
            i64::try_from(self.denominator),
            i64::try_from(other.numerator),
            i64::try_from(other.denominator),
        ) {
            return (i128::from(a) * i128::from(d)).cmp(&(i128::from(c) * i128::from(b)));
        }
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
    /// As a JSON number rounded to [`DISPLAY_DECIMALS`] places (null if it cannot be shown): what
    /// [`JsonNumber`] writes for [`Ratio::to_display_decimal`], computed without the `Decimal` where
    /// the digits fit a binary64 exactly (a replay writes millions of these).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(scaled) = self.display_scaled() {
            let (mut mantissa, mut scale) = (scaled, DISPLAY_DECIMALS as usize);
            while scale > 0 && mantissa % 10 == 0 {
                mantissa /= 10;
                scale -= 1;
            }
            if scale == 0
                && let Ok(integer) = i64::try_from(mantissa)
            {
                return serializer.serialize_i64(integer);
            }
            if scale > 0 && mantissa.unsigned_abs() <= 1 << 53 {
                return serializer.serialize_f64(mantissa as f64 / EXACT_POWERS_OF_TEN[scale]);
            }
        }
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

/// Powers of ten that a binary64 holds exactly (10^22 is the largest: 5^22 < 2^53).
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl JsonNumber {
    /// The binary64 nearest to the decimal, without going through its text: when the mantissa and
    /// the power of ten are both exact in binary64, one IEEE division rounds correctly, so this is
    /// the value `text.parse::<f64>()` gives (Clinger's fast path). `None` outside that range.
    fn nearest_f64(value: Decimal) -> Option<f64> {
        let mantissa = value.mantissa();
        let power = *EXACT_POWERS_OF_TEN.get(usize::try_from(value.scale()).ok()?)?;
        // |mantissa| <= 2^53 converts exactly.
        (mantissa.unsigned_abs() <= 1 << 53).then(|| mantissa as f64 / power)
    }
}

impl Serialize for JsonNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0.normalize();
        if value.scale() == 0
            && let Ok(integer) = i64::try_from(value.mantissa())
        {
            return serializer.serialize_i64(integer);
        }
        // A replay serialises about a million of these: the text round trip below was most of it.
        if let Some(float) = Self::nearest_f64(value) {
            return serializer.serialize_f64(float);
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

    /// The 128-bit rounding the 64-bit fast path of `to_display_decimal` must reproduce.
    fn display_reference(value: Ratio) -> Option<Decimal> {
        let (numerator, denominator) = (value.numerator, value.denominator);
        let scale = 10_i128.pow(DISPLAY_DECIMALS);
        let whole = numerator / denominator;
        let scaled = (numerator % denominator).checked_mul(scale)?;
        let mut fraction = scaled / denominator;
        if (scaled % denominator).abs().checked_mul(2)? >= denominator {
            fraction += if numerator < 0 { -1 } else { 1 };
        }
        let total = whole.checked_mul(scale)?.checked_add(fraction)?;
        Decimal::try_from_i128_with_scale(total, DISPLAY_DECIMALS)
            .ok()
            .map(|value| value.normalize())
    }

    fn gcd_reference(mut a: i128, mut b: i128) -> i128 {
        a = a.abs();
        b = b.abs();
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }

    proptest! {
        #[test]
        fn ratios_serialise_as_their_display_decimal(n in any::<i64>(), d in 1i64..i64::MAX, big in -(1i128 << 100)..(1i128 << 100), small in 1i128..1000) {
            for ratio in [ratio(i128::from(n), i128::from(d)), ratio(i128::from(n % 100_000), i128::from(d % 1000 + 1)), ratio(big, small)] {
                let expected = match ratio.to_display_decimal() {
                    Some(value) => serde_json::to_string(&JsonNumber(value)),
                    None => serde_json::to_string(&()),
                }
                .expect("json");
                prop_assert_eq!(serde_json::to_string(&ratio).expect("json"), expected, "{:?}", ratio);
            }
        }

        #[test]
        fn json_numbers_without_text_are_the_parsed_text(mantissa in -(1i64 << 53)..=(1i64 << 53), scale in 0u32..=28) {
            let value = Decimal::from_i128_with_scale(i128::from(mantissa), scale).normalize();
            let parsed = value.to_string().parse::<f64>().expect("a decimal's text is a float");
            if let Some(float) = JsonNumber::nearest_f64(value) {
                prop_assert_eq!(float.to_bits(), parsed.to_bits(), "{}", value);
            } else {
                prop_assert!(value.scale() > 22, "{}", value);
            }
        }

        #[test]
        fn fast_paths_agree_with_128_bit_arithmetic(a in -(1i128 << 70)..(1i128 << 70), b in 1i128..(1i128 << 70), c in any::<i64>(), d in 1i64..i64::MAX, e in -(1i128 << 45)..(1i128 << 45)) {
            prop_assert_eq!(gcd(a, b), gcd_reference(a, b));
            prop_assert_eq!(gcd(i128::from(c), i128::from(d)), gcd_reference(i128::from(c), i128::from(d)));
            prop_assert_eq!(gcd(e, i128::from(d)), gcd_reference(e, i128::from(d)));
            prop_assert_eq!(gcd(0, e), gcd_reference(0, e));
            for value in [ratio(a, b), ratio(i128::from(c), i128::from(d)), ratio(e, i128::from(d)), ratio(i128::from(c), 1 << 43), ratio(e, (1 << 43) - 1)] {
                prop_assert_eq!(value.to_display_decimal(), display_reference(value));
            }
            let (x, y) = (ratio(i128::from(c), i128::from(d)), ratio(e, i128::from(d) / 3 + 1));
            prop_assert_eq!(x.cmp(&y), (x.numerator * y.denominator).cmp(&(y.numerator * x.denominator)));
        }

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
            if c != 0 {
                let quotient = ratio(a, b).checked_div(ratio(c, d)).expect("no overflow");
                prop_assert_eq!(quotient, ratio(a * d, b * c));
            } else {
                prop_assert_eq!(ratio(a, b).checked_div(ratio(c, d)), Err(Overflow));
            }
        }

        #[test]
        fn decimals_convert_to_the_reduced_ratio(mantissa in -(1i128 << 95)..(1i128 << 95), scale in 0u32..=28) {
            let value = Decimal::from_i128_with_scale(mantissa, scale);
            prop_assert_eq!(Ratio::from_decimal(value), ratio(mantissa, 10_i128.pow(scale)));
            prop_assert_eq!(Ratio::from_decimal(value), Ratio::from_decimal(value.normalize()));
        }
    }
}
