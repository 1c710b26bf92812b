//! The clinical date of a fact (not the date it was entered): a validated calendar date, shared by
//! events and by the protocol's study-day arithmetic, below both.

use crate::error::Problem;
use std::fmt;

/// A calendar date (the clinical date of a fact, not the entry date), 1900-01-01 to 2200-12-31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClinicalDate {
    year: u16,
    month: u8,
    day: u8,
}

impl ClinicalDate {
    /// Validates a date.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, Problem> {
        let out_of_range = || Problem::OutOfRange {
            value: format!("{year:04}-{month:02}-{day:02}"),
            allowed: "a calendar date from 1900-01-01 to 2200-12-31".to_string(),
        };
        if !(1900..=2200).contains(&year) || !(1..=12).contains(&month) {
            return Err(out_of_range());
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(out_of_range());
        }
        Ok(Self { year, month, day })
    }

    /// Parses ISO 8601 `YYYY-MM-DD` exactly (no time, no zone).
    pub fn parse(text: &str) -> Result<Self, Problem> {
        let wrong = || Problem::WrongType {
            expected: "a date as YYYY-MM-DD".to_string(),
            found: format!("{text:?}"),
        };
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(wrong());
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u16> {
            let part = text.get(range)?;
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10))
        else {
            return Err(wrong());
        };
        Self::new(
            year,
            u8::try_from(month).map_err(|_| wrong())?,
            u8::try_from(day).map_err(|_| wrong())?,
        )
    }

    pub const fn year(self) -> u16 {
        self.year
    }

    pub const fn month(self) -> u8 {
        self.month
    }

    pub const fn day(self) -> u8 {
        self.day
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for ClinicalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}
