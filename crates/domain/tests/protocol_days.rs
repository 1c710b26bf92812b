//! Protocol days from clinical dates: day 0 is randomisation, week 12 is day 84, leap years count.

use myolog_domain::event::ClinicalDate;
use myolog_domain::protocol::protocol_day;

fn date(text: &str) -> ClinicalDate {
    ClinicalDate::parse(text).expect("a valid test date")
}

#[test]
fn days_since_day_zero() {
    let cases = [
        ("2024-01-10", "2024-01-10", 0),
        ("2024-01-10", "2024-04-03", 84),
        ("2024-01-10", "2023-12-13", -28),
        ("2024-02-28", "2024-03-01", 2),
        ("2023-02-28", "2023-03-01", 1),
        ("2100-02-28", "2100-03-01", 1),
        ("2000-02-28", "2000-03-01", 2),
        ("2023-12-31", "2024-01-01", 1),
        ("1999-06-15", "2024-06-15", 9132),
    ];
    let actual: Vec<_> = cases
        .iter()
        .map(|(zero, visit, _)| (*zero, *visit, protocol_day(date(zero), date(visit))))
        .collect();
    assert_eq!(actual, cases);
}
