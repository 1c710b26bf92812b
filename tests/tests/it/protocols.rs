//! Study protocols end to end: `myolog study validate` on each protocol file and on broken ones
//! (exit code and the message naming file and key path), `study export`, `study register` of STIR
//! against a real server, a visit id or arm the protocol does not know rejected with nothing stored,
//! an out-of-window visit scored and reported as a protocol deviation, and an amendment that widens
//! a window: outcomes name the protocol version they used, also after a restart (replay re-parses
//! the protocol from the log), and a subject asked for under the earlier version gets that version's
//! schedule. A protocol registers under its own study id, or under another only when the event says
//! so, and its outcomes then name both ids.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use myolog_cli::study::{self, RegisterArgs, StudyArgs, StudyCommand};
use myolog_proto::v1 as pb;
use myolog_synth::{self as synth, Cohort};
use myolog_tests::{Clients, start};
use tonic_types::StatusExt;

fn protocol_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocols")
        .join(name)
}

fn stir_text() -> String {
    std::fs::read_to_string(protocol_path("stir.toml")).expect("stir.toml")
}

fn validate_exit(file: &Path) -> ExitCode {
    study::run(&StudyArgs {
        command: StudyCommand::Validate {
            file: file.to_path_buf(),
            data: None,
        },
    })
}

#[test]
fn study_validate_summarises_each_protocol_file() {
    let cases = [
        (
            "stir.toml",
            "STIR v1 (NCT03002649): 1 arm, 3 epochs, 6 visits, 15 eligibility criteria, 10 endpoints; primary DOI_W12 (doi at W12)",
        ),
        (
            "myojak.toml",
            "MYOJAK v1 (NCT04208464): 2 arms, 5 epochs, 12 visits, 5 eligibility criteria, 10 endpoints; primary TIS_W12 (tis_score at W12)",
        ),
        (
            "bird.toml",
            "BIRD v1 (NCT04972760): 2 arms, 2 epochs, 8 visits, 9 eligibility criteria, 6 endpoints; primary PFTIS_W24 (prednisone_free_tis at W24)",
        ),
    ];
    // The trial design check of each file: a protocol alone has no informed-consent dates, so TS
    // has no SSTDTC; MYOJAK's planned enrolment was not seen, so it has no PLANSUB.
    let sstdtc = "  TS: required TS parameter present: no SSTDTC row (the earliest informed-consent date; export with --data LOG)";
    let checks: [&[&str]; 3] = [
        &[
            "TS values that are assumptions [D] (exported only with --with-assumptions): PCLAS, AGEMIN, INTTYPE, TTYPE, RDIND, ADAPT, FCNTRY",
            "SDTM trial design check: 1 finding(s)",
            sstdtc,
        ],
        &[
            "TS values that are assumptions [D] (exported only with --with-assumptions): TBLIND, AGEMIN, AGEMAX, INTMODEL, INTTYPE, TINDTP, RDIND, ADAPT",
            "SDTM trial design check: 2 finding(s)",
            sstdtc,
            "  TS: required TS parameter present: no PLANSUB row",
        ],
        &[
            "TS values that are assumptions [D] (exported only with --with-assumptions): TPHASE, INTTYPE, TINDTP, RDIND, ADAPT, SENDTC",
            "SDTM trial design check: 1 finding(s)",
            sstdtc,
        ],
    ];
    for ((file, first_line), check) in cases.into_iter().zip(checks) {
        let path = protocol_path(file);
        let mut out = Vec::new();
        study::validate(&path, &mut out).expect(file);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("{}: valid", path.display()), "{file}");
        assert_eq!(lines[1], first_line, "{file}");
        assert_eq!(lines[2..], *check, "{file}");
        assert_eq!(validate_exit(&path), ExitCode::SUCCESS, "{file}");
    }
}

/// `study validate FILE --data LOG` fills SSTDTC, ACTSUB and the cut-off from the log before the
/// trial design check: a log whose subjects have consent dates passes the SSTDTC rule; the same
/// cohort enrolled without consent dates still fails it, and the finding names the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn study_validate_with_a_log_takes_the_study_start_from_its_consent_dates() {
    // (case, keep the consent dates, the lines after the summary)
    let cases: [(&str, bool, &[&str]); 2] = [
        (
            "consent dates recorded",
            true,
            &[
                // Consent 14 days before each day 0; the cut-off is the last enrolment (S003).
                "TS values from the log: 3 subject(s), earliest informed consent 2023-12-25, data cut-off 2024-01-22",
                "TS values that are assumptions [D] (exported only with --with-assumptions): PCLAS, AGEMIN, INTTYPE, TTYPE, RDIND, ADAPT, FCNTRY",
                "SDTM trial design check: no findings",
            ],
        ),
        (
            "no consent dates",
            false,
            &[
                "TS values from the log: 3 subject(s), earliest informed consent none recorded, data cut-off 2024-01-22",
                "TS values that are assumptions [D] (exported only with --with-assumptions): PCLAS, AGEMIN, INTTYPE, TTYPE, RDIND, ADAPT, FCNTRY",
                "SDTM trial design check: 1 finding(s)",
                "  TS: required TS parameter present: no SSTDTC row (the earliest informed-consent date; export with --data LOG)",
            ],
        ),
    ];
    for (case, consent, expected) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start(dir.path()).await;
        let mut clients = Clients::connect(&server).await;
        let mut enrollment = Cohort::new(synth::DEFAULT_SEED, 3)
            .with_stir_protocol()
            .enrollment();
        if !consent {
            for event in &mut enrollment.events {
                if let Some(pb::event::Body::SubjectEnrolled(enrolled)) = &mut event.body {
                    enrolled.informed_consent_date = None;
                }
            }
        }
        clients.append(enrollment).await;
        server.stop().await.expect("stops");

        let path = protocol_path("stir.toml");
        let mut out = Vec::new();
        study::validate_with(&path, Some(dir.path()), &mut out).expect(case);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2..], *expected, "{case}:\n{text}");
        let exit = study::run(&StudyArgs {
            command: StudyCommand::Validate {
                file: path,
                data: Some(dir.path().to_path_buf()),
            },
        });
        assert_eq!(exit, ExitCode::SUCCESS, "{case}");
    }
}

#[test]
fn study_validate_names_the_file_and_key_path_of_each_error_and_exits_1() {
    let stir = stir_text();
    // (what is broken, replaced text, replacement, expected line after the file name)
    let cases = [
        (
            "unknown key",
            "version = 1 ",
            "version = 1\nfoo = 2 ",
            "protocol.foo: line 18: unknown field `foo`, expected `version` or `amendment`",
        ),
        (
            "baseline names no encounter",
            "baseline_encounter = \"BL\"",
            "baseline_encounter = \"B0\"",
            "study.baseline_encounter: expected one of the encounter ids SCR, BL, W4, W8, W12, W16, found `B0`",
        ),
        (
            "overlapping windows",
            "window = [49, 63]",
            "window = [30, 63]",
            "encounters[3].window: expected a window not overlapping encounter `W4` [21, 35], found [30, 63]",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (what, from, to, expected) in cases {
        assert_eq!(
            stir.matches(from).count(),
            1,
            "{what}: {from:?} once in stir.toml"
        );
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, stir.replacen(from, to, 1)).expect("write");
        let error = study::validate(&path, &mut Vec::new()).expect_err(what);
        let message = error.to_string();
        let line = format!("{}: {expected}", path.display());
        assert!(
            message.lines().any(|l| l == line),
            "{what}: {line:?} in:\n{message}"
        );
        assert_eq!(validate_exit(&path), ExitCode::FAILURE, "{what}");
    }
    let missing = dir.path().join("missing.toml");
    assert_eq!(validate_exit(&missing), ExitCode::FAILURE);
}

#[test]
fn study_export_writes_the_five_trial_design_datasets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tdm = dir.path().join("tdm");
    study::export(&protocol_path("stir.toml"), &tdm, &mut Vec::new()).expect("export");
    let cases = [
        (
            "ta.csv",
            "STUDYID,DOMAIN,ARMCD,ARM,TAETORD,ETCD,ELEMENT,TABRANCH,TATRANS,EPOCH",
        ),
        ("te.csv", "STUDYID,DOMAIN,ETCD,ELEMENT,TESTRL,TEENRL,TEDUR"),
        (
            "tv.csv",
            "STUDYID,DOMAIN,VISITNUM,VISIT,VISITDY,ARMCD,ARM,TVSTRL,TVENRL",
        ),
        ("ti.csv", "STUDYID,DOMAIN,IETESTCD,IETEST,IECAT,TIRL,TIVERS"),
        (
            "ts.csv",
            "STUDYID,DOMAIN,TSSEQ,TSGRPID,TSPARMCD,TSPARM,TSVAL,TSVALNF,TSVALCD,TSVCDREF,TSVCDVER",
        ),
    ];
    for (file, header) in cases {
        let text = std::fs::read_to_string(tdm.join(file)).expect(file);
        assert_eq!(text.lines().next(), Some(header), "{file}");
        assert!(text.lines().count() > 1, "{file} has rows");
    }
}

/// A globals form of subject S001 at `visit` on `date`.
fn globals(event_id: &str, visit: &str, date: &str) -> pb::Event {
    pb::Event {
        source_audit: None,
        event_id: event_id.into(),
        study_id: "STIR".into(),
        subject_id: "S001".into(),
        visit_id: visit.into(),
        clinical_date: date.into(),
        body: Some(pb::event::Body::AssessmentRecorded(
            pb::AssessmentRecorded {
                instrument: Some(pb::assessment_recorded::Instrument::Globals(pb::Globals {
                    physician_global: Some(pb::Vas {
                        value: Some(pb::vas::Value::Cm("6".into())),
                    }),
                    ..Default::default()
                })),
            },
        )),
    }
}

fn batch(events: Vec<pb::Event>) -> pb::SubmitRequest {
    pb::SubmitRequest {
        batch_id: String::new(),
        events,
    }
}

fn rejection(status: &tonic::Status) -> Vec<(String, String)> {
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

/// Day 0 of S001: enrolment (first dose) on 2024-01-08.
const DAY_ZERO: i64 = 19_730;

fn day(offset: i64) -> String {
    synth::date_from_days(DAY_ZERO + offset)
}

fn schedule(outcome: &pb::VisitOutcome) -> (String, String, i32, bool, i32, String) {
    let s = outcome
        .schedule
        .clone()
        .expect("a protocol study's outcome has a schedule");
    (
        s.protocol,
        s.encounter,
        s.study_day,
        s.deviation,
        s.days_outside,
        s.deviation_text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stir_registered_visits_checked_deviations_reported_and_amendments_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;

    // Register STIR with `myolog study register` (a retry answers with the same event).
    let register = RegisterArgs {
        file: protocol_path("stir.toml"),
        addr: server.url(),
        study: None,
        amend: false,
        date: Some(day(-30)),
        event_id: None,
        tls: Default::default(),
    };
    for duplicate in ["", " (already in the log)"] {
        let mut out = Vec::new();
        study::register(&register, &mut out)
            .await
            .expect("register");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            format!(
                "registered study STIR with protocol STIR v1 (stir.toml): event STIR.protocol.v1 sequence 1{duplicate}\n"
            )
        );
    }
    let enrol = |arm: &str| pb::Event {
        source_audit: None,
        event_id: format!("STIR.S001.enrolled.{arm}"),
        study_id: "STIR".into(),
        subject_id: "S001".into(),
        visit_id: String::new(),
        clinical_date: day(0),
        body: Some(pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
            arm: arm.into(),
            population: 0,
            ..Default::default()
        })),
    };

    // An arm or a visit id the protocol does not know: INVALID_ARGUMENT naming the field, nothing stored.
    let head = clients.head().await;
    let unknown = [
        (
            vec![enrol("PLACEBO")],
            "events[0].subject_enrolled.arm",
            "unknown arm `PLACEBO` in protocol STIR v1; expected one of TOFA (or empty)",
        ),
        (
            vec![
                enrol("TOFA"),
                globals("STIR.S001.week12.globals", "week12", &day(84)),
            ],
            "events[1].visit_id",
            "unknown visit `week12`; expected one of SCR, BL, W4, W8, W12, W16 (protocol STIR v1)",
        ),
    ];
    for (events, field, description) in unknown {
        let status = clients
            .ingest
            .append(batch(events))
            .await
            .expect_err("rejected");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}");
        assert_eq!(
            rejection(&status),
            vec![(field.to_string(), description.to_string())]
        );
        assert_eq!(clients.head().await, head, "nothing stored");
    }

    // Baseline on day 0, W4 on day 40 (window 21 to 35: 5 days late), W8 on day 56 (in window).
    clients
        .append(batch(vec![
            enrol("TOFA"),
            globals("STIR.S001.BL.globals", "BL", &day(0)),
        ]))
        .await;
    let visits = [
        (
            "W4",
            40,
            (
                "STIR v1",
                "W4",
                40,
                true,
                5,
                "protocol deviation: W4 on day 40 is 5 days after its window (days 21 to 35)",
            ),
        ),
        ("W8", 56, ("STIR v1", "W8", 56, false, 0, "")),
    ];
    for (visit, offset, expected) in visits {
        let response = clients
            .append(batch(vec![globals(
                &format!("STIR.S001.{visit}.globals"),
                visit,
                &day(offset),
            )]))
            .await;
        let outcome = response
            .outcomes
            .iter()
            .find(|o| o.visit_id == visit)
            .expect("the visit is still scored");
        assert!(outcome.tis.is_some(), "{visit} scored");
        let (protocol, encounter, study_day, deviation, days_outside, text) = expected;
        assert_eq!(
            schedule(outcome),
            (
                protocol.to_string(),
                encounter.to_string(),
                study_day,
                deviation,
                days_outside,
                text.to_string()
            ),
            "{visit}"
        );
    }

    // Amendment 1 widens W4's window to days 21 to 42: the same visit is in window under v2.
    let amended = stir_text()
        .replacen("version = 1 ", "version = 2 ", 1)
        .replacen("window = [21, 35]", "window = [21, 42]", 1)
        .replacen(
            "[study]",
            "[protocol.amendment]\nsummary = \"Week 4 window widened to day 42\"\n\n[study]",
            1,
        );
    let amended_path = dir.path().join("stir-v2.toml");
    std::fs::write(&amended_path, &amended).expect("write v2");
    let amend = RegisterArgs {
        file: amended_path.clone(),
        amend: true,
        ..register.clone()
    };
    let mut out = Vec::new();
    study::register(&amend, &mut out).await.expect("amend");
    assert!(String::from_utf8(out).expect("utf-8").starts_with(
        "amended study STIR with protocol STIR v2 (stir-v2.toml): event STIR.protocol.v2 sequence "
    ),);
    // The same version again under another event id is not the next version: nothing stored.
    let head = clients.head().await;
    let again = RegisterArgs {
        event_id: Some("STIR.protocol.v2.again".into()),
        ..amend.clone()
    };
    let error = study::register(&again, &mut Vec::new())
        .await
        .expect_err("not the next version");
    assert!(
        error.to_string().contains(
            "events[0].protocol_amended.protocol_toml: expected protocol version 3 (the next one), found version 2"
        ),
        "{error}"
    );
    assert_eq!(clients.head().await, head);

    // Outcomes now name v2 and place W4 in its widened window; a restarted server (replay
    // re-parses both protocol versions from the log) reports the same.
    let expected = vec![
        (
            "W4".to_string(),
            (
                "STIR v2".to_string(),
                "W4".to_string(),
                40,
                false,
                0,
                String::new(),
            ),
        ),
        (
            "W8".to_string(),
            (
                "STIR v2".to_string(),
                "W8".to_string(),
                56,
                false,
                0,
                String::new(),
            ),
        ),
    ];
    let subject_schedules = |subject: pb::SubjectOutcomes| {
        subject
            .visits
            .iter()
            .map(|o| (o.visit_id.clone(), schedule(o)))
            .collect::<Vec<_>>()
    };
    let request = |protocol_version| pb::GetSubjectRequest {
        study_id: "STIR".into(),
        subject_id: "S001".into(),
        protocol_version,
    };
    // Asked under v1, the same subject and log: W4 on day 40 is again 5 days after v1's window.
    let under_v1 = vec![
        (
            "W4".to_string(),
            (
                "STIR v1".to_string(),
                "W4".to_string(),
                40,
                true,
                5,
                "protocol deviation: W4 on day 40 is 5 days after its window (days 21 to 35)"
                    .to_string(),
            ),
        ),
        (
            "W8".to_string(),
            (
                "STIR v1".to_string(),
                "W8".to_string(),
                56,
                false,
                0,
                String::new(),
            ),
        ),
    ];
    // (version asked, schedules): none asked is the version in force.
    let per_version = [
        (None, expected.clone()),
        (Some(2), expected.clone()),
        (Some(1), under_v1),
    ];
    for restarted in [false, true] {
        if restarted {
            // A restarted server replays both protocol versions from the log.
            server.stop().await.expect("stops");
            server = start(dir.path()).await;
            clients = Clients::connect(&server).await;
        }
        for (version, schedules) in &per_version {
            let subject = clients
                .outcomes
                .get_subject(request(*version))
                .await
                .expect("subject")
                .into_inner();
            let window = |s: &pb::VisitSchedule| (s.window_first_day, s.window_last_day);
            let w4 = subject.visits.iter().find(|o| o.visit_id == "W4");
            assert_eq!(
                w4.and_then(|o| o.schedule.as_ref()).map(window),
                Some(if *version == Some(1) {
                    (21, 35)
                } else {
                    (21, 42)
                }),
                "{version:?}, restarted {restarted}"
            );
            assert_eq!(
                &subject_schedules(subject),
                schedules,
                "{version:?}, restarted {restarted}"
            );
        }
    }
    server.stop().await.expect("stops");
}

/// What a study's outcomes name as their protocol: (visit schedules, endpoints, subject
/// eligibility, endpoint tables, eligibility table), each deduplicated.
async fn protocols_named(clients: &mut Clients, study: &str) -> [Vec<String>; 5] {
    let subject = clients
        .outcomes
        .get_subject(pb::GetSubjectRequest {
            study_id: study.into(),
            subject_id: "S001".into(),
            protocol_version: None,
        })
        .await
        .expect("subject")
        .into_inner();
    let cohort = clients
        .outcomes
        .get_cohort(pb::GetCohortRequest {
            study_id: study.into(),
            visit_id: String::new(),
            protocol_version: None,
        })
        .await
        .expect("cohort")
        .into_inner();
    let distinct = |names: Vec<String>| {
        let mut names = names;
        names.dedup();
        names
    };
    [
        distinct(
            subject
                .visits
                .iter()
                .filter_map(|o| o.schedule.as_ref().map(|s| s.protocol.clone()))
                .collect(),
        ),
        distinct(
            subject
                .endpoints
                .iter()
                .map(|e| e.protocol.clone())
                .collect(),
        ),
        distinct(
            subject
                .eligibility
                .iter()
                .map(|e| e.protocol.clone())
                .collect(),
        ),
        distinct(
            cohort
                .endpoints
                .iter()
                .map(|t| t.protocol.clone())
                .collect(),
        ),
        distinct(
            cohort
                .eligibility
                .iter()
                .map(|t| t.protocol.clone())
                .collect(),
        ),
    ]
}

/// A protocol file names its trial; a StudyRegistered names the study in the log. Under another id
/// only when the event says so (`protocol_study_id`, which `study register --study` sends): then the
/// mapping is stored in the event and every outcome names both ids, also after an amendment and a
/// restart. A mismatch without it is INVALID_ARGUMENT naming the field and both ids, nothing
/// stored; an amendment must be of the registered protocol's own study.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_protocol_is_registered_under_another_study_id_only_when_the_event_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let registration = |declared: &str| pb::Event {
        source_audit: None,
        event_id: "STIR-X.registered".into(),
        study_id: "STIR-X".into(),
        subject_id: String::new(),
        visit_id: String::new(),
        clinical_date: day(-30),
        body: Some(pb::event::Body::StudyRegistered(pb::StudyRegistered {
            protocol_file: "stir.toml".into(),
            protocol_toml: stir_text(),
            protocol_study_id: declared.into(),
            ..Default::default()
        })),
    };
    // (protocol_study_id sent, field named, description)
    let rejected = [
        (
            "",
            "events[0].study_id",
            "study id STIR-X is not the protocol's study id STIR (stir.toml); register the study \
             as STIR, or set study_registered.protocol_study_id to STIR to register STIR's \
             protocol under STIR-X",
        ),
        (
            "BIRD",
            "events[0].study_registered.protocol_study_id",
            "`BIRD` is not the protocol's study id STIR (stir.toml); send STIR to register STIR's \
             protocol under STIR-X",
        ),
    ];
    for (declared, field, description) in rejected {
        let status = clients
            .ingest
            .append(batch(vec![registration(declared)]))
            .await
            .expect_err("rejected");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{declared:?}");
        assert_eq!(
            rejection(&status),
            vec![(field.to_string(), description.to_string())]
        );
        assert_eq!(clients.head().await, 0, "nothing stored");
    }

    // `myolog study register --study STIR-X` is the explicit choice, kept in the stored event.
    let register = RegisterArgs {
        file: protocol_path("stir.toml"),
        addr: server.url(),
        study: Some("STIR-X".into()),
        amend: false,
        date: Some(day(-30)),
        event_id: None,
        tls: Default::default(),
    };
    let mut out = Vec::new();
    study::register(&register, &mut out)
        .await
        .expect("register");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "registered study STIR-X with protocol STIR v1 (stir.toml): event STIR-X.protocol.v1 sequence 1\n"
    );
    let stored: Vec<(String, String)> = clients
        .read_all()
        .await
        .into_iter()
        .filter_map(|logged| logged.event)
        .filter_map(|event| match event.body {
            Some(pb::event::Body::StudyRegistered(registered)) => {
                Some((event.study_id, registered.protocol_study_id))
            }
            _ => None,
        })
        .collect();
    assert_eq!(stored, vec![("STIR-X".to_string(), "STIR".to_string())]);

    let in_stir_x = |mut event: pb::Event| {
        event.study_id = "STIR-X".into();
        event
    };
    clients
        .append(batch(vec![
            pb::Event {
                source_audit: None,
                event_id: "STIR-X.S001.enrolled".into(),
                study_id: "STIR-X".into(),
                subject_id: "S001".into(),
                visit_id: String::new(),
                clinical_date: day(0),
                body: Some(pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
                    arm: "TOFA".into(),
                    // IN01 met, IN03 not applicable, IN04's stable weeks not met (1 of the 2
                    // weeks STIR asks for); no CDASI (IN02) and none of the facts IN05-IN08 read.
                    age_years: Some(40),
                    muscle_active: Some(false),
                    prednisone_stable_weeks: Some(1),
                    ..Default::default()
                })),
            },
            in_stir_x(globals("STIR-X.S001.BL.globals", "BL", &day(0))),
            in_stir_x(globals("STIR-X.S001.W4.globals", "W4", &day(40))),
        ]))
        .await;
    let v1 = vec!["STIR v1 registered as STIR-X".to_string()];
    assert_eq!(
        protocols_named(&mut clients, "STIR-X").await,
        [v1.clone(), v1.clone(), v1.clone(), v1.clone(), v1]
    );

    // An amendment must be of the same protocol study (STIR), whatever id it is registered under.
    let head = clients.head().await;
    let other_trial = RegisterArgs {
        file: protocol_path("bird.toml"),
        amend: true,
        event_id: Some("STIR-X.protocol.bird".into()),
        ..register.clone()
    };
    let error = study::register(&other_trial, &mut Vec::new())
        .await
        .expect_err("another trial's protocol");
    let error = error.to_string();
    assert!(error.starts_with("FailedPrecondition: "), "{error}");
    assert_eq!(
        error.lines().skip(1).collect::<Vec<_>>(),
        [
            "  events[0].protocol_amended.protocol_toml: the amendment is for study BIRD, but the \
          registered protocol is for study STIR"
        ]
    );
    assert_eq!(clients.head().await, head, "nothing stored");

    let amended_path = dir.path().join("stir-v2.toml");
    std::fs::write(
        &amended_path,
        stir_text()
            .replacen("version = 1 ", "version = 2 ", 1)
            .replacen(
                "[study]",
                "[protocol.amendment]\nsummary = \"Same design, new version\"\n\n[study]",
                1,
            ),
    )
    .expect("write v2");
    study::register(
        &RegisterArgs {
            file: amended_path,
            amend: true,
            ..register.clone()
        },
        &mut Vec::new(),
    )
    .await
    .expect("amend");
    let v2 = vec!["STIR v2 registered as STIR-X".to_string()];
    let expected = [v2.clone(), v2.clone(), v2.clone(), v2.clone(), v2];
    assert_eq!(protocols_named(&mut clients, "STIR-X").await, expected);

    // Replay re-reads the mapping from the stored events; `myolog outcomes` shows it too.
    server.stop().await.expect("stops");
    server = start(dir.path()).await;
    clients = Clients::connect(&server).await;
    assert_eq!(protocols_named(&mut clients, "STIR-X").await, expected);
    // `myolog outcomes --protocol-version`: the latest by default, any earlier one on request, and
    // a version the study does not have is the server's error naming the versions it has.
    for (version, protocol) in [
        (None, "STIR v2 registered as STIR-X"),
        (Some(2), "STIR v2 registered as STIR-X"),
        (Some(1), "STIR v1 registered as STIR-X"),
    ] {
        let mut out = Vec::new();
        myolog_cli::demo::print_outcomes(
            &server.url(),
            &Default::default(),
            "STIR-X",
            "W4",
            version,
            &mut out,
        )
        .await
        .expect("myolog outcomes");
        let text = String::from_utf8(out).expect("utf-8");
        for line in [
            format!(
                "Eligibility by the protocol ({protocol}): 0/1 eligible, 1 not eligible, 0 not evaluable"
            ),
            // No history, attestation or other STIR fact was sent: IN09-IN15 are not evaluable too.
            "  S001     not eligible   not met: IN04; not evaluable: IN02, IN05, IN06, IN07, IN08, IN09, IN10, IN11, IN12, IN13, IN14, IN15"
                .to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
        }
    }
    let error = myolog_cli::demo::print_outcomes(
        &server.url(),
        &Default::default(),
        "STIR-X",
        "W4",
        Some(3),
        &mut Vec::new(),
    )
    .await
    .expect_err("no version 3")
    .to_string();
    assert!(
        error.ends_with(
            "protocol_version: study STIR-X has no protocol version 3; its versions are 1, 2\""
        ),
        "{error}"
    );
    server.stop().await.expect("stops");
}

/// The demo registers STIR's file under its own study id, explicitly: its outcomes name both.
const DEMO_PROTOCOL: &str = "STIR v1 registered as STIR-DEMO";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_cohort_under_stir_has_no_deviation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let cohort = Cohort::new(synth::DEFAULT_SEED, 3).with_stir_protocol();
    clients.append(cohort.enrollment()).await;
    for (visit, _) in synth::VISITS {
        for index in 0..cohort.len() {
            let response = clients.append(cohort.visit_batch(index, visit)).await;
            for outcome in &response.outcomes {
                let schedule = outcome.schedule.as_ref().expect("schedule");
                assert_eq!(schedule.protocol, DEMO_PROTOCOL);
                assert!(!schedule.deviation, "{outcome:?}");
            }
        }
    }
    server.stop().await.expect("stops");
}

/// One endpoint table as compared: (endpoint, subjects, missing, not evaluable, deviations,
/// responders/N when the endpoint has a responder rule).
type TableRow<'a> = (&'a str, u32, u32, u32, u32, Option<(u32, u32)>);

/// The cohort of the demo (10 subjects, its seed, with the correction) under STIR: the endpoint
/// tables must say what the demo's week-12 table says, subject by subject (docs/user-guide.md, The demo):
/// DOI met by all but S003 and S005; TIS categories none 1 (S005), minimal 4, moderate 2, major 3;
/// CDASI activity improved by at least the MCID in all 10; every W16 extension visit attended.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stir_endpoints_of_the_demo_cohort_match_the_hand_written_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let cohort = Cohort::new(synth::DEFAULT_SEED, 10).with_stir_protocol();
    for batch in myolog_tests::cohort_batches(&cohort, true) {
        clients.append(batch).await;
    }
    let tables = clients
        .outcomes
        .get_cohort(pb::GetCohortRequest {
            study_id: synth::STUDY.into(),
            visit_id: String::new(),
            protocol_version: None,
        })
        .await
        .expect("cohort")
        .into_inner()
        .endpoints;
    // (endpoint, subjects, missing, not evaluable, deviations, responders/N or None)
    let expected: Vec<TableRow> = vec![
        ("DOI_W12", 10, 0, 0, 0, Some((8, 10))),
        ("CDASI_W12", 10, 0, 0, 0, None),
        ("MCID_W12", 10, 0, 0, 0, Some((10, 10))),
        ("TIS_W12", 10, 0, 0, 0, None),
        ("TISCAT_W12", 10, 0, 0, 0, Some((9, 10))),
        ("CXCL9_W12", 10, 0, 0, 0, None),
        ("CXCL10_W12", 10, 0, 0, 0, None),
        ("STAT1_W12", 10, 0, 0, 0, None),
        ("DOI_W16", 10, 0, 0, 0, Some((6, 10))),
        // CTG-STIR's CDASI time frame "Up to 16 weeks": every demo subject attends week 16.
        ("CDASI_W16", 10, 0, 0, 0, None),
    ];
    let got: Vec<TableRow> = tables
        .iter()
        .map(|t| {
            assert_eq!(t.protocol, DEMO_PROTOCOL, "{}", t.endpoint);
            (
                t.endpoint.as_str(),
                t.subjects,
                t.missing,
                t.not_evaluable,
                t.deviations,
                t.responders.as_ref().map(|p| (p.responders, p.total)),
            )
        })
        .collect();
    assert_eq!(got, expected);
    // DOI 8/10: Clopper-Pearson 95% CI 44.4% to 97.5%, as the demo prints.
    let doi = tables[0].responders.as_ref().expect("doi");
    assert_eq!(
        (
            format!("{:.1}", doi.ci_low * 100.0),
            format!("{:.1}", doi.ci_high * 100.0)
        ),
        ("44.4".to_string(), "97.5".to_string())
    );
    // Per subject: DOI_W12 responders except S003 and S005; DOI_W16 as the W16 visit outcome says
    // (6 of 10 met, by the visit scoring the service has always done).
    let mut w16_met = 0;
    for index in 0..10 {
        let subject = clients.subject(index).await;
        let w16_visit = subject
            .visits
            .iter()
            .find(|v| v.visit_id == "W16")
            .and_then(|v| v.doi.as_ref())
            .is_some_and(|doi| doi.status == pb::DoiStatus::Met as i32);
        let w16 = subject
            .endpoints
            .iter()
            .find(|e| e.endpoint == "DOI_W16")
            .expect("DOI_W16");
        assert_eq!(
            w16.responder == "responder",
            w16_visit,
            "{}",
            subject.subject_id
        );
        w16_met += u32::from(w16_visit);
        let doi = subject
            .endpoints
            .iter()
            .find(|e| e.endpoint == "DOI_W12")
            .expect("DOI_W12");
        let expected = if [2, 4].contains(&index) {
            ("non_responder", Some(false))
        } else {
            ("responder", Some(true))
        };
        assert_eq!(
            (doi.responder.as_str(), doi.counts_as_responder),
            expected,
            "{}",
            subject.subject_id
        );
    }
    assert_eq!(w16_met, 6);
    server.stop().await.expect("stops");
}

/// Synthetic subject S001's forms at `synth_visit` sent as `study`'s `subject` at `visit` on `date`
/// (its dose records left out: each subject here gets its own dose history).
fn forms(study: &str, subject: &str, synth_visit: &str, visit: &str, date: &str) -> Vec<pb::Event> {
    Cohort::new(synth::DEFAULT_SEED, 1)
        .visit_batch(0, synth_visit)
        .events
        .into_iter()
        .filter(|event| !matches!(event.body, Some(pb::event::Body::DoseRecorded(_))))
        .enumerate()
        .map(|(index, event)| pb::Event {
            source_audit: None,
            event_id: format!("{study}.{subject}.{visit}.{index}"),
            study_id: study.into(),
            subject_id: subject.into(),
            visit_id: visit.into(),
            clinical_date: date.into(),
            ..event
        })
        .collect()
}

fn prednisone(subject: &str, visit: &str, offset: i64, mg: &str) -> pb::Event {
    pb::Event {
        source_audit: None,
        event_id: format!("BIRD.{subject}.prednisone.day{offset}"),
        study_id: "BIRD".into(),
        subject_id: subject.into(),
        visit_id: visit.into(),
        clinical_date: day(offset),
        body: Some(pb::event::Body::DoseRecorded(pb::DoseRecorded {
            kind: pb::DoseKind::Glucocorticoid as i32,
            drug: "prednisone".into(),
            mg_per_day: mg.into(),
        })),
    }
}

/// BIRD's primary endpoint from DoseRecorded glucocorticoid records: TIS >= 40 at W24 (the same
/// strong responder for everyone) and 0 mg/day over days 140-168 with at least one record in them.
/// Prednisone stops the day before the window (met), on its first day (met), the day after it
/// starts (5 mg in effect on day 140: not met); no record inside the window is not evaluable,
/// never met, and a non-responder under BIRD's non-responder imputation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bird_prednisone_free_from_dose_records_at_the_window_edges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let register = RegisterArgs {
        file: protocol_path("bird.toml"),
        addr: server.url(),
        study: None,
        amend: false,
        date: Some(day(-60)),
        event_id: None,
        tls: Default::default(),
    };
    study::register(&register, &mut Vec::new())
        .await
        .expect("register BIRD");
    // (subject, day prednisone stops, whether a 0 mg record is made at W24, responder, counts as)
    let cases = [
        ("S001", 139, true, "responder", Some(true)),
        ("S002", 140, true, "responder", Some(true)),
        ("S003", 141, true, "non_responder", Some(false)),
        ("S004", 100, false, "not_evaluable", Some(false)),
    ];
    for (subject, stop, record_at_w24, _, _) in cases {
        let mut events = vec![pb::Event {
            source_audit: None,
            event_id: format!("BIRD.{subject}.enrolled"),
            study_id: "BIRD".into(),
            subject_id: subject.into(),
            visit_id: String::new(),
            clinical_date: day(0),
            body: Some(pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
                arm: "BARI".into(),
                population: 0,
                ..Default::default()
            })),
        }];
        events.extend(forms("BIRD", subject, "baseline", "BL", &day(0)));
        events.push(prednisone(subject, "BL", 0, "5"));
        events.push(prednisone(subject, "W20", stop, "0"));
        if record_at_w24 {
            events.push(prednisone(subject, "W24", 168, "0"));
        }
        events.extend(forms("BIRD", subject, "week12", "W24", &day(168)));
        clients.append(batch(events)).await;
    }
    for (index, (subject, _, _, responder, counts_as)) in cases.into_iter().enumerate() {
        let outcomes = clients
            .outcomes
            .get_subject(pb::GetSubjectRequest {
                study_id: "BIRD".into(),
                subject_id: subject.into(),
                protocol_version: None,
            })
            .await
            .expect("subject")
            .into_inner();
        let primary = outcomes
            .endpoints
            .iter()
            .find(|e| e.endpoint == "PFTIS_W24")
            .expect("PFTIS_W24");
        assert_eq!(primary.protocol, "BIRD v1");
        assert_eq!(
            (primary.responder.as_str(), primary.counts_as_responder),
            (responder, counts_as),
            "{subject} (case {index}): {}",
            primary.result_json
        );
    }
    let cohort = clients
        .outcomes
        .get_cohort(pb::GetCohortRequest {
            study_id: "BIRD".into(),
            visit_id: String::new(),
            protocol_version: None,
        })
        .await
        .expect("cohort")
        .into_inner();
    let table = cohort
        .endpoints
        .iter()
        .find(|t| t.endpoint == "PFTIS_W24")
        .expect("table");
    let row: TableRow = (
        table.endpoint.as_str(),
        table.subjects,
        table.missing,
        table.not_evaluable,
        table.deviations,
        table.responders.as_ref().map(|p| (p.responders, p.total)),
    );
    assert_eq!(row, ("PFTIS_W24", 4, 0, 1, 0, Some((2, 4))));
    server.stop().await.expect("stops");
}

fn endpoint_json(subject: &pb::SubjectOutcomes, endpoint: &str) -> serde_json::Value {
    let outcome = subject
        .endpoints
        .iter()
        .find(|e| e.endpoint == endpoint)
        .unwrap_or_else(|| panic!("{endpoint} in {subject:?}"));
    serde_json::from_str(&outcome.result_json).expect("result json")
}

/// MYOJAK's delayed start: the first dose comes from a study-drug DoseRecorded. Before it the
/// own-first-dose endpoint has no baseline; after it (day 85) the baseline is the last visit on or
/// before the dose (W12, day 84) and the delayed arm's follow-up is W24, while the randomisation
/// endpoint still compares BL with W24. Both are shown side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn myojak_delayed_start_baseline_switches_at_the_recorded_first_dose() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let register = RegisterArgs {
        file: protocol_path("myojak.toml"),
        addr: server.url(),
        study: None,
        amend: false,
        date: Some(day(-60)),
        event_id: None,
        tls: Default::default(),
    };
    study::register(&register, &mut Vec::new())
        .await
        .expect("register MYOJAK");
    let mut events = vec![pb::Event {
        source_audit: None,
        event_id: "MYOJAK.D001.enrolled".into(),
        study_id: "MYOJAK".into(),
        subject_id: "D001".into(),
        visit_id: String::new(),
        clinical_date: day(0),
        body: Some(pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
            arm: "DELAYED".into(),
            population: 0,
            ..Default::default()
        })),
    }];
    events.extend(forms("MYOJAK", "D001", "baseline", "BL", &day(0)));
    events.extend(forms("MYOJAK", "D001", "baseline", "W12", &day(84)));
    events.extend(forms("MYOJAK", "D001", "week12", "W24", &day(168)));
    clients.append(batch(events)).await;
    let request = || pb::GetSubjectRequest {
        study_id: "MYOJAK".into(),
        subject_id: "D001".into(),
        protocol_version: None,
    };
    let before = clients
        .outcomes
        .get_subject(request())
        .await
        .expect("subject")
        .into_inner();
    assert_eq!(
        endpoint_json(&before, "TIS_12W_DRUG")["visits"]["baseline"],
        serde_json::json!("FirstDoseNotRecorded")
    );

    clients
        .append(batch(vec![pb::Event {
            source_audit: None,
            event_id: "MYOJAK.D001.first-dose".into(),
            study_id: "MYOJAK".into(),
            subject_id: "D001".into(),
            visit_id: "W12".into(),
            clinical_date: day(85),
            body: Some(pb::event::Body::DoseRecorded(pb::DoseRecorded {
                kind: pb::DoseKind::StudyDrug as i32,
                drug: "baricitinib".into(),
                mg_per_day: "4".into(),
            })),
        }]))
        .await;
    let after = clients
        .outcomes
        .get_subject(request())
        .await
        .expect("subject")
        .into_inner();
    // (endpoint, baseline visit, its day, anchor day, follow-up visit)
    let cases = [
        ("TIS_12W_DRUG", "W12", 84, 85, "W24"),
        ("TIS_W24", "BL", 0, 0, "W24"),
    ];
    for (endpoint, baseline, baseline_day, anchor_day, followup) in cases {
        let json = endpoint_json(&after, endpoint);
        assert_eq!(json["protocol"]["study_id"], "MYOJAK", "{endpoint}");
        assert_eq!(
            json["visits"]["baseline"],
            serde_json::json!({"Found": {"visit_id": baseline, "day": baseline_day, "anchor_day": anchor_day}}),
            "{endpoint}"
        );
        assert_eq!(
            json["visits"]["followup"]["Found"]["visit_id"], followup,
            "{endpoint}"
        );
    }
    server.stop().await.expect("stops");
}
