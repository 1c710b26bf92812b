//! The analysis dataset, ADaM BDS-style: one row per subject x visit x parameter (the baseline record
//! flagged ABLFL = Y, then each follow-up visit), with the
//! columns statisticians expect (STUDYID, USUBJID, AVISIT, ADY, PARAMCD, PARAM, AVAL, BASE, CHG, PCHG,
//! CRIT1/CRIT1FL) plus the algorithm that produced the row.
//!
//! Every value comes from the replayed outcome's scoring result (the `myolog score` JSON contract), so
//! the dataset and the service agree by construction. Only the dataset derivations are done here: CHG
//! = AVAL - BASE and PCHG = CHG / BASE x 100 in exact decimals (PCHG rounded to 2 places, blank when
//! BASE is 0), and ADY counted from the subject's baseline visit date (day 1, no day 0).
//! CRIT1FL is `Y`/`N`, and blank when the criterion could not be evaluated. Under a protocol, each
//! subject's visit rows are followed by its eligibility rows (one per criterion, then `ELIGIBLE`) and
//! one row per endpoint.

use std::io::Write;
use std::str::FromStr;

use myolog_domain::Decimal;
use myolog_domain::event::ClinicalDate;
use serde_json::{Value, json};

use super::replay::{Format, Replay};
use super::table::{study_day, write_csv_row};
use super::{AuditError, endpoints};
use myolog_projection::state::baseline_of;

/// The dataset's columns, in order.
pub const COLUMNS: [&str; 19] = [
    "STUDYID",
    "USUBJID",
    "SUBJID",
    "ARMCD",
    "ARM",
    "AVISIT",
    "ADT",
    "ADY",
    "ABLFL",
    "PARAMCD",
    "PARAM",
    "AVAL",
    "AVALC",
    "BASE",
    "CHG",
    "PCHG",
    "CRIT1",
    "CRIT1FL",
    "ALGORITHM",
];

/// One row of the dataset. Numbers are exact decimals; `None` is a blank cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdamRow {
    pub studyid: String,
    pub usubjid: String,
    pub subjid: String,
    /// The subject's arm (SDTM DM's ARMCD and ARM, carried unchanged as ADaM does): the protocol's
    /// arm code and name; without a protocol the code as enrolled and no name; blank when unknown.
    pub armcd: String,
    pub arm: String,
    pub avisit: String,
    /// Analysis date (the visit's clinical date), ISO 8601.
    pub adt: String,
    pub ady: Option<i64>,
    /// `Y` on the baseline record of a parameter.
    pub ablfl: bool,
    /// At most 8 characters, as ADaM requires, except on endpoint rows: those carry the protocol's
    /// endpoint id unchanged (`TISCAT_W12` has 10), since a cut id could name two endpoints.
    pub paramcd: String,
    pub param: String,
    pub aval: Option<Decimal>,
    pub avalc: String,
    pub base: Option<Decimal>,
    pub chg: Option<Decimal>,
    pub pchg: Option<Decimal>,
    pub crit1: String,
    /// `Y`, `N`, or `None` when not evaluable.
    pub crit1fl: Option<bool>,
    pub algorithm: String,
}

/// The core set measures as parameters: result key, PARAMCD, PARAM.
const CORE_PARAMETERS: [(&str, &str, &str); 6] = [
    ("physician_global", "PHYGLOB", "Physician global activity"),
    ("patient_global", "PATGLOB", "Patient global activity"),
    (
        "extramuscular_global",
        "EXTGLOB",
        "Extramuscular global activity",
    ),
    ("mmt", "MMT8", "Manual muscle testing, MMT-8 total"),
    ("haq", "HAQDI", "HAQ Disability Index"),
    (
        "enzyme",
        "ENZYME",
        "Most abnormal muscle enzyme at baseline",
    ),
];

/// A JSON number (as the scoring crate writes it: shortest exact digits) as an exact decimal.
fn decimal(value: Option<&Value>) -> Option<Decimal> {
    match value? {
        Value::Number(number) => Decimal::from_str(&number.to_string())
            .or_else(|_| Decimal::from_scientific(&number.to_string()))
            .ok()
            .map(|d| d.normalize()),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn change(aval: Option<Decimal>, base: Option<Decimal>) -> (Option<Decimal>, Option<Decimal>) {
    let (Some(aval), Some(base)) = (aval, base) else {
        return (None, None);
    };
    let chg = aval.checked_sub(base).map(|d| d.normalize());
    let pchg = match chg {
        Some(chg) if !base.is_zero() => chg
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|d| d.checked_div(base))
            .map(|d| d.round_dp(2).normalize()),
        _ => None,
    };
    (chg, pchg)
}

/// The dataset rows of a replay, in replay order (study, subject, visit) then parameter order.
pub fn rows(replay: &Replay) -> Vec<AdamRow> {
    let mut rows = Vec::new();
    let mut previous_subject: Option<(String, String)> = None;
    for replayed in replay.outcomes() {
        let outcome = &replayed.outcome;
        let study_id = outcome.study_id.to_string();
        let subject_id = outcome.subject_id.to_string();
        let first_of_subject =
            previous_subject.as_ref() != Some(&(study_id.clone(), subject_id.clone()));
        previous_subject = Some((study_id.clone(), subject_id.clone()));
        let visit_start = rows.len();
        // The typed result as a tree: the dataset reads its parts by their contract keys.
        let result: Value = serde_json::to_value(&outcome.result).unwrap_or(Value::Null);
        let baseline_date = baseline_date(replay, &study_id, &subject_id);
        let date = outcome.clinical_date;
        let ady = match (date, baseline_date) {
            (Some(date), Some(reference)) => Some(study_day(date, reference)),
            _ => None,
        };
        let subject_row = |paramcd: &str, param: String| AdamRow {
            studyid: study_id.clone(),
            usubjid: format!("{study_id}-{subject_id}"),
            subjid: subject_id.clone(),
            armcd: String::new(),
            arm: String::new(),
            avisit: outcome.visit_id.to_string(),
            adt: date.map(|date| date.to_string()).unwrap_or_default(),
            ady,
            ablfl: false,
            paramcd: paramcd.to_string(),
            param,
            aval: None,
            avalc: String::new(),
            base: None,
            chg: None,
            pchg: None,
            crit1: String::new(),
            crit1fl: None,
            algorithm: String::new(),
        };
        let doi = &result["doi"];
        let doi_algorithm = text(doi.get("algorithm"));
        let improved: Vec<&str> = doi["improved"]
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let improved_at = decimal(doi["conventions"].get("improved_if_improvement_pct_at_least"))
            .map_or_else(|| "20".to_string(), |d| d.to_string());

        // The core set measures: CRIT1 is the DOI's per-measure improvement.
        for (key, paramcd, label) in CORE_PARAMETERS {
            let Some(measure) = result["measures"].get(key) else {
                continue;
            };
            let unit = match (key, text(measure.get("scale")).as_str()) {
                ("enzyme", _) => format!("{}, U/L", text(measure.get("enzyme")).to_uppercase()),
                (_, "") => String::new(),
                (_, scale) => scale.to_string(),
            };
            let mut row = subject_row(paramcd, format!("{label} ({unit})"));
            row.aval = decimal(measure.get("followup"));
            row.base = decimal(measure.get("baseline"));
            (row.chg, row.pchg) = change(row.aval, row.base);
            row.crit1 = format!("Improved by >= {improved_at}% (IMACS DOI)");
            row.crit1fl = measure
                .get("improvement_pct")
                .filter(|v| !v.is_null())
                .map(|_| improved.contains(&key));
            row.algorithm = match key {
                "haq" => result["haq_di"]
                    .get("algorithm")
                    .map(|a| text(Some(a)))
                    .unwrap_or_else(|| doi_algorithm.clone()),
                "mmt" => result["mmt8"]
                    .get("algorithm")
                    .map(|a| text(Some(a)))
                    .unwrap_or_else(|| doi_algorithm.clone()),
                _ => doi_algorithm.clone(),
            };
            rows.push(row);
        }

        // CDASI activity and damage; the MCID is CDASI activity's responder criterion.
        if let Some(cdasi) = result.get("cdasi") {
            let algorithm = text(cdasi.get("algorithm"));
            for (part, paramcd, label) in [
                ("activity", "CDASIACT", "CDASI v2 activity (0-100)"),
                ("damage", "CDASIDAM", "CDASI v2 damage (0-32)"),
            ] {
                let mut row = subject_row(paramcd, label.to_string());
                row.aval = decimal(cdasi["followup"].get(part));
                row.base = decimal(cdasi["baseline"].get(part));
                (row.chg, row.pchg) = change(row.aval, row.base);
                if part == "activity" {
                    let mcid = decimal(cdasi["conventions"].get("mcid"))
                        .map_or_else(String::new, |d| d.to_string());
                    row.crit1 = format!(
                        "Activity improved by >= MCID ({mcid} points, {})",
                        text(cdasi["conventions"].get("mcid_source"))
                    );
                    row.crit1fl = cdasi.get("mcid_reached").and_then(Value::as_bool);
                }
                row.algorithm = algorithm.clone();
                rows.push(row);
            }
        }

        // Biomarkers, skin STAT1 and the glucocorticoid dose.
        let mut others: Vec<(String, String, &Value)> = result["labs"]
            .as_object()
            .map(|labs| {
                labs.iter()
                    .map(|(code, lab)| (code.to_uppercase(), code.to_uppercase(), lab))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(stat1) = result.get("stat1") {
            others.push(("STAT1".into(), "Skin biopsy STAT1".into(), stat1));
        }
        if let Some(dose) = result.get("prednisone_mg_per_day") {
            others.push(("PREDDOSE".into(), "Prednisone-equivalent dose".into(), dose));
        }
        for (code, label, lab) in others {
            // PARAMCD is at most 8 characters in ADaM; lab codes are short keys such as CXCL10.
            let paramcd: String = code.chars().take(8).collect();
            let param = format!("{label} ({})", text(lab.get("unit")));
            let mut row = subject_row(&paramcd, param);
            row.aval = decimal(lab.get("followup"));
            row.base = decimal(lab.get("baseline"));
            (row.chg, row.pchg) = change(row.aval, row.base);
            row.algorithm = text(lab.get("algorithm"));
            rows.push(row);
        }

        // The composite responder parameters.
        let mut row = subject_row("DOI", "IMACS definition of improvement 2004".into());
        let status = text(doi.get("status"));
        row.aval = Some(Decimal::from(improved.len()));
        row.avalc = status.clone();
        row.crit1 =
            "DOI met (>= 3 of 6 improved >= 20%, <= 2 worsened >= 25%, MMT not worsened)".into();
        row.crit1fl = match status.as_str() {
            "met" => Some(true),
            "not_met" => Some(false),
            _ => None,
        };
        row.algorithm = doi_algorithm.clone();
        rows.push(row);

        let tis = &result["tis"];
        let mut row = subject_row(
            "TIS",
            format!(
                "2016 ACR/EULAR Total Improvement Score ({})",
                text(result.get("population"))
            ),
        );
        row.aval = decimal(tis.get("score"));
        row.avalc = text(tis.get("category"));
        row.crit1 = "At least minimal improvement (TIS category minimal, moderate or major)".into();
        row.crit1fl = match row.avalc.as_str() {
            "" => None,
            "none" => Some(false),
            _ => Some(true),
        };
        row.algorithm = text(tis.get("algorithm"));
        rows.push(row);

        // Before a subject's first follow-up visit, the baseline record of every parameter with a
        // baseline value (ABLFL = Y): AVAL = BASE, no change, no criterion.
        if first_of_subject {
            let baseline: Vec<AdamRow> = rows[visit_start..]
                .iter()
                .filter(|row| row.base.is_some())
                .map(|row| AdamRow {
                    avisit: outcome.baseline_visit_id.to_string(),
                    adt: baseline_date.map(|d| d.to_string()).unwrap_or_default(),
                    ady: baseline_date.map(|d| study_day(d, d)),
                    ablfl: true,
                    aval: row.base,
                    avalc: String::new(),
                    chg: None,
                    pchg: None,
                    crit1: String::new(),
                    crit1fl: None,
                    ..row.clone()
                })
                .collect();
            rows.splice(visit_start..visit_start, baseline);
        }
    }
    let mut rows = with_subject_level_rows(replay, rows);
    fill_arms(replay, &mut rows);
    rows
}

/// Sets ARMCD and ARM on every row from the subject's enrolment and the protocol in force.
fn fill_arms(replay: &Replay, rows: &mut [AdamRow]) {
    let mut arms = std::collections::HashMap::new();
    for (study_id, study) in &replay.projection.studies {
        let protocol = study.protocol.as_ref().map(|history| history.current());
        for (subject_id, subject) in &study.subjects {
            let code = study.arm_of(subject).unwrap_or_default();
            let name = protocol
                .and_then(|protocol| protocol.arm(code))
                .map_or("", |arm| arm.name.as_str());
            arms.insert((study_id.as_str(), subject_id.as_str()), (code, name));
        }
    }
    for row in rows {
        if let Some((code, name)) = arms.get(&(row.studyid.as_str(), row.subjid.as_str())) {
            row.armcd = (*code).to_string();
            row.arm = (*name).to_string();
        }
    }
}

/// The eligibility rows of every subject of a study with a protocol, at the subject's baseline
/// visit: one per criterion (PARAMCD the criterion id, AVALC its verdict, AVAL the value it saw when
/// it saw one number, CRIT1FL `Y` when met, `N` when not met, blank when not applicable or not
/// evaluable), then `ELIGIBLE` (AVALC the subject's verdict). ALGORITHM names the protocol and
/// version. The verdicts are the service's ([`super::eligibility::subject_reports`]).
fn eligibility_rows(replay: &Replay) -> Vec<(String, String, AdamRow)> {
    let mut out = Vec::new();
    for (study_id, subject_id, report) in super::eligibility::subject_reports(replay) {
        let date = baseline_date(replay, study_id.as_str(), &subject_id);
        let row =
            |paramcd: &str, param: String, avalc: &str, crit1: &str, flag: Option<bool>| AdamRow {
                studyid: study_id.to_string(),
                usubjid: format!("{study_id}-{subject_id}"),
                subjid: subject_id.clone(),
                armcd: String::new(),
                arm: String::new(),
                avisit: report.baseline_visit_id.clone(),
                adt: date.map(|d| d.to_string()).unwrap_or_default(),
                ady: date.map(|d| study_day(d, d)),
                ablfl: false,
                paramcd: paramcd.chars().take(8).collect(),
                param,
                aval: None,
                avalc: avalc.to_string(),
                base: None,
                chg: None,
                pchg: None,
                crit1: crit1.to_string(),
                crit1fl: flag,
                algorithm: report.protocol.clone(),
            };
        for criterion in &report.criteria {
            let (kind, crit1) = match criterion.category.as_str() {
                "exclusion" => ("Exclusion", "Exclusion criterion met"),
                _ => ("Inclusion", "Inclusion criterion met"),
            };
            let flag = match criterion.verdict.as_str() {
                "met" => Some(true),
                "not_met" => Some(false),
                _ => None,
            };
            let mut adam = row(
                &criterion.id,
                format!("{kind} criterion {}: {}", criterion.id, criterion.text),
                &criterion.verdict,
                crit1,
                flag,
            );
            if let [seen] = criterion.seen.as_slice() {
                adam.aval = Decimal::from_str(&seen.value).ok().map(|d| d.normalize());
            }
            out.push((study_id.to_string(), subject_id.clone(), adam));
        }
        let flag = match report.verdict.as_str() {
            "eligible" => Some(true),
            "not_eligible" => Some(false),
            _ => None,
        };
        out.push((
            study_id.to_string(),
            subject_id.clone(),
            row(
                "ELIGIBLE",
                "Eligible by the protocol (every inclusion met, no exclusion met)".into(),
                &report.verdict,
                "Eligible",
                flag,
            ),
        ));
    }
    out
}

/// Adds each subject's subject-level rows after its visit rows (subjects with such rows but no
/// follow-up outcome at the end, in order): first its eligibility rows ([`eligibility_rows`]), then
/// one row per protocol endpoint: PARAMCD the endpoint id, AVISIT the visit the endpoint reads,
/// AVAL/AVALC its value, CRIT1/CRIT1FL the responder rule and how the subject counts under it,
/// ALGORITHM the protocol and version it was computed under.
fn with_subject_level_rows(replay: &Replay, rows: Vec<AdamRow>) -> Vec<AdamRow> {
    let endpoint_rows = endpoints::subject_endpoints(replay).into_iter().map(|row| {
        let study = replay.projection.studies.get(row.study_id);
        let subject = study.and_then(|study| study.subjects.get(row.subject_id));
        let (_, visit_id) = endpoints::visit_ids(&row.result);
        let date = subject
            .and_then(|subject| {
                subject
                    .visits
                    .iter()
                    .find(|(id, _)| id.as_str() == visit_id)
            })
            .and_then(|(_, visit)| visit.first_date);
        let reference = study
            .zip(subject)
            .and_then(|(study, subject)| baseline_of(study, subject))
            .and_then(|(_, visit)| visit.first_date);
        let param = study
            .and_then(|study| study.protocol.as_ref())
            .and_then(|history| history.current().endpoint(&row.result.endpoint))
            .map_or_else(|| row.result.endpoint.clone(), |e| e.text.clone());
        let (aval, avalc) = endpoints::analysis_value(&row.result);
        let adam = AdamRow {
            studyid: row.study_id.to_string(),
            usubjid: format!("{}-{}", row.study_id, row.subject_id),
            subjid: row.subject_id.to_string(),
            armcd: String::new(),
            arm: String::new(),
            avisit: visit_id,
            adt: date.map(|d| d.to_string()).unwrap_or_default(),
            ady: date
                .zip(reference)
                .map(|(date, reference)| study_day(date, reference)),
            ablfl: false,
            paramcd: row.result.endpoint.clone(),
            param,
            aval,
            avalc,
            base: None,
            chg: None,
            pchg: None,
            crit1fl: (!row.rule.is_empty())
                .then_some(row.result.counts_as_responder)
                .flatten(),
            crit1: row.rule,
            algorithm: row.result.protocol.to_string(),
        };
        (row.study_id.to_string(), row.subject_id.to_string(), adam)
    });
    let mut pending: Vec<(String, String, AdamRow)> = eligibility_rows(replay);
    pending.extend(endpoint_rows);
    // Stable: a subject's eligibility rows stay before its endpoint rows.
    pending.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    pending.reverse();
    let mut out = Vec::with_capacity(rows.len() + pending.len());
    let mut rows = rows.into_iter().peekable();
    while let Some(row) = rows.next() {
        let last_of_subject = rows
            .peek()
            .is_none_or(|next| (&next.studyid, &next.subjid) != (&row.studyid, &row.subjid));
        let key = (row.studyid.clone(), row.subjid.clone());
        out.push(row);
        if last_of_subject {
            // Subjects are in the same order in both lists; earlier subjects without visit rows
            // come first.
            while let Some((study, subject, _)) = pending.last() {
                if (study.as_str(), subject.as_str()) > (key.0.as_str(), key.1.as_str()) {
                    break;
                }
                if let Some((_, _, endpoint_row)) = pending.pop() {
                    out.push(endpoint_row);
                }
            }
        }
    }
    out.extend(pending.into_iter().rev().map(|(_, _, row)| row));
    out
}

/// The subject's baseline visit date (its earliest clinical date): day 1 of ADY.
fn baseline_date(replay: &Replay, study: &str, subject: &str) -> Option<ClinicalDate> {
    let study = replay
        .projection
        .studies
        .iter()
        .find_map(|(id, s)| (id.as_str() == study).then_some(s))?;
    let subject = study
        .subjects
        .iter()
        .find_map(|(id, s)| (id.as_str() == subject).then_some(s))?;
    baseline_of(study, subject)?.1.first_date
}

impl AdamRow {
    fn fields(&self) -> Vec<String> {
        let num = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
        vec![
            self.studyid.clone(),
            self.usubjid.clone(),
            self.subjid.clone(),
            self.armcd.clone(),
            self.arm.clone(),
            self.avisit.clone(),
            self.adt.clone(),
            self.ady.map(|d| d.to_string()).unwrap_or_default(),
            if self.ablfl { "Y" } else { "" }.to_string(),
            self.paramcd.clone(),
            self.param.clone(),
            num(self.aval),
            self.avalc.clone(),
            num(self.base),
            num(self.chg),
            num(self.pchg),
            self.crit1.clone(),
            flag(self.crit1fl).to_string(),
            self.algorithm.clone(),
        ]
    }

    fn to_json(&self) -> Value {
        // Numbers as JSON numbers via their exact decimal text (serde_json parses the digits).
        let num = |d: Option<Decimal>| {
            d.and_then(|d| serde_json::from_str::<Value>(&d.to_string()).ok())
                .unwrap_or(Value::Null)
        };
        let blank_null = |t: &str| (!t.is_empty()).then(|| t.to_string());
        json!({
            "STUDYID": self.studyid,
            "USUBJID": self.usubjid,
            "SUBJID": self.subjid,
            "ARMCD": blank_null(&self.armcd),
            "ARM": blank_null(&self.arm),
            "AVISIT": self.avisit,
            "ADT": self.adt,
            "ADY": self.ady,
            "ABLFL": self.ablfl.then_some("Y"),
            "PARAMCD": self.paramcd,
            "PARAM": self.param,
            "AVAL": num(self.aval),
            "AVALC": blank_null(&self.avalc),
            "BASE": num(self.base),
            "CHG": num(self.chg),
            "PCHG": num(self.pchg),
            "CRIT1": blank_null(&self.crit1),
            "CRIT1FL": blank_null(flag(self.crit1fl)),
            "ALGORITHM": self.algorithm,
        })
    }
}

fn flag(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "Y",
        Some(false) => "N",
        None => "",
    }
}

/// Writes the dataset in `format`.
pub fn write_dataset(
    rows: &[AdamRow],
    format: Format,
    out: &mut impl Write,
) -> Result<(), AuditError> {
    match format {
        Format::Csv => {
            write_csv_row(out, &COLUMNS)?;
            for row in rows {
                write_csv_row(out, &row.fields())?;
            }
        }
        Format::Jsonl => {
            for row in rows {
                serde_json::to_writer(&mut *out, &row.to_json())?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Option<Decimal> {
        Decimal::from_str(text).ok()
    }

    #[test]
    fn change_and_percent_change_are_exact() {
        // (AVAL, BASE, CHG, PCHG)
        let cases = [
            ("0.6", "1.1", Some("-0.5"), Some("-45.45")),
            ("0.8", "1.0", Some("-0.2"), Some("-20")),
            ("72", "60", Some("12"), Some("20")),
            ("3", "0", Some("3"), None),
            ("13", "27", Some("-14"), Some("-51.85")),
        ];
        for (aval, base, chg, pchg) in cases {
            let (got_chg, got_pchg) = change(d(aval), d(base));
            assert_eq!(got_chg, chg.and_then(d), "CHG {aval} vs {base}");
            assert_eq!(got_pchg, pchg.and_then(d), "PCHG {aval} vs {base}");
        }
        assert_eq!(change(None, d("1")), (None, None));
    }

    #[test]
    fn json_numbers_become_exact_decimals() {
        let cases = [
            (json!(1.625), d("1.625")),
            (json!(60), d("60")),
            (json!(9.051724), d("9.051724")),
            (Value::Null, None),
            (json!("x"), None),
        ];
        for (value, expected) in cases {
            assert_eq!(decimal(Some(&value)), expected, "{value}");
        }
    }

    #[test]
    fn flags_are_y_n_or_blank() {
        assert_eq!(
            [flag(Some(true)), flag(Some(false)), flag(None)],
            ["Y", "N", ""]
        );
    }
}
