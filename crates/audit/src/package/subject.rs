//! Per-subject facts that ADSL, ADEFF and DM share, derived once from the projection: identifiers,
//! arms (planned and actual), reference dates (randomisation, first and last study drug), demographics
//! as enrolled, the analysis populations and eligibility. Each rule is stated on its field and in the
//! reviewer's guide (`guide.rs`), which quotes the same rules.

use myolog_cdisc::{CalendarDate, Value};
use myolog_domain::Decimal;
use myolog_domain::event::{Dose, SubjectId};
use myolog_projection::Subject;
use myolog_projection::report::VisitOutcome;
use myolog_projection::state::baseline_of;

use super::{Context, PackageError, calendar};
use myolog_projection::outcome as outcomes;

/// ACTARMCD/ACTARM of an enrolled subject with no study drug recorded (SDTMIG's null-arm term).
pub const NOT_TREATED: (&str, &str) = ("NOTTRT", "Not Treated");

/// One subject as the package sees it.
#[derive(Debug, Clone)]
pub struct SubjectFacts<'a> {
    pub subject_id: &'a SubjectId,
    pub subject: &'a Subject,
    pub usubjid: String,
    /// Planned arm: the protocol's arm code and name; without a protocol the arm as enrolled (no name).
    pub armcd: String,
    pub arm: String,
    /// Actual arm: the planned arm once a study-drug dose is recorded, else [`NOT_TREATED`].
    pub actarmcd: String,
    pub actarm: String,
    /// Enrolment (randomisation) date: protocol day 0.
    pub randdt: CalendarDate,
    /// First study-drug dose record's date.
    pub trtsdt: Option<CalendarDate>,
    /// The day before the first 0 mg/day study-drug record after the first dose (treatment stopped);
    /// `None` while treatment is ongoing or its end is not recorded.
    pub trtedt: Option<CalendarDate>,
    pub rficdt: Option<CalendarDate>,
    /// Intent-to-treat: every enrolled (randomised) subject with a planned arm.
    pub ittfl: bool,
    /// Safety: at least one study-drug dose recorded.
    pub saffl: bool,
    /// Efficacy: ITT, a baseline visit and at least one scored follow-up visit.
    pub efffl: bool,
    /// `Some(true)` eligible, `Some(false)` not eligible, `None` not evaluable or no protocol.
    pub eligible: Option<bool>,
    /// Ids of the criteria that made the subject not eligible (an inclusion not met or an exclusion
    /// met), in protocol order.
    pub criteria_not_met: Vec<String>,
    /// The scored follow-up visits, in the service's visit order.
    pub outcomes: Vec<VisitOutcome>,
}

impl SubjectFacts<'_> {
    /// SITEID, AGE, AGEU, SEX and RACE as recorded at enrolment, in that order: the same cells in
    /// ADSL and DM; each missing when not recorded (AGEU only beside an age).
    pub fn site_age_sex_race(&self) -> [Value; 5] {
        let demographics = self.subject.facts.demographics();
        let age = self.subject.facts.age_years();
        [
            self.subject
                .site
                .as_ref()
                .map_or(Value::Null, |site| Value::Text(site.to_string())),
            age.map_or(Value::Null, |age| Value::Integer(i64::from(age))),
            if age.is_some() {
                Value::Text("YEARS".into())
            } else {
                Value::Null
            },
            demographics
                .sex
                .map_or(Value::Null, |sex| Value::Text(sex.code().into())),
            demographics
                .race
                .map_or(Value::Null, |race| Value::Text(race.code().into())),
        ]
    }
}

/// Every subject of the study, in subject id order.
pub fn subjects<'a>(context: &Context<'a>) -> Result<Vec<SubjectFacts<'a>>, PackageError> {
    let study = context.study;
    let protocol = study.protocol.as_ref().map(|history| history.current());
    let eligibility = crate::eligibility::subject_reports(context.replay);
    let mut out = Vec::new();
    for (subject_id, subject) in &study.subjects {
        let armcd = study.arm_of(subject).unwrap_or_default().to_string();
        let arm = protocol
            .and_then(|protocol| protocol.arm(&armcd))
            .map(|arm| arm.name.clone())
            .unwrap_or_default();
        let (trtsdt, trtedt) = treatment_dates(subject)?;
        let saffl = trtsdt.is_some();
        let (actarmcd, actarm) = if saffl {
            (armcd.clone(), arm.clone())
        } else {
            (NOT_TREATED.0.to_string(), NOT_TREATED.1.to_string())
        };
        let outcomes = outcomes::subject_outcomes(
            context.study_id,
            study,
            subject_id,
            subject,
            context.replay.last_sequence,
        );
        let ittfl = !armcd.is_empty();
        let efffl = ittfl && baseline_of(study, subject).is_some() && !outcomes.is_empty();
        let report = eligibility.iter().find(|(study_id, id, _)| {
            *study_id == context.study_id && id.as_str() == subject_id.as_str()
        });
        let (eligible, criteria_not_met) = match report {
            Some((_, _, report)) => (
                match report.verdict.as_str() {
                    "eligible" => Some(true),
                    "not_eligible" => Some(false),
                    _ => None,
                },
                report
                    .criteria
                    .iter()
                    .filter(|criterion| {
                        matches!(
                            (criterion.category.as_str(), criterion.verdict.as_str()),
                            ("inclusion", "not_met") | ("exclusion", "met")
                        )
                    })
                    .map(|criterion| criterion.id.clone())
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        let demographics = subject.facts.demographics();
        out.push(SubjectFacts {
            subject_id,
            subject,
            usubjid: format!("{}-{subject_id}", context.study_id),
            armcd,
            arm,
            actarmcd,
            actarm,
            randdt: calendar(subject.enrolled_on)?,
            trtsdt,
            trtedt,
            rficdt: demographics.informed_consent.map(calendar).transpose()?,
            ittfl,
            saffl,
            efffl,
            eligible,
            criteria_not_met,
            outcomes,
        });
    }
    Ok(out)
}

/// First study-drug date and, when a 0 mg/day record stops it, the last day on treatment.
fn treatment_dates(
    subject: &Subject,
) -> Result<(Option<CalendarDate>, Option<CalendarDate>), PackageError> {
    let mut drug: Vec<(CalendarDate, Decimal)> = Vec::new();
    for (date, dose) in &subject.doses {
        if let Dose::StudyDrug { mg_per_day, .. } = dose {
            drug.push((calendar(*date)?, mg_per_day.mg_per_day()));
        }
    }
    // Records are in sequence order; the dates decide (a late entry may record an earlier day).
    drug.sort_by_key(|(date, _)| *date);
    let Some(first) = drug.iter().find(|(_, mg)| !mg.is_zero()).map(|(d, _)| *d) else {
        return Ok((None, None));
    };
    let stop = drug
        .iter()
        .find(|(date, mg)| *date > first && mg.is_zero())
        .map(|(date, _)| CalendarDate::from_sas_days(date.sas_days() - 1))
        .transpose()?;
    // A later non-zero record means treatment restarted: the end is then not known.
    let restarted = stop.is_some_and(|end| {
        drug.iter()
            .any(|(date, mg)| date.sas_days() > end.sas_days() + 1 && !mg.is_zero())
    });
    Ok((Some(first), if restarted { None } else { stop }))
}

/// ADaM relative day of `date` from the reference `start`: day 1 is the reference, the day before
/// is -1 (there is no day 0).
pub fn relative_day(date: CalendarDate, start: CalendarDate) -> i64 {
    let days = date.sas_days() - start.sas_days();
    if days >= 0 { days + 1 } else { days }
}

#[cfg(test)]
mod tests {
    use super::*;
    use myolog_domain::event::{ClinicalDate, EnrolmentFacts};
    use myolog_domain::glucocorticoid::PrednisoneEquivalentDose;

    fn subject_with(doses: &[(u8, &str, bool)]) -> Subject {
        Subject {
            arm: "TOFA".into(),
            site: None,
            enrolled_on: ClinicalDate::new(2026, 1, 1).unwrap(),
            population: None,
            facts: EnrolmentFacts::default(),
            withdrawn: false,
            visits: Default::default(),
            doses: doses
                .iter()
                .map(|(day, mg, study_drug)| {
                    let mg_per_day =
                        PrednisoneEquivalentDose::try_from(mg.parse::<Decimal>().unwrap()).unwrap();
                    let dose = if *study_drug {
                        Dose::StudyDrug {
                            drug: "tofacitinib".into(),
                            mg_per_day,
                        }
                    } else {
                        Dose::Glucocorticoid {
                            drug: "prednisone".into(),
                            mg_per_day,
                        }
                    };
                    (ClinicalDate::new(2026, 1, *day).unwrap(), dose)
                })
                .collect(),
        }
    }

    fn dates(doses: &[(u8, &str, bool)]) -> (Option<String>, Option<String>) {
        let (start, end) = treatment_dates(&subject_with(doses)).unwrap();
        (start.map(|d| d.to_string()), end.map(|d| d.to_string()))
    }

    #[test]
    fn treatment_dates_come_from_study_drug_records_only() {
        let day = |d: u8| Some(format!("2026-01-{d:02}"));
        // No study drug (only a glucocorticoid): not treated.
        assert_eq!(dates(&[(3, "10", false)]), (None, None));
        // Ongoing: start known, end not.
        assert_eq!(dates(&[(5, "11", true), (20, "11", true)]), (day(5), None));
        // Stopped by a 0 mg/day record: the day before it; a record entered late still sorts by date.
        assert_eq!(
            dates(&[(20, "0", true), (5, "11", true)]),
            (day(5), day(19))
        );
        // Restarted after the stop: the end is not known.
        assert_eq!(
            dates(&[(5, "11", true), (20, "0", true), (25, "5", true)]),
            (day(5), None)
        );
        // A 0 mg/day record before the first dose starts nothing.
        assert_eq!(dates(&[(2, "0", true), (6, "11", true)]), (day(6), None));
    }

    #[test]
    fn relative_days_skip_day_zero() {
        let start = CalendarDate::new(2026, 1, 10).unwrap();
        assert_eq!(relative_day(start, start), 1);
        assert_eq!(
            relative_day(CalendarDate::new(2026, 1, 11).unwrap(), start),
            2
        );
        assert_eq!(
            relative_day(CalendarDate::new(2026, 1, 9).unwrap(), start),
            -1
        );
    }
}
