//! `myolog report`: one self-contained HTML page (inline CSS and SVG, no scripts, no external files)
//! per replay: CDASI activity per subject over visits, a waterfall of the TIS at the primary visit,
//! the improvement of each core set measure at the primary visit, and the cohort tables.
//!
//! Everything shown comes from [`Replay::outcomes`] and [`Replay::cohorts`] — the numbers the service
//! reports — and the page names its provenance (last sequence, chain hash, algorithms, engine). The
//! page holds no wall-clock time, so the same log gives the same bytes.

use std::fmt::Write;

use myolog_domain::protocol::Protocol;
use myolog_projection::outcome::ArmedEndpointTable;
use myolog_scoring::stats::{Outcome as StatsOutcome, Proportion, Summary};
use serde_json::Value;

use super::replay::{Replay, ReplayedOutcome, tis_category};
use super::svg::{self, Bar, DotRow, Series, escape};
use super::{ENGINE_VERSION, eligibility, endpoints};
use myolog_projection::report::{self as reported, CohortOutcomes, CohortVisit, VisitOutcome};

/// The visit the report treats as primary when the study has no protocol naming one and has this
/// visit (the synthetic cohort's week 12); otherwise the last follow-up visit.
pub const PRIMARY_VISIT: &str = "week12";

/// The core set measures in display order: result key and label.
const CORE: [(&str, &str); 6] = [
    ("physician_global", "Physician global"),
    ("patient_global", "Patient global"),
    ("extramuscular_global", "Extramuscular global"),
    ("mmt", "MMT-8"),
    ("haq", "HAQ-DI"),
    ("enzyme", "Muscle enzyme"),
];

/// TIS categories and their colours, in legend order.
const TIS_COLOURS: [(&str, &str); 4] = [
    ("major", "#1a7f37"),
    ("moderate", "#59a14f"),
    ("minimal", "#a0cf8b"),
    ("none", "#bab0ac"),
];

/// The charts and tables of one study.
#[derive(Debug, Clone)]
pub struct StudyCharts {
    pub study_id: String,
    pub primary_visit: String,
    /// Baseline then follow-up visits in the service's order.
    pub visits: Vec<String>,
    /// CDASI activity per subject over `visits`.
    pub cdasi: Vec<Series>,
    /// TIS at the primary visit, one bar per evaluable subject.
    pub tis: Vec<Bar>,
    /// The TIS category thresholds used (minimal, moderate, major).
    pub tis_thresholds: Vec<f64>,
    /// Improvement (%) of each core set measure at the primary visit, one dot per subject.
    pub core: Vec<DotRow>,
    /// The DOI's improvement threshold (%).
    pub doi_threshold: f64,
    pub cohort: CohortOutcomes,
    pub primary: Vec<ReplayedOutcome>,
}

/// The typed result as a tree, read by its contract keys.
fn result_of(outcome: &VisitOutcome) -> Value {
    serde_json::to_value(&outcome.result).unwrap_or(Value::Null)
}

fn float(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// The visit the charts centre on: the encounter of the protocol's first primary endpoint when the
/// study was registered with a protocol (STIR: W12), else [`PRIMARY_VISIT`], else the last
/// follow-up visit — whichever the cohort has first.
fn primary_visit(study: &myolog_projection::Study, followups: &[String]) -> String {
    let from_protocol = study.protocol.as_ref().and_then(|history| {
        history
            .current()
            .endpoints()
            .iter()
            .filter(|e| e.level == myolog_domain::protocol::Level::Primary)
            .find_map(|e| e.encounter_by_arm.first().map(|(_, visit)| visit.clone()))
    });
    from_protocol
        .into_iter()
        .chain([PRIMARY_VISIT.to_string()])
        .find(|visit| followups.contains(visit))
        .or_else(|| followups.last().cloned())
        .unwrap_or_default()
}

/// The data of every study's charts, in study order.
pub fn study_charts(replay: &Replay) -> Vec<StudyCharts> {
    let outcomes = replay.outcomes();
    let cohorts = replay.cohorts();
    let mut studies = Vec::new();
    for (study_id, study) in &replay.projection.studies {
        let of_study: Vec<&ReplayedOutcome> = outcomes
            .iter()
            .filter(|r| &r.outcome.study_id == study_id)
            .collect();
        let cohort = cohorts
            .iter()
            .find(|c| c.study_id == study_id.as_str())
            .cloned()
            .unwrap_or_default();
        let followups: Vec<String> = cohort.visits.iter().map(|v| v.visit_id.clone()).collect();
        let primary_visit = primary_visit(study, &followups);
        let mut visits = vec![study.baseline_visit.to_string()];
        visits.extend(followups.iter().cloned());

        let mut cdasi = Vec::new();
        for subject_id in study.subjects.keys() {
            let mine: Vec<&&ReplayedOutcome> = of_study
                .iter()
                .filter(|r| &r.outcome.subject_id == subject_id)
                .collect();
            let mut values = vec![None; visits.len()];
            for r in &mine {
                let Some(c) = r.outcome.cdasi() else { continue };
                if let Some(base) = c.baseline_activity {
                    values[0] = Some(f64::from(base));
                }
                if let (Some(i), Some(v)) = (
                    followups
                        .iter()
                        .position(|f| f == r.outcome.visit_id.as_str()),
                    c.followup_activity,
                ) {
                    values[i + 1] = Some(f64::from(v));
                }
            }
            if values.iter().any(Option::is_some) {
                cdasi.push(Series {
                    name: subject_id.to_string(),
                    values,
                });
            }
        }

        let primary: Vec<ReplayedOutcome> = of_study
            .iter()
            .filter(|r| r.outcome.visit_id.as_str() == primary_visit)
            .map(|r| (*r).clone())
            .collect();
        let mut tis = Vec::new();
        let mut tis_thresholds = Vec::new();
        let mut doi_threshold = 20.0;
        let mut core: Vec<DotRow> = CORE
            .iter()
            .map(|(_, label)| DotRow {
                name: (*label).to_string(),
                values: Vec::new(),
            })
            .collect();
        for r in &primary {
            let o = &r.outcome;
            let result = result_of(o);
            if o.tis_evaluable()
                && let Ok(score) = o.tis_score().parse::<f64>()
            {
                tis.push(Bar {
                    label: o.subject_id.to_string(),
                    value: score,
                    category: tis_category(o).to_string(),
                });
            }
            if tis_thresholds.is_empty()
                && let Some(thresholds) =
                    result["tis"]["conventions"]["category_thresholds"].as_array()
            {
                tis_thresholds = thresholds.iter().filter_map(float).collect();
            }
            if let Some(t) =
                float(&result["doi"]["conventions"]["improved_if_improvement_pct_at_least"])
            {
                doi_threshold = t;
            }
            for (row, (key, _)) in core.iter_mut().zip(CORE) {
                if let Some(pct) = float(&result["measures"][key]["improvement_pct"]) {
                    row.values.push((o.subject_id.to_string(), pct));
                }
            }
        }
        studies.push(StudyCharts {
            study_id: study_id.to_string(),
            primary_visit,
            visits,
            cdasi,
            tis,
            tis_thresholds,
            core,
            doi_threshold,
            cohort,
            primary,
        });
    }
    studies
}

impl StudyCharts {
    /// The three charts as SVG documents: CDASI lines, TIS waterfall, core set dot plot.
    pub fn svgs(&self) -> [String; 3] {
        let id = |name: &str| format!("{}-{name}", self.study_id);
        let names = ["minimal", "moderate", "major"];
        let references: Vec<(f64, &str)> = self.tis_thresholds.iter().copied().zip(names).collect();
        [
            svg::line_chart(
                &id("cdasi"),
                &format!("{}: CDASI activity per subject", self.study_id),
                &self.visits,
                &self.cdasi,
                "CDASI activity (0-100)",
            ),
            svg::waterfall(
                &id("tis"),
                &format!(
                    "{}: Total Improvement Score at {}, best first",
                    self.study_id, self.primary_visit
                ),
                &self.tis,
                &references,
                &TIS_COLOURS,
                "TIS (0-100)",
            ),
            svg::dot_plot(
                &id("core"),
                &format!(
                    "{}: improvement of each core set measure at {} (%)",
                    self.study_id, self.primary_visit
                ),
                &self.core,
                &[(0.0, "0"), (self.doi_threshold, "DOI improved")],
                "improvement from baseline, % (positive = better; bar = mean)",
            ),
        ]
    }
}

fn pct(p: Option<&reported::Proportion>) -> String {
    match p {
        Some(p) if p.total > 0 => format!(
            "{}/{} ({:.0}%; 95% CI {:.0}–{:.0}%)",
            p.responders,
            p.total,
            100.0 * f64::from(p.responders) / f64::from(p.total),
            100.0 * p.ci_low,
            100.0 * p.ci_high
        ),
        Some(p) => format!("{}/{}", p.responders, p.total),
        None => String::new(),
    }
}

fn mean_sd(s: Option<&reported::Summary>) -> String {
    match s {
        Some(s) if s.n > 0 => format!("{:.1} ± {:.1}", s.mean, s.sd),
        _ => "–".to_string(),
    }
}

fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.0001 => "< 0.0001".to_string(),
        Some(p) => format!("{p:.4}"),
        None => "–".to_string(),
    }
}

/// The per-visit cohort statistics; when the study has more than one arm, each visit's row is
/// followed by one row per arm with data there (GetCohort's `CohortVisit.arms`), first cell
/// "<visit>, arm <code>".
fn cohort_table(html: &mut String, cohort: &CohortOutcomes) {
    html.push_str("<table class=\"cohort\"><thead><tr><th>Visit</th><th>n</th><th>IMACS DOI responders</th><th>TIS none / minimal / moderate / major</th><th>TIS ≥ minimal</th><th>CDASI activity baseline</th><th>at visit</th><th>change</th><th>paired t p</th><th>Wilcoxon p</th><th>CDASI MCID</th></tr></thead><tbody>");
    let arms: std::collections::BTreeSet<&str> = cohort
        .visits
        .iter()
        .flat_map(|v| v.arms.iter().map(|arm| arm.arm.as_str()))
        .collect();
    for pooled in &cohort.visits {
        cohort_row(html, "", &escape(&pooled.visit_id), pooled);
        if arms.len() > 1 {
            for arm in &pooled.arms {
                let label = format!("{}, arm {}", escape(&pooled.visit_id), escape(&arm.arm));
                cohort_row(html, " class=\"cohort-arm\"", &label, arm);
            }
        }
    }
    html.push_str("</tbody></table>");
}

fn cohort_row(html: &mut String, class: &str, label: &str, v: &CohortVisit) {
    let tis = v.tis.unwrap_or_default();
    let c = v.cdasi_activity.clone().unwrap_or_default();
    let _ = write!(
        html,
        "<tr{class}><td>{label}</td><td>{}</td><td>{}</td><td>{} / {} / {} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        v.subjects,
        pct(v.doi_responders.as_ref()),
        tis.none,
        tis.minimal,
        tis.moderate,
        tis.major,
        pct(tis.at_least_minimal.as_ref()),
        mean_sd(c.baseline.as_ref()),
        mean_sd(c.visit.as_ref()),
        mean_sd(c.change.as_ref()),
        p_value(c.paired_t_p),
        p_value(c.wilcoxon_p),
        pct(v.cdasi_mcid.as_ref()),
    );
}

fn subject_table(html: &mut String, primary: &[ReplayedOutcome]) {
    html.push_str("<table class=\"subjects\"><thead><tr><th>Subject</th><th>Date</th><th>DOI</th><th>Improved (≥ 20%)</th><th>Worsened (≥ 25%)</th><th>TIS</th><th>Category</th><th>CDASI activity</th><th>Change</th><th>MCID</th></tr></thead><tbody>");
    for r in primary {
        let o = &r.outcome;
        let cdasi = o.cdasi();
        let activity = cdasi
            .map(|c| {
                format!(
                    "{} → {}",
                    c.baseline_activity.map_or("–".into(), |v| v.to_string()),
                    c.followup_activity.map_or("–".into(), |v| v.to_string())
                )
            })
            .unwrap_or_default();
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(o.subject_id.as_str()),
            escape(&o.clinical_date.map(|d| d.to_string()).unwrap_or_default()),
            o.doi_status(),
            o.doi_status().replace('_', " "),
            escape(&o.doi_improved().join(", ")),
            escape(&o.doi_worsened().join(", ")),
            escape(&o.tis_score()),
            tis_category(o),
            activity,
            cdasi
                .and_then(|c| c.activity_change)
                .map_or(String::new(), |c| c.to_string()),
            cdasi.map_or("", |c| if c.mcid_reached { "yes" } else { "no" }),
        );
    }
    html.push_str("</tbody></table>");
}

const STYLE: &str = "tr.cohort-arm td{color:#555}tr.cohort-arm td:first-child{padding-left:16px}body{font-family:sans-serif;margin:24px;color:#222;max-width:1140px}h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}p.prov{font-size:12px;color:#555;word-break:break-all}table{border-collapse:collapse;font-size:12px;margin:10px 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}td.t{text-align:left}td.met{color:#1a7f37;font-weight:bold}td.not_met{color:#b42318}svg.chart{display:block;margin:12px 0;border:1px solid #eee}";

fn summary_text(summary: Option<&Summary>) -> String {
    match summary {
        Some(s) => format!(
            "{:.2} ± {}; median {:.2} [IQR {:.2}, {:.2}] (n = {})",
            s.mean,
            s.sd.map_or_else(|| "–".to_string(), |sd| format!("{sd:.2}")),
            s.median,
            s.q1,
            s.q3,
            s.n
        ),
        None => "–".to_string(),
    }
}

/// Responders n/N with the exact 95% CI, as the report writes them.
fn responders_text(responders: &StatsOutcome<Proportion>) -> String {
    match responders.value() {
        Some(p) if p.n > 0 => format!(
            "{}/{} ({:.1}%; exact 95% CI {:.1}% to {:.1}%)",
            p.responders,
            p.n,
            100.0 * p.estimate,
            100.0 * p.ci_lower,
            100.0 * p.ci_upper
        ),
        Some(p) => format!("{}/{}", p.responders, p.n),
        None => "not evaluable".to_string(),
    }
}

/// One table per protocol endpoint (the cohort tables GetCohort serves): responders n/N with the
/// exact (Clopper-Pearson) 95% CI (also per arm when the protocol has more than one), TIS
/// categories, mean ± SD and median [IQR] of the values,
/// protocol deviations, missing and not evaluable subjects.
fn endpoint_section(html: &mut String, protocol: &Protocol, tables: &[ArmedEndpointTable]) {
    let _ = write!(
        html,
        "<h3>Protocol endpoints ({})</h3>",
        escape(&protocol.reference().to_string())
    );
    for armed in tables {
        let table = &armed.pooled;
        let endpoint = protocol.endpoint(&table.endpoint);
        let _ = write!(
            html,
            "<table class=\"endpoint\" data-endpoint=\"{}\"><thead><tr><th colspan=\"2\">{} — {}</th></tr></thead><tbody>",
            escape(&table.endpoint),
            escape(&table.endpoint),
            escape(endpoint.map_or("", |e| e.text.as_str())),
        );
        let mut row = |label: &str, class: &str, value: String| {
            let _ = write!(
                html,
                "<tr><td>{label}</td><td class=\"t {class}\">{}</td></tr>",
                escape(&value)
            );
        };
        row("Subjects", "subjects", table.subjects.to_string());
        if let Some(responders) = &table.responders {
            let rule = endpoints::rule_text(protocol, &table.endpoint);
            row(
                &format!("Responders ({rule})"),
                "responders",
                responders_text(responders),
            );
            // With more than one arm, each arm's responders over its own subjects (a single arm's
            // are the pooled ones).
            if armed.arms.len() > 1 {
                for (arm, arm_table) in &armed.arms {
                    let name = protocol.arm(arm).map_or(arm.as_str(), |a| a.name.as_str());
                    if let Some(responders) = &arm_table.responders {
                        row(
                            &format!("Responders, {name} ({arm})"),
                            "responders-arm",
                            responders_text(responders),
                        );
                    }
                }
            }
        }
        if let Some(categories) = &table.categories {
            let text = categories
                .iter()
                .map(|(category, n)| {
                    let key = serde_json::to_value(category)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    format!("{key} {n}")
                })
                .collect::<Vec<_>>()
                .join(" / ");
            row("TIS categories", "categories", text);
        }
        if let Some(scores) = &table.scores {
            row("TIS score", "values", summary_text(scores.value()));
        }
        if let Some(paired) = table.paired.as_ref().and_then(|p| p.value()) {
            row(
                "Baseline",
                "baseline",
                summary_text(paired.baseline.value()),
            );
            row(
                "At the visit",
                "visit",
                summary_text(paired.followup.value()),
            );
            row("Change", "values", summary_text(paired.change.value()));
            let t_test = paired.t_test.value().map(|t| t.p_value);
            let wilcoxon = paired.wilcoxon.value().map(|w| w.p_value);
            row(
                "Paired test (p, two-sided)",
                "paired",
                format!(
                    "t-test {}; Wilcoxon signed-rank {} ({} pairs)",
                    p_value(t_test),
                    p_value(wilcoxon),
                    paired.n_pairs
                ),
            );
        }
        row(
            "Protocol deviations (outside window)",
            "deviations",
            table.deviations.to_string(),
        );
        row("Missing", "missing", table.missing.to_string());
        row(
            "Not evaluable",
            "not_evaluable",
            table.not_evaluable.to_string(),
        );
        html.push_str("</tbody></table>");
    }
}

/// The eligibility count table GetCohort serves: eligible n/N, then per criterion how many subjects
/// met it, did not, had it not apply, or could not be evaluated (a missing value is never "not met").
fn eligibility_section(html: &mut String, table: &reported::EligibilityTable) {
    let _ = write!(
        html,
        "<h3>Eligibility ({})</h3><p class=\"eligible\">Eligible {}/{} (not eligible {}, not evaluable {})</p><table class=\"eligibility\"><thead><tr><th>Criterion</th><th>Met</th><th>Not met</th><th>Not applicable</th><th>Not evaluable</th></tr></thead><tbody>",
        escape(&table.protocol),
        table.eligible,
        table.subjects,
        table.not_eligible,
        table.not_evaluable,
    );
    for criterion in &table.criteria {
        let _ = write!(
            html,
            "<tr data-criterion=\"{}\"><td>{} — {}</td><td class=\"t met\">{}</td><td class=\"t not_met\">{}</td><td class=\"t not_applicable\">{}</td><td class=\"t not_evaluable\">{}</td></tr>",
            escape(&criterion.id),
            escape(&criterion.id),
            escape(&criterion.text),
            criterion.met,
            criterion.not_met,
            criterion.not_applicable,
            criterion.not_evaluable,
        );
    }
    html.push_str("</tbody></table>");
}

/// The whole page.
pub fn render(replay: &Replay) -> String {
    let studies = study_charts(replay);
    let endpoint_tables = endpoints::endpoint_tables(replay);
    let eligibility_tables = eligibility::tables(replay);
    let outcomes = replay.outcomes();
    let mut algorithms: Vec<String> = outcomes
        .iter()
        .flat_map(|r| r.provenance.algorithms.iter().cloned())
        .collect();
    algorithms.sort();
    algorithms.dedup();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Myolog report</title><style>{STYLE}</style></head><body><h1>Myolog report</h1><p class=\"prov\">Recomputed from the event log alone. As of sequence <b>{}</b> (head {}), chain hash <code>{}</code>; engine {}; algorithms {}.</p>",
        replay.last_sequence,
        replay.head_sequence,
        replay.chain_hash.to_hex(),
        ENGINE_VERSION,
        escape(&algorithms.join(", ")),
    );
    if studies.is_empty() {
        html.push_str("<p>No study in the log up to this point.</p>");
    }
    for study in &studies {
        let [cdasi, tis, core] = study.svgs();
        let _ = write!(
            html,
            "<h2>{} — {} subjects enrolled; primary visit {}</h2>{cdasi}{tis}{core}<h3>Cohort per visit</h3>",
            escape(&study.study_id),
            study.cohort.enrolled,
            escape(&study.primary_visit),
        );
        cohort_table(&mut html, &study.cohort);
        let _ = write!(
            html,
            "<h3>Subjects at {}</h3>",
            escape(&study.primary_visit)
        );
        subject_table(&mut html, &study.primary);
        if let Some((_, protocol, tables)) = endpoint_tables
            .iter()
            .find(|(id, _, _)| id.as_str() == study.study_id)
        {
            endpoint_section(&mut html, protocol, tables);
        }
        if let Some((_, table)) = eligibility_tables
            .iter()
            .find(|(id, _)| id.as_str() == study.study_id)
        {
            eligibility_section(&mut html, table);
        }
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::open_log;
    use crate::progress::Progress;
    use crate::replay::{AsOf, project};
    use myolog_synth::Cohort;

    const SUBJECTS: usize = 6;

    /// A log holding a small synthetic cohort, stored as the service stores it.
    fn cohort_log(dir: &std::path::Path, with_protocol: bool) {
        let cohort = if with_protocol {
            Cohort::new(7, SUBJECTS).with_stir_protocol()
        } else {
            Cohort::new(7, SUBJECTS)
        };
        crate::test_log::cohort_log(dir, &cohort);
    }

    fn nodes<'a>(doc: &'a roxmltree::Document<'a>, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .collect()
    }

    fn attr_f64(node: &roxmltree::Node<'_, '_>, name: &str) -> f64 {
        node.attribute(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn report_charts_hold_the_replayed_series() {
        let dir = tempfile::tempdir().expect("temp dir");
        cohort_log(dir.path(), false);
        let log = open_log(dir.path()).expect("log opens");
        let replay = project(&log, AsOf::Head, &mut Progress::hidden()).expect("replay");
        let outcomes = replay.outcomes();
        let studies = study_charts(&replay);
        assert_eq!(studies.len(), 1);
        let study = &studies[0];
        assert_eq!(study.primary_visit, PRIMARY_VISIT);
        let [cdasi, tis, core] = study.svgs();

        // CDASI: one polyline per subject; its values are the replayed activities.
        let doc = roxmltree::Document::parse(&cdasi).expect("CDASI SVG parses");
        let lines = nodes(&doc, "series");
        assert_eq!(lines.len(), SUBJECTS);
        for line in &lines {
            let subject = line.attribute("data-series").unwrap_or_default();
            let values: Vec<&str> = line
                .attribute("data-values")
                .unwrap_or_default()
                .split(' ')
                .collect();
            assert_eq!(values.len(), study.visits.len());
            for r in outcomes
                .iter()
                .filter(|r| r.outcome.subject_id.as_str() == subject)
            {
                let c = r.outcome.cdasi().expect("CDASI recorded");
                let at = study
                    .visits
                    .iter()
                    .position(|v| v == r.outcome.visit_id.as_str())
                    .expect("visit on the axis");
                assert_eq!(
                    values[at],
                    c.followup_activity
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                );
                assert_eq!(
                    values[0],
                    c.baseline_activity
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                );
            }
        }

        // TIS waterfall: one bar per evaluable subject at the primary visit, best first, values equal.
        let doc = roxmltree::Document::parse(&tis).expect("TIS SVG parses");
        let bars = nodes(&doc, "bar");
        let expected: Vec<(String, f64)> = outcomes
            .iter()
            .filter(|r| r.outcome.visit_id.as_str() == PRIMARY_VISIT)
            .filter(|r| r.outcome.tis_evaluable())
            .filter_map(|r| {
                Some((
                    r.outcome.subject_id.to_string(),
                    r.outcome.tis_score().parse().ok()?,
                ))
            })
            .collect();
        assert_eq!(bars.len(), expected.len());
        let values: Vec<f64> = bars.iter().map(|b| attr_f64(b, "data-value")).collect();
        assert!(
            values.windows(2).all(|w| w[0] >= w[1]),
            "sorted: {values:?}"
        );
        for bar in &bars {
            let label = bar.attribute("data-label").unwrap_or_default();
            let score = expected.iter().find(|e| e.0 == label).expect("a subject").1;
            assert!(
                (attr_f64(bar, "data-value") - score).abs() < 0.005,
                "{label}"
            );
        }
        let references: Vec<f64> = nodes(&doc, "reference")
            .iter()
            .map(|r| attr_f64(r, "data-value"))
            .collect();
        assert_eq!(references, [20.0, 40.0, 60.0], "adult category thresholds");

        // Core set: six rows, a dot per subject with the measure at the primary visit.
        let doc = roxmltree::Document::parse(&core).expect("core set SVG parses");
        assert_eq!(nodes(&doc, "mean").len(), CORE.len());
        assert!(nodes(&doc, "dot").len() <= CORE.len() * SUBJECTS);
        assert!(nodes(&doc, "dot").len() >= SUBJECTS);

        // The page embeds exactly these three charts and is deterministic.
        let html = render(&replay);
        assert_eq!(html.matches("<svg ").count(), 3);
        assert!(html.contains(&cdasi) && html.contains(&tis) && html.contains(&core));
        assert!(html.contains(&replay.chain_hash.to_hex()));
        assert_eq!(html, render(&replay));
    }

    #[test]
    fn the_primary_visit_comes_from_the_protocol() {
        let dir = tempfile::tempdir().expect("temp dir");
        cohort_log(dir.path(), true);
        let log = open_log(dir.path()).expect("log opens");
        let replay = project(&log, AsOf::Head, &mut Progress::hidden()).expect("replay");
        let studies = study_charts(&replay);
        assert_eq!(studies.len(), 1);
        // STIR's primary endpoint (DOI) is read at its encounter W12, not at the last visit.
        assert_eq!(studies[0].primary_visit, "W12");
        assert_eq!(studies[0].visits.last().map(String::as_str), Some("W16"));
        assert!(!studies[0].tis.is_empty());
    }
}
