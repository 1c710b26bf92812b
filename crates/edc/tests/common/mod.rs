//! Shared helpers of the EDC bridge tests: fixture paths under the workspace's `tests/data/edc`, a
//! one-line text rendering of rows and plans, and `check`, which compares a rendering with its
//! expected file (set `EDC_BLESS=1` to rewrite expected files after reviewing a deliberate change).

#![allow(dead_code)]

use myolog_domain::event::{Assessment, Dose, Event, EventBody};
use myolog_domain::global::GlobalAssessment;
use myolog_domain::haq::{Haq, HaqCategory};
use myolog_domain::mmt8::Mmt8;
use myolog_edc::odm::{ItemValue, OdmError, OdmRow};
use myolog_edc::plan::{Change, Plan, Provenance};
use std::fmt::Write as _;
use std::path::PathBuf;

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/edc")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

pub fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Compares `actual` with `expected/<name>`; `EDC_BLESS=1` writes it instead.
pub fn check(actual: &str, name: &str) {
    let path = data_dir().join("expected").join(name);
    if std::env::var_os("EDC_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("expected dir")).expect("mkdir");
        std::fs::write(&path, actual).expect("write expected");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    if expected != actual {
        let first_difference = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from line {}:\n--- expected\n{}\n--- actual\n{}",
            first_difference + 1,
            expected.lines().nth(first_difference).unwrap_or("<end>"),
            actual.lines().nth(first_difference).unwrap_or("<end>")
        );
    }
}

pub fn render_row(row: &OdmRow) -> String {
    let mut line = format!("{} = ", row.key);
    match &row.value {
        ItemValue::Value(text) => write!(line, "{text:?}"),
        ItemValue::Empty => write!(line, "<empty>"),
        ItemValue::IsNull => write!(line, "<null>"),
        ItemValue::Absent => write!(line, "<absent>"),
    }
    .expect("write");
    if let Some(unit) = &row.unit {
        write!(line, " unit={unit}").expect("write");
    }
    if let Some(transaction) = row.transaction {
        write!(line, " tx={}", transaction.name()).expect("write");
    }
    if let Some(site) = &row.site {
        write!(line, " site={site}").expect("write");
    }
    if let Some(status) = &row.form_status {
        write!(line, " status={status:?}").expect("write");
    }
    if let Some(audit) = &row.audit {
        write!(
            line,
            " audit[id={:?} user={:?} at={:?} reason={:?} source={:?} location={:?}]",
            audit.id,
            audit.user_oid,
            audit.date_time_stamp,
            audit.reason_for_change,
            audit.source_id,
            audit.location_oid
        )
        .expect("write");
    }
    write!(line, " study={} block={}", row.study_oid, row.subject_block).expect("write");
    line
}

pub fn render_rows(rows: impl IntoIterator<Item = Result<OdmRow, OdmError>>) -> String {
    let mut out = String::new();
    for row in rows {
        match row {
            Ok(row) => out.push_str(&render_row(&row)),
            Err(error) => out.push_str(&format!("ERROR {error}")),
        }
        out.push('\n');
    }
    out
}

fn global(value: &Option<GlobalAssessment>) -> String {
    match value {
        None => "-".to_string(),
        Some(GlobalAssessment::Vas(vas)) => format!("{}cm", vas.cm()),
        Some(GlobalAssessment::Likert(likert)) => format!("likert{}", likert.get()),
    }
}

pub fn render_assessment(assessment: &Assessment) -> String {
    match assessment {
        Assessment::Globals {
            physician,
            patient,
            extramuscular,
        } => format!(
            "globals physician={} patient={} extramuscular={}",
            global(physician),
            global(patient),
            global(extramuscular)
        ),
        Assessment::Mmt8(Mmt8::Total(total)) => {
            format!("mmt8 total={}/{}", total.total(), total.scale().max_total())
        }
        Assessment::Mmt8(Mmt8::Unilateral(grades)) => format!(
            "mmt8 unilateral {:?}",
            grades.grades.map(|grade| grade.map(|g| g.get()))
        ),
        Assessment::Mmt8(Mmt8::Bilateral(grades)) => format!("mmt8 bilateral {grades:?}"),
        Assessment::Haq(Haq::Score(score)) => format!("haq_di={}", score.get()),
        Assessment::Haq(Haq::Items(items)) => {
            let answers: Vec<String> = HaqCategory::ALL
                .iter()
                .map(|category| {
                    let scores: Vec<String> = items
                        .answers(*category)
                        .iter()
                        .map(|score| score.map_or("-".to_string(), |s| s.get().to_string()))
                        .collect();
                    format!("{}=[{}]", category.key(), scores.join(","))
                })
                .collect();
            let aids: Vec<&str> = items.aids().iter().map(|aid| aid.key()).collect();
            let help: Vec<&str> = items.help().iter().map(|c| c.key()).collect();
            format!(
                "haq items {} aids=[{}] help=[{}]",
                answers.join(" "),
                aids.join(","),
                help.join(",")
            )
        }
        Assessment::Enzymes(panel) => {
            let parts: Vec<String> = panel
                .iter()
                .map(|(enzyme, m)| format!("{}={}/{}U/L", enzyme.key(), m.value(), m.uln()))
                .collect();
            format!("enzymes {}", parts.join(" "))
        }
        other => format!("{other:?}"),
    }
}

fn render_provenance(provenance: &Option<Provenance>) -> String {
    match provenance {
        None => String::new(),
        Some(p) => {
            let time = p.timestamp.as_ref().map(|t| {
                format!(
                    "{} offset={} zone={}",
                    t.text,
                    t.offset.as_deref().unwrap_or("-"),
                    t.zone.as_deref().unwrap_or("-")
                )
            });
            format!(
                " by={} at=[{}] location={} audit={}",
                p.user.as_deref().unwrap_or("-"),
                time.unwrap_or_default(),
                p.location.as_deref().unwrap_or("-"),
                p.audit_id.as_deref().unwrap_or("-")
            )
        }
    }
}

fn render_event(event: &Event) -> String {
    let header = format!(
        "{} {} {} {} {}",
        event.event_id,
        event.study,
        event
            .subject
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        event
            .visit
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "-".to_string()),
        event.clinical_date
    );
    let body = match &event.body {
        EventBody::SubjectEnrolled {
            arm,
            population,
            site,
            ..
        } => format!(
            "ENROL arm={arm} population={} site={}",
            population.map(|p| p.key()).unwrap_or("-"),
            site.as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "-".to_string())
        ),
        EventBody::AssessmentRecorded(assessment) => {
            format!("RECORD {}", render_assessment(assessment))
        }
        EventBody::AssessmentCorrected {
            supersedes,
            reason,
            corrected,
        } => format!(
            "CORRECT supersedes={supersedes} reason={:?} {}",
            reason.as_str(),
            render_assessment(corrected)
        ),
        EventBody::DoseRecorded(Dose::Glucocorticoid { drug, mg_per_day }) => {
            format!("DOSE {drug} {} mg/day", mg_per_day.mg_per_day())
        }
        other => format!("{other:?}"),
    };
    format!("{header} {body}")
}

pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    for change in &plan.changes {
        match change {
            Change::Event {
                event, provenance, ..
            } => {
                out.push_str(&render_event(event));
                out.push_str(&render_provenance(provenance));
            }
            Change::Retraction {
                event_id,
                subject,
                visit,
                supersedes,
                reason,
                provenance,
                ..
            } => {
                out.push_str(&format!(
                    "{event_id} {subject} {visit} RETRACT supersedes={supersedes} reason={:?}",
                    reason.as_str()
                ));
                out.push_str(&render_provenance(provenance));
            }
        }
        out.push('\n');
    }
    for discrepancy in &plan.discrepancies {
        out.push_str(&format!(
            "DISCREPANCY {} value={:?}: {}\n",
            discrepancy.path, discrepancy.value, discrepancy.problem
        ));
    }
    out.push_str(&format!(
        "unchanged={} context_rows={}\n",
        plan.unchanged, plan.context_rows
    ));
    out
}
