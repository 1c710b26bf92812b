//! Protocol days from clinical dates: day 0 is the subject's randomisation (or enrolment) date, and a
//! visit's day is the number of calendar days since then, negative before it. This is the day every
//! window, baseline and glucocorticoid rule in a protocol is written in.

use crate::date::ClinicalDate;
use crate::treatment_history::{
    Elapsed, TreatmentBeforeBaseline, TreatmentHistory, completed_months,
};

/// Days from `day_zero` to `date` (negative when `date` is earlier), in the proleptic Gregorian
/// calendar.
pub fn protocol_day(day_zero: ClinicalDate, date: ClinicalDate) -> i32 {
    // Both values fit easily: years are u16, so day numbers stay within +/- 24 million.
    (day_number(date) - day_number(day_zero)) as i32
}

/// Days since 1970-01-01 (H. Hinnant's days_from_civil), exact for every date a ClinicalDate holds.
fn day_number(date: ClinicalDate) -> i64 {
    let month = i64::from(date.month());
    let year = i64::from(date.year()) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(date.day()) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A treatment history as the eligibility rules read it: each last dose counted back from
/// `baseline` (day 0) in days and in completed calendar months.
pub fn treatments_before(
    history: &TreatmentHistory,
    baseline: ClinicalDate,
) -> Vec<TreatmentBeforeBaseline> {
    history
        .treatments()
        .iter()
        .map(|treatment| TreatmentBeforeBaseline {
            drug: treatment.drug,
            last_dose: treatment.last_dose.map(|date| Elapsed {
                days: protocol_day(date, baseline),
                completed_months: completed_months(date, baseline),
            }),
            response: treatment.response,
        })
        .collect()
}
