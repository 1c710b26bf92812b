//! What a site reports at enrolment about a subject's treatment before the trial and about facts the
//! investigator attests: the drugs received with the date of their last dose and how the disease
//! answered (for washout and "refractory" criteria), and yes/no attestations under a code the
//! protocol file names (a negative pregnancy test, affiliation to social security).
//!
//! Not for doses during the trial (those are `DoseRecorded` events) and not for the glucocorticoid
//! dose history (also dose records). Every type here only holds valid values; a history that was
//! not reported is `None` at the enrolment fact, never an empty list.

use crate::date::ClinicalDate;
use crate::error::Problem;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A drug (or class) a treatment-history criterion names. The list is closed so that a protocol
/// file's misspelt drug is refused, not silently never matched; each is a drug STIR's washout or
/// refractory criterion names, or glucocorticoids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorDrug {
    /// Any systemic glucocorticoid (prednisone, prednisolone, methylprednisolone...).
    Glucocorticoid,
    Methotrexate,
    /// Mycophenolate mofetil or mycophenolic acid.
    Mycophenolate,
    Azathioprine,
    Tacrolimus,
    Rituximab,
    /// Intravenous immunoglobulin.
    Ivig,
    Cyclophosphamide,
}

impl PriorDrug {
    pub const ALL: [PriorDrug; 8] = [
        PriorDrug::Glucocorticoid,
        PriorDrug::Methotrexate,
        PriorDrug::Mycophenolate,
        PriorDrug::Azathioprine,
        PriorDrug::Tacrolimus,
        PriorDrug::Rituximab,
        PriorDrug::Ivig,
        PriorDrug::Cyclophosphamide,
    ];

    /// The wire and protocol-file name.
    pub const fn key(self) -> &'static str {
        match self {
            PriorDrug::Glucocorticoid => "glucocorticoid",
            PriorDrug::Methotrexate => "methotrexate",
            PriorDrug::Mycophenolate => "mycophenolate",
            PriorDrug::Azathioprine => "azathioprine",
            PriorDrug::Tacrolimus => "tacrolimus",
            PriorDrug::Rituximab => "rituximab",
            PriorDrug::Ivig => "ivig",
            PriorDrug::Cyclophosphamide => "cyclophosphamide",
        }
    }

    pub fn parse(text: &str) -> Result<Self, Problem> {
        Self::ALL
            .into_iter()
            .find(|drug| drug.key() == text)
            .ok_or_else(|| Problem::UnknownValue {
                value: text.to_string(),
                allowed: Self::ALL.map(PriorDrug::key).join(", "),
            })
    }
}

impl fmt::Display for PriorDrug {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.key())
    }
}

/// How the disease answered a prior treatment, as the investigator judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreatmentResponse {
    Responded,
    /// Active disease despite an adequate trial ("failure of response").
    Failed,
    /// Stopped or limited for toxicity or intolerance.
    Intolerant,
}

impl TreatmentResponse {
    pub const fn key(self) -> &'static str {
        match self {
            TreatmentResponse::Responded => "responded",
            TreatmentResponse::Failed => "failed",
            TreatmentResponse::Intolerant => "intolerant",
        }
    }
}

impl fmt::Display for TreatmentResponse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.key())
    }
}

/// One drug the subject received before the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PriorTreatment {
    pub drug: PriorDrug,
    /// The date of the last dose; `None` when the site does not know it (a washout on this drug is
    /// then not evaluable).
    pub last_dose: Option<ClinicalDate>,
    /// `None` when not recorded (a "refractory" criterion on this drug is then not evaluable).
    pub response: Option<TreatmentResponse>,
}

/// The drugs a subject received before the trial, each at most once. A drug not listed was never
/// received: the site reports the whole history, so an empty history means "no prior treatment".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TreatmentHistory {
    treatments: Vec<PriorTreatment>,
}

impl TreatmentHistory {
    /// Refuses a drug listed twice, naming its position (two last doses could not both be right).
    pub fn new(treatments: Vec<PriorTreatment>) -> Result<Self, (usize, Problem)> {
        for (index, treatment) in treatments.iter().enumerate() {
            if treatments[..index]
                .iter()
                .any(|earlier| earlier.drug == treatment.drug)
            {
                return Err((
                    index,
                    Problem::DuplicateKey {
                        key: treatment.drug.key().to_string(),
                    },
                ));
            }
        }
        Ok(Self { treatments })
    }

    pub fn treatments(&self) -> &[PriorTreatment] {
        &self.treatments
    }
}

/// A prior treatment as an eligibility rule reads it: the time from its last dose to baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TreatmentBeforeBaseline {
    pub drug: PriorDrug,
    pub last_dose: Option<Elapsed>,
    pub response: Option<TreatmentResponse>,
}

/// The time from a last dose to baseline, in days and in completed calendar months (negative when
/// the dose is after baseline); `protocol::treatments_before` computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Elapsed {
    pub days: i32,
    pub completed_months: i32,
}

/// Whole calendar months from `from` to `to`: a month is complete on the same day of the month, or,
/// when that day does not exist (a dose on 31 January), on the first day of the month after it. So
/// "12 months after 2023-03-15" is 2024-03-15, and one month after 2024-01-31 is 2024-03-01, never
/// earlier: a washout counted this way is never shorter than its months.
pub fn completed_months(from: ClinicalDate, to: ClinicalDate) -> i32 {
    if to < from {
        return -completed_months(to, from);
    }
    let months = (i32::from(to.year()) - i32::from(from.year())) * 12 + i32::from(to.month())
        - i32::from(from.month());
    if to.day() >= from.day() {
        months
    } else {
        months - 1
    }
}

/// The code of an investigator-attested fact, as a protocol file names it (`NEG_PREG_TEST`): a
/// capital letter, then capitals, digits or `_`, at most 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AttestationCode(String);

impl AttestationCode {
    pub const MAX_LEN: usize = 32;

    pub fn new(text: &str) -> Result<Self, Problem> {
        let valid = text.len() <= Self::MAX_LEN
            && text.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && text
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(text.to_string()))
        } else {
            Err(Problem::OutOfRange {
                value: format!("{text:?}"),
                allowed: format!(
                    "a code of 1 to {} characters: a capital letter, then capitals, digits or _ \
                     (e.g. NEG_PREG_TEST)",
                    Self::MAX_LEN
                ),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttestationCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// The investigator's yes/no attestations, each code at most once; a code not listed was not
/// attested either way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Attestations {
    attested: Vec<(AttestationCode, bool)>,
}

impl Attestations {
    /// Refuses a code given twice, naming its position.
    pub fn new(attested: Vec<(AttestationCode, bool)>) -> Result<Self, (usize, Problem)> {
        for (index, (code, _)) in attested.iter().enumerate() {
            if attested[..index].iter().any(|(earlier, _)| earlier == code) {
                return Err((
                    index,
                    Problem::DuplicateKey {
                        key: code.to_string(),
                    },
                ));
            }
        }
        Ok(Self { attested })
    }

    pub fn get(&self, code: &AttestationCode) -> Option<bool> {
        self.attested
            .iter()
            .find(|(attested, _)| attested == code)
            .map(|(_, value)| *value)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(AttestationCode, bool)> {
        self.attested.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.attested.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> ClinicalDate {
        ClinicalDate::parse(text).expect("a date")
    }

    #[test]
    fn completed_months_count_a_month_on_the_same_day_or_the_first_after_it() {
        let cases = [
            ("2023-03-15", "2024-03-15", 12),
            ("2023-03-15", "2024-03-14", 11),
            ("2024-01-31", "2024-02-29", 0),
            ("2024-01-31", "2024-03-01", 1),
            ("2024-01-01", "2024-01-01", 0),
            ("2024-05-10", "2024-02-10", -3),
        ];
        for (from, to, expected) in cases {
            assert_eq!(
                completed_months(date(from), date(to)),
                expected,
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn a_drug_or_a_code_given_twice_is_refused_with_its_position() {
        let treatment = |drug| PriorTreatment {
            drug,
            last_dose: None,
            response: None,
        };
        let twice = TreatmentHistory::new(vec![
            treatment(PriorDrug::Methotrexate),
            treatment(PriorDrug::Rituximab),
            treatment(PriorDrug::Methotrexate),
        ]);
        assert!(matches!(twice, Err((2, Problem::DuplicateKey { .. }))));
        let code = AttestationCode::new("NEG_PREG_TEST").expect("a code");
        let twice = Attestations::new(vec![(code.clone(), true), (code, false)]);
        assert!(matches!(twice, Err((1, Problem::DuplicateKey { .. }))));
    }

    #[test]
    fn attestation_codes_are_capitals_digits_and_underscores() {
        for good in ["A", "NEG_PREG_TEST", "SOCIAL_SECURITY_2"] {
            assert!(AttestationCode::new(good).is_ok(), "{good}");
        }
        for bad in ["", "neg", "1ABC", "NEG-PREG", &"A".repeat(33)] {
            assert!(AttestationCode::new(bad).is_err(), "{bad}");
        }
        assert!(PriorDrug::parse("ivig").is_ok());
        assert!(PriorDrug::parse("IVIG").is_err());
    }
}
