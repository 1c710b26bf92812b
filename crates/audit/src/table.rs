//! Small, dependency-free table helpers shared by the exports: RFC 4180 CSV quoting, UTC timestamps
//! (RFC 3339, parsed and formatted without a date crate) and day counts between clinical dates.
//!
//! Hand-written because the exports need ~20 lines of CSV and a civil-date conversion, not a crate.

use std::io::Write;

use myolog_domain::event::ClinicalDate;

/// One CSV field, quoted per RFC 4180 only when it holds a comma, a quote, CR or LF.
pub fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\r', '\n']) {
        std::borrow::Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Writes one CSV record terminated by CRLF (RFC 4180's line break).
pub fn write_csv_row<S: AsRef<str>>(out: &mut impl Write, fields: &[S]) -> std::io::Result<()> {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.write_all(b",")?;
        }
        out.write_all(csv_field(field.as_ref()).as_bytes())?;
    }
    out.write_all(b"\r\n")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a clinical date.
pub fn clinical_days(date: ClinicalDate) -> i64 {
    days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// The ADaM study day of `date` relative to the reference (baseline) date: day 1 is the baseline
/// date itself and there is no day 0 (the day before baseline is -1), as CDISC defines it.
pub fn study_day(date: ClinicalDate, reference: ClinicalDate) -> i64 {
    let offset = clinical_days(date) - clinical_days(reference);
    if offset >= 0 { offset + 1 } else { offset }
}

/// Formats Unix nanoseconds as RFC 3339 UTC with nanoseconds, e.g. `2026-11-25T14:31:42.123456789Z`:
/// fixed width, so the text sorts like the instant.
pub fn rfc3339_nanos(unix_nanos: i64) -> String {
    let seconds = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Parses an RFC 3339 time (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`) to Unix nanoseconds.
/// `None` when the text is not such a time.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || ![4, 7].iter().all(|&i| bytes[i] == b'-') {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = fraction[..digits].parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = rest.get(1..)?;
            if zone.len() != 5 || zone.as_bytes()[2] != b':' {
                return None;
            }
            let (h, m) = (
                zone[..2].parse::<i64>().ok()?,
                zone[3..].parse::<i64>().ok()?,
            );
            sign * (h * 3600 + m * 60)
        }
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\r", "\"cr\r\""),
        ];
        for (input, expected) in cases {
            assert_eq!(csv_field(input), expected, "{input:?}");
        }
    }

    #[test]
    fn csv_rows_end_in_crlf() -> std::io::Result<()> {
        let mut out = Vec::new();
        write_csv_row(&mut out, &["a", "b,c", ""])?;
        assert_eq!(out, b"a,\"b,c\",\r\n");
        Ok(())
    }

    #[test]
    fn civil_days_round_trip() {
        let cases = [
            ((1970, 1, 1), 0),
            ((2000, 3, 1), 11_017),
            ((1969, 12, 31), -1),
            ((2024, 2, 29), 19_782),
            ((1900, 1, 1), -25_567),
        ];
        for ((y, m, d), days) in cases {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
        }
    }

    #[test]
    fn study_day_has_no_day_zero() -> Result<(), myolog_domain::error::Problem> {
        let baseline = ClinicalDate::parse("2024-02-27")?;
        let cases = [
            ("2024-02-27", 1),
            ("2024-02-28", 2),
            ("2024-03-01", 4),
            ("2024-02-26", -1),
            ("2024-05-21", 85),
        ];
        for (date, day) in cases {
            assert_eq!(
                study_day(ClinicalDate::parse(date)?, baseline),
                day,
                "{date}"
            );
        }
        Ok(())
    }

    #[test]
    fn rfc3339_round_trips_and_rejects_garbage() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T00:00:01.5Z", Some(1_500_000_000)),
            (
                "2026-11-25T14:31:42.123456789Z",
                Some(1_795_617_102_123_456_789),
            ),
            (
                "2026-11-25T15:31:42.123456789+01:00",
                Some(1_795_617_102_123_456_789),
            ),
            ("2026-11-25 14:31:42Z", Some(1_795_617_102_000_000_000)),
            ("2026-11-25", None),
            ("2026-13-25T14:31:42Z", None),
            ("2026-11-25T14:31:42", None),
            ("2026-11-25T14:31:42.Z", None),
            ("yesterday", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc3339(text), expected, "{text}");
        }
        assert_eq!(
            rfc3339_nanos(1_795_617_102_123_456_789),
            "2026-11-25T14:31:42.123456789Z"
        );
        assert_eq!(rfc3339_nanos(-1), "1969-12-31T23:59:59.999999999Z");
    }
}
