//! SDTM trial design datasets from a protocol: TA (arms), TV (visits), TI (inclusion/exclusion) and
//! TS (summary), as rows and as CSV text, so a registered protocol can go straight into a submission.
//! Pure: the caller writes the files.

use super::model::{CompareOp, CriterionCategory, EpochType, Level, Measure, Protocol, Rule};
use rust_decimal::Decimal;
use serde::Serialize;

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

/// Trial Summary: one row per parameter value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TsRow {
    pub tsseq: u32,
    pub tsparmcd: String,
    pub tsparm: String,
    pub tsval: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdmDatasets {
    pub study_id: String,
    pub ta: Vec<TaRow>,
    pub tv: Vec<TvRow>,
    pub ti: Vec<TiRow>,
    pub ts: Vec<TsRow>,
}

impl Protocol {
    /// The SDTM trial design datasets of this protocol version.
    pub fn trial_design(&self) -> TdmDatasets {
        TdmDatasets {
            study_id: self.study.id.clone(),
            ta: self.trial_arms(),
            tv: self.trial_visits(),
            ti: self.trial_criteria(),
            ts: self.trial_summary(),
        }
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

    fn trial_summary(&self) -> Vec<TsRow> {
        let study = &self.study;
        let mut summary = TrialSummary::default();
        summary.add("TITLE", "Trial Title", &study.title);
        if let Some(registry_id) = &study.registry_id {
            summary.add("REGID", "Registry Identifier", registry_id);
        }
        summary.add(
            "TPHASE",
            "Trial Phase Classification",
            study.phase.sdtm_term(),
        );
        summary.add("STYPE", "Study Type", "INTERVENTIONAL");
        summary.add(
            "TBLIND",
            "Trial Blinding Schema",
            study.blinding.sdtm_term(),
        );
        summary.add(
            "RANDOM",
            "Trial is Randomized",
            if study.randomised { "Y" } else { "N" },
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
            summary.add(
                "ADDON",
                "Added on to Existing Treatments",
                if add_on { "Y" } else { "N" },
            );
        }
        for treatment in &study.treatments {
            summary.add("TRT", "Investigational Therapy or Treatment", treatment);
        }
        let (minimum_age, maximum_age) = self.age_bounds();
        if let Some(years) = minimum_age {
            summary.add(
                "AGEMIN",
                "Planned Minimum Age of Subjects",
                &format!("P{years}Y"),
            );
        }
        if let Some(years) = maximum_age {
            summary.add(
                "AGEMAX",
                "Planned Maximum Age of Subjects",
                &format!("P{years}Y"),
            );
        }
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
        summary.rows
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

#[derive(Default)]
struct TrialSummary {
    rows: Vec<TsRow>,
}

impl TrialSummary {
    /// Appends a value; TSSEQ numbers the values of one parameter from 1.
    fn add(&mut self, code: &str, label: &str, value: &str) {
        let tsseq = 1 + self.rows.iter().filter(|row| row.tsparmcd == code).count() as u32;
        self.rows.push(TsRow {
            tsseq,
            tsparmcd: code.to_string(),
            tsparm: label.to_string(),
            tsval: value.to_string(),
        });
    }
}

impl TdmDatasets {
    /// `(file name, CSV text)` for TA, TV, TI and TS, in that order.
    pub fn to_csv_files(&self) -> Vec<(String, String)> {
        vec![
            ("ta.csv".to_string(), self.ta_csv()),
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

    pub fn ts_csv(&self) -> String {
        let header = ["STUDYID", "DOMAIN", "TSSEQ", "TSPARMCD", "TSPARM", "TSVAL"];
        let rows = self.ts.iter().map(|row| {
            vec![
                self.study_id.clone(),
                "TS".into(),
                row.tsseq.to_string(),
                row.tsparmcd.clone(),
                row.tsparm.clone(),
                row.tsval.clone(),
            ]
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
