//! IBM System/360 64-bit hexadecimal floating point, the number encoding of SAS XPORT v5, computed
//! exactly from a decimal or integer value.
//!
//! Layout (TS-140, "Numeric Data Fields"): bit 63 is the sign, bits 62-56 an excess-64 exponent of 16,
//! bits 55-0 a fraction `f` read as `0.f` in hexadecimal; the value is `(-1)^s × 0.f × 16^(e-64)`. A
//! normalised fraction has a non-zero first hexadecimal digit, so it keeps 53 to 56 significant bits.
//! Zero is eight zero bytes.
//!
//! Rounding rule: the 56-bit fraction is the exact quotient `|value| × 16^(14-e)` rounded to nearest,
//! ties to even, computed in 256-bit integer arithmetic from the decimal's integer mantissa and power-of-ten
//! scale. No binary floating point is involved, so `0.1` becomes `40 19 99 99 99 99 99 9A` (the nearest
//! IBM double) rather than the `...99 A0` that a conversion through an IEEE double gives. A rounding that
//! carries into a 15th hex digit renormalises (`16^14 → 0.1 × 16^(e+1)`). Every `rust_decimal::Decimal`
//! (|x| ≤ 2^96, scale ≤ 28) and every `i64` is within the exponent range (16^-64 to 16^63).

use rust_decimal::Decimal;

/// An IBM double's 8 bytes, most significant first as XPORT stores them.
pub type IbmDouble = [u8; 8];

/// SAS's ordinary missing value `.`: 0x2E then zeros (TS-140, "Missing Values").
pub const MISSING: IbmDouble = [0x2E, 0, 0, 0, 0, 0, 0, 0];

/// The IBM double nearest to `value`.
pub fn from_decimal(value: Decimal) -> IbmDouble {
    let magnitude = value.mantissa().unsigned_abs();
    // scale ≤ 28, and 10^28 < 2^94: fits u128.
    let denominator = 10u128.pow(value.scale());
    from_ratio(value.is_sign_negative(), magnitude, denominator)
}

/// The IBM double nearest to `value` (exact when |value| < 2^56).
pub fn from_i64(value: i64) -> IbmDouble {
    from_ratio(value < 0, u128::from(value.unsigned_abs()), 1)
}

const FRACTION_BITS: u32 = 56;

fn from_ratio(negative: bool, numerator: u128, denominator: u128) -> IbmDouble {
    if numerator == 0 {
        return [0; 8];
    }
    // First guess of the exponent from bit lengths (within one of the answer); the loop corrects it.
    let bits = i64::from(bit_length(numerator)) - i64::from(bit_length(denominator));
    let mut exponent = bits.div_euclid(4) + 1;
    let (mut fraction, remainder, divisor) = loop {
        // fraction = |value| × 16^(14 - exponent) = num / den
        let shift = 4 * (14 - exponent);
        let (num, den) = if shift >= 0 {
            (
                U256::from(numerator).shl(shift as u32),
                U256::from(denominator),
            )
        } else {
            (
                U256::from(numerator),
                U256::from(denominator).shl((-shift) as u32),
            )
        };
        if num >= den.shl(FRACTION_BITS) {
            exponent += 1;
            continue;
        }
        let (quotient, remainder) = divide_small_quotient(num, den, FRACTION_BITS);
        if quotient < 1 << (FRACTION_BITS - 4) {
            exponent -= 1;
            continue;
        }
        break (quotient, remainder, den);
    };
    let twice_remainder = remainder.shl(1);
    let round_up = twice_remainder > divisor || (twice_remainder == divisor && fraction & 1 == 1);
    if round_up {
        fraction += 1;
        if fraction == 1 << FRACTION_BITS {
            fraction >>= 4;
            exponent += 1;
        }
    }
    // |exponent| ≤ 26 for every input this module accepts (see the module comment), so the biased
    // exponent is within 0..=127.
    let biased = (exponent + 64) as u8 & 0x7F;
    let mut bytes = fraction.to_be_bytes();
    bytes[0] = biased | if negative { 0x80 } else { 0 };
    bytes
}

fn bit_length(x: u128) -> u32 {
    128 - x.leading_zeros()
}

/// Quotient (known to be below 2^`bits`) and remainder of `num / den`, by shift-and-subtract.
fn divide_small_quotient(num: U256, den: U256, bits: u32) -> (u64, U256) {
    let mut remainder = num;
    let mut quotient = 0u64;
    for bit in (0..bits).rev() {
        let shifted = den.shl(bit);
        if remainder >= shifted {
            remainder = remainder.sub(shifted);
            quotient |= 1 << bit;
        }
    }
    (quotient, remainder)
}

/// Just enough of a 256-bit unsigned integer: the largest intermediate is 2^96 × 16^38 < 2^248.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct U256([u64; 4]); // most significant limb first, so the derived order is numeric order

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl From<u128> for U256 {
    fn from(x: u128) -> Self {
        Self([0, 0, (x >> 64) as u64, x as u64])
    }
}

impl U256 {
    /// `self << bits` for bits < 256; bits shifted past the top are lost (callers stay below 2^256).
    fn shl(self, bits: u32) -> Self {
        let limbs = (bits / 64) as usize;
        let within = bits % 64;
        let mut out = [0u64; 4];
        for (i, limb) in out.iter_mut().enumerate() {
            let source = i + limbs;
            if source >= 4 {
                continue;
            }
            *limb = self.0[source] << within;
            if within > 0 && source + 1 < 4 {
                *limb |= self.0[source + 1] >> (64 - within);
            }
        }
        Self(out)
    }

    /// `self - other`, for self ≥ other.
    fn sub(self, other: Self) -> Self {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for i in (0..4).rev() {
            let (d1, b1) = self.0[i].overflowing_sub(other.0[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            out[i] = d2;
            borrow = b1 || b2;
        }
        Self(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn hex(bytes: IbmDouble) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Expected values were computed independently with exact rational arithmetic (Python's
    /// `fractions.Fraction`): find e with 16^(e-1) ≤ |x| < 16^e, round |x|·16^(14-e) to nearest even.
    fn check(input: &str, expected: &str) {
        let value = Decimal::from_str(input).unwrap();
        assert_eq!(hex(from_decimal(value)), expected, "decimal {input}");
        if let Ok(integer) = i64::from_str(input) {
            assert_eq!(hex(from_i64(integer)), expected, "i64 {input}");
        }
    }

    #[test]
    fn known_values() {
        check("0", "00 00 00 00 00 00 00 00");
        check("1", "41 10 00 00 00 00 00 00");
        check("-1", "C1 10 00 00 00 00 00 00");
        check("0.1", "40 19 99 99 99 99 99 9A");
        check("-0.1", "C0 19 99 99 99 99 99 9A");
        check("100", "42 64 00 00 00 00 00 00");
        check("0.00001", "3C A7 C5 AC 47 1B 47 84");
        check("1E20", "51 56 BC 75 E2 D6 31 00");
        check("0.5", "40 80 00 00 00 00 00 00");
        check("0.0625", "40 10 00 00 00 00 00 00");
        check("2.5", "41 28 00 00 00 00 00 00");
        check("255", "42 FF 00 00 00 00 00 00");
        check("-12.375", "C1 C6 00 00 00 00 00 00");
        // A SAS date: 2014-01-02 is day 19725.
        check("19725", "44 4D 0D 00 00 00 00 00");
        check("3.14159265358979323846264338", "41 32 43 F6 A8 88 5A 31");
        check("123456789.123456789", "47 75 BC D1 51 F9 AD D3");
        // Integers at the edge of the 56-bit fraction: 2^56 - 1 is exact, 2^56 + 1 rounds down,
        // 2^56 + 8 is a tie that goes to the even fraction, 2^56 + 24 a tie that goes up.
        check("72057594037927935", "4E FF FF FF FF FF FF FF");
        check("72057594037927937", "4F 10 00 00 00 00 00 00");
        check("72057594037927944", "4F 10 00 00 00 00 00 00");
        check("72057594037927960", "4F 10 00 00 00 00 00 02");
        check("9223372036854775807", "50 80 00 00 00 00 00 00");
        check("-9223372036854775808", "D0 80 00 00 00 00 00 00");
        // The extremes of rust_decimal.
        check("79228162514264337593543950335", "59 10 00 00 00 00 00 00");
        check("0.0000000000000000000000000001", "29 7E C3 DA F9 41 80 65");
    }

    #[test]
    fn scale_does_not_change_the_encoding() {
        assert_eq!(
            from_decimal(Decimal::from_str("1.50").unwrap()),
            from_decimal(Decimal::from_str("1.5").unwrap())
        );
        assert_eq!(from_decimal(Decimal::from_str("-0.0").unwrap()), [0; 8]);
    }

    #[test]
    fn missing_is_a_dot_then_zeros() {
        assert_eq!(hex(MISSING), "2E 00 00 00 00 00 00 00");
    }
}
