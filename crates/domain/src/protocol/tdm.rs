//! SDTM trial design datasets from a protocol: TA (arms), TE (elements), TV (visits), TI
//! (inclusion/exclusion) and TS (summary), as rows and as CSV text, so a registered protocol can go
//! straight into a submission. Coded TS values carry their CDISC CT code from the committed extract
//! (`ct`); TS values the protocol marks as assumptions are left out unless asked for. Pure: the caller
//! reads the log (for SSTDTC, ACTSUB and the data cut-off) and writes the files.

use super::ct;
use super::model::{
    CompareOp, CriterionCategory, EpochType, InterventionRole, Level, Measure, Protocol, Rule,
};
use crate::date::ClinicalDate;
use rust_decimal::Decimal;
use serde::Serialize;

/// The SDTM versions the datasets are laid out for (TS SDTIGVER, SDTMVER).
pub const SDTMIG_VERSION: &str = "3.4";
pub const SDTM_VERSION: &str = "2.0";
/// SDTM text values hold at most 200 characters; TS continues a longer TSVAL in TSVAL1, TSVAL2, ...
const TSVAL_MAX: usize = 200;

/// What the caller knows beyond the protocol: the study's data in the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StudyData {
    /// The earliest informed-consent date of an enrolled subject (TS SSTDTC).
    pub earliest_consent: Option<ClinicalDate>,
    /// Enrolled subjects (TS ACTSUB).
    pub subjects: u32,
    /// The latest clinical date in the data (TS DCUTDTC) and what the cut-off is (DCUTDESC).
    pub cutoff: Option<(ClinicalDate, String)>,
}

/// How to build the datasets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TdmOptions {
    /// Export TS values the protocol marks as assumptions [D] (they are named in the result).
    pub include_assumptions: bool,
    pub data: Option<StudyData>,
}

/// Trial Elements: one row per element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeRow {
    pub etcd: String,
    pub element: String,
    pub testrl: String,
    pub teenrl: String,
    pub tedur: String,
}

/// SDTM study day of a protocol day. Protocol days count from day 0 (week N = day 7N); SDTM study
/// days have no day 0: day 1 is the reference start, the day before it is day -1.
pub fn sdtm_study_day(protocol_day: i32) -> i32 {
    if protocol_day >= 0 {
        protocol_day + 1
    } else {
        protocol_day
    }
}

/// Trial Arms: one row per element of each arm, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaRow {
    pub armcd: String,
    pub arm: String,
    pub taetord: u32,
    pub etcd: String,
    pub element: String,
    pub tabranch: String,
    pub tatrans: String,
    pub epoch: String,
}

/// Trial Visits: one row per planned visit (per arm when the visit is not common to all arms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TvRow {
    pub visitnum: u32,
    pub visit: String,
    pub visitdy: i32,
    pub armcd: String,
    pub arm: String,
    pub tvstrl: String,
    pub tvenrl: String,
}

/// Trial Inclusion/Exclusion Criteria.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TiRow {
    pub ietestcd: String,
    pub ietest: String,
    pub iecat: String,
    pub tirl: String,
    pub tivers: String,
}

/// Trial Summary: one row per parameter value. `tsval` is whole; the CSV splits it at 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TsRow {
    pub tsseq: u32,
    pub tsparmcd: String,
    pub tsparm: String,
    pub tsval: String,
    /// Null flavour when there is no value (`PINF`: no upper age limit).
    pub tsvalnf: String,
    pub tsvalcd: String,
    pub tsvcdref: String,
    pub tsvcdver: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdmDatasets {
    pub study_id: String,
    pub ta: Vec<TaRow>,
    pub te: Vec<TeRow>,
    pub tv: Vec<TvRow>,
    pub ti: Vec<TiRow>,
    pub ts: Vec<TsRow>,
    /// TS parameters whose exported values are the protocol's assumptions [D].
    pub assumptions_included: Vec<String>,
    /// TS parameters left out because their values are assumptions and they were not asked for.
    pub assumptions_left_out: Vec<String>,
}

impl Protocol {
    /// The SDTM trial design datasets of this protocol version, without data and without the values
    /// the protocol marks as assumptions.
    pub fn trial_design(&self) -> TdmDatasets {
        self.trial_design_with(&TdmOptions::default())
    }

    /// The SDTM trial design datasets, with the study's data and assumptions as `options` say.
    pub fn trial_design_with(&self, options: &TdmOptions) -> TdmDatasets {
        let mut summary = TrialSummary {
            rows: Vec::new(),
            assumptions: self.trial_summary.assumptions.clone(),
            include_assumptions: options.include_assumptions,
            included: Vec::new(),
            left_out: Vec::new(),
        };
        self.summary_rows(&mut summary, options.data.as_ref());
        TdmDatasets {
            study_id: self.study.id.clone(),
            ta: self.trial_arms(),
            te: self.trial_elements(),
            tv: self.trial_visits(),
            ti: self.trial_criteria(),
            ts: summary.rows,
            assumptions_included: summary.included,
            assumptions_left_out: summary.left_out,
        }
    }

    fn trial_elements(&self) -> Vec<TeRow> {
        self.elements
            .iter()
            .map(|element| TeRow {
                etcd: element.code.clone(),
                element: element.name.clone(),
                testrl: element.start_rule.clone().unwrap_or_default(),
                teenrl: element.end_rule.clone().unwrap_or_default(),
                tedur: element.duration.clone().unwrap_or_default(),
            })
            .collect()
    }

    fn trial_arms(&self) -> Vec<TaRow> {
        let mut rows = Vec::new();
        for arm in &self.arms {
            // A randomised study branches at the end of the element before the first treatment epoch.
            let branch_at = if self.study.randomised {
                arm.cells
                    .iter()
                    .position(|cell| {
                        self.epoch(&cell.epoch)
                            .is_some_and(|epoch| epoch.epoch_type == EpochType::Treatment)
                    })
                    .and_then(|first_treatment| first_treatment.checked_sub(1))
            } else {
                None
            };
            for (index, cell) in arm.cells.iter().enumerate() {
                rows.push(TaRow {
                    armcd: arm.code.clone(),
                    arm: arm.name.clone(),
                    taetord: index as u32 + 1,
                    etcd: cell.element.clone(),
                    element: self
                        .element(&cell.element)
                        .map(|element| element.name.clone())
                        .unwrap_or_default(),
                    tabranch: if branch_at == Some(index) {
                        format!("Randomized to {}", arm.name)
                    } else {
                        String::new()
                    },
                    tatrans: String::new(),
                    epoch: self
                        .epoch(&cell.epoch)
                        .map(|epoch| epoch.name.clone())
                        .unwrap_or_default(),
                });
            }
        }
        rows
    }

    fn trial_visits(&self) -> Vec<TvRow> {
        let mut encounters: Vec<_> = self.encounters.iter().collect();
        encounters.sort_by_key(|encounter| encounter.visit_number);
        let anchor = if self.study.randomised {
            "randomisation"
        } else {
            "first dose"
        };
        let mut rows = Vec::new();
        for encounter in encounters {
            let start_rule = format!(
                "Day {} relative to {anchor}; allowed days {} to {}{}",
                encounter.target_day,
                encounter.window.first_day,
                encounter.window.last_day,
                if encounter.optional { "; optional" } else { "" }
            );
            let row = |armcd: String, arm: String| TvRow {
                visitnum: encounter.visit_number,
                visit: encounter.name.clone(),
                visitdy: sdtm_study_day(encounter.target_day),
                armcd,
                arm,
                tvstrl: start_rule.clone(),
                tvenrl: String::new(),
            };
            if encounter.arms.is_empty() {
                // SDTMIG: ARMCD is null when the visit is planned for every arm.
                rows.push(row(String::new(), String::new()));
            } else {
                for arm in self
                    .arms
                    .iter()
                    .filter(|arm| encounter.applies_to(&arm.code))
                {
                    rows.push(row(arm.code.clone(), arm.name.clone()));
                }
            }
        }
        rows
    }

    fn trial_criteria(&self) -> Vec<TiRow> {
        self.eligibility
            .iter()
            .map(|criterion| TiRow {
                ietestcd: criterion.id.clone(),
                ietest: criterion.text.clone(),
                iecat: match criterion.category {
                    CriterionCategory::Inclusion => "INCLUSION".to_string(),
                    CriterionCategory::Exclusion => "EXCLUSION".to_string(),
                },
                tirl: criterion.rule.to_string(),
                tivers: self.version.to_string(),
            })
            .collect()
    }

    fn summary_rows(&self, summary: &mut TrialSummary, data: Option<&StudyData>) {
        let study = &self.study;
        let facts = &self.trial_summary;
        let yes_no = |value: bool| if value { "Y" } else { "N" };
        summary.add("TITLE", "Trial Title", &study.title);
        if let Some(registry_id) = &study.registry_id {
            summary.add_referenced(
                "REGID",
                "Registry Identifier",
                registry_id,
                registry_id,
                "ClinicalTrials.gov",
            );
        }
        for other in &facts.other_ids {
            summary.add_referenced(
                "REGID",
                "Registry Identifier",
                &other.id,
                &other.id,
                &other.registry,
            );
        }
        summary.add_coded(
            "TPHASE",
            "Trial Phase Classification",
            "TPHASE",
            study.phase.sdtm_term(),
        );
        summary.add_coded("STYPE", "Study Type", "STYPE", "INTERVENTIONAL");
        summary.add_coded(
            "TBLIND",
            "Trial Blinding Schema",
            "TBLIND",
            study.blinding.sdtm_term(),
        );
        summary.add_coded(
            "RANDOM",
            "Trial is Randomized",
            "NY",
            yes_no(study.randomised),
        );
        summary.add(
            "NARMS",
            "Planned Number of Arms",
            &self.arms.len().to_string(),
        );
        if let Some(planned) = study.planned_subjects {
            summary.add(
                "PLANSUB",
                "Planned Number of Subjects",
                &planned.to_string(),
            );
        }
        if let Some(add_on) = study.add_on {
            summary.add_coded(
                "ADDON",
                "Added on to Existing Treatments",
                "NY",
                yes_no(add_on),
            );
        }
        let investigational: Vec<_> = self
            .interventions
            .iter()
            .filter(|intervention| intervention.role == InterventionRole::Investigational)
            .collect();
        if investigational.is_empty() {
            for treatment in &study.treatments {
                summary.add("TRT", "Investigational Therapy or Treatment", treatment);
            }
        }
        for intervention in &investigational {
            summary.add(
                "TRT",
                "Investigational Therapy or Treatment",
                &intervention.substance,
            );
            if let Some(dose) = intervention.dose {
                summary.add(
                    "DOSE",
                    "Dose per Administration",
                    &dose.normalize().to_string(),
                );
            }
            for (code, label, codelist, value) in [
                ("DOSU", "Dose Units", "UNIT", &intervention.dose_unit),
                (
                    "DOSFRQ",
                    "Dosing Frequency",
                    "FREQ",
                    &intervention.frequency,
                ),
                (
                    "ROUTE",
                    "Route of Administration",
                    "ROUTE",
                    &intervention.route,
                ),
                ("DOSFRM", "Dose Form", "FRM", &intervention.form),
            ] {
                if let Some(value) = value {
                    summary.add_coded(code, label, codelist, value);
                }
            }
        }
        for comparator in self
            .interventions
            .iter()
            .filter(|intervention| intervention.role == InterventionRole::Comparator)
        {
            summary.add(
                "COMPTRT",
                "Comparative Treatment Name",
                &comparator.substance,
            );
        }
        if let Some(therapy) = &facts.current_therapy {
            summary.add("CURTRT", "Current Therapy or Treatment", therapy);
        }
        if let Some(class) = &facts.pharmacological_class {
            summary.add("PCLAS", "Pharmacologic Class", class);
        }
        let (minimum_age, maximum_age) = self.age_bounds();
        if let Some(years) = minimum_age {
            summary.add(
                "AGEMIN",
                "Planned Minimum Age of Subjects",
                &format!("P{years}Y"),
            );
        }
        match maximum_age {
            Some(years) => summary.add(
                "AGEMAX",
                "Planned Maximum Age of Subjects",
                &format!("P{years}Y"),
            ),
            // No upper age limit: a null value with the null flavour "positive infinity".
            None if minimum_age.is_some() => {
                summary.add_null("AGEMAX", "Planned Maximum Age of Subjects", "PINF");
            }
            None => {}
        }
        if let Some(sex) = &facts.sex {
            summary.add_coded("SEXPOP", "Sex of Participants", "SEXPOP", sex);
        }
        if let Some(healthy) = facts.healthy_volunteers {
            summary.add_coded(
                "HLTSUBJI",
                "Healthy Subject Indicator",
                "NY",
                yes_no(healthy),
            );
        }
        if let Some(model) = &facts.intervention_model {
            summary.add_coded("INTMODEL", "Intervention Model", "INTMODEL", model);
        }
        if let Some(kind) = &facts.intervention_type {
            summary.add_coded("INTTYPE", "Intervention Type", "INTTYPE", kind);
        }
        if let Some(control) = &facts.control {
            summary.add_coded("TCNTRL", "Control Type", "TCNTRL", control);
        }
        for trial_type in &facts.trial_types {
            summary.add_coded("TTYPE", "Trial Type", "TTYPE", trial_type);
        }
        if let Some(intent) = &facts.intent {
            summary.add_coded("TINDTP", "Trial Intent Type", "TINDTP", intent);
        }
        if let Some(indication) = &facts.indication {
            summary.add("INDIC", "Trial Disease/Condition Indication", indication);
        }
        if let Some(group) = &facts.diagnosis_group {
            summary.add("TDIGRP", "Diagnosis Group", group);
        }
        if let Some(rare) = facts.rare_disease {
            summary.add_coded("RDIND", "Rare Disease Indicator", "NY", yes_no(rare));
        }
        if let Some(adaptive) = facts.adaptive {
            summary.add_coded("ADAPT", "Adaptive Design", "NY", yes_no(adaptive));
        }
        if let Some(rule) = &facts.stopping_rule {
            summary.add("STOPRULE", "Study Stop Rules", rule);
        }
        if let Some(sponsor) = &facts.sponsor {
            summary.add("SPONSOR", "Clinical Study Sponsor", sponsor);
        }
        for country in &facts.countries {
            summary.add_referenced(
                "FCNTRY",
                "Planned Country of Investigational Sites",
                country,
                "",
                "ISO 3166",
            );
        }
        if let Some(length) = self.trial_length() {
            summary.add("LENGTH", "Trial Length", &length);
        }
        if let Some(data) = data {
            if let Some(consent) = data.earliest_consent {
                summary.add("SSTDTC", "Study Start Date", &iso_date(consent));
            }
            summary.add(
                "ACTSUB",
                "Actual Number of Subjects",
                &data.subjects.to_string(),
            );
            if let Some((cutoff, description)) = &data.cutoff {
                summary.add("DCUTDTC", "Data Cutoff Date", &iso_date(*cutoff));
                summary.add("DCUTDESC", "Data Cutoff Description", description);
            }
        }
        if let Some(end) = &facts.end_date {
            summary.add("SENDTC", "Study End Date", end);
        }
        summary.add("SDTIGVER", "SDTM IG Version", SDTMIG_VERSION);
        summary.add("SDTMVER", "SDTM Version", SDTM_VERSION);
        for (level, code, label) in [
            (Level::Primary, "OBJPRIM", "Trial Primary Objective"),
            (Level::Secondary, "OBJSEC", "Trial Secondary Objective"),
            (Level::Exploratory, "OBJEXP", "Trial Exploratory Objective"),
        ] {
            for objective in self
                .objectives
                .iter()
                .filter(|objective| objective.level == level)
            {
                summary.add(code, label, &objective.text);
            }
        }
        for (level, code, label) in [
            (Level::Primary, "OUTMSPRI", "Primary Outcome Measure"),
            (Level::Secondary, "OUTMSSEC", "Secondary Outcome Measure"),
            (
                Level::Exploratory,
                "OUTMSEXP",
                "Exploratory Outcome Measure",
            ),
        ] {
            for endpoint in self
                .endpoints
                .iter()
                .filter(|endpoint| endpoint.level == level)
            {
                summary.add(code, label, &endpoint.text);
            }
        }
    }

    /// Planned length of participation: day 0 to the latest planned visit, in weeks when whole.
    fn trial_length(&self) -> Option<String> {
        let last = self
            .encounters
            .iter()
            .map(|encounter| encounter.target_day)
            .max()
            .filter(|day| *day > 0)?;
        Some(if last % 7 == 0 {
            format!("P{}W", last / 7)
        } else {
            format!("P{last}D")
        })
    }

    /// Age bounds in completed years from inclusion rules on `age_years` (alone or inside `all of`):
    /// `>= 18` is a minimum of 18, `< 65` a maximum of 64 completed years.
    fn age_bounds(&self) -> (Option<Decimal>, Option<Decimal>) {
        fn visit(rule: &Rule, bounds: &mut (Option<Decimal>, Option<Decimal>)) {
            match rule {
                Rule::Compare {
                    measure: Measure::AgeYears,
                    op,
                    threshold,
                } if threshold.fract().is_zero() => {
                    let threshold = threshold.normalize();
                    match op {
                        CompareOp::GreaterOrEqual => bounds.0 = bounds.0.or(Some(threshold)),
                        CompareOp::Greater => {
                            bounds.0 = bounds.0.or(Some(threshold + Decimal::ONE))
                        }
                        CompareOp::LessOrEqual => bounds.1 = bounds.1.or(Some(threshold)),
                        CompareOp::Less => bounds.1 = bounds.1.or(Some(threshold - Decimal::ONE)),
                        CompareOp::Equal => {}
                    }
                }
                Rule::AllOf(rules) => rules.iter().for_each(|rule| visit(rule, bounds)),
                _ => {}
            }
        }
        let mut bounds = (None, None);
        for criterion in self
            .eligibility
            .iter()
            .filter(|criterion| criterion.category == CriterionCategory::Inclusion)
        {
            visit(&criterion.rule, &mut bounds);
        }
        bounds
    }
}

fn iso_date(date: ClinicalDate) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

struct TrialSummary {
    rows: Vec<TsRow>,
    assumptions: Vec<String>,
    include_assumptions: bool,
    included: Vec<String>,
    left_out: Vec<String>,
}

impl TrialSummary {
    /// Appends a value; TSSEQ numbers the values of one parameter from 1. A parameter the protocol
    /// marks as an assumption is kept only when asked for, and either way named.
    fn push(&mut self, row: TsRow) {
        let code = row.tsparmcd.clone();
        if self.assumptions.contains(&code) {
            let named = if self.include_assumptions {
                &mut self.included
            } else {
                &mut self.left_out
            };
            if !named.contains(&code) {
                named.push(code.clone());
            }
            if !self.include_assumptions {
                return;
            }
        }
        let tsseq = 1 + self.rows.iter().filter(|row| row.tsparmcd == code).count() as u32;
        self.rows.push(TsRow { tsseq, ..row });
    }

    fn add(&mut self, code: &str, label: &str, value: &str) {
        self.add_referenced(code, label, value, "", "");
    }

    /// A value with its code in a named reference terminology (REGID, FCNTRY).
    fn add_referenced(
        &mut self,
        code: &str,
        label: &str,
        value: &str,
        tsvalcd: &str,
        reference: &str,
    ) {
        self.push(TsRow {
            tsseq: 0,
            tsparmcd: code.to_string(),
            tsparm: label.to_string(),
            tsval: value.to_string(),
            tsvalnf: String::new(),
            tsvalcd: tsvalcd.to_string(),
            tsvcdref: reference.to_string(),
            tsvcdver: String::new(),
        });
    }

    /// A CDISC controlled term with its C-code and its package's date from the CT extracts. A value
    /// the extracts lack keeps an empty TSVALCD, which the trial design check reports.
    fn add_coded(&mut self, code: &str, label: &str, codelist: &str, value: &str) {
        let term = ct::lookup(codelist, value);
        self.push(TsRow {
            tsseq: 0,
            tsparmcd: code.to_string(),
            tsparm: label.to_string(),
            tsval: value.to_string(),
            tsvalnf: String::new(),
            tsvalcd: term.map(|term| term.code.clone()).unwrap_or_default(),
            tsvcdref: ct::CT_REFERENCE.to_string(),
            tsvcdver: term
                .map_or(ct::CT_VERSION, |term| term.version.as_str())
                .to_string(),
        });
    }

    fn add_null(&mut self, code: &str, label: &str, null_flavour: &str) {
        self.push(TsRow {
            tsseq: 0,
            tsparmcd: code.to_string(),
            tsparm: label.to_string(),
            tsval: String::new(),
            tsvalnf: null_flavour.to_string(),
            tsvalcd: String::new(),
            tsvcdref: String::new(),
            tsvcdver: String::new(),
        });
    }
}

/// A TSVAL cut into pieces of at most 200 characters, at the last space of each piece where there is
/// one (the space stays at the end of its piece), so the pieces joined give the value back exactly.
pub(super) fn split_tsval(value: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest: Vec<char> = value.chars().collect();
    while rest.len() > TSVAL_MAX {
        let cut = rest[..TSVAL_MAX]
            .iter()
            .rposition(|c| *c == ' ')
            .map_or(TSVAL_MAX, |space| space + 1);
        pieces.push(rest[..cut].iter().collect());
        rest = rest[cut..].to_vec();
    }
    pieces.push(rest.into_iter().collect());
    pieces
}

impl TdmDatasets {
    /// `(file name, CSV text)` for TA, TE, TV, TI and TS, in that order.
    pub fn to_csv_files(&self) -> Vec<(String, String)> {
        vec![
            ("ta.csv".to_string(), self.ta_csv()),
            ("te.csv".to_string(), self.te_csv()),
            ("tv.csv".to_string(), self.tv_csv()),
            ("ti.csv".to_string(), self.ti_csv()),
            ("ts.csv".to_string(), self.ts_csv()),
        ]
    }

    pub fn ta_csv(&self) -> String {
        let header = [
            "STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "TABRANCH",
            "TATRANS", "EPOCH",
        ];
        let rows = self.ta.iter().map(|row| {
            vec![
                self.study_id.clone(),
                "TA".into(),
                row.armcd.clone(),
                row.arm.clone(),
                row.taetord.to_string(),
                row.etcd.clone(),
                row.element.clone(),
                row.tabranch.clone(),
                row.tatrans.clone(),
                row.epoch.clone(),
            ]
        });
        render_csv(&header, rows)
    }

    pub fn te_csv(&self) -> String {
        let header = [
            "STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL", "TEENRL", "TEDUR",
        ];
        let rows = self.te.iter().map(|row| {
            vec![
                self.study_id.clone(),
                "TE".into(),
                row.etcd.clone(),
                row.element.clone(),
                row.testrl.clone(),
                row.teenrl.clone(),
                row.tedur.clone(),
            ]
        });
        render_csv(&header, rows)
    }

    pub fn tv_csv(&self) -> String {
        let header = [
            "STUDYID", "DOMAIN", "VISITNUM", "VISIT", "VISITDY", "ARMCD", "ARM", "TVSTRL", "TVENRL",
        ];
        let rows = self.tv.iter().map(|row| {
            vec![
                self.study_id.clone(),
                "TV".into(),
                row.visitnum.to_string(),
                row.visit.clone(),
                row.visitdy.to_string(),
                row.armcd.clone(),
                row.arm.clone(),
                row.tvstrl.clone(),
                row.tvenrl.clone(),
            ]
        });
        render_csv(&header, rows)
    }

    pub fn ti_csv(&self) -> String {
        let header = [
            "STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT", "TIRL", "TIVERS",
        ];
        let rows = self.ti.iter().map(|row| {
            vec![
                self.study_id.clone(),
                "TI".into(),
                row.ietestcd.clone(),
                row.ietest.clone(),
                row.iecat.clone(),
                row.tirl.clone(),
                row.tivers.clone(),
            ]
        });
        render_csv(&header, rows)
    }

    /// TS with TSVAL1..n columns only as many as the longest value needs.
    pub fn ts_csv(&self) -> String {
        let pieces: Vec<Vec<String>> = self.ts.iter().map(|row| split_tsval(&row.tsval)).collect();
        let extra = pieces.iter().map(|p| p.len() - 1).max().unwrap_or(0);
        let continuation: Vec<String> = (1..=extra).map(|n| format!("TSVAL{n}")).collect();
        let mut header = vec![
            "STUDYID", "DOMAIN", "TSSEQ", "TSGRPID", "TSPARMCD", "TSPARM", "TSVAL",
        ];
        header.extend(continuation.iter().map(String::as_str));
        header.extend(["TSVALNF", "TSVALCD", "TSVCDREF", "TSVCDVER"]);
        let rows = self.ts.iter().zip(&pieces).map(|(row, pieces)| {
            let mut fields = vec![
                self.study_id.clone(),
                "TS".into(),
                row.tsseq.to_string(),
                String::new(),
                row.tsparmcd.clone(),
                row.tsparm.clone(),
            ];
            for index in 0..=extra {
                fields.push(pieces.get(index).cloned().unwrap_or_default());
            }
            fields.extend([
                row.tsvalnf.clone(),
                row.tsvalcd.clone(),
                row.tsvcdref.clone(),
                row.tsvcdver.clone(),
            ]);
            fields
        });
        render_csv(&header, rows)
    }
}

/// RFC 4180 fields (quoted when they hold a comma, quote or line break; quotes doubled), one record
/// per line ending in `\n`.
fn render_csv(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut text = header.join(",");
    text.push('\n');
    for row in rows {
        let fields: Vec<String> = row.iter().map(|field| csv_field(field)).collect();
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    text
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}
