//! `myolog import odm` against a real server on loopback: the STIR-shaped REDCap project export and a
//! Transactional ODM file with corrections and a retraction go in through the public Ingest.Append and
//! give the same outcomes as the same visits sent by hand as any client sends them; a second import
//! stores nothing; a refused record is named by its ODM key path while the rest goes in; a dry run
//! stores nothing; the integration role writes and reads back its own study only.

use std::path::{Path, PathBuf};

use myolog_cli::client::{Bearer, ServerTls};
use myolog_cli::edc::{ImportOdmArgs, ImportSummary, import_odm};
use myolog_proto::v1 as pb;
use myolog_server::server::Running;
use myolog_tests::{Clients, start};

const STUDY: &str = "STIR";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/edc")
        .join(name)
}

/// The mapping copied into `dir`, so its ledger is written there and never into the repository.
fn mapping(dir: &Path, name: &str) -> PathBuf {
    let target = dir.join(name);
    std::fs::copy(data(name), &target).expect("copy the mapping");
    target
}

fn args(server: &Running, file: &str, mapping: &Path) -> ImportOdmArgs {
    ImportOdmArgs {
        file: data(file),
        mapping: mapping.to_path_buf(),
        addr: Some(server.url()),
        ledger: None,
        dry_run: false,
        discrepancies: None,
        batch_size: 500,
        tls: ServerTls::default(),
    }
}

async fn import(args: &ImportOdmArgs) -> ImportSummary {
    let mut out = Vec::new();
    import_odm(args, Bearer::default(), &mut out)
        .await
        .expect("the import runs")
}

fn event(id: &str, subject: &str, visit: &str, date: &str, body: pb::event::Body) -> pb::Event {
    pb::Event {
        event_id: id.into(),
        study_id: STUDY.into(),
        subject_id: subject.into(),
        visit_id: visit.into(),
        clinical_date: date.into(),
        body: Some(body),
        source_audit: None,
    }
}

fn registration() -> pb::SubmitRequest {
    pb::SubmitRequest {
        batch_id: "register".into(),
        events: vec![event(
            "STIR.registered",
            "",
            "",
            "2024-01-01",
            pb::event::Body::StudyRegistered(pb::StudyRegistered {
                title: "STIR-shaped REDCap project".into(),
                population: pb::Population::Adult as i32,
                baseline_visit_id: "BL".into(),
                ..Default::default()
            }),
        )],
    }
}

/// One visit as the REDCap project holds it (only the forms it imports).
struct Visit {
    id: &'static str,
    date: &'static str,
    /// Physician, patient, extramuscular VAS in cm.
    globals: Option<[&'static str; 3]>,
    mmt8: Option<u32>,
    haq_di: &'static str,
    ck: [&'static str; 2],
    prednisone: &'static str,
}

/// The visits of the fixture's two subjects as a site would send them by hand, form by form.
fn by_hand() -> Vec<pb::SubmitRequest> {
    use pb::assessment_recorded::Instrument;
    let subjects: [(&str, &str, &str, Vec<Visit>); 2] = [
        (
            "STIR-01",
            "ivig",
            "SITE-A",
            vec![
                visit(
                    "BL",
                    "2024-01-15",
                    Some(["6.5", "7", "4.2"]),
                    Some(62),
                    "1.625",
                    ["1450", "200"],
                    "20",
                ),
                visit(
                    "W4",
                    "2024-02-12",
                    Some(["5", "6.1", "3.5"]),
                    Some(66),
                    "1.5",
                    ["900", "200"],
                    "17.5",
                ),
                visit(
                    "W8",
                    "2024-03-11",
                    Some(["4", "5", "3"]),
                    Some(70),
                    "1.25",
                    ["720", "199.8"],
                    "15",
                ),
                visit(
                    "W12",
                    "2024-04-08",
                    Some(["2.5", "3.5", "1.5"]),
                    Some(74),
                    "0.875",
                    ["210", "200"],
                    "10",
                ),
                visit(
                    "W16",
                    "2024-05-06",
                    Some(["2", "3", "1"]),
                    None,
                    "0.75",
                    ["180", "200"],
                    "7.5",
                ),
            ],
        ),
        (
            "STIR-02",
            "placebo",
            "SITE-B",
            vec![
                visit(
                    "BL",
                    "2024-01-15",
                    Some(["7", "8.2", "5"]),
                    Some(58),
                    "2",
                    ["3100", "170"],
                    "25",
                ),
                visit(
                    "W4",
                    "2024-02-12",
                    Some(["7.1", "8", "5"]),
                    Some(58),
                    "2.125",
                    ["2900", "170"],
                    "25",
                ),
                // The physician global of 10.5 cm holds the week-8 globals; week-16 globals are
                // Incomplete in REDCap: neither is imported.
                visit(
                    "W8",
                    "2024-03-11",
                    None,
                    Some(60),
                    "2",
                    ["2500", "170"],
                    "22.5",
                ),
                visit(
                    "W12",
                    "2024-04-08",
                    Some(["6", "7", "4"]),
                    Some(61),
                    "1.875",
                    ["2000", "170"],
                    "20",
                ),
                visit(
                    "W16",
                    "2024-05-06",
                    None,
                    Some(63),
                    "1.75",
                    ["1600", "170"],
                    "20",
                ),
            ],
        ),
    ];
    let mut batches = Vec::new();
    for (subject, arm, site, visits) in subjects {
        let mut events = vec![event(
            &format!("{subject}.enrolled"),
            subject,
            "",
            "2024-01-12",
            pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
                arm: arm.into(),
                population: pb::Population::Adult as i32,
                site_id: site.into(),
                ..Default::default()
            }),
        )];
        for v in visits {
            let form = |name: &str, instrument: Instrument| {
                event(
                    &format!("{subject}.{}.{name}", v.id),
                    subject,
                    v.id,
                    v.date,
                    pb::event::Body::AssessmentRecorded(pb::AssessmentRecorded {
                        instrument: Some(instrument),
                    }),
                )
            };
            let cm = |text: &str| {
                Some(pb::Vas {
                    value: Some(pb::vas::Value::Cm(text.into())),
                })
            };
            events.push(form(
                "enzymes",
                Instrument::Enzymes(pb::Enzymes {
                    ck: Some(pb::EnzymeResult {
                        value: v.ck[0].into(),
                        uln: v.ck[1].into(),
                        unit: "U/L".into(),
                    }),
                    ..Default::default()
                }),
            ));
            if let Some([physician, patient, extramuscular]) = v.globals {
                events.push(form(
                    "globals",
                    Instrument::Globals(pb::Globals {
                        physician_global: cm(physician),
                        patient_global: cm(patient),
                        extramuscular_global: cm(extramuscular),
                    }),
                ));
            }
            events.push(form(
                "haq",
                Instrument::HaqDi(pb::HaqDi {
                    value: v.haq_di.into(),
                }),
            ));
            if let Some(total) = v.mmt8 {
                events.push(form(
                    "mmt8",
                    Instrument::Mmt8(pb::Mmt8 {
                        max: 80,
                        total: Some(total),
                        grades: None,
                    }),
                ));
            }
            events.push(event(
                &format!("{subject}.{}.prednisone", v.id),
                subject,
                v.id,
                v.date,
                pb::event::Body::DoseRecorded(pb::DoseRecorded {
                    kind: pb::DoseKind::Glucocorticoid as i32,
                    drug: "prednisone".into(),
                    mg_per_day: v.prednisone.into(),
                }),
            ));
        }
        batches.push(pb::SubmitRequest {
            batch_id: subject.into(),
            events,
        });
    }
    batches
}

#[allow(clippy::too_many_arguments)]
fn visit(
    id: &'static str,
    date: &'static str,
    globals: Option<[&'static str; 3]>,
    mmt8: Option<u32>,
    haq_di: &'static str,
    ck: [&'static str; 2],
    prednisone: &'static str,
) -> Visit {
    Visit {
        id,
        date,
        globals,
        mmt8,
        haq_di,
        ck,
        prednisone,
    }
}

/// A subject's outcomes without the log positions (which differ between two logs).
async fn outcomes(clients: &mut Clients, subject: &str) -> Vec<pb::VisitOutcome> {
    let mut visits = clients
        .outcomes
        .get_subject(pb::GetSubjectRequest {
            study_id: STUDY.into(),
            subject_id: subject.into(),
            protocol_version: None,
        })
        .await
        .expect("get subject")
        .into_inner()
        .visits;
    for visit in &mut visits {
        visit.as_of_sequence = 0;
    }
    visits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stir_export_and_a_transactional_file_give_the_outcomes_of_the_same_visits_sent_by_hand()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let imported = start(&dir.path().join("imported")).await;
    let by_client = start(&dir.path().join("by-client")).await;
    let mut a = Clients::connect(&imported).await;
    let mut b = Clients::connect(&by_client).await;
    a.append(registration()).await;
    b.append(registration()).await;

    let stir = mapping(dir.path(), "stir_redcap.mapping.toml");
    let summary = import(&args(&imported, "redcap_longitudinal_stir.xml", &stir)).await;
    assert_eq!(
        (
            summary.subjects,
            summary.visits,
            summary.planned,
            summary.sent
        ),
        (2, 10, 49, 49),
        "{}",
        summary.render()
    );
    assert_eq!(summary.already_present, 0);
    assert_eq!(
        summary.discrepancies, 4,
        "the fixture's three planted problems"
    );
    assert!(summary.refused.is_empty(), "{:?}", summary.refused);
    assert_eq!(
        summary.exit_code(),
        2,
        "discrepancies make a partial import"
    );

    let transactional = mapping(dir.path(), "transactional.mapping.toml");
    let summary = import(&args(
        &imported,
        "transactional_changes.xml",
        &transactional,
    ))
    .await;
    assert_eq!(
        (summary.sent, summary.corrections, summary.retractions),
        (4, 2, 1),
        "{}",
        summary.render()
    );
    assert_eq!((summary.context_rows, summary.exit_code()), (1, 0));

    for batch in by_hand() {
        b.append(batch).await;
    }
    for subject in ["STIR-01", "STIR-02"] {
        let from_import = outcomes(&mut a, subject).await;
        let from_client = outcomes(&mut b, subject).await;
        assert_eq!(from_import.len(), 4, "{subject}: four follow-up visits");
        assert!(
            from_import.iter().any(|visit| visit.doi.is_some()),
            "{subject}: outcomes were computed"
        );
        assert_eq!(from_import, from_client, "{subject}");
    }

    // The source's audit trail travels on each event, beside the server's own recorded-by.
    let logged = a.read_all().await;
    let transactional_events: Vec<&pb::LoggedEvent> = logged
        .iter()
        .filter(|e| e.event.as_ref().is_some_and(|e| e.source_audit.is_some()))
        .collect();
    assert_eq!(
        transactional_events.len(),
        4,
        "only the transactional file has audit records"
    );
    let audit = |index: usize| {
        transactional_events[index]
            .event
            .as_ref()
            .and_then(|e| e.source_audit.clone())
            .expect("audit")
    };
    assert_eq!(audit(0).user, "U.NURSE1");
    assert_eq!(audit(0).timestamp, "2024-04-08T11:20:00+02:00");
    assert_eq!(audit(0).utc_offset, "+02:00");
    assert_eq!(audit(0).location, "SITE-A");
    assert_eq!(audit(0).source_id, "AR-1");
    assert_eq!(audit(0).reason, "", "a first record states no reason");
    assert_eq!(audit(1).reason, "transcription error: <source> says 2.5");
    assert_eq!(
        audit(2).reason,
        "changed in the EDC without a stated reason",
        "a correction without ReasonForChange carries the mapping's stated default"
    );
    let retraction = transactional_events[3];
    assert_eq!(retraction.event_type, "myolog.v1.AssessmentRetracted");
    assert_eq!(audit(3).reason, "form entered for the wrong subject");
    for event in &transactional_events {
        assert_eq!(
            event.recorded_by,
            myolog_server::app::DEFAULT_PRINCIPAL,
            "recorded-by is the caller, never the payload"
        );
    }
    let Some(pb::event::Body::AssessmentRetracted(retracted)) =
        retraction.event.as_ref().and_then(|e| e.body.clone())
    else {
        panic!("a retraction");
    };
    assert_eq!(
        retracted.retracts_event_id, transactional_events[2].event_id,
        "the retraction withdraws the latest correction"
    );
    imported.stop().await.expect("stops");
    by_client.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_import_stores_nothing_with_or_without_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&dir.path().join("log")).await;
    let mut clients = Clients::connect(&server).await;
    clients.append(registration()).await;
    let stir = mapping(dir.path(), "stir_redcap.mapping.toml");
    let args = args(&server, "redcap_longitudinal_stir.xml", &stir);
    let first = import(&args).await;
    assert_eq!(first.sent, 49);
    let head = clients.head().await;

    let second = import(&args).await;
    assert_eq!(
        (second.planned, second.sent, second.unchanged),
        (0, 0, 49),
        "{}",
        second.render()
    );
    assert_eq!(clients.head().await, head);

    // A lost ledger (or a run killed before writing it) plans the same ids again: the server
    // answers every one as already present and stores nothing.
    std::fs::remove_file(dir.path().join("stir_redcap.mapping.ledger.json")).expect("ledger");
    let third = import(&args).await;
    assert_eq!(
        (third.planned, third.sent, third.already_present),
        (49, 0, 49),
        "{}",
        third.render()
    );
    assert_eq!(clients.head().await, head);
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_named_by_its_key_path_and_the_rest_goes_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&dir.path().join("log")).await;
    let mut clients = Clients::connect(&server).await;
    clients.append(registration()).await;
    // STIR-02 was enrolled by another system: the export's enrolment of STIR-02 is refused by the
    // server (already enrolled), its visits still go in.
    let mut other = by_hand().remove(1);
    other.events.truncate(1);
    clients.append(other).await;
    let head = clients.head().await;

    let stir = mapping(dir.path(), "stir_redcap.mapping.toml");
    let args = args(&server, "redcap_longitudinal_stir.xml", &stir);
    let summary = import(&args).await;
    assert_eq!(summary.refused.len(), 1, "{}", summary.render());
    let refused = &summary.refused[0];
    assert!(
        refused.reason.contains("already enrolled"),
        "{}",
        refused.reason
    );
    assert!(
        refused
            .sources
            .iter()
            .any(|path| path.starts_with("SubjectData[SubjectKey=STIR-02]")
                && path.contains("ItemOID=rand_arm")),
        "{:?}",
        refused.sources
    );
    assert_eq!(summary.sent, 48);
    assert_eq!(summary.exit_code(), 2);
    assert_eq!(clients.head().await, head + 48);
    assert!(summary.render().contains("ItemOID=rand_arm"));

    // The refused enrolment is not in the ledger: the next run tries it again, and only it.
    let again = import(&args).await;
    assert_eq!((again.planned, again.sent), (1, 0), "{}", again.render());
    assert_eq!(again.refused.len(), 1);
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_the_discrepancies_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&dir.path().join("log")).await;
    let mut clients = Clients::connect(&server).await;
    clients.append(registration()).await;
    let head = clients.head().await;
    let stir = mapping(dir.path(), "stir_redcap.mapping.toml");
    let csv = dir.path().join("discrepancies.csv");
    let mut args = args(&server, "redcap_longitudinal_stir.xml", &stir);
    args.dry_run = true;
    args.discrepancies = Some(csv.clone());
    let summary = import(&args).await;
    assert_eq!((summary.planned, summary.sent), (49, 0));
    assert_eq!(clients.head().await, head);
    assert!(!dir.path().join("stir_redcap.mapping.ledger.json").exists());
    let text = std::fs::read_to_string(&csv).expect("csv");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "key_path,value,problem");
    assert_eq!(lines.len(), 5);
    assert!(text.contains("ItemOID=pga_vas]\",10.5,"), "{text}");
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mapping_is_named_by_its_toml_key_and_nothing_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&dir.path().join("log")).await;
    let mut clients = Clients::connect(&server).await;
    clients.append(registration()).await;
    let head = clients.head().await;
    let bad = dir.path().join("bad.mapping.toml");
    let text = std::fs::read_to_string(data("stir_redcap.mapping.toml"))
        .expect("mapping")
        .replace("mmt8_max = 80", "mmt8_max = 90");
    std::fs::write(&bad, text).expect("write");
    let mut out = Vec::new();
    let error = import_odm(
        &args(&server, "redcap_longitudinal_stir.xml", &bad),
        Bearer::default(),
        &mut out,
    )
    .await
    .expect_err("refused");
    assert!(
        error.to_string().contains("conventions.mmt8_max"),
        "{error}"
    );
    let error = import_odm(
        &args(
            &server,
            "malformed_truncated.xml",
            &mapping(dir.path(), "stir_redcap.mapping.toml"),
        ),
        Bearer::default(),
        &mut out,
    )
    .await
    .expect_err("refused");
    assert!(error.to_string().contains("nothing was sent"), "{error}");
    assert_eq!(clients.head().await, head);
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integration_role_imports_and_reads_back_its_own_study_only() {
    use myolog_proto::v1::audit_client::AuditClient;
    use myolog_server::auth::Auth;
    use std::sync::Arc;
    use tonic::Code;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("principals.toml");
    let admin = myolog_tests::issue_token(&file, "dm", "admin", &[]);
    let bridge = myolog_tests::issue_token(&file, "redcap-stir", "integration", &[STUDY]);
    let elsewhere = myolog_tests::issue_token(&file, "redcap-other", "integration", &["OTHER"]);
    let auth = Auth::from_file(&file).expect("principals file loads");
    let server = myolog_server::server::start_secured(
        myolog_server::app::AppConfig::new(dir.path().join("log")),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(Arc::clone(&auth)),
    )
    .await
    .expect("server starts");
    let channel = myolog_tests::channel(&server).await;
    let authed = |token: &str| Bearer::new(token).expect("token");
    // The admin registers the study; an integration may not.
    let mut ingest = myolog_proto::v1::ingest_client::IngestClient::with_interceptor(
        channel.clone(),
        authed(&bridge),
    );
    let refused = ingest
        .append(registration())
        .await
        .expect_err("not an admin's");
    assert_eq!(refused.code(), Code::PermissionDenied);
    myolog_proto::v1::ingest_client::IngestClient::with_interceptor(
        channel.clone(),
        authed(&admin),
    )
    .append(registration())
    .await
    .expect("registered");

    let stir = mapping(dir.path(), "stir_redcap.mapping.toml");
    let import_args = args(&server, "redcap_longitudinal_stir.xml", &stir);
    let mut out = Vec::new();
    let summary = import_odm(&import_args, authed(&bridge), &mut out)
        .await
        .expect("imports");
    assert_eq!(summary.sent, 49, "{}", summary.render());

    // Another study's integration: every batch refused, nothing stored, the ledger records nothing.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).expect("dir");
    let other_args = args(
        &server,
        "redcap_longitudinal_stir.xml",
        &mapping(&other, "stir_redcap.mapping.toml"),
    );
    let summary = import_odm(&other_args, authed(&elsewhere), &mut out)
        .await
        .expect("runs");
    assert_eq!((summary.sent, summary.refused.len()), (0, 49));
    assert!(
        summary.refused[0].reason.contains("PermissionDenied"),
        "{:?}",
        summary.refused[0]
    );

    // Reading back: its own study's events only, and only when it names the study.
    let mut audit = AuditClient::with_interceptor(channel.clone(), authed(&bridge));
    let read = |study: &str| myolog_proto::v1::ReadEventsRequest {
        from_sequence: 1,
        limit: 0,
        study_id: study.into(),
    };
    let mut stream = audit
        .read_events(read(STUDY))
        .await
        .expect("own study")
        .into_inner();
    let mut events = 0;
    while let Some(event) = stream.message().await.expect("event") {
        assert!(
            event.stream == STUDY || event.stream.starts_with("STIR/"),
            "{}",
            event.stream
        );
        events += 1;
    }
    assert_eq!(events, 50, "the registration and the 49 imported events");
    let mut limited = audit
        .read_events(myolog_proto::v1::ReadEventsRequest {
            limit: 3,
            ..read(STUDY)
        })
        .await
        .expect("own study")
        .into_inner();
    let mut count = 0;
    while limited.message().await.expect("event").is_some() {
        count += 1;
    }
    assert_eq!(count, 3);
    for study in ["", "OTHER"] {
        let denied = audit.read_events(read(study)).await.expect_err("denied");
        assert_eq!(denied.code(), Code::PermissionDenied, "{study:?}");
    }
    let denied = audit
        .verify(myolog_proto::v1::VerifyRequest {})
        .await
        .expect_err("no whole-log verification");
    assert_eq!(denied.code(), Code::PermissionDenied);
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openclinica_extract_with_audits_turns_a_changed_value_into_a_correction_with_its_audit()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&dir.path().join("log")).await;
    let mut clients = Clients::connect(&server).await;
    clients.append(registration()).await;
    clients
        .append(pb::SubmitRequest {
            batch_id: "enrol".into(),
            events: vec![event(
                "STIR.SS_STIR001.enrolled",
                "SS_STIR001",
                "",
                "2024-01-10",
                pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
                    arm: "ivig".into(),
                    population: pb::Population::Adult as i32,
                    ..Default::default()
                }),
            )],
        })
        .await;
    let openclinica = mapping(dir.path(), "openclinica.mapping.toml");
    // The extract before the monitor's correction, then the one after it (includeAudits=y).
    let before = import(&args(
        &server,
        "openclinica3_before_change.xml",
        &openclinica,
    ))
    .await;
    assert_eq!(
        (before.sent, before.corrections),
        (1, 0),
        "{}",
        before.render()
    );
    let after = import(&args(&server, "openclinica3_audit_logs.xml", &openclinica)).await;
    assert_eq!(
        (after.sent, after.corrections),
        (1, 1),
        "{}",
        after.render()
    );
    let events = clients.read_all().await;
    let last = events.last().and_then(|e| e.event.clone()).expect("event");
    let Some(pb::event::Body::AssessmentCorrected(correction)) = &last.body else {
        panic!("{last:?}");
    };
    assert_eq!(correction.reason, "transcription & typing error");
    let audit = last.source_audit.clone().expect("source audit");
    assert_eq!(
        (
            audit.user.as_str(),
            audit.timestamp.as_str(),
            audit.utc_offset.as_str(),
            audit.reason.as_str(),
            audit.source_id.as_str()
        ),
        (
            "monitor1",
            "2024-01-16T09:12:00",
            "+01:00",
            "transcription & typing error",
            "AL_12"
        )
    );
    server.stop().await.expect("stops");
}
