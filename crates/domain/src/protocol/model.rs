//! The validated protocol: a study's design in the vocabulary of CDISC USDM / SDTM trial design (arms,
//! epochs, elements, encounters with target day and window, eligibility criteria, objectives and
//! endpoints). A `Protocol` exists only once every cross-reference and range has been checked, so the
//! code that uses it never re-checks.
//!
//! Days are counted from the arm-independent day 0 (randomisation, or enrolment in a single-arm study):
//! week N is day 7N. SDTM study days have no day 0; the TDM export converts (`sdtm_study_day`).

use crate::treatment_history::{AttestationCode, PriorDrug, TreatmentResponse};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated study protocol, one version of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protocol {
    pub(super) version: u32,
    pub(super) amendment: Option<Amendment>,
    pub(super) study: Study,
    pub(super) conventions: Conventions,
    pub(super) epochs: Vec<Epoch>,
    pub(super) elements: Vec<Element>,
    pub(super) arms: Vec<Arm>,
    pub(super) encounters: Vec<Encounter>,
    pub(super) eligibility: Vec<Criterion>,
    pub(super) objectives: Vec<Objective>,
    pub(super) endpoints: Vec<Endpoint>,
    /// TS facts beyond the design; empty for files that have no `[trial_summary]`.
    #[serde(skip_serializing_if = "TrialSummary::is_empty")]
    pub(super) trial_summary: TrialSummary,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) interventions: Vec<Intervention>,
    /// A copy of the encounter `study.baseline_encounter` names, so reading it cannot fail.
    pub(super) baseline_encounter: Encounter,
    /// The TOML text this protocol was read from: what a StudyRegistered or ProtocolAmended event
    /// should carry, so a replay re-validates exactly what was registered.
    #[serde(skip)]
    pub(super) source: String,
    /// The study id the protocol is registered under when that is not its own `study.id` (STIR's
    /// file registered as study `STIR-DEMO`); `None` under its own id. Set from the event that
    /// carried it, so every outcome names both ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) registered_as: Option<String>,
}

impl Protocol {
    /// The protocol version: 1 for the original, +1 per amendment. Outcomes name it.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// What the amendment that produced this version changed; `None` for version 1.
    pub fn amendment(&self) -> Option<&Amendment> {
        self.amendment.as_ref()
    }
    pub fn study(&self) -> &Study {
        &self.study
    }
    pub fn conventions(&self) -> &Conventions {
        &self.conventions
    }
    /// Epochs in chronological order.
    pub fn epochs(&self) -> &[Epoch] {
        &self.epochs
    }
    pub fn elements(&self) -> &[Element] {
        &self.elements
    }
    pub fn arms(&self) -> &[Arm] {
        &self.arms
    }
    /// Encounters (planned visits) in file order.
    pub fn encounters(&self) -> &[Encounter] {
        &self.encounters
    }
    pub fn eligibility(&self) -> &[Criterion] {
        &self.eligibility
    }
    pub fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }
    pub fn trial_summary(&self) -> &TrialSummary {
        &self.trial_summary
    }
    pub fn interventions(&self) -> &[Intervention] {
        &self.interventions
    }
    /// The TOML text the protocol was read from.
    pub fn source_toml(&self) -> &str {
        &self.source
    }

    /// The study id this protocol is registered under, when it is not the protocol's own.
    pub fn registered_as(&self) -> Option<&str> {
        self.registered_as.as_deref()
    }

    /// Records the study id the protocol is registered under, kept only when it differs from the
    /// protocol's own study id: a protocol under its own id reads exactly as its file.
    pub fn register_under(&mut self, study_id: &str) {
        self.registered_as = (study_id != self.study.id).then(|| study_id.to_string());
    }

    /// One line for `myolog study validate`: what was understood, e.g.
    /// `STIR v1 (NCT03002649): 1 arm, 3 epochs, 6 visits, 4 eligibility criteria, 9 endpoints; primary DOI_W12 (doi at W12)`.
    pub fn summary(&self) -> String {
        let plural = |count: usize, word: &str| {
            format!("{count} {word}{}", if count == 1 { "" } else { "s" })
        };
        let registry = self
            .study
            .registry_id
            .as_ref()
            .map(|id| format!(" ({id})"))
            .unwrap_or_default();
        let primary: Vec<String> = self
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.level == Level::Primary)
            .map(|endpoint| {
                let mut encounters: Vec<&str> = endpoint
                    .encounter_by_arm
                    .iter()
                    .map(|(_, encounter)| encounter.as_str())
                    .collect();
                encounters.dedup();
                format!(
                    "{} ({} at {})",
                    endpoint.id,
                    endpoint.outcome.name(),
                    encounters.join("/")
                )
            })
            .collect();
        format!(
            "{} v{}{registry}: {}, {}, {}, {} eligibility criteria, {}; primary {}",
            self.study.id,
            self.version,
            plural(self.arms.len(), "arm"),
            plural(self.epochs.len(), "epoch"),
            plural(self.encounters.len(), "visit"),
            self.eligibility.len(),
            plural(self.endpoints.len(), "endpoint"),
            primary.join(", ")
        )
    }

    pub fn arm(&self, code: &str) -> Option<&Arm> {
        self.arms.iter().find(|arm| arm.code == code)
    }
    pub fn encounter(&self, id: &str) -> Option<&Encounter> {
        self.encounters.iter().find(|encounter| encounter.id == id)
    }
    pub fn endpoint(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|endpoint| endpoint.id == id)
    }
    pub fn epoch(&self, id: &str) -> Option<&Epoch> {
        self.epochs.iter().find(|epoch| epoch.id == id)
    }
    pub fn element(&self, code: &str) -> Option<&Element> {
        self.elements.iter().find(|element| element.code == code)
    }
    /// The encounter whose assessments are the randomisation-day baseline (target day 0).
    pub fn baseline_encounter(&self) -> &Encounter {
        &self.baseline_encounter
    }
}

/// What an amendment changed, in the author's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Amendment {
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Study {
    /// SDTM STUDYID.
    pub id: String,
    /// Public registry id, e.g. `NCT03002649` (SDTM TS REGID).
    pub registry_id: Option<String>,
    pub title: String,
    pub phase: Phase,
    pub blinding: Blinding,
    pub randomised: bool,
    /// Adult or juvenile: selects the TIS category cut-offs.
    pub population: Population,
    pub planned_subjects: Option<u32>,
    /// Added on to existing (usual-care) treatment (SDTM TS ADDON); `None` when the protocol is silent.
    pub add_on: Option<bool>,
    /// Investigational treatments in words (SDTM TS TRT).
    pub treatments: Vec<String>,
    /// Id of the encounter at day 0 whose assessments are the randomisation baseline.
    pub baseline_encounter: String,
}

/// Trial phase (SDTM TS TPHASE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    #[serde(rename = "1")]
    One,
    #[serde(rename = "1/2")]
    OneTwo,
    #[serde(rename = "2")]
    Two,
    /// Phase IIa (MYOJAK's "phase IIa"): CDISC has its own term for it.
    #[serde(rename = "2a")]
    TwoA,
    #[serde(rename = "2b")]
    TwoB,
    #[serde(rename = "2/3")]
    TwoThree,
    #[serde(rename = "3")]
    Three,
    #[serde(rename = "4")]
    Four,
}

impl Phase {
    /// The CDISC controlled term for TS TPHASE.
    pub fn sdtm_term(self) -> &'static str {
        match self {
            Phase::One => "PHASE I TRIAL",
            Phase::OneTwo => "PHASE I/II TRIAL",
            Phase::Two => "PHASE II TRIAL",
            Phase::TwoA => "PHASE IIA TRIAL",
            Phase::TwoB => "PHASE IIB TRIAL",
            Phase::TwoThree => "PHASE II/III TRIAL",
            Phase::Three => "PHASE III TRIAL",
            Phase::Four => "PHASE IV TRIAL",
        }
    }
}

/// Who knows the assigned treatment (SDTM TS TBLIND).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blinding {
    OpenLabel,
    SingleBlind,
    DoubleBlind,
}

impl Blinding {
    pub fn sdtm_term(self) -> &'static str {
        match self {
            Blinding::OpenLabel => "OPEN LABEL",
            Blinding::SingleBlind => "SINGLE BLIND",
            Blinding::DoubleBlind => "DOUBLE BLIND",
        }
    }
}

/// The population whose TIS thresholds apply: the same type a visit is scored with.
pub use crate::visit::Population;

/// Scoring conventions the published sources leave open (docs/clinical.md#11-conventions-where-the-sources-are-silent); each computed outcome names the one it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conventions {
    /// MMT-8 maximum: 80 (unilateral) or 150 (bilateral). No default: both are in use.
    pub mmt8_max: u16,
    /// The Kendall grade "T" (trace) counts as; `None` (default) rejects trace (docs/clinical.md#2-mmt-8-total).
    pub mmt_trace_grade: Option<u8>,
    /// Global activity scale; default `vas_cm` (Likert only where a study says so).
    pub global_scale: GlobalScale,
    /// HAQ-DI needs at least this many answered categories: 6 (Stanford, default) or 7.
    pub haq_min_categories: u8,
    /// CDASI activity minimal clinically important improvement: 4 (UPenn, default) or 5 (Stanford).
    pub cdasi_mcid: u8,
    /// CDASI activity cut-off between mild and moderate/severe: 14 (Stanford, default) or 19 (UPenn).
    pub cdasi_severity_cutoff: u8,
    /// DOI percent change denominator; default relative to baseline [D].
    pub doi_percent_change: PercentChangeRule,
    /// TIS percent change for the globals, HAQ-DI and MMT; default the range of the scale [D].
    /// The enzyme is always relative to baseline.
    pub tis_percent_change: PercentChangeRule,
}

/// The scale a protocol declares for its globals: the same type a recorded global carries.
pub use crate::global::GlobalScale;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PercentChangeRule {
    /// (follow-up - baseline) / baseline x 100.
    RelativeToBaseline,
    /// (follow-up - baseline) / (maximum of the scale) x 100.
    RangeOfScale,
}

/// A period of the study (USDM StudyEpoch; SDTM EPOCH).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Epoch {
    pub id: String,
    pub name: String,
    pub epoch_type: EpochType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochType {
    Screening,
    RunIn,
    Washout,
    Treatment,
    FollowUp,
}

/// A planned building block of an arm within an epoch (USDM StudyElement; SDTM ETCD/ELEMENT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Element {
    /// SDTM ETCD: at most 8 characters.
    pub code: String,
    pub name: String,
    /// SDTM TE TESTRL: what starts the element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_rule: Option<String>,
    /// SDTM TE TEENRL: what ends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_rule: Option<String>,
    /// SDTM TE TEDUR: planned duration, ISO 8601 (`P12W`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// TS facts beyond the design, as the protocol file states them. Coded values are CDISC submission
/// values that validation found in the CT extract.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrialSummary {
    pub sponsor: Option<String>,
    /// Registry ids besides `study.registry_id` (SDTM TS REGID, TSVCDREF = the registry).
    pub other_ids: Vec<RegistryId>,
    /// ISO 3166-1 alpha-3 (SDTM TS FCNTRY).
    pub countries: Vec<String>,
    pub sex: Option<String>,
    pub healthy_volunteers: Option<bool>,
    pub intervention_model: Option<String>,
    pub intervention_type: Option<String>,
    pub control: Option<String>,
    pub trial_types: Vec<String>,
    pub intent: Option<String>,
    pub indication: Option<String>,
    pub diagnosis_group: Option<String>,
    pub pharmacological_class: Option<String>,
    pub current_therapy: Option<String>,
    pub rare_disease: Option<bool>,
    pub adaptive: Option<bool>,
    pub stopping_rule: Option<String>,
    pub end_date: Option<String>,
    /// TS parameter codes whose values are our assumptions [D].
    pub assumptions: Vec<String>,
}

impl TrialSummary {
    pub fn is_empty(&self) -> bool {
        *self == TrialSummary::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryId {
    /// A DICTNAM submission value, e.g. `EudraCT`.
    pub registry: String,
    pub id: String,
}

/// A study treatment: the substance, with its dose parameters apart (SDTM TS TRT / COMPTRT, DOSE,
/// DOSU, DOSFRQ, ROUTE, DOSFRM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Intervention {
    pub substance: String,
    pub role: InterventionRole,
    pub dose: Option<Decimal>,
    pub dose_unit: Option<String>,
    pub frequency: Option<String>,
    pub route: Option<String>,
    pub form: Option<String>,
    /// Arms that receive it; empty = every arm.
    pub arms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionRole {
    /// The investigational treatment (TS TRT).
    Investigational,
    /// The comparator, e.g. placebo (TS COMPTRT).
    Comparator,
}

/// A planned path through the epochs (USDM StudyArm; SDTM ARMCD/ARM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arm {
    /// SDTM ARMCD: at most 20 characters.
    pub code: String,
    pub name: String,
    pub arm_type: ArmType,
    pub baseline: BaselineRule,
    /// Planned day of the first dose: 0 unless the arm starts late (delayed start).
    pub first_dose_day: i32,
    /// One element per epoch the arm passes through, in epoch order (USDM StudyCell).
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmType {
    Experimental,
    PlaceboComparator,
    ActiveComparator,
    NoIntervention,
}

/// Where an arm's treatment baseline lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineRule {
    /// Day 0: randomisation (or enrolment in a single-arm study), which is also the first dose.
    Randomisation,
    /// The subject's own first dose (delayed start): baseline is the last assessment on or before it.
    OwnFirstDose,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub epoch: String,
    pub element: String,
}

/// A planned visit (USDM Encounter; SDTM TV row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Encounter {
    /// The visit id an EDC sends.
    pub id: String,
    /// SDTM VISIT.
    pub name: String,
    /// SDTM VISITNUM.
    pub visit_number: u32,
    pub epoch: String,
    /// The epoch for arms where it differs from `epoch` (MYOJAK week 36: follow-up for the immediate
    /// arm, on drug for the delayed one); empty for most visits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub epoch_by_arm: Vec<(String, String)>,
    /// Target day counted from day 0 (week N = day 7N).
    pub target_day: i32,
    /// Allowed days, both ends inclusive; contains `target_day`.
    pub window: DayWindow,
    /// Arms that have this visit; empty means every arm.
    pub arms: Vec<String>,
    /// A visit a subject may skip without it counting as missing (e.g. an optional extension).
    pub optional: bool,
}

impl Encounter {
    pub fn applies_to(&self, arm_code: &str) -> bool {
        self.arms.is_empty() || self.arms.iter().any(|arm| arm == arm_code)
    }

    /// The epoch this visit falls in for a subject of `arm_code`.
    pub fn epoch_for(&self, arm_code: &str) -> &str {
        self.epoch_by_arm
            .iter()
            .find(|(arm, _)| arm == arm_code)
            .map_or(self.epoch.as_str(), |(_, epoch)| epoch.as_str())
    }
}

/// An inclusive range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayWindow {
    pub first_day: i32,
    pub last_day: i32,
}

impl DayWindow {
    pub fn contains(self, day: i32) -> bool {
        self.first_day <= day && day <= self.last_day
    }
    pub fn overlaps(self, other: DayWindow) -> bool {
        self.first_day <= other.last_day && other.first_day <= self.last_day
    }
}

impl fmt::Display for DayWindow {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "[{}, {}]", self.first_day, self.last_day)
    }
}

/// One inclusion or exclusion criterion (SDTM TI row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Criterion {
    /// SDTM IETESTCD: a letter, then letters, digits or `_`, at most 8 characters.
    pub id: String,
    pub category: CriterionCategory,
    /// SDTM IETEST: at most 200 characters.
    pub text: String,
    pub rule: Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriterionCategory {
    Inclusion,
    Exclusion,
}

/// A structured eligibility rule over baseline measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Rule {
    Compare {
        measure: Measure,
        op: CompareOp,
        threshold: Decimal,
    },
    Flag {
        flag: Flag,
        is: bool,
    },
    /// At least one muscle enzyme above its lab's upper limit of normal.
    AnyEnzymeAboveUln,
    AllOf(Vec<Rule>),
    AnyOf(Vec<Rule>),
    AtLeast {
        count: u32,
        rules: Vec<Rule>,
    },
    /// `then` applies only when `condition` is met; otherwise the rule is not applicable.
    When {
        condition: Box<Rule>,
        then: Box<Rule>,
    },
    /// The highest prednisone-equivalent daily dose in effect at any time within `weeks` weeks before
    /// baseline, from the subject's glucocorticoid dose records (STIR: none above 80 mg/day within 8).
    GlucocorticoidMaxWithin {
        weeks: u32,
        op: CompareOp,
        threshold: Decimal,
    },
    /// At some time before baseline, at least `mg_per_day` prednisone-equivalent for at least
    /// `weeks` weeks without a break, from the dose records (MYOJAK: >= 20 mg/day for >= 4 weeks).
    GlucocorticoidSustained {
        mg_per_day: Decimal,
        weeks: u32,
    },
    /// Written informed consent dated on or before the baseline visit.
    InformedConsent,
    /// None of `drugs` within `period` before baseline: each listed drug was either never received
    /// or last given at least that long before day 0 (STIR: rituximab 12 months).
    Washout {
        drugs: Vec<PriorDrug>,
        period: WashoutPeriod,
    },
    /// At least `count` of `drugs` were received and answered with one of `responses` (STIR's
    /// refractory definition: failure of prednisone and of 1 first-line immunosuppressant).
    PriorResponse {
        drugs: Vec<PriorDrug>,
        responses: Vec<TreatmentResponse>,
        count: u32,
    },
    /// A yes/no fact the investigator attests under `code` (a negative pregnancy test, social
    /// security affiliation): not computed, but recorded, so the criterion is checked like any other.
    Attested {
        code: AttestationCode,
        is: bool,
    },
}

/// How long before baseline a washout reaches back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WashoutPeriod {
    /// 7 days a week.
    Weeks(u32),
    /// Completed calendar months (`treatment_history::completed_months`); a year is 12.
    Months(u32),
}

impl fmt::Display for WashoutPeriod {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WashoutPeriod::Weeks(weeks) => write!(formatter, "{weeks} weeks"),
            WashoutPeriod::Months(months) => write!(formatter, "{months} months"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |rules: &[Rule]| {
            rules
                .iter()
                .map(Rule::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self {
            Rule::Compare {
                measure,
                op,
                threshold,
            } => write!(formatter, "{measure} {op} {threshold}"),
            Rule::Flag { flag, is } => write!(formatter, "{flag} is {is}"),
            Rule::AnyEnzymeAboveUln => formatter.write_str("any enzyme > ULN"),
            Rule::AllOf(rules) => write!(formatter, "all of ({})", join(rules)),
            Rule::AnyOf(rules) => write!(formatter, "any of ({})", join(rules)),
            Rule::AtLeast { count, rules } => {
                write!(formatter, "at least {count} of ({})", join(rules))
            }
            Rule::When { condition, then } => write!(formatter, "if {condition} then {then}"),
            Rule::GlucocorticoidMaxWithin {
                weeks,
                op,
                threshold,
            } => write!(
                formatter,
                "max glucocorticoid mg/day within {weeks} weeks before baseline {op} {threshold}"
            ),
            Rule::GlucocorticoidSustained { mg_per_day, weeks } => write!(
                formatter,
                "glucocorticoid >= {mg_per_day} mg/day for >= {weeks} weeks before baseline"
            ),
            Rule::InformedConsent => formatter.write_str("informed consent on or before baseline"),
            Rule::Washout { drugs, period } => write!(
                formatter,
                "no {} within {period} before baseline",
                names(drugs, " or ")
            ),
            // Compact, because TI's TIRL holds the whole rule in at most 200 characters (STIR's
            // refractory definition nests three of these).
            Rule::PriorResponse {
                drugs,
                responses,
                count,
            } => {
                if *count > 1 {
                    write!(formatter, "at least {count} of ")?;
                }
                write!(formatter, "{} {}", names(drugs, "/"), names(responses, "/"))
            }
            Rule::Attested { code, is } => write!(formatter, "attested {code} is {is}"),
        }
    }
}

fn names<T: fmt::Display>(items: &[T], separator: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

/// A numeric baseline measure an eligibility rule can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Age in completed years.
    AgeYears,
    CdasiActivity,
    CdasiDamage,
    /// On the protocol's MMT-8 scale (`conventions.mmt8_max`).
    Mmt8Total,
    /// On the protocol's global scale (`conventions.global_scale`).
    PhysicianGlobal,
    PatientGlobal,
    ExtramuscularGlobal,
    HaqDi,
    PrednisoneMgPerDay,
    /// Weeks the current prednisone dose has been stable.
    PrednisoneStableWeeks,
    /// EULAR/ACR 2017 IIM classification probability, percent (MYOJAK: at least 55 %).
    EularAcrProbabilityPercent,
    /// Functional Index-3 as a percentage of its upper value (MYOJAK: below 20 %).
    Fi3PercentOfUpper,
    /// Months the current immunosuppressant dose has been stable before baseline (BIRD: >= 3).
    ImmunosuppressantStableMonths,
    /// Months from diagnosis to screening (STIR: at least 6).
    DiseaseDurationMonths,
    /// Cumulative weeks of glucocorticoid treatment before baseline (MYOJAK: at least 12).
    GlucocorticoidTreatedWeeks,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::AgeYears => "age_years",
            Measure::CdasiActivity => "cdasi_activity",
            Measure::CdasiDamage => "cdasi_damage",
            Measure::Mmt8Total => "mmt8_total",
            Measure::PhysicianGlobal => "physician_global",
            Measure::PatientGlobal => "patient_global",
            Measure::ExtramuscularGlobal => "extramuscular_global",
            Measure::HaqDi => "haq_di",
            Measure::PrednisoneMgPerDay => "prednisone_mg_per_day",
            Measure::PrednisoneStableWeeks => "prednisone_stable_weeks",
            Measure::EularAcrProbabilityPercent => "eular_acr_probability_percent",
            Measure::Fi3PercentOfUpper => "fi3_percent_of_upper",
            Measure::ImmunosuppressantStableMonths => "immunosuppressant_stable_months",
            Measure::DiseaseDurationMonths => "disease_duration_months",
            Measure::GlucocorticoidTreatedWeeks => "glucocorticoid_treated_weeks",
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A yes/no baseline fact an eligibility rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The investigator judges the muscle disease active.
    MuscleActive,
    /// Never treated for the myositis; false = relapsing / non-naive (BIRD).
    TreatmentNaive,
    /// Exposed to corticosteroids before baseline (BIRD).
    GlucocorticoidExposed,
    /// On an immunosuppressant other than glucocorticoids at baseline (BIRD).
    OnImmunosuppressant,
    /// Disease proven by skin biopsy (STIR).
    SkinBiopsyProven,
    /// Definite or probable dermatomyositis by Bohan and Peter (STIR).
    BohanPeterDefiniteOrProbable,
    /// Dermatomyositis by the 239th ENMC criteria (BIRD).
    #[serde(rename = "enmc_239_dermatomyositis")]
    Enmc239Dermatomyositis,
    /// Active extramuscular disease: DM-specific rash, arthritis or ILD (MYOJAK).
    ActiveExtramuscularDisease,
    /// Inflammation on a muscle biopsy or MRI less than 12 weeks old (MYOJAK).
    RecentInflammationBiopsyOrMri,
    /// Severe swallowing trouble related to the disease (BIRD exclusion).
    SevereSwallowingTrouble,
    /// Negative cancer screening in the 6 months before screening (STIR).
    NegativeCancerScreening,
}

impl Flag {
    pub fn name(self) -> &'static str {
        match self {
            Flag::MuscleActive => "muscle_active",
            Flag::TreatmentNaive => "treatment_naive",
            Flag::GlucocorticoidExposed => "glucocorticoid_exposed",
            Flag::OnImmunosuppressant => "on_immunosuppressant",
            Flag::SkinBiopsyProven => "skin_biopsy_proven",
            Flag::BohanPeterDefiniteOrProbable => "bohan_peter_definite_or_probable",
            Flag::Enmc239Dermatomyositis => "enmc_239_dermatomyositis",
            Flag::ActiveExtramuscularDisease => "active_extramuscular_disease",
            Flag::RecentInflammationBiopsyOrMri => "recent_inflammation_biopsy_or_mri",
            Flag::SevereSwallowingTrouble => "severe_swallowing_trouble",
            Flag::NegativeCancerScreening => "negative_cancer_screening",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
    #[serde(rename = "==")]
    Equal,
}

impl CompareOp {
    pub fn holds(self, value: Decimal, threshold: Decimal) -> bool {
        match self {
            CompareOp::Less => value < threshold,
            CompareOp::LessOrEqual => value <= threshold,
            CompareOp::Greater => value > threshold,
            CompareOp::GreaterOrEqual => value >= threshold,
            CompareOp::Equal => value == threshold,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
            CompareOp::Greater => ">",
            CompareOp::GreaterOrEqual => ">=",
            CompareOp::Equal => "==",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Primary,
    Secondary,
    Exploratory,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Objective {
    pub id: String,
    pub level: Level,
    pub text: String,
}

/// What an endpoint measures, at which encounter, from which baseline, with which responder rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub objective: String,
    pub level: Level,
    pub text: String,
    pub outcome: Outcome,
    /// The encounter of each arm, in arm order: usually the same for all; a delayed-start endpoint
    /// measured from the own first dose names a later encounter for the delayed arm.
    pub encounter_by_arm: Vec<(String, String)>,
    pub baseline: EndpointBaseline,
    pub responder: Option<ResponderRule>,
    pub missing_data: MissingDataRule,
}

impl Endpoint {
    /// The encounter this endpoint reads for a subject of `arm_code`.
    pub fn encounter_for(&self, arm_code: &str) -> Option<&str> {
        self.encounter_by_arm
            .iter()
            .find(|(arm, _)| arm == arm_code)
            .map(|(_, encounter)| encounter.as_str())
    }
}

/// The outcome names a protocol may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeName {
    Doi,
    TisScore,
    TisCategory,
    CdasiActivityChange,
    CdasiMcid,
    BiomarkerFoldChange,
    Stat1Change,
    PrednisoneFreeTis,
}

impl OutcomeName {
    pub fn name(self) -> &'static str {
        match self {
            OutcomeName::Doi => "doi",
            OutcomeName::TisScore => "tis_score",
            OutcomeName::TisCategory => "tis_category",
            OutcomeName::CdasiActivityChange => "cdasi_activity_change",
            OutcomeName::CdasiMcid => "cdasi_mcid",
            OutcomeName::BiomarkerFoldChange => "biomarker_fold_change",
            OutcomeName::Stat1Change => "stat1_change",
            OutcomeName::PrednisoneFreeTis => "prednisone_free_tis",
        }
    }
}

impl fmt::Display for OutcomeName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// An outcome with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Doi,
    TisScore,
    TisCategory,
    CdasiActivityChange,
    CdasiMcid,
    /// Follow-up / baseline of a coded lab analyte (e.g. `CXCL9`).
    BiomarkerFoldChange {
        analyte: String,
    },
    Stat1Change,
    /// TIS >= threshold at the encounter and 0 mg/day glucocorticoid on every dose record within the
    /// window, with at least `min_dose_records_in_window` records (fewer: not evaluable, never met).
    PrednisoneFreeTis {
        threshold: Decimal,
        glucocorticoid_window: DayWindow,
        min_dose_records_in_window: u32,
    },
}

impl Outcome {
    pub fn name(&self) -> OutcomeName {
        match self {
            Outcome::Doi => OutcomeName::Doi,
            Outcome::TisScore => OutcomeName::TisScore,
            Outcome::TisCategory => OutcomeName::TisCategory,
            Outcome::CdasiActivityChange => OutcomeName::CdasiActivityChange,
            Outcome::CdasiMcid => OutcomeName::CdasiMcid,
            Outcome::BiomarkerFoldChange { .. } => OutcomeName::BiomarkerFoldChange,
            Outcome::Stat1Change => OutcomeName::Stat1Change,
            Outcome::PrednisoneFreeTis { .. } => OutcomeName::PrednisoneFreeTis,
        }
    }
}

/// Which baseline an endpoint's change is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointBaseline {
    /// The baseline encounter at day 0, for every arm.
    Randomisation,
    /// Each subject's own first dose: the arm's `first_dose_day`, baseline = the last assessment on or
    /// before that dose. Same as `randomisation` for an arm that starts on day 0.
    OwnFirstDose,
}

/// When a subject counts as a responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResponderRule {
    DoiMet,
    /// CDASI activity improved by at least `conventions.cdasi_mcid` points.
    CdasiMcidReached {
        points: u8,
    },
    TisAtLeast(Decimal),
    TisCategoryAtLeast(TisCategory),
    /// Defined by the outcome's own threshold and glucocorticoid window.
    PrednisoneFreeTisMet,
}

/// A 2016 TIS improvement category, ordered from none to major (docs/clinical.md#6-total-improvement-score):
/// the one type the scoring result, the protocol's responder rules and every output use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TisCategory {
    None,
    Minimal,
    Moderate,
    Major,
}

impl TisCategory {
    /// The category's key in every output: `none`, `minimal`, `moderate`, `major`.
    pub const fn key(self) -> &'static str {
        match self {
            TisCategory::None => "none",
            TisCategory::Minimal => "minimal",
            TisCategory::Moderate => "moderate",
            TisCategory::Major => "major",
        }
    }
}

/// How a missing scheduled visit counts in a responder table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingDataRule {
    /// Reported as missing and left out of n/N (default).
    Missing,
    /// Counted as a non-responder (only for endpoints with a responder rule).
    NonResponderImputation,
}

/// Bridges to the scoring engineer's convention and scale types, so a protocol configures scoring.
impl Conventions {
    pub fn scoring(&self) -> crate::conventions::ScoringConventions {
        use crate::conventions::{CdasiMcid, CdasiSeverityCutoff, HaqMinimumCategories};
        crate::conventions::ScoringConventions {
            haq_min_categories: if self.haq_min_categories == 7 {
                HaqMinimumCategories::Seven
            } else {
                HaqMinimumCategories::Six
            },
            cdasi_mcid: if self.cdasi_mcid == 5 {
                CdasiMcid::Stanford5
            } else {
                CdasiMcid::UPenn4
            },
            cdasi_severity_cutoff: if self.cdasi_severity_cutoff == 19 {
                CdasiSeverityCutoff::UPenn19
            } else {
                CdasiSeverityCutoff::Stanford14
            },
        }
    }

    pub fn input(&self) -> crate::conventions::InputConventions {
        crate::conventions::InputConventions {
            allow_likert_globals: self.global_scale == GlobalScale::Likert,
            mmt_trace_grade: self.mmt_trace_grade.and_then(|grade| {
                crate::mmt8::KendallGrade::from_decimal(Decimal::from(grade)).ok()
            }),
        }
    }

    pub fn mmt_scale(&self) -> crate::mmt8::MmtScale {
        if self.mmt8_max == 80 {
            crate::mmt8::MmtScale::Unilateral
        } else {
            crate::mmt8::MmtScale::Bilateral
        }
    }
}
