//! Calendar dates, times of day and date-times as the CDISC formats need them: ISO 8601 text for
//! Dataset-JSON and Define-XML, SAS day and second numbers (counted from 1960-01-01) for XPORT and ADaM
//! numeric dates, and the `ddMMMyy:hh:mm:ss` stamp of XPORT headers. Proleptic Gregorian, no time zones:
//! every caller-supplied time is taken as UTC.

use std::fmt;

use crate::error::CdiscError;

/// Days from 0000-03-01 to 1960-01-01 in the civil-from-days count below; subtracting it makes day 0 the
/// SAS epoch.
const SAS_EPOCH_FROM_CIVIL_ORIGIN: i64 = 715_815;

/// A calendar date between 0001-01-01 and 9999-12-31 (the years ISO 8601 basic text can carry in four
/// digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate {
    year: i32,
    month: u8,
    day: u8,
}

impl CalendarDate {
    /// A date, or an error saying which part is out of range.
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, CdiscError> {
        if !(1..=9999).contains(&year) {
            return Err(CdiscError::InvalidDate(format!(
                "year {year} is outside 1..=9999"
            )));
        }
        if !(1..=12).contains(&month) {
            return Err(CdiscError::InvalidDate(format!(
                "month {month} is outside 1..=12"
            )));
        }
        let last = days_in_month(year, month);
        if day == 0 || day > last {
            return Err(CdiscError::InvalidDate(format!(
                "day {day} is outside 1..={last} for {year:04}-{month:02}"
            )));
        }
        Ok(Self { year, month, day })
    }

    /// The date whose SAS day number (days since 1960-01-01) is `days`.
    pub fn from_sas_days(days: i64) -> Result<Self, CdiscError> {
        // Howard Hinnant's civil_from_days, shifted to the SAS epoch; exact for every i64 in range.
        let z = days + SAS_EPOCH_FROM_CIVIL_ORIGIN;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let year = i32::try_from(year)
            .map_err(|_| CdiscError::InvalidDate(format!("SAS day {days} is out of range")))?;
        // month is 1..=12 and day 1..=31 by construction of the algorithm.
        Self::new(year, month as u8, day as u8)
    }

    /// Days since 1960-01-01 (negative before), the SAS date value.
    pub fn sas_days(&self) -> i64 {
        let month = i64::from(self.month);
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - SAS_EPOCH_FROM_CIVIL_ORIGIN
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn month(&self) -> u8 {
        self.month
    }

    pub fn day(&self) -> u8 {
        self.day
    }
}

/// ISO 8601 `YYYY-MM-DD`.
impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// A time of day to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
    second: u8,
}

impl TimeOfDay {
    pub fn new(hour: u8, minute: u8, second: u8) -> Result<Self, CdiscError> {
        if hour > 23 || minute > 59 || second > 59 {
            return Err(CdiscError::InvalidDate(format!(
                "time {hour:02}:{minute:02}:{second:02} is not a time of day"
            )));
        }
        Ok(Self {
            hour,
            minute,
            second,
        })
    }

    /// Seconds since midnight, the SAS time value.
    pub fn sas_seconds(&self) -> i64 {
        i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }
}

/// ISO 8601 `hh:mm:ss`.
impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// A date and a time of day, UTC. Also the type of every caller-supplied creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub date: CalendarDate,
    pub time: TimeOfDay,
}

impl DateTime {
    pub fn new(date: CalendarDate, time: TimeOfDay) -> Self {
        Self { date, time }
    }

    /// Seconds since 1960-01-01T00:00:00, the SAS datetime value.
    pub fn sas_seconds(&self) -> i64 {
        self.date.sas_days() * 86_400 + self.time.sas_seconds()
    }

    /// `ddMMMyy:hh:mm:ss`, the 16-character stamp of XPORT headers. The two-digit year is what TS-140
    /// prescribes; readers guess the century.
    pub fn xport_stamp(&self) -> String {
        const MONTHS: [&str; 12] = [
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ];
        let month = MONTHS[usize::from(self.date.month - 1)];
        format!(
            "{:02}{}{:02}:{}",
            self.date.day,
            month,
            self.date.year.rem_euclid(100),
            self.time
        )
    }

    /// ISO 8601 with a `Z` suffix, as Dataset-JSON's and Define-XML's date-time attributes accept.
    pub fn iso_utc(&self) -> String {
        format!("{}T{}Z", self.date, self.time)
    }
}

/// ISO 8601 `YYYY-MM-DDThh:mm:ss` without a zone, as SDTM `--DTC` values are written.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}T{}", self.date, self.time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected day numbers agree with Python's proleptic Gregorian `datetime.date` differences.
    fn check_day(year: i32, month: u8, day: u8, sas: i64) {
        let date = CalendarDate::new(year, month, day).unwrap();
        assert_eq!(date.sas_days(), sas, "{date}");
        assert_eq!(CalendarDate::from_sas_days(sas).unwrap(), date, "{sas}");
    }

    #[test]
    fn sas_day_numbers_of_known_dates() {
        check_day(1960, 1, 1, 0);
        check_day(1959, 12, 31, -1);
        check_day(1960, 3, 1, 60);
        check_day(1970, 1, 1, 3653);
        check_day(2000, 2, 29, 14_669);
        check_day(2014, 1, 2, 19_725);
        check_day(1582, 1, 1, -138_061);
        check_day(1, 1, 1, -715_509);
        check_day(9999, 12, 31, 2_936_549);
    }

    #[test]
    fn every_day_round_trips_across_four_centuries() {
        let mut previous = CalendarDate::from_sas_days(-80_000).unwrap();
        for days in -79_999..80_000 {
            let date = CalendarDate::from_sas_days(days).unwrap();
            assert!(date > previous);
            assert_eq!(date.sas_days(), days);
            previous = date;
        }
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert!(CalendarDate::new(2023, 2, 29).is_err());
        assert!(CalendarDate::new(1900, 2, 29).is_err());
        assert!(CalendarDate::new(2000, 13, 1).is_err());
        assert!(CalendarDate::new(0, 1, 1).is_err());
        assert!(TimeOfDay::new(24, 0, 0).is_err());
    }

    #[test]
    fn stamps() {
        let at = DateTime::new(
            CalendarDate::new(2026, 3, 7).unwrap(),
            TimeOfDay::new(4, 5, 6).unwrap(),
        );
        assert_eq!(at.xport_stamp(), "07MAR26:04:05:06");
        assert_eq!(at.iso_utc(), "2026-03-07T04:05:06Z");
        assert_eq!(at.to_string(), "2026-03-07T04:05:06");
        assert_eq!(at.sas_seconds(), at.date.sas_days() * 86_400 + 14_706);
    }
}
