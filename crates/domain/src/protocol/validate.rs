//! From protocol text to a validated `Protocol` (parse, don't validate): TOML and unknown keys are
//! caught by serde; ids, cross-references, visit windows, rule thresholds and endpoint parameters here.
//! Every problem is collected, so an author sees all of them in one run.

use super::ct;
use super::error::{ProtocolError, ProtocolErrors, ProtocolProblem};
use super::file::{
    ArmFile, ConventionsFile, CriterionFile, EncounterFile, EndpointFile, ExactDecimal,
    InterventionFile, ProtocolFile, ResponderFile, RuleFile, RuleKind, StudyFile, TrialSummaryFile,
};
use super::model::{
    Amendment, Arm, BaselineRule, Cell, Conventions, Criterion, DayWindow, Element, Encounter,
    Endpoint, EndpointBaseline, Epoch, GlobalScale, Intervention, Level, Measure, MissingDataRule,
    Objective, Outcome, OutcomeName, PercentChangeRule, Protocol, RegistryId, ResponderRule, Rule,
    Study, TrialSummary, WashoutPeriod,
};
use crate::date::ClinicalDate;
use crate::lab::LabCode;
use crate::treatment_history::{AttestationCode, PriorDrug};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// Default prednisone-free window [D]: weeks 20 through 24 (BIRD; docs/protocols.md#assumptions-marked-d).
pub const DEFAULT_GLUCOCORTICOID_WINDOW: DayWindow = DayWindow {
    first_day: 140,
    last_day: 168,
};
/// SDTM limits on code lengths (SDTMIG: ETCD 8, ARMCD 20, --TESTCD 8) and on text values (200).
const ELEMENT_CODE_MAX: usize = 8;
const ARM_CODE_MAX: usize = 20;
const TEST_CODE_MAX: usize = 8;
const SDTM_TEXT_MAX: usize = 200;
/// The TS parameters whose values a protocol file sets and may therefore mark as assumptions [D].
pub(super) const ASSUMABLE_TS_PARAMETERS: &[&str] = &[
    "TITLE", "TPHASE", "TBLIND", "PLANSUB", "ADDON", "TRT", "COMPTRT", "DOSE", "DOSU", "DOSFRQ",
    "ROUTE", "DOSFRM", "SPONSOR", "REGID", "FCNTRY", "SEXPOP", "HLTSUBJI", "INTMODEL", "INTTYPE",
    "TCNTRL", "TTYPE", "TINDTP", "INDIC", "TDIGRP", "PCLAS", "CURTRT", "RDIND", "ADAPT",
    "STOPRULE", "SENDTC", "AGEMIN", "AGEMAX", "LENGTH",
];
/// The key path of an error that belongs to no key (TOML syntax).
const WHOLE_DOCUMENT: &str = "(document)";

pub(super) fn parse_protocol(file: &str, text: &str) -> Result<Protocol, ProtocolErrors> {
    let raw = read_toml(file, text)?;
    let mut checker = Checker {
        file,
        errors: Vec::new(),
    };
    let protocol = checker.protocol(raw).map(|protocol| Protocol {
        source: text.to_string(),
        ..protocol
    });
    match protocol {
        Some(protocol) if checker.errors.is_empty() => Ok(protocol),
        _ => {
            if checker.errors.is_empty() {
                // Unreachable by construction (every early return records why); never an empty list.
                checker.invalid(WHOLE_DOCUMENT, "a complete protocol", "an incomplete one");
            }
            Err(ProtocolErrors {
                errors: checker.errors,
            })
        }
    }
}

fn read_toml(file: &str, text: &str) -> Result<ProtocolFile, ProtocolErrors> {
    let toml_error = |key_path: String, error: toml::de::Error| {
        let line = error
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| 1 + before.matches('\n').count());
        let message = match line {
            Some(line) => format!("line {line}: {}", error.message().trim_end()),
            None => error.message().trim_end().to_string(),
        };
        ProtocolErrors {
            errors: vec![ProtocolError {
                file: file.to_string(),
                key_path,
                problem: ProtocolProblem::Toml { message },
            }],
        }
    };
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|error| toml_error(WHOLE_DOCUMENT.into(), error))?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key_path = match error.path().to_string() {
            root if root == "." => WHOLE_DOCUMENT.to_string(),
            path => path,
        };
        toml_error(key_path, error.into_inner())
    })
}

struct Checker<'f> {
    file: &'f str,
    errors: Vec<ProtocolError>,
}

/// The ids defined so far, to resolve references against.
#[derive(Default)]
struct Known {
    epochs: Vec<String>,
    elements: Vec<String>,
    arms: Vec<String>,
    encounters: Vec<String>,
    objectives: Vec<String>,
}

fn listing(ids: &[String]) -> String {
    ids.join(", ")
}

fn quoted(value: impl std::fmt::Display) -> String {
    format!("`{value}`")
}

impl Checker<'_> {
    fn invalid(
        &mut self,
        key_path: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) {
        self.errors.push(ProtocolError {
            file: self.file.to_string(),
            key_path: key_path.into(),
            problem: ProtocolProblem::Invalid {
                expected: expected.into(),
                found: found.into(),
            },
        });
    }

    fn protocol(&mut self, raw: ProtocolFile) -> Option<Protocol> {
        let ProtocolFile {
            protocol: version_file,
            study,
            conventions,
            epochs,
            elements,
            arms,
            encounters,
            eligibility,
            objectives,
            endpoints,
            trial_summary,
            interventions,
        } = raw;

        for (key, count) in [
            ("epochs", epochs.len()),
            ("elements", elements.len()),
            ("arms", arms.len()),
            ("objectives", objectives.len()),
        ] {
            if count == 0 {
                self.invalid(key, format!("at least one entry in [[{key}]]"), "none");
            }
        }
        if version_file.version == 0 {
            self.invalid(
                "protocol.version",
                "a version number from 1 (the original protocol)",
                "0",
            );
        }
        match (&version_file.amendment, version_file.version) {
            (Some(_), 1) => self.invalid(
                "protocol.amendment",
                "no amendment in version 1 (an amendment makes version 2 or later)",
                "an amendment",
            ),
            (None, version) if version > 1 => self.invalid(
                "protocol.amendment",
                format!("an amendment summary for version {version}"),
                "none",
            ),
            _ => {}
        }
        if let Some(amendment) = &version_file.amendment {
            self.text("protocol.amendment.summary", &amendment.summary, usize::MAX);
        }

        let conventions = self.conventions(conventions);
        let mut known = Known {
            epochs: self.ids(
                "epoch",
                "epochs",
                epochs.iter().map(|epoch| epoch.id.as_str()),
                "id",
                usize::MAX,
            ),
            ..Known::default()
        };
        for (index, epoch) in epochs.iter().enumerate() {
            self.text(format!("epochs[{index}].name"), &epoch.name, SDTM_TEXT_MAX);
        }
        let epochs: Vec<Epoch> = epochs
            .into_iter()
            .map(|epoch| Epoch {
                id: epoch.id,
                name: epoch.name,
                epoch_type: epoch.epoch_type,
            })
            .collect();

        known.elements = self.ids(
            "element",
            "elements",
            elements.iter().map(|element| element.code.as_str()),
            "code",
            ELEMENT_CODE_MAX,
        );
        for (index, element) in elements.iter().enumerate() {
            self.text(
                format!("elements[{index}].name"),
                &element.name,
                SDTM_TEXT_MAX,
            );
        }
        let elements: Vec<Element> = elements
            .into_iter()
            .enumerate()
            .map(|(index, element)| {
                for (key, value) in [
                    ("start_rule", &element.start_rule),
                    ("end_rule", &element.end_rule),
                ] {
                    if let Some(value) = value {
                        self.text(format!("elements[{index}].{key}"), value, SDTM_TEXT_MAX);
                    }
                }
                if let Some(duration) = &element.duration {
                    self.iso_duration(&format!("elements[{index}].duration"), duration);
                }
                Element {
                    code: element.code,
                    name: element.name,
                    start_rule: element.start_rule,
                    end_rule: element.end_rule,
                    duration: element.duration,
                }
            })
            .collect();

        known.arms = self.ids(
            "arm",
            "arms",
            arms.iter().map(|arm| arm.code.as_str()),
            "code",
            ARM_CODE_MAX,
        );
        let arms: Vec<Arm> = arms
            .into_iter()
            .enumerate()
            .map(|(index, arm)| self.arm(index, arm, &known))
            .collect();

        known.encounters = self.ids(
            "encounter",
            "encounters",
            encounters.iter().map(|encounter| encounter.id.as_str()),
            "id",
            usize::MAX,
        );
        let encounters: Vec<Encounter> = encounters
            .into_iter()
            .enumerate()
            .map(|(index, encounter)| self.encounter(index, encounter, &known))
            .collect();
        self.visit_numbers(&encounters);
        self.overlapping_windows(&encounters, &known.arms);
        self.encounter_epochs(&encounters, &arms, &known.epochs);

        let study = self.study(study, &arms, &known);
        let baseline_encounter = encounters
            .iter()
            .find(|encounter| encounter.id == study.baseline_encounter)
            .cloned();
        if let Some(baseline) = &baseline_encounter
            && (baseline.target_day != 0 || !baseline.arms.is_empty())
        {
            self.invalid(
                "study.baseline_encounter",
                "an encounter of every arm with target day 0",
                format!(
                    "{} (target day {})",
                    quoted(&baseline.id),
                    baseline.target_day
                ),
            );
        }

        self.ids(
            "criterion",
            "eligibility",
            eligibility.iter().map(|criterion| criterion.id.as_str()),
            "id",
            TEST_CODE_MAX,
        );
        let eligibility: Vec<Criterion> = eligibility
            .into_iter()
            .enumerate()
            .filter_map(|(index, criterion)| self.criterion(index, criterion, &conventions))
            .collect();

        known.objectives = self.ids(
            "objective",
            "objectives",
            objectives.iter().map(|objective| objective.id.as_str()),
            "id",
            usize::MAX,
        );
        for (index, objective) in objectives.iter().enumerate() {
            self.text(
                format!("objectives[{index}].text"),
                &objective.text,
                SDTM_TEXT_MAX,
            );
        }
        let objectives: Vec<Objective> = objectives
            .into_iter()
            .map(|objective| Objective {
                id: objective.id,
                level: objective.level,
                text: objective.text,
            })
            .collect();

        // Counted on the file, so an endpoint rejected for another reason does not also cause this error.
        let has_primary_endpoint = endpoints
            .iter()
            .any(|endpoint| endpoint.level == Level::Primary);
        self.ids(
            "endpoint",
            "endpoints",
            endpoints.iter().map(|endpoint| endpoint.id.as_str()),
            "id",
            usize::MAX,
        );
        let endpoints: Vec<Endpoint> = endpoints
            .into_iter()
            .enumerate()
            .filter_map(|(index, endpoint)| {
                self.endpoint(
                    index,
                    endpoint,
                    &known,
                    &arms,
                    &encounters,
                    &study,
                    &conventions,
                )
            })
            .collect();
        if !has_primary_endpoint {
            self.invalid(
                "endpoints",
                "at least one endpoint with level = \"primary\"",
                "none",
            );
        }

        let trial_summary = self.trial_summary(trial_summary.unwrap_or_default());
        let interventions = interventions
            .into_iter()
            .enumerate()
            .map(|(index, intervention)| self.intervention(index, intervention, &known))
            .collect();

        Some(Protocol {
            trial_summary,
            interventions,
            version: version_file.version,
            amendment: version_file.amendment.map(|amendment| Amendment {
                summary: amendment.summary,
            }),
            study,
            conventions,
            epochs,
            elements,
            arms,
            encounters,
            eligibility,
            objectives,
            endpoints,
            baseline_encounter: baseline_encounter?,
            source: String::new(),
            registered_as: None,
        })
    }

    /// Checks a list's ids (format, length, uniqueness) and returns them for reference checks.
    fn ids<'a>(
        &mut self,
        kind: &str,
        list_key: &str,
        ids: impl Iterator<Item = &'a str>,
        id_key: &str,
        max_len: usize,
    ) -> Vec<String> {
        let mut first_seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut all = Vec::new();
        for (index, id) in ids.enumerate() {
            let key_path = format!("{list_key}[{index}].{id_key}");
            self.code(&key_path, id, max_len, kind == "criterion");
            if let Some(first) = first_seen.get(id) {
                self.invalid(
                    &key_path,
                    format!(
                        "a unique {kind} {id_key} ({list_key}[{first}].{id_key} is already {})",
                        quoted(id)
                    ),
                    quoted(id),
                );
            } else {
                first_seen.insert(id, index);
            }
            all.push(id.to_string());
        }
        all
    }

    /// Identifiers become SDTM codes and file names: letters, digits, `_` and `-` only; SDTM test
    /// codes (`IETESTCD`) also start with a letter and have no `-`.
    fn code(&mut self, key_path: &str, id: &str, max_len: usize, test_code: bool) {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || (!test_code && c == '-');
        let starts_right = !test_code || id.starts_with(|c: char| c.is_ascii_alphabetic());
        if id.is_empty()
            || !id.chars().all(allowed)
            || !starts_right
            || id.chars().count() > max_len
        {
            let characters = if test_code {
                "a letter, then letters, digits or `_`"
            } else {
                "letters, digits, `_` or `-`"
            };
            let length = if max_len == usize::MAX {
                String::new()
            } else {
                format!(", at most {max_len} characters")
            };
            self.invalid(
                key_path,
                format!("an identifier of {characters}{length}"),
                quoted(id),
            );
        }
    }

    fn text(&mut self, key_path: impl Into<String>, text: &str, max_len: usize) {
        let length = text.chars().count();
        if text.trim().is_empty() {
            self.invalid(key_path, "a non-empty text", "an empty text");
        } else if length > max_len {
            self.invalid(
                key_path,
                format!("at most {max_len} characters (SDTM text limit)"),
                format!("{length} characters"),
            );
        }
    }

    fn reference(
        &mut self,
        key_path: impl Into<String>,
        kind: &str,
        found: &str,
        known: &[String],
    ) -> bool {
        if known.iter().any(|id| id == found) {
            return true;
        }
        self.invalid(
            key_path,
            format!("one of the {kind} ids {}", listing(known)),
            quoted(found),
        );
        false
    }

    fn conventions(&mut self, raw: ConventionsFile) -> Conventions {
        if raw.mmt8_max != 80 && raw.mmt8_max != 150 {
            self.invalid(
                "conventions.mmt8_max",
                "80 (unilateral) or 150 (bilateral)",
                raw.mmt8_max.to_string(),
            );
        }
        let haq_min_categories = raw.haq_min_categories.unwrap_or(6);
        if haq_min_categories != 6 && haq_min_categories != 7 {
            self.invalid(
                "conventions.haq_min_categories",
                "6 (Stanford) or 7",
                haq_min_categories.to_string(),
            );
        }
        let cdasi_mcid = raw.cdasi_mcid.unwrap_or(4);
        if cdasi_mcid != 4 && cdasi_mcid != 5 {
            self.invalid(
                "conventions.cdasi_mcid",
                "4 (UPenn) or 5 (Stanford)",
                cdasi_mcid.to_string(),
            );
        }
        let cdasi_severity_cutoff = raw.cdasi_severity_cutoff.unwrap_or(14);
        if cdasi_severity_cutoff != 14 && cdasi_severity_cutoff != 19 {
            self.invalid(
                "conventions.cdasi_severity_cutoff",
                "14 (Stanford) or 19 (UPenn)",
                cdasi_severity_cutoff.to_string(),
            );
        }
        if let Some(grade) = raw.mmt_trace_grade
            && grade > 10
        {
            self.invalid(
                "conventions.mmt_trace_grade",
                "a Kendall grade from 0 to 10 for \"T\" (trace), or no value to reject trace",
                grade.to_string(),
            );
        }
        // Both formulas are named so a protocol records its choice
        // (docs/clinical.md#11-conventions-where-the-sources-are-silent), but only the documented
        // defaults are implemented by scoring: refuse a protocol that could not be computed.
        if raw.doi_percent_change == Some(PercentChangeRule::RangeOfScale) {
            self.invalid(
                "conventions.doi_percent_change",
                "\"relative_to_baseline\" (the DOI formula scoring implements)",
                "\"range_of_scale\"",
            );
        }
        if raw.tis_percent_change == Some(PercentChangeRule::RelativeToBaseline) {
            self.invalid(
                "conventions.tis_percent_change",
                "\"range_of_scale\" (the TIS formula scoring implements; the enzyme is always relative to baseline)",
                "\"relative_to_baseline\"",
            );
        }
        Conventions {
            mmt8_max: raw.mmt8_max,
            mmt_trace_grade: raw.mmt_trace_grade,
            cdasi_severity_cutoff,
            global_scale: raw.global_scale.unwrap_or(GlobalScale::VasCm),
            haq_min_categories,
            cdasi_mcid,
            doi_percent_change: raw
                .doi_percent_change
                .unwrap_or(PercentChangeRule::RelativeToBaseline),
            tis_percent_change: raw
                .tis_percent_change
                .unwrap_or(PercentChangeRule::RangeOfScale),
        }
    }

    fn study(&mut self, raw: StudyFile, arms: &[Arm], known: &Known) -> Study {
        self.code("study.id", &raw.id, usize::MAX, false);
        self.text("study.title", &raw.title, SDTM_TEXT_MAX);
        if let Some(registry_id) = &raw.registry_id {
            self.code("study.registry_id", registry_id, usize::MAX, false);
        }
        if raw.planned_subjects == Some(0) {
            self.invalid("study.planned_subjects", "at least 1 subject", "0");
        }
        if raw.treatments.is_empty() {
            self.invalid(
                "study.treatments",
                "at least one investigational treatment",
                "none",
            );
        }
        for (index, treatment) in raw.treatments.iter().enumerate() {
            self.text(
                format!("study.treatments[{index}]"),
                treatment,
                SDTM_TEXT_MAX,
            );
        }
        if raw.randomised && arms.len() == 1 {
            self.invalid(
                "study.randomised",
                "false for a study with a single arm",
                "true",
            );
        }
        self.reference(
            "study.baseline_encounter",
            "encounter",
            &raw.baseline_encounter,
            &known.encounters,
        );
        Study {
            id: raw.id,
            registry_id: raw.registry_id,
            title: raw.title,
            phase: raw.phase,
            blinding: raw.blinding,
            randomised: raw.randomised,
            population: raw.population,
            add_on: raw.add_on,
            planned_subjects: raw.planned_subjects,
            treatments: raw.treatments,
            baseline_encounter: raw.baseline_encounter,
        }
    }

    fn arm(&mut self, index: usize, raw: ArmFile, known: &Known) -> Arm {
        let path = format!("arms[{index}]");
        self.text(format!("{path}.name"), &raw.name, SDTM_TEXT_MAX);
        let first_dose_day = match (raw.baseline, raw.first_dose_day) {
            (BaselineRule::Randomisation, None | Some(0)) => 0,
            (BaselineRule::Randomisation, Some(day)) => {
                self.invalid(
                    format!("{path}.first_dose_day"),
                    "0 or no value for an arm whose baseline is randomisation (a later first dose needs baseline = \"own_first_dose\")",
                    day.to_string(),
                );
                day
            }
            (BaselineRule::OwnFirstDose, Some(day)) if day > 0 => day,
            (BaselineRule::OwnFirstDose, found) => {
                self.invalid(
                    format!("{path}.first_dose_day"),
                    "the planned day of the delayed first dose, after day 0",
                    found.map_or("none".to_string(), |day| day.to_string()),
                );
                found.unwrap_or(0)
            }
        };
        if raw.cells.is_empty() {
            self.invalid(
                format!("{path}.cells"),
                "at least one cell (epoch and element)",
                "none",
            );
        }
        let mut previous_epoch: Option<usize> = None;
        for (cell_index, cell) in raw.cells.iter().enumerate() {
            let cell_path = format!("{path}.cells[{cell_index}]");
            if self.reference(
                format!("{cell_path}.epoch"),
                "epoch",
                &cell.epoch,
                &known.epochs,
            ) {
                let position = known.epochs.iter().position(|epoch| *epoch == cell.epoch);
                if let (Some(position), Some(previous)) = (position, previous_epoch)
                    && position <= previous
                {
                    self.invalid(
                        format!("{cell_path}.epoch"),
                        format!(
                            "an epoch after {} (cells follow the order of [[epochs]], one per epoch)",
                            quoted(&known.epochs[previous])
                        ),
                        quoted(&cell.epoch),
                    );
                }
                previous_epoch = position.or(previous_epoch);
            }
            self.reference(
                format!("{cell_path}.element"),
                "element",
                &cell.element,
                &known.elements,
            );
        }
        Arm {
            code: raw.code,
            name: raw.name,
            arm_type: raw.arm_type,
            baseline: raw.baseline,
            first_dose_day,
            cells: raw
                .cells
                .into_iter()
                .map(|cell| Cell {
                    epoch: cell.epoch,
                    element: cell.element,
                })
                .collect(),
        }
    }

    fn encounter(&mut self, index: usize, raw: EncounterFile, known: &Known) -> Encounter {
        let path = format!("encounters[{index}]");
        self.text(format!("{path}.name"), &raw.name, SDTM_TEXT_MAX);
        self.reference(format!("{path}.epoch"), "epoch", &raw.epoch, &known.epochs);
        let window = DayWindow {
            first_day: raw.window[0],
            last_day: raw.window[1],
        };
        if window.first_day > window.last_day {
            self.invalid(
                format!("{path}.window"),
                "[first day, last day] with first day <= last day",
                window.to_string(),
            );
        } else if !window.contains(raw.target_day) {
            self.invalid(
                format!("{path}.window"),
                format!("a window containing the target day {}", raw.target_day),
                window.to_string(),
            );
        }
        // An absent list means every arm; an explicitly empty one would mean a visit nobody attends.
        if raw.arms.as_ref().is_some_and(Vec::is_empty) {
            self.invalid(
                format!("{path}.arms"),
                "at least one arm code (leave `arms` out for every arm)",
                "[]",
            );
        }
        let arms = raw.arms.unwrap_or_default();
        for (arm_index, arm) in arms.iter().enumerate() {
            self.reference(format!("{path}.arms[{arm_index}]"), "arm", arm, &known.arms);
        }
        let epoch_by_arm: Vec<(String, String)> =
            raw.epoch_by_arm.unwrap_or_default().into_iter().collect();
        for (arm, epoch) in &epoch_by_arm {
            self.reference(format!("{path}.epoch_by_arm"), "arm", arm, &known.arms);
            self.reference(
                format!("{path}.epoch_by_arm.{arm}"),
                "epoch",
                epoch,
                &known.epochs,
            );
            if !arms.is_empty() && !arms.contains(arm) {
                self.invalid(
                    format!("{path}.epoch_by_arm"),
                    format!("an arm the encounter applies to ({})", listing(&arms)),
                    quoted(arm),
                );
            }
        }
        Encounter {
            id: raw.id,
            name: raw.name,
            visit_number: raw.visit_number,
            epoch: raw.epoch,
            epoch_by_arm,
            target_day: raw.target_day,
            window,
            arms,
            optional: raw.optional,
        }
    }

    fn visit_numbers(&mut self, encounters: &[Encounter]) {
        let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
        for (index, encounter) in encounters.iter().enumerate() {
            if let Some(first) = seen.get(&encounter.visit_number) {
                self.invalid(
                    format!("encounters[{index}].visit_number"),
                    format!(
                        "a unique visit number (encounters[{first}].visit_number is already {})",
                        encounter.visit_number
                    ),
                    encounter.visit_number.to_string(),
                );
            } else {
                seen.insert(encounter.visit_number, index);
            }
        }
    }

    /// A visit happens in an epoch its arms pass through: MYOJAK's week 36 is in the delayed arm's
    /// third period, which the immediate arm never enters.
    fn encounter_epochs(&mut self, encounters: &[Encounter], arms: &[Arm], epoch_ids: &[String]) {
        // An unknown epoch is reported where it is named; checking against it would only repeat that.
        let known = |epoch: &String| epoch_ids.contains(epoch);
        let checkable_arms: Vec<&Arm> = arms
            .iter()
            .filter(|arm| arm.cells.iter().all(|cell| known(&cell.epoch)))
            .collect();
        for (index, encounter) in encounters
            .iter()
            .enumerate()
            .filter(|(_, encounter)| known(&encounter.epoch))
        {
            let missing_epoch = checkable_arms.iter().find(|arm| {
                let epoch = encounter.epoch_for(&arm.code);
                encounter.applies_to(&arm.code)
                    && known(&epoch.to_string())
                    && !arm.cells.iter().any(|cell| cell.epoch == epoch)
            });
            if let Some(arm) = missing_epoch {
                self.invalid(
                    format!("encounters[{index}].epoch"),
                    format!(
                        "an epoch of arm {} (one of {}), or `arms` leaving that arm out",
                        quoted(&arm.code),
                        listing(
                            &arm.cells
                                .iter()
                                .map(|cell| cell.epoch.clone())
                                .collect::<Vec<_>>()
                        )
                    ),
                    quoted(encounter.epoch_for(&arm.code)),
                );
            }
        }
    }

    /// Windows of two encounters that one subject can both attend must not overlap: a visit on a
    /// shared day could not be assigned to a single planned visit.
    fn overlapping_windows(&mut self, encounters: &[Encounter], arm_codes: &[String]) {
        let shares_an_arm = |a: &Encounter, b: &Encounter| {
            arm_codes
                .iter()
                .any(|arm| a.applies_to(arm) && b.applies_to(arm))
        };
        for (later_index, later) in encounters.iter().enumerate() {
            let overlapped = encounters[..later_index].iter().find(|earlier| {
                earlier.window.first_day <= earlier.window.last_day
                    && later.window.first_day <= later.window.last_day
                    && earlier.window.overlaps(later.window)
                    && shares_an_arm(earlier, later)
            });
            if let Some(earlier) = overlapped {
                self.invalid(
                    format!("encounters[{later_index}].window"),
                    format!(
                        "a window not overlapping encounter {} {}",
                        quoted(&earlier.id),
                        earlier.window
                    ),
                    later.window.to_string(),
                );
            }
        }
    }

    fn criterion(
        &mut self,
        index: usize,
        raw: CriterionFile,
        conventions: &Conventions,
    ) -> Option<Criterion> {
        let path = format!("eligibility[{index}]");
        self.text(format!("{path}.text"), &raw.text, SDTM_TEXT_MAX);
        let rule = self.rule(&format!("{path}.rule"), raw.rule, conventions)?;
        Some(Criterion {
            id: raw.id,
            category: raw.category,
            text: raw.text,
            rule,
        })
    }

    fn rule(&mut self, path: &str, raw: RuleFile, conventions: &Conventions) -> Option<Rule> {
        let kind = raw.kind;
        let present: [(&str, bool); 14] = [
            ("measure", raw.measure.is_some()),
            ("op", raw.op.is_some()),
            ("value", raw.value.is_some()),
            ("flag", raw.flag.is_some()),
            ("is", raw.is.is_some()),
            ("count", raw.count.is_some()),
            ("rules", raw.rules.is_some()),
            ("condition", raw.condition.is_some()),
            ("then", raw.then.is_some()),
            ("weeks", raw.weeks.is_some()),
            ("months", raw.months.is_some()),
            ("drugs", raw.drugs.is_some()),
            ("responses", raw.responses.is_some()),
            ("code", raw.code.is_some()),
        ];
        let mut complete = true;
        for (key, is_present) in present {
            let belongs = kind.keys().contains(&key);
            if is_present && !belongs {
                self.invalid(
                    format!("{path}.{key}"),
                    format!("no `{key}` in a rule of kind {}", kind.name()),
                    "a value",
                );
                complete = false;
            } else if !is_present
                && belongs
                && key != "is"
                && !(kind == RuleKind::Washout && matches!(key, "weeks" | "months"))
            {
                self.invalid(
                    format!("{path}.{key}"),
                    format!("a `{key}` for a rule of kind {}", kind.name()),
                    "none",
                );
                complete = false;
            }
        }
        if !complete {
            return None;
        }
        let nested = |checker: &mut Self, rules: Vec<RuleFile>| -> Option<Vec<Rule>> {
            if rules.is_empty() {
                checker.invalid(format!("{path}.rules"), "at least one rule", "none");
            }
            let checked: Vec<Option<Rule>> = rules
                .into_iter()
                .enumerate()
                .map(|(index, rule)| {
                    checker.rule(&format!("{path}.rules[{index}]"), rule, conventions)
                })
                .collect();
            checked.into_iter().collect()
        };
        match (kind, raw) {
            (
                RuleKind::Compare,
                RuleFile {
                    measure: Some(measure),
                    op: Some(op),
                    value: Some(ExactDecimal(threshold)),
                    ..
                },
            ) => {
                let (low, high, unit) = measure_range(measure, conventions);
                if threshold < low || threshold > high {
                    self.invalid(
                        format!("{path}.value"),
                        format!("a {measure} threshold from {low} to {high}{unit}"),
                        threshold.to_string(),
                    );
                    return None;
                }
                let decimals = measure_decimals(measure, conventions);
                if threshold.normalize().scale() > decimals {
                    self.invalid(
                        format!("{path}.value"),
                        format!("a {measure} threshold with at most {decimals} decimal place(s)"),
                        threshold.to_string(),
                    );
                    return None;
                }
                Some(Rule::Compare {
                    measure,
                    op,
                    threshold,
                })
            }
            (
                RuleKind::Flag,
                RuleFile {
                    flag: Some(flag),
                    is,
                    ..
                },
            ) => Some(Rule::Flag {
                flag,
                is: is.unwrap_or(true),
            }),
            (RuleKind::AnyEnzymeAboveUln, _) => Some(Rule::AnyEnzymeAboveUln),
            (
                RuleKind::AllOf,
                RuleFile {
                    rules: Some(rules), ..
                },
            ) => nested(self, rules).map(Rule::AllOf),
            (
                RuleKind::AnyOf,
                RuleFile {
                    rules: Some(rules), ..
                },
            ) => nested(self, rules).map(Rule::AnyOf),
            (
                RuleKind::AtLeast,
                RuleFile {
                    count: Some(count),
                    rules: Some(rules),
                    ..
                },
            ) => {
                let available = rules.len();
                if count == 0 || count as usize > available {
                    self.invalid(
                        format!("{path}.count"),
                        format!("a count from 1 to the number of rules ({available})"),
                        count.to_string(),
                    );
                }
                let rules = nested(self, rules)?;
                Some(Rule::AtLeast { count, rules })
            }
            (
                RuleKind::When,
                RuleFile {
                    condition: Some(condition),
                    then: Some(then),
                    ..
                },
            ) => {
                let condition = self.rule(&format!("{path}.condition"), *condition, conventions);
                let then = self.rule(&format!("{path}.then"), *then, conventions);
                Some(Rule::When {
                    condition: Box::new(condition?),
                    then: Box::new(then?),
                })
            }
            (
                RuleKind::GlucocorticoidMaxWithin,
                RuleFile {
                    weeks: Some(weeks),
                    op: Some(op),
                    value: Some(ExactDecimal(threshold)),
                    ..
                },
            ) => {
                let weeks = self.rule_weeks(path, weeks)?;
                let threshold = self.dose_threshold(path, threshold)?;
                Some(Rule::GlucocorticoidMaxWithin {
                    weeks,
                    op,
                    threshold,
                })
            }
            (
                RuleKind::GlucocorticoidSustained,
                RuleFile {
                    weeks: Some(weeks),
                    value: Some(ExactDecimal(mg_per_day)),
                    ..
                },
            ) => {
                let weeks = self.rule_weeks(path, weeks)?;
                let mg_per_day = self.dose_threshold(path, mg_per_day)?;
                Some(Rule::GlucocorticoidSustained { mg_per_day, weeks })
            }
            (RuleKind::InformedConsent, _) => Some(Rule::InformedConsent),
            (
                RuleKind::Washout,
                RuleFile {
                    drugs: Some(drugs),
                    weeks,
                    months,
                    ..
                },
            ) => {
                let drugs = self.drug_list(path, drugs)?;
                let period = match (weeks, months) {
                    (Some(weeks), None) => WashoutPeriod::Weeks(self.rule_weeks(path, weeks)?),
                    (None, Some(months)) if (1..=240).contains(&months) => {
                        WashoutPeriod::Months(months)
                    }
                    (None, Some(months)) => {
                        self.invalid(
                            format!("{path}.months"),
                            "a number of months from 1 to 240",
                            months.to_string(),
                        );
                        return None;
                    }
                    _ => {
                        self.invalid(
                            format!("{path}.weeks"),
                            "exactly one of `weeks` and `months` for a rule of kind washout",
                            if weeks.is_some() { "both" } else { "neither" },
                        );
                        return None;
                    }
                };
                Some(Rule::Washout { drugs, period })
            }
            (
                RuleKind::PriorResponse,
                RuleFile {
                    drugs: Some(drugs),
                    responses: Some(responses),
                    count: Some(count),
                    ..
                },
            ) => {
                let drugs = self.drug_list(path, drugs)?;
                if responses.is_empty() {
                    self.invalid(
                        format!("{path}.responses"),
                        "at least one of responded, failed, intolerant",
                        "none",
                    );
                    return None;
                }
                if count == 0 || count as usize > drugs.len() {
                    self.invalid(
                        format!("{path}.count"),
                        format!("a count from 1 to the number of drugs ({})", drugs.len()),
                        count.to_string(),
                    );
                    return None;
                }
                Some(Rule::PriorResponse {
                    drugs,
                    responses,
                    count,
                })
            }
            (
                RuleKind::Attested,
                RuleFile {
                    code: Some(code),
                    is,
                    ..
                },
            ) => match AttestationCode::new(&code) {
                Ok(code) => Some(Rule::Attested {
                    code,
                    is: is.unwrap_or(true),
                }),
                Err(problem) => {
                    self.invalid(format!("{path}.code"), problem.to_string(), quoted(&code));
                    None
                }
            },
            // Every required key was checked present above.
            _ => None,
        }
    }

    /// A coded value: a submission value of `codelist` in the CT extract, or an error listing them.
    fn coded(&mut self, path: &str, codelist: &str, value: &str) {
        if ct::lookup(codelist, value).is_none() {
            let allowed = ct::values(codelist);
            self.invalid(
                path,
                format!(
                    "a term of the {codelist} codelist of CDISC CT {} ({})",
                    ct::CT_VERSION,
                    allowed.join(", ")
                ),
                quoted(value),
            );
        }
    }

    /// An ISO 8601 duration of whole weeks, days or months (`P12W`, `P84D`, `P3M`).
    fn iso_duration(&mut self, path: &str, text: &str) {
        let valid = text
            .strip_prefix('P')
            .and_then(|rest| rest.strip_suffix(['W', 'D', 'M', 'Y']))
            .is_some_and(|number| {
                !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit())
            });
        if !valid {
            self.invalid(
                path,
                "an ISO 8601 duration such as P12W, P84D or P3M",
                quoted(text),
            );
        }
    }

    fn trial_summary(&mut self, raw: TrialSummaryFile) -> TrialSummary {
        let base = "trial_summary";
        for (key, value) in [
            ("sponsor", &raw.sponsor),
            ("control", &raw.control),
            ("indication", &raw.indication),
            ("diagnosis_group", &raw.diagnosis_group),
            ("pharmacological_class", &raw.pharmacological_class),
            ("current_therapy", &raw.current_therapy),
        ] {
            if let Some(value) = value {
                self.text(format!("{base}.{key}"), value, SDTM_TEXT_MAX);
            }
        }
        if let Some(rule) = &raw.stopping_rule {
            // TSVAL splits beyond 200 characters, so a stopping rule may be long.
            self.text(format!("{base}.stopping_rule"), rule, usize::MAX);
        }
        for (index, other) in raw.other_ids.iter().enumerate() {
            self.coded(
                &format!("{base}.other_ids[{index}].registry"),
                "DICTNAM",
                &other.registry,
            );
            self.code(
                &format!("{base}.other_ids[{index}].id"),
                &other.id,
                usize::MAX,
                false,
            );
        }
        for (index, country) in raw.countries.iter().enumerate() {
            if country.len() != 3 || !country.bytes().all(|byte| byte.is_ascii_uppercase()) {
                self.invalid(
                    format!("{base}.countries[{index}]"),
                    "an ISO 3166-1 alpha-3 code (three capital letters, e.g. FRA)",
                    quoted(country),
                );
            }
        }
        for (key, codelist, value) in [
            ("sex", "SEXPOP", &raw.sex),
            ("intervention_model", "INTMODEL", &raw.intervention_model),
            ("intervention_type", "INTTYPE", &raw.intervention_type),
            ("intent", "TINDTP", &raw.intent),
        ] {
            if let Some(value) = value {
                self.coded(&format!("{base}.{key}"), codelist, value);
            }
        }
        for (index, trial_type) in raw.trial_types.iter().enumerate() {
            self.coded(&format!("{base}.trial_types[{index}]"), "TTYPE", trial_type);
        }
        if let Some(end_date) = &raw.end_date {
            let complete = ClinicalDate::parse(end_date).is_ok();
            let month =
                end_date.len() == 7 && ClinicalDate::parse(&format!("{end_date}-01")).is_ok();
            if !complete && !month {
                self.invalid(
                    format!("{base}.end_date"),
                    "an ISO 8601 date, complete (2020-09-30) or to the month (2020-09)",
                    quoted(end_date),
                );
            }
        }
        for (index, code) in raw.assumptions.iter().enumerate() {
            if !ASSUMABLE_TS_PARAMETERS.contains(&code.as_str()) {
                self.invalid(
                    format!("{base}.assumptions[{index}]"),
                    format!(
                        "a TS parameter the protocol file sets ({})",
                        ASSUMABLE_TS_PARAMETERS.join(", ")
                    ),
                    quoted(code),
                );
            }
        }
        TrialSummary {
            sponsor: raw.sponsor,
            other_ids: raw
                .other_ids
                .into_iter()
                .map(|other| RegistryId {
                    registry: other.registry,
                    id: other.id,
                })
                .collect(),
            countries: raw.countries,
            sex: raw.sex,
            healthy_volunteers: raw.healthy_volunteers,
            intervention_model: raw.intervention_model,
            intervention_type: raw.intervention_type,
            control: raw.control,
            trial_types: raw.trial_types,
            intent: raw.intent,
            indication: raw.indication,
            diagnosis_group: raw.diagnosis_group,
            pharmacological_class: raw.pharmacological_class,
            current_therapy: raw.current_therapy,
            rare_disease: raw.rare_disease,
            adaptive: raw.adaptive,
            stopping_rule: raw.stopping_rule,
            end_date: raw.end_date,
            assumptions: raw.assumptions,
        }
    }

    fn intervention(&mut self, index: usize, raw: InterventionFile, known: &Known) -> Intervention {
        let base = format!("interventions[{index}]");
        self.text(format!("{base}.substance"), &raw.substance, SDTM_TEXT_MAX);
        for (key, codelist, value) in [
            ("dose_unit", "UNIT", &raw.dose_unit),
            ("frequency", "FREQ", &raw.frequency),
            ("route", "ROUTE", &raw.route),
            ("form", "FRM", &raw.form),
        ] {
            if let Some(value) = value {
                self.coded(&format!("{base}.{key}"), codelist, value);
            }
        }
        if let Some(ExactDecimal(dose)) = raw.dose
            && dose < Decimal::ZERO
        {
            self.invalid(
                format!("{base}.dose"),
                "a dose of 0 or more",
                dose.to_string(),
            );
        }
        if raw.dose.is_some() != raw.dose_unit.is_some() {
            self.invalid(
                format!("{base}.dose_unit"),
                "a dose and its unit together, or neither",
                if raw.dose_unit.is_some() {
                    "a unit without a dose"
                } else {
                    "a dose without a unit"
                },
            );
        }
        for (arm_index, arm) in raw.arms.iter().enumerate() {
            self.reference(format!("{base}.arms[{arm_index}]"), "arm", arm, &known.arms);
        }
        Intervention {
            substance: raw.substance,
            role: raw.role,
            dose: raw.dose.map(|ExactDecimal(dose)| dose),
            dose_unit: raw.dose_unit,
            frequency: raw.frequency,
            route: raw.route,
            form: raw.form,
            arms: raw.arms,
        }
    }

    /// A glucocorticoid history rule's `weeks`: 1 to 520 (ten years).
    /// A non-empty list of drugs, each once.
    fn drug_list(&mut self, path: &str, drugs: Vec<PriorDrug>) -> Option<Vec<PriorDrug>> {
        if drugs.is_empty() {
            self.invalid(format!("{path}.drugs"), "at least one drug", "none");
            return None;
        }
        for (index, drug) in drugs.iter().enumerate() {
            if drugs[..index].contains(drug) {
                self.invalid(
                    format!("{path}.drugs[{index}]"),
                    "each drug once",
                    format!("{drug} again"),
                );
                return None;
            }
        }
        Some(drugs)
    }

    fn rule_weeks(&mut self, path: &str, weeks: u32) -> Option<u32> {
        if (1..=520).contains(&weeks) {
            Some(weeks)
        } else {
            self.invalid(
                format!("{path}.weeks"),
                "a number of weeks from 1 to 520",
                weeks.to_string(),
            );
            None
        }
    }

    /// A prednisone-equivalent daily dose threshold: 0 to 1000 mg/day, at most 2 decimals.
    fn dose_threshold(&mut self, path: &str, threshold: Decimal) -> Option<Decimal> {
        // The same range as the `prednisone_mg_per_day` measure.
        let (low, high, unit) = (Decimal::ZERO, Decimal::from(1000), " mg/day");
        if threshold < low || threshold > high || threshold.normalize().scale() > 2 {
            self.invalid(
                format!("{path}.value"),
                format!(
                    "a prednisone-equivalent dose from {low} to {high}{unit}, at most 2 decimals"
                ),
                threshold.to_string(),
            );
            return None;
        }
        Some(threshold)
    }

    #[allow(clippy::too_many_arguments)]
    fn endpoint(
        &mut self,
        index: usize,
        raw: EndpointFile,
        known: &Known,
        arms: &[Arm],
        encounters: &[Encounter],
        study: &Study,
        conventions: &Conventions,
    ) -> Option<Endpoint> {
        let path = format!("endpoints[{index}]");
        self.text(format!("{path}.text"), &raw.text, SDTM_TEXT_MAX);
        self.reference(
            format!("{path}.objective"),
            "objective",
            &raw.objective,
            &known.objectives,
        );
        let outcome_name = raw.outcome;

        let baseline = raw.baseline.unwrap_or(EndpointBaseline::Randomisation);
        if baseline == EndpointBaseline::OwnFirstDose
            && !arms
                .iter()
                .any(|arm| arm.baseline == BaselineRule::OwnFirstDose)
        {
            self.invalid(
                format!("{path}.baseline"),
                "\"randomisation\" (no arm has a delayed first dose, so \"own_first_dose\" is the same baseline)",
                "\"own_first_dose\"",
            );
        }

        let encounter_by_arm =
            self.endpoint_encounters(&path, &raw, known, arms, encounters, study);

        let forbid = |checker: &mut Self, key: &str, present: bool| {
            if present {
                checker.invalid(
                    format!("{path}.{key}"),
                    format!("no {key} for outcome {outcome_name}"),
                    "a value",
                );
            }
        };
        let is_prednisone_free = outcome_name == OutcomeName::PrednisoneFreeTis;
        if !is_prednisone_free {
            forbid(self, "threshold", raw.threshold.is_some());
            forbid(
                self,
                "glucocorticoid_window",
                raw.glucocorticoid_window.is_some(),
            );
            forbid(
                self,
                "min_dose_records_in_window",
                raw.min_dose_records_in_window.is_some(),
            );
        }
        if outcome_name != OutcomeName::BiomarkerFoldChange {
            forbid(self, "analyte", raw.analyte.is_some());
        }

        let outcome = match outcome_name {
            OutcomeName::Doi => Outcome::Doi,
            OutcomeName::TisScore => Outcome::TisScore,
            OutcomeName::TisCategory => Outcome::TisCategory,
            OutcomeName::CdasiActivityChange => Outcome::CdasiActivityChange,
            OutcomeName::CdasiMcid => Outcome::CdasiMcid,
            OutcomeName::Stat1Change => Outcome::Stat1Change,
            OutcomeName::BiomarkerFoldChange => match raw.analyte {
                Some(analyte) => {
                    // The analytes visits can carry (myolog score's "labs"); any letter case.
                    let known = LabCode::ALL
                        .iter()
                        .any(|code| code.key().eq_ignore_ascii_case(&analyte));
                    if !known {
                        let keys: Vec<String> = LabCode::ALL
                            .iter()
                            .map(|code| code.key().to_string())
                            .collect();
                        self.invalid(
                            format!("{path}.analyte"),
                            format!(
                                "one of the lab analytes {} (any letter case)",
                                listing(&keys)
                            ),
                            quoted(&analyte),
                        );
                    }
                    Outcome::BiomarkerFoldChange { analyte }
                }
                None => {
                    self.invalid(
                        format!("{path}.analyte"),
                        "the coded lab analyte of outcome biomarker_fold_change, e.g. \"CXCL9\"",
                        "none",
                    );
                    return None;
                }
            },
            OutcomeName::PrednisoneFreeTis => self.prednisone_free(&path, &raw)?,
        };

        let needs_vas = matches!(
            outcome_name,
            OutcomeName::TisScore | OutcomeName::TisCategory | OutcomeName::PrednisoneFreeTis
        );
        if needs_vas && conventions.global_scale == GlobalScale::Likert {
            self.invalid(
                format!("{path}.outcome"),
                format!("an outcome other than {outcome_name} with conventions.global_scale = \"likert\" (the TIS has no Likert formula)"),
                quoted(outcome_name),
            );
        }
        let responder = self.responder(&path, raw.responder, &outcome, conventions);
        let missing_data = raw.missing_data.unwrap_or(MissingDataRule::Missing);
        if missing_data == MissingDataRule::NonResponderImputation && responder.is_none() {
            self.invalid(
                format!("{path}.missing_data"),
                format!("\"missing\" (non-responder imputation needs a responder rule; {outcome_name} has none here)"),
                "\"non_responder_imputation\"",
            );
        }

        Some(Endpoint {
            id: raw.id,
            objective: raw.objective,
            level: raw.level,
            text: raw.text,
            outcome,
            encounter_by_arm,
            baseline,
            responder,
            missing_data,
        })
    }

    /// Resolves the endpoint's encounter for every arm; each must be scheduled for that arm and come
    /// after the baseline.
    fn endpoint_encounters(
        &mut self,
        path: &str,
        raw: &EndpointFile,
        known: &Known,
        arms: &[Arm],
        encounters: &[Encounter],
        study: &Study,
    ) -> Vec<(String, String)> {
        if !self.reference(
            format!("{path}.encounter"),
            "encounter",
            &raw.encounter,
            &known.encounters,
        ) {
            return Vec::new();
        }
        let overrides = raw.encounter_by_arm.clone().unwrap_or_default();
        let mut override_ok = BTreeSet::new();
        for (arm, encounter) in &overrides {
            let key_path = format!("{path}.encounter_by_arm.{arm}");
            let arm_known = self.reference(key_path.clone(), "arm", arm, &known.arms);
            let encounter_known =
                arm_known && self.reference(key_path, "encounter", encounter, &known.encounters);
            if encounter_known {
                override_ok.insert(arm.clone());
            }
        }
        let mut resolved = Vec::new();
        let mut reported: BTreeSet<String> = BTreeSet::new();
        for arm in arms {
            let (encounter_id, key_path) = match overrides.get(&arm.code) {
                Some(_) if !override_ok.contains(&arm.code) => continue,
                Some(encounter) => (
                    encounter.clone(),
                    format!("{path}.encounter_by_arm.{}", arm.code),
                ),
                None => (raw.encounter.clone(), format!("{path}.encounter")),
            };
            let Some(encounter) = encounters
                .iter()
                .find(|encounter| encounter.id == encounter_id)
            else {
                continue;
            };
            let baseline_day = arm_baseline_day(arm, raw);
            let problem = if !encounter.applies_to(&arm.code) {
                Some((
                    format!(
                        "an encounter scheduled for arm {} (or an entry for it in encounter_by_arm)",
                        quoted(&arm.code)
                    ),
                    format!(
                        "{} (arms {})",
                        quoted(&encounter.id),
                        listing(&encounter.arms)
                    ),
                ))
            } else if encounter.id == study.baseline_encounter {
                Some((
                    "an encounter after the baseline encounter (a change needs a follow-up visit)"
                        .to_string(),
                    format!("the baseline encounter {}", quoted(&encounter.id)),
                ))
            } else if encounter.target_day <= baseline_day {
                Some((
                    format!(
                        "an encounter after the first dose of arm {} (day {baseline_day})",
                        quoted(&arm.code)
                    ),
                    format!(
                        "{} (target day {})",
                        quoted(&encounter.id),
                        encounter.target_day
                    ),
                ))
            } else {
                None
            };
            // One error per key path: with an encounter common to all arms, each arm would repeat it.
            if let Some((expected, found)) = problem
                && reported.insert(key_path.clone())
            {
                self.invalid(key_path, expected, found);
            }
            resolved.push((arm.code.clone(), encounter_id));
        }
        resolved
    }

    fn prednisone_free(&mut self, path: &str, raw: &EndpointFile) -> Option<Outcome> {
        let Some(ExactDecimal(threshold)) = raw.threshold else {
            self.invalid(
                format!("{path}.threshold"),
                "the TIS threshold of outcome prednisone_free_tis, e.g. 40 (moderate improvement)",
                "none",
            );
            return None;
        };
        if threshold <= Decimal::ZERO || threshold > Decimal::ONE_HUNDRED {
            self.invalid(
                format!("{path}.threshold"),
                "a TIS threshold above 0 and at most 100",
                threshold.to_string(),
            );
        }
        let glucocorticoid_window = raw.glucocorticoid_window.map_or(
            DEFAULT_GLUCOCORTICOID_WINDOW,
            |[first_day, last_day]| DayWindow {
                first_day,
                last_day,
            },
        );
        if glucocorticoid_window.first_day > glucocorticoid_window.last_day
            || glucocorticoid_window.first_day < 0
        {
            self.invalid(
                format!("{path}.glucocorticoid_window"),
                "[first day, last day] with 0 <= first day <= last day",
                glucocorticoid_window.to_string(),
            );
        }
        let min_dose_records_in_window = raw.min_dose_records_in_window.unwrap_or(1);
        if min_dose_records_in_window == 0 {
            self.invalid(
                format!("{path}.min_dose_records_in_window"),
                "at least 1 (with no dose record in the window a subject is not evaluable, never met)",
                "0",
            );
        }
        Some(Outcome::PrednisoneFreeTis {
            threshold,
            glucocorticoid_window,
            min_dose_records_in_window,
        })
    }

    fn responder(
        &mut self,
        path: &str,
        raw: Option<ResponderFile>,
        outcome: &Outcome,
        conventions: &Conventions,
    ) -> Option<ResponderRule> {
        let name = outcome.name();
        match (raw, outcome) {
            (None | Some(ResponderFile::DoiMet), Outcome::Doi) => Some(ResponderRule::DoiMet),
            (None | Some(ResponderFile::CdasiMcidReached), Outcome::CdasiMcid) => {
                Some(ResponderRule::CdasiMcidReached {
                    points: conventions.cdasi_mcid,
                })
            }
            (None, Outcome::PrednisoneFreeTis { .. }) => Some(ResponderRule::PrednisoneFreeTisMet),
            (Some(ResponderFile::TisAtLeast(ExactDecimal(points))), Outcome::TisScore) => {
                if points <= Decimal::ZERO || points > Decimal::ONE_HUNDRED {
                    self.invalid(
                        format!("{path}.responder.tis_at_least"),
                        "a TIS above 0 and at most 100",
                        points.to_string(),
                    );
                }
                Some(ResponderRule::TisAtLeast(points))
            }
            (Some(ResponderFile::TisCategoryAtLeast(category)), Outcome::TisCategory) => {
                Some(ResponderRule::TisCategoryAtLeast(category))
            }
            (None, _) => None,
            (Some(found), _) => {
                let allowed = match outcome {
                    Outcome::Doi => "\"doi_met\" or none",
                    Outcome::CdasiMcid => "\"cdasi_mcid_reached\" or none",
                    Outcome::TisScore => "{ tis_at_least = N } or none",
                    Outcome::TisCategory => {
                        "{ tis_category_at_least = \"minimal\" | \"moderate\" | \"major\" } or none"
                    }
                    Outcome::PrednisoneFreeTis { .. } => {
                        "none (the threshold and window define the responder)"
                    }
                    _ => "none (a continuous outcome has no responder rule)",
                };
                self.invalid(
                    format!("{path}.responder"),
                    format!("a responder rule for outcome {name}: {allowed}"),
                    responder_name(&found),
                );
                None
            }
        }
    }
}

/// The day an endpoint's change is measured from, for one arm.
fn arm_baseline_day(arm: &Arm, raw: &EndpointFile) -> i32 {
    match raw.baseline.unwrap_or(EndpointBaseline::Randomisation) {
        EndpointBaseline::Randomisation => 0,
        EndpointBaseline::OwnFirstDose => arm.first_dose_day,
    }
}

fn responder_name(rule: &ResponderFile) -> String {
    match rule {
        ResponderFile::DoiMet => "\"doi_met\"".into(),
        ResponderFile::CdasiMcidReached => "\"cdasi_mcid_reached\"".into(),
        ResponderFile::TisAtLeast(ExactDecimal(points)) => format!("{{ tis_at_least = {points} }}"),
        ResponderFile::TisCategoryAtLeast(category) => {
            format!("{{ tis_category_at_least = {category:?} }}").to_lowercase()
        }
    }
}

/// Decimal places a threshold may have: the measure's own precision. HAQ-DI with 6 or 7 answered
/// categories (k/6, k/7) has no finite decimal; against a threshold of at most 3 decimals its
/// 28-digit quotient orders exactly as the true value does.
fn measure_decimals(measure: Measure, conventions: &Conventions) -> u32 {
    match measure {
        Measure::PhysicianGlobal | Measure::PatientGlobal | Measure::ExtramuscularGlobal => {
            match conventions.global_scale {
                GlobalScale::VasCm => 1,
                GlobalScale::Likert => 0,
            }
        }
        Measure::HaqDi => 3,
        Measure::PrednisoneMgPerDay => 2,
        // Probabilities and FI-3 percentages are read to one decimal, as calculators print them.
        Measure::EularAcrProbabilityPercent | Measure::Fi3PercentOfUpper => 1,
        Measure::ImmunosuppressantStableMonths
        | Measure::DiseaseDurationMonths
        | Measure::GlucocorticoidTreatedWeeks
        | Measure::AgeYears
        | Measure::CdasiActivity
        | Measure::CdasiDamage
        | Measure::Mmt8Total
        | Measure::PrednisoneStableWeeks => 0,
    }
}

/// The valid range of each measure on the protocol's scales, for threshold checks.
fn measure_range(measure: Measure, conventions: &Conventions) -> (Decimal, Decimal, &'static str) {
    let global_unit = match conventions.global_scale {
        GlobalScale::VasCm => " cm",
        GlobalScale::Likert => " (Likert)",
    };
    match measure {
        Measure::AgeYears => (Decimal::ZERO, Decimal::from(130), " years"),
        Measure::CdasiActivity => (Decimal::ZERO, Decimal::from(100), ""),
        Measure::CdasiDamage => (Decimal::ZERO, Decimal::from(32), ""),
        Measure::Mmt8Total => (
            Decimal::ZERO,
            Decimal::from(conventions.mmt8_max),
            " (conventions.mmt8_max)",
        ),
        Measure::PhysicianGlobal | Measure::PatientGlobal | Measure::ExtramuscularGlobal => {
            (Decimal::ZERO, conventions.global_scale.range(), global_unit)
        }
        Measure::HaqDi => (Decimal::ZERO, Decimal::from(3), ""),
        Measure::PrednisoneMgPerDay => (Decimal::ZERO, Decimal::from(1000), " mg/day"),
        Measure::PrednisoneStableWeeks => (Decimal::ZERO, Decimal::from(520), " weeks"),
        Measure::EularAcrProbabilityPercent | Measure::Fi3PercentOfUpper => {
            (Decimal::ZERO, Decimal::ONE_HUNDRED, " %")
        }
        Measure::ImmunosuppressantStableMonths | Measure::DiseaseDurationMonths => {
            (Decimal::ZERO, Decimal::from(1440), " months")
        }
        Measure::GlucocorticoidTreatedWeeks => (Decimal::ZERO, Decimal::from(6240), " weeks"),
    }
}
