//! The protocol's endpoints in the audit outputs: one record per subject x endpoint (`myolog replay
//! --endpoints`, and rows of the ADaM export) and one table per study x endpoint (`myolog replay
//! --endpoints --cohort`, and the report), each naming the protocol version it was computed under.
//!
//! The results are those the service serves in GetSubject/GetCohort ([`crate::outcomes`]), recomputed
//! from the replayed projection; this module only lays them out.

use std::io::Write;

use myolog_domain::Decimal;
use myolog_domain::event::{StudyId, SubjectId};
use myolog_domain::protocol::{
    BaselineVisit, FollowupVisit, Protocol, ResponderRule, ResponderStatus,
};
use myolog_scoring::doi::DoiStatus;
use myolog_scoring::protocol_eval::{EndpointResult, EndpointValue};
use myolog_scoring::tis::TisCategory;
use serde_json::{Value, json};

use super::replay::{Format, Replay};
use super::table::write_csv_row;
use super::{AuditError, ENGINE_VERSION};
use myolog_projection::outcome as outcomes;

/// One subject's result on one endpoint.
#[derive(Debug, Clone)]
pub struct SubjectEndpoint<'a> {
    pub study_id: &'a StudyId,
    pub subject_id: &'a SubjectId,
    /// The subject's arm code as enrolled (empty when not known).
    pub arm: &'a str,
    pub result: EndpointResult,
    /// The protocol's text for the responder rule (empty for a continuous endpoint).
    pub rule: String,
}

/// Every subject's endpoint results, in study, subject, then the protocol's endpoint order.
pub fn subject_endpoints(replay: &Replay) -> Vec<SubjectEndpoint<'_>> {
    let mut out = Vec::new();
    for (study_id, study) in &replay.projection.studies {
        let Some(protocol) = study.protocol.as_ref().map(|history| history.current()) else {
            continue;
        };
        for (subject_id, subject) in &study.subjects {
            for result in outcomes::subject_endpoint_results(study, subject) {
                out.push(SubjectEndpoint {
                    study_id,
                    subject_id,
                    arm: &subject.arm,
                    rule: rule_text(protocol, &result.endpoint),
                    result,
                });
            }
        }
    }
    out
}

/// One study's endpoint tables, each also per arm, with the protocol they were computed under.
pub fn endpoint_tables(
    replay: &Replay,
) -> Vec<(&StudyId, &Protocol, Vec<outcomes::ArmedEndpointTable>)> {
    replay
        .projection
        .studies
        .iter()
        .filter_map(|(id, study)| {
            let protocol = study.protocol.as_ref()?.current();
            Some((id, protocol, outcomes::endpoint_tables(study)))
        })
        .collect()
}

/// The responder rule of an endpoint in words, for CRIT1 and the tables.
pub fn rule_text(protocol: &Protocol, endpoint: &str) -> String {
    let Some(rule) = protocol.endpoint(endpoint).and_then(|e| e.responder) else {
        return String::new();
    };
    match rule {
        ResponderRule::DoiMet => "IMACS DOI met".to_string(),
        ResponderRule::CdasiMcidReached { points } => {
            format!("CDASI activity improved by >= {points} points")
        }
        ResponderRule::TisAtLeast(threshold) => format!("TIS >= {threshold}"),
        ResponderRule::TisCategoryAtLeast(category) => {
            format!("TIS category {} or better", category.key())
        }
        ResponderRule::PrednisoneFreeTisMet => {
            "TIS threshold met and prednisone-free over the protocol's window".to_string()
        }
    }
}

fn tis_category_key(category: TisCategory) -> &'static str {
    category.key()
}

/// `responder`, `non_responder`, `not_evaluable`, `missing`; empty for a continuous endpoint.
pub fn responder_key(status: Option<ResponderStatus>) -> &'static str {
    match status {
        Some(ResponderStatus::Responder) => "responder",
        Some(ResponderStatus::NonResponder) => "non_responder",
        Some(ResponderStatus::NotEvaluable) => "not_evaluable",
        Some(ResponderStatus::Missing) => "missing",
        None => "",
    }
}

/// The baseline and follow-up visit ids the endpoint read (empty when there is none).
pub fn visit_ids(result: &EndpointResult) -> (String, String) {
    let baseline = match &result.visits.baseline {
        BaselineVisit::Found { visit_id, .. }
        | BaselineVisit::BaselineVisitMissing { visit_id } => visit_id.clone(),
        BaselineVisit::FirstDoseNotRecorded | BaselineVisit::NoVisitBeforeFirstDose { .. } => {
            String::new()
        }
    };
    let followup = match &result.visits.followup {
        FollowupVisit::Found { visit_id, .. }
        | FollowupVisit::Missing { visit_id, .. }
        | FollowupVisit::NotAfterBaseline { visit_id, .. } => visit_id.clone(),
    };
    (baseline, followup)
}

/// Whether the follow-up visit was outside its window (a protocol deviation; still scored).
pub fn is_deviation(result: &EndpointResult) -> bool {
    matches!(&result.visits.followup, FollowupVisit::Found { timing, .. } if timing.is_deviation())
}

/// The analysis value (exact) and its text: DOI the number of improved measures and the verdict,
/// TIS (also prednisone-free) the score and category, CDASI the activity change, a biomarker its
/// fold change, STAT1 the change; `missing` or `not_evaluable` without a value.
pub fn analysis_value(result: &EndpointResult) -> (Option<Decimal>, String) {
    let tis = |outcome: &myolog_scoring::tis::TisOutcome| {
        (
            outcome.score.map(|score| score.0.normalize()),
            outcome
                .category
                .map(tis_category_key)
                .unwrap_or("not_evaluable")
                .to_string(),
        )
    };
    match &result.value {
        None => (None, "missing".to_string()),
        Some(EndpointValue::Doi(doi)) => (
            Some(Decimal::from(doi.improved.len())),
            match doi.status {
                DoiStatus::Met => "met",
                DoiStatus::NotMet => "not_met",
                DoiStatus::NotEvaluable => "not_evaluable",
            }
            .to_string(),
        ),
        Some(EndpointValue::Tis(outcome)) => tis(outcome),
        Some(EndpointValue::PrednisoneFree { tis: outcome, .. }) => tis(outcome),
        Some(EndpointValue::Cdasi { change, .. }) => {
            (Some(Decimal::from(change.activity_change)), String::new())
        }
        // The protocol's biomarker endpoints are fold changes (none when the baseline is 0).
        Some(EndpointValue::Biomarker { change, .. }) => {
            match change
                .fold_change
                .and_then(|ratio| ratio.to_display_decimal())
            {
                Some(fold) => (Some(fold.normalize()), String::new()),
                None => (None, "not_evaluable".to_string()),
            }
        }
        Some(EndpointValue::Stat1 { change, .. }) => (Some(change.normalize()), String::new()),
        Some(EndpointValue::NotEvaluable(_)) => (None, "not_evaluable".to_string()),
    }
}

/// The provenance every protocol record carries: the replay point (last sequence and its chain hash),
/// the protocol version the result was computed under, and the engine version.
pub(super) fn protocol_provenance(replay: &Replay, chain_hash: &str, protocol: &str) -> Value {
    json!({
        "last_sequence": replay.last_sequence,
        "chain_hash": chain_hash,
        "protocol": protocol,
        "engine_version": ENGINE_VERSION,
    })
}

/// The CSV columns of `myolog replay --endpoints`.
pub const SUBJECT_COLUMNS: [&str; 17] = [
    "study_id",
    "subject_id",
    "arm",
    "endpoint",
    "protocol",
    "protocol_version",
    "baseline_visit_id",
    "visit_id",
    "aval",
    "avalc",
    "responder_rule",
    "responder",
    "counts_as_responder",
    "deviation",
    "last_sequence",
    "chain_hash",
    "engine_version",
];

/// Writes every subject x endpoint result with its provenance: the protocol (study id and version)
/// it was computed under, the last sequence and chain hash of the replay, the engine version.
pub fn write_subject_endpoints(
    replay: &Replay,
    format: Format,
    out: &mut impl Write,
) -> Result<(), AuditError> {
    let hash = replay.chain_hash.to_hex();
    if format == Format::Csv {
        write_csv_row(out, &SUBJECT_COLUMNS)?;
    }
    for row in subject_endpoints(replay) {
        let r = &row.result;
        let (baseline, visit) = visit_ids(r);
        let (aval, avalc) = analysis_value(r);
        let responder = responder_key(r.responder);
        match format {
            Format::Jsonl => {
                let record = json!({
                    "study_id": row.study_id.as_str(),
                    "subject_id": row.subject_id.as_str(),
                    "arm": row.arm,
                    "endpoint": r.endpoint,
                    "protocol": r.protocol.study_id,
                    "protocol_version": r.protocol.version,
                    "baseline_visit_id": baseline,
                    "visit_id": visit,
                    "aval": aval.map(|d| d.to_string()),
                    "avalc": avalc,
                    "responder_rule": row.rule,
                    "responder": (!responder.is_empty()).then_some(responder),
                    "counts_as_responder": r.counts_as_responder,
                    "deviation": is_deviation(r),
                    "result": serde_json::to_value(r).unwrap_or(Value::Null),
                    "provenance": protocol_provenance(replay, &hash, &r.protocol.to_string()),
                });
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
            Format::Csv => {
                let flag = |b: Option<bool>| b.map(|b| b.to_string()).unwrap_or_default();
                write_csv_row(
                    out,
                    &[
                        row.study_id.to_string(),
                        row.subject_id.to_string(),
                        row.arm.to_string(),
                        r.endpoint.clone(),
                        r.protocol.study_id.clone(),
                        r.protocol.version.to_string(),
                        baseline,
                        visit,
                        aval.map(|d| d.to_string()).unwrap_or_default(),
                        avalc,
                        row.rule.clone(),
                        responder.to_string(),
                        flag(r.counts_as_responder),
                        is_deviation(r).to_string(),
                        replay.last_sequence.to_string(),
                        hash.clone(),
                        ENGINE_VERSION.to_string(),
                    ],
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The CSV columns of `myolog replay --endpoints --cohort`: `arm` is empty on the pooled row.
pub const TABLE_COLUMNS: [&str; 17] = [
    "study_id",
    "protocol",
    "protocol_version",
    "endpoint",
    "arm",
    "responder_rule",
    "subjects",
    "missing",
    "not_evaluable",
    "deviations",
    "responders",
    "responders_total",
    "ci_low",
    "ci_high",
    "last_sequence",
    "chain_hash",
    "engine_version",
];

/// Writes one table per study x endpoint and one per study x endpoint x arm (the cohort tables of
/// GetCohort, per arm as in `EndpointTable.arms`) with the same provenance.
pub fn write_endpoint_tables(
    replay: &Replay,
    format: Format,
    out: &mut impl Write,
) -> Result<(), AuditError> {
    let hash = replay.chain_hash.to_hex();
    if format == Format::Csv {
        write_csv_row(out, &TABLE_COLUMNS)?;
    }
    for (study_id, protocol, tables) in endpoint_tables(replay) {
        // The pooled table (arm empty), then the same table over each arm's subjects.
        let rows = tables.iter().flat_map(|armed| {
            std::iter::once(("", &armed.pooled))
                .chain(armed.arms.iter().map(|(arm, table)| (arm.as_str(), table)))
        });
        for (arm, table) in rows {
            let proportion = table.responders.as_ref().and_then(|p| p.value());
            let rule = rule_text(protocol, &table.endpoint);
            match format {
                Format::Jsonl => {
                    let record = json!({
                        "study_id": study_id.as_str(),
                        "protocol": table.protocol.study_id,
                        "protocol_version": table.protocol.version,
                        "endpoint": table.endpoint,
                        "arm": arm,
                        "responder_rule": rule,
                        "table": serde_json::to_value(table).unwrap_or(Value::Null),
                        "provenance": protocol_provenance(replay, &hash, &table.protocol.to_string()),
                    });
                    serde_json::to_writer(&mut *out, &record)?;
                    out.write_all(b"\n")?;
                }
                Format::Csv => {
                    let number = |f: Option<f64>| f.map(|f| f.to_string()).unwrap_or_default();
                    write_csv_row(
                        out,
                        &[
                            study_id.to_string(),
                            table.protocol.study_id.clone(),
                            table.protocol.version.to_string(),
                            table.endpoint.clone(),
                            arm.to_string(),
                            rule,
                            table.subjects.to_string(),
                            table.missing.to_string(),
                            table.not_evaluable.to_string(),
                            table.deviations.to_string(),
                            proportion
                                .map(|p| p.responders.to_string())
                                .unwrap_or_default(),
                            proportion.map(|p| p.n.to_string()).unwrap_or_default(),
                            number(proportion.map(|p| p.ci_lower)),
                            number(proportion.map(|p| p.ci_upper)),
                            replay.last_sequence.to_string(),
                            hash.clone(),
                            ENGINE_VERSION.to_string(),
                        ],
                    )?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::open_log;
    use crate::progress::Progress;
    use crate::replay::{AsOf, project};
    use crate::{adam, report};
    use myolog_synth::Cohort;

    const SUBJECTS: usize = 6;

    /// A log of the synthetic cohort registered under STIR's protocol, stored as the service stores it.
    pub(crate) fn stir_log(dir: &std::path::Path, subjects: usize) {
        crate::test_log::cohort_log(dir, &Cohort::new(11, subjects).with_stir_protocol());
    }

    pub(crate) fn replay_of(dir: &std::path::Path) -> Replay {
        let log = open_log(dir).expect("log opens");
        project(&log, AsOf::Head, &mut Progress::hidden()).expect("replay")
    }

    fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|line| line.split(',').map(str::to_string).collect())
            .collect()
    }

    /// What GetCohort serves for the study: the reference every output must agree with.
    fn served_tables(replay: &Replay) -> Vec<myolog_proto::v1::EndpointTable> {
        replay
            .projection
            .studies
            .values()
            .flat_map(outcomes::cohort_endpoints)
            .map(|table| myolog_wire::outcome::endpoint_table(&table))
            .collect()
    }

    #[test]
    fn replay_export_and_report_carry_the_served_endpoints() {
        let dir = tempfile::tempdir().expect("temp dir");
        stir_log(dir.path(), SUBJECTS);
        let replay = replay_of(dir.path());
        let served = served_tables(&replay);
        assert!(
            served.len() >= 5,
            "STIR has its endpoints: {}",
            served.len()
        );

        // Subject x endpoint records: every enrolled subject on every endpoint, the responders
        // per endpoint those of the served table, under protocol STIR v1 with the provenance.
        let mut jsonl = Vec::new();
        write_subject_endpoints(&replay, Format::Jsonl, &mut jsonl).expect("write");
        let records: Vec<Value> = String::from_utf8_lossy(&jsonl)
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON line"))
            .collect();
        assert_eq!(records.len(), SUBJECTS * served.len());
        for table in &served {
            let of_endpoint: Vec<&Value> = records
                .iter()
                .filter(|r| r["endpoint"] == table.endpoint.as_str())
                .collect();
            assert_eq!(of_endpoint.len(), SUBJECTS, "{}", table.endpoint);
            let counted = of_endpoint
                .iter()
                .filter(|r| r["counts_as_responder"] == true)
                .count();
            let served_responders = table.responders.map(|p| p.responders);
            if let Some(responders) = served_responders {
                assert_eq!(counted, responders as usize, "{}", table.endpoint);
            }
            for record in of_endpoint {
                assert_eq!(record["protocol"], "STIR");
                assert_eq!(record["protocol_version"], 1);
                assert_eq!(
                    record["provenance"]["protocol"],
                    "STIR v1 registered as STIR-DEMO"
                );
                assert_eq!(record["provenance"]["last_sequence"], replay.last_sequence);
                assert_eq!(
                    record["provenance"]["chain_hash"],
                    replay.chain_hash.to_hex()
                );
            }
        }
        let mut csv = Vec::new();
        write_subject_endpoints(&replay, Format::Csv, &mut csv).expect("write");
        let rows = csv_rows(&csv);
        assert_eq!(rows[0], SUBJECT_COLUMNS);
        assert_eq!(rows.len(), 1 + records.len());

        // Cohort tables: the served numbers.
        let mut tables = Vec::new();
        write_endpoint_tables(&replay, Format::Csv, &mut tables).expect("write");
        let rows = csv_rows(&tables);
        assert_eq!(rows[0], TABLE_COLUMNS);
        // Each served table, then the same table per arm (STIR has one), in that order.
        let expected: Vec<[String; 7]> = served
            .iter()
            .flat_map(|table| {
                let counts =
                    |arm: &str,
                     counts: [u32; 3],
                     responders: Option<&myolog_proto::v1::Proportion>| {
                        [
                            table.endpoint.clone(),
                            arm.to_string(),
                            counts[0].to_string(),
                            counts[1].to_string(),
                            counts[2].to_string(),
                            responders
                                .map(|p| p.responders.to_string())
                                .unwrap_or_default(),
                            responders.map(|p| p.total.to_string()).unwrap_or_default(),
                        ]
                    };
                std::iter::once(counts(
                    "",
                    [table.subjects, table.missing, table.deviations],
                    table.responders.as_ref(),
                ))
                .chain(table.arms.iter().map(move |arm| {
                    counts(
                        &arm.arm,
                        [arm.subjects, arm.missing, arm.deviations],
                        arm.responders.as_ref(),
                    )
                }))
            })
            .collect();
        assert!(served.iter().all(|table| table.arms.len() == 1));
        let written: Vec<[String; 7]> = rows[1..]
            .iter()
            .map(|row| {
                let column = |name: &str| {
                    let index = TABLE_COLUMNS
                        .iter()
                        .position(|c| *c == name)
                        .expect("column");
                    row[index].clone()
                };
                assert_eq!(column("protocol_version"), "1");
                [
                    "endpoint",
                    "arm",
                    "subjects",
                    "missing",
                    "deviations",
                    "responders",
                    "responders_total",
                ]
                .map(column)
            })
            .collect();
        assert_eq!(written, expected);

        // ADaM: one row per subject x endpoint, CRIT1FL = Y exactly for the served responders.
        let adam_rows = adam::rows(&replay);
        for table in &served {
            let rows: Vec<&adam::AdamRow> = adam_rows
                .iter()
                .filter(|row| row.paramcd == table.endpoint)
                .collect();
            assert_eq!(rows.len(), SUBJECTS, "{}", table.endpoint);
            assert!(
                rows.iter()
                    .all(|row| row.algorithm == "STIR v1 registered as STIR-DEMO")
            );
            assert!(rows.iter().all(|row| !row.ablfl && !row.avisit.is_empty()));
            if let Some(responders) = table.responders.map(|p| p.responders) {
                let flagged = rows.iter().filter(|row| row.crit1fl == Some(true)).count();
                assert_eq!(flagged, responders as usize, "{}", table.endpoint);
                assert!(rows.iter().all(|row| !row.crit1.is_empty()));
            }
        }
        // Each subject's endpoint rows follow that subject's visit rows.
        for window in adam_rows.windows(2) {
            let endpoint_then_visit = served.iter().any(|t| t.endpoint == window[0].paramcd)
                && !served.iter().any(|t| t.endpoint == window[1].paramcd);
            if endpoint_then_visit {
                assert_ne!(window[0].usubjid, window[1].usubjid, "{:?}", window[1]);
            }
        }

        // Report: a table per endpoint with the served responders and exact CI.
        let html = report::render(&replay);
        let p_text = |p: f64| {
            if p < 0.0001 {
                "< 0.0001".to_string()
            } else {
                format!("{p:.4}")
            }
        };
        let mut paired_shown = 0;
        for table in &served {
            let start = html
                .find(&format!("data-endpoint=\"{}\"", table.endpoint))
                .unwrap_or_else(|| panic!("table of {}", table.endpoint));
            let section = &html[start..];
            let section = &section[..section.find("</table>").unwrap_or(section.len())];
            if let Some(p) = table.responders.filter(|p| p.total > 0) {
                let expected = format!(
                    "{}/{} ({:.1}%; exact 95% CI {:.1}% to {:.1}%)",
                    p.responders,
                    p.total,
                    100.0 * f64::from(p.responders) / f64::from(p.total),
                    100.0 * p.ci_low,
                    100.0 * p.ci_high
                );
                assert!(section.contains(&expected), "{expected} in {section}");
            }
            assert!(section.contains(&format!("<td class=\"t missing\">{}</td>", table.missing)));
            // A continuous endpoint shows the served paired test (t-test and Wilcoxon p-values).
            let served_json: Value = serde_json::from_str(&table.table_json).expect("table JSON");
            let paired = &served_json["paired"];
            if let Some(t_p) = paired["t_test"]["p_value"].as_f64() {
                paired_shown += 1;
                let expected = format!("t-test {}", p_text(t_p));
                assert!(section.contains(&expected), "{expected} in {section}");
                if let Some(w_p) = paired["wilcoxon"]["p_value"].as_f64() {
                    let expected = format!("Wilcoxon signed-rank {}", p_text(w_p));
                    assert!(section.contains(&expected), "{expected} in {section}");
                }
            }
        }
        assert!(paired_shown >= 1, "STIR's CDASI change has a paired test");
    }

    #[test]
    fn responder_rules_and_statuses_in_words() {
        let cases = [
            (Some(ResponderStatus::Responder), "responder"),
            (Some(ResponderStatus::NonResponder), "non_responder"),
            (Some(ResponderStatus::NotEvaluable), "not_evaluable"),
            (Some(ResponderStatus::Missing), "missing"),
            (None, ""),
        ];
        for (status, key) in cases {
            assert_eq!(responder_key(status), key);
        }
    }
}
