//! Each trial's endpoints computed for synthetic subjects as the protocol defines them, with the
//! expected values worked out by hand (DOI relative to baseline; TIS by range of scale, enzyme
//! relative; CDASI change and MCID 4; fold changes; STAT1 change; BIRD's prednisone-free TIS; MYOJAK's
//! baseline switch for the delayed arm), and how each subject counts under the missing-data rule.

use myolog_domain::biopsy::Stat1;
use myolog_domain::cdasi::{CdasiLocation, CdasiLocationScores, CdasiV2};
use myolog_domain::enzyme::{Enzyme, EnzymeMeasurement, EnzymeUnit};
use myolog_domain::global::{GlobalAssessment, VasCm};
use myolog_domain::haq::{Haq, HaqDiScore};
use myolog_domain::lab::{LabCode, LabMeasurement};
use myolog_domain::mmt8::{Mmt8, MmtScale, MmtTotal};
use myolog_domain::protocol::{AttendedVisit, GlucocorticoidRecord, Protocol};
use myolog_domain::score::BoundedScore;
use myolog_domain::visit::VisitAssessments;
use myolog_scoring::protocol_eval::{
    EndpointResult, EndpointValue, RecordedVisit, SubjectRecord, endpoint_cohort, evaluate_endpoint,
};
use rust_decimal::Decimal;

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).expect("test decimals are written exactly")
}

fn load(name: &str, text: &str) -> Protocol {
    Protocol::from_toml(name, text)
        .unwrap_or_else(|errors| panic!("{name} does not validate:\n{errors}"))
}

/// The six core set measures: PhGA, PtGA, extramuscular (cm), MMT-8 of 150, HAQ-DI, CK (ULN 200).
fn core(
    physician: &str,
    patient: &str,
    extramuscular: &str,
    mmt8: u16,
    haq: &str,
    ck: &str,
) -> VisitAssessments {
    let vas = |cm: &str| {
        Some(GlobalAssessment::Vas(
            VasCm::from_cm(dec(cm)).expect("a VAS in cm"),
        ))
    };
    let mut visit = VisitAssessments {
        physician_global: vas(physician),
        patient_global: vas(patient),
        extramuscular_global: vas(extramuscular),
        mmt8: Some(Mmt8::Total(
            MmtTotal::new(mmt8, MmtScale::Bilateral).expect("an MMT-8 total"),
        )),
        haq: Some(Haq::Score(
            HaqDiScore::try_from(dec(haq)).expect("a HAQ-DI"),
        )),
        ..VisitAssessments::default()
    };
    let ck = EnzymeMeasurement::new(dec(ck), dec("200"), EnzymeUnit::UnitsPerLitre)
        .expect("an enzyme result");
    visit.enzymes.insert(Enzyme::Ck, ck);
    visit
}

/// CDASI activity 3 per location: erythema 3 at the first `locations` locations.
fn cdasi_activity_3_per(locations: usize) -> CdasiV2 {
    let erythema_3 = CdasiLocationScores {
        erythema: BoundedScore::from_decimal(Decimal::from(3)).expect("erythema 0-3"),
        ..CdasiLocationScores::default()
    };
    CdasiV2 {
        locations: CdasiLocation::ALL
            .into_iter()
            .take(locations)
            .map(|location| (location, erythema_3))
            .collect(),
        ..CdasiV2::default()
    }
}

fn with_skin_and_labs(
    mut visit: VisitAssessments,
    cdasi_locations: usize,
    cxcl9: &str,
    cxcl10: &str,
    stat1: &str,
) -> VisitAssessments {
    visit.cdasi = Some(cdasi_activity_3_per(cdasi_locations));
    for (code, value) in [(LabCode::Cxcl9, cxcl9), (LabCode::Cxcl10, cxcl10)] {
        visit.labs.insert(
            code,
            LabMeasurement::new(code, dec(value), "pg/mL").expect("a lab value"),
        );
    }
    visit.stat1 = Some(Stat1::ihc_score(dec(stat1)).expect("a STAT1 IHC score"));
    visit
}

fn recorded(visit_id: &str, day: i32, assessments: VisitAssessments) -> RecordedVisit {
    RecordedVisit {
        visit: AttendedVisit {
            visit_id: visit_id.to_string(),
            day,
        },
        assessments,
    }
}

/// One line per endpoint result, as a trial statistician would tabulate it.
fn describe(result: &EndpointResult) -> String {
    let value = match &result.value {
        None => "missing".to_string(),
        Some(EndpointValue::Doi(outcome)) => format!("DOI {:?}", outcome.status),
        Some(EndpointValue::Tis(outcome)) => {
            format!(
                "TIS {} {:?}",
                outcome
                    .score
                    .map_or("-".to_string(), |score| score.0.normalize().to_string()),
                outcome.category
            )
        }
        Some(EndpointValue::Cdasi { change, .. }) => {
            format!(
                "CDASI activity {:+}, MCID reached {}",
                change.activity_change, change.mcid_reached
            )
        }
        Some(EndpointValue::Biomarker { analyte, change }) => format!(
            "{analyte} fold change {}",
            change
                .fold_change
                .and_then(|fold| fold.to_display_decimal())
                .map_or("-".to_string(), |fold| fold.to_string())
        ),
        Some(EndpointValue::Stat1 { kind, change, .. }) => format!("STAT1 {kind} change {change}"),
        Some(EndpointValue::PrednisoneFree { result, .. }) => result.to_string(),
        Some(EndpointValue::NotEvaluable(reason)) => format!("not evaluable: {reason}"),
    };
    format!(
        "{} [{}]: {value}; responder {:?}; counts {:?}",
        result.endpoint, result.protocol, result.responder, result.counts_as_responder
    )
}

/// (subject, endpoint ids) -> the expected lines, in endpoint order.
fn check(protocol: &Protocol, subject: &SubjectRecord<'_>, endpoints: &[&str], expected: &[&str]) {
    let actual: Vec<String> = endpoints
        .iter()
        .map(
            |endpoint| match evaluate_endpoint(protocol, endpoint, subject) {
                Ok(result) => describe(&result),
                Err(error) => format!("error: {error}"),
            },
        )
        .collect();
    assert_eq!(actual, expected);
}

#[test]
fn stir_every_endpoint_for_one_subject() {
    let stir = load(
        "protocols/stir.toml",
        include_str!("../../../protocols/stir.toml"),
    );
    // Baseline: PhGA 6, PtGA 7, extramuscular 5, MMT-8 120, HAQ-DI 1.5, CK 1000; CDASI 24.
    // Week 12: PhGA 2, PtGA 3, extramuscular 1, MMT-8 135, HAQ-DI 1.0, CK 300; CDASI 6.
    // DOI: PhGA 66.7%, PtGA 57.1%, extramuscular 80%, HAQ 33.3%, CK 70% improved; MMT 12.5% not -> met.
    // TIS: PhGA 40% -> 17.5, PtGA 40% -> 7.5, extramuscular 40% -> 15, HAQ 16.7% -> 7.5,
    //      CK 70% -> 7.5, MMT 15/150 = 10% -> 10: 65, major.
    let visits = [
        recorded(
            "BL",
            0,
            with_skin_and_labs(
                core("6.0", "7.0", "5.0", 120, "1.5", "1000"),
                8,
                "800",
                "400",
                "3",
            ),
        ),
        recorded(
            "W12",
            86,
            with_skin_and_labs(
                core("2.0", "3.0", "1.0", 135, "1.0", "300"),
                2,
                "200",
                "300",
                "1",
            ),
        ),
    ];
    let subject = SubjectRecord {
        arm: "TOFA",
        visits: &visits,
        first_dose_day: Some(0),
        glucocorticoid: &[],
    };
    check(
        &stir,
        &subject,
        &[
            "DOI_W12",
            "CDASI_W12",
            "MCID_W12",
            "TIS_W12",
            "TISCAT_W12",
            "CXCL9_W12",
            "CXCL10_W12",
            "STAT1_W12",
            "DOI_W16",
        ],
        &[
            "DOI_W12 [STIR v1]: DOI Met; responder Some(Responder); counts Some(true)",
            "CDASI_W12 [STIR v1]: CDASI activity -18, MCID reached true; responder None; counts None",
            "MCID_W12 [STIR v1]: CDASI activity -18, MCID reached true; responder Some(Responder); counts Some(true)",
            "TIS_W12 [STIR v1]: TIS 65 Some(Major); responder None; counts None",
            "TISCAT_W12 [STIR v1]: TIS 65 Some(Major); responder Some(Responder); counts Some(true)",
            "CXCL9_W12 [STIR v1]: CXCL9 fold change 0.25; responder None; counts None",
            "CXCL10_W12 [STIR v1]: CXCL10 fold change 0.75; responder None; counts None",
            "STAT1_W12 [STIR v1]: STAT1 ihc_score change -2; responder None; counts None",
            "DOI_W16 [STIR v1]: missing; responder Some(Missing); counts None",
        ],
    );
}

#[test]
fn bird_prednisone_free_primary_and_non_responder_imputation() {
    let bird = load(
        "protocols/bird.toml",
        include_str!("../../../protocols/bird.toml"),
    );
    // TIS 65 as in STIR's subject (same core set change).
    let visits = [
        recorded("BL", 0, core("6.0", "7.0", "5.0", 120, "1.5", "1000")),
        recorded("W24", 170, core("2.0", "3.0", "1.0", 135, "1.0", "300")),
    ];
    let taper = |stop_day: i32| {
        vec![
            GlucocorticoidRecord {
                day: 0,
                mg_per_day: dec("20"),
            },
            GlucocorticoidRecord {
                day: 112,
                mg_per_day: dec("5"),
            },
            GlucocorticoidRecord {
                day: stop_day,
                mg_per_day: dec("0"),
            },
        ]
    };
    let stopped_on_day_140 = taper(140);
    let stopped_on_day_141 = taper(141);
    let stopped_on_day_139 = taper(139);
    let endpoints = ["PFTIS_W24", "TIS_W24", "TISCAT_W24"];
    let subject = |glucocorticoid| SubjectRecord {
        arm: "BARI",
        visits: &visits,
        first_dose_day: Some(0),
        glucocorticoid,
    };
    check(
        &bird,
        &subject(&stopped_on_day_140),
        &endpoints,
        &[
            "PFTIS_W24 [BIRD v1]: met: TIS 65 >= 40 and 0 mg/day over days [140, 168] (1 dose record(s) in the window); responder Some(Responder); counts Some(true)",
            "TIS_W24 [BIRD v1]: TIS 65 Some(Major); responder Some(Responder); counts Some(true)",
            "TISCAT_W24 [BIRD v1]: TIS 65 Some(Major); responder Some(Responder); counts Some(true)",
        ],
    );
    check(
        &bird,
        &subject(&stopped_on_day_141),
        &endpoints[..1],
        &[
            "PFTIS_W24 [BIRD v1]: not met: 5 mg/day in effect on day 140, within days [140, 168]; responder Some(NonResponder); counts Some(false)",
        ],
    );
    // No dose record inside the window: not evaluable, and a non-responder under NRI.
    check(
        &bird,
        &subject(&stopped_on_day_139),
        &endpoints[..1],
        &[
            "PFTIS_W24 [BIRD v1]: not evaluable: 0 dose record(s) within days [140, 168], at least 1 needed; responder Some(NotEvaluable); counts Some(false)",
        ],
    );
    // Week 24 not attended: missing; NRI counts the subject as a non-responder, the TIS endpoints leave them out.
    let baseline_only = [recorded(
        "BL",
        0,
        core("6.0", "7.0", "5.0", 120, "1.5", "1000"),
    )];
    let dropped_out = SubjectRecord {
        arm: "PBO",
        visits: &baseline_only,
        first_dose_day: Some(0),
        glucocorticoid: &stopped_on_day_140,
    };
    check(
        &bird,
        &dropped_out,
        &endpoints,
        &[
            "PFTIS_W24 [BIRD v1]: missing; responder Some(Missing); counts Some(false)",
            "TIS_W24 [BIRD v1]: missing; responder Some(Missing); counts None",
            "TISCAT_W24 [BIRD v1]: missing; responder Some(Missing); counts None",
        ],
    );
}

#[test]
fn myojak_delayed_arm_from_randomisation_and_from_its_own_first_dose() {
    let myojak = load(
        "protocols/myojak.toml",
        include_str!("../../../protocols/myojak.toml"),
    );
    // Untreated until week 12 (worse than at randomisation), then improving on baricitinib.
    // From randomisation to W24 (BL -> W24): PhGA 5 -> 3 is 20% -> 15; PtGA 5 -> 3 -> 5;
    //   extramuscular 4 -> 2 -> 12.5; MMT 130 -> 136 is 4% -> 10; HAQ 1.0 -> 0.75 is 8.3% -> 5;
    //   CK 600 -> 400 is 33.3% -> 7.5: 55, moderate.
    // From the own first dose (W12 -> W24): PhGA 6 -> 3 is 30% -> 17.5; PtGA 6 -> 3 -> 7.5;
    //   extramuscular 5 -> 2 -> 15; MMT 126 -> 136 is 6.7% -> 10; HAQ 1.25 -> 0.75 is 16.7% -> 7.5;
    //   CK 800 -> 400 is 50% -> 7.5: 65, major.
    let visits = [
        recorded("BL", 0, core("5.0", "5.0", "4.0", 130, "1.0", "600")),
        recorded("W12", 84, core("6.0", "6.0", "5.0", 126, "1.25", "800")),
        recorded("W24", 168, core("3.0", "3.0", "2.0", 136, "0.75", "400")),
    ];
    let delayed = SubjectRecord {
        arm: "DELAYED",
        visits: &visits,
        first_dose_day: Some(85),
        glucocorticoid: &[],
    };
    check(
        &myojak,
        &delayed,
        &["TIS_W24", "TIS_12W_DRUG", "TIS_24W_DRUG"],
        &[
            "TIS_W24 [MYOJAK v1]: TIS 55 Some(Moderate); responder None; counts None",
            "TIS_12W_DRUG [MYOJAK v1]: TIS 65 Some(Major); responder None; counts None",
            "TIS_24W_DRUG [MYOJAK v1]: missing; responder None; counts None",
        ],
    );
    let first_dose_unknown = SubjectRecord {
        first_dose_day: None,
        ..delayed
    };
    check(
        &myojak,
        &first_dose_unknown,
        &["TISCAT_24W_DRUG"],
        &["TISCAT_24W_DRUG [MYOJAK v1]: missing; responder Some(Missing); counts None"],
    );
}

/// The cohort table lines of one endpoint: counts, responders n/N with the exact CI, categories,
/// TIS summary and the paired comparison's size and mean change.
fn describe_cohort(protocol: &Protocol, endpoint: &str, results: &[EndpointResult]) -> String {
    let Some(cohort) = endpoint_cohort(protocol, endpoint, results) else {
        return format!("{endpoint}: not in the protocol");
    };
    let mut parts = vec![format!(
        "{} [{}] {:?}: {} subjects, {} missing, {} not evaluable, {} deviations",
        cohort.endpoint,
        cohort.protocol,
        cohort.missing_data,
        cohort.subjects,
        cohort.missing,
        cohort.not_evaluable,
        cohort.deviations
    )];
    if let Some(responders) = &cohort.responders {
        parts.push(
            responders
                .value()
                .map_or("responders not evaluable".to_string(), |proportion| {
                    proportion.display(1)
                }),
        );
    }
    if let Some(categories) = &cohort.categories {
        parts.push(format!("categories {categories:?}"));
    }
    if let Some(scores) = cohort.scores.as_ref().and_then(|scores| scores.value()) {
        parts.push(format!(
            "TIS n {} mean {} median {}",
            scores.n, scores.mean, scores.median
        ));
    }
    if let Some(paired) = cohort.paired.as_ref().and_then(|paired| paired.value()) {
        let change = paired
            .change
            .value()
            .map_or("-".to_string(), |change| change.mean.to_string());
        parts.push(format!("{} pairs, mean change {change}", paired.n_pairs));
    }
    parts.join("; ")
}

#[test]
fn stir_cohort_tables_follow_the_missing_data_rule() {
    let stir = load(
        "protocols/stir.toml",
        include_str!("../../../protocols/stir.toml"),
    );
    let baseline = || {
        with_skin_and_labs(
            core("6.0", "7.0", "5.0", 120, "1.5", "1000"),
            8,
            "800",
            "400",
            "3",
        )
    };
    // S1: TIS 65, DOI met, CDASI 24 -> 6. S2: nothing improves by more than 5-8%: DOI not met, TIS 0,
    // CDASI 24 -> 21, week 12 on day 95 (4 days late). S3: no week 12. S4: week 12 with only the two
    // patient-reported globals: DOI, TIS and CDASI not evaluable.
    let s1 = [
        recorded("BL", 0, baseline()),
        recorded(
            "W12",
            86,
            with_skin_and_labs(
                core("2.0", "3.0", "1.0", 135, "1.0", "300"),
                2,
                "200",
                "300",
                "1",
            ),
        ),
    ];
    let s2 = [
        recorded("BL", 0, baseline()),
        recorded(
            "W12",
            95,
            with_skin_and_labs(
                core("5.5", "6.5", "5.0", 121, "1.5", "950"),
                7,
                "700",
                "400",
                "3",
            ),
        ),
    ];
    let s3 = [recorded("BL", 0, baseline())];
    let mut sparse = core("2.0", "3.0", "1.0", 135, "1.0", "300");
    sparse.extramuscular_global = None;
    sparse.mmt8 = None;
    sparse.haq = None;
    sparse.enzymes.clear();
    sparse.physician_global = None;
    let s4 = [recorded("BL", 0, baseline()), recorded("W12", 84, sparse)];
    let endpoints = ["DOI_W12", "TISCAT_W12", "TIS_W12", "CDASI_W12"];
    let mut results = Vec::new();
    for visits in [&s1[..], &s2[..], &s3[..], &s4[..]] {
        let subject = SubjectRecord {
            arm: "TOFA",
            visits,
            first_dose_day: Some(0),
            glucocorticoid: &[],
        };
        for endpoint in endpoints {
            results.push(
                evaluate_endpoint(&stir, endpoint, &subject).expect("known endpoint and visits"),
            );
        }
    }
    let tables: Vec<String> = endpoints
        .iter()
        .map(|endpoint| describe_cohort(&stir, endpoint, &results))
        .collect();
    assert_eq!(
        tables,
        [
            "DOI_W12 [STIR v1] Missing: 4 subjects, 1 missing, 1 not evaluable, 1 deviations; 1/2 (50.0%; 95% CI 1.3% to 98.7%)",
            "TISCAT_W12 [STIR v1] Missing: 4 subjects, 1 missing, 1 not evaluable, 1 deviations; 1/2 (50.0%; 95% CI 1.3% to 98.7%); categories [(None, 1), (Minimal, 0), (Moderate, 0), (Major, 1)]",
            "TIS_W12 [STIR v1] Missing: 4 subjects, 1 missing, 1 not evaluable, 1 deviations; TIS n 2 mean 32.5 median 32.5",
            "CDASI_W12 [STIR v1] Missing: 4 subjects, 1 missing, 1 not evaluable, 1 deviations; 2 pairs, mean change -10.5",
        ]
    );
}

#[test]
fn bird_primary_cohort_counts_dropouts_as_non_responders() {
    let bird = load(
        "protocols/bird.toml",
        include_str!("../../../protocols/bird.toml"),
    );
    let completed = [
        recorded("BL", 0, core("6.0", "7.0", "5.0", 120, "1.5", "1000")),
        recorded("W24", 170, core("2.0", "3.0", "1.0", 135, "1.0", "300")),
    ];
    let dropped_out = [recorded(
        "BL",
        0,
        core("6.0", "7.0", "5.0", 120, "1.5", "1000"),
    )];
    let prednisone_free = [
        GlucocorticoidRecord {
            day: 0,
            mg_per_day: dec("20"),
        },
        GlucocorticoidRecord {
            day: 140,
            mg_per_day: dec("0"),
        },
    ];
    let results: Vec<EndpointResult> = [&completed[..], &dropped_out[..]]
        .into_iter()
        .flat_map(|visits| {
            let subject = SubjectRecord {
                arm: "BARI",
                visits,
                first_dose_day: Some(0),
                glucocorticoid: &prednisone_free,
            };
            ["PFTIS_W24", "TIS_W24"].map(|endpoint| {
                evaluate_endpoint(&bird, endpoint, &subject).expect("known endpoint and visits")
            })
        })
        .collect();
    assert_eq!(
        [
            describe_cohort(&bird, "PFTIS_W24", &results),
            describe_cohort(&bird, "TIS_W24", &results)
        ],
        [
            "PFTIS_W24 [BIRD v1] NonResponderImputation: 2 subjects, 1 missing, 0 not evaluable, 0 deviations; 1/2 (50.0%; 95% CI 1.3% to 98.7%)",
            "TIS_W24 [BIRD v1] Missing: 2 subjects, 1 missing, 0 not evaluable, 0 deviations; 1/1 (100.0%; 95% CI 2.5% to 100.0%); TIS n 1 mean 65 median 65",
        ]
    );
}
