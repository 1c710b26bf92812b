//! One small hand-built cohort per trial protocol (STIR, MYOJAK, BIRD), end to end over a real server:
//! every endpoint of the protocol file, the visit deviations (early and late outside the window, a
//! scheduled visit not attended, an unknown visit id rejected with nothing stored), and every
//! eligibility criterion with each verdict it can take. Each case is data — the subjects as sent and
//! the tables expected, in `tests/data/cohorts/<trial>.toml` (see its README) — checked by one
//! `check(trial, expected)`.
//!
//! The expected values are derived by hand from the definitions in `docs/clinical.md`, never by calling
//! the code under test (each cohort file's header gives the derivation). The visit profiles below, against the baseline profile `B` (globals 6.0 cm,
//! MMT-8 130/150, HAQ-DI 1.5, CK 800 with ULN 200, CDASI activity 20), score as follows:
//!
//! - `STRONG` (globals 1.0, MMT-8 150, HAQ-DI 0, CK 200, CDASI 6). TIS by range of scale: globals
//!   5/10 = 50% (> 40: 20 + 10 + 20), MMT-8 20/150 = 13.3% (> 10-20: 20), HAQ-DI 1.5/3 = 50% (10),
//!   CK relative 600/800 = 75% (7.5): 87.5, major. DOI: 5 of 6 improved >= 20% (MMT-8 only 15.4%),
//!   none worsened: met. CDASI 20 -> 6: -14, MCID (4) reached.
//! - `MODERATE` (PhGA 3.0, PtGA 5.0, ExtraM 3.0, MMT-8 130, HAQ-DI 1.2, CK 800, CDASI 17). TIS: PhGA
//!   30% (17.5), PtGA 10% (2.5), ExtraM 30% (15), MMT-8 0, HAQ-DI 0.3/3 = 10% (5), CK 0: 40, moderate.
//!   DOI: PhGA 50%, ExtraM 50%, HAQ-DI exactly 20% (inclusive): 3 improved, met. CDASI -3: no MCID.
//! - `B` again (no change): TIS 0 (none), DOI not met (nothing improved), CDASI 0.
//!
//! Responder CIs are exact Clopper-Pearson 95% limits, computed independently (scipy
//! `beta.ppf(0.025, x, n - x + 1)`, `beta.ppf(0.975, x + 1, n - x)`; closed form for x = n:
//! 0.025^(1/n)).

use std::path::{Path, PathBuf};

use myolog_cli::study::{self, RegisterArgs};
use myolog_proto::v1 as pb;
use myolog_server::server::Running;
use myolog_synth as synth;
use myolog_tests::{Clients, start};
use pb::assessment_recorded::Instrument;
use serde::Deserialize;
use tonic_types::StatusExt;

/// Day 0 of every subject (enrolment, randomisation): 2024-01-08.
const DAY_ZERO: i64 = 19_730;

fn date(day: i64) -> String {
    synth::date_from_days(DAY_ZERO + day)
}

/// What one visit records; `None` = not recorded. Globals in cm, MMT-8 on 0-150, HAQ-DI as a total,
/// CK with ULN 200 U/L, CDASI as its activity score, labs as (CXCL9, CXCL10, STAT1 IHC score).
#[derive(Debug, Clone, Copy, Default)]
struct Forms {
    phga: Option<&'static str>,
    ptga: Option<&'static str>,
    extram: Option<&'static str>,
    mmt: Option<u32>,
    haq: Option<&'static str>,
    ck: Option<&'static str>,
    cdasi: Option<u32>,
    labs: Option<(&'static str, &'static str, &'static str)>,
}

const B: Forms = Forms {
    phga: Some("6.0"),
    ptga: Some("6.0"),
    extram: Some("6.0"),
    mmt: Some(130),
    haq: Some("1.5"),
    ck: Some("800"),
    cdasi: Some(20),
    labs: None,
};

const STRONG: Forms = Forms {
    phga: Some("1.0"),
    ptga: Some("1.0"),
    extram: Some("1.0"),
    mmt: Some(150),
    haq: Some("0"),
    ck: Some("200"),
    cdasi: Some(6),
    labs: None,
};

const MODERATE: Forms = Forms {
    phga: Some("3.0"),
    ptga: Some("5.0"),
    extram: Some("3.0"),
    mmt: Some(130),
    haq: Some("1.2"),
    ck: Some("800"),
    cdasi: Some(17),
    labs: None,
};

/// Normal core set values: nothing abnormal for BIRD's "at least 2 abnormal measures".
const NORMAL: Forms = Forms {
    phga: Some("1.0"),
    ptga: Some("1.0"),
    extram: Some("1.0"),
    mmt: Some(130),
    haq: Some("0"),
    ck: Some("100"),
    cdasi: Some(25),
    labs: None,
};

/// One subject as sent: arm, enrolment facts, the visits (id, protocol day, forms) and dose records
/// (visit id, SCR for history before the study; day; study drug or not; mg/day).
#[derive(Debug, Clone)]
struct SubjectInput {
    id: &'static str,
    arm: &'static str,
    enrolment: Enrolment,
    visits: Vec<(&'static str, i64, Forms)>,
    doses: Vec<(&'static str, i64, bool, &'static str)>,
}

#[derive(Debug, Clone)]
struct Trial {
    file: &'static str,
    study: &'static str,
    subjects: Vec<SubjectInput>,
    /// A visit id the protocol does not know (or does not plan for the first subject's arm), sent for
    /// the first subject, with the violation expected.
    unknown_visit: (&'static str, &'static str),
}

/// One endpoint table: subjects, missing, not evaluable, deviations, responders (n, N, CI low, CI
/// high as percentages with 2 decimals) and TIS categories (none, minimal, moderate, major).
#[derive(Debug, Clone, PartialEq)]
struct Table {
    endpoint: &'static str,
    subjects: u32,
    missing: u32,
    not_evaluable: u32,
    deviations: u32,
    responders: Option<(u32, u32, &'static str, &'static str)>,
    categories: Option<[u32; 4]>,
}

/// One subject's responder endpoint: (endpoint, responder, counts as).
type ResponderRow = (&'static str, &'static str, Option<bool>);

/// What one leaf rule saw: (rule, value, verdict).
type SeenRow = (String, String, String);

#[derive(Debug, Clone)]
struct Expected {
    /// (eligible, not eligible, not evaluable) of N.
    eligible: (u32, u32, u32),
    /// Per criterion: (id, met, not met, not applicable, not evaluable).
    criteria: Vec<(&'static str, [u32; 4])>,
    /// Per subject: overall verdict and each criterion's verdict in protocol order.
    subject_eligibility: Vec<(&'static str, &'static str, Vec<&'static str>)>,
    tables: Vec<Table>,
    /// The protocol's arms, in protocol order: one table per arm comes with every endpoint table.
    arms: Vec<&'static str>,
    /// The per-arm tables of some endpoints, as (arm, table), in endpoint then arm order; the other
    /// endpoints' arm tables are held only to adding up to the pooled ones.
    arm_tables: Vec<(&'static str, Table)>,
    /// Some visits' per-arm statistics: (visit, arm, subjects, DOI met, DOI evaluable), in visit
    /// then arm order; the other visits are held only to adding up.
    visit_arms: Vec<(&'static str, &'static str, u32, u32, u32)>,
    /// Per subject, each responder endpoint: (endpoint, responder, counts as).
    subject_endpoints: Vec<(&'static str, Vec<ResponderRow>)>,
    /// Visits outside their window: (subject, visit, days outside, deviation text).
    deviations: Vec<(&'static str, &'static str, i32, &'static str)>,
}

fn protocol_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocols")
        .join(name)
}

fn cdasi(activity: u32) -> pb::Cdasi {
    let mut remaining = activity;
    // Up to 6 points a location: erythema 3, scale 2, erosion 1.
    let mut next = || {
        let take = remaining.min(6);
        remaining -= take;
        (take > 0).then(|| pb::CdasiLocation {
            erythema: take.min(3),
            scale: take.saturating_sub(3).min(2),
            erosion: take.saturating_sub(5),
            ..Default::default()
        })
    };
    pb::Cdasi {
        locations: Some(pb::CdasiLocations {
            scalp: next(),
            malar: next(),
            periorbital: next(),
            rest_of_face: next(),
            v_neck: next(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn vas(cm: Option<&str>) -> Option<pb::Vas> {
    cm.map(|cm| pb::Vas {
        value: Some(pb::vas::Value::Cm(cm.into())),
    })
}

fn event(
    study: &str,
    subject: &str,
    visit: &str,
    day: i64,
    suffix: &str,
    body: pb::event::Body,
) -> pb::Event {
    pb::Event {
        source_audit: None,
        event_id: format!("{study}.{subject}.{visit}.{suffix}"),
        study_id: study.into(),
        subject_id: subject.into(),
        visit_id: visit.into(),
        clinical_date: date(day),
        body: Some(body),
    }
}

fn forms(study: &str, subject: &str, visit: &str, day: i64, forms: &Forms) -> Vec<pb::Event> {
    let mut instruments = Vec::new();
    if forms.phga.is_some() || forms.ptga.is_some() || forms.extram.is_some() {
        instruments.push((
            "globals",
            Instrument::Globals(pb::Globals {
                physician_global: vas(forms.phga),
                patient_global: vas(forms.ptga),
                extramuscular_global: vas(forms.extram),
            }),
        ));
    }
    if let Some(total) = forms.mmt {
        instruments.push((
            "mmt8",
            Instrument::Mmt8(pb::Mmt8 {
                max: 150,
                total: Some(total),
                grades: None,
            }),
        ));
    }
    if let Some(value) = forms.haq {
        instruments.push((
            "haq",
            Instrument::HaqDi(pb::HaqDi {
                value: value.into(),
            }),
        ));
    }
    if let Some(value) = forms.ck {
        instruments.push((
            "enzymes",
            Instrument::Enzymes(pb::Enzymes {
                ck: Some(pb::EnzymeResult {
                    value: value.into(),
                    uln: "200".into(),
                    unit: "U/L".into(),
                }),
                ..Default::default()
            }),
        ));
    }
    if let Some(activity) = forms.cdasi {
        instruments.push(("cdasi", Instrument::Cdasi(cdasi(activity))));
    }
    if let Some((cxcl9, cxcl10, stat1)) = forms.labs {
        for (code, value) in [("CXCL9", cxcl9), ("CXCL10", cxcl10)] {
            instruments.push((
                code,
                Instrument::Lab(pb::LabMeasurement {
                    code: code.into(),
                    value: value.into(),
                    unit: "pg/mL".into(),
                }),
            ));
        }
        instruments.push((
            "stat1",
            Instrument::Stat1(pb::SkinBiopsyStat1 {
                value: Some(pb::skin_biopsy_stat1::Value::IhcScore(stat1.into())),
            }),
        ));
    }
    instruments
        .into_iter()
        .map(|(suffix, instrument)| {
            event(
                study,
                subject,
                visit,
                day,
                suffix,
                pb::event::Body::AssessmentRecorded(pb::AssessmentRecorded {
                    instrument: Some(instrument),
                }),
            )
        })
        .collect()
}

fn enrolment(study: &str, subject: &SubjectInput) -> pb::Event {
    let facts = subject.enrolment.clone();
    let enrolled = pb::SubjectEnrolled {
        arm: subject.arm.into(),
        population: 0,
        site_id: String::new(),
        age_years: facts.age_years,
        muscle_active: facts.muscle_active,
        prednisone_stable_weeks: facts.prednisone_stable_weeks,
        informed_consent_date: facts.informed_consent_day.map(date),
        treatment_naive: facts.treatment_naive,
        glucocorticoid_exposed: facts.glucocorticoid_exposed,
        on_immunosuppressant: facts.on_immunosuppressant,
        immunosuppressant_stable_months: facts.immunosuppressant_stable_months,
        skin_biopsy_proven: facts.skin_biopsy_proven,
        bohan_peter_definite_or_probable: facts.bohan_peter_definite_or_probable,
        enmc_239_dermatomyositis: facts.enmc_239_dermatomyositis,
        eular_acr_probability_percent: facts.eular_acr_probability_percent,
        fi3_percent_of_upper: facts.fi3_percent_of_upper,
        active_extramuscular_disease: facts.active_extramuscular_disease,
        recent_inflammation_biopsy_or_mri: facts.recent_inflammation_biopsy_or_mri,
        severe_swallowing_trouble: facts.severe_swallowing_trouble,
        negative_cancer_screening: facts.negative_cancer_screening,
        disease_duration_months: facts.disease_duration_months,
        glucocorticoid_treated_weeks: facts.glucocorticoid_treated_weeks,
        treatment_history: facts
            .treatment_history
            .map(|treatments| pb::TreatmentHistory {
                treatments: treatments
                    .into_iter()
                    .map(|treatment| pb::PriorTreatment {
                        drug: treatment.drug,
                        last_dose_date: treatment.last_dose_day.map(date),
                        response: match treatment.response.as_deref() {
                            None => pb::TreatmentResponse::Unspecified,
                            Some("responded") => pb::TreatmentResponse::Responded,
                            Some("failed") => pb::TreatmentResponse::Failed,
                            Some("intolerant") => pb::TreatmentResponse::Intolerant,
                            Some(other) => panic!("{}: unknown response {other}", subject.id),
                        } as i32,
                    })
                    .collect(),
            }),
        attestations: facts
            .attestations
            .into_iter()
            .map(|attested| pb::Attestation {
                code: attested.code,
                value: attested.value,
            })
            .collect(),
        ..Default::default()
    };
    event(
        study,
        subject.id,
        "",
        0,
        "enrolled",
        pb::event::Body::SubjectEnrolled(enrolled),
    )
    .with_id(format!("{study}.{}.enrolled", subject.id))
}

trait WithId {
    fn with_id(self, id: String) -> Self;
}

impl WithId for pb::Event {
    fn with_id(mut self, id: String) -> Self {
        self.event_id = id;
        self
    }
}

fn dose(
    study: &str,
    subject: &str,
    (visit, day, study_drug, mg): (&str, i64, bool, &str),
) -> pb::Event {
    let (kind, drug) = if study_drug {
        (pb::DoseKind::StudyDrug, "study drug")
    } else {
        (pb::DoseKind::Glucocorticoid, "prednisone")
    };
    event(
        study,
        subject,
        visit,
        day,
        &format!("dose.day{day}"),
        pb::event::Body::DoseRecorded(pb::DoseRecorded {
            kind: kind as i32,
            drug: drug.into(),
            mg_per_day: mg.into(),
        }),
    )
}

fn batch(events: Vec<pb::Event>) -> pb::SubmitRequest {
    pb::SubmitRequest {
        batch_id: String::new(),
        events,
    }
}

/// Every event of one subject: enrolment, each visit's forms, the dose records.
fn subject_events(study: &str, subject: &SubjectInput) -> Vec<pb::Event> {
    let mut events = vec![enrolment(study, subject)];
    for (visit, day, visit_forms) in &subject.visits {
        events.extend(forms(study, subject.id, visit, *day, visit_forms));
    }
    for record in &subject.doses {
        events.push(dose(study, subject.id, *record));
    }
    events
}

/// A server with the trial's protocol registered (`myolog study register`), nothing else.
async fn registered(dir: &Path, trial: &Trial) -> (Running, Clients) {
    let server = start(dir).await;
    let clients = Clients::connect(&server).await;
    let register = RegisterArgs {
        file: protocol_path(trial.file),
        addr: server.url(),
        study: None,
        amend: false,
        date: Some(date(-60)),
        event_id: None,
        tls: Default::default(),
    };
    study::register(&register, &mut Vec::new())
        .await
        .expect("register");
    (server, clients)
}

fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

async fn subject(
    clients: &mut Clients,
    study: &str,
    id: &str,
    version: Option<u32>,
) -> pb::SubjectOutcomes {
    clients
        .outcomes
        .get_subject(pb::GetSubjectRequest {
            study_id: study.into(),
            subject_id: id.into(),
            protocol_version: version,
        })
        .await
        .expect("get subject")
        .into_inner()
}

async fn cohort(clients: &mut Clients, study: &str, version: Option<u32>) -> pb::CohortOutcomes {
    clients
        .outcomes
        .get_cohort(pb::GetCohortRequest {
            study_id: study.into(),
            visit_id: String::new(),
            protocol_version: version,
        })
        .await
        .expect("get cohort")
        .into_inner()
}

fn tables_of(cohort: &pb::CohortOutcomes) -> Vec<Table> {
    cohort
        .endpoints
        .iter()
        .map(|t| {
            table_of(
                &t.endpoint,
                [t.subjects, t.missing, t.not_evaluable, t.deviations],
                t.responders.as_ref(),
                &t.table_json,
            )
        })
        .collect()
}

/// The per-arm tables of every endpoint, as (arm, table of the arm's subjects).
fn arm_tables_of(cohort: &pb::CohortOutcomes) -> Vec<(String, Table)> {
    cohort
        .endpoints
        .iter()
        .flat_map(|t| {
            t.arms.iter().map(|arm| {
                (
                    arm.arm.clone(),
                    table_of(
                        &t.endpoint,
                        [arm.subjects, arm.missing, arm.not_evaluable, arm.deviations],
                        arm.responders.as_ref(),
                        &arm.table_json,
                    ),
                )
            })
        })
        .collect()
}

/// One served table (pooled or one arm's) in the shape of the expected ones.
fn table_of(
    endpoint: &str,
    [subjects, missing, not_evaluable, deviations]: [u32; 4],
    responders: Option<&pb::Proportion>,
    table_json: &str,
) -> Table {
    let json: serde_json::Value = serde_json::from_str(table_json).expect("table json");
    let categories = json["categories"].as_array().map(|rows| {
        let count = |name: &str| {
            rows.iter()
                .find(|row| row[0] == name)
                .and_then(|row| row[1].as_u64())
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(u32::MAX)
        };
        [
            count("none"),
            count("minimal"),
            count("moderate"),
            count("major"),
        ]
    });
    // Leaked only for the comparison: the expected tables hold &'static str.
    let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    Table {
        endpoint: leak(endpoint.to_string()),
        subjects,
        missing,
        not_evaluable,
        deviations,
        responders: responders.map(|p| {
            (
                p.responders,
                p.total,
                leak(format!("{:.2}", p.ci_low * 100.0)),
                leak(format!("{:.2}", p.ci_high * 100.0)),
            )
        }),
        categories,
    }
}

/// Each visit's statistics come per arm for the arms with data at the visit, in protocol order, and
/// (every test subject's arm being known) the arms' counts add up to those of every subject.
fn check_visit_arms_add_up(cohort: &pb::CohortOutcomes, arms: &[&str], study: &str) {
    for visit in &cohort.visits {
        let served: Vec<&str> = visit.arms.iter().map(|arm| arm.arm.as_str()).collect();
        let in_order: Vec<&str> = arms
            .iter()
            .copied()
            .filter(|arm| served.contains(arm))
            .collect();
        assert_eq!(served, in_order, "{study} {}", visit.visit_id);
        assert!(
            visit.arm.is_empty() && visit.arms.iter().all(|arm| arm.arms.is_empty()),
            "{study} {}",
            visit.visit_id
        );
        let counts = |v: &pb::CohortVisit| {
            let doi = v.doi_responders.unwrap_or_default();
            let tis = v.tis.unwrap_or_default();
            let mcid = v.cdasi_mcid.unwrap_or_default();
            [
                v.subjects,
                doi.responders,
                doi.total,
                tis.evaluable,
                tis.none,
                tis.minimal,
                tis.moderate,
                tis.major,
                mcid.responders,
                mcid.total,
            ]
        };
        let sum = visit.arms.iter().map(counts).fold([0; 10], |mut sum, c| {
            sum.iter_mut().zip(c).for_each(|(s, c)| *s += c);
            sum
        });
        assert_eq!(sum, counts(visit), "{study} {}", visit.visit_id);
    }
}

/// Every endpoint table comes once per protocol arm, in protocol order, and (every test subject's
/// arm being known) the arms' counts add up to the pooled table's.
fn check_arm_tables_add_up(cohort: &pb::CohortOutcomes, arms: &[&str], study: &str) {
    for table in &cohort.endpoints {
        let served: Vec<&str> = table.arms.iter().map(|arm| arm.arm.as_str()).collect();
        assert_eq!(served, arms, "{study} {}", table.endpoint);
        let sum =
            |field: fn(&pb::EndpointArmTable) -> u32| table.arms.iter().map(field).sum::<u32>();
        assert_eq!(
            [
                sum(|a| a.subjects),
                sum(|a| a.missing),
                sum(|a| a.not_evaluable),
                sum(|a| a.deviations),
                sum(|a| a.responders.as_ref().map_or(0, |p| p.responders)),
                sum(|a| a.responders.as_ref().map_or(0, |p| p.total)),
            ],
            [
                table.subjects,
                table.missing,
                table.not_evaluable,
                table.deviations,
                table.responders.as_ref().map_or(0, |p| p.responders),
                table.responders.as_ref().map_or(0, |p| p.total),
            ],
            "{study} {}",
            table.endpoint
        );
        assert!(
            table
                .arms
                .iter()
                .all(|arm| arm.responders.is_some() == table.responders.is_some()),
            "{study} {}: a responder rule is the endpoint's, so every arm has it or none",
            table.endpoint
        );
    }
}

fn criterion_counts(table: &pb::EligibilityTable) -> Vec<(String, [u32; 4])> {
    table
        .criteria
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                [c.met, c.not_met, c.not_applicable, c.not_evaluable],
            )
        })
        .collect()
}

/// Sends the trial's cohort to a fresh server and compares everything the service reports with the
/// hand-written expectation.
async fn check(trial: Trial, expected: Expected) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, mut clients) = registered(dir.path(), &trial).await;
    let protocol = format!("{} v1", trial.study);

    // An unknown visit id: INVALID_ARGUMENT naming the field, nothing of the batch stored.
    let head = clients.head().await;
    let first = &trial.subjects[0];
    let (unknown, description) = trial.unknown_visit;
    let mut events = vec![enrolment(trial.study, first)];
    events.extend(forms(trial.study, first.id, unknown, 84, &B));
    let status = clients
        .ingest
        .append(batch(events))
        .await
        .expect_err("unknown visit rejected");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        violations(&status)[0],
        ("events[1].visit_id".to_string(), description.to_string()),
        "{}",
        trial.study
    );
    assert_eq!(clients.head().await, head, "nothing stored");

    // An enrolment fact out of range: the field and its range named, nothing stored.
    let mut too_old = first.clone();
    too_old.enrolment.age_years = Some(121);
    too_old.enrolment.muscle_active = None;
    too_old.enrolment.prednisone_stable_weeks = Some(521);
    let status = clients
        .ingest
        .append(batch(vec![enrolment(trial.study, &too_old)]))
        .await
        .expect_err("facts out of range rejected");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        vec![
            (
                "events[0].subject_enrolled.age_years".to_string(),
                "121 is out of range; allowed: 0 to 120 completed years, or absent when not recorded"
                    .to_string()
            ),
            (
                "events[0].subject_enrolled.prednisone_stable_weeks".to_string(),
                "521 is out of range; allowed: 0 to 520 weeks, or absent when not recorded"
                    .to_string()
            ),
        ]
    );
    assert_eq!(clients.head().await, head, "nothing stored");

    for input in &trial.subjects {
        clients
            .append(batch(subject_events(trial.study, input)))
            .await;
    }

    // Per subject: eligibility criterion by criterion, and each responder endpoint.
    for (id, verdict, criteria) in &expected.subject_eligibility {
        let outcomes = subject(&mut clients, trial.study, id, None).await;
        let eligibility = outcomes.eligibility.expect("eligibility");
        assert_eq!(eligibility.protocol, protocol);
        assert_eq!(eligibility.baseline_visit_id, "BL", "{id}");
        let got: Vec<&str> = eligibility
            .criteria
            .iter()
            .map(|c| c.verdict.as_str())
            .collect();
        assert_eq!(
            (eligibility.verdict.as_str(), got),
            (*verdict, criteria.clone()),
            "{} {id}: {:#?}",
            trial.study,
            eligibility.criteria
        );
    }
    for (id, endpoints) in &expected.subject_endpoints {
        let outcomes = subject(&mut clients, trial.study, id, None).await;
        let got: Vec<(&str, &str, Option<bool>)> = outcomes
            .endpoints
            .iter()
            .filter(|e| !e.responder.is_empty())
            .map(|e| {
                assert_eq!(e.protocol, protocol);
                (
                    e.endpoint.as_str(),
                    e.responder.as_str(),
                    e.counts_as_responder,
                )
            })
            .collect();
        assert_eq!(&got, endpoints, "{} {id}", trial.study);
    }
    for (id, visit, days_outside, text) in &expected.deviations {
        let outcomes = subject(&mut clients, trial.study, id, None).await;
        let schedule = outcomes
            .visits
            .iter()
            .find(|v| v.visit_id == *visit)
            .and_then(|v| v.schedule.clone())
            .expect("the visit is scored with its schedule");
        assert_eq!(
            (
                schedule.deviation,
                schedule.days_outside,
                schedule.deviation_text.as_str()
            ),
            (true, *days_outside, *text),
            "{} {id} {visit}",
            trial.study
        );
    }

    // The cohort: endpoint tables and the eligibility table.
    let cohort = cohort(&mut clients, trial.study, None).await;
    assert!(cohort.endpoints.iter().all(|t| t.protocol == protocol));
    assert_eq!(tables_of(&cohort), expected.tables, "{}", trial.study);
    check_arm_tables_add_up(&cohort, &expected.arms, trial.study);
    check_visit_arms_add_up(&cohort, &expected.arms, trial.study);
    let visit_arms: Vec<(String, String, u32, u32, u32)> = cohort
        .visits
        .iter()
        .flat_map(|visit| {
            visit.arms.iter().map(|arm| {
                let doi = arm.doi_responders.unwrap_or_default();
                (
                    visit.visit_id.clone(),
                    arm.arm.clone(),
                    arm.subjects,
                    doi.responders,
                    doi.total,
                )
            })
        })
        .filter(|(visit, ..)| expected.visit_arms.iter().any(|(v, ..)| v == visit))
        .collect();
    let wanted: Vec<(String, String, u32, u32, u32)> = expected
        .visit_arms
        .iter()
        .map(|(visit, arm, subjects, met, evaluable)| {
            (
                visit.to_string(),
                arm.to_string(),
                *subjects,
                *met,
                *evaluable,
            )
        })
        .collect();
    assert_eq!(visit_arms, wanted, "{} per-arm visit tables", trial.study);
    let chosen: Vec<(String, Table)> = arm_tables_of(&cohort)
        .into_iter()
        .filter(|(_, table)| {
            expected
                .arm_tables
                .iter()
                .any(|(_, wanted)| wanted.endpoint == table.endpoint)
        })
        .collect();
    let wanted: Vec<(String, Table)> = expected
        .arm_tables
        .iter()
        .map(|(arm, table)| ((*arm).to_string(), table.clone()))
        .collect();
    assert_eq!(chosen, wanted, "{} per-arm tables", trial.study);
    // `myolog outcomes` prints each arm's row under its endpoint when there is more than one arm.
    let mut printed = Vec::new();
    myolog_cli::demo::print_outcomes(
        &server.url(),
        &Default::default(),
        trial.study,
        // The first subject's first follow-up visit.
        trial.subjects[0].visits[1].0,
        None,
        &mut printed,
    )
    .await
    .expect("myolog outcomes");
    let printed = String::from_utf8(printed).expect("utf-8");
    let lines: Vec<&str> = printed.lines().collect();
    // The cohort at that visit: each arm's DOI responders under the line of every subject.
    let printed_visit = trial.subjects[0].visits[1].0;
    let at_visit = cohort
        .visits
        .iter()
        .find(|visit| visit.visit_id == printed_visit)
        .expect("the printed visit");
    let doi_line = lines
        .iter()
        .position(|line| line.starts_with("  IMACS DOI responders "))
        .unwrap_or_else(|| panic!("DOI line in:\n{printed}"));
    let shown_arms = if at_visit.arms.len() > 1 {
        at_visit.arms.len()
    } else {
        0
    };
    for (arm, line) in at_visit
        .arms
        .iter()
        .take(shown_arms)
        .zip(&lines[doi_line + 1..])
    {
        let doi = arm.doi_responders.unwrap_or_default();
        let start = format!("    {:<20} {}/{} ", arm.arm, doi.responders, doi.total);
        assert!(line.starts_with(&start), "{start:?} in:\n{printed}");
    }
    assert!(
        !lines[doi_line + 1 + shown_arms].starts_with("    "),
        "{shown_arms} arm lines in:\n{printed}"
    );
    for table in &cohort.endpoints {
        let at = lines
            .iter()
            .position(|line| line.starts_with(&format!("  {:<11} ", table.endpoint)))
            .unwrap_or_else(|| panic!("{} printed in:\n{printed}", table.endpoint));
        let arm_rows: Vec<String> = table
            .arms
            .iter()
            .map(|arm| {
                format!(
                    "    {:<9} {:>2} {:>2} {:>2} {:>2}",
                    arm.arm, arm.subjects, arm.missing, arm.not_evaluable, arm.deviations
                )
            })
            .collect();
        let shown = if expected.arms.len() > 1 {
            arm_rows.len()
        } else {
            0
        };
        let next: Vec<&str> = lines[at + 1..].iter().take(shown + 1).copied().collect();
        for (row, line) in arm_rows.iter().take(shown).zip(&next) {
            assert!(line.starts_with(row.as_str()), "{row:?} in:\n{printed}");
        }
        assert!(
            next.get(shown).is_none_or(|line| !line.starts_with("    ")),
            "{}: {shown} arm rows in:\n{printed}",
            table.endpoint
        );
    }
    let eligibility = cohort.eligibility.expect("eligibility table");
    assert_eq!(eligibility.protocol, protocol);
    let n = u32::try_from(trial.subjects.len()).expect("small");
    assert_eq!(
        (
            eligibility.subjects,
            eligibility.eligible,
            eligibility.not_eligible,
            eligibility.not_evaluable
        ),
        (
            n,
            expected.eligible.0,
            expected.eligible.1,
            expected.eligible.2
        ),
        "{}",
        trial.study
    );
    let criteria: Vec<(String, [u32; 4])> = expected
        .criteria
        .iter()
        .map(|(id, counts)| (id.to_string(), *counts))
        .collect();
    assert_eq!(criterion_counts(&eligibility), criteria, "{}", trial.study);
    server.stop().await.expect("stops");

    // The ADaM dataset replayed from the log: every row carries its subject's ARMCD and the
    // protocol's name for that arm (the arm rows of the per-arm tables above).
    let log = myolog_cli::audit::open_log(dir.path()).expect("log opens");
    let replayed = myolog_audit::replay::project(
        &log,
        myolog_audit::replay::AsOf::Head,
        &mut myolog_audit::progress::Progress::hidden(),
    )
    .expect("replay");
    let dataset = myolog_audit::adam::rows(&replayed);
    let arm_names = arm_names(trial.file);

    // `myolog replay --cohort`: per visit, the row of every subject and then one per arm with
    // data there, each with the served per-visit statistics and its own enrolled count.
    let mut csv = Vec::new();
    myolog_audit::replay::write_cohorts(&replayed, myolog_audit::replay::Format::Csv, &mut csv)
        .expect("cohort CSV");
    let csv = String::from_utf8(csv).expect("utf-8");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let picked = [
        "visit_id",
        "arm",
        "enrolled",
        "subjects",
        "doi_responders",
        "doi_evaluable",
        "tis_evaluable",
        "tis_major",
        "cdasi_mcid_reached",
    ];
    let written: Vec<Vec<String>> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            picked
                .iter()
                .map(|name| {
                    let at = header.iter().position(|h| h == name).expect("column");
                    fields[at].to_string()
                })
                .collect()
        })
        .collect();
    let enrolled_on = |arm: &str| trial.subjects.iter().filter(|s| s.arm == arm).count();
    let served: Vec<Vec<String>> = cohort
        .visits
        .iter()
        .flat_map(|visit| {
            std::iter::once((visit, u64::from(cohort.enrolled))).chain(
                visit
                    .arms
                    .iter()
                    .map(|arm| (arm, enrolled_on(&arm.arm) as u64)),
            )
        })
        .map(|(v, enrolled)| {
            let doi = v.doi_responders.unwrap_or_default();
            let tis = v.tis.unwrap_or_default();
            let mcid = v.cdasi_mcid.map(|m| m.responders.to_string());
            vec![
                v.visit_id.clone(),
                v.arm.clone(),
                enrolled.to_string(),
                v.subjects.to_string(),
                doi.responders.to_string(),
                doi.total.to_string(),
                tis.evaluable.to_string(),
                tis.major.to_string(),
                mcid.unwrap_or_default(),
            ]
        })
        .collect();
    assert_eq!(written, served, "{}", trial.study);
    assert_eq!(
        expected
            .arms
            .iter()
            .map(|arm| enrolled_on(arm))
            .sum::<usize>(),
        cohort.enrolled as usize,
        "{}: every subject is on an arm",
        trial.study
    );

    // The report: with more than one arm, each responder endpoint's table has one row per arm
    // with the served arm table's n/N; a single arm adds none.
    let html = myolog_audit::report::render(&replayed);
    let arm_rows: Vec<String> = cohort
        .endpoints
        .iter()
        .filter(|_| expected.arms.len() > 1)
        .flat_map(|table| &table.arms)
        .filter_map(|arm| {
            let p = arm.responders.as_ref()?;
            Some(format!(
                "<tr><td>Responders, {} ({})</td><td class=\"t responders-arm\">{}/{}",
                arm_names[&arm.arm], arm.arm, p.responders, p.total
            ))
        })
        .collect();
    for row in &arm_rows {
        assert!(html.contains(row.as_str()), "{row} in the report");
    }
    assert_eq!(
        html.matches("responders-arm").count(),
        arm_rows.len(),
        "{}",
        trial.study
    );
    // Its per-visit cohort table: with more than one arm, each visit's row is followed by one row
    // per arm with data there, with that arm's n and DOI responders n/N.
    let visit_arm_rows: Vec<String> = cohort
        .visits
        .iter()
        .filter(|_| expected.arms.len() > 1)
        .flat_map(|visit| visit.arms.iter().map(move |arm| (visit, arm)))
        .map(|(visit, arm)| {
            let doi = arm.doi_responders.unwrap_or_default();
            format!(
                "<tr class=\"cohort-arm\"><td>{}, arm {}</td><td>{}</td><td>{}/{}",
                visit.visit_id, arm.arm, arm.subjects, doi.responders, doi.total
            )
        })
        .collect();
    for row in &visit_arm_rows {
        assert!(html.contains(row.as_str()), "{row} in the report");
    }
    assert_eq!(
        html.matches("<tr class=\"cohort-arm\">").count(),
        visit_arm_rows.len(),
        "{}",
        trial.study
    );
    for subject in &trial.subjects {
        let rows: Vec<_> = dataset.iter().filter(|r| r.subjid == subject.id).collect();
        assert!(!rows.is_empty(), "{} {}", trial.study, subject.id);
        for row in rows {
            assert_eq!(
                (row.armcd.as_str(), row.arm.as_str()),
                (subject.arm, arm_names[subject.arm].as_str()),
                "{} {} {}",
                trial.study,
                subject.id,
                row.paramcd
            );
        }
    }
}

/// Arm code -> arm name, as the protocol file declares them.
fn arm_names(file: &str) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(protocol_path(file)).expect("protocol file");
    myolog_domain::protocol::Protocol::from_toml(file, &text)
        .expect("a valid protocol")
        .arms()
        .iter()
        .map(|arm| (arm.code.clone(), arm.name.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stir_cohort_endpoints_deviations_and_eligibility() {
    let (trial, expected) = cohort_file("stir");
    check(trial, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn myojak_cohort_endpoints_deviations_and_eligibility() {
    let (trial, expected) = cohort_file("myojak");
    check(trial, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bird_cohort_endpoints_deviations_and_eligibility() {
    let (trial, expected) = cohort_file("bird");
    check(trial, expected).await;
}

/// STIR's protocol with amendment 1: CDASI activity of at least 3 (IN02) and W12's window widened
/// to day 98.
fn stir_v2() -> String {
    let stir = std::fs::read_to_string(protocol_path("stir.toml")).expect("stir.toml");
    let amended = stir
        .replacen("version = 1 ", "version = 2 ", 1)
        .replacen(
            "op = \">=\", value = 5 }",
            "op = \">=\", value = 3 }",
            1,
        )
        .replacen("window = [77, 91]", "window = [77, 98]", 1)
        .replacen(
            "[study]",
            "[protocol.amendment]\nsummary = \"CDASI activity of at least 3; W12 window to day 98\"\n\n[study]",
            1,
        );
    assert_ne!(amended, stir);
    amended
}

fn verdicts(eligibility: &pb::SubjectEligibility) -> Vec<&str> {
    eligibility
        .criteria
        .iter()
        .map(|c| c.verdict.as_str())
        .collect()
}

/// Pushed endpoints and the values criteria saw on the STIR cohort: every Submit answer and Watch update of a protocol
/// study carries the subject's endpoint results naming the protocol version; the values each
/// criterion saw are served; after an amendment the version in force answers by default, the
/// earlier one when asked for, and a version that does not exist is INVALID_ARGUMENT naming
/// `protocol_version` and the versions there are.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stir_pushes_endpoints_and_answers_under_an_earlier_protocol_version() {
    let (trial, _) = cohort_file("stir");
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, mut clients) = registered(dir.path(), &trial).await;

    // Pushed: S01's W12 batch answers with the W12 outcome and the subject's endpoints under v1.
    let s01 = &trial.subjects[0];
    let (first_visits, later_visits) = s01.visits.split_at(3);
    let mut events = vec![enrolment("STIR", s01)];
    for (visit, day, visit_forms) in first_visits {
        events.extend(forms("STIR", s01.id, visit, *day, visit_forms));
    }
    clients.append(batch(events)).await;
    let mut watch = clients
        .outcomes
        .watch(pb::WatchRequest {
            study_id: "STIR".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let (visit, day, visit_forms) = later_visits[0];
    assert_eq!(visit, "W12");
    let answer = clients
        .append(batch(forms("STIR", s01.id, visit, day, &visit_forms)))
        .await;
    let outcome = answer
        .outcomes
        .iter()
        .find(|o| o.visit_id == "W12")
        .expect("the W12 outcome");
    let doi = outcome
        .endpoints
        .iter()
        .find(|e| e.endpoint == "DOI_W12")
        .expect("DOI_W12 pushed with the answer");
    assert_eq!(
        (
            doi.protocol.as_str(),
            doi.protocol_version,
            doi.responder.as_str(),
            doi.counts_as_responder
        ),
        ("STIR v1", 1, "responder", Some(true))
    );
    // Ten: CDASI_W16 (CTG-STIR's "Up to 16 weeks") joined the nine of the earlier file.
    assert_eq!(outcome.endpoints.len(), 10, "every STIR endpoint");
    // Watch sees the same outcomes the answer carried, endpoints included.
    let mut seen = Vec::new();
    while seen.len() < answer.outcomes.len() {
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), watch.message())
            .await
            .expect("an update within 5 s")
            .expect("stream open")
            .expect("outcome");
        seen.push(next);
    }
    assert_eq!(seen, answer.outcomes);

    // The rest of the cohort.
    let mut rest = Vec::new();
    for (visit, day, visit_forms) in &later_visits[1..] {
        rest.extend(forms("STIR", s01.id, visit, *day, visit_forms));
    }
    for record in &s01.doses {
        rest.push(dose("STIR", s01.id, *record));
    }
    clients.append(batch(rest)).await;
    for input in &trial.subjects[1..] {
        clients.append(batch(subject_events("STIR", input))).await;
    }

    // The values each criterion saw.
    let seen_by = |outcomes: &pb::SubjectOutcomes, criterion: &str| -> Vec<SeenRow> {
        outcomes
            .eligibility
            .as_ref()
            .and_then(|e| e.criteria.iter().find(|c| c.id == criterion))
            .map(|c| {
                c.seen
                    .iter()
                    .map(|s| (s.rule.clone(), s.value.clone(), s.verdict.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let owned = |rows: &[(&str, &str, &str)]| -> Vec<SeenRow> {
        rows.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    };
    let cases: [(&str, &str, Vec<SeenRow>); 7] = [
        (
            "S03",
            "IN01",
            owned(&[("age_years >= 18", "nothing", "not_evaluable")]),
        ),
        (
            "S03",
            "IN02",
            owned(&[("cdasi_activity >= 5", "4", "not_met")]),
        ),
        (
            "S04",
            "IN03",
            owned(&[
                ("muscle_active is true", "true", "met"),
                ("mmt8_total < 142", "145", "not_met"),
            ]),
        ),
        (
            "S06",
            "IN04",
            owned(&[
                ("prednisone_mg_per_day <= 20", "20", "met"),
                ("prednisone_stable_weeks >= 2", "4", "met"),
            ]),
        ),
        // S03's 100 mg on day -30, inside the 8 weeks before baseline.
        (
            "S03",
            "IN05",
            owned(&[(
                "max glucocorticoid mg/day within 8 weeks before baseline <= 80",
                "100",
                "not_met",
            )]),
        ),
        // S03's rituximab on day -200 (2023-06-22): 6 calendar months complete by 2024-01-08.
        (
            "S03",
            "IN11",
            owned(&[(
                "no rituximab within 12 months before baseline",
                "rituximab last given 200 days (6 completed months) before baseline",
                "not_met",
            )]),
        ),
        // S04's methotrexate on day -84 (2023-10-16): exactly 12 weeks, 2 months complete.
        (
            "S04",
            "IN14",
            owned(&[(
                "no methotrexate within 12 weeks before baseline",
                "methotrexate last given 84 days (2 completed months) before baseline",
                "met",
            )]),
        ),
    ];
    for (id, criterion, expected) in cases {
        let outcomes = subject(&mut clients, "STIR", id, None).await;
        assert_eq!(seen_by(&outcomes, criterion), expected, "{id} {criterion}");
    }

    // Amendment 1 (v2): IN02 >= 3, W12 window to day 98.
    let amended = dir.path().join("stir-v2.toml");
    std::fs::write(&amended, stir_v2()).expect("write v2");
    study::register(
        &RegisterArgs {
            file: amended,
            addr: server.url(),
            study: None,
            amend: true,
            date: Some(date(100)),
            event_id: None,
            tls: Default::default(),
        },
        &mut Vec::new(),
    )
    .await
    .expect("amend");

    // S03's verdicts with IN02 as given: only IN02 differs between the versions.
    let s03_under = |in02: &[&'static str]| -> Vec<&'static str> {
        let mut verdicts = vec!["not_evaluable"];
        verdicts.extend_from_slice(in02);
        verdicts.extend([
            "not_evaluable",
            "not_met",
            "not_met",
            "not_met",
            "not_met",
            "not_evaluable",
            // IN09-IN15, as tests/data/cohorts/stir.toml derives them for S03.
            "met",
            "not_met",
            "not_met",
            "met",
            "met",
            "met",
            "not_met",
        ]);
        verdicts
    };
    // (version asked, protocol named, S03's verdicts, IN02 counts, DOI_W12 deviations)
    let cases = [
        (None, "STIR v2", s03_under(&["met"]), [5, 0, 0, 1], 0),
        (Some(2), "STIR v2", s03_under(&["met"]), [5, 0, 0, 1], 0),
        (Some(1), "STIR v1", s03_under(&["not_met"]), [4, 1, 0, 1], 1),
    ];
    for (version, protocol, s03, in02, deviations) in cases {
        let outcomes = subject(&mut clients, "STIR", "S03", version).await;
        let eligibility = outcomes.eligibility.expect("eligibility");
        assert_eq!(
            (eligibility.protocol.as_str(), verdicts(&eligibility)),
            (protocol, s03),
            "{version:?}"
        );
        assert!(
            outcomes.endpoints.iter().all(|e| e.protocol == protocol),
            "{version:?}"
        );
        let cohort = cohort(&mut clients, "STIR", version).await;
        let table = cohort.eligibility.expect("eligibility table");
        assert_eq!(table.protocol, protocol);
        assert_eq!(
            criterion_counts(&table)[1],
            ("IN02".to_string(), in02),
            "{version:?}"
        );
        let doi = cohort
            .endpoints
            .iter()
            .find(|t| t.endpoint == "DOI_W12")
            .expect("DOI_W12");
        assert_eq!(
            (doi.protocol.as_str(), doi.deviations),
            (protocol, deviations),
            "{version:?}"
        );
    }

    // After the amendment, pushes name v2.
    let answer = clients
        .append(batch(forms("STIR", "S02", "W16", 112, &STRONG)))
        .await;
    assert!(
        answer
            .outcomes
            .iter()
            .flat_map(|o| &o.endpoints)
            .all(|e| e.protocol == "STIR v2" && e.protocol_version == 2)
    );
    assert!(!answer.outcomes.is_empty());
    // A dose record alone touches no visit, but can move an endpoint (a delayed start's first
    // dose, a prednisone-free window): the subject's follow-up outcomes are sent again, once each,
    // with the endpoints as they are now.
    let answer = clients
        .append(batch(vec![dose("STIR", "S01", ("W12", 84, false, "5"))]))
        .await;
    let visits: Vec<&str> = answer
        .outcomes
        .iter()
        .map(|o| o.visit_id.as_str())
        .collect();
    assert_eq!(visits, ["W4", "W8", "W12", "W16"]);
    assert!(
        answer
            .outcomes
            .iter()
            .all(|o| o.endpoints.len() == 10 && o.endpoints.iter().all(|e| e.protocol == "STIR v2"))
    );

    // A version the study does not have, or a version of a study without a protocol.
    clients
        .append(batch(vec![pb::Event {
            source_audit: None,
            event_id: "PLAIN.registered".into(),
            study_id: "PLAIN".into(),
            subject_id: String::new(),
            visit_id: String::new(),
            clinical_date: date(0),
            body: Some(pb::event::Body::StudyRegistered(pb::StudyRegistered {
                title: "no protocol".into(),
                population: pb::Population::Adult as i32,
                ..Default::default()
            })),
        }]))
        .await;
    let cases = [
        (
            "STIR",
            3,
            "study STIR has no protocol version 3; its versions are 1, 2",
        ),
        (
            "STIR",
            0,
            "study STIR has no protocol version 0; its versions are 1, 2",
        ),
        (
            "PLAIN",
            1,
            "protocol version 1 was asked for, but study PLAIN was registered without a protocol; leave protocol_version unset",
        ),
    ];
    for (study, version, description) in cases {
        let expected = vec![("protocol_version".to_string(), description.to_string())];
        let status = clients
            .outcomes
            .get_cohort(pb::GetCohortRequest {
                study_id: study.into(),
                visit_id: String::new(),
                protocol_version: Some(version),
            })
            .await
            .expect_err("unknown version");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(violations(&status), expected, "{study} {version}");
        if study == "STIR" {
            let status = clients
                .outcomes
                .get_subject(pb::GetSubjectRequest {
                    study_id: study.into(),
                    subject_id: "S01".into(),
                    protocol_version: Some(version),
                })
                .await
                .expect_err("unknown version");
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert_eq!(violations(&status), expected, "{study} {version}");
        }
    }
    server.stop().await.expect("stops");
}

// ---------------------------------------------------------------------------------------------
// The cohort files: `tests/data/cohorts/<trial>.toml` (their README says what each field holds).

/// One cohort file: the protocol file it runs under, the subjects as sent, and what is expected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CohortFile {
    /// The protocol file under `protocols/`.
    protocol: String,
    study: String,
    unknown_visit: UnknownVisitFile,
    subjects: Vec<SubjectFile>,
    expected: ExpectedFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnknownVisitFile {
    visit: String,
    violation: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectFile {
    id: String,
    arm: String,
    #[serde(default)]
    enrolment: Enrolment,
    visits: Vec<VisitFile>,
    #[serde(default)]
    doses: Vec<DoseFile>,
}

/// The facts of a subject's enrolment event, each absent when not recorded. Names as in
/// `SubjectEnrolled` (proto/myolog/v1/events.proto), except the consent date, given as a protocol day.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Enrolment {
    age_years: Option<u32>,
    muscle_active: Option<bool>,
    prednisone_stable_weeks: Option<u32>,
    informed_consent_day: Option<i64>,
    treatment_naive: Option<bool>,
    glucocorticoid_exposed: Option<bool>,
    on_immunosuppressant: Option<bool>,
    immunosuppressant_stable_months: Option<u32>,
    skin_biopsy_proven: Option<bool>,
    bohan_peter_definite_or_probable: Option<bool>,
    enmc_239_dermatomyositis: Option<bool>,
    eular_acr_probability_percent: Option<String>,
    fi3_percent_of_upper: Option<String>,
    active_extramuscular_disease: Option<bool>,
    recent_inflammation_biopsy_or_mri: Option<bool>,
    severe_swallowing_trouble: Option<bool>,
    negative_cancer_screening: Option<bool>,
    disease_duration_months: Option<u32>,
    glucocorticoid_treated_weeks: Option<u32>,
    /// Left out: no history reported; `[]`: none received.
    treatment_history: Option<Vec<PriorTreatmentInput>>,
    #[serde(default)]
    attestations: Vec<AttestationInput>,
}

/// A prior treatment as a cohort file writes it: the last dose as a protocol day (left out: not
/// known) and the response (`responded`, `failed`, `intolerant`; left out: not recorded).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorTreatmentInput {
    drug: String,
    last_dose_day: Option<i64>,
    response: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestationInput {
    code: String,
    value: bool,
}

/// The visit profiles a visit's forms start from (see the module doc for how each scores).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Profile {
    Baseline,
    Strong,
    Moderate,
    Normal,
    /// Nothing recorded: only the fields the visit names.
    Nothing,
}

/// A form a visit can leave out of its profile.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FormField {
    Phga,
    Ptga,
    Extram,
    Mmt,
    Haq,
    Ck,
    Cdasi,
    Labs,
}

/// One visit: its id, protocol day and forms (a profile, values that replace the profile's, and
/// forms left out of it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VisitFile {
    visit: String,
    day: i64,
    forms: Profile,
    phga: Option<String>,
    ptga: Option<String>,
    extram: Option<String>,
    mmt: Option<u32>,
    haq: Option<String>,
    ck: Option<String>,
    cdasi: Option<u32>,
    labs: Option<LabsFile>,
    #[serde(default)]
    omit: Vec<FormField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabsFile {
    cxcl9: String,
    cxcl10: String,
    stat1: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DoseKind {
    StudyDrug,
    Glucocorticoid,
}

/// One dose record: from `day` on, `mg_per_day` of the study drug or of prednisone (visit SCR for
/// history before the study).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DoseFile {
    visit: String,
    day: i64,
    kind: DoseKind,
    mg_per_day: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFile {
    eligible: u32,
    not_eligible: u32,
    not_evaluable: u32,
    arms: Vec<String>,
    criteria: Vec<CriterionFile>,
    subject_eligibility: Vec<SubjectEligibilityFile>,
    endpoints: Vec<EndpointFile>,
    #[serde(default)]
    arm_endpoints: Vec<EndpointFile>,
    #[serde(default)]
    visit_arms: Vec<VisitArmFile>,
    subject_endpoints: Vec<SubjectEndpointsFile>,
    #[serde(default)]
    deviations: Vec<DeviationFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CriterionFile {
    criterion: String,
    met: u32,
    not_met: u32,
    not_applicable: u32,
    not_evaluable: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectEligibilityFile {
    subject: String,
    verdict: String,
    /// Each criterion's verdict, in protocol order.
    criteria: Vec<String>,
}

/// One endpoint table; `arm` only in `arm_endpoints`. The responder fields come all four or none.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointFile {
    arm: Option<String>,
    endpoint: String,
    subjects: u32,
    missing: u32,
    not_evaluable: u32,
    deviations: u32,
    responders: Option<u32>,
    total: Option<u32>,
    ci_low: Option<String>,
    ci_high: Option<String>,
    categories: Option<CategoriesFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoriesFile {
    none: u32,
    minimal: u32,
    moderate: u32,
    major: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VisitArmFile {
    visit: String,
    arm: String,
    subjects: u32,
    doi_met: u32,
    doi_evaluable: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectEndpointsFile {
    subject: String,
    endpoints: Vec<ResponderFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponderFile {
    endpoint: String,
    responder: String,
    counts_as_responder: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviationFile {
    subject: String,
    visit: String,
    days_outside: i32,
    text: String,
}

/// A string of a cohort file kept for the rest of the process. The files are read once per test and
/// are a few KB; `'static` text lets them fill the same tables as the constant visit profiles.
fn keep(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// The trial and its expected results from `tests/data/cohorts/<name>.toml`.
fn cohort_file(name: &str) -> (Trial, Expected) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/cohorts")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let file: CohortFile =
        toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let subjects = file
        .subjects
        .into_iter()
        .map(|subject| SubjectInput {
            id: keep(subject.id),
            arm: keep(subject.arm),
            enrolment: subject.enrolment,
            visits: subject
                .visits
                .into_iter()
                .map(|visit| (keep(visit.visit.clone()), visit.day, visit_forms(visit)))
                .collect(),
            doses: subject
                .doses
                .into_iter()
                .map(|dose| {
                    (
                        keep(dose.visit),
                        dose.day,
                        dose.kind == DoseKind::StudyDrug,
                        keep(dose.mg_per_day),
                    )
                })
                .collect(),
        })
        .collect();
    let trial = Trial {
        file: keep(file.protocol),
        study: keep(file.study),
        subjects,
        unknown_visit: (
            keep(file.unknown_visit.visit),
            keep(file.unknown_visit.violation),
        ),
    };
    let expected = file.expected;
    let table_from = |table: EndpointFile| {
        let responders = match (table.responders, table.total, table.ci_low, table.ci_high) {
            (Some(n), Some(total), Some(low), Some(high)) => {
                Some((n, total, keep(low), keep(high)))
            }
            (None, None, None, None) => None,
            _ => panic!(
                "{}: {}: responders, total, ci_low and ci_high come together",
                path.display(),
                table.endpoint
            ),
        };
        Table {
            endpoint: keep(table.endpoint),
            subjects: table.subjects,
            missing: table.missing,
            not_evaluable: table.not_evaluable,
            deviations: table.deviations,
            responders,
            categories: table
                .categories
                .map(|c| [c.none, c.minimal, c.moderate, c.major]),
        }
    };
    let tables = expected
        .endpoints
        .into_iter()
        .map(|table| {
            assert!(
                table.arm.is_none(),
                "{}: {}: a pooled endpoint table names no arm",
                path.display(),
                table.endpoint
            );
            table_from(table)
        })
        .collect();
    let arm_tables = expected
        .arm_endpoints
        .into_iter()
        .map(|mut table| {
            let arm = table.arm.take().unwrap_or_else(|| {
                panic!(
                    "{}: {}: an arm table names its arm",
                    path.display(),
                    table.endpoint
                )
            });
            (keep(arm), table_from(table))
        })
        .collect();
    let expected = Expected {
        eligible: (
            expected.eligible,
            expected.not_eligible,
            expected.not_evaluable,
        ),
        criteria: expected
            .criteria
            .into_iter()
            .map(|c| {
                (
                    keep(c.criterion),
                    [c.met, c.not_met, c.not_applicable, c.not_evaluable],
                )
            })
            .collect(),
        subject_eligibility: expected
            .subject_eligibility
            .into_iter()
            .map(|s| {
                (
                    keep(s.subject),
                    keep(s.verdict),
                    s.criteria.into_iter().map(keep).collect(),
                )
            })
            .collect(),
        tables,
        arms: expected.arms.into_iter().map(keep).collect(),
        arm_tables,
        visit_arms: expected
            .visit_arms
            .into_iter()
            .map(|v| {
                (
                    keep(v.visit),
                    keep(v.arm),
                    v.subjects,
                    v.doi_met,
                    v.doi_evaluable,
                )
            })
            .collect(),
        subject_endpoints: expected
            .subject_endpoints
            .into_iter()
            .map(|s| {
                (
                    keep(s.subject),
                    s.endpoints
                        .into_iter()
                        .map(|e| (keep(e.endpoint), keep(e.responder), e.counts_as_responder))
                        .collect(),
                )
            })
            .collect(),
        deviations: expected
            .deviations
            .into_iter()
            .map(|d| (keep(d.subject), keep(d.visit), d.days_outside, keep(d.text)))
            .collect(),
    };
    (trial, expected)
}

/// A visit's forms: its profile, with the values it names put in and the forms it omits taken out.
fn visit_forms(visit: VisitFile) -> Forms {
    let mut forms = match visit.forms {
        Profile::Baseline => B,
        Profile::Strong => STRONG,
        Profile::Moderate => MODERATE,
        Profile::Normal => NORMAL,
        Profile::Nothing => Forms::default(),
    };
    let text = |value: Option<String>, profile: Option<&'static str>| value.map(keep).or(profile);
    forms.phga = text(visit.phga, forms.phga);
    forms.ptga = text(visit.ptga, forms.ptga);
    forms.extram = text(visit.extram, forms.extram);
    forms.haq = text(visit.haq, forms.haq);
    forms.ck = text(visit.ck, forms.ck);
    forms.mmt = visit.mmt.or(forms.mmt);
    forms.cdasi = visit.cdasi.or(forms.cdasi);
    if let Some(labs) = visit.labs {
        forms.labs = Some((keep(labs.cxcl9), keep(labs.cxcl10), keep(labs.stat1)));
    }
    for field in visit.omit {
        match field {
            FormField::Phga => forms.phga = None,
            FormField::Ptga => forms.ptga = None,
            FormField::Extram => forms.extram = None,
            FormField::Mmt => forms.mmt = None,
            FormField::Haq => forms.haq = None,
            FormField::Ck => forms.ck = None,
            FormField::Cdasi => forms.cdasi = None,
            FormField::Labs => forms.labs = None,
        }
    }
    forms
}
