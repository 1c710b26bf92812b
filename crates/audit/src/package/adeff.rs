//! ADEFF, the efficacy analysis dataset (ADaM BDS): one row per subject x parameter x analysis visit.
//! Parameters are the core set measures (PHYGLOB, PATGLOB, EXTGLOB, MMT8, HAQDI, the baseline's most
//! abnormal muscle enzyme as CK/ALDOLASE/LDH/AST/ALT), CDASI activity and damage, the biomarkers, skin
//! STAT1 and the glucocorticoid dose, each with a baseline record (ABLFL = Y) and BASE/CHG/PCHG on its
//! follow-up records; then the composite responses DOI and TIS (no BASE/CHG/PCHG) and, where the
//! protocol has it, the prednisone-free TIS endpoint (PFTIS).
//!
//! Every value is read from the typed outcome the service computes
//! (`myolog_projection::report::VisitOutcome::result`, a `CaseOutcome`), never from JSON text. Numbers
//! are exact; a value that does not terminate within 6 decimal places (HAQ-DI 8/7, a percent change of
//! 1/3) is rounded half away from zero to 6 places ([`exact`], the scoring crate's display rule), and
//! only there. Each row names where it came from: SRCSEQ lists the log sequence numbers of the analysis
//! visit's live assessment events, ALGOID the algorithm (id@version) that derived the value.

use std::collections::{BTreeMap, BTreeSet};

use myolog_cdisc::{CalendarDate, DataType, Dataset, Purpose, Value};
use myolog_domain::Decimal;
use myolog_domain::protocol::{Outcome, Protocol, ResponderStatus};
use myolog_projection::report::VisitOutcome;
use myolog_scoring::core_set::CoreMeasure;
use myolog_scoring::doi::DoiStatus;
use myolog_scoring::exact::Ratio;
use myolog_scoring::protocol_eval::EndpointValue;

use super::subject::{SubjectFacts, relative_day};
use super::{Context, PackageError, calendar, column, date_column, flag, text_or_null};
use myolog_projection::outcome as outcomes;

pub const NAME: &str = "ADEFF";

/// Number of CRITy/CRITyFL pairs (TIS has three thresholds).
pub const CRITERIA: usize = 3;

/// TIS thresholds of CRIT1..CRIT3 on TIS rows: the 2016 ACR/EULAR adult minimal, moderate and major
/// improvement cut-offs.
pub const TIS_THRESHOLDS: [u32; CRITERIA] = [20, 40, 60];

/// Longest SRCSEQ text (the SAS V5 character limit).
const SRCSEQ_MAX: usize = 200;

/// A parameter: PARAMCD (at most 8 characters), PARAMN, PARAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub code: String,
    pub number: i64,
    pub label: String,
}

/// The fixed parameters in PARAMN order; lab analytes get 100 + their position in code order.
pub const FIXED_PARAMETERS: [(&str, i64, &str); 16] = [
    ("PHYGLOB", 1, "Physician Global Activity"),
    ("PATGLOB", 2, "Patient Global Activity"),
    ("EXTGLOB", 3, "Extramuscular Global Activity"),
    ("MMT8", 4, "MMT-8 Total Score"),
    ("HAQDI", 5, "HAQ Disability Index"),
    ("CK", 6, "Creatine Kinase (U/L)"),
    ("ALDOLASE", 7, "Aldolase (U/L)"),
    ("LDH", 8, "Lactate Dehydrogenase (U/L)"),
    ("AST", 9, "Aspartate Aminotransferase (U/L)"),
    ("ALT", 10, "Alanine Aminotransferase (U/L)"),
    ("CDASIACT", 11, "CDASI v2 Activity Score (0-100)"),
    ("CDASIDAM", 12, "CDASI v2 Damage Score (0-32)"),
    ("PREDDOSE", 13, "Prednisone-Equivalent Dose (mg/day)"),
    ("DOI", 90, DOI_PARAM),
    ("TIS", 91, "2016 ACR/EULAR Total Improvement Score"),
    ("PFTIS", 92, "Prednisone-Free TIS Endpoint"),
];

/// PARAM of the DOI rows: AVAL counts the improved core set measures, AVALC is the verdict.
pub const DOI_PARAM: &str = "IMACS DOI (Core Set Measures Improved)";

/// One ADEFF row before layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub usubjid: String,
    pub subjid: String,
    pub paramcd: String,
    pub param: String,
    pub avisit: String,
    pub avisitn: Option<i64>,
    pub adt: Option<CalendarDate>,
    pub aval: Option<Decimal>,
    pub avalc: String,
    pub ablfl: bool,
    pub base: Option<Decimal>,
    pub chg: Option<Decimal>,
    pub pchg: Option<Decimal>,
    pub anl01fl: bool,
    pub criteria: [(String, Option<bool>); CRITERIA],
    pub srcseq: String,
    pub algoid: String,
}

/// A ratio as an exact decimal: exact when it terminates within 6 places, else rounded half away
/// from zero to 6 places (the one rounding rule of the package, stated in the Define-XML).
pub fn exact(value: Ratio, what: &str) -> Result<Decimal, PackageError> {
    value
        .to_display_decimal()
        .ok_or_else(|| PackageError::derivation(what, "the value does not fit a decimal"))
}

/// CHG = AVAL - BASE and PCHG = CHG / BASE x 100 (none when BASE is 0), exact then rounded once.
fn change(
    aval: Option<Ratio>,
    base: Option<Ratio>,
    what: &str,
) -> Result<(Option<Decimal>, Option<Decimal>), PackageError> {
    let (Some(aval), Some(base)) = (aval, base) else {
        return Ok((None, None));
    };
    let overflow = |_| PackageError::derivation(what, "change overflows");
    let chg = aval.checked_sub(base).map_err(overflow)?;
    let pchg = if base.is_zero() {
        None
    } else {
        let pct = chg
            .checked_mul(Ratio::integer(100))
            .and_then(|c| c.checked_div(base))
            .map_err(overflow)?;
        Some(exact(pct, what)?)
    };
    Ok((Some(exact(chg, what)?), pchg))
}

/// The live assessment events of a visit as SRCSEQ text: their sequence numbers in order, or, when
/// they do not fit 200 characters, `N events, sequences A to B`.
fn srcseq(subject: &SubjectFacts<'_>, visit: &str) -> String {
    let Some(found) = subject
        .subject
        .visits
        .iter()
        .find(|(id, _)| id.as_str() == visit)
        .map(|(_, v)| v)
    else {
        return String::new();
    };
    let seqs: Vec<u64> = found.live.keys().copied().collect();
    let text = seqs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    match (seqs.first(), seqs.last()) {
        (Some(first), Some(last)) if text.len() > SRCSEQ_MAX => {
            format!("{} events, sequences {first} to {last}", seqs.len())
        }
        _ => text,
    }
}

fn visit_date(
    subject: &SubjectFacts<'_>,
    visit: &str,
) -> Option<myolog_domain::event::ClinicalDate> {
    subject
        .subject
        .visits
        .iter()
        .find(|(id, _)| id.as_str() == visit)
        .and_then(|(_, v)| v.last_date)
}

fn visit_number(protocol: Option<&Protocol>, visit: &str) -> Option<i64> {
    protocol
        .and_then(|p| p.encounter(visit))
        .map(|e| i64::from(e.visit_number))
}

/// A value measured at both visits: the follow-up row and (once per subject) the baseline row.
struct Measure {
    paramcd: String,
    param: String,
    baseline: Option<Ratio>,
    followup: Option<Ratio>,
    algoid: String,
    criterion: Option<(String, Option<bool>)>,
}

fn core_code(measure: CoreMeasure, enzyme: Option<&str>) -> Option<String> {
    Some(
        match measure {
            CoreMeasure::PhysicianGlobal => "PHYGLOB",
            CoreMeasure::PatientGlobal => "PATGLOB",
            CoreMeasure::ExtramuscularGlobal => "EXTGLOB",
            CoreMeasure::Mmt => "MMT8",
            CoreMeasure::Haq => "HAQDI",
            CoreMeasure::Enzyme => return enzyme.map(str::to_ascii_uppercase),
        }
        .to_string(),
    )
}

/// The measures of one outcome, in parameter order.
fn measures(outcome: &VisitOutcome) -> Result<Vec<Measure>, PackageError> {
    let result = &outcome.result;
    let mut out = Vec::new();
    for (measure, summary) in &result.measures {
        let Some(paramcd) = core_code(*measure, summary.enzyme) else {
            continue;
        };
        let label = FIXED_PARAMETERS
            .iter()
            .find(|(code, _, _)| *code == paramcd)
            .map_or_else(|| paramcd.clone(), |(_, _, label)| (*label).to_string());
        // The globals name their scale (one study records one); the totals' ranges are in PARAM's
        // Define-XML decode, the enzyme's unit in its label.
        let global = matches!(
            measure,
            CoreMeasure::PhysicianGlobal
                | CoreMeasure::PatientGlobal
                | CoreMeasure::ExtramuscularGlobal
        );
        let param = match summary.scale.as_deref() {
            Some("vas_cm") if global => format!("{label} (VAS cm)"),
            Some("likert") if global => format!("{label} (Likert 0-4)"),
            _ => label,
        };
        let algoid = match measure {
            CoreMeasure::Mmt => result.mmt8.as_ref().map(|m| m.algorithm),
            CoreMeasure::Haq => result.haq_di.as_ref().map(|h| h.algorithm),
            _ => None,
        }
        .unwrap_or_default()
        .to_string();
        out.push(Measure {
            paramcd,
            param,
            baseline: summary.baseline,
            followup: summary.followup,
            algoid,
            criterion: None,
        });
    }
    if let Some(cdasi) = &result.cdasi {
        let part = |scores: Option<myolog_scoring::cdasi::CdasiScores>, activity: bool| {
            scores.map(|s| Ratio::integer(i64::from(if activity { s.activity } else { s.damage })))
        };
        out.push(Measure {
            paramcd: "CDASIACT".into(),
            param: "CDASI v2 Activity Score (0-100)".into(),
            baseline: part(cdasi.baseline, true),
            followup: part(cdasi.followup, true),
            algoid: cdasi.algorithm.into(),
            criterion: Some((
                format!(
                    "Activity improved >= MCID ({} points)",
                    cdasi.conventions.mcid
                ),
                cdasi.mcid_reached,
            )),
        });
        out.push(Measure {
            paramcd: "CDASIDAM".into(),
            param: "CDASI v2 Damage Score (0-32)".into(),
            baseline: part(cdasi.baseline, false),
            followup: part(cdasi.followup, false),
            algoid: cdasi.algorithm.into(),
            criterion: None,
        });
    }
    let mut labs: Vec<(String, String, &myolog_scoring::outcome::LabSummary)> = result
        .labs
        .iter()
        .map(|(code, lab)| {
            let code = code.to_ascii_uppercase();
            (code.clone(), format!("Serum {code} ({})", lab.unit), lab)
        })
        .collect();
    if let Some(stat1) = &result.stat1 {
        labs.push((
            "STAT1".into(),
            format!("Skin Biopsy STAT1 ({})", stat1.unit),
            stat1,
        ));
    }
    if let Some(dose) = &result.prednisone_mg_per_day {
        labs.push((
            "PREDDOSE".into(),
            "Prednisone-Equivalent Dose (mg/day)".into(),
            dose,
        ));
    }
    for (code, param, lab) in labs {
        if code.len() > 8 {
            return Err(PackageError::derivation(
                format!("lab analyte {code}"),
                "its code is longer than the 8 characters PARAMCD allows",
            ));
        }
        out.push(Measure {
            paramcd: code,
            param,
            baseline: lab.baseline.map(|n| Ratio::from_decimal(n.0)),
            followup: lab.followup.map(|n| Ratio::from_decimal(n.0)),
            algoid: lab.algorithm.into(),
            criterion: None,
        });
    }
    Ok(out)
}

fn empty_criteria() -> [(String, Option<bool>); CRITERIA] {
    std::array::from_fn(|_| (String::new(), None))
}

/// Every row of the study, before PARAMN and ASEQ are assigned, in subject then visit order.
pub fn rows(
    context: &Context<'_>,
    subjects: &[SubjectFacts<'_>],
) -> Result<Vec<Row>, PackageError> {
    let study = context.study;
    let protocol = study.protocol.as_ref().map(|history| history.current());
    let mut rows = Vec::new();
    for subject in subjects {
        let mut baseline_done: BTreeSet<String> = BTreeSet::new();
        let mut baseline_rows = Vec::new();
        let mut visit_rows = Vec::new();
        for outcome in &subject.outcomes {
            let visit = outcome.visit_id.as_str();
            let baseline_visit = outcome.baseline_visit_id.as_str();
            let adt = outcome.clinical_date.map(calendar).transpose()?;
            // Inside the protocol's window, or no protocol schedule to be outside of.
            let in_window = outcome.schedule.as_ref().is_none_or(|s| !s.deviation);
            let row = |paramcd: &str, param: String| Row {
                usubjid: subject.usubjid.clone(),
                subjid: subject.subject_id.to_string(),
                paramcd: paramcd.to_string(),
                param,
                avisit: visit.to_string(),
                avisitn: visit_number(protocol, visit),
                adt,
                aval: None,
                avalc: String::new(),
                ablfl: false,
                base: None,
                chg: None,
                pchg: None,
                anl01fl: in_window,
                criteria: empty_criteria(),
                srcseq: srcseq(subject, visit),
                algoid: String::new(),
            };
            let what = |code: &str| format!("{} {code} at {visit}", subject.usubjid);
            for measure in measures(outcome)? {
                let base = measure
                    .baseline
                    .map(|b| exact(b, &what(&measure.paramcd)))
                    .transpose()?;
                if let Some(base) = base
                    && baseline_done.insert(measure.paramcd.clone())
                {
                    let date = visit_date(subject, baseline_visit)
                        .map(calendar)
                        .transpose()?;
                    baseline_rows.push(Row {
                        avisit: baseline_visit.to_string(),
                        avisitn: visit_number(protocol, baseline_visit).or(Some(0)),
                        adt: date,
                        aval: Some(base),
                        ablfl: true,
                        base: Some(base),
                        anl01fl: true,
                        srcseq: srcseq(subject, baseline_visit),
                        algoid: measure.algoid.clone(),
                        ..row(&measure.paramcd, measure.param.clone())
                    });
                }
                // A measure not recorded at this visit has no record here (its baseline may still
                // be there); only the composite responses always have one.
                let Some(followup) = measure.followup else {
                    continue;
                };
                let mut out = row(&measure.paramcd, measure.param.clone());
                out.aval = Some(exact(followup, &what(&measure.paramcd))?);
                out.base = base;
                (out.chg, out.pchg) =
                    change(measure.followup, measure.baseline, &what(&measure.paramcd))?;
                out.algoid = measure.algoid;
                if let Some(criterion) = measure.criterion {
                    out.criteria[0] = criterion;
                }
                visit_rows.push(out);
            }
            let result = &outcome.result;
            let mut doi = row("DOI", DOI_PARAM.into());
            doi.aval = Some(Decimal::from(result.doi.improved.len()));
            doi.avalc = outcome.doi_status().to_string();
            doi.criteria[0] = (
                "DOI met (IMACS 2004)".into(),
                match result.doi.status {
                    DoiStatus::Met => Some(true),
                    DoiStatus::NotMet => Some(false),
                    DoiStatus::NotEvaluable => None,
                },
            );
            doi.algoid = result.doi.algorithm.into();
            visit_rows.push(doi);
            let mut tis = row(
                "TIS",
                format!(
                    "2016 ACR/EULAR Total Improvement Score ({})",
                    result.population
                ),
            );
            let score = result.tis.score.map(|s| s.0.normalize());
            tis.aval = score;
            tis.avalc = outcome
                .tis_category()
                .map(myolog_projection::report::tis_category_key)
                .unwrap_or_default()
                .to_string();
            for (index, threshold) in TIS_THRESHOLDS.into_iter().enumerate() {
                tis.criteria[index] = (
                    format!("TIS >= {threshold}"),
                    score.map(|s| s >= Decimal::from(threshold)),
                );
            }
            tis.algoid = result.tis.algorithm.into();
            visit_rows.push(tis);
        }
        visit_rows.extend(prednisone_free_rows(context, subject, protocol)?);
        rows.extend(baseline_rows);
        rows.extend(visit_rows);
    }
    Ok(rows)
}

/// The prednisone-free TIS endpoint rows of a protocol that has one: at the endpoint's follow-up
/// visit, AVAL the TIS, CRIT1 "prednisone-free and TIS >= threshold" with the responder verdict.
fn prednisone_free_rows(
    context: &Context<'_>,
    subject: &SubjectFacts<'_>,
    protocol: Option<&Protocol>,
) -> Result<Vec<Row>, PackageError> {
    let Some(protocol) = protocol else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for result in outcomes::subject_endpoint_results(context.study, subject.subject) {
        let Some(EndpointValue::PrednisoneFree { tis, .. }) = &result.value else {
            continue;
        };
        let Some(endpoint) = protocol.endpoint(&result.endpoint) else {
            continue;
        };
        let Outcome::PrednisoneFreeTis { threshold, .. } = &endpoint.outcome else {
            continue;
        };
        let (_, visit) = crate::endpoints::visit_ids(&result);
        let in_window = !crate::endpoints::is_deviation(&result);
        let mut criteria = empty_criteria();
        criteria[0] = (
            format!("Prednisone-free and TIS >= {}", threshold.normalize()),
            match result.responder {
                Some(ResponderStatus::Responder) => Some(true),
                Some(ResponderStatus::NonResponder) => Some(false),
                _ => None,
            },
        );
        out.push(Row {
            usubjid: subject.usubjid.clone(),
            subjid: subject.subject_id.to_string(),
            paramcd: "PFTIS".into(),
            param: format!("Prednisone-Free TIS Endpoint {}", result.endpoint),
            avisitn: visit_number(Some(protocol), &visit),
            adt: visit_date(subject, &visit).map(calendar).transpose()?,
            aval: tis.score.map(|s| s.0.normalize()),
            avalc: tis
                .category
                .map(myolog_projection::report::tis_category_key)
                .unwrap_or_default()
                .to_string(),
            ablfl: false,
            base: None,
            chg: None,
            pchg: None,
            anl01fl: in_window,
            criteria,
            srcseq: srcseq(subject, &visit),
            algoid: tis.algorithm.into(),
            avisit: visit,
        });
    }
    Ok(out)
}

/// PARAMN of every PARAMCD: the fixed numbers, then 100 + position for the other analytes.
pub fn parameter_numbers(rows: &[Row]) -> BTreeMap<String, i64> {
    let mut numbers: BTreeMap<String, i64> = FIXED_PARAMETERS
        .iter()
        .map(|(code, number, _)| ((*code).to_string(), *number))
        .collect();
    let others: BTreeSet<&str> = rows
        .iter()
        .map(|row| row.paramcd.as_str())
        .filter(|code| !numbers.contains_key(*code))
        .collect();
    for (index, code) in others.into_iter().enumerate() {
        numbers.insert(code.to_string(), 100 + i64::try_from(index).unwrap_or(0));
    }
    numbers
}

/// The ADEFF dataset: rows sorted by USUBJID, PARAMN, AVISITN (baseline first), AVISIT.
pub fn dataset(
    context: &Context<'_>,
    subjects: &[SubjectFacts<'_>],
) -> Result<Dataset, PackageError> {
    let mut rows = rows(context, subjects)?;
    let numbers = parameter_numbers(&rows);
    let paramn = |row: &Row| numbers.get(&row.paramcd).copied().unwrap_or(i64::MAX);
    rows.sort_by(|a, b| {
        (&a.usubjid, paramn(a), !a.ablfl, a.avisitn, &a.avisit).cmp(&(
            &b.usubjid,
            paramn(b),
            !b.ablfl,
            b.avisitn,
            &b.avisit,
        ))
    });
    let c = |name: &str, label: &str, data_type: DataType| column(NAME, name, label, data_type);
    let mut columns = vec![
        c("STUDYID", "Study Identifier", DataType::String).with_key_sequence(1),
        c("USUBJID", "Unique Subject Identifier", DataType::String).with_key_sequence(2),
        c(
            "SUBJID",
            "Subject Identifier for the Study",
            DataType::String,
        ),
        c("SITEID", "Study Site Identifier", DataType::String),
        c("TRTP", "Planned Treatment", DataType::String),
        c("TRTA", "Actual Treatment", DataType::String),
        c("ASEQ", "Analysis Sequence Number", DataType::Integer),
        c("PARAMCD", "Parameter Code", DataType::String).with_key_sequence(3),
        c("PARAM", "Parameter", DataType::String),
        c("PARAMN", "Parameter (N)", DataType::Integer),
        c("AVISIT", "Analysis Visit", DataType::String),
        c("AVISITN", "Analysis Visit (N)", DataType::Integer).with_key_sequence(4),
        date_column(NAME, "ADT", "Analysis Date"),
        c("ADY", "Analysis Relative Day", DataType::Integer),
        c("AVAL", "Analysis Value", DataType::Decimal)
            .with_target(myolog_cdisc::TargetDataType::Decimal),
        c("AVALC", "Analysis Value (C)", DataType::String),
        c("ABLFL", "Baseline Record Flag", DataType::String).with_length(1),
        c("BASE", "Baseline Value", DataType::Decimal)
            .with_target(myolog_cdisc::TargetDataType::Decimal),
        c("CHG", "Change from Baseline", DataType::Decimal)
            .with_target(myolog_cdisc::TargetDataType::Decimal),
        c("PCHG", "Percent Change from Baseline", DataType::Decimal)
            .with_target(myolog_cdisc::TargetDataType::Decimal),
        c("ANL01FL", "Analysis Flag 01", DataType::String).with_length(1),
    ];
    for index in 1..=CRITERIA {
        columns.push(c(
            &format!("CRIT{index}"),
            &format!("Analysis Criterion {index}"),
            DataType::String,
        ));
        columns.push(
            c(
                &format!("CRIT{index}FL"),
                &format!("Criterion {index} Evaluation Result Flag"),
                DataType::String,
            )
            .with_length(1),
        );
    }
    columns.push(c(
        "SRCSEQ",
        "Source Event Log Sequence Numbers",
        DataType::String,
    ));
    columns.push(c(
        "ALGOID",
        "Derivation Algorithm Id and Version",
        DataType::String,
    ));

    let by_subject: BTreeMap<&str, &SubjectFacts<'_>> =
        subjects.iter().map(|s| (s.usubjid.as_str(), s)).collect();
    let mut out = Vec::with_capacity(rows.len());
    let mut aseq = 0_i64;
    let mut previous = String::new();
    for row in &rows {
        if row.usubjid != previous {
            aseq = 0;
            previous.clone_from(&row.usubjid);
        }
        aseq += 1;
        let subject = by_subject.get(row.usubjid.as_str());
        let treatment = |name: Option<&String>, code: Option<&String>| match (name, code) {
            (Some(name), _) if !name.is_empty() => Value::Text(name.clone()),
            (_, Some(code)) if !code.is_empty() => Value::Text(code.clone()),
            _ => Value::Null,
        };
        let ady = match (row.adt, subject.and_then(|s| s.trtsdt)) {
            (Some(adt), Some(start)) => Value::Integer(relative_day(adt, start)),
            _ => Value::Null,
        };
        let decimal = |value: Option<Decimal>| value.map_or(Value::Null, Value::Decimal);
        let mut cells = vec![
            Value::Text(context.study_id.to_string()),
            Value::Text(row.usubjid.clone()),
            Value::Text(row.subjid.clone()),
            subject
                .and_then(|s| s.subject.site.as_ref())
                .map_or(Value::Null, |site| Value::Text(site.to_string())),
            treatment(subject.map(|s| &s.arm), subject.map(|s| &s.armcd)),
            treatment(subject.map(|s| &s.actarm), subject.map(|s| &s.actarmcd)),
            Value::Integer(aseq),
            Value::Text(row.paramcd.clone()),
            Value::Text(row.param.clone()),
            Value::Integer(numbers.get(&row.paramcd).copied().unwrap_or(0)),
            Value::Text(row.avisit.clone()),
            row.avisitn.map_or(Value::Null, Value::Integer),
            row.adt.map_or(Value::Null, Value::Date),
            ady,
            decimal(row.aval),
            text_or_null(&row.avalc),
            if row.ablfl {
                Value::Text("Y".into())
            } else {
                Value::Null
            },
            decimal(row.base),
            decimal(row.chg),
            decimal(row.pchg),
            if row.anl01fl {
                Value::Text("Y".into())
            } else {
                Value::Null
            },
        ];
        for (text, met) in &row.criteria {
            cells.push(text_or_null(text));
            cells.push(if text.is_empty() {
                Value::Null
            } else {
                flag(*met)
            });
        }
        cells.push(text_or_null(&row.srcseq));
        cells.push(text_or_null(&row.algoid));
        out.push(cells);
    }
    Ok(Dataset {
        name: NAME.into(),
        label: "Efficacy Analysis Dataset".into(),
        item_group_oid: format!("IG.{NAME}"),
        class: "BASIC DATA STRUCTURE".into(),
        structure: "One record per subject per parameter per analysis visit".into(),
        purpose: Purpose::Analysis,
        is_reference_data: false,
        columns,
        rows: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_terminating_values_round_half_away_from_zero_to_six_places() {
        let haq = Ratio::new(8, 7).unwrap();
        assert_eq!(exact(haq, "x").unwrap().to_string(), "1.142857");
        let third = Ratio::new(-2, 3).unwrap();
        assert_eq!(exact(third, "x").unwrap().to_string(), "-0.666667");
        assert_eq!(
            exact(Ratio::new(1, 8).unwrap(), "x").unwrap().to_string(),
            "0.125"
        );
    }

    #[test]
    fn change_and_percent_change_are_exact_and_skip_a_zero_baseline() {
        let r = |n, d| Some(Ratio::new(n, d).unwrap());
        let (chg, pchg) = change(r(8, 7), r(2, 1), "x").unwrap();
        assert_eq!(chg.unwrap().to_string(), "-0.857143");
        // (8/7 - 2) / 2 x 100 = -300/7 = -42.857142857...
        assert_eq!(pchg.unwrap().to_string(), "-42.857143");
        let (chg, pchg) = change(r(3, 1), r(0, 1), "x").unwrap();
        assert_eq!(chg.unwrap().to_string(), "3");
        assert_eq!(pchg, None);
        assert_eq!(change(None, r(1, 1), "x").unwrap(), (None, None));
    }

    #[test]
    fn parameter_codes_fit_sas_names() {
        for (code, _, label) in FIXED_PARAMETERS {
            assert!(code.len() <= 8, "{code}");
            assert!(label.len() <= 40, "{label}");
        }
    }
}
