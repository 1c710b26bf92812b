//! Domain events and their identifiers: what an EDC system reports (a study registered, a subject
//! enrolled, an assessment recorded or corrected, a withdrawal, a dose), validated. Built from the
//! assessment types of this crate; the wire form lives in `myolog.v1` (crates/proto) and the server
//! maps between the two. Events are facts: never updated, never deleted; a correction is a new event
//! naming the one it supersedes, with a reason.

use crate::biopsy::Stat1;
use crate::cdasi::CdasiV2;
pub use crate::date::ClinicalDate;
use crate::enzyme::EnzymePanel;
use crate::error::Problem;
use crate::global::GlobalAssessment;
use crate::glucocorticoid::PrednisoneEquivalentDose;
use crate::haq::Haq;
use crate::lab::LabMeasurement;
use crate::mmt8::Mmt8;
use crate::protocol::Protocol;
use crate::treatment_history::{Attestations, TreatmentHistory};
use crate::visit::{Population, VisitAssessments};
use rust_decimal::Decimal;
use smol_str::SmolStr;
use std::fmt;

/// Longest identifier, in characters.
pub const MAX_ID_LEN: usize = 64;
/// Longest free-text reason (corrections, withdrawals), in characters.
pub const MAX_REASON_LEN: usize = 1000;

fn check_identifier(text: &str) -> Result<(), Problem> {
    let allowed = || format!("1 to {MAX_ID_LEN} characters from A-Z a-z 0-9 . _ : -");
    if text.is_empty() {
        return Err(Problem::Missing {
            expected: allowed(),
        });
    }
    let ok_chars = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if text.chars().count() > MAX_ID_LEN || !ok_chars {
        return Err(Problem::UnknownValue {
            value: text.to_string(),
            allowed: allowed(),
        });
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Held as a [`SmolStr`]: short ids inline, longer ones shared, so that a clone never
        /// allocates (the projection keys its maps by these and copies them into every index).
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(SmolStr);

        impl $name {
            /// Validates 1-64 characters from `[A-Za-z0-9._:-]`.
            pub fn new(text: impl AsRef<str>) -> Result<Self, Problem> {
                let text = text.as_ref();
                check_identifier(text)?;
                Ok(Self(SmolStr::new(text)))
            }

            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A study, e.g. `STIR`.
    StudyId
);
identifier!(
    /// A subject within a study, e.g. `STIR-001`.
    SubjectId
);
identifier!(
    /// A trial site, e.g. `SITE-01`.
    SiteId
);
identifier!(
    /// A visit of the schedule, e.g. `baseline`, `week12`.
    VisitId
);
identifier!(
    /// The client's event id: the idempotency key of the log.
    EventId
);

/// Free text that must be present (a correction's or a withdrawal's reason), 1-1000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reason(String);

impl Reason {
    /// Validates non-blank text of at most 1000 characters.
    pub fn new(text: impl Into<String>) -> Result<Self, Problem> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(Problem::Missing {
                expected: format!("a reason, 1 to {MAX_REASON_LEN} characters"),
            });
        }
        if text.chars().count() > MAX_REASON_LEN {
            return Err(Problem::OutOfRange {
                value: format!("{} characters", text.chars().count()),
                allowed: format!("1 to {MAX_REASON_LEN} characters"),
            });
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The instrument an assessment event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AssessmentKind {
    Globals,
    Mmt8,
    Haq,
    Enzymes,
    Cdasi,
    Lab,
    Stat1,
}

impl AssessmentKind {
    /// The instrument's name in outputs.
    pub const fn key(self) -> &'static str {
        match self {
            AssessmentKind::Globals => "globals",
            AssessmentKind::Mmt8 => "mmt8",
            AssessmentKind::Haq => "haq",
            AssessmentKind::Enzymes => "enzymes",
            AssessmentKind::Cdasi => "cdasi",
            AssessmentKind::Lab => "lab",
            AssessmentKind::Stat1 => "stat1",
        }
    }
}

/// One assessment form: one instrument of one visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Global activity assessments; at least one present.
    Globals {
        physician: Option<GlobalAssessment>,
        patient: Option<GlobalAssessment>,
        extramuscular: Option<GlobalAssessment>,
    },
    Mmt8(Mmt8),
    /// HAQ items (HAQ-DI computed) or a HAQ-DI score.
    Haq(Haq),
    /// One or more enzymes.
    Enzymes(EnzymePanel),
    Cdasi(CdasiV2),
    Lab(LabMeasurement),
    Stat1(Stat1),
}

impl Assessment {
    /// Which instrument this is.
    pub const fn kind(&self) -> AssessmentKind {
        match self {
            Assessment::Globals { .. } => AssessmentKind::Globals,
            Assessment::Mmt8(_) => AssessmentKind::Mmt8,
            Assessment::Haq(_) => AssessmentKind::Haq,
            Assessment::Enzymes(_) => AssessmentKind::Enzymes,
            Assessment::Cdasi(_) => AssessmentKind::Cdasi,
            Assessment::Lab(_) => AssessmentKind::Lab,
            Assessment::Stat1(_) => AssessmentKind::Stat1,
        }
    }

    /// Writes the measures this form carries into a visit, replacing earlier values of the same measures.
    pub fn apply_to(&self, visit: &mut VisitAssessments) {
        match self {
            Assessment::Globals {
                physician,
                patient,
                extramuscular,
            } => {
                if physician.is_some() {
                    visit.physician_global = *physician;
                }
                if patient.is_some() {
                    visit.patient_global = *patient;
                }
                if extramuscular.is_some() {
                    visit.extramuscular_global = *extramuscular;
                }
            }
            Assessment::Mmt8(mmt8) => visit.mmt8 = Some(*mmt8),
            Assessment::Haq(haq) => visit.haq = Some(haq.clone()),
            Assessment::Enzymes(panel) => {
                for (enzyme, measurement) in panel {
                    visit.enzymes.insert(*enzyme, *measurement);
                }
            }
            Assessment::Cdasi(cdasi) => visit.cdasi = Some(cdasi.clone()),
            Assessment::Lab(lab) => {
                visit.labs.insert(lab.code(), *lab);
            }
            Assessment::Stat1(stat1) => visit.stat1 = Some(*stat1),
        }
    }
}

/// A dose record: the daily dose in effect from the clinical date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dose {
    /// Investigational product, mg/day (0 to 2000, at most 2 decimals; 0 = stopped).
    StudyDrug {
        drug: String,
        mg_per_day: PrednisoneEquivalentDose,
    },
    /// Systemic glucocorticoid, mg/day prednisone-equivalent.
    Glucocorticoid {
        drug: String,
        mg_per_day: PrednisoneEquivalentDose,
    },
}

impl Dose {
    /// The daily dose in mg.
    pub fn mg_per_day(&self) -> Decimal {
        match self {
            Dose::StudyDrug { mg_per_day, .. } | Dose::Glucocorticoid { mg_per_day, .. } => {
                mg_per_day.mg_per_day()
            }
        }
    }
}

/// Eligibility facts that are not visit assessments, as the site reports them at enrolment. Each is
/// optional: a fact not recorded leaves the criteria that read it "not evaluable", never "not met".
/// Events written before a fact existed carry none of it, and read exactly as before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EnrolmentFacts {
    /// Age in completed years, 0 to [`EnrolmentFacts::MAX_AGE_YEARS`].
    age_years: Option<u32>,
    /// The investigator's judgement that the muscle disease is active.
    muscle_active: Option<bool>,
    /// Weeks the current prednisone dose has been stable before baseline, 0 to
    /// [`EnrolmentFacts::MAX_PREDNISONE_STABLE_WEEKS`].
    prednisone_stable_weeks: Option<u32>,
    /// Demographics and informed consent (all absent in events sent before they existed).
    demographics: Demographics,
    /// Yes/no facts a subgroup or diagnosis criterion reads.
    flags: EnrolmentFlags,
    /// EULAR/ACR 2017 IIM classification probability in percent, 0-100.
    eular_acr_probability_percent: Option<Decimal>,
    /// Functional Index-3 as a percentage of its upper value, 0-100.
    fi3_percent_of_upper: Option<Decimal>,
    /// Months the current immunosuppressant dose has been stable before baseline.
    immunosuppressant_stable_months: Option<u32>,
    /// Months from the diagnosis to screening.
    disease_duration_months: Option<u32>,
    /// Cumulative weeks of glucocorticoid treatment before baseline.
    glucocorticoid_treated_weeks: Option<u32>,
    /// The drugs received before the trial; `None` when not reported.
    treatment_history: Option<TreatmentHistory>,
    /// The investigator's yes/no attestations under protocol-named codes.
    attestations: Attestations,
}

/// Sex as CDISC's SEX code list codes it (C66731).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Female,
    Male,
    Intersex,
    Unknown,
}

impl Sex {
    /// The CDISC submission value, also the wire value.
    pub const fn code(self) -> &'static str {
        match self {
            Sex::Female => "F",
            Sex::Male => "M",
            Sex::Intersex => "INTERSEX",
            Sex::Unknown => "U",
        }
    }

    pub const ALL: [Sex; 4] = [Sex::Female, Sex::Male, Sex::Intersex, Sex::Unknown];

    /// Parses a submission value exactly (upper case, as the code list spells it).
    pub fn parse(text: &str) -> Result<Self, Problem> {
        Self::ALL
            .into_iter()
            .find(|sex| sex.code() == text)
            .ok_or_else(|| Problem::OutOfRange {
                value: text.to_string(),
                allowed: "one of F, M, INTERSEX, U (CDISC SEX), or absent".to_string(),
            })
    }
}

/// Race as CDISC's RACE code list codes it (C74457).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Race {
    AmericanIndianOrAlaskaNative,
    Asian,
    BlackOrAfricanAmerican,
    NativeHawaiianOrOtherPacificIslander,
    White,
    Multiple,
    Other,
    NotReported,
    Unknown,
}

impl Race {
    pub const ALL: [Race; 9] = [
        Race::AmericanIndianOrAlaskaNative,
        Race::Asian,
        Race::BlackOrAfricanAmerican,
        Race::NativeHawaiianOrOtherPacificIslander,
        Race::White,
        Race::Multiple,
        Race::Other,
        Race::NotReported,
        Race::Unknown,
    ];

    /// The CDISC submission value, also the wire value.
    pub const fn code(self) -> &'static str {
        match self {
            Race::AmericanIndianOrAlaskaNative => "AMERICAN INDIAN OR ALASKA NATIVE",
            Race::Asian => "ASIAN",
            Race::BlackOrAfricanAmerican => "BLACK OR AFRICAN AMERICAN",
            Race::NativeHawaiianOrOtherPacificIslander => {
                "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER"
            }
            Race::White => "WHITE",
            Race::Multiple => "MULTIPLE",
            Race::Other => "OTHER",
            Race::NotReported => "NOT REPORTED",
            Race::Unknown => "UNKNOWN",
        }
    }

    /// Parses a submission value exactly.
    pub fn parse(text: &str) -> Result<Self, Problem> {
        Self::ALL
            .into_iter()
            .find(|race| race.code() == text)
            .ok_or_else(|| Problem::OutOfRange {
                value: text.to_string(),
                allowed:
                    "a CDISC RACE submission value (e.g. WHITE, ASIAN, NOT REPORTED), or absent"
                        .to_string(),
            })
    }
}

/// Demographics reported at enrolment; each optional, so a log written before they existed reads
/// as "not recorded", never as an invented value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Demographics {
    pub sex: Option<Sex>,
    pub race: Option<Race>,
    /// Date the subject signed informed consent (SDTM DM RFICDTC).
    pub informed_consent: Option<ClinicalDate>,
}

/// The yes/no enrolment facts besides `muscle_active`, each `None` when not recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EnrolmentFlags {
    /// Never treated for the myositis (BIRD's "naïve"); `Some(false)` = relapsing / non-naïve.
    pub treatment_naive: Option<bool>,
    /// Exposed to corticosteroids before baseline (BIRD's "in case of corticosteroid exposure").
    pub glucocorticoid_exposed: Option<bool>,
    /// On an immunosuppressant other than glucocorticoids at baseline.
    pub on_immunosuppressant: Option<bool>,
    /// Disease proven by skin biopsy (STIR).
    pub skin_biopsy_proven: Option<bool>,
    /// Definite or probable dermatomyositis by Bohan and Peter (STIR).
    pub bohan_peter_definite_or_probable: Option<bool>,
    /// Dermatomyositis by the 239th ENMC criteria (BIRD).
    pub enmc_239_dermatomyositis: Option<bool>,
    /// Active extramuscular disease: DM-specific rash, arthritis or ILD (MYOJAK).
    pub active_extramuscular_disease: Option<bool>,
    /// Inflammation on a muscle biopsy or MRI less than 12 weeks old (MYOJAK).
    pub recent_inflammation_biopsy_or_mri: Option<bool>,
    /// Severe swallowing trouble related to the disease (BIRD exclusion).
    pub severe_swallowing_trouble: Option<bool>,
    /// Negative cancer screening in the 6 months before screening (STIR).
    pub negative_cancer_screening: Option<bool>,
}

/// Every enrolment fact as reported, before range checks; what [`EnrolmentFacts::from_input`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrolmentFactsInput {
    pub age_years: Option<u32>,
    pub muscle_active: Option<bool>,
    pub prednisone_stable_weeks: Option<u32>,
    pub flags: EnrolmentFlags,
    pub eular_acr_probability_percent: Option<Decimal>,
    pub fi3_percent_of_upper: Option<Decimal>,
    pub immunosuppressant_stable_months: Option<u32>,
    pub disease_duration_months: Option<u32>,
    pub glucocorticoid_treated_weeks: Option<u32>,
    pub informed_consent_date: Option<ClinicalDate>,
    pub treatment_history: Option<TreatmentHistory>,
    pub attestations: Attestations,
}

/// Which [`EnrolmentFacts`] value a check refers to (its wire field name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentFact {
    AgeYears,
    PrednisoneStableWeeks,
    EularAcrProbabilityPercent,
    Fi3PercentOfUpper,
    ImmunosuppressantStableMonths,
    DiseaseDurationMonths,
    GlucocorticoidTreatedWeeks,
}

impl EnrolmentFact {
    pub const fn key(self) -> &'static str {
        match self {
            EnrolmentFact::AgeYears => "age_years",
            EnrolmentFact::PrednisoneStableWeeks => "prednisone_stable_weeks",
            EnrolmentFact::EularAcrProbabilityPercent => "eular_acr_probability_percent",
            EnrolmentFact::Fi3PercentOfUpper => "fi3_percent_of_upper",
            EnrolmentFact::ImmunosuppressantStableMonths => "immunosuppressant_stable_months",
            EnrolmentFact::DiseaseDurationMonths => "disease_duration_months",
            EnrolmentFact::GlucocorticoidTreatedWeeks => "glucocorticoid_treated_weeks",
        }
    }
}

impl EnrolmentFacts {
    /// Oldest accepted age: beyond it a value is a keying error, not a subject.
    pub const MAX_AGE_YEARS: u32 = 120;
    /// Ten years of weeks: a longer "stable" period adds nothing a criterion could ask for, and a
    /// larger number is most likely days or a date keyed into the wrong field.
    pub const MAX_PREDNISONE_STABLE_WEEKS: u32 = 520;
    /// A lifetime in months (for disease duration and stable immunosuppression): more is a keying error.
    pub const MAX_MONTHS: u32 = 1440;

    /// Validates each fact; every value out of range is reported, with the field it came from.
    pub fn new(
        age_years: Option<u32>,
        muscle_active: Option<bool>,
        prednisone_stable_weeks: Option<u32>,
    ) -> Result<Self, Vec<(EnrolmentFact, Problem)>> {
        Self::from_input(EnrolmentFactsInput {
            age_years,
            muscle_active,
            prednisone_stable_weeks,
            ..EnrolmentFactsInput::default()
        })
    }

    /// Validates every fact of `input`; every value out of range is reported with its field.
    pub fn from_input(input: EnrolmentFactsInput) -> Result<Self, Vec<(EnrolmentFact, Problem)>> {
        let mut problems = Vec::new();
        let mut within = |fact: EnrolmentFact, value: Option<u32>, max: u32, unit: &str| {
            if let Some(value) = value.filter(|value| *value > max) {
                problems.push((
                    fact,
                    Problem::OutOfRange {
                        value: value.to_string(),
                        allowed: format!("0 to {max} {unit}, or absent when not recorded"),
                    },
                ));
            }
        };
        within(
            EnrolmentFact::AgeYears,
            input.age_years,
            Self::MAX_AGE_YEARS,
            "completed years",
        );
        within(
            EnrolmentFact::PrednisoneStableWeeks,
            input.prednisone_stable_weeks,
            Self::MAX_PREDNISONE_STABLE_WEEKS,
            "weeks",
        );
        within(
            EnrolmentFact::ImmunosuppressantStableMonths,
            input.immunosuppressant_stable_months,
            Self::MAX_MONTHS,
            "months",
        );
        within(
            EnrolmentFact::DiseaseDurationMonths,
            input.disease_duration_months,
            Self::MAX_MONTHS,
            "months",
        );
        within(
            EnrolmentFact::GlucocorticoidTreatedWeeks,
            input.glucocorticoid_treated_weeks,
            Self::MAX_PREDNISONE_STABLE_WEEKS * 12,
            "weeks",
        );
        for (fact, value) in [
            (
                EnrolmentFact::EularAcrProbabilityPercent,
                input.eular_acr_probability_percent,
            ),
            (EnrolmentFact::Fi3PercentOfUpper, input.fi3_percent_of_upper),
        ] {
            if let Some(value) =
                value.filter(|value| *value < Decimal::ZERO || *value > Decimal::ONE_HUNDRED)
            {
                problems.push((
                    fact,
                    Problem::OutOfRange {
                        value: value.to_string(),
                        allowed: "0 to 100 percent, or absent when not recorded".into(),
                    },
                ));
            }
        }
        if problems.is_empty() {
            Ok(Self {
                age_years: input.age_years,
                muscle_active: input.muscle_active,
                prednisone_stable_weeks: input.prednisone_stable_weeks,
                flags: input.flags,
                eular_acr_probability_percent: input.eular_acr_probability_percent,
                fi3_percent_of_upper: input.fi3_percent_of_upper,
                immunosuppressant_stable_months: input.immunosuppressant_stable_months,
                disease_duration_months: input.disease_duration_months,
                glucocorticoid_treated_weeks: input.glucocorticoid_treated_weeks,
                treatment_history: input.treatment_history,
                attestations: input.attestations,
                demographics: Demographics {
                    informed_consent: input.informed_consent_date,
                    ..Demographics::default()
                },
            })
        } else {
            Err(problems)
        }
    }

    /// The same facts with the subject's demographics.
    pub const fn with_demographics(mut self, demographics: Demographics) -> Self {
        self.demographics = demographics;
        self
    }

    pub const fn demographics(&self) -> Demographics {
        self.demographics
    }

    pub const fn age_years(&self) -> Option<u32> {
        self.age_years
    }

    pub const fn muscle_active(&self) -> Option<bool> {
        self.muscle_active
    }

    pub const fn prednisone_stable_weeks(&self) -> Option<u32> {
        self.prednisone_stable_weeks
    }

    pub const fn flags(&self) -> &EnrolmentFlags {
        &self.flags
    }

    pub const fn eular_acr_probability_percent(&self) -> Option<Decimal> {
        self.eular_acr_probability_percent
    }

    pub const fn fi3_percent_of_upper(&self) -> Option<Decimal> {
        self.fi3_percent_of_upper
    }

    pub const fn immunosuppressant_stable_months(&self) -> Option<u32> {
        self.immunosuppressant_stable_months
    }

    pub const fn disease_duration_months(&self) -> Option<u32> {
        self.disease_duration_months
    }

    pub const fn glucocorticoid_treated_weeks(&self) -> Option<u32> {
        self.glucocorticoid_treated_weeks
    }

    pub const fn informed_consent_date(&self) -> Option<ClinicalDate> {
        self.demographics.informed_consent
    }

    pub const fn treatment_history(&self) -> Option<&TreatmentHistory> {
        self.treatment_history.as_ref()
    }

    pub const fn attestations(&self) -> &Attestations {
        &self.attestations
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    StudyRegistered {
        title: String,
        population: Population,
        baseline_visit: VisitId,
        /// The study's protocol, parsed from the TOML the event carries; `None` for a study
        /// registered without one (free visit ids, no endpoints). Shared: replay and the
        /// projection keep the same parse.
        protocol: Option<std::sync::Arc<Protocol>>,
        /// Registered as blinded (the protocol's blinding may blind it too).
        blinded: bool,
    },
    /// A new protocol version (an amendment) of a study registered with a protocol.
    ProtocolAmended {
        protocol: std::sync::Arc<Protocol>,
    },
    SubjectEnrolled {
        arm: String,
        population: Option<Population>,
        /// The site that enrolled the subject; `None` when the EDC names none.
        site: Option<SiteId>,
        /// Eligibility facts reported at enrolment (all absent in events sent before they existed).
        facts: EnrolmentFacts,
    },
    AssessmentRecorded(Assessment),
    AssessmentCorrected {
        supersedes: EventId,
        reason: Reason,
        corrected: Assessment,
    },
    SubjectWithdrawn {
        reason: Reason,
    },
    DoseRecorded(Dose),
    /// Database lock: the study takes no further writes until [`EventBody::StudyUnlocked`].
    StudyLocked {
        reason: Reason,
    },
    /// The study's lock is lifted.
    StudyUnlocked {
        reason: Reason,
    },
    /// The study's blinding is lifted.
    StudyUnblinded {
        reason: Reason,
    },
    /// An assessment withdrawn at the source: the retracted form stops counting (it leaves the
    /// visit's live set, as a superseded one does) and stays in the log.
    AssessmentRetracted {
        retracts: EventId,
        reason: Reason,
    },
}

impl EventBody {
    /// The event's type name, as stored in the log envelope (the protobuf message name).
    pub const fn type_name(&self) -> &'static str {
        match self {
            EventBody::StudyRegistered { .. } => "myolog.v1.StudyRegistered",
            EventBody::SubjectEnrolled { .. } => "myolog.v1.SubjectEnrolled",
            EventBody::AssessmentRecorded(_) => "myolog.v1.AssessmentRecorded",
            EventBody::AssessmentCorrected { .. } => "myolog.v1.AssessmentCorrected",
            EventBody::SubjectWithdrawn { .. } => "myolog.v1.SubjectWithdrawn",
            EventBody::DoseRecorded(_) => "myolog.v1.DoseRecorded",
            EventBody::ProtocolAmended { .. } => "myolog.v1.ProtocolAmended",
            EventBody::StudyLocked { .. } => "myolog.v1.StudyLocked",
            EventBody::StudyUnlocked { .. } => "myolog.v1.StudyUnlocked",
            EventBody::StudyUnblinded { .. } => "myolog.v1.StudyUnblinded",
            EventBody::AssessmentRetracted { .. } => "myolog.v1.AssessmentRetracted",
        }
    }

    /// Whether the event must name a subject (all but the study-level events: StudyRegistered,
    /// ProtocolAmended, StudyLocked and StudyUnlocked).
    pub const fn needs_subject(&self) -> bool {
        !matches!(
            self,
            EventBody::StudyRegistered { .. }
                | EventBody::ProtocolAmended { .. }
                | EventBody::StudyLocked { .. }
                | EventBody::StudyUnlocked { .. }
                | EventBody::StudyUnblinded { .. }
        )
    }

    /// Whether the event must name a visit (assessments, corrections, retractions, doses).
    pub const fn needs_visit(&self) -> bool {
        matches!(
            self,
            EventBody::AssessmentRecorded(_)
                | EventBody::AssessmentCorrected { .. }
                | EventBody::AssessmentRetracted { .. }
                | EventBody::DoseRecorded(_)
        )
    }

    /// The assessment the event contributes to its visit, if any (the corrected one for corrections).
    pub const fn assessment(&self) -> Option<&Assessment> {
        match self {
            EventBody::AssessmentRecorded(assessment)
            | EventBody::AssessmentCorrected {
                corrected: assessment,
                ..
            } => Some(assessment),
            _ => None,
        }
    }
}

/// A validated event: who and when (clinically) and what. Recorded-at and recorded-by are not here:
/// the log adds them from the server clock and the caller's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: EventId,
    pub study: StudyId,
    /// Absent only for the study-level events (StudyRegistered, ProtocolAmended, StudyLocked,
    /// StudyUnlocked).
    pub subject: Option<SubjectId>,
    /// Present for assessments, corrections, retractions and doses.
    pub visit: Option<VisitId>,
    pub clinical_date: ClinicalDate,
    pub body: EventBody,
    /// The source system's own audit record of the change, when it has one (an EDC's audit trail).
    /// Kept beside the log's recorded-at and recorded-by, never instead of them. Boxed: most events
    /// have none, and an event stays small without it.
    pub source: Option<Box<SourceAudit>>,
}

/// Longest source audit text other than the reason (user, location, audit id), in characters.
pub const MAX_SOURCE_TEXT_LEN: usize = 200;

/// The source system's account of a change: who, when (as it wrote the time, with the offset it
/// states or the zone it is in) and why, and its own id of the audit record. Each part is optional;
/// the text is the source's, only bounded in length.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SourceAudit {
    pub user: Option<String>,
    pub timestamp: Option<String>,
    pub utc_offset: Option<String>,
    pub time_zone: Option<String>,
    pub reason: Option<String>,
    pub source_id: Option<String>,
    pub location: Option<String>,
}

/// Which [`SourceAudit`] part a check refers to (its wire field name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAuditField {
    User,
    Timestamp,
    UtcOffset,
    TimeZone,
    Reason,
    SourceId,
    Location,
}

impl SourceAuditField {
    pub const fn key(self) -> &'static str {
        match self {
            SourceAuditField::User => "user",
            SourceAuditField::Timestamp => "timestamp",
            SourceAuditField::UtcOffset => "utc_offset",
            SourceAuditField::TimeZone => "time_zone",
            SourceAuditField::Reason => "reason",
            SourceAuditField::SourceId => "source_id",
            SourceAuditField::Location => "location",
        }
    }

    /// The longest text the part may hold, in characters.
    pub const fn max_len(self) -> usize {
        match self {
            SourceAuditField::Reason => MAX_REASON_LEN,
            SourceAuditField::Timestamp | SourceAuditField::TimeZone => MAX_ID_LEN,
            SourceAuditField::UtcOffset => 6,
            SourceAuditField::User | SourceAuditField::SourceId | SourceAuditField::Location => {
                MAX_SOURCE_TEXT_LEN
            }
        }
    }
}

impl SourceAudit {
    /// Validates the length of each part (empty text is "not stated", i.e. `None`); every part too
    /// long is reported. `None` when nothing at all is stated.
    pub fn new(
        parts: [(SourceAuditField, &str); 7],
    ) -> Result<Option<Self>, Vec<(SourceAuditField, Problem)>> {
        let mut audit = SourceAudit::default();
        let mut problems = Vec::new();
        for (field, text) in parts {
            if text.is_empty() {
                continue;
            }
            let len = text.chars().count();
            if len > field.max_len() {
                problems.push((
                    field,
                    Problem::OutOfRange {
                        value: format!("{len} characters"),
                        allowed: format!("0 to {} characters", field.max_len()),
                    },
                ));
                continue;
            }
            let slot = match field {
                SourceAuditField::User => &mut audit.user,
                SourceAuditField::Timestamp => &mut audit.timestamp,
                SourceAuditField::UtcOffset => &mut audit.utc_offset,
                SourceAuditField::TimeZone => &mut audit.time_zone,
                SourceAuditField::Reason => &mut audit.reason,
                SourceAuditField::SourceId => &mut audit.source_id,
                SourceAuditField::Location => &mut audit.location,
            };
            *slot = Some(text.to_string());
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok((audit != SourceAudit::default()).then_some(audit))
    }
}

/// Which header field an [`Event::new`] check refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    SubjectId,
    VisitId,
}

impl HeaderField {
    pub const fn key(self) -> &'static str {
        match self {
            HeaderField::SubjectId => "subject_id",
            HeaderField::VisitId => "visit_id",
        }
    }
}

impl Event {
    /// Checks that the header names exactly the subject and visit the body needs, and records a
    /// carried protocol as registered under the event's study id (see [`Protocol::register_under`]).
    pub fn new(
        event_id: EventId,
        study: StudyId,
        subject: Option<SubjectId>,
        visit: Option<VisitId>,
        clinical_date: ClinicalDate,
        mut body: EventBody,
    ) -> Result<Self, (HeaderField, Problem)> {
        match (body.needs_subject(), &subject) {
            (true, None) => {
                return Err((
                    HeaderField::SubjectId,
                    Problem::Missing {
                        expected: "a subject id".to_string(),
                    },
                ));
            }
            (false, Some(_)) => {
                return Err((
                    HeaderField::SubjectId,
                    Problem::NotAllowed(format!(
                        "{} names no subject; leave subject_id empty",
                        body.type_name()
                    )),
                ));
            }
            _ => {}
        }
        match (body.needs_visit(), &visit) {
            (true, None) => {
                return Err((
                    HeaderField::VisitId,
                    Problem::Missing {
                        expected: "a visit id".to_string(),
                    },
                ));
            }
            (false, Some(_)) => {
                return Err((
                    HeaderField::VisitId,
                    Problem::NotAllowed(format!(
                        "{} names no visit; leave visit_id empty",
                        body.type_name()
                    )),
                ));
            }
            _ => {}
        }
        // A protocol carried by a study's event is that study's protocol, whatever id its file
        // gives: the outcomes computed under it name both ids when they differ.
        if let EventBody::StudyRegistered {
            protocol: Some(protocol),
            ..
        }
        | EventBody::ProtocolAmended { protocol } = &mut body
        {
            std::sync::Arc::make_mut(protocol).register_under(study.as_str());
        }
        Ok(Self {
            event_id,
            study,
            subject,
            visit,
            clinical_date,
            body,
            source: None,
        })
    }

    /// The same event with the source system's audit record.
    #[must_use]
    pub fn with_source(mut self, source: Option<SourceAudit>) -> Self {
        self.source = source.map(Box::new);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A calendar date as (year, month, day), or `None` when the text must be rejected.
    type ExpectedDate = Option<(u16, u8, u8)>;

    #[test]
    fn enrolment_facts_accept_their_ranges_and_name_each_value_out_of_it() {
        // (age, stable weeks, fields rejected)
        let cases: &[(Option<u32>, Option<u32>, &[&str])] = &[
            (None, None, &[]),
            (Some(0), Some(0), &[]),
            (Some(120), Some(520), &[]),
            (Some(121), Some(520), &["age_years"]),
            (Some(120), Some(521), &["prednisone_stable_weeks"]),
            (
                Some(u32::MAX),
                Some(u32::MAX),
                &["age_years", "prednisone_stable_weeks"],
            ),
        ];
        for (age, weeks, rejected) in cases {
            let fields: Vec<&str> = match EnrolmentFacts::new(*age, Some(true), *weeks) {
                Ok(facts) => {
                    assert_eq!(
                        (
                            facts.age_years(),
                            facts.muscle_active(),
                            facts.prednisone_stable_weeks()
                        ),
                        (*age, Some(true), *weeks)
                    );
                    Vec::new()
                }
                Err(problems) => problems.iter().map(|(fact, _)| fact.key()).collect(),
            };
            assert_eq!(fields, *rejected, "{age:?} {weeks:?}");
        }
        let Err(problems) = EnrolmentFacts::new(Some(150), None, None) else {
            panic!("150 years is out of range");
        };
        assert_eq!(
            problems[0].1.to_string(),
            "150 is out of range; allowed: 0 to 120 completed years, or absent when not recorded"
        );
    }

    #[test]
    fn dates_parse_exactly() {
        let cases: &[(&str, ExpectedDate)] = &[
            ("2024-02-29", Some((2024, 2, 29))),
            ("2023-02-29", None),
            ("1900-02-29", None),
            ("2000-02-29", Some((2000, 2, 29))),
            ("2024-04-31", None),
            ("2024-12-31", Some((2024, 12, 31))),
            ("2024-13-01", None),
            ("2024-00-10", None),
            ("1899-12-31", None),
            ("2024-1-01", None),
            ("2024-01-01T00:00", None),
            ("+024-01-01", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let parsed = ClinicalDate::parse(text)
                .ok()
                .map(|d| (d.year(), d.month(), d.day()));
            assert_eq!(parsed, *expected, "{text}");
        }
    }

    #[test]
    fn identifiers_are_checked() {
        let cases: &[(&str, bool)] = &[
            ("STIR", true),
            ("STIR-001", true),
            ("week.12:a_b", true),
            ("", false),
            ("has space", false),
            ("slash/no", false),
            ("é", false),
        ];
        for (text, ok) in cases {
            assert_eq!(StudyId::new(*text).is_ok(), *ok, "{text:?}");
        }
        assert!(EventId::new("x".repeat(MAX_ID_LEN)).is_ok());
        assert!(EventId::new("x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn reasons_must_be_present() {
        assert!(Reason::new("transcription error").is_ok());
        assert!(Reason::new("  ").is_err());
        assert!(Reason::new("x".repeat(MAX_REASON_LEN + 1)).is_err());
    }
}
