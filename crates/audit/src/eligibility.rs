//! The protocol's eligibility in the audit outputs: one record per subject x criterion (`myolog replay
//! --eligibility`) and one count table per study x criterion (`--eligibility --cohort`, and the
//! report), each naming the protocol version it was checked under and the replay's provenance.
//!
//! The verdicts are those the service serves in GetSubject/GetCohort ([`crate::eligibility`]),
//! recomputed from the replayed projection; this module only lays them out, so an inspector's replay
//! and the live answer cannot disagree.

use std::io::Write;

use myolog_domain::event::StudyId;
use myolog_projection::report::{CriterionOutcome, EligibilityTable, SubjectEligibility};
use serde_json::json;

use super::endpoints::protocol_provenance;
use super::replay::{Format, Replay};
use super::table::write_csv_row;
use super::{AuditError, ENGINE_VERSION};
use myolog_projection::eligibility::{cohort_eligibility, subject_eligibility};

/// The CSV columns of `myolog replay --eligibility`.
pub const SUBJECT_COLUMNS: [&str; 14] = [
    "study_id",
    "subject_id",
    "protocol",
    "protocol_version",
    "baseline_visit_id",
    "subject_verdict",
    "criterion",
    "category",
    "verdict",
    "explanation",
    "seen",
    "last_sequence",
    "chain_hash",
    "engine_version",
];

/// The CSV columns of `myolog replay --eligibility --cohort`.
pub const TABLE_COLUMNS: [&str; 15] = [
    "study_id",
    "protocol",
    "protocol_version",
    "subjects",
    "eligible",
    "not_eligible",
    "not_evaluable",
    "criterion",
    "met",
    "not_met",
    "not_applicable",
    "criterion_not_evaluable",
    "last_sequence",
    "chain_hash",
    "engine_version",
];

/// Every subject's eligibility under the protocol in force, in study then subject order.
pub fn subject_reports(replay: &Replay) -> Vec<(&StudyId, String, SubjectEligibility)> {
    let mut out = Vec::new();
    for (study_id, study) in &replay.projection.studies {
        let Some(history) = &study.protocol else {
            continue;
        };
        for (subject_id, subject) in &study.subjects {
            out.push((
                study_id,
                subject_id.to_string(),
                subject_eligibility(history.current(), subject),
            ));
        }
    }
    out
}

/// Each protocol study's eligibility count table under the protocol in force.
pub fn tables(replay: &Replay) -> Vec<(&StudyId, EligibilityTable)> {
    replay
        .projection
        .studies
        .iter()
        .filter_map(|(id, study)| {
            let protocol = study.protocol.as_ref()?.current();
            Some((id, cohort_eligibility(protocol, study)))
        })
        .collect()
}

/// What a criterion's leaf rules saw, as `rule saw value (verdict)` joined by `; `.
fn seen_text(criterion: &CriterionOutcome) -> String {
    criterion
        .seen
        .iter()
        .map(|seen| format!("{} saw {} ({})", seen.rule, seen.value, seen.verdict))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Writes one record per subject x criterion with the values each rule saw and the provenance.
pub fn write_subject_eligibility(
    replay: &Replay,
    format: Format,
    out: &mut impl Write,
) -> Result<(), AuditError> {
    let hash = replay.chain_hash.to_hex();
    if format == Format::Csv {
        write_csv_row(out, &SUBJECT_COLUMNS)?;
    }
    for (study_id, subject_id, report) in subject_reports(replay) {
        for criterion in &report.criteria {
            match format {
                Format::Jsonl => {
                    let seen: Vec<_> = criterion
                        .seen
                        .iter()
                        .map(|seen| {
                            json!({"rule": seen.rule, "value": seen.value, "verdict": seen.verdict})
                        })
                        .collect();
                    let record = json!({
                        "study_id": study_id.as_str(),
                        "subject_id": subject_id,
                        "protocol": report.protocol,
                        "protocol_version": report.protocol_version,
                        "baseline_visit_id": report.baseline_visit_id,
                        "subject_verdict": report.verdict,
                        "criterion": criterion.id,
                        "category": criterion.category,
                        "text": criterion.text,
                        "verdict": criterion.verdict,
                        "explanation": criterion.explanation,
                        "seen": seen,
                        "provenance": protocol_provenance(replay, &hash, &report.protocol),
                    });
                    serde_json::to_writer(&mut *out, &record)?;
                    out.write_all(b"\n")?;
                }
                Format::Csv => write_csv_row(
                    out,
                    &[
                        study_id.to_string(),
                        subject_id.clone(),
                        report.protocol.clone(),
                        report.protocol_version.to_string(),
                        report.baseline_visit_id.clone(),
                        report.verdict.clone(),
                        criterion.id.clone(),
                        criterion.category.clone(),
                        criterion.verdict.clone(),
                        criterion.explanation.clone(),
                        seen_text(criterion),
                        replay.last_sequence.to_string(),
                        hash.clone(),
                        ENGINE_VERSION.to_string(),
                    ],
                )?,
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Writes one row per study x criterion: the study's eligible n/N and the criterion's verdict counts.
pub fn write_eligibility_tables(
    replay: &Replay,
    format: Format,
    out: &mut impl Write,
) -> Result<(), AuditError> {
    let hash = replay.chain_hash.to_hex();
    if format == Format::Csv {
        write_csv_row(out, &TABLE_COLUMNS)?;
    }
    for (study_id, table) in tables(replay) {
        for criterion in &table.criteria {
            match format {
                Format::Jsonl => {
                    let record = json!({
                        "study_id": study_id.as_str(),
                        "protocol": table.protocol,
                        "protocol_version": table.protocol_version,
                        "subjects": table.subjects,
                        "eligible": table.eligible,
                        "not_eligible": table.not_eligible,
                        "not_evaluable": table.not_evaluable,
                        "criterion": criterion.id,
                        "text": criterion.text,
                        "met": criterion.met,
                        "not_met": criterion.not_met,
                        "not_applicable": criterion.not_applicable,
                        "criterion_not_evaluable": criterion.not_evaluable,
                        "provenance": protocol_provenance(replay, &hash, &table.protocol),
                    });
                    serde_json::to_writer(&mut *out, &record)?;
                    out.write_all(b"\n")?;
                }
                Format::Csv => write_csv_row(
                    out,
                    &[
                        study_id.to_string(),
                        table.protocol.clone(),
                        table.protocol_version.to_string(),
                        table.subjects.to_string(),
                        table.eligible.to_string(),
                        table.not_eligible.to_string(),
                        table.not_evaluable.to_string(),
                        criterion.id.clone(),
                        criterion.met.to_string(),
                        criterion.not_met.to_string(),
                        criterion.not_applicable.to_string(),
                        criterion.not_evaluable.to_string(),
                        replay.last_sequence.to_string(),
                        hash.clone(),
                        ENGINE_VERSION.to_string(),
                    ],
                )?,
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::endpoints::tests::{replay_of, stir_log};
    use crate::{adam, report};

    /// Eight synthetic STIR subjects (`myolog_synth`): adults (ages 27, 44, 61, 35, 52, 69, 43, 60),
    /// CDASI activity well above 5, muscle disease not active, prednisone at most 20 mg/day, stable 4
    /// to 12 weeks except S007's 1 week, with 20 mg/day recorded from 8 weeks before that (so the
    /// dose when STIR's 8-week window opens is known: at most 20), Bohan and Peter DM for 8 months or
    /// more, biopsy-proven, negative cancer screening, 40 or more weeks of glucocorticoids which failed
    /// as did methotrexate (stopped 16 to 19 weeks before day 0), mycophenolate for S002, S005 and S008
    /// (6 months before), IVIG for S001 and S005 (122 days: 4 and 3 completed months), rituximab for
    /// S004 only 8 months before. Women under 50 (S001, S002, S004, S007) attest a negative pregnancy
    /// test; the men (S003, S006) and S005, S008 are not of child-bearing potential. So by STIR's
    /// rules: everything met by all 8 but IN03 (applies to no one), IN04 (S007 not met: 1 of 2
    /// weeks), IN11 (S004 not met: 12 months) and IN15 (4 met, 4 not applicable): eligible 6, not
    /// eligible 2.
    const SUBJECTS: usize = 8;

    /// (criterion, met, not met, not applicable, not evaluable), written out by hand from the above.
    const EXPECTED: [(&str, u32, u32, u32, u32); 15] = [
        ("IN01", 8, 0, 0, 0),
        ("IN02", 8, 0, 0, 0),
        ("IN03", 0, 0, 8, 0),
        ("IN04", 7, 1, 0, 0),
        ("IN05", 8, 0, 0, 0),
        ("IN06", 8, 0, 0, 0),
        ("IN07", 8, 0, 0, 0),
        ("IN08", 8, 0, 0, 0),
        ("IN09", 8, 0, 0, 0),
        ("IN10", 8, 0, 0, 0),
        ("IN11", 7, 1, 0, 0),
        ("IN12", 8, 0, 0, 0),
        ("IN13", 8, 0, 0, 0),
        ("IN14", 8, 0, 0, 0),
        ("IN15", 4, 0, 4, 0),
    ];

    fn lines(bytes: &[u8]) -> Vec<Value> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON line"))
            .collect()
    }

    #[test]
    fn replay_and_report_carry_each_criterion_with_what_it_saw() {
        let dir = tempfile::tempdir().expect("temp dir");
        stir_log(dir.path(), SUBJECTS);
        let replay = replay_of(dir.path());

        let mut jsonl = Vec::new();
        write_subject_eligibility(&replay, Format::Jsonl, &mut jsonl).expect("write");
        let records = lines(&jsonl);
        assert_eq!(records.len(), SUBJECTS * EXPECTED.len());
        for (criterion, met, not_met, not_applicable, not_evaluable) in EXPECTED {
            let count = |verdict: &str| {
                let n = records
                    .iter()
                    .filter(|r| r["criterion"] == criterion && r["verdict"] == verdict)
                    .count();
                u32::try_from(n).expect("small")
            };
            assert_eq!(
                [
                    count("met"),
                    count("not_met"),
                    count("not_applicable"),
                    count("not_evaluable")
                ],
                [met, not_met, not_applicable, not_evaluable],
                "{criterion}"
            );
        }
        let s007_in04 = records
            .iter()
            .find(|r| r["subject_id"] == "S007" && r["criterion"] == "IN04")
            .expect("S007 IN04");
        assert_eq!(s007_in04["subject_verdict"], "not_eligible");
        assert_eq!(s007_in04["baseline_visit_id"], "BL");
        assert_eq!(s007_in04["protocol_version"], 1);
        assert_eq!(s007_in04["protocol"], "STIR v1 registered as STIR-DEMO");
        assert_eq!(
            s007_in04["provenance"]["last_sequence"],
            replay.last_sequence
        );
        let seen = s007_in04["seen"].as_array().expect("seen values");
        assert!(
            seen.iter()
                .any(|s| s["value"] == "1" && s["verdict"] == "not_met"),
            "S007's 1 stable week is what IN04 saw: {seen:?}"
        );
        let eligible_subjects = records
            .iter()
            .filter(|r| r["criterion"] == "IN01" && r["subject_verdict"] == "eligible")
            .count();
        assert_eq!(eligible_subjects, 6);

        // The count table: one CSV row per criterion, eligible 6/8 (2 not eligible, 0 not
        // evaluable) on each.
        let mut csv = Vec::new();
        write_eligibility_tables(&replay, Format::Csv, &mut csv).expect("write");
        let text = String::from_utf8_lossy(&csv);
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(rows[0], TABLE_COLUMNS);
        assert_eq!(rows.len(), 1 + EXPECTED.len());
        for (row, (criterion, met, not_met, not_applicable, not_evaluable)) in
            rows[1..].iter().zip(EXPECTED)
        {
            let expected = [
                SUBJECTS.to_string(),
                "6".into(),
                "2".into(),
                "0".into(),
                criterion.into(),
                met.to_string(),
                not_met.to_string(),
                not_applicable.to_string(),
                not_evaluable.to_string(),
            ];
            assert_eq!(
                row[3..12],
                expected.each_ref().map(String::as_str),
                "{criterion}"
            );
        }

        // The ADaM dataset: one row per subject x criterion at the baseline visit with the same
        // verdicts (CRIT1FL Y when met, N when not met, blank otherwise), then ELIGIBLE.
        let dataset = adam::rows(&replay);
        for (criterion, met, not_met, not_applicable, not_evaluable) in EXPECTED {
            let rows: Vec<&adam::AdamRow> =
                dataset.iter().filter(|r| r.paramcd == criterion).collect();
            let count = |verdict: &str, flag: Option<bool>| {
                let n = rows
                    .iter()
                    .filter(|r| r.avalc == verdict && r.crit1fl == flag)
                    .count();
                u32::try_from(n).expect("small")
            };
            assert_eq!(
                [
                    count("met", Some(true)),
                    count("not_met", Some(false)),
                    count("not_applicable", None),
                    count("not_evaluable", None)
                ],
                [met, not_met, not_applicable, not_evaluable],
                "ADaM {criterion}"
            );
            assert!(rows.iter().all(|r| r.avisit == "BL" && r.ady == Some(1)));
            assert!(
                rows.iter()
                    .all(|r| r.algorithm == "STIR v1 registered as STIR-DEMO")
            );
        }
        let row = |subject: &str, paramcd: &str| {
            dataset
                .iter()
                .find(|r| r.subjid == subject && r.paramcd == paramcd)
                .unwrap_or_else(|| panic!("{subject} {paramcd}"))
        };
        // AVAL is the value a one-rule criterion saw (the age for IN01); IN04 has two rules.
        let s007_in04 = row("S007", "IN04");
        assert_eq!(
            (s007_in04.aval, s007_in04.crit1.as_str()),
            (None, "Inclusion criterion met")
        );
        assert!(s007_in04.param.starts_with("Inclusion criterion IN04: "));
        let age_seen = records
            .iter()
            .find(|r| r["subject_id"] == "S007" && r["criterion"] == "IN01")
            .and_then(|r| r["seen"][0]["value"].as_str())
            .expect("IN01 saw an age");
        assert_eq!(
            row("S007", "IN01").aval.map(|d| d.to_string()).as_deref(),
            Some(age_seen)
        );
        assert_eq!(
            (
                row("S007", "ELIGIBLE").avalc.as_str(),
                row("S007", "ELIGIBLE").crit1fl
            ),
            ("not_eligible", Some(false))
        );
        let eligible = dataset
            .iter()
            .filter(|r| r.paramcd == "ELIGIBLE" && r.crit1fl == Some(true))
            .count();
        assert_eq!(eligible, 6);
        // A subject's eligibility rows follow its visit rows and come before its endpoint rows.
        let s001: Vec<&str> = dataset
            .iter()
            .filter(|r| r.subjid == "S001")
            .map(|r| r.paramcd.as_str())
            .collect();
        let at = |paramcd: &str| s001.iter().position(|p| *p == paramcd).expect(paramcd);
        assert!(
            at("TIS") < at("IN01") && at("ELIGIBLE") < at("DOI_W12"),
            "{s001:?}"
        );

        // The report shows the same table.
        let html = report::render(&replay);
        assert!(
            html.contains("Eligible 6/8 (not eligible 2, not evaluable 0)"),
            "report"
        );
        assert!(html.contains("<tr data-criterion=\"IN04\">"), "report");
        assert!(
            html.contains("<td class=\"t met\">7</td><td class=\"t not_met\">1</td>"),
            "report IN04 row"
        );
    }
}
