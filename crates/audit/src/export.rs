//! The audit trail: every stored event with who recorded it and when (the log's envelope), what it
//! says (a one-line summary of the payload, totals computed by the scoring crate), why (the reason of
//! a correction or withdrawal) and, for a correction, the event and sequence it supersedes.
//!
//! The trail is read straight from the log in sequence order (up to a sequence or a time, like the
//! replay), so it lists superseded values too: nothing is ever hidden by a correction.

use std::collections::HashMap;
use std::io::Write;

use myolog_domain::conventions::ScoringConventions;
use myolog_domain::event::{Assessment, Dose, Event, EventBody};
use myolog_storage::{EventLog, RecordedEvent};
use serde_json::json;

use super::AuditError;
use super::progress::Progress;
use super::replay::{AsOf, Format};
use super::table::{rfc3339_nanos, write_csv_row};
use crate::decode_stored;

/// The CSV columns of the audit trail.
pub const AUDIT_COLUMNS: [&str; 14] = [
    "sequence",
    "recorded_at",
    "recorded_by",
    "event_type",
    "study_id",
    "subject_id",
    "visit_id",
    "clinical_date",
    "event_id",
    "what",
    "why",
    "supersedes_event_id",
    "supersedes_sequence",
    "hash",
];

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub sequence: u64,
    /// RFC 3339 UTC, nanoseconds.
    pub recorded_at: String,
    pub recorded_by: String,
    pub event_type: String,
    pub study_id: String,
    pub subject_id: String,
    pub visit_id: String,
    pub clinical_date: String,
    pub event_id: String,
    pub what: String,
    pub why: String,
    /// For a correction: the superseded event id and its sequence.
    pub supersedes: Option<(String, u64)>,
    /// Chain hash, hex.
    pub hash: String,
}

impl AuditRow {
    fn fields(&self) -> Vec<String> {
        vec![
            self.sequence.to_string(),
            self.recorded_at.clone(),
            self.recorded_by.clone(),
            self.event_type.clone(),
            self.study_id.clone(),
            self.subject_id.clone(),
            self.visit_id.clone(),
            self.clinical_date.clone(),
            self.event_id.clone(),
            self.what.clone(),
            self.why.clone(),
            self.supersedes
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or_default(),
            self.supersedes
                .as_ref()
                .map(|s| s.1.to_string())
                .unwrap_or_default(),
            self.hash.clone(),
        ]
    }

    fn to_json(&self) -> serde_json::Value {
        let blank_null = |text: &str| (!text.is_empty()).then(|| text.to_string());
        json!({
            "sequence": self.sequence,
            "recorded_at": self.recorded_at,
            "recorded_by": self.recorded_by,
            "event_type": self.event_type,
            "study_id": self.study_id,
            "subject_id": blank_null(&self.subject_id),
            "visit_id": blank_null(&self.visit_id),
            "clinical_date": self.clinical_date,
            "event_id": self.event_id,
            "what": self.what,
            "why": blank_null(&self.why),
            "supersedes": self.supersedes.as_ref().map(|(id, seq)| json!({"event_id": id, "sequence": seq})),
            "hash": self.hash,
        })
    }
}

/// Builds the row of one stored event; `seqs` maps the event ids seen so far to their sequences
/// (a correction always comes after what it supersedes); `conventions` are those of the study's
/// protocol version in force at that event (a HAQ-DI summary depends on them).
pub fn audit_row(
    stored: &RecordedEvent,
    event: &Event,
    seqs: &HashMap<String, u64>,
    conventions: &ScoringConventions,
) -> AuditRow {
    let (why, supersedes) = match &event.body {
        EventBody::AssessmentCorrected {
            supersedes, reason, ..
        } => (
            reason.as_str().to_string(),
            Some((
                supersedes.to_string(),
                seqs.get(supersedes.as_str()).copied().unwrap_or(0),
            )),
        ),
        // A retraction names the event it withdraws as a correction names the one it supersedes.
        EventBody::AssessmentRetracted { retracts, reason } => (
            reason.as_str().to_string(),
            Some((
                retracts.to_string(),
                seqs.get(retracts.as_str()).copied().unwrap_or(0),
            )),
        ),
        EventBody::SubjectWithdrawn { reason }
        | EventBody::StudyLocked { reason }
        | EventBody::StudyUnlocked { reason }
        | EventBody::StudyUnblinded { reason } => (reason.as_str().to_string(), None),
        _ => (String::new(), None),
    };
    AuditRow {
        sequence: stored.seq,
        recorded_at: rfc3339_nanos(stored.recorded_at_unix_nanos),
        recorded_by: stored.recorded_by.clone(),
        event_type: stored.event_type.clone(),
        study_id: event.study.to_string(),
        subject_id: event
            .subject
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        visit_id: event
            .visit
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        clinical_date: event.clinical_date.to_string(),
        event_id: stored.event_id.clone(),
        what: summarize(event, conventions),
        why,
        supersedes,
        hash: stored.hash.to_hex(),
    }
}

/// A one-line summary of what an event records; totals are computed under `conventions`.
pub fn summarize(event: &Event, conventions: &ScoringConventions) -> String {
    match &event.body {
        EventBody::StudyRegistered {
            title,
            population,
            baseline_visit,
            protocol,
            ..
        } => match protocol {
            Some(protocol) => format!(
                "study registered: {title}; population {}; baseline visit {baseline_visit}; protocol {}",
                population.key(),
                protocol.reference()
            ),
            None => format!(
                "study registered: {title}; population {}; baseline visit {baseline_visit}",
                population.key()
            ),
        },
        EventBody::ProtocolAmended { protocol } => {
            format!("protocol amended: {}", protocol.reference())
        }
        EventBody::SubjectEnrolled {
            arm,
            population,
            site,
            ..
        } => {
            let site = site
                .as_ref()
                .map(|s| format!("; site {s}"))
                .unwrap_or_default();
            match population {
                Some(p) => format!("enrolled: arm {arm}; population {}{site}", p.key()),
                None => format!("enrolled: arm {arm}{site}"),
            }
        }
        EventBody::AssessmentRecorded(assessment) => summarize_assessment(assessment, conventions),
        EventBody::AssessmentCorrected { corrected, .. } => {
            format!("corrected {}", summarize_assessment(corrected, conventions))
        }
        EventBody::AssessmentRetracted { retracts, .. } => format!("retracted {retracts}"),
        EventBody::SubjectWithdrawn { .. } => "withdrawn".to_string(),
        EventBody::StudyLocked { .. } => "study locked".to_string(),
        EventBody::StudyUnlocked { .. } => "study unlocked".to_string(),
        EventBody::StudyUnblinded { .. } => "study unblinded".to_string(),
        EventBody::DoseRecorded(Dose::StudyDrug { drug, mg_per_day }) => {
            format!("study drug {drug} {} mg/day", mg_per_day.mg_per_day())
        }
        EventBody::DoseRecorded(Dose::Glucocorticoid { drug, mg_per_day }) => format!(
            "glucocorticoid {drug} {} mg/day prednisone-equivalent",
            mg_per_day.mg_per_day()
        ),
    }
}

/// The measures of one form; totals (MMT-8, HAQ-DI, CDASI) computed by the scoring crate.
fn summarize_assessment(assessment: &Assessment, conventions: &ScoringConventions) -> String {
    use myolog_scoring::cdasi::cdasi_scores;
    use myolog_scoring::core_set::visit_haq_di;
    use myolog_scoring::mmt::mmt8_total;
    match assessment {
        Assessment::Globals {
            physician,
            patient,
            extramuscular,
        } => {
            let parts: Vec<String> = [
                ("physician", physician),
                ("patient", patient),
                ("extramuscular", extramuscular),
            ]
            .into_iter()
            .filter_map(|(name, global)| {
                global.map(|g| format!("{name} {} ({})", g.value(), g.scale().name()))
            })
            .collect();
            format!("globals: {}", parts.join("; "))
        }
        Assessment::Mmt8(mmt) => match mmt8_total(mmt) {
            Ok(score) => format!("MMT-8 total {}/{}", score.total, score.scale.max_total()),
            Err(missing) => format!(
                "MMT-8 grades, total not computable: missing {}",
                missing.missing.join(", ")
            ),
        },
        Assessment::Haq(haq) => match visit_haq_di(haq, conventions) {
            Ok(score) => format!(
                "HAQ-DI {}",
                score
                    .to_display_decimal()
                    .map(|d| d.normalize().to_string())
                    .unwrap_or_default()
            ),
            Err(reason) => format!("HAQ items, HAQ-DI not computable: {reason}"),
        },
        Assessment::Enzymes(panel) => {
            let parts: Vec<String> = panel
                .iter()
                .map(|(enzyme, m)| format!("{} {} U/L (ULN {})", enzyme.key(), m.value(), m.uln()))
                .collect();
            format!("enzymes: {}", parts.join("; "))
        }
        Assessment::Cdasi(form) => {
            let scores = cdasi_scores(form);
            format!(
                "CDASI v2 activity {}, damage {}",
                scores.activity, scores.damage
            )
        }
        Assessment::Lab(lab) => format!(
            "lab {} {} {}",
            lab.code().key(),
            lab.value(),
            lab.code().unit()
        ),
        Assessment::Stat1(stat1) => format!("skin STAT1 {} {}", stat1.kind(), stat1.value()),
    }
}

/// Writes the audit trail of the log up to `as_of` (the head when the export starts, by default).
pub fn write_audit_trail(
    log: &EventLog,
    as_of: AsOf,
    format: Format,
    out: &mut impl Write,
    progress: &mut Progress,
) -> Result<u64, AuditError> {
    let head = log.head().seq;
    let (last, until) = match as_of {
        AsOf::Head => (head, i64::MAX),
        AsOf::Time(until) => (head, until),
        AsOf::Sequence(seq) if seq > head => {
            return Err(AuditError::BeyondHead {
                requested: seq,
                head,
            });
        }
        AsOf::Sequence(seq) => (seq, i64::MAX),
    };
    let mut seqs: HashMap<String, u64> = HashMap::new();
    // Each study's conventions as its protocol versions come into force along the log.
    let mut conventions: HashMap<String, ScoringConventions> = HashMap::new();
    if format == Format::Csv {
        write_csv_row(out, &AUDIT_COLUMNS)?;
    }
    let mut written = 0;
    if last > 0 {
        for stored in log.read_range(1..=last) {
            let stored = stored?;
            // The same cut as the replay's: stop at the first event recorded after the instant.
            if stored.recorded_at_unix_nanos > until {
                break;
            }
            let event = decode_stored(&stored).map_err(|reason| AuditError::Decode {
                seq: stored.seq,
                reason,
            })?;
            match &event.body {
                EventBody::StudyRegistered {
                    protocol: Some(protocol),
                    ..
                }
                | EventBody::ProtocolAmended { protocol } => {
                    conventions.insert(event.study.to_string(), protocol.conventions().scoring());
                }
                _ => {}
            }
            let in_force = conventions
                .get(event.study.as_str())
                .copied()
                .unwrap_or_default();
            let row = audit_row(&stored, &event, &seqs, &in_force);
            seqs.insert(stored.event_id.clone(), stored.seq);
            match format {
                Format::Csv => write_csv_row(out, &row.fields())?,
                Format::Jsonl => {
                    serde_json::to_writer(&mut *out, &row.to_json())?;
                    out.write_all(b"\n")?;
                }
            }
            written += 1;
            progress.tick();
        }
    }
    out.flush()?;
    Ok(written)
}
