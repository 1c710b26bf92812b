//! A synthetic STIR-like cohort from a seeded deterministic generator ([`SplitMix64`]): 10 adults with
//! dermatomyositis, visits at baseline, weeks 4, 8 and 12 and an extension visit (week 16), item-level
//! globals, MMT-8, HAQ, enzymes, CDASI v2, serum CXCL9/CXCL10, skin-biopsy STAT1 and doses. Each
//! subject improves towards week 12 by a subject-specific fraction, with noise. Used by `myolog demo`,
//! the end-to-end tests and the benchmark. Fictional data: no real person.

use myolog_proto::v1 as pb;
use pb::assessment_recorded::Instrument;

use crate::prng::SplitMix64;

/// The study id of the synthetic cohort.
pub const STUDY: &str = "STIR-DEMO";
/// Visits with their study day.
pub const VISITS: [(&str, i64); 5] = [
    ("baseline", 0),
    ("week4", 28),
    ("week8", 56),
    ("week12", 84),
    ("week16-ext", 112),
];
/// The primary visit.
pub const PRIMARY_VISIT: &str = "week12";
/// STIR's protocol file, which the demo registers with its study (`Cohort::with_stir_protocol`).
pub const STIR_PROTOCOL_FILE: &str = "stir.toml";
/// The text of `protocols/stir.toml`, embedded so the demo needs no files next to the binary.
pub const STIR_PROTOCOL_TOML: &str = include_str!("../../../protocols/stir.toml");
/// The study id in STIR's protocol file, which the demo's study ([`STUDY`]) registers it under.
pub const STIR_PROTOCOL_STUDY: &str = "STIR";
/// The cohort's visits as STIR's encounters name them (its schedule: day 0 is the first dose).
pub const STIR_VISIT_IDS: [(&str, &str); 5] = [
    ("baseline", "BL"),
    ("week4", "W4"),
    ("week8", "W8"),
    ("week12", "W12"),
    ("week16-ext", "W16"),
];
/// The arm code of STIR's single arm.
pub const STIR_ARM: &str = "TOFA";
/// Default seed of `myolog demo`.
pub const DEFAULT_SEED: u64 = 2017;

/// The subject and visit whose globals form is first entered wrongly (physician global digits
/// swapped) and then corrected.
pub const CORRECTED: (usize, &str) = (1, "week12");
/// The subject and visit whose batch first carries an out-of-range grade and is rejected.
pub const REJECTED: (usize, &str) = (6, "week8");

/// Subject id of subject `index` (0-based).
pub fn subject_id(index: usize) -> String {
    format!("S{:03}", index + 1)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm), as `YYYY-MM-DD`.
pub fn date_from_days(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// 2024-01-08 as days since the epoch: the first baseline visit.
const FIRST_BASELINE_DAYS: i64 = 19_730;

/// One subject's latent profile.
#[derive(Debug, Clone)]
struct Profile {
    /// Fraction of baseline disease activity gone by week 12, in percent.
    response_pct: i64,
    physician_mm: i64,
    patient_mm: i64,
    extramuscular_mm: i64,
    /// Unilateral MMT-8 grades at baseline.
    mmt: [i64; 8],
    /// 20 HAQ items at baseline.
    haq: [i64; 20],
    ck: i64,
    aldolase_tenths: i64,
    /// Per CDASI location: erythema, scale, erosion.
    cdasi: [[i64; 3]; 15],
    gottron_erythema: i64,
    periungual: i64,
    cxcl9: i64,
    cxcl10: i64,
    stat1_tenths: i64,
}

/// The cohort: deterministic for a seed.
#[derive(Debug, Clone)]
pub struct Cohort {
    seed: u64,
    profiles: Vec<Profile>,
    /// Registers STIR's protocol and sends its visit ids and arm (the demo); otherwise the study
    /// has no protocol and the visits are named as in [`VISITS`] (tests, benchmark).
    stir_protocol: bool,
}

impl Cohort {
    /// `n` subjects from `seed`.
    pub fn new(seed: u64, n: usize) -> Self {
        let mut rng = SplitMix64::new(seed);
        let profiles = (0..n).map(|_| profile(&mut rng)).collect();
        Self {
            seed,
            profiles,
            stir_protocol: false,
        }
    }

    /// The same cohort registered under STIR's protocol, its visits sent as STIR's encounters.
    pub fn with_stir_protocol(mut self) -> Self {
        self.stir_protocol = true;
        self
    }

    /// The visit id sent for one of [`VISITS`] (STIR's encounter id under its protocol).
    pub fn visit_id<'a>(&self, visit: &'a str) -> &'a str {
        if !self.stir_protocol {
            return visit;
        }
        STIR_VISIT_IDS
            .iter()
            .find(|(name, _)| *name == visit)
            .map_or(visit, |(_, id)| id)
    }

    /// Number of subjects.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// True when the cohort has no subjects.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The batch that registers the study and enrolls every subject.
    pub fn enrollment(&self) -> pb::SubmitRequest {
        let mut events = vec![pb::Event {
            source_audit: None,
            event_id: format!("{STUDY}.registered"),
            study_id: STUDY.into(),
            subject_id: String::new(),
            visit_id: String::new(),
            clinical_date: date_from_days(FIRST_BASELINE_DAYS - 30),
            body: Some(pb::event::Body::StudyRegistered(if self.stir_protocol {
                pb::StudyRegistered {
                    title: "Synthetic STIR-like open-label JAK inhibitor study (demo data)".into(),
                    population: pb::Population::Adult as i32,
                    protocol_file: STIR_PROTOCOL_FILE.into(),
                    protocol_toml: STIR_PROTOCOL_TOML.into(),
                    // STIR's file registered under the demo's own study id, explicitly.
                    protocol_study_id: STIR_PROTOCOL_STUDY.into(),
                    ..Default::default()
                }
            } else {
                pb::StudyRegistered {
                    title: "Synthetic STIR-like open-label JAK inhibitor study (demo data)".into(),
                    population: pb::Population::Adult as i32,
                    baseline_visit_id: "baseline".into(),
                    ..Default::default()
                }
            })),
        }];
        for index in 0..self.len() {
            events.push(pb::Event {
                source_audit: None,
                event_id: format!("{STUDY}.{}.enrolled", subject_id(index)),
                study_id: STUDY.into(),
                subject_id: subject_id(index),
                visit_id: String::new(),
                // Under STIR's protocol, enrolment is day 0 (first dose), the baseline visit's day.
                clinical_date: date_from_days(
                    baseline_day(index) - if self.stir_protocol { 0 } else { 7 },
                ),
                body: Some(pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
                    arm: if self.stir_protocol {
                        STIR_ARM
                    } else {
                        "tofacitinib XR 11 mg"
                    }
                    .into(),
                    population: pb::Population::Unspecified as i32,
                    site_id: String::new(),
                    age_years: Some(enrolment_age(index)),
                    muscle_active: Some(false),
                    prednisone_stable_weeks: Some(stable_prednisone_weeks(index)),
                    sex: Some(enrolment_sex(index).into()),
                    race: Some(enrolment_race(index).into()),
                    // Consent two (STIR) or three weeks before day 0: the study start in TS.
                    informed_consent_date: Some(date_from_days(
                        baseline_day(index) - if self.stir_protocol { 14 } else { 21 },
                    )),
                    // STIR's diagnosis, biopsy and cancer-screening criteria, the refractory history
                    // and washouts, and the pregnancy test (see `stir_treatment_history`).
                    bohan_peter_definite_or_probable: self.stir_protocol.then_some(true),
                    disease_duration_months: self
                        .stir_protocol
                        .then(|| 8 + u32::try_from(index * 7 % 40).unwrap_or(0)),
                    skin_biopsy_proven: self.stir_protocol.then_some(true),
                    negative_cancer_screening: self.stir_protocol.then_some(true),
                    glucocorticoid_treated_weeks: self
                        .stir_protocol
                        .then(|| 40 + u32::try_from(index * 3).unwrap_or(0)),
                    treatment_history: self.stir_protocol.then(|| stir_treatment_history(index)),
                    attestations: if self.stir_protocol {
                        stir_attestations(index)
                    } else {
                        Vec::new()
                    },
                    ..pb::SubjectEnrolled::default()
                })),
            });
            if self.stir_protocol {
                events.extend(self.glucocorticoid_history(index));
            }
        }
        pb::SubmitRequest {
            batch_id: "enrollment".into(),
            events,
        }
    }

    /// The subject's prednisone before baseline, as dose records: 20 mg/day from 8 weeks before the
    /// current dose started, tapered to the current dose (10 or 5 mg/day, as at the visits)
    /// `stable_prednisone_weeks` before day 0. So the dose in effect when STIR's 8-week window opens
    /// is known, and the highest dose within it is 20 mg/day at most (STIR: at most 80).
    fn glucocorticoid_history(&self, index: usize) -> Vec<pb::Event> {
        let subject = subject_id(index);
        let stable_days = 7 * i64::from(stable_prednisone_weeks(index));
        let current = if index.is_multiple_of(2) { "10" } else { "5" };
        [
            ("taper-start", stable_days + 56, "20"),
            ("current-dose", stable_days, current),
        ]
        .into_iter()
        .map(|(suffix, days_before, mg)| pb::Event {
            source_audit: None,
            event_id: format!("{STUDY}.{subject}.prednisone-{suffix}"),
            study_id: STUDY.into(),
            subject_id: subject.clone(),
            // Reported at screening; the clinical date is the day the dose started.
            visit_id: "SCR".into(),
            clinical_date: date_from_days(baseline_day(index) - days_before),
            body: Some(pb::event::Body::DoseRecorded(pb::DoseRecorded {
                kind: pb::DoseKind::Glucocorticoid as i32,
                drug: "prednisone".into(),
                mg_per_day: mg.into(),
            })),
        })
        .collect()
    }

    /// The batch of one subject's visit: every form recorded at that visit, as first entered (the
    /// MMT-8 of [`CORRECTED`] with its transcription error).
    pub fn visit_batch(&self, index: usize, visit: &str) -> pb::SubmitRequest {
        self.generate_visit(index, visit, true)
    }

    fn generate_visit(&self, index: usize, visit: &str, entry_errors: bool) -> pb::SubmitRequest {
        let Some(&(_, day)) = VISITS.iter().find(|(name, _)| *name == visit) else {
            return pb::SubmitRequest::default();
        };
        let p = &self.profiles[index];
        let wire_visit = self.visit_id(visit);
        let subject = subject_id(index);
        let date = date_from_days(baseline_day(index) + day);
        // Fraction of improvement reached at this visit, percent (noise per visit and subject).
        let mut rng = SplitMix64::new(
            self.seed ^ (index as u64 + 1).wrapping_mul(0x9E37) ^ day.unsigned_abs(),
        );
        let schedule = match visit {
            "baseline" => 0,
            "week4" => 35,
            "week8" => 65,
            "week12" => 100,
            _ => 105,
        };
        let f = p.response_pct * schedule / 100;
        let mut improve_by = |value: i64, lower_is_better: bool, max: i64, boost: i64| -> i64 {
            if schedule == 0 {
                return value;
            }
            let noise = rng.range(-8, 8);
            let pct = (f + boost * schedule / 100 + noise).clamp(0, 100);
            if lower_is_better {
                (value * (100 - pct) + 50) / 100
            } else {
                (value + (max - value) * pct / 100).min(max)
            }
        };
        let event = |suffix: &str, instrument: Instrument| pb::Event {
            source_audit: None,
            event_id: format!("{STUDY}.{subject}.{wire_visit}.{suffix}"),
            study_id: STUDY.into(),
            subject_id: subject.clone(),
            visit_id: wire_visit.into(),
            clinical_date: date.clone(),
            body: Some(pb::event::Body::AssessmentRecorded(
                pb::AssessmentRecorded {
                    instrument: Some(instrument),
                },
            )),
        };
        // The transcription error of CORRECTED: the physician global's two digits swapped (1.9 -> 9.1).
        let entry_error = |mm: i64| -> i64 {
            if !(entry_errors && (index, visit) == CORRECTED) {
                return mm;
            }
            let swapped = (mm % 10) * 10 + mm / 10;
            if swapped == mm {
                (mm + 50).min(100)
            } else {
                swapped
            }
        };
        let cm = |mm: i64| {
            Some(pb::Vas {
                value: Some(pb::vas::Value::Cm(format!("{}.{}", mm / 10, mm % 10))),
            })
        };
        let mut events = vec![event(
            "globals",
            Instrument::Globals(pb::Globals {
                physician_global: cm(entry_error(improve_by(p.physician_mm, true, 100, 0))),
                patient_global: cm(improve_by(p.patient_mm, true, 100, 0)),
                extramuscular_global: cm(improve_by(p.extramuscular_mm, true, 100, 0)),
            }),
        )];
        let grades: Vec<u32> = p
            .mmt
            .iter()
            .map(|g| u32::try_from(improve_by(*g, false, 10, 0)).unwrap_or(0))
            .collect();
        events.push(event("mmt8", Instrument::Mmt8(mmt8(&grades))));
        let items: Vec<Option<u32>> = p
            .haq
            .iter()
            .map(|v| Some(u32::try_from(improve_by(*v, true, 3, 0)).unwrap_or(0)))
            .collect();
        events.push(event("haq", Instrument::Haq(haq(&items))));
        let ck = improve_by(p.ck, true, 0, 0).max(40);
        let aldolase = improve_by(p.aldolase_tenths, true, 0, 0).max(20);
        events.push(event(
            "enzymes",
            Instrument::Enzymes(pb::Enzymes {
                ck: Some(pb::EnzymeResult {
                    value: ck.to_string(),
                    uln: "200".into(),
                    unit: "U/L".into(),
                }),
                aldolase: Some(pb::EnzymeResult {
                    value: format!("{}.{}", aldolase / 10, aldolase % 10),
                    uln: "7.6".into(),
                    unit: String::new(),
                }),
                ..Default::default()
            }),
        ));
        let mut locations = pb::CdasiLocations::default();
        for (slot, items) in location_slots(&mut locations).into_iter().zip(p.cdasi) {
            if items == [0, 0, 0] {
                continue;
            }
            *slot = Some(pb::CdasiLocation {
                erythema: u32::try_from(improve_by(items[0], true, 3, 30)).unwrap_or(0),
                scale: u32::try_from(improve_by(items[1], true, 2, 30)).unwrap_or(0),
                erosion: u32::try_from(improve_by(items[2], true, 1, 30)).unwrap_or(0),
                poikiloderma: u32::from(index.is_multiple_of(3)),
                calcinosis: 0,
            });
        }
        let gottron = improve_by(p.gottron_erythema, true, 3, 30);
        events.push(event(
            "cdasi",
            Instrument::Cdasi(pb::Cdasi {
                locations: Some(locations),
                gottron_hands: Some(pb::GottronHands {
                    erythema: u32::try_from(gottron).unwrap_or(0),
                    papules: gottron >= 2,
                    ulceration: 0,
                    damage: u32::from(index.is_multiple_of(4)),
                }),
                periungual: u32::try_from(improve_by(p.periungual, true, 2, 30)).unwrap_or(0),
                alopecia: u32::from(schedule < 65 && index.is_multiple_of(2)),
            }),
        ));
        if visit == "baseline" || visit == PRIMARY_VISIT {
            for (code, value) in [("CXCL9", p.cxcl9), ("CXCL10", p.cxcl10)] {
                events.push(event(
                    &code.to_ascii_lowercase(),
                    Instrument::Lab(pb::LabMeasurement {
                        code: code.into(),
                        value: improve_by(value, true, 0, 0).max(30).to_string(),
                        unit: "pg/mL".into(),
                    }),
                ));
            }
            let stat1 = improve_by(p.stat1_tenths, true, 40, 0).max(5);
            events.push(event(
                "stat1",
                Instrument::Stat1(pb::SkinBiopsyStat1 {
                    value: Some(pb::skin_biopsy_stat1::Value::IhcScore(format!(
                        "{}.{}",
                        stat1 / 10,
                        stat1 % 10
                    ))),
                }),
            ));
        }
        let dose = |suffix: &str, kind: pb::DoseKind, drug: &str, mg: &str| pb::Event {
            source_audit: None,
            event_id: format!("{STUDY}.{subject}.{wire_visit}.{suffix}"),
            study_id: STUDY.into(),
            subject_id: subject.clone(),
            visit_id: wire_visit.into(),
            clinical_date: date.clone(),
            body: Some(pb::event::Body::DoseRecorded(pb::DoseRecorded {
                kind: kind as i32,
                drug: drug.into(),
                mg_per_day: mg.into(),
            })),
        };
        if visit == "baseline" {
            events.push(dose(
                "drug",
                pb::DoseKind::StudyDrug,
                "tofacitinib XR",
                "11",
            ));
        }
        let prednisone = if index.is_multiple_of(2) { "10" } else { "5" };
        events.push(dose(
            "prednisone",
            pb::DoseKind::Glucocorticoid,
            "prednisone",
            prednisone,
        ));
        pb::SubmitRequest {
            batch_id: format!("{subject}/{wire_visit}"),
            events,
        }
    }

    /// The batch of [`REJECTED`] as first sent: its MMT-8 carries deltoid grade 12 (out of 0-10).
    pub fn rejected_batch(&self) -> pb::SubmitRequest {
        let (index, visit) = REJECTED;
        let mut batch = self.visit_batch(index, visit);
        for event in &mut batch.events {
            if let Some(pb::event::Body::AssessmentRecorded(pb::AssessmentRecorded {
                instrument: Some(Instrument::Mmt8(mmt8)),
            })) = &mut event.body
                && let Some(grades) = &mut mmt8.grades
            {
                grades.deltoid = Some(pb::MmtGrade {
                    grade: Some(12),
                    right: None,
                    left: None,
                });
            }
        }
        batch
    }

    /// The correction of [`CORRECTED`]'s globals form: the physician global from the source document.
    pub fn correction(&self) -> pb::SubmitRequest {
        let (index, visit) = CORRECTED;
        let original = self.generate_visit(index, visit, false);
        let mut corrected = None;
        let mut date = String::new();
        let mut superseded = String::new();
        for event in original.events {
            if let Some(pb::event::Body::AssessmentRecorded(form)) = event.body
                && let Some(Instrument::Globals(globals)) = form.instrument
            {
                corrected = Some(globals);
                date = event.clinical_date;
                superseded = event.event_id;
            }
        }
        let subject = subject_id(index);
        pb::SubmitRequest {
            batch_id: format!("{subject}/{}/correction", self.visit_id(visit)),
            events: vec![pb::Event {
                source_audit: None,
                event_id: format!("{superseded}.corrected"),
                study_id: STUDY.into(),
                subject_id: subject,
                visit_id: self.visit_id(visit).into(),
                clinical_date: date,
                body: Some(pb::event::Body::AssessmentCorrected(pb::AssessmentCorrected {
                    supersedes_event_id: superseded,
                    reason: "transcription error: physician global digits swapped; value from the source document"
                        .into(),
                    corrected: Some(pb::AssessmentRecorded { instrument: corrected.map(Instrument::Globals) }),
                })),
            }],
        }
    }
}

/// Age at enrolment, 27 to 69 completed years: adults as in STIR. Not drawn from the generator, so
/// the visit data of a seed stay what they were before enrolments carried ages.
/// Sex as CDISC codes it: two women to one man, dermatomyositis' usual ratio.
fn enrolment_sex(index: usize) -> &'static str {
    if index % 3 == 2 { "M" } else { "F" }
}

/// Race as CDISC codes it, cycling so every export shows several values, one not reported.
fn enrolment_race(index: usize) -> &'static str {
    [
        "WHITE",
        "ASIAN",
        "WHITE",
        "BLACK OR AFRICAN AMERICAN",
        "NOT REPORTED",
    ][index % 5]
}

fn enrolment_age(index: usize) -> u32 {
    27 + u32::try_from(index * 17 % 43).unwrap_or(0)
}

/// The subject whose rituximab ended 8 months before day 0: STIR's 12-month washout (IN11) is not
/// met, so the demo shows a second screening failure, for another reason than [`stable_prednisone_weeks`].
pub const RITUXIMAB_TOO_RECENT: usize = 3;
/// The subject whose IVIG's last dose date the site did not record: STIR's IVIG washout (IN12) is not
/// evaluable, a query to the site rather than a failure.
pub const IVIG_DATE_UNKNOWN: usize = 8;

/// What STIR's refractory and washout criteria read: every subject had glucocorticoids and
/// methotrexate, both failed; methotrexate stopped 16 to 19 weeks before day 0 (STIR: at least 12).
/// Every third subject also did not tolerate mycophenolate (stopped 6 months before); every fourth had
/// IVIG that helped, last given 4 months before (STIR: at least 3). Two deliberate exceptions:
/// [`RITUXIMAB_TOO_RECENT`] and [`IVIG_DATE_UNKNOWN`].
fn stir_treatment_history(index: usize) -> pb::TreatmentHistory {
    let days_before = |days: i64| Some(date_from_days(baseline_day(index) - days));
    let treatment =
        |drug: &str, last_dose_date, response: pb::TreatmentResponse| pb::PriorTreatment {
            drug: drug.into(),
            last_dose_date,
            response: response as i32,
        };
    let weeks_off_methotrexate = 16 + i64::try_from(index % 4).unwrap_or(0);
    let mut treatments = vec![
        // Still on prednisone at day 0: no last dose.
        treatment("glucocorticoid", None, pb::TreatmentResponse::Failed),
        treatment(
            "methotrexate",
            days_before(7 * weeks_off_methotrexate),
            pb::TreatmentResponse::Failed,
        ),
    ];
    if index % 3 == 1 {
        treatments.push(treatment(
            "mycophenolate",
            days_before(183),
            pb::TreatmentResponse::Intolerant,
        ));
    }
    if index.is_multiple_of(4) || index == IVIG_DATE_UNKNOWN {
        let last_dose = if index == IVIG_DATE_UNKNOWN {
            None
        } else {
            days_before(122)
        };
        treatments.push(treatment(
            "ivig",
            last_dose,
            pb::TreatmentResponse::Responded,
        ));
    }
    if index == RITUXIMAB_TOO_RECENT {
        treatments.push(treatment(
            "rituximab",
            days_before(244),
            pb::TreatmentResponse::Failed,
        ));
    }
    pb::TreatmentHistory { treatments }
}

/// STIR's pregnancy test: women under 50 are of child-bearing potential and attest a negative test;
/// the others are not of child-bearing potential.
fn stir_attestations(index: usize) -> Vec<pb::Attestation> {
    let childbearing = enrolment_sex(index) == "F" && enrolment_age(index) < 50;
    let mut attested = vec![pb::Attestation {
        code: "CHILDBEARING_POTENTIAL".into(),
        value: childbearing,
    }];
    if childbearing {
        attested.push(pb::Attestation {
            code: "NEG_PREG_TEST".into(),
            value: true,
        });
    }
    attested
}

/// Weeks of stable prednisone before baseline: 4 to 12 (STIR asks for at least 2), except the
/// seventh subject, whose dose changed 1 week before baseline, so the demo shows a criterion not
/// met (a screening failure that was enrolled and is flagged, not hidden).
fn stable_prednisone_weeks(index: usize) -> u32 {
    if index == 6 {
        1
    } else {
        4 + u32::try_from(index * 5 % 9).unwrap_or(0)
    }
}

fn baseline_day(index: usize) -> i64 {
    FIRST_BASELINE_DAYS + 7 * i64::try_from(index).unwrap_or(0)
}

fn profile(rng: &mut SplitMix64) -> Profile {
    let mut cdasi = [[0i64; 3]; 15];
    // 3 to 13 involved locations: STIR-like skin-predominant disease of varying extent.
    let involved = rng.range(3, 13);
    for _ in 0..involved {
        let slot = usize::try_from(rng.range(0, 14)).unwrap_or(0);
        cdasi[slot] = [rng.range(1, 3), rng.range(0, 2), rng.range(0, 1)];
    }
    let mut mmt = [0i64; 8];
    for grade in &mut mmt {
        *grade = rng.range(7, 10);
    }
    let mut haq = [0i64; 20];
    for item in &mut haq {
        *item = rng.range(0, 2);
    }
    Profile {
        response_pct: rng.range(15, 55),
        physician_mm: rng.range(40, 75),
        patient_mm: rng.range(40, 80),
        extramuscular_mm: rng.range(30, 65),
        mmt,
        haq,
        ck: rng.range(90, 1800),
        aldolase_tenths: rng.range(50, 160),
        cdasi,
        gottron_erythema: rng.range(1, 3),
        periungual: rng.range(0, 2),
        cxcl9: rng.range(300, 2500),
        cxcl10: rng.range(150, 1200),
        stat1_tenths: rng.range(20, 40),
    }
}

fn mmt8(grades: &[u32]) -> pb::Mmt8 {
    let g = |i: usize| {
        Some(pb::MmtGrade {
            grade: grades.get(i).copied(),
            right: None,
            left: None,
        })
    };
    pb::Mmt8 {
        max: 80,
        total: None,
        grades: Some(pb::Mmt8Grades {
            neck_flexors: g(0),
            deltoid: g(1),
            biceps: g(2),
            wrist_extensors: g(3),
            gluteus_maximus: g(4),
            gluteus_medius: g(5),
            quadriceps: g(6),
            ankle_dorsiflexors: g(7),
        }),
    }
}

fn haq(items: &[Option<u32>]) -> pb::Haq {
    let take = |range: std::ops::Range<usize>| -> Vec<pb::HaqItem> {
        items
            .get(range)
            .unwrap_or(&[])
            .iter()
            .map(|score| pb::HaqItem { score: *score })
            .collect()
    };
    pb::Haq {
        items: Some(pb::HaqItems {
            dressing: take(0..2),
            arising: take(2..4),
            eating: take(4..7),
            walking: take(7..9),
            hygiene: take(9..12),
            reach: take(12..14),
            grip: take(14..17),
            activities: take(17..20),
        }),
        aids: Vec::new(),
        help: Vec::new(),
    }
}

fn location_slots(l: &mut pb::CdasiLocations) -> [&mut Option<pb::CdasiLocation>; 15] {
    [
        &mut l.scalp,
        &mut l.malar,
        &mut l.periorbital,
        &mut l.rest_of_face,
        &mut l.v_neck,
        &mut l.posterior_neck,
        &mut l.upper_back_shoulders,
        &mut l.rest_of_back_buttocks,
        &mut l.abdomen,
        &mut l.lateral_upper_thigh,
        &mut l.rest_of_leg_feet,
        &mut l.arm,
        &mut l.mechanics_hand,
        &mut l.dorsum_hands,
        &mut l.gottron_not_hands,
    ]
}
