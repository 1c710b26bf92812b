//! Source rows -> Myolog changes. Rows are grouped by subject (one `SubjectData` block at a time, so
//! memory holds one subject, never the file), then by visit and instrument; the mapping turns each
//! value into a Myolog field, validated by the domain crate's own types (the rules the service
//! applies), and each instrument of each visit becomes one planned domain event.
//!
//! Event ids are deterministic: a SHA-256 digest of the study, subject, visit, instrument and every
//! contributing row's ODM key path with the source's audit id (Transactional files) or the value
//! (Snapshot files). Re-importing a file yields the same ids; a changed value yields another. What was
//! already sent is remembered in a [`SentLedger`]: a changed instrument becomes a correction of the
//! event sent before, a removed one a retraction, an unchanged one nothing. A bad record is reported
//! as a [`Discrepancy`] with its key path while the rest of the file goes through.

use crate::mapping::{
    EnzymePart, GlobalField, GlobalSourceScale, GottronItem, Instrument, ItemMapping, Mapping,
    PartialDates, SiteSource, SourceTimeZone, SubjectIdSource, Target, WhenAbsent,
};
use crate::odm::{
    AuditRecord, FileType, ItemValue, KeyPath, Keyed, OdmError, OdmRow, TransactionType,
};
use myolog_domain::Decimal;
use myolog_domain::cdasi::{CdasiLocationScores, CdasiV2};
use myolog_domain::enzyme::{EnzymeMeasurement, EnzymePanel, EnzymeUnit};
use myolog_domain::error::Problem;
use myolog_domain::event::{
    Assessment, ClinicalDate, Dose, EnrolmentFacts, Event, EventBody, EventId, Reason, SiteId,
    SourceAudit, SourceAuditField, StudyId, SubjectId, VisitId,
};
use myolog_domain::global::{GlobalAssessment, LikertGlobal, VasCm};
use myolog_domain::glucocorticoid::PrednisoneEquivalentDose;
use myolog_domain::haq::{Haq, HaqDiScore, HaqItemScore, HaqItems};
use myolog_domain::mmt8::{
    BilateralGrades, KendallGrade, Mmt8, MmtScale, MmtTotal, MuscleGroup, UnilateralGrades,
};
use myolog_domain::quantity::parse_exact_decimal;
use myolog_domain::score::BoundedScore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// A record that could not be imported: where, its value, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    pub path: KeyPath,
    pub value: Option<String>,
    pub problem: String,
}

/// Who changed a value in the source, when and where, from its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub user: Option<String>,
    pub location: Option<String>,
    pub timestamp: Option<SourceTimestamp>,
    pub audit_id: Option<String>,
}

/// An audit timestamp as the source wrote it, with the offset it carries or, failing that, the
/// mapping's fixed offset; with an IANA zone the local time is kept beside the zone name, unconverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTimestamp {
    pub text: String,
    pub offset: Option<String>,
    pub zone: Option<String>,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A validated domain event: an enrolment, an assessment, a correction or a dose.
    Event {
        event: Event,
        provenance: Option<Provenance>,
        sources: Vec<KeyPath>,
    },
    /// The source removed every value of an instrument already sent. The log keeps facts, so this
    /// withdraws the earlier event rather than deleting it: an `AssessmentRetracted` (see
    /// [`Change::to_event`]).
    Retraction {
        event_id: EventId,
        study: StudyId,
        subject: SubjectId,
        visit: VisitId,
        /// The date of the visit as sent with the withdrawn event.
        clinical_date: ClinicalDate,
        supersedes: EventId,
        reason: Reason,
        provenance: Option<Provenance>,
        sources: Vec<KeyPath>,
    },
}

impl Change {
    pub fn event_id(&self) -> &EventId {
        match self {
            Change::Event { event, .. } => &event.event_id,
            Change::Retraction { event_id, .. } => event_id,
        }
    }

    /// The source key paths the change was planned from.
    pub fn sources(&self) -> &[KeyPath] {
        match self {
            Change::Event { sources, .. } | Change::Retraction { sources, .. } => sources,
        }
    }

    /// The domain event to send: the planned event, or an `AssessmentRetracted` for a retraction,
    /// with the source's audit record (who, when, why, its audit id) attached. The reason stated is
    /// the correction's or retraction's own, which is the source's ReasonForChange or the stated
    /// default; a first record carries none.
    pub fn to_event(&self) -> Event {
        match self {
            Change::Event {
                event, provenance, ..
            } => {
                let reason = match &event.body {
                    EventBody::AssessmentCorrected { reason, .. } => Some(reason.as_str()),
                    _ => None,
                };
                let source = source_audit(provenance.as_ref(), reason);
                event.clone().with_source(source)
            }
            Change::Retraction {
                event_id,
                study,
                subject,
                visit,
                clinical_date,
                supersedes,
                reason,
                provenance,
                ..
            } => Event {
                event_id: event_id.clone(),
                study: study.clone(),
                subject: Some(subject.clone()),
                visit: Some(visit.clone()),
                clinical_date: *clinical_date,
                body: EventBody::AssessmentRetracted {
                    retracts: supersedes.clone(),
                    reason: reason.clone(),
                },
                source: source_audit(provenance.as_ref(), Some(reason.as_str())).map(Box::new),
            },
        }
    }
}

/// Whether two instruments hold the same field values, wherever they were read from: the same form
/// read from REDCap's ODM export and from its record JSON (whose key paths differ) is unchanged.
fn same_values(sent: &BTreeMap<String, SentField>, now: &BTreeMap<String, SentField>) -> bool {
    sent.len() == now.len()
        && sent
            .iter()
            .zip(now)
            .all(|((field, old), (again, new))| field == again && old.value == new.value)
}

/// The source audit record of a change. Text the domain would refuse as too long (a source is free
/// to write a 300-character user name) is cut at the bound rather than losing the whole record.
fn source_audit(provenance: Option<&Provenance>, reason: Option<&str>) -> Option<SourceAudit> {
    use SourceAuditField as F;
    let bounded = |field: F, text: Option<&str>| -> String {
        text.unwrap_or_default()
            .chars()
            .take(field.max_len())
            .collect()
    };
    let timestamp = provenance.and_then(|p| p.timestamp.as_ref());
    let parts = [
        (
            F::User,
            bounded(F::User, provenance.and_then(|p| p.user.as_deref())),
        ),
        (
            F::Timestamp,
            bounded(F::Timestamp, timestamp.map(|t| t.text.as_str())),
        ),
        (
            F::UtcOffset,
            bounded(F::UtcOffset, timestamp.and_then(|t| t.offset.as_deref())),
        ),
        (
            F::TimeZone,
            bounded(F::TimeZone, timestamp.and_then(|t| t.zone.as_deref())),
        ),
        (F::Reason, bounded(F::Reason, reason)),
        (
            F::SourceId,
            bounded(F::SourceId, provenance.and_then(|p| p.audit_id.as_deref())),
        ),
        (
            F::Location,
            bounded(F::Location, provenance.and_then(|p| p.location.as_deref())),
        ),
    ];
    let borrowed = parts
        .each_ref()
        .map(|(field, text)| (*field, text.as_str()));
    // Every part is within its bound, so this cannot fail; an error would drop the record only.
    SourceAudit::new(borrowed).ok().flatten()
}

/// One value already sent, with the source row it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentField {
    pub value: String,
    pub source: String,
}

/// The last event sent for one instrument of one visit (or for an enrolment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentEntry {
    pub event_id: String,
    /// Myolog field (mapping `field` text) -> value text.
    pub fields: BTreeMap<String, SentField>,
    pub clinical_date: Option<String>,
}

/// What this bridge has sent, per study, subject, visit and instrument: the state needed to turn a
/// change in the source into a correction of the right event. Kept by the caller between imports
/// (`to_json` / `from_json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SentLedger {
    entries: BTreeMap<String, SentEntry>,
    /// Each visit's clinical date as last read, so a later transaction without the date item can
    /// still be dated.
    #[serde(default)]
    visit_dates: BTreeMap<String, String>,
}

fn ledger_key(study: &str, subject: &str, visit: &str, instrument: &str) -> String {
    format!("{study}\u{1f}{subject}\u{1f}{visit}\u{1f}{instrument}")
}

const ENROLMENT: &str = "enrolment";

impl SentLedger {
    pub fn get(
        &self,
        study: &str,
        subject: &str,
        visit: &str,
        instrument: &str,
    ) -> Option<&SentEntry> {
        self.entries
            .get(&ledger_key(study, subject, visit, instrument))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn to_json(&self) -> String {
        // String-keyed maps of strings always serialise; the default is never taken.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|error| error.to_string())
    }

    /// Undoes what planning `change` did to this ledger, from the ledger as it was before (the
    /// server refused the change, so it must not count as sent): the instrument entry the change
    /// wrote, or, for a retraction, the entry it removed, is put back as it was. Replanning the same
    /// source then plans the same change again, with the same id.
    pub fn revert(&mut self, previous: &SentLedger, change: &Change) {
        let id = change.event_id().as_str();
        let retracted = match change {
            Change::Retraction { supersedes, .. } => Some(supersedes.as_str()),
            Change::Event { .. } => None,
        };
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.event_id == id)
            .map(|(key, _)| key.clone())
            .chain(
                previous
                    .entries
                    .iter()
                    .filter(|(key, entry)| {
                        Some(entry.event_id.as_str()) == retracted
                            && !self.entries.contains_key(*key)
                    })
                    .map(|(key, _)| key.clone()),
            )
            .collect();
        for key in keys {
            match previous.entries.get(&key) {
                Some(entry) => {
                    self.entries.insert(key, entry.clone());
                }
                None => {
                    self.entries.remove(&key);
                }
            }
        }
    }

    /// The entries of one subject, as (visit, instrument, entry).
    fn subject_entries<'a>(
        &'a self,
        study: &'a str,
        subject: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a SentEntry)> + 'a {
        self.entries.iter().filter_map(move |(key, entry)| {
            let mut parts = key.split('\u{1f}');
            let (Some(s), Some(j), Some(visit), Some(instrument)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            (s == study && j == subject).then_some((visit, instrument, entry))
        })
    }

    fn visit_date(&self, study: &str, subject: &str, visit: &str) -> Option<ClinicalDate> {
        self.visit_dates
            .get(&ledger_key(study, subject, visit, ""))
            .and_then(|date| ClinicalDate::parse(date).ok())
    }
}

/// The result of planning one source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub discrepancies: Vec<Discrepancy>,
    /// Instruments whose content was already sent with the same id or the same values.
    pub unchanged: usize,
    /// Rows with `TransactionType="Context"`: read, never applied.
    pub context_rows: usize,
}

/// Plans a whole source. A reading error discards everything: a truncated file must not be taken for
/// the data's current state.
pub fn plan<I>(rows: I, mapping: &Mapping, ledger: &mut SentLedger) -> Result<Plan, OdmError>
where
    I: IntoIterator<Item = Result<OdmRow, OdmError>>,
{
    let mut working = ledger.clone();
    let mut planner = Planner::new(mapping, &mut working);
    for row in rows {
        planner.push(row?);
    }
    let plan = planner.finish();
    *ledger = working;
    Ok(plan)
}

/// The incremental planner: push rows in source order, take the plan at the end.
#[derive(Debug)]
pub struct Planner<'m> {
    mapping: &'m Mapping,
    ledger: &'m mut SentLedger,
    block: Vec<OdmRow>,
    plan: Plan,
}

/// One form occurrence: event and form with their repeat keys.
type FormInstance = (Option<Keyed>, Option<Keyed>);

/// A mapped field value of this block, with where it came from.
#[derive(Debug, Clone)]
struct FieldChange {
    /// `None`: the value was removed (or is not done).
    value: Option<String>,
    row: OdmRow,
}

impl<'m> Planner<'m> {
    pub fn new(mapping: &'m Mapping, ledger: &'m mut SentLedger) -> Self {
        Self {
            mapping,
            ledger,
            block: Vec::new(),
            plan: Plan::default(),
        }
    }

    /// Adds a row; a subject's rows are planned when the next subject starts.
    pub fn push(&mut self, row: OdmRow) {
        if let Some(last) = self.block.last()
            && (last.subject_block != row.subject_block
                || last.study_oid != row.study_oid
                || last.key.subject_key != row.key.subject_key)
        {
            self.flush();
        }
        self.block.push(row);
    }

    pub fn finish(mut self) -> Plan {
        self.flush();
        self.plan
    }

    fn discrepancy(&mut self, path: &KeyPath, value: Option<&str>, problem: impl Into<String>) {
        self.plan.discrepancies.push(Discrepancy {
            path: path.clone(),
            value: value.map(str::to_string),
            problem: problem.into(),
        });
    }

    fn flush(&mut self) {
        let rows = std::mem::take(&mut self.block);
        let Some(first) = rows.first() else {
            return;
        };
        let subject_path = KeyPath {
            subject_key: first.key.subject_key.clone(),
            ..KeyPath::default()
        };
        let (subject_key, what) = match self.mapping.subject_id {
            SubjectIdSource::SubjectKey => (
                first.key.subject_key.clone().unwrap_or_default(),
                "SubjectKey",
            ),
            SubjectIdSource::SubjectName => match &first.subject_name {
                Some(name) => (name.clone(), "mdsol:SubjectName"),
                None => {
                    self.discrepancy(
                        &subject_path,
                        None,
                        "mdsol:SubjectName is absent, and study.subject_id = \"subject_name\" \
                         takes the subject id from it",
                    );
                    return;
                }
            },
        };
        let subject = match SubjectId::new(subject_key.as_str()) {
            Ok(subject) => subject,
            Err(problem) => {
                self.discrepancy(
                    &subject_path,
                    Some(&subject_key),
                    format!("{what} is not a Myolog subject id: {problem}"),
                );
                return;
            }
        };
        if let Some(expected) = &self.mapping.source_study_oid
            && first.study_oid != expected.as_str()
        {
            let problem = format!(
                "StudyOID {} is not this mapping's study (study.source_oid = {expected:?})",
                first.study_oid
            );
            self.discrepancy(&subject_path, Some(&first.study_oid.clone()), problem);
            return;
        }
        let file_type = first.file_type;
        let mut applied = Vec::new();
        let mut removed_containers = Vec::new();
        for row in rows {
            match row.transaction {
                Some(TransactionType::Context) => self.plan.context_rows += 1,
                _ if row.key.item_oid.is_none() => removed_containers.push(row),
                _ => applied.push(row),
            }
        }
        // Forms in source order, each with its rows.
        let mut forms: Vec<(FormInstance, Vec<OdmRow>)> = Vec::new();
        for row in applied {
            let instance = (row.key.study_event.clone(), row.key.form.clone());
            match forms.iter_mut().find(|(key, _)| *key == instance) {
                Some((_, rows)) => rows.push(row),
                None => forms.push((instance, vec![row])),
            }
        }
        let mut visit_rows: BTreeMap<VisitId, Vec<OdmRow>> = BTreeMap::new();
        let mut subject_rows: Vec<OdmRow> = Vec::new();
        for (_, rows) in forms {
            let Some(rows) = self.importable_form(rows) else {
                continue;
            };
            subject_rows.extend(rows.iter().cloned());
            if let Some(visit) = self.form_visit(&rows) {
                visit_rows.entry(visit).or_default().extend(rows);
            }
        }
        self.enrolment(&subject, &subject_path, file_type, &subject_rows);
        let mut removals: BTreeMap<(String, String), Vec<(String, OdmRow)>> = BTreeMap::new();
        for container in &removed_containers {
            let prefix = format!("{}/", container.key);
            for (visit, instrument, entry) in self
                .ledger
                .subject_entries(self.mapping.study.as_str(), subject.as_str())
            {
                for (field, sent) in &entry.fields {
                    if sent.source.starts_with(&prefix) {
                        removals
                            .entry((visit.to_string(), instrument.to_string()))
                            .or_default()
                            .push((field.clone(), container.clone()));
                    }
                }
            }
        }
        let mut visits: BTreeSet<String> = visit_rows.keys().map(|v| v.to_string()).collect();
        visits.extend(removals.keys().map(|(visit, _)| visit.clone()));
        for visit_text in visits {
            let Ok(visit) = VisitId::new(&visit_text) else {
                continue;
            };
            let rows = visit_rows.remove(&visit).unwrap_or_default();
            self.visit(&subject, &visit, file_type, &rows, &mut removals);
        }
    }

    /// The form's rows if its status is imported; the status item itself is dropped.
    fn importable_form(&mut self, rows: Vec<OdmRow>) -> Option<Vec<OdmRow>> {
        let rules = &self.mapping.form_status;
        let status_row = rows.iter().find(|row| {
            row.key.item_oid.as_deref().is_some_and(|oid| {
                oid.ends_with(rules.suffix.as_str()) && !self.mapping.items.contains_key(oid)
            })
        });
        let status = status_row
            .and_then(|row| row.value.text().map(str::to_string))
            .or_else(|| {
                rows.iter()
                    .find_map(|row| row.form_status.as_deref().map(str::to_string))
            });
        let form_path = rows
            .first()
            .map(|row| KeyPath {
                item_group: None,
                item_oid: None,
                ..row.key.clone()
            })
            .unwrap_or_default();
        match status {
            Some(status) if !rules.imported.contains(status.trim()) => {
                let problem = format!(
                    "form status {status:?} is not imported (imported: {})",
                    rules
                        .imported
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.discrepancy(&form_path, Some(&status), problem);
                None
            }
            None if rules.when_absent == WhenAbsent::Skip => {
                self.discrepancy(
                    &form_path,
                    None,
                    "the form states no status and form_status.when_absent = \"skip\"",
                );
                None
            }
            _ => {
                let suffix = rules.suffix.clone();
                Some(
                    rows.into_iter()
                        .filter(|row| {
                            !row.key.item_oid.as_deref().is_some_and(|oid| {
                                oid.ends_with(suffix.as_str())
                                    && !self.mapping.items.contains_key(oid)
                            })
                        })
                        .collect(),
                )
            }
        }
    }

    /// The visit a form belongs to, from its event or from the visit item; reported when neither names one.
    fn form_visit(&mut self, rows: &[OdmRow]) -> Option<VisitId> {
        let first = rows.first()?;
        let form_path = KeyPath {
            item_group: None,
            item_oid: None,
            ..first.key.clone()
        };
        let rules = &self.mapping.visits;
        if let Some(item) = &rules.visit_item
            && let Some(row) = rows
                .iter()
                .find(|row| row.key.item_oid.as_deref() == Some(item.as_str()))
        {
            let code = row
                .value
                .text()
                .map(str::trim)
                .unwrap_or_default()
                .to_string();
            return match rules.visit_codes.get(&code) {
                Some(visit) => Some(visit.clone()),
                None => {
                    let path = row.key.clone();
                    self.discrepancy(
                        &path,
                        Some(&code),
                        format!("visit code {code:?} is not in visits.visit_codes"),
                    );
                    None
                }
            };
        }
        if let Some(event) = &first.key.study_event {
            if let Some(visit) = event_visit(&rules.events, event) {
                return Some(visit);
            }
            // Enrolment-only events need no visit: report only when a mapped item is here.
            let carries_items = rows.iter().any(|row| {
                row.key
                    .item_oid
                    .as_deref()
                    .is_some_and(|oid| self.mapping.items.contains_key(oid))
            });
            if carries_items {
                let problem = match event.repeat_key.as_deref() {
                    Some(repeat) if !is_first_occurrence(&event.oid, repeat) => format!(
                        "occurrence {repeat} of StudyEventOID {} is not mapped to a visit \
                         (visits.events: \"{}#{repeat}\")",
                        event.oid, event.oid
                    ),
                    _ => format!(
                        "StudyEventOID {} is not mapped to a visit (visits.events)",
                        event.oid
                    ),
                };
                self.discrepancy(&form_path, None, problem);
            }
            return None;
        }
        let carries_items = rows.iter().any(|row| {
            row.key
                .item_oid
                .as_deref()
                .is_some_and(|oid| self.mapping.items.contains_key(oid))
        });
        if carries_items {
            self.discrepancy(
                &form_path,
                None,
                "the form has no event and no visit item (visits.visit_item) names its visit",
            );
        }
        None
    }

    fn clinical_date(&mut self, row: &OdmRow) -> Option<ClinicalDate> {
        let text = row.value.text().map(str::trim).unwrap_or_default();
        match parse_clinical_date(text, self.mapping.visits.partial_dates) {
            Ok(date) => Some(date),
            Err(problem) => {
                let path = row.key.clone();
                self.discrepancy(&path, Some(text), problem);
                None
            }
        }
    }

    fn enrolment(
        &mut self,
        subject: &SubjectId,
        subject_path: &KeyPath,
        file_type: FileType,
        rows: &[OdmRow],
    ) {
        let Some(rules) = self.mapping.enrolment.clone() else {
            return;
        };
        let find = |oid: &str| {
            rows.iter()
                .rev()
                .find(|row| row.key.item_oid.as_deref() == Some(oid))
        };
        let Some(arm_row) = find(&rules.arm_item) else {
            return;
        };
        let Some(arm_code) = arm_row.value.text().map(str::trim) else {
            return;
        };
        let arm = match rules.arm_codes.get(arm_code) {
            Some(arm) => arm.clone(),
            None if rules.arm_codes.is_empty() => arm_code.to_string(),
            None => {
                let path = arm_row.key.clone();
                self.discrepancy(
                    &path,
                    Some(arm_code),
                    "arm code is not in enrolment.arm_codes",
                );
                return;
            }
        };
        let Some(date_row) = find(&rules.date_item) else {
            self.discrepancy(
                subject_path,
                None,
                format!(
                    "enrolment: no {} (enrolment.date_item) for the subject",
                    rules.date_item
                ),
            );
            return;
        };
        let Some(date) = self.clinical_date(date_row) else {
            return;
        };
        let site_text = match rules.site {
            SiteSource::None => None,
            SiteSource::SiteRef => arm_row.site.as_deref().map(str::to_string),
            SiteSource::Item => rules
                .site_item
                .as_deref()
                .and_then(find)
                .and_then(|row| row.value.text().map(|text| text.trim().to_string())),
        };
        let site = match site_text {
            None => None,
            Some(text) => match rules.site_codes.get(&text) {
                Some(site) => Some(site.clone()),
                None => match SiteId::new(&text) {
                    Ok(site) => Some(site),
                    Err(problem) => {
                        self.discrepancy(subject_path, Some(&text), format!("site: {problem}"));
                        return;
                    }
                },
            },
        };
        let mut sources: Vec<&OdmRow> = vec![arm_row, date_row];
        sources.dedup_by(|a, b| a.key == b.key);
        let event_id = event_id(
            self.mapping.study.as_str(),
            subject.as_str(),
            ENROLMENT,
            ENROLMENT,
            file_type,
            sources.iter().copied(),
        );
        let Ok(event_id) = event_id else {
            return;
        };
        let study = self.mapping.study.as_str().to_string();
        if let Some(sent) = self
            .ledger
            .get(&study, subject.as_str(), ENROLMENT, ENROLMENT)
        {
            if sent.event_id != event_id.as_str() {
                self.discrepancy(
                    subject_path,
                    Some(&arm),
                    "the enrolment changed after it was sent; Myolog has no enrolment correction, \
                     so the change is not sent",
                );
            } else {
                self.plan.unchanged += 1;
            }
            return;
        }
        let body = EventBody::SubjectEnrolled {
            arm: arm.clone(),
            population: rules.population,
            site,
            facts: EnrolmentFacts::default(),
        };
        match Event::new(
            event_id.clone(),
            self.mapping.study.clone(),
            Some(subject.clone()),
            None,
            date,
            body,
        ) {
            Ok(event) => {
                let mut fields = BTreeMap::new();
                fields.insert(
                    "arm".to_string(),
                    SentField {
                        value: arm,
                        source: arm_row.key.to_string(),
                    },
                );
                self.ledger.entries.insert(
                    ledger_key(&study, subject.as_str(), ENROLMENT, ENROLMENT),
                    SentEntry {
                        event_id: event_id.as_str().to_string(),
                        fields,
                        clinical_date: Some(date.to_string()),
                    },
                );
                self.plan.changes.push(Change::Event {
                    provenance: provenance(arm_row.audit.as_ref(), &self.mapping.time_zone),
                    sources: sources.iter().map(|row| row.key.clone()).collect(),
                    event,
                });
            }
            Err((field, problem)) => {
                self.discrepancy(subject_path, None, format!("{}: {problem}", field.key()));
            }
        }
    }

    /// Maps one row's value to its field text, or reports why it cannot be.
    fn field_value(&mut self, item: &ItemMapping, row: &OdmRow) -> Result<Option<String>, ()> {
        let raw = match &row.value {
            ItemValue::Value(text) => text.trim(),
            ItemValue::Empty | ItemValue::Absent => return Ok(None),
            ItemValue::IsNull if self.mapping.is_null_not_done => return Ok(None),
            ItemValue::IsNull => {
                let path = row.key.clone();
                self.discrepancy(&path, None, "IsNull=\"Yes\" and not_done.is_null = false");
                return Err(());
            }
        };
        if self.mapping.not_done.contains(raw) {
            return Ok(None);
        }
        let coded = if item.codes.is_empty() {
            raw.to_string()
        } else {
            match item.codes.get(raw) {
                Some(value) => value.clone(),
                None => {
                    let path = row.key.clone();
                    let allowed = item.codes.keys().cloned().collect::<Vec<_>>().join(", ");
                    self.discrepancy(
                        &path,
                        Some(raw),
                        format!("code is not in the mapping's codes ({allowed})"),
                    );
                    return Err(());
                }
            }
        };
        if self.mapping.not_done.contains(coded.as_str()) || coded.is_empty() {
            return Ok(None);
        }
        let factor = if item.units.is_empty() {
            Decimal::ONE
        } else {
            let unit = row.unit.as_deref().unwrap_or_default();
            match item.units.get(unit) {
                Some(factor) => *factor,
                None => {
                    let path = row.key.clone();
                    let listed = item.units.keys().cloned().collect::<Vec<_>>().join(", ");
                    if unit.is_empty() {
                        let problem = format!(
                            "no unit is given and the mapping converts only from {listed} \
                             (add \"\" = \"1\" to its units to take such values as they are)"
                        );
                        self.discrepancy(&path, Some(raw), problem);
                        return Err(());
                    }
                    let problem =
                        format!("unit {unit:?} has no conversion in the mapping (units: {listed})");
                    self.discrepancy(&path, Some(raw), problem);
                    return Err(());
                }
            }
        };
        match field_text(item, &coded, factor, self.mapping) {
            Ok(text) => Ok(Some(text)),
            Err(problem) => {
                let path = row.key.clone();
                self.discrepancy(&path, Some(raw), format!("{}: {problem}", item.target));
                Err(())
            }
        }
    }

    fn visit(
        &mut self,
        subject: &SubjectId,
        visit: &VisitId,
        file_type: FileType,
        rows: &[OdmRow],
        removals: &mut BTreeMap<(String, String), Vec<(String, OdmRow)>>,
    ) {
        let study = self.mapping.study.as_str().to_string();
        let date_item = self.mapping.visits.date_item.clone();
        let date_row = rows.iter().rev().find(|row| {
            row.key.item_oid.as_deref() == Some(date_item.as_str()) && row.value.text().is_some()
        });
        let date = match date_row {
            Some(row) => self.clinical_date(row),
            None => self
                .ledger
                .visit_date(&study, subject.as_str(), visit.as_str()),
        };
        if let (Some(date), Some(_)) = (date, date_row) {
            self.ledger.visit_dates.insert(
                ledger_key(&study, subject.as_str(), visit.as_str(), ""),
                date.to_string(),
            );
        }
        let mut held: BTreeMap<Instrument, KeyPath> = BTreeMap::new();
        let mut by_instrument: BTreeMap<Instrument, BTreeMap<Target, FieldChange>> =
            BTreeMap::new();
        let consumed: BTreeSet<&str> = [
            Some(date_item.as_str()),
            self.mapping.visits.visit_item.as_deref(),
            self.mapping
                .enrolment
                .as_ref()
                .map(|rules| rules.arm_item.as_str()),
            self.mapping
                .enrolment
                .as_ref()
                .map(|rules| rules.date_item.as_str()),
            self.mapping
                .enrolment
                .as_ref()
                .and_then(|rules| rules.site_item.as_deref()),
        ]
        .into_iter()
        .flatten()
        .collect();
        for row in rows {
            let Some(oid) = row.key.item_oid.as_deref() else {
                continue;
            };
            let Some(item) = self.mapping.items.get(oid).cloned() else {
                if !consumed.contains(oid) && !self.mapping.ignore.contains(oid) {
                    let path = row.key.clone();
                    self.discrepancy(
                        &path,
                        row.value.text(),
                        "item is not mapped (add it to items or ignore)",
                    );
                }
                continue;
            };
            let removed = row.transaction == Some(TransactionType::Remove);
            let value = if removed {
                None
            } else {
                match self.field_value(&item, row) {
                    Ok(value) => value,
                    Err(()) => {
                        held.entry(item.target.instrument())
                            .or_insert_with(|| KeyPath {
                                item_group: None,
                                item_oid: None,
                                ..row.key.clone()
                            });
                        continue;
                    }
                }
            };
            let fields = by_instrument.entry(item.target.instrument()).or_default();
            if file_type == FileType::Snapshot
                && let Some(earlier) = fields.get(&item.target)
                && earlier.value != value
            {
                let problem = format!(
                    "{} is given twice at visit {visit}: also by {}; the first is kept",
                    item.target, earlier.row.key
                );
                let path = row.key.clone();
                self.discrepancy(&path, row.value.text(), problem);
                continue;
            }
            fields.insert(
                item.target,
                FieldChange {
                    value,
                    row: row.clone(),
                },
            );
        }
        // A form with a bad value is held whole: sending the rest would replace a complete form
        // already sent with a partial one.
        for (instrument, form_path) in held {
            if by_instrument.remove(&instrument).is_some() {
                let problem = format!(
                    "the visit's {} values are held until the value(s) reported above are fixed",
                    instrument.key()
                );
                self.discrepancy(&form_path, None, problem);
            }
        }
        let instruments: BTreeSet<String> = by_instrument
            .keys()
            .map(|instrument| instrument.key().to_string())
            .chain(
                removals
                    .keys()
                    .filter(|(v, _)| v == visit.as_str())
                    .map(|(_, instrument)| instrument.clone()),
            )
            .collect();
        for instrument_key in instruments {
            let Some(instrument) = [
                Instrument::Globals,
                Instrument::Mmt8,
                Instrument::Haq,
                Instrument::Cdasi,
                Instrument::Enzymes,
                Instrument::Prednisone,
            ]
            .into_iter()
            .find(|instrument| instrument.key() == instrument_key) else {
                continue;
            };
            let changes = by_instrument.remove(&instrument).unwrap_or_default();
            let container_removals = removals
                .remove(&(visit.as_str().to_string(), instrument_key.clone()))
                .unwrap_or_default();
            self.instrument(
                subject,
                visit,
                date,
                file_type,
                instrument,
                changes,
                container_removals,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn instrument(
        &mut self,
        subject: &SubjectId,
        visit: &VisitId,
        date: Option<ClinicalDate>,
        file_type: FileType,
        instrument: Instrument,
        changes: BTreeMap<Target, FieldChange>,
        container_removals: Vec<(String, OdmRow)>,
    ) {
        let study = self.mapping.study.as_str().to_string();
        let prior = self
            .ledger
            .get(&study, subject.as_str(), visit.as_str(), instrument.key())
            .cloned();
        // Snapshot: the file is the instrument's whole state. Transactional: changes on what was sent.
        let mut fields: BTreeMap<String, SentField> = match (&prior, file_type) {
            (Some(prior), FileType::Transactional) => prior.fields.clone(),
            _ => BTreeMap::new(),
        };
        let mut sources: Vec<OdmRow> = Vec::new();
        for (target, change) in &changes {
            match &change.value {
                Some(value) => {
                    fields.insert(
                        target.to_string(),
                        SentField {
                            value: value.clone(),
                            source: change.row.key.to_string(),
                        },
                    );
                }
                None => {
                    fields.remove(&target.to_string());
                }
            }
            sources.push(change.row.clone());
        }
        for (field, container) in &container_removals {
            fields.remove(field);
            sources.push(container.clone());
        }
        let Some(first_source) = sources.first() else {
            return;
        };
        let visit_path = KeyPath {
            form: None,
            item_group: None,
            item_oid: None,
            ..first_source.key.clone()
        };
        let latest_audit = sources.iter().rev().find_map(|row| row.audit.clone());
        let provenance = provenance(latest_audit.as_ref(), &self.mapping.time_zone);
        let reason_text = sources
            .iter()
            .rev()
            .find_map(|row| {
                row.audit
                    .as_ref()
                    .and_then(|audit| audit.reason_for_change.clone())
                    .filter(|reason| !reason.trim().is_empty())
            })
            .unwrap_or_else(|| self.mapping.default_reason.clone());
        // The visit's date is part of what is sent: a corrected date is a correction too.
        let date_text = date.map(|date| date.to_string());
        let event_id = event_id(
            &study,
            subject.as_str(),
            &format!("{visit}@{}", date_text.as_deref().unwrap_or_default()),
            instrument.key(),
            file_type,
            sources.iter(),
        );
        let Ok(event_id) = event_id else {
            return;
        };
        if let Some(prior) = &prior
            && (prior.event_id == event_id.as_str()
                || (same_values(&prior.fields, &fields) && prior.clinical_date == date_text))
        {
            self.plan.unchanged += 1;
            return;
        }
        let source_paths: Vec<KeyPath> = sources.iter().map(|row| row.key.clone()).collect();
        let reason = match Reason::new(reason_text.clone()) {
            Ok(reason) => reason,
            Err(problem) => {
                self.discrepancy(
                    &visit_path,
                    Some(&reason_text),
                    format!("reason for change: {problem}"),
                );
                return;
            }
        };
        if fields.is_empty() {
            // Nothing left: a retraction of what was sent, or nothing to send at all.
            if let Some(prior) = prior {
                let Ok(supersedes) = EventId::new(&prior.event_id) else {
                    self.discrepancy(
                        &visit_path,
                        Some(&prior.event_id),
                        "the ledger holds an invalid event id",
                    );
                    return;
                };
                // The retraction is dated as what it withdraws: the visit's date as sent.
                let Some(clinical_date) = date.or_else(|| {
                    prior
                        .clinical_date
                        .as_deref()
                        .and_then(|date| ClinicalDate::parse(date).ok())
                }) else {
                    self.discrepancy(
                        &visit_path,
                        None,
                        format!(
                            "visit {visit} has no clinical date to date the retraction of {supersedes}"
                        ),
                    );
                    return;
                };
                self.ledger.entries.remove(&ledger_key(
                    &study,
                    subject.as_str(),
                    visit.as_str(),
                    instrument.key(),
                ));
                self.plan.changes.push(Change::Retraction {
                    event_id,
                    study: self.mapping.study.clone(),
                    subject: subject.clone(),
                    visit: visit.clone(),
                    clinical_date,
                    supersedes,
                    reason,
                    provenance,
                    sources: source_paths,
                });
            }
            return;
        }
        let Some(date) = date else {
            self.discrepancy(
                &visit_path,
                None,
                format!(
                    "visit {visit} has no clinical date ({} is absent or unusable); its {} values wait",
                    self.mapping.visits.date_item,
                    instrument.key()
                ),
            );
            return;
        };
        let built = build_instrument(instrument, &fields, self.mapping);
        let body = match built {
            Ok(Built::Assessment(assessment)) => match &prior {
                None => EventBody::AssessmentRecorded(assessment),
                Some(prior) => match EventId::new(&prior.event_id) {
                    Ok(supersedes) => EventBody::AssessmentCorrected {
                        supersedes,
                        reason,
                        corrected: assessment,
                    },
                    Err(_) => {
                        self.discrepancy(
                            &visit_path,
                            Some(&prior.event_id),
                            "the ledger holds an invalid event id",
                        );
                        return;
                    }
                },
            },
            Ok(Built::Dose(dose)) => {
                if prior.is_some() {
                    self.discrepancy(
                        &visit_path,
                        Some(&dose.mg_per_day().to_string()),
                        "the dose changed after it was sent; Myolog has no dose correction, so the \
                         change is not sent",
                    );
                    return;
                }
                EventBody::DoseRecorded(dose)
            }
            Err(problem) => {
                let paths: Vec<String> =
                    fields.values().map(|field| field.source.clone()).collect();
                let problem = format!(
                    "{}: {problem} (from {})",
                    instrument.key(),
                    paths.join(", ")
                );
                self.discrepancy(&visit_path, None, problem);
                return;
            }
        };
        match Event::new(
            event_id.clone(),
            self.mapping.study.clone(),
            Some(subject.clone()),
            Some(visit.clone()),
            date,
            body,
        ) {
            Ok(event) => {
                self.ledger.entries.insert(
                    ledger_key(&study, subject.as_str(), visit.as_str(), instrument.key()),
                    SentEntry {
                        event_id: event_id.as_str().to_string(),
                        fields,
                        clinical_date: Some(date.to_string()),
                    },
                );
                self.plan.changes.push(Change::Event {
                    event,
                    provenance,
                    sources: source_paths,
                });
            }
            Err((field, problem)) => {
                self.discrepancy(&visit_path, None, format!("{}: {problem}", field.key()));
            }
        }
    }
}

/// Whether a repeat key names an event's first occurrence: absent, `1`, or Rave's `OID[1]`.
fn is_first_occurrence(oid: &str, repeat: &str) -> bool {
    repeat == "1" || repeat == format!("{oid}[1]")
}

/// The visit of an event occurrence: `OID#RepeatKey` names one occurrence; `OID` names the first.
fn event_visit(events: &BTreeMap<String, VisitId>, event: &Keyed) -> Option<VisitId> {
    if let Some(repeat) = &event.repeat_key {
        if let Some(visit) = events.get(&format!("{}#{repeat}", event.oid)) {
            return Some(visit.clone());
        }
        if !is_first_occurrence(&event.oid, repeat) {
            return None;
        }
    }
    events.get(event.oid.as_str()).cloned()
}

/// A clinical date from the visit date item: a calendar date as written. A datetime keeps its date
/// part as written (never shifted through a time zone); a partial date follows the mapping's rule.
pub fn parse_clinical_date(text: &str, partial: PartialDates) -> Result<ClinicalDate, String> {
    let date_part = match text.as_bytes().get(10) {
        Some(b'T' | b' ') => text.get(..10).unwrap_or(text),
        _ => text,
    };
    if let Ok(date) = ClinicalDate::parse(date_part) {
        return Ok(date);
    }
    let bytes = date_part.as_bytes();
    let digits = |part: Option<&str>| {
        part.filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
    };
    let partial_parts = match bytes.len() {
        4 => digits(date_part.get(..4)).map(|year| (year, None)),
        7 if bytes[4] == b'-' => digits(date_part.get(..4))
            .zip(digits(date_part.get(5..7)))
            .map(|(year, month)| (year, Some(month))),
        _ => None,
    };
    match (partial_parts, partial) {
        (Some((year, month)), PartialDates::FirstDay) => {
            let month =
                u8::try_from(month.unwrap_or(1)).map_err(|_| format!("{text:?} is not a date"))?;
            ClinicalDate::new(year, month, 1).map_err(|problem| problem.to_string())
        }
        (Some(_), PartialDates::Reject) => Err(format!(
            "{text:?} is a partial date; visits.partial_dates = \"reject\" (set \"first_day\" to accept)"
        )),
        (None, _) => Err(format!("{text:?} is not a date (YYYY-MM-DD)")),
    }
}

fn provenance(audit: Option<&AuditRecord>, zone: &SourceTimeZone) -> Option<Provenance> {
    let audit = audit?;
    let timestamp = audit.date_time_stamp.as_ref().map(|text| {
        let stated = stated_offset(text);
        match (stated, zone) {
            (Some(offset), _) => SourceTimestamp {
                text: text.clone(),
                offset: Some(offset),
                zone: None,
            },
            (None, SourceTimeZone::Fixed(offset)) => SourceTimestamp {
                text: text.clone(),
                offset: Some(offset.clone()),
                zone: None,
            },
            (None, SourceTimeZone::Iana(name)) => SourceTimestamp {
                text: text.clone(),
                offset: None,
                zone: Some(name.clone()),
            },
        }
    });
    Some(Provenance {
        user: audit.user_oid.as_deref().map(str::to_string),
        location: audit.location_oid.as_deref().map(str::to_string),
        timestamp,
        audit_id: audit.audit_id().map(str::to_string),
    })
}

/// The UTC offset an ISO 8601 datetime states (`Z`, `+01:00`, `-0500`), if any.
fn stated_offset(text: &str) -> Option<String> {
    let time = text.split_once('T').map(|(_, time)| time)?;
    if time.ends_with('Z') {
        return Some("Z".to_string());
    }
    let sign = time.rfind(['+', '-'])?;
    let offset = time.get(sign..)?;
    let digits: String = offset
        .chars()
        .skip(1)
        .filter(char::is_ascii_digit)
        .collect();
    (digits.len() == 4 && offset.len() <= 6).then(|| offset.to_string())
}

/// Plans the withdrawal of everything sent from a source record that the source deleted: one
/// `AssessmentRetracted` per assessment form the ledger holds for `subject`, each with `reason`
/// (which names the source's action, user and time) and the source's audit record. The log keeps
/// the earlier values; nothing is removed from it. What Myolog cannot retract (an enrolment, a
/// dose) is reported as a discrepancy beside the retractions, never dropped silently. Planning the
/// same deletion again plans and reports nothing: the retracted forms leave the ledger, and a subject
/// with no form left to retract has nothing new to say.
pub fn plan_subject_removal(
    mapping: &Mapping,
    ledger: &mut SentLedger,
    subject_key: &str,
    reason: &str,
    audit: Option<&AuditRecord>,
) -> Plan {
    let mut plan = Plan::default();
    let study = mapping.study.as_str().to_string();
    let subject_path = KeyPath {
        subject_key: Some(subject_key.into()),
        ..KeyPath::default()
    };
    let problem = |plan: &mut Plan, value: Option<&str>, text: String| {
        plan.discrepancies.push(Discrepancy {
            path: subject_path.clone(),
            value: value.map(str::to_string),
            problem: text,
        });
    };
    let (subject, reason) = match (SubjectId::new(subject_key), Reason::new(reason.to_string())) {
        (Ok(subject), Ok(reason)) => (subject, reason),
        (Err(error), _) => {
            problem(
                &mut plan,
                Some(subject_key),
                format!("not a Myolog subject id: {error}"),
            );
            return plan;
        }
        (_, Err(error)) => {
            problem(
                &mut plan,
                Some(reason),
                format!("reason for the retraction: {error}"),
            );
            return plan;
        }
    };
    let provenance = provenance(audit, &mapping.time_zone);
    let entries: Vec<(String, String, SentEntry)> = ledger
        .subject_entries(&study, subject_key)
        .map(|(visit, instrument, entry)| {
            (visit.to_string(), instrument.to_string(), entry.clone())
        })
        .collect();
    let retractable =
        |instrument: &str| matches!(instrument, "globals" | "mmt8" | "haq" | "cdasi" | "enzymes");
    if !entries
        .iter()
        .any(|(_, instrument, _)| retractable(instrument))
    {
        return plan;
    }
    for (visit_text, instrument, entry) in entries {
        let retractable = retractable(&instrument);
        if !retractable {
            problem(
                &mut plan,
                Some(&entry.event_id),
                format!(
                    "the source deleted the record, but Myolog cannot retract its {instrument} \
                     ({}); it stays as sent",
                    entry.event_id
                ),
            );
            continue;
        }
        let (Ok(visit), Ok(supersedes)) =
            (VisitId::new(&visit_text), EventId::new(&entry.event_id))
        else {
            problem(
                &mut plan,
                Some(&entry.event_id),
                "the ledger holds an invalid visit or event id".into(),
            );
            continue;
        };
        let Some(clinical_date) = entry
            .clinical_date
            .as_deref()
            .and_then(|date| ClinicalDate::parse(date).ok())
        else {
            problem(
                &mut plan,
                Some(&entry.event_id),
                format!("visit {visit} has no clinical date to date the retraction"),
            );
            continue;
        };
        let Ok(event_id) = event_id(
            &study,
            subject_key,
            &format!("{visit}@deleted:{supersedes}"),
            &instrument,
            FileType::Snapshot,
            std::iter::empty(),
        ) else {
            continue;
        };
        ledger
            .entries
            .remove(&ledger_key(&study, subject_key, &visit_text, &instrument));
        plan.changes.push(Change::Retraction {
            event_id,
            study: mapping.study.clone(),
            subject: subject.clone(),
            visit,
            clinical_date,
            supersedes,
            reason: reason.clone(),
            provenance: provenance.clone(),
            sources: vec![subject_path.clone()],
        });
    }
    plan
}

/// The subjects the ledger holds anything for (sent by an import or the bridge).
impl SentLedger {
    pub fn subjects(&self, study: &str) -> BTreeSet<String> {
        self.entries
            .keys()
            .filter_map(|key| {
                let mut parts = key.split('\u{1f}');
                (parts.next() == Some(study)).then(|| parts.next().map(str::to_string))?
            })
            .collect()
    }
}

/// The deterministic event id: `edc-` and 40 hex digits of a SHA-256 over the identity of what is
/// sent. Each row contributes its key path and its audit id (Transactional, when the source gives one)
/// or its value (Snapshot), so the same file always yields the same ids.
fn event_id<'a>(
    study: &str,
    subject: &str,
    visit: &str,
    instrument: &str,
    file_type: FileType,
    rows: impl Iterator<Item = &'a OdmRow>,
) -> Result<EventId, Problem> {
    let mut hasher = Sha256::new();
    for part in [
        "myolog-edc/1",
        study,
        subject,
        visit,
        instrument,
        file_type.name(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let mut identities: Vec<String> = rows
        .map(|row| {
            let audit_id = row.audit.as_ref().and_then(AuditRecord::audit_id);
            let contribution = match (file_type, audit_id) {
                (FileType::Transactional, Some(audit_id)) => format!("audit:{audit_id}"),
                _ => match &row.value {
                    ItemValue::Value(text) => format!("value:{text}"),
                    ItemValue::Empty => "empty".to_string(),
                    ItemValue::IsNull => "null".to_string(),
                    ItemValue::Absent => "absent".to_string(),
                },
            };
            let transaction = row.transaction.map(TransactionType::name).unwrap_or("");
            format!("{}\u{1f}{transaction}\u{1f}{contribution}", row.key)
        })
        .collect();
    identities.sort();
    for identity in identities {
        hasher.update(identity.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut id = String::from("edc-");
    for byte in digest.iter().take(20) {
        let _ = write!(id, "{byte:02x}");
    }
    // 44 characters from [a-z0-9-]: always valid, checked all the same by the domain's own rule.
    EventId::new(&id)
}

fn parse_decimal(text: &str) -> Result<Decimal, Problem> {
    parse_exact_decimal(text)
}

fn truthy(text: &str) -> Result<bool, Problem> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" => Ok(true),
        "0" | "false" | "no" | "n" => Ok(false),
        other => Err(Problem::UnknownValue {
            value: other.to_string(),
            allowed: "1/0, true/false or yes/no".to_string(),
        }),
    }
}

fn bounded_text<const MAX: u8>(value: Decimal) -> Result<String, Problem> {
    BoundedScore::<MAX>::from_decimal(value).map(|score| score.get().to_string())
}

/// Checks one value for its target (the domain's rules) and gives the text the ledger and the
/// instrument builder read: a decimal in the Myolog unit, `cm:x` / `likert:n` for globals.
fn field_text(
    item: &ItemMapping,
    coded: &str,
    factor: Decimal,
    mapping: &Mapping,
) -> Result<String, Problem> {
    let number = || parse_decimal(coded).map(|value| (value * factor).normalize());
    Ok(match item.target {
        Target::Global(_) => match item.scale {
            GlobalSourceScale::Cm => format!("cm:{}", VasCm::from_cm(number()?)?.cm()),
            GlobalSourceScale::Mm => format!("cm:{}", VasCm::from_mm(number()?)?.cm()),
            GlobalSourceScale::Likert => {
                format!("likert:{}", LikertGlobal::from_decimal(number()?)?.get())
            }
        },
        Target::Mmt8Total => {
            let value = number()?;
            let scale = mapping.mmt8_scale();
            total_of(value, scale)?.total().to_string()
        }
        Target::Mmt8Grade(_) | Target::Mmt8SideGrade(..) => {
            if coded.eq_ignore_ascii_case("t") || coded.eq_ignore_ascii_case("trace") {
                let grade = mapping.input.mmt_trace_grade.ok_or(Problem::TraceGrade)?;
                KendallGrade::try_from(grade)?.get().to_string()
            } else {
                bounded_text::<10>(number()?)?
            }
        }
        Target::HaqDi => HaqDiScore::try_from(number()?)?.get().to_string(),
        Target::HaqItem(..) => bounded_text::<3>(number()?)?,
        Target::HaqAid(_) | Target::HaqHelp(_) | Target::CdasiGottron(GottronItem::Papules) => {
            u8::from(truthy(coded)?).to_string()
        }
        Target::CdasiLocation(_, part) => {
            use crate::mapping::CdasiLocationItem as Part;
            match part {
                Part::Erythema => bounded_text::<3>(number()?)?,
                Part::Scale => bounded_text::<2>(number()?)?,
                Part::Erosion | Part::Poikiloderma | Part::Calcinosis => {
                    bounded_text::<1>(number()?)?
                }
            }
        }
        Target::CdasiGottron(GottronItem::Erythema) => bounded_text::<3>(number()?)?,
        Target::CdasiGottron(GottronItem::Ulceration) => bounded_text::<1>(number()?)?,
        Target::CdasiGottron(GottronItem::Damage) | Target::CdasiPeriungual => {
            bounded_text::<2>(number()?)?
        }
        Target::CdasiAlopecia => bounded_text::<1>(number()?)?,
        Target::Enzyme(_, EnzymePart::Unit) => EnzymeUnit::from_key(coded)
            .ok_or_else(|| Problem::UnknownValue {
                value: coded.to_string(),
                allowed: "U/L or ukat/L".to_string(),
            })?
            .key()
            .to_string(),
        Target::Enzyme(_, EnzymePart::Value | EnzymePart::Uln) => number()?.to_string(),
        Target::PrednisoneMgPerDay => PrednisoneEquivalentDose::try_from(number()?)?
            .mg_per_day()
            .to_string(),
    })
}

fn total_of(value: Decimal, scale: MmtScale) -> Result<MmtTotal, Problem> {
    let allowed = format!("an integer from 0 to {}", scale.max_total());
    if value.scale() != 0 {
        return Err(Problem::TooPrecise {
            value: value.to_string(),
            max_decimals: 0,
            allowed,
        });
    }
    let total = u16::try_from(value.mantissa()).map_err(|_| Problem::OutOfRange {
        value: value.to_string(),
        allowed,
    })?;
    MmtTotal::new(total, scale)
}

enum Built {
    Assessment(Assessment),
    Dose(Dose),
}

fn build_instrument(
    instrument: Instrument,
    fields: &BTreeMap<String, SentField>,
    mapping: &Mapping,
) -> Result<Built, Problem> {
    let mut values: BTreeMap<Target, &str> = BTreeMap::new();
    for (key, field) in fields {
        let target = Target::parse(key).map_err(Problem::NotAllowed)?;
        values.insert(target, field.value.as_str());
    }
    let decimal = |text: &str| parse_decimal(text);
    let score = |text: &str| -> Result<Decimal, Problem> { decimal(text) };
    Ok(match instrument {
        Instrument::Globals => {
            let global = |field: GlobalField| -> Result<Option<GlobalAssessment>, Problem> {
                let Some(text) = values.get(&Target::Global(field)) else {
                    return Ok(None);
                };
                let assessment = if let Some(cm) = text.strip_prefix("cm:") {
                    GlobalAssessment::Vas(VasCm::from_cm(decimal(cm)?)?)
                } else if let Some(likert) = text.strip_prefix("likert:") {
                    if !mapping.input.allow_likert_globals {
                        return Err(Problem::NotAllowed(
                            "Likert globals need conventions.allow_likert_globals".to_string(),
                        ));
                    }
                    GlobalAssessment::Likert(LikertGlobal::from_decimal(decimal(likert)?)?)
                } else {
                    return Err(Problem::WrongType {
                        expected: "cm:<value> or likert:<value>".to_string(),
                        found: (*text).to_string(),
                    });
                };
                Ok(Some(assessment))
            };
            Built::Assessment(Assessment::Globals {
                physician: global(GlobalField::Physician)?,
                patient: global(GlobalField::Patient)?,
                extramuscular: global(GlobalField::Extramuscular)?,
            })
        }
        Instrument::Mmt8 => {
            let scale = mapping.mmt8_scale();
            let has_grades = values
                .keys()
                .any(|target| !matches!(target, Target::Mmt8Total));
            if let Some(total) = values.get(&Target::Mmt8Total) {
                if has_grades {
                    return Err(Problem::NotAllowed(
                        "both an MMT-8 total and grades are given; give one".to_string(),
                    ));
                }
                return Ok(Built::Assessment(Assessment::Mmt8(Mmt8::Total(total_of(
                    score(total)?,
                    scale,
                )?))));
            }
            let grade = |text: &str| -> Result<KendallGrade, Problem> {
                KendallGrade::from_decimal(score(text)?)
            };
            match scale {
                MmtScale::Unilateral => {
                    let mut grades = UnilateralGrades::default();
                    for (target, text) in &values {
                        match target {
                            Target::Mmt8Grade(group) => {
                                grades.grades[group.index()] = Some(grade(text)?)
                            }
                            other => {
                                return Err(Problem::NotAllowed(format!(
                                    "{other} is a bilateral grade, but testing is unilateral (80)"
                                )));
                            }
                        }
                    }
                    Built::Assessment(Assessment::Mmt8(Mmt8::Unilateral(grades)))
                }
                MmtScale::Bilateral => {
                    let mut grades = BilateralGrades::default();
                    for (target, text) in &values {
                        match target {
                            Target::Mmt8Grade(MuscleGroup::NeckFlexors) => {
                                grades.neck_flexors = Some(grade(text)?);
                            }
                            Target::Mmt8SideGrade(group, side) => {
                                let Some(position) =
                                    MuscleGroup::LIMB.iter().position(|limb| limb == group)
                                else {
                                    continue;
                                };
                                grades.limbs[position][*side as usize] = Some(grade(text)?);
                            }
                            other => {
                                return Err(Problem::NotAllowed(format!(
                                    "{other} has no side, but testing is bilateral (150)"
                                )));
                            }
                        }
                    }
                    Built::Assessment(Assessment::Mmt8(Mmt8::Bilateral(grades)))
                }
            }
        }
        Instrument::Haq => {
            if let Some(score_text) = values.get(&Target::HaqDi) {
                if values.len() > 1 {
                    return Err(Problem::NotAllowed(
                        "both a HAQ-DI score and HAQ items are given; give one".to_string(),
                    ));
                }
                return Ok(Built::Assessment(Assessment::Haq(Haq::Score(
                    HaqDiScore::try_from(decimal(score_text)?)?,
                ))));
            }
            let mut answers: [Vec<Option<HaqItemScore>>; 8] = Default::default();
            for category in myolog_domain::haq::HaqCategory::ALL {
                answers[category.index()] = vec![None; category.item_count()];
            }
            let mut aids = BTreeSet::new();
            let mut help = BTreeSet::new();
            for (target, text) in &values {
                match target {
                    Target::HaqItem(category, position) => {
                        if let Some(slot) =
                            answers[category.index()].get_mut(usize::from(*position))
                        {
                            *slot = Some(HaqItemScore::from_decimal(decimal(text)?)?);
                        }
                    }
                    Target::HaqAid(aid) if *text == "1" => {
                        aids.insert(*aid);
                    }
                    Target::HaqHelp(category) if *text == "1" => {
                        help.insert(*category);
                    }
                    _ => {}
                }
            }
            let items = HaqItems::new(answers, aids, help).map_err(|(_, problem)| problem)?;
            Built::Assessment(Assessment::Haq(Haq::Items(Box::new(items))))
        }
        Instrument::Cdasi => {
            let mut cdasi = CdasiV2::default();
            for (target, text) in &values {
                let value = decimal(text)?;
                match target {
                    Target::CdasiLocation(location, part) => {
                        use crate::mapping::CdasiLocationItem as Part;
                        let scores: &mut CdasiLocationScores =
                            cdasi.locations.entry(*location).or_default();
                        match part {
                            Part::Erythema => scores.erythema = BoundedScore::from_decimal(value)?,
                            Part::Scale => scores.scale = BoundedScore::from_decimal(value)?,
                            Part::Erosion => scores.erosion = BoundedScore::from_decimal(value)?,
                            Part::Poikiloderma => {
                                scores.poikiloderma = BoundedScore::from_decimal(value)?
                            }
                            Part::Calcinosis => {
                                scores.calcinosis = BoundedScore::from_decimal(value)?
                            }
                        }
                    }
                    Target::CdasiGottron(GottronItem::Erythema) => {
                        cdasi.gottron_hands.erythema = BoundedScore::from_decimal(value)?;
                    }
                    Target::CdasiGottron(GottronItem::Papules) => {
                        cdasi.gottron_hands.papules = value == Decimal::ONE;
                    }
                    Target::CdasiGottron(GottronItem::Ulceration) => {
                        cdasi.gottron_hands.ulceration = BoundedScore::from_decimal(value)?;
                    }
                    Target::CdasiGottron(GottronItem::Damage) => {
                        cdasi.gottron_hands.damage = BoundedScore::from_decimal(value)?;
                    }
                    Target::CdasiPeriungual => {
                        cdasi.periungual = BoundedScore::from_decimal(value)?
                    }
                    Target::CdasiAlopecia => cdasi.alopecia = BoundedScore::from_decimal(value)?,
                    _ => {}
                }
            }
            Built::Assessment(Assessment::Cdasi(cdasi))
        }
        Instrument::Enzymes => {
            let mut panel = EnzymePanel::new();
            let enzymes: BTreeSet<_> = values
                .keys()
                .filter_map(|target| match target {
                    Target::Enzyme(enzyme, _) => Some(*enzyme),
                    _ => None,
                })
                .collect();
            for enzyme in enzymes {
                let part = |part: EnzymePart| values.get(&Target::Enzyme(enzyme, part)).copied();
                let value = part(EnzymePart::Value).ok_or_else(|| Problem::Missing {
                    expected: format!("enzyme.{}.value", enzyme.key()),
                })?;
                let uln = part(EnzymePart::Uln).ok_or_else(|| Problem::Missing {
                    expected: format!(
                        "enzyme.{}.uln (the laboratory's upper limit of normal)",
                        enzyme.key()
                    ),
                })?;
                let unit = match part(EnzymePart::Unit) {
                    None => EnzymeUnit::UnitsPerLitre,
                    Some(text) => {
                        EnzymeUnit::from_key(text).ok_or_else(|| Problem::UnknownValue {
                            value: text.to_string(),
                            allowed: "U/L or ukat/L".to_string(),
                        })?
                    }
                };
                let measurement = EnzymeMeasurement::new(decimal(value)?, decimal(uln)?, unit)
                    .map_err(|(_, problem)| problem)?;
                panel.insert(enzyme, measurement);
            }
            Built::Assessment(Assessment::Enzymes(panel))
        }
        Instrument::Prednisone => {
            let text = values
                .get(&Target::PrednisoneMgPerDay)
                .ok_or_else(|| Problem::Missing {
                    expected: "prednisone_mg_per_day".to_string(),
                })?;
            Built::Dose(Dose::Glucocorticoid {
                drug: "prednisone".to_string(),
                mg_per_day: PrednisoneEquivalentDose::try_from(decimal(text)?)?,
            })
        }
    })
}
