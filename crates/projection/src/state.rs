//! In-memory projection of the log: studies, subjects and, per visit, the live assessment forms.
//! Rebuilt from the log at start-up by replay and updated after each durable append.
//!
//! A visit's assessments are its live forms applied in sequence order, so the latest value of each
//! measure wins (for globals and enzymes: per measure; for labs: per code). A correction removes the
//! form it supersedes from the live set and adds its own; both events stay in the log.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use myolog_domain::event::{
    Assessment, AssessmentKind, ClinicalDate, Dose, EnrolmentFacts, Event, EventBody, EventId,
    SiteId, StudyId, SubjectId, VisitId,
};
use myolog_domain::protocol::{Blinding, Protocol, ProtocolHistory, VisitScheduleError};
use myolog_domain::visit::{Population, VisitAssessments};

use crate::Violation;

/// A study as registered.
#[derive(Debug, Clone)]
pub struct Study {
    pub title: String,
    pub population: Population,
    pub baseline_visit: VisitId,
    /// Every protocol version, re-parsed from the log's TOML on replay; `None` for a study
    /// registered without a protocol.
    pub protocol: Option<ProtocolHistory>,
    pub subjects: BTreeMap<SubjectId, Subject>,
    /// The database lock in force (StudyLocked not yet followed by StudyUnlocked), if any.
    pub lock: Option<StudyLock>,
    /// Registered blinded (the `blinded` flag, or a single- or double-blind protocol).
    pub blinded: bool,
    /// Sequence of the StudyUnblinded event, once the blinding is lifted.
    pub unblinded_at: Option<u64>,
}

impl Study {
    /// Whether arm-dependent results are hidden from blinded callers (readers): blinded and not
    /// yet unblinded.
    pub fn hides_arms(&self) -> bool {
        self.blinded && self.unblinded_at.is_none()
    }

    /// The subject's arm for per-arm tables: the protocol's arm code (see [`protocol_arm`]); without
    /// a protocol, the arm as enrolled; `None` while not known.
    pub fn arm_of<'a>(&'a self, subject: &'a Subject) -> Option<&'a str> {
        match &self.protocol {
            Some(history) => protocol_arm(history.current(), &subject.arm),
            None => (!subject.arm.is_empty()).then_some(subject.arm.as_str()),
        }
    }
}

/// Whether a StudyRegistered makes a blinded study: its flag, or a protocol that is not open label.
pub fn registers_blinded(blinded: bool, protocol: Option<&Protocol>) -> bool {
    blinded || protocol.is_some_and(|protocol| protocol.study().blinding != Blinding::OpenLabel)
}

/// A study's database lock: which event set it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyLock {
    /// Sequence of the StudyLocked event.
    pub seq: u64,
    /// Its clinical date.
    pub clinical_date: ClinicalDate,
    /// Who locked it (the event's recorded-by; empty when applied without the envelope).
    pub locked_by: String,
    pub reason: String,
}

impl StudyLock {
    /// The lock in words, for refusals and replay output.
    pub fn describe(&self) -> String {
        let by = if self.locked_by.is_empty() {
            String::new()
        } else {
            format!(" by {}", self.locked_by)
        };
        format!(
            "locked{by} at sequence {} (clinical date {}): {}",
            self.seq, self.clinical_date, self.reason
        )
    }
}

/// One subject.
#[derive(Debug, Clone)]
pub struct Subject {
    pub arm: String,
    /// The site that enrolled the subject (SubjectEnrolled.site_id); `None` when none was named.
    pub site: Option<SiteId>,
    /// Clinical date of the enrolment (randomisation): protocol day 0 of the visit schedule.
    pub enrolled_on: ClinicalDate,
    pub population: Option<Population>,
    /// Eligibility facts reported at enrolment (age, muscle disease active, stable prednisone).
    pub facts: EnrolmentFacts,
    pub withdrawn: bool,
    pub visits: BTreeMap<VisitId, Visit>,
    /// Dose records in sequence order: (clinical date, dose).
    pub doses: Vec<(ClinicalDate, Dose)>,
}

/// One visit: its live forms by sequence number.
#[derive(Debug, Clone, Default)]
pub struct Visit {
    /// Earliest clinical date recorded for the visit (orders visits).
    pub first_date: Option<ClinicalDate>,
    /// Latest clinical date recorded for the visit.
    pub last_date: Option<ClinicalDate>,
    /// Live assessment forms: sequence -> form.
    pub live: BTreeMap<u64, Assessment>,
    /// Where this visit is, shared with the entry of each of its forms (made with the first form).
    place: Option<Arc<FormPlace>>,
}

impl Visit {
    /// The visit's assessments: live forms applied in sequence order (latest value wins).
    pub fn assessments(&self) -> VisitAssessments {
        let mut visit = VisitAssessments::default();
        for form in self.live.values() {
            form.apply_to(&mut visit);
        }
        visit
    }

    fn note_date(&mut self, date: ClinicalDate) {
        self.first_date = Some(self.first_date.map_or(date, |d| d.min(date)));
        self.last_date = Some(self.last_date.map_or(date, |d| d.max(date)));
    }
}

/// What the projection keeps of each applied event id.
#[derive(Debug, Clone)]
struct Applied {
    seq: u64,
    /// Where the form of an assessment (or correction) lives; `None` for other events.
    form: Option<FormRef>,
}

/// Where an assessment event lives, for corrections: the visit's shared place, so that an entry of
/// the map of every applied id (a million in a big log) stays small.
#[derive(Debug, Clone)]
struct FormRef {
    place: Arc<FormPlace>,
    kind: AssessmentKind,
    superseded: bool,
}

/// One subject x visit of a study.
#[derive(Debug)]
struct FormPlace {
    study: StudyId,
    subject: SubjectId,
    visit: VisitId,
}

/// A subject x visit whose outcome may have changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Touched {
    pub study: StudyId,
    pub subject: SubjectId,
    /// `None`: every visit of the subject (baseline or population changed).
    pub visit: Option<VisitId>,
}

/// The whole projection.
#[derive(Debug, Default)]
pub struct Projection {
    /// Highest sequence applied.
    pub head_seq: u64,
    pub studies: BTreeMap<StudyId, Study>,
    /// Every event id applied -> its sequence (idempotency pre-check) and, for assessments, where
    /// the form lives (corrections). One map, so applying an event hashes its id once.
    applied: HashMap<EventId, Applied, foldhash::fast::RandomState>,
}

impl Projection {
    /// An empty projection with room for `events` events in its id maps, so that applying a whole
    /// log (a replay) does not rehash them over and over as they grow.
    pub fn with_capacity(events: usize) -> Self {
        Self {
            applied: HashMap::with_capacity_and_hasher(events, Default::default()),
            ..Self::default()
        }
    }

    /// The sequence of an event id already in the projection.
    pub fn seq_of(&self, event_id: &EventId) -> Option<u64> {
        self.applied.get(event_id).map(|applied| applied.seq)
    }

    /// The study, if registered.
    pub fn study(&self, study: &StudyId) -> Option<&Study> {
        self.studies.get(study)
    }

    /// Site scope of a writer (a site-scoped token): every SubjectEnrolled of the batch names one of `allowed`,
    /// and every other subject-level event is for a subject enrolled at one of them (per the
    /// projection, or a SubjectEnrolled earlier in the batch). `Err` names the event, the site and
    /// the allowed sites. Subjects not enrolled at all are left to [`Projection::check_batch`].
    pub fn check_sites(&self, batch: &[Event], allowed: &BTreeSet<String>) -> Result<(), String> {
        let allowed_list = || allowed.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut enrolled_in_batch: BTreeMap<(&StudyId, &SubjectId), Option<&SiteId>> =
            BTreeMap::new();
        for (index, event) in batch.iter().enumerate() {
            let Some(subject) = &event.subject else {
                continue;
            };
            let site = if let EventBody::SubjectEnrolled { site, .. } = &event.body {
                enrolled_in_batch.insert((&event.study, subject), site.as_ref());
                site.as_ref()
            } else if let Some(site) = enrolled_in_batch.get(&(&event.study, subject)) {
                *site
            } else {
                match self
                    .studies
                    .get(&event.study)
                    .and_then(|s| s.subjects.get(subject))
                {
                    Some(known) => known.site.as_ref(),
                    // Not enrolled: check_batch refuses it (FAILED_PRECONDITION).
                    None => continue,
                }
            };
            match site {
                Some(site) if allowed.contains(site.as_str()) => {}
                Some(site) => {
                    return Err(format!(
                        "events[{index}]: site {:?} of subject {subject} is outside the writer's \
                         sites ({})",
                        site.as_str(),
                        allowed_list()
                    ));
                }
                None => {
                    return Err(format!(
                        "events[{index}]: subject {subject} has no site; the writer is scoped to \
                         sites ({})",
                        allowed_list()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Study-level consistency of a batch against the log (and earlier events of the batch): studies
    /// registered once and before use, subjects enrolled once and before use, corrections naming a
    /// live form of the same subject, visit and instrument. Events whose id is already in the log are
    /// not checked (the log answers them as duplicates or conflicts).
    pub fn check_batch(&self, batch: &[Event]) -> Vec<Violation> {
        let mut violations = Vec::new();
        let mut new_studies: BTreeSet<&StudyId> = BTreeSet::new();
        let mut new_subjects: BTreeSet<(&StudyId, &SubjectId)> = BTreeSet::new();
        let mut new_forms: HashMap<&EventId, (&StudyId, &SubjectId, &VisitId, AssessmentKind)> =
            HashMap::new();
        let mut superseded_in_batch: BTreeSet<&EventId> = BTreeSet::new();
        let mut ids_in_batch: BTreeSet<&EventId> = BTreeSet::new();
        // The latest protocol version amended earlier in this batch, per study.
        let mut amended_in_batch: BTreeMap<&StudyId, &Protocol> = BTreeMap::new();
        // Lock state changed earlier in this batch, per study: `Some(words)` locked, `None` unlocked.
        let mut lock_in_batch: BTreeMap<&StudyId, Option<String>> = BTreeMap::new();
        // Studies registered blinded, and studies unblinded, earlier in this batch.
        let mut blinded_in_batch: BTreeSet<&StudyId> = BTreeSet::new();
        let mut unblinded_in_batch: BTreeSet<&StudyId> = BTreeSet::new();
        for (index, event) in batch.iter().enumerate() {
            let path = format!("events[{index}]");
            if !ids_in_batch.insert(&event.event_id) {
                violations.push(Violation::new(
                    format!("{path}.event_id"),
                    format!("event id {} appears twice in the batch", event.event_id),
                ));
                continue;
            }
            if self.applied.contains_key(&event.event_id) {
                continue;
            }
            let study_known =
                self.studies.contains_key(&event.study) || new_studies.contains(&event.study);
            // Data lock: while a study is locked (in the log or earlier in this batch) every new
            // event of it is refused except StudyUnlocked; who may send that is `auth`'s check.
            if study_known {
                let lock = lock_in_batch.get(&event.study).cloned().unwrap_or_else(|| {
                    self.studies
                        .get(&event.study)
                        .and_then(|study| study.lock.as_ref())
                        .map(StudyLock::describe)
                });
                let field = format!("{path}.study_id");
                match (&event.body, lock) {
                    (EventBody::StudyLocked { .. }, Some(lock)) => {
                        violations.push(Violation::new(
                            field,
                            format!("study {} is already {lock}", event.study),
                        ));
                    }
                    (EventBody::StudyLocked { reason }, None) => {
                        lock_in_batch.insert(
                            &event.study,
                            Some(format!(
                                "locked by events[{index}] of this batch: {}",
                                reason.as_str()
                            )),
                        );
                    }
                    (EventBody::StudyUnlocked { .. }, None) => violations.push(Violation::new(
                        field,
                        format!("study {} is not locked", event.study),
                    )),
                    (EventBody::StudyUnlocked { .. }, Some(_)) => {
                        lock_in_batch.insert(&event.study, None);
                    }
                    // Unblinding changes no data and customarily follows the database lock.
                    (EventBody::StudyUnblinded { .. }, Some(_)) => {}
                    (_, Some(lock)) => {
                        violations.push(Violation::new(
                            field,
                            format!(
                                "study {} is {lock}; no write is accepted until an admin's StudyUnlocked",
                                event.study
                            ),
                        ));
                        continue;
                    }
                    (_, None) => {}
                }
            }
            match &event.body {
                EventBody::StudyRegistered {
                    protocol, blinded, ..
                } => {
                    if let (Some(protocol), false) = (protocol, study_known) {
                        amended_in_batch.insert(&event.study, &**protocol);
                    }
                    if !study_known && registers_blinded(*blinded, protocol.as_deref()) {
                        blinded_in_batch.insert(&event.study);
                    }
                    if study_known {
                        violations.push(Violation::new(
                            format!("{path}.study_id"),
                            format!("study {} is already registered", event.study),
                        ));
                    }
                    new_studies.insert(&event.study);
                    continue;
                }
                EventBody::ProtocolAmended { protocol } if study_known => {
                    let path = format!("{path}.protocol_amended.protocol_toml");
                    let current = amended_in_batch.get(&event.study).copied().or_else(|| {
                        self.studies
                            .get(&event.study)
                            .and_then(|study| study.protocol.as_ref())
                            .map(ProtocolHistory::current)
                    });
                    match current {
                        None => violations.push(Violation::new(
                            path,
                            format!(
                                "study {} was registered without a protocol; there is nothing to amend",
                                event.study
                            ),
                        )),
                        Some(current) => match protocol.check_amends(current) {
                            Ok(()) => {
                                amended_in_batch.insert(&event.study, &**protocol);
                            }
                            Err(error) => violations.push(Violation::new(path, error.to_string())),
                        },
                    }
                    continue;
                }
                EventBody::StudyUnblinded { .. } if study_known => {
                    let hides = self
                        .studies
                        .get(&event.study)
                        .map_or(blinded_in_batch.contains(&event.study), Study::hides_arms)
                        && !unblinded_in_batch.contains(&event.study);
                    if hides {
                        unblinded_in_batch.insert(&event.study);
                    } else {
                        violations.push(Violation::new(
                            format!("{path}.study_id"),
                            format!(
                                "study {} is not blinded (never was, or was already unblinded)",
                                event.study
                            ),
                        ));
                    }
                    continue;
                }
                _ if !study_known => {
                    violations.push(Violation::new(
                        format!("{path}.study_id"),
                        format!(
                            "study {} is not registered (send StudyRegistered first)",
                            event.study
                        ),
                    ));
                    continue;
                }
                _ => {}
            }
            let Some(subject) = &event.subject else {
                continue;
            };
            let subject_known = self
                .studies
                .get(&event.study)
                .is_some_and(|s| s.subjects.contains_key(subject))
                || new_subjects.contains(&(&event.study, subject));
            if let EventBody::SubjectEnrolled { .. } = &event.body {
                if subject_known {
                    violations.push(Violation::new(
                        format!("{path}.subject_id"),
                        format!("subject {subject} is already enrolled in {}", event.study),
                    ));
                }
                new_subjects.insert((&event.study, subject));
                continue;
            }
            if !subject_known {
                violations.push(Violation::new(
                    format!("{path}.subject_id"),
                    format!(
                        "subject {subject} is not enrolled in {} (send SubjectEnrolled first)",
                        event.study
                    ),
                ));
                continue;
            }
            let Some(visit) = &event.visit else { continue };
            if let EventBody::AssessmentCorrected {
                supersedes,
                corrected,
                ..
            } = &event.body
            {
                let target = self
                    .applied
                    .get(supersedes)
                    .and_then(|applied| applied.form.as_ref())
                    .map(|f| {
                        (
                            &f.place.study,
                            &f.place.subject,
                            &f.place.visit,
                            f.kind,
                            f.superseded,
                        )
                    })
                    .or_else(|| {
                        new_forms
                            .get(supersedes)
                            .map(|(st, su, vi, k)| (*st, *su, *vi, *k, false))
                    });
                let field = format!("{path}.assessment_corrected.supersedes_event_id");
                match target {
                    None => violations.push(Violation::new(
                        field,
                        format!("no assessment with event id {supersedes} is recorded"),
                    )),
                    Some((st, su, vi, kind, superseded)) => {
                        if (st, su, vi) != (&event.study, subject, visit) {
                            violations.push(Violation::new(
                                field,
                                format!("{supersedes} is an assessment of {st}/{su} at {vi}, not of this subject and visit"),
                            ));
                        } else if kind != corrected.kind() {
                            violations.push(Violation::new(
                                format!("{path}.assessment_corrected.corrected"),
                                format!(
                                    "{supersedes} recorded {}; a correction must carry the same instrument, not {}",
                                    kind.key(),
                                    corrected.kind().key()
                                ),
                            ));
                        } else if superseded || !superseded_in_batch.insert(supersedes) {
                            violations.push(Violation::new(
                                field,
                                format!("{supersedes} was already superseded; correct the latest correction instead"),
                            ));
                        }
                    }
                }
            }
            if let EventBody::AssessmentRetracted { retracts, .. } = &event.body {
                let target = self
                    .applied
                    .get(retracts)
                    .and_then(|applied| applied.form.as_ref())
                    .map(|f| {
                        (
                            &f.place.study,
                            &f.place.subject,
                            &f.place.visit,
                            f.superseded,
                        )
                    })
                    .or_else(|| {
                        new_forms
                            .get(retracts)
                            .map(|(st, su, vi, _)| (*st, *su, *vi, false))
                    });
                let field = format!("{path}.assessment_retracted.retracts_event_id");
                match target {
                    None => violations.push(Violation::new(
                        field,
                        format!("no assessment with event id {retracts} is recorded"),
                    )),
                    Some((st, su, vi, _)) if (st, su, vi) != (&event.study, subject, visit) => {
                        violations.push(Violation::new(
                            field,
                            format!("{retracts} is an assessment of {st}/{su} at {vi}, not of this subject and visit"),
                        ));
                    }
                    // Superseded or retracted before (in the log or in this batch): only the
                    // latest form of an instrument can be withdrawn, so nothing counts twice.
                    Some((_, _, _, superseded)) => {
                        if superseded || !superseded_in_batch.insert(retracts) {
                            violations.push(Violation::new(
                                field,
                                format!("{retracts} was already superseded or retracted; retract the latest correction instead"),
                            ));
                        }
                    }
                }
            }
            if let Some(assessment) = event.body.assessment() {
                new_forms.insert(
                    &event.event_id,
                    (&event.study, subject, visit, assessment.kind()),
                );
            }
        }
        violations
    }

    /// Checks a valid batch against the studies' protocols (the protocol in force, or registered
    /// earlier in the batch): an enrolment's arm must be one of the protocol's arm codes (empty
    /// allowed: arm not yet known), and every assessment or correction must name a visit the
    /// protocol knows and plans for the subject's arm. These are INVALID_ARGUMENT (the value is
    /// outside the protocol's set), whereas [`Projection::check_batch`] finds contradictions with
    /// the log. Studies without a protocol accept any visit id.
    pub fn check_visits(&self, batch: &[Event]) -> Vec<Violation> {
        let mut violations = Vec::new();
        let mut registered: BTreeMap<&StudyId, &Protocol> = BTreeMap::new();
        let mut enrolled: BTreeMap<(&StudyId, &SubjectId), &str> = BTreeMap::new();
        for (index, event) in batch.iter().enumerate() {
            if self.applied.contains_key(&event.event_id) {
                continue;
            }
            let protocol = registered.get(&event.study).copied().or_else(|| {
                self.studies
                    .get(&event.study)
                    .and_then(|study| study.protocol.as_ref())
                    .map(ProtocolHistory::current)
            });
            match &event.body {
                EventBody::StudyRegistered {
                    protocol: Some(protocol),
                    ..
                } if !self.studies.contains_key(&event.study) => {
                    registered.insert(&event.study, &**protocol);
                }
                EventBody::SubjectEnrolled { arm, .. } => {
                    if let (Some(protocol), Some(subject)) = (protocol, &event.subject) {
                        if !arm.is_empty() && protocol.arm(arm).is_none() {
                            violations.push(Violation::new(
                                format!("events[{index}].subject_enrolled.arm"),
                                format!(
                                    "unknown arm `{arm}` in protocol {}; expected one of {} (or empty)",
                                    protocol.reference(),
                                    arm_codes(protocol).join(", ")
                                ),
                            ));
                        }
                        enrolled.insert((&event.study, subject), arm.as_str());
                    }
                }
                EventBody::AssessmentRecorded(_) | EventBody::AssessmentCorrected { .. } => {
                    let (Some(protocol), Some(subject), Some(visit)) =
                        (protocol, &event.subject, &event.visit)
                    else {
                        continue;
                    };
                    let arm = enrolled
                        .get(&(&event.study, subject))
                        .copied()
                        .or_else(|| {
                            self.studies
                                .get(&event.study)
                                .and_then(|study| study.subjects.get(subject))
                                .map(|subject| subject.arm.as_str())
                        })
                        .unwrap_or("");
                    if let Err(problem) = known_visit(protocol, arm, visit.as_str()) {
                        violations.push(Violation::new(
                            format!("events[{index}].visit_id"),
                            format!("{problem} (protocol {})", protocol.reference()),
                        ));
                    }
                }
                _ => {}
            }
        }
        violations
    }

    /// [`Projection::apply`] with the event's recorded-by principal, so a lock names who set it.
    pub fn apply_recorded(
        &mut self,
        seq: u64,
        event: &Event,
        recorded_by: &str,
    ) -> Option<Touched> {
        let touched = self.apply(seq, event);
        if let EventBody::StudyLocked { .. } = &event.body
            && let Some(lock) = self
                .studies
                .get_mut(&event.study)
                .and_then(|study| study.lock.as_mut())
                .filter(|lock| lock.seq == seq)
        {
            lock.locked_by = recorded_by.to_string();
        }
        touched
    }

    /// Applies one stored event. Events already applied (same id) are ignored. Returns what changed.
    pub fn apply(&mut self, seq: u64, event: &Event) -> Option<Touched> {
        if self.applied.contains_key(&event.event_id) {
            return None;
        }
        self.head_seq = self.head_seq.max(seq);
        let (form, touched) = self.apply_body(seq, event);
        self.applied
            .insert(event.event_id.clone(), Applied { seq, form });
        touched
    }

    /// [`Projection::apply`] after the id check: what changed, and where an assessment's form went.
    fn apply_body(&mut self, seq: u64, event: &Event) -> (Option<FormRef>, Option<Touched>) {
        if let EventBody::AssessmentRecorded(assessment) = &event.body {
            return self.add_form(seq, FormEvent::of(event, true), assessment.clone(), None);
        }
        if let EventBody::AssessmentCorrected {
            supersedes,
            corrected,
            ..
        } = &event.body
        {
            return self.add_form(
                seq,
                FormEvent::of(event, true),
                corrected.clone(),
                Some(supersedes),
            );
        }
        if let EventBody::AssessmentRetracted { retracts, .. } = &event.body {
            return (None, self.retract(retracts, true));
        }
        (None, self.apply_other(seq, event))
    }

    /// Drops a retracted form from its visit's live set, as a correction drops the form it
    /// supersedes; the retracted event stays applied (and in the log). `None` when the id names no
    /// live form (check_batch refused such a retraction before it was stored).
    fn retract(&mut self, retracts: &EventId, touched: bool) -> Option<Touched> {
        let Applied {
            seq: old_seq,
            form: Some(old),
        } = self.applied.get_mut(retracts)?
        else {
            return None;
        };
        old.superseded = true;
        let (old_seq, place) = (*old_seq, old.place.clone());
        let study = self.studies.get_mut(&place.study)?;
        let at_baseline = place.visit == study.baseline_visit;
        let subject = study.subjects.get_mut(&place.subject)?;
        let visit = subject.visits.get_mut(&place.visit)?;
        visit.live.remove(&old_seq);
        // As for a new form: a change at the baseline (or of which visit is first) reaches every visit.
        let every_visit = at_baseline || subject.visits.len() <= 2;
        touched.then(|| Touched {
            study: place.study.clone(),
            subject: place.subject.clone(),
            visit: (!every_visit).then(|| place.visit.clone()),
        })
    }

    /// Applies an event that is not an assessment.
    fn apply_other(&mut self, seq: u64, event: &Event) -> Option<Touched> {
        match &event.body {
            EventBody::StudyRegistered {
                title,
                population,
                baseline_visit,
                protocol,
                blinded,
            } => {
                self.studies
                    .entry(event.study.clone())
                    .or_insert_with(|| Study {
                        title: title.clone(),
                        population: *population,
                        baseline_visit: baseline_visit.clone(),
                        protocol: protocol
                            .as_ref()
                            .map(|protocol| ProtocolHistory::new(Protocol::clone(protocol))),
                        subjects: BTreeMap::new(),
                        lock: None,
                        blinded: registers_blinded(*blinded, protocol.as_deref()),
                        unblinded_at: None,
                    });
                None
            }
            EventBody::StudyUnblinded { .. } => {
                let study = self.studies.get_mut(&event.study)?;
                study.unblinded_at = study.unblinded_at.or(Some(seq));
                None
            }
            EventBody::StudyLocked { reason } => {
                self.studies.get_mut(&event.study)?.lock = Some(StudyLock {
                    seq,
                    clinical_date: event.clinical_date,
                    locked_by: String::new(),
                    reason: reason.as_str().to_string(),
                });
                None
            }
            EventBody::StudyUnlocked { .. } => {
                self.studies.get_mut(&event.study)?.lock = None;
                None
            }
            EventBody::ProtocolAmended { protocol } => {
                let history = self.studies.get_mut(&event.study)?.protocol.as_mut()?;
                // check_batch accepted it before it was stored; an out-of-order amendment in an
                // old log is skipped rather than replacing the version in force.
                history.amend(Protocol::clone(protocol)).ok()?;
                None
            }
            EventBody::SubjectEnrolled {
                arm,
                population,
                site,
                facts,
            } => {
                let subject_id = event.subject.clone()?;
                let study = self.studies.get_mut(&event.study)?;
                study
                    .subjects
                    .entry(subject_id.clone())
                    .or_insert_with(|| Subject {
                        arm: arm.clone(),
                        site: site.clone(),
                        enrolled_on: event.clinical_date,
                        population: *population,
                        facts: facts.clone(),
                        withdrawn: false,
                        visits: BTreeMap::new(),
                        doses: Vec::new(),
                    });
                Some(Touched {
                    study: event.study.clone(),
                    subject: subject_id,
                    visit: None,
                })
            }
            EventBody::SubjectWithdrawn { .. } => {
                let subject_id = event.subject.clone()?;
                let subject = self
                    .studies
                    .get_mut(&event.study)?
                    .subjects
                    .get_mut(&subject_id)?;
                subject.withdrawn = true;
                None
            }
            EventBody::DoseRecorded(dose) => {
                let subject_id = event.subject.clone()?;
                let subject = self
                    .studies
                    .get_mut(&event.study)?
                    .subjects
                    .get_mut(&subject_id)?;
                subject.doses.push((event.clinical_date, dose.clone()));
                None
            }
            // Taken by `apply_body`.
            EventBody::AssessmentRecorded(_)
            | EventBody::AssessmentCorrected { .. }
            | EventBody::AssessmentRetracted { .. } => None,
        }
    }

    /// [`Projection::apply_recorded`] taking the event by value, so that an assessment form moves
    /// into the projection instead of being cloned: a replay applies about a million of them, and
    /// the clone (with the drop of the decoded original) was a good part of applying one.
    pub fn apply_owned(&mut self, seq: u64, event: Event, recorded_by: &str) {
        if !matches!(
            event.body,
            EventBody::AssessmentRecorded(_) | EventBody::AssessmentCorrected { .. }
        ) || self.applied.contains_key(&event.event_id)
        {
            self.apply_recorded(seq, &event, recorded_by);
            return;
        }
        let Event {
            event_id,
            study,
            subject,
            visit,
            clinical_date,
            body,
            source: _,
        } = event;
        let header = FormEvent {
            study: &study,
            subject: subject.as_ref(),
            visit: visit.as_ref(),
            clinical_date,
            touched: false,
        };
        let (form, _) = match body {
            EventBody::AssessmentRecorded(assessment) => {
                self.add_form(seq, header, assessment, None)
            }
            EventBody::AssessmentCorrected {
                supersedes,
                corrected,
                ..
            } => self.add_form(seq, header, corrected, Some(&supersedes)),
            _ => (None, None),
        };
        self.applied.insert(event_id, Applied { seq, form });
        self.head_seq = self.head_seq.max(seq);
    }

    fn add_form(
        &mut self,
        seq: u64,
        event: FormEvent<'_>,
        assessment: Assessment,
        supersedes: Option<&EventId>,
    ) -> (Option<FormRef>, Option<Touched>) {
        let (Some(subject_id), Some(visit_id)) = (event.subject, event.visit) else {
            return (None, None);
        };
        if let Some(Applied {
            seq: old_seq,
            form: Some(old),
        }) = supersedes.and_then(|id| self.applied.get_mut(id))
        {
            old.superseded = true;
            let (old_seq, old_place) = (*old_seq, old.place.clone());
            if let Some(visit) = self
                .studies
                .get_mut(&old_place.study)
                .and_then(|s| s.subjects.get_mut(&old_place.subject))
                .and_then(|s| s.visits.get_mut(&old_place.visit))
            {
                visit.live.remove(&old_seq);
            }
        }
        let Some(study) = self.studies.get_mut(event.study) else {
            return (None, None);
        };
        let at_baseline = *visit_id == study.baseline_visit;
        let Some(subject) = study.subjects.get_mut(subject_id) else {
            return (None, None);
        };
        let visit = subject.visits.entry(visit_id.clone()).or_default();
        visit.note_date(event.clinical_date);
        let kind = assessment.kind();
        visit.live.insert(seq, assessment);
        let place = visit.place.get_or_insert_with(|| {
            Arc::new(FormPlace {
                study: event.study.clone(),
                subject: subject_id.clone(),
                visit: visit_id.clone(),
            })
        });
        let form = FormRef {
            place: place.clone(),
            kind,
            superseded: false,
        };
        // A change at the baseline visit (or of which visit is first) can change every outcome.
        let every_visit = at_baseline || subject.visits.len() <= 2;
        // Only the live path reads what changed; a replay applies a million forms without it.
        let touched = event.touched.then(|| Touched {
            study: event.study.clone(),
            subject: subject_id.clone(),
            visit: if every_visit {
                None
            } else {
                Some(visit_id.clone())
            },
        });
        (Some(form), touched)
    }
}

/// What [`Projection::add_form`] reads of an assessment event: its header, borrowed, so the form
/// itself can be moved out of an owned event.
#[derive(Debug, Clone, Copy)]
struct FormEvent<'a> {
    study: &'a StudyId,
    subject: Option<&'a SubjectId>,
    visit: Option<&'a VisitId>,
    clinical_date: ClinicalDate,
    /// Whether the caller wants the [`Touched`] back.
    touched: bool,
}

impl<'a> FormEvent<'a> {
    fn of(event: &'a Event, touched: bool) -> Self {
        Self {
            study: &event.study,
            subject: event.subject.as_ref(),
            visit: event.visit.as_ref(),
            clinical_date: event.clinical_date,
            touched,
        }
    }
}

fn arm_codes(protocol: &Protocol) -> Vec<String> {
    protocol.arms().iter().map(|arm| arm.code.clone()).collect()
}

/// The subject's arm as the protocol schedules it: the enrolled arm code, or the only arm of a
/// single-arm protocol; `None` while a multi-arm subject's arm is not known (empty).
pub fn protocol_arm<'a>(protocol: &'a Protocol, arm: &'a str) -> Option<&'a str> {
    if protocol.arm(arm).is_some() {
        return Some(arm);
    }
    match protocol.arms() {
        [only] => Some(only.code.as_str()),
        _ => None,
    }
}

/// Whether the protocol knows `visit` (and plans it for the subject's arm, when known).
fn known_visit(protocol: &Protocol, arm: &str, visit: &str) -> Result<(), VisitScheduleError> {
    match protocol_arm(protocol, arm) {
        // The day only decides in or out of the window, which is never an error.
        Some(arm) => protocol.classify_visit(arm, visit, 0).map(|_| ()),
        None if protocol.encounter(visit).is_some() => Ok(()),
        None => Err(VisitScheduleError::UnknownVisit {
            visit_id: visit.to_string(),
            known: protocol
                .encounters()
                .iter()
                .map(|encounter| encounter.id.clone())
                .collect(),
        }),
    }
}

/// The baseline visit of a subject: the study's baseline visit id if the subject has it, otherwise
/// the subject's earliest visit (by first clinical date, then id).
pub fn baseline_of<'a>(study: &'a Study, subject: &'a Subject) -> Option<(&'a VisitId, &'a Visit)> {
    if let Some(visit) = subject.visits.get(&study.baseline_visit) {
        return Some((&study.baseline_visit, visit));
    }
    subject
        .visits
        .iter()
        .min_by(|a, b| (a.1.first_date, a.0).cmp(&(b.1.first_date, b.0)))
}

/// The subject's visits other than the baseline, ordered by first clinical date then id.
pub fn followups<'a>(study: &'a Study, subject: &'a Subject) -> Vec<(&'a VisitId, &'a Visit)> {
    let baseline = baseline_of(study, subject).map(|(id, _)| id.clone());
    let mut visits: Vec<(&VisitId, &Visit)> = subject
        .visits
        .iter()
        .filter(|(id, _)| Some(*id) != baseline.as_ref())
        .collect();
    visits.sort_by(|a, b| (a.1.first_date, a.0).cmp(&(b.1.first_date, b.0)));
    visits
}

#[cfg(test)]
mod tests {
    use super::*;
    use myolog_domain::event::Reason;
    use myolog_domain::global::{GlobalAssessment, VasCm};

    fn id(text: &str) -> EventId {
        EventId::new(text).expect("id")
    }

    fn event(event_id: &str, visit: Option<&str>, body: EventBody) -> Event {
        let needs_subject = body.needs_subject();
        Event::new(
            id(event_id),
            StudyId::new("S").expect("study"),
            needs_subject.then(|| SubjectId::new("P1").expect("subject")),
            visit.map(|visit| VisitId::new(visit).expect("visit")),
            ClinicalDate::new(2024, 1, 15).expect("date"),
            body,
        )
        .expect("event")
    }

    fn globals(cm: i64) -> Assessment {
        Assessment::Globals {
            physician: Some(GlobalAssessment::Vas(
                VasCm::from_cm(myolog_domain::Decimal::from(cm)).expect("vas"),
            )),
            patient: None,
            extramuscular: None,
        }
    }

    fn retraction(event_id: &str, retracts: &str, visit: &str) -> Event {
        event(
            event_id,
            Some(visit),
            EventBody::AssessmentRetracted {
                retracts: id(retracts),
                reason: Reason::new("entered for the wrong subject").expect("reason"),
            },
        )
    }

    /// A study with P1 enrolled, a baseline form r1 and a week-12 form w1 corrected by c1.
    fn projection() -> Projection {
        let mut projection = Projection::default();
        let events = [
            event(
                "reg",
                None,
                EventBody::StudyRegistered {
                    title: "t".into(),
                    population: Population::Adult,
                    baseline_visit: VisitId::new("BL").expect("visit"),
                    protocol: None,
                    blinded: false,
                },
            ),
            event(
                "enr",
                None,
                EventBody::SubjectEnrolled {
                    arm: String::new(),
                    population: None,
                    site: None,
                    facts: EnrolmentFacts::default(),
                },
            ),
            event("r1", Some("BL"), EventBody::AssessmentRecorded(globals(6))),
            event("w1", Some("W12"), EventBody::AssessmentRecorded(globals(4))),
            event(
                "c1",
                Some("W12"),
                EventBody::AssessmentCorrected {
                    supersedes: id("w1"),
                    reason: Reason::new("typo").expect("reason"),
                    corrected: globals(3),
                },
            ),
        ];
        for (seq, event) in events.iter().enumerate() {
            assert!(
                projection
                    .check_batch(std::slice::from_ref(event))
                    .is_empty()
            );
            projection.apply(seq as u64 + 1, event);
        }
        projection
    }

    fn live(projection: &Projection, visit: &str) -> usize {
        projection.studies[&StudyId::new("S").expect("study")].subjects
            [&SubjectId::new("P1").expect("subject")]
            .visits[&VisitId::new(visit).expect("visit")]
            .live
            .len()
    }

    #[test]
    fn a_retraction_drops_the_form_from_the_live_set_and_keeps_the_event() {
        let mut projection = projection();
        assert_eq!(live(&projection, "W12"), 1);
        let retract = retraction("x1", "c1", "W12");
        assert!(
            projection
                .check_batch(std::slice::from_ref(&retract))
                .is_empty()
        );
        let touched = projection.apply(6, &retract).expect("the visit changed");
        assert_eq!(touched.subject.as_str(), "P1");
        assert_eq!(live(&projection, "W12"), 0);
        assert_eq!(live(&projection, "BL"), 1);
        assert_eq!(projection.seq_of(&id("x1")), Some(6));
        assert!(
            projection.studies[&StudyId::new("S").expect("study")].subjects
                [&SubjectId::new("P1").expect("subject")]
                .visits[&VisitId::new("W12").expect("visit")]
                .assessments()
                .physician_global
                .is_none()
        );
    }

    #[test]
    fn only_a_live_form_of_the_same_visit_can_be_retracted() {
        let mut projection = projection();
        let field = "events[0].assessment_retracted.retracts_event_id";
        let cases = [
            (
                retraction("x", "w1", "W12"),
                "already superseded or retracted",
            ),
            (
                retraction("x", "nope", "W12"),
                "no assessment with event id nope",
            ),
            (
                retraction("x", "r1", "W12"),
                "not of this subject and visit",
            ),
            (
                retraction("x", "reg", "W12"),
                "no assessment with event id reg",
            ),
        ];
        for (event, expected) in cases {
            let violations = projection.check_batch(std::slice::from_ref(&event));
            assert_eq!(violations.len(), 1, "{expected}");
            assert_eq!(violations[0].field, field);
            assert!(
                violations[0].description.contains(expected),
                "{violations:?}"
            );
        }
        // Twice in one batch, or once more after it is applied: the second is refused.
        let twice = [retraction("x1", "c1", "W12"), retraction("x2", "c1", "W12")];
        assert_eq!(projection.check_batch(&twice).len(), 1);
        projection.apply(6, &twice[0]);
        assert_eq!(
            projection
                .check_batch(std::slice::from_ref(&twice[1]))
                .len(),
            1
        );
        // A retracted form cannot be corrected either.
        let correction = event(
            "c2",
            Some("W12"),
            EventBody::AssessmentCorrected {
                supersedes: id("c1"),
                reason: Reason::new("again").expect("reason"),
                corrected: globals(2),
            },
        );
        assert_eq!(
            projection
                .check_batch(std::slice::from_ref(&correction))
                .len(),
            1
        );
    }
}
