//! The protocol file as written: serde structs mirroring the TOML keys one to one, every table with
//! `deny_unknown_fields` so a misspelt key is an error rather than a silently ignored setting.
//! Cross-references and value ranges are checked afterwards, in `validate`.

use super::model::{
    ArmType, BaselineRule, Blinding, CompareOp, CriterionCategory, EndpointBaseline, EpochType,
    Flag, GlobalScale, InterventionRole, Level, Measure, MissingDataRule, OutcomeName,
    PercentChangeRule, Phase, Population, TisCategory,
};
use crate::treatment_history::{PriorDrug, TreatmentResponse};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProtocolFile {
    pub protocol: VersionFile,
    pub study: StudyFile,
    pub conventions: ConventionsFile,
    pub epochs: Vec<EpochFile>,
    pub elements: Vec<ElementFile>,
    pub arms: Vec<ArmFile>,
    pub encounters: Vec<EncounterFile>,
    #[serde(default)]
    pub eligibility: Vec<CriterionFile>,
    pub objectives: Vec<ObjectiveFile>,
    pub endpoints: Vec<EndpointFile>,
    /// SDTM TS facts beyond the design (sponsor, countries, coded design terms); absent in older files.
    pub trial_summary: Option<TrialSummaryFile>,
    /// The study treatments with their dose parameters; absent in older files (then `treatments`).
    #[serde(default)]
    pub interventions: Vec<InterventionFile>,
}

/// `[trial_summary]`: coded values are CDISC submission values, checked against the CT extract.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrialSummaryFile {
    pub sponsor: Option<String>,
    #[serde(default)]
    pub other_ids: Vec<RegistryIdFile>,
    /// ISO 3166-1 alpha-3 codes.
    #[serde(default)]
    pub countries: Vec<String>,
    /// SEXPOP submission value.
    pub sex: Option<String>,
    pub healthy_volunteers: Option<bool>,
    /// INTMODEL submission value.
    pub intervention_model: Option<String>,
    /// INTTYPE submission value.
    pub intervention_type: Option<String>,
    /// TCNTRL text (no codelist in the extract).
    pub control: Option<String>,
    /// TTYPE submission values.
    #[serde(default)]
    pub trial_types: Vec<String>,
    /// TINDTP submission value.
    pub intent: Option<String>,
    pub indication: Option<String>,
    pub diagnosis_group: Option<String>,
    pub pharmacological_class: Option<String>,
    pub current_therapy: Option<String>,
    pub rare_disease: Option<bool>,
    pub adaptive: Option<bool>,
    pub stopping_rule: Option<String>,
    /// ISO 8601 date, complete or partial (`2020-09-30`, `2020-09`).
    pub end_date: Option<String>,
    /// TS parameter codes whose value here is our assumption [D], exported only on request.
    #[serde(default)]
    pub assumptions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegistryIdFile {
    /// A DICTNAM submission value: `ClinicalTrials.gov`, `EudraCT`, `CTIS`, ...
    pub registry: String,
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InterventionFile {
    pub substance: String,
    pub role: InterventionRole,
    pub dose: Option<ExactDecimal>,
    /// UNIT submission value.
    pub dose_unit: Option<String>,
    /// FREQ submission value.
    pub frequency: Option<String>,
    /// ROUTE submission value.
    pub route: Option<String>,
    /// FRM submission value.
    pub form: Option<String>,
    #[serde(default)]
    pub arms: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionFile {
    pub version: u32,
    pub amendment: Option<AmendmentFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AmendmentFile {
    pub summary: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StudyFile {
    pub id: String,
    pub registry_id: Option<String>,
    pub title: String,
    pub phase: Phase,
    pub blinding: Blinding,
    pub randomised: bool,
    pub population: Population,
    pub planned_subjects: Option<u32>,
    pub add_on: Option<bool>,
    pub treatments: Vec<String>,
    pub baseline_encounter: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConventionsFile {
    pub mmt8_max: u16,
    pub global_scale: Option<GlobalScale>,
    pub haq_min_categories: Option<u8>,
    pub cdasi_mcid: Option<u8>,
    pub cdasi_severity_cutoff: Option<u8>,
    pub mmt_trace_grade: Option<u8>,
    pub doi_percent_change: Option<PercentChangeRule>,
    pub tis_percent_change: Option<PercentChangeRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EpochFile {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub epoch_type: EpochType,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ElementFile {
    pub code: String,
    pub name: String,
    /// SDTM TE TESTRL / TEENRL / TEDUR (ISO 8601 duration); absent in older files.
    pub start_rule: Option<String>,
    pub end_rule: Option<String>,
    pub duration: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArmFile {
    pub code: String,
    pub name: String,
    #[serde(rename = "type")]
    pub arm_type: ArmType,
    pub baseline: BaselineRule,
    pub first_dose_day: Option<i32>,
    pub cells: Vec<CellFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CellFile {
    pub epoch: String,
    pub element: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EncounterFile {
    pub id: String,
    pub name: String,
    pub visit_number: u32,
    pub epoch: String,
    /// Arm code -> epoch, where the visit's epoch differs by arm.
    pub epoch_by_arm: Option<BTreeMap<String, String>>,
    pub target_day: i32,
    pub window: [i32; 2],
    pub arms: Option<Vec<String>>,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CriterionFile {
    pub id: String,
    pub category: CriterionCategory,
    pub text: String,
    pub rule: RuleFile,
}

/// One eligibility rule as written: `kind` says which of the other keys it takes. A flat struct
/// rather than a tagged enum, so serde keeps the key path into nested rules
/// (`eligibility[2].rule.rules[3].value`) and every table still denies unknown keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFile {
    pub kind: RuleKind,
    pub measure: Option<Measure>,
    pub op: Option<CompareOp>,
    pub value: Option<ExactDecimal>,
    pub flag: Option<Flag>,
    pub is: Option<bool>,
    pub count: Option<u32>,
    pub rules: Option<Vec<RuleFile>>,
    pub condition: Option<Box<RuleFile>>,
    pub then: Option<Box<RuleFile>>,
    pub weeks: Option<u32>,
    pub months: Option<u32>,
    pub drugs: Option<Vec<PriorDrug>>,
    pub responses: Option<Vec<TreatmentResponse>>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RuleKind {
    Compare,
    Flag,
    AnyEnzymeAboveUln,
    AllOf,
    AnyOf,
    AtLeast,
    When,
    GlucocorticoidMaxWithin,
    GlucocorticoidSustained,
    InformedConsent,
    Washout,
    PriorResponse,
    Attested,
}

impl RuleKind {
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Compare => "compare",
            RuleKind::Flag => "flag",
            RuleKind::AnyEnzymeAboveUln => "any_enzyme_above_uln",
            RuleKind::AllOf => "all_of",
            RuleKind::AnyOf => "any_of",
            RuleKind::AtLeast => "at_least",
            RuleKind::When => "when",
            RuleKind::GlucocorticoidMaxWithin => "glucocorticoid_max_within",
            RuleKind::GlucocorticoidSustained => "glucocorticoid_sustained",
            RuleKind::InformedConsent => "informed_consent",
            RuleKind::Washout => "washout",
            RuleKind::PriorResponse => "prior_response",
            RuleKind::Attested => "attested",
        }
    }

    /// The keys besides `kind` that this kind takes; all of them are required except `is`, and a
    /// washout takes exactly one of `weeks` and `months`.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            RuleKind::Compare => &["measure", "op", "value"],
            RuleKind::Flag => &["flag", "is"],
            RuleKind::AnyEnzymeAboveUln => &[],
            RuleKind::AllOf | RuleKind::AnyOf => &["rules"],
            RuleKind::AtLeast => &["count", "rules"],
            RuleKind::When => &["condition", "then"],
            RuleKind::GlucocorticoidMaxWithin => &["weeks", "op", "value"],
            RuleKind::GlucocorticoidSustained => &["weeks", "value"],
            RuleKind::InformedConsent => &[],
            RuleKind::Washout => &["drugs", "weeks", "months"],
            RuleKind::PriorResponse => &["drugs", "responses", "count"],
            RuleKind::Attested => &["code", "is"],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ObjectiveFile {
    pub id: String,
    pub level: Level,
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndpointFile {
    pub id: String,
    pub objective: String,
    pub level: Level,
    pub text: String,
    pub outcome: OutcomeName,
    pub encounter: String,
    pub encounter_by_arm: Option<BTreeMap<String, String>>,
    pub baseline: Option<EndpointBaseline>,
    pub analyte: Option<String>,
    pub threshold: Option<ExactDecimal>,
    pub glucocorticoid_window: Option<[i32; 2]>,
    pub min_dose_records_in_window: Option<u32>,
    pub responder: Option<ResponderFile>,
    pub missing_data: Option<MissingDataRule>,
}

/// A responder rule: a bare name (`"doi_met"`) or a one-key table (`{ tis_at_least = 40 }`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ResponderFile {
    DoiMet,
    CdasiMcidReached,
    TisAtLeast(ExactDecimal),
    TisCategoryAtLeast(TisCategory),
}

/// A threshold read exactly: a TOML integer (`5`) or a decimal written as a string (`"0.25"`).
/// TOML floats are refused because they pass through binary floating point (docs/clinical.md#10-exact-arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExactDecimal(pub Decimal);

impl<'de> Deserialize<'de> for ExactDecimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExactDecimalVisitor)
    }
}

struct ExactDecimalVisitor;

const EXACT_DECIMAL_EXPECTED: &str =
    "an exact decimal: an integer (5) or a decimal in quotes (\"0.25\"), never a TOML float";

impl Visitor<'_> for ExactDecimalVisitor {
    type Value = ExactDecimal;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(EXACT_DECIMAL_EXPECTED)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<ExactDecimal, E> {
        Ok(ExactDecimal(Decimal::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ExactDecimal, E> {
        Ok(ExactDecimal(Decimal::from(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<ExactDecimal, E> {
        Err(E::custom(format!(
            "the float {value:?} is not allowed here; expected {EXACT_DECIMAL_EXPECTED}"
        )))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<ExactDecimal, E> {
        Decimal::from_str_exact(text.trim())
            .map(|value| ExactDecimal(value.normalize()))
            .map_err(|_| E::custom(format!("`{text}` is not {EXACT_DECIMAL_EXPECTED}")))
    }
}
