//! The per-study mapping file (TOML): which source item (ODM ItemOID or REDCap field name) feeds which
//! Myolog field, which StudyEventOID (or REDCap unique event name) is which protocol visit, coded
//! values, unit conversions, the source's time zone, what counts as "not done", where each visit's
//! clinical date comes from, how enrolment is derived and which form statuses are imported.
//!
//! Nothing is guessed: an item the file does not name is reported by the planner, never matched by
//! name. Every error names the TOML key path (`items.pga.field`) and, for syntax, the line.

use myolog_domain::Decimal;
use myolog_domain::cdasi::CdasiLocation;
use myolog_domain::enzyme::Enzyme;
use myolog_domain::event::{SiteId, StudyId, VisitId};
use myolog_domain::haq::{HaqAid, HaqCategory};
use myolog_domain::mmt8::{MmtScale, MuscleGroup, Side};
use myolog_domain::quantity::parse_exact_decimal;
use myolog_domain::visit::Population;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A mapping file that could not be used: the TOML key path, the line when known, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key_path}: {message}")]
pub struct MappingError {
    pub key_path: String,
    pub message: String,
}

/// Every problem of a mapping file (all are reported, not only the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct MappingErrors {
    pub errors: Vec<MappingError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    study: StudyFile,
    visits: VisitsFile,
    #[serde(default)]
    form_status: Option<FormStatusFile>,
    #[serde(default)]
    not_done: Option<NotDoneFile>,
    #[serde(default)]
    enrolment: Option<EnrolmentFile>,
    #[serde(default)]
    conventions: Option<ConventionsFile>,
    /// Source items deliberately not imported (identifiers, free text): never reported as unmapped.
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    items: BTreeMap<String, ItemFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StudyFile {
    id: String,
    source_oid: Option<String>,
    time_zone: String,
    default_reason: Option<String>,
    #[serde(default)]
    subject_id: SubjectIdSource,
}

/// Which source id is the Myolog subject id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectIdSource {
    /// `SubjectData/@SubjectKey` (REDCap's record id, OpenClinica's subject OID): the default.
    #[default]
    SubjectKey,
    /// Rave's `mdsol:SubjectName`: Rave's `SubjectKey` is a UUID, the name is the subject id the
    /// site knows (`01-001`).
    SubjectName,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VisitsFile {
    #[serde(default)]
    events: BTreeMap<String, String>,
    visit_item: Option<String>,
    #[serde(default)]
    visit_codes: BTreeMap<String, String>,
    date_item: String,
    partial_dates: Option<PartialDates>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormStatusFile {
    suffix: Option<String>,
    imported: Option<Vec<String>>,
    when_absent: Option<WhenAbsent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotDoneFile {
    #[serde(default)]
    values: Vec<String>,
    is_null: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolmentFile {
    arm_item: String,
    #[serde(default)]
    arm_codes: BTreeMap<String, String>,
    date_item: String,
    site: SiteSource,
    site_item: Option<String>,
    #[serde(default)]
    site_codes: BTreeMap<String, String>,
    population: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConventionsFile {
    mmt8_max: Option<u16>,
    allow_likert_globals: Option<bool>,
    mmt_trace_grade: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFile {
    field: String,
    /// Globals only: the scale the source records on.
    scale: Option<GlobalSourceScale>,
    #[serde(default)]
    codes: BTreeMap<String, String>,
    /// Source unit text (MeasurementUnitOID, or a REDCap unit) -> exact factor to the Myolog unit.
    #[serde(default)]
    units: BTreeMap<String, String>,
}

/// How a partial date (`2024`, `2024-03`) in the visit date item is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PartialDates {
    /// Reported as a discrepancy; the visit's values wait for a full date (default).
    #[default]
    Reject,
    /// The first day of the period given (`2024-03` -> 2024-03-01).
    FirstDay,
}

/// Whether a form with no status in the source is imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenAbsent {
    /// Generic ODM and OpenClinica item-level exports state no status: imported (default).
    #[default]
    Import,
    Skip,
}

/// Where a subject's site comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteSource {
    /// `SiteRef/@LocationOID`, or REDCap's data access group (`redcap_data_access_group`).
    SiteRef,
    /// An item's value (`site_item`).
    Item,
    /// No site.
    None,
}

/// The scale a global is recorded on in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GlobalSourceScale {
    #[default]
    Cm,
    Mm,
    Likert,
}

/// The source system's time zone, used for audit timestamps that carry no offset. Dates are never
/// converted with it: a clinical date stays the calendar date the site wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceTimeZone {
    /// `Z`, `+01:00`, `-05:30`: the offset text as written.
    Fixed(String),
    /// An IANA name (`Europe/Paris`); kept as a name beside the local time, never resolved here.
    Iana(String),
}

impl SourceTimeZone {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = text.as_bytes();
        if text == "Z" || text == "UTC" {
            return Ok(SourceTimeZone::Fixed("Z".to_string()));
        }
        if bytes.len() == 6 && matches!(bytes[0], b'+' | b'-') && bytes[3] == b':' {
            let hours = text.get(1..3).and_then(|h| h.parse::<u8>().ok());
            let minutes = text.get(4..6).and_then(|m| m.parse::<u8>().ok());
            if let (Some(hours), Some(minutes)) = (hours, minutes)
                && hours <= 14
                && minutes < 60
                && bytes[1..3]
                    .iter()
                    .chain(&bytes[4..6])
                    .all(u8::is_ascii_digit)
            {
                return Ok(SourceTimeZone::Fixed(text.to_string()));
            }
        }
        let iana_shaped = text.contains('/')
            && !text.starts_with('/')
            && !text.ends_with('/')
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
        if iana_shaped {
            return Ok(SourceTimeZone::Iana(text.to_string()));
        }
        Err(format!(
            "{text:?} is neither an IANA time zone name (Area/Location) nor a fixed offset (Z, +HH:MM)"
        ))
    }
}

impl fmt::Display for SourceTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceTimeZone::Fixed(offset) | SourceTimeZone::Iana(offset) => f.write_str(offset),
        }
    }
}

/// Which global a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GlobalField {
    Physician,
    Patient,
    Extramuscular,
}

/// A CDASI item of one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CdasiLocationItem {
    Erythema,
    Scale,
    Erosion,
    Poikiloderma,
    Calcinosis,
}

/// A CDASI item of Gottron's papules on the hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GottronItem {
    Erythema,
    Papules,
    Ulceration,
    Damage,
}

/// What part of an enzyme measurement a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EnzymePart {
    Value,
    Uln,
    Unit,
}

/// A Myolog field a source item feeds (the `field` text of the mapping file, parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Global(GlobalField),
    Mmt8Total,
    /// A unilateral grade, or neck flexors in bilateral testing.
    Mmt8Grade(MuscleGroup),
    Mmt8SideGrade(MuscleGroup, Side),
    HaqDi,
    /// A HAQ item: category and 0-based position.
    HaqItem(HaqCategory, u8),
    HaqAid(HaqAid),
    HaqHelp(HaqCategory),
    CdasiLocation(CdasiLocation, CdasiLocationItem),
    CdasiGottron(GottronItem),
    CdasiPeriungual,
    CdasiAlopecia,
    Enzyme(Enzyme, EnzymePart),
    PrednisoneMgPerDay,
}

/// The instrument (one Myolog assessment event per visit) a target belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Instrument {
    Globals,
    Mmt8,
    Haq,
    Cdasi,
    Enzymes,
    Prednisone,
}

impl Instrument {
    pub const fn key(self) -> &'static str {
        match self {
            Instrument::Globals => "globals",
            Instrument::Mmt8 => "mmt8",
            Instrument::Haq => "haq",
            Instrument::Cdasi => "cdasi",
            Instrument::Enzymes => "enzymes",
            Instrument::Prednisone => "prednisone",
        }
    }
}

impl Target {
    pub const fn instrument(self) -> Instrument {
        match self {
            Target::Global(_) => Instrument::Globals,
            Target::Mmt8Total | Target::Mmt8Grade(_) | Target::Mmt8SideGrade(..) => {
                Instrument::Mmt8
            }
            Target::HaqDi | Target::HaqItem(..) | Target::HaqAid(_) | Target::HaqHelp(_) => {
                Instrument::Haq
            }
            Target::CdasiLocation(..)
            | Target::CdasiGottron(_)
            | Target::CdasiPeriungual
            | Target::CdasiAlopecia => Instrument::Cdasi,
            Target::Enzyme(..) => Instrument::Enzymes,
            Target::PrednisoneMgPerDay => Instrument::Prednisone,
        }
    }

    /// Parses a `field` text: `physician_global`, `mmt8.deltoid.right`, `haq.dressing.1`,
    /// `cdasi.scalp.erythema`, `enzyme.ck.uln`, `prednisone_mg_per_day`, ...
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let unknown = || {
            format!(
                "unknown field {text:?}; allowed: physician_global, patient_global, \
                 extramuscular_global, mmt8.total, mmt8.<group>, mmt8.<group>.right|left, haq_di, \
                 haq.<category>.<1-3>, haq.aid.<aid>, haq.help.<category>, \
                 cdasi.<location>.<erythema|scale|erosion|poikiloderma|calcinosis>, \
                 cdasi.gottron_hands.<erythema|papules|ulceration|damage>, cdasi.periungual, \
                 cdasi.alopecia, enzyme.<ck|aldolase|ldh|ast|alt>.<value|uln|unit>, \
                 prednisone_mg_per_day"
            )
        };
        let target = match parts.as_slice() {
            ["physician_global"] => Target::Global(GlobalField::Physician),
            ["patient_global"] => Target::Global(GlobalField::Patient),
            ["extramuscular_global"] => Target::Global(GlobalField::Extramuscular),
            ["mmt8", "total"] => Target::Mmt8Total,
            ["mmt8", group] => Target::Mmt8Grade(MuscleGroup::from_key(group).ok_or_else(unknown)?),
            ["mmt8", group, side] => {
                let group = MuscleGroup::from_key(group).ok_or_else(unknown)?;
                if group == MuscleGroup::NeckFlexors {
                    return Err(format!(
                        "{text:?}: neck flexors are graded once, on no side; use mmt8.neck_flexors"
                    ));
                }
                let side = match *side {
                    "right" => Side::Right,
                    "left" => Side::Left,
                    _ => return Err(unknown()),
                };
                Target::Mmt8SideGrade(group, side)
            }
            ["haq_di"] => Target::HaqDi,
            ["haq", "aid", aid] => Target::HaqAid(HaqAid::from_key(aid).ok_or_else(unknown)?),
            ["haq", "help", category] => {
                Target::HaqHelp(HaqCategory::from_key(category).ok_or_else(unknown)?)
            }
            ["haq", category, position] => {
                let category = HaqCategory::from_key(category).ok_or_else(unknown)?;
                let position: usize = position.parse().map_err(|_| unknown())?;
                if !(1..=category.item_count()).contains(&position) {
                    return Err(format!(
                        "{text:?}: HAQ {} has items 1 to {}",
                        category.key(),
                        category.item_count()
                    ));
                }
                Target::HaqItem(category, u8::try_from(position - 1).map_err(|_| unknown())?)
            }
            ["cdasi", "periungual"] => Target::CdasiPeriungual,
            ["cdasi", "alopecia"] => Target::CdasiAlopecia,
            ["cdasi", "gottron_hands", item] => Target::CdasiGottron(match *item {
                "erythema" => GottronItem::Erythema,
                "papules" => GottronItem::Papules,
                "ulceration" => GottronItem::Ulceration,
                "damage" => GottronItem::Damage,
                _ => return Err(unknown()),
            }),
            ["cdasi", location, item] => {
                let location = CdasiLocation::from_key(location).ok_or_else(unknown)?;
                let item = match *item {
                    "erythema" => CdasiLocationItem::Erythema,
                    "scale" => CdasiLocationItem::Scale,
                    "erosion" => CdasiLocationItem::Erosion,
                    "poikiloderma" => CdasiLocationItem::Poikiloderma,
                    "calcinosis" => CdasiLocationItem::Calcinosis,
                    _ => return Err(unknown()),
                };
                Target::CdasiLocation(location, item)
            }
            ["enzyme", enzyme, part] => {
                let enzyme = Enzyme::from_key(enzyme).ok_or_else(unknown)?;
                let part = match *part {
                    "value" => EnzymePart::Value,
                    "uln" => EnzymePart::Uln,
                    "unit" => EnzymePart::Unit,
                    _ => return Err(unknown()),
                };
                Target::Enzyme(enzyme, part)
            }
            ["prednisone_mg_per_day"] => Target::PrednisoneMgPerDay,
            _ => return Err(unknown()),
        };
        Ok(target)
    }
}

/// One mapped source item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemMapping {
    pub target: Target,
    pub scale: GlobalSourceScale,
    /// Source code -> value text (applied before parsing the value).
    pub codes: BTreeMap<String, String>,
    /// Source unit -> exact factor to the Myolog unit; empty means the source unit is not checked.
    pub units: BTreeMap<String, Decimal>,
}

/// Where the visit of a row comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRules {
    /// StudyEventOID or REDCap unique event name -> visit.
    pub events: BTreeMap<String, VisitId>,
    /// For sources without an event level: an item in the same form instance whose code names the visit.
    pub visit_item: Option<String>,
    pub visit_codes: BTreeMap<String, VisitId>,
    /// The item giving each visit's clinical date (searched in every form of the visit).
    pub date_item: String,
    pub partial_dates: PartialDates,
}

/// Which forms are imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormStatusRules {
    /// REDCap's status item is `<form><suffix>` (`_complete`).
    pub suffix: String,
    /// Status values imported: REDCap 2 (Complete); OpenClinica "data entry complete", "signed".
    pub imported: BTreeSet<String>,
    pub when_absent: WhenAbsent,
}

impl Default for FormStatusRules {
    fn default() -> Self {
        Self {
            suffix: "_complete".to_string(),
            imported: ["2", "complete", "data entry complete", "signed", "verified"]
                .into_iter()
                .map(str::to_string)
                .collect(),
            when_absent: WhenAbsent::Import,
        }
    }
}

/// How a subject's enrolment is derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentRules {
    pub arm_item: String,
    pub arm_codes: BTreeMap<String, String>,
    pub date_item: String,
    pub site: SiteSource,
    pub site_item: Option<String>,
    pub site_codes: BTreeMap<String, SiteId>,
    pub population: Option<Population>,
}

/// What the study allows at input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputRules {
    pub mmt8_scale: Option<MmtScale>,
    pub allow_likert_globals: bool,
    pub mmt_trace_grade: Option<u8>,
}

/// A validated mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub study: StudyId,
    /// The source's `ClinicalData/@StudyOID` (REDCap `Project.<name>`), when the file pins it: data of
    /// another study is then refused rather than imported under this one.
    pub source_study_oid: Option<String>,
    pub time_zone: SourceTimeZone,
    /// The reason a correction carries when the source's audit record gives none.
    pub default_reason: String,
    /// Which source id becomes the Myolog subject id (`study.subject_id`).
    pub subject_id: SubjectIdSource,
    pub visits: VisitRules,
    pub form_status: FormStatusRules,
    /// Values meaning "not done" (after trimming); such a value is no value.
    pub not_done: BTreeSet<String>,
    /// Whether `IsNull="Yes"` means "not done" (default) rather than a discrepancy.
    pub is_null_not_done: bool,
    pub enrolment: Option<EnrolmentRules>,
    pub input: InputRules,
    pub ignore: BTreeSet<String>,
    pub items: BTreeMap<String, ItemMapping>,
}

/// The reason used when neither the source nor the mapping file states one.
pub const DEFAULT_REASON: &str = "changed in the source EDC; no reason for change was recorded";

struct Collector {
    errors: Vec<MappingError>,
}

impl Collector {
    fn add(&mut self, key_path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(MappingError {
            key_path: key_path.into(),
            message: message.into(),
        });
    }

    fn visit(&mut self, key_path: String, text: &str) -> Option<VisitId> {
        match VisitId::new(text) {
            Ok(visit) => Some(visit),
            Err(problem) => {
                self.add(key_path, problem.to_string());
                None
            }
        }
    }
}

fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

impl Mapping {
    /// Parses and checks a mapping file; every problem found is reported.
    pub fn from_toml(text: &str) -> Result<Self, MappingErrors> {
        let file = read_toml(text)?;
        let mut errors = Collector { errors: Vec::new() };
        let study = match StudyId::new(&file.study.id) {
            Ok(study) => Some(study),
            Err(problem) => {
                errors.add("study.id", problem.to_string());
                None
            }
        };
        let time_zone = match SourceTimeZone::parse(&file.study.time_zone) {
            Ok(zone) => Some(zone),
            Err(message) => {
                errors.add("study.time_zone", message);
                None
            }
        };
        let default_reason = file
            .study
            .default_reason
            .unwrap_or_else(|| DEFAULT_REASON.to_string());
        if let Err(problem) = myolog_domain::event::Reason::new(default_reason.clone()) {
            errors.add("study.default_reason", problem.to_string());
        }
        let mut events = BTreeMap::new();
        for (event, visit) in &file.visits.events {
            if let Some(visit) = errors.visit(format!("visits.events.{}", toml_key(event)), visit) {
                events.insert(event.clone(), visit);
            }
        }
        let mut visit_codes = BTreeMap::new();
        for (code, visit) in &file.visits.visit_codes {
            if let Some(visit) =
                errors.visit(format!("visits.visit_codes.{}", toml_key(code)), visit)
            {
                visit_codes.insert(code.clone(), visit);
            }
        }
        if file.visits.visit_item.is_some() && visit_codes.is_empty() {
            errors.add(
                "visits.visit_codes",
                "visit_item is set but no visit_codes say which code is which visit",
            );
        }
        if file.visits.visit_item.is_none() && file.visits.events.is_empty() {
            errors.add(
                "visits",
                "name the visits: events (StudyEventOID or REDCap event -> visit id) or visit_item \
                 with visit_codes",
            );
        }
        let form_status = match file.form_status {
            None => FormStatusRules::default(),
            Some(rules) => {
                let defaults = FormStatusRules::default();
                FormStatusRules {
                    suffix: rules.suffix.unwrap_or(defaults.suffix),
                    imported: rules
                        .imported
                        .map(|list| list.into_iter().collect())
                        .unwrap_or(defaults.imported),
                    when_absent: rules.when_absent.unwrap_or_default(),
                }
            }
        };
        let (not_done, is_null_not_done) = match file.not_done {
            None => (BTreeSet::new(), true),
            Some(rules) => (
                rules.values.iter().map(|v| v.trim().to_string()).collect(),
                rules.is_null.unwrap_or(true),
            ),
        };
        let enrolment = file.enrolment.map(|rules| {
            if rules.site == SiteSource::Item && rules.site_item.is_none() {
                errors.add("enrolment.site_item", "site = \"item\" needs site_item");
            }
            let mut site_codes = BTreeMap::new();
            for (code, site) in &rules.site_codes {
                match SiteId::new(site) {
                    Ok(site) => {
                        site_codes.insert(code.clone(), site);
                    }
                    Err(problem) => errors.add(
                        format!("enrolment.site_codes.{}", toml_key(code)),
                        problem.to_string(),
                    ),
                }
            }
            let population = rules.population.as_deref().and_then(|key| {
                let population = Population::from_key(key);
                if population.is_none() {
                    errors.add(
                        "enrolment.population",
                        format!("unknown population {key:?}; allowed: adult, juvenile"),
                    );
                }
                population
            });
            EnrolmentRules {
                arm_item: rules.arm_item,
                arm_codes: rules.arm_codes,
                date_item: rules.date_item,
                site: rules.site,
                site_item: rules.site_item,
                site_codes,
                population,
            }
        });
        let input = match file.conventions {
            None => InputRules {
                mmt8_scale: None,
                allow_likert_globals: false,
                mmt_trace_grade: None,
            },
            Some(conventions) => {
                let mmt8_scale = conventions.mmt8_max.and_then(|max| {
                    MmtScale::from_max_total(max)
                        .map_err(|problem| errors.add("conventions.mmt8_max", problem.to_string()))
                        .ok()
                });
                if let Some(grade) = conventions.mmt_trace_grade
                    && grade > 10
                {
                    errors.add(
                        "conventions.mmt_trace_grade",
                        format!("{grade} is out of range; allowed: an integer from 0 to 10"),
                    );
                }
                InputRules {
                    mmt8_scale,
                    allow_likert_globals: conventions.allow_likert_globals.unwrap_or(false),
                    mmt_trace_grade: conventions.mmt_trace_grade,
                }
            }
        };
        let mut items = BTreeMap::new();
        let mut has_mmt_total = false;
        for (oid, item) in file.items {
            let key_path = format!("items.{}", toml_key(&oid));
            let target = match Target::parse(&item.field) {
                Ok(target) => target,
                Err(message) => {
                    errors.add(format!("{key_path}.field"), message);
                    continue;
                }
            };
            has_mmt_total |= target == Target::Mmt8Total;
            if item.scale.is_some() && !matches!(target, Target::Global(_)) {
                errors.add(
                    format!("{key_path}.scale"),
                    "scale applies to globals only (cm, mm or likert)",
                );
            }
            if item.scale == Some(GlobalSourceScale::Likert) && !input.allow_likert_globals {
                errors.add(
                    format!("{key_path}.scale"),
                    "Likert globals need conventions.allow_likert_globals = true",
                );
            }
            let mut units = BTreeMap::new();
            for (unit, factor) in &item.units {
                match parse_exact_decimal(factor) {
                    Ok(factor) if factor > Decimal::ZERO => {
                        units.insert(unit.clone(), factor);
                    }
                    Ok(_) => errors.add(
                        format!("{key_path}.units.{}", toml_key(unit)),
                        "a conversion factor must be greater than 0",
                    ),
                    Err(problem) => errors.add(
                        format!("{key_path}.units.{}", toml_key(unit)),
                        problem.to_string(),
                    ),
                }
            }
            items.insert(
                oid,
                ItemMapping {
                    target,
                    scale: item.scale.unwrap_or_default(),
                    codes: item.codes,
                    units,
                },
            );
        }
        let has_side_grades = items
            .values()
            .any(|item| matches!(item.target, Target::Mmt8SideGrade(..)));
        if has_mmt_total && input.mmt8_scale.is_none() {
            errors.add(
                "conventions.mmt8_max",
                "mmt8.total is mapped: say whether the total is out of 80 or 150",
            );
        }
        if has_side_grades && input.mmt8_scale == Some(MmtScale::Unilateral) {
            errors.add(
                "conventions.mmt8_max",
                "right/left grades are mapped, so testing is bilateral (150), not 80",
            );
        }
        match (study, time_zone) {
            (Some(study), Some(time_zone)) if errors.errors.is_empty() => Ok(Mapping {
                study,
                source_study_oid: file.study.source_oid,
                time_zone,
                default_reason,
                subject_id: file.study.subject_id,
                visits: VisitRules {
                    events,
                    visit_item: file.visits.visit_item,
                    visit_codes,
                    date_item: file.visits.date_item,
                    partial_dates: file.visits.partial_dates.unwrap_or_default(),
                },
                form_status,
                not_done,
                is_null_not_done,
                enrolment,
                input,
                ignore: file.ignore.into_iter().collect(),
                items,
            }),
            _ => Err(MappingErrors {
                errors: errors.errors,
            }),
        }
    }

    /// The MMT-8 scale the mapped grades imply (right/left grades: bilateral) unless the file says.
    pub fn mmt8_scale(&self) -> MmtScale {
        self.input.mmt8_scale.unwrap_or_else(|| {
            if self
                .items
                .values()
                .any(|item| matches!(item.target, Target::Mmt8SideGrade(..)))
            {
                MmtScale::Bilateral
            } else {
                MmtScale::Unilateral
            }
        })
    }
}

fn read_toml(text: &str) -> Result<MappingFile, MappingErrors> {
    let toml_error = |key_path: String, error: toml::de::Error| {
        let line = error
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| 1 + before.matches('\n').count());
        let message = match line {
            Some(line) => format!("line {line}: {}", error.message().trim_end()),
            None => error.message().trim_end().to_string(),
        };
        MappingErrors {
            errors: vec![MappingError { key_path, message }],
        }
    };
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|error| toml_error("(whole file)".to_string(), error))?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key_path = match error.path().to_string() {
            root if root == "." => "(whole file)".to_string(),
            path => path,
        };
        toml_error(key_path, error.into_inner())
    })
}

impl fmt::Display for Target {
    /// The `field` text the target was parsed from (one canonical spelling per target).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Global(GlobalField::Physician) => f.write_str("physician_global"),
            Target::Global(GlobalField::Patient) => f.write_str("patient_global"),
            Target::Global(GlobalField::Extramuscular) => f.write_str("extramuscular_global"),
            Target::Mmt8Total => f.write_str("mmt8.total"),
            Target::Mmt8Grade(group) => write!(f, "mmt8.{}", group.key()),
            Target::Mmt8SideGrade(group, side) => write!(
                f,
                "mmt8.{}.{}",
                group.key(),
                match side {
                    Side::Right => "right",
                    Side::Left => "left",
                }
            ),
            Target::HaqDi => f.write_str("haq_di"),
            Target::HaqItem(category, position) => {
                write!(f, "haq.{}.{}", category.key(), u16::from(*position) + 1)
            }
            Target::HaqAid(aid) => write!(f, "haq.aid.{}", aid.key()),
            Target::HaqHelp(category) => write!(f, "haq.help.{}", category.key()),
            Target::CdasiLocation(location, item) => write!(
                f,
                "cdasi.{}.{}",
                location.key(),
                match item {
                    CdasiLocationItem::Erythema => "erythema",
                    CdasiLocationItem::Scale => "scale",
                    CdasiLocationItem::Erosion => "erosion",
                    CdasiLocationItem::Poikiloderma => "poikiloderma",
                    CdasiLocationItem::Calcinosis => "calcinosis",
                }
            ),
            Target::CdasiGottron(item) => write!(
                f,
                "cdasi.gottron_hands.{}",
                match item {
                    GottronItem::Erythema => "erythema",
                    GottronItem::Papules => "papules",
                    GottronItem::Ulceration => "ulceration",
                    GottronItem::Damage => "damage",
                }
            ),
            Target::CdasiPeriungual => f.write_str("cdasi.periungual"),
            Target::CdasiAlopecia => f.write_str("cdasi.alopecia"),
            Target::Enzyme(enzyme, part) => write!(
                f,
                "enzyme.{}.{}",
                enzyme.key(),
                match part {
                    EnzymePart::Value => "value",
                    EnzymePart::Uln => "uln",
                    EnzymePart::Unit => "unit",
                }
            ),
            Target::PrednisoneMgPerDay => f.write_str("prednisone_mg_per_day"),
        }
    }
}
