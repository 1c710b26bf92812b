//! Blinding end to end: a real server on 127.0.0.1:0 with a principals file, a STIR-protocol study
//! registered with `blinded = true`. Until an admin's StudyUnblinded (reason required; allowed during
//! a data lock), a reader never gets what depends on the arm — visit schedules (the arm's windows)
//! and per-subject endpoint results (the arm's baseline and visits) — through GetSubject, Watch or
//! an ingest answer, nor GetCohort's per-arm tables (endpoints and visits), while the outcome values
//! and the tables of every subject stay visible; the auditor sees everything; after the unblinding
//! the reader does too.

use std::net::SocketAddr;
use std::path::Path;

use myolog_proto::v1 as pb;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_proto::v1::outcomes_client::OutcomesClient;
use myolog_server::app::AppConfig;
use myolog_server::auth::Auth;
use myolog_server::server::{self, Running};
use myolog_synth::{Cohort, STIR_ARM, STUDY, subject_id};
use myolog_tests::issue_token;
use tonic::transport::Channel;
use tonic::{Code, Request};

struct Tokens {
    writer: String,
    reader: String,
    auditor: String,
    admin: String,
}

async fn start(dir: &Path) -> (Running, Channel, Tokens) {
    let file = dir.join("principals.toml");
    let tokens = Tokens {
        writer: issue_token(&file, "edc-a", "writer", &[STUDY]),
        reader: issue_token(&file, "stat-a", "reader", &[STUDY]),
        auditor: issue_token(&file, "inspector", "auditor", &[]),
        admin: issue_token(&file, "dm-admin", "admin", &[]),
    };
    let auth = Auth::from_file(&file).expect("principals file loads");
    let server = server::start_secured(
        AppConfig::new(dir.join("log")),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(auth),
    )
    .await
    .expect("server starts");
    let channel = Channel::from_shared(server.url())
        .expect("url")
        .connect()
        .await
        .expect("connects");
    (server, channel, tokens)
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii header"),
    );
    request
}

fn study_event(id: &str, body: pb::event::Body) -> pb::SubmitRequest {
    pb::SubmitRequest {
        batch_id: id.into(),
        events: vec![pb::Event {
            source_audit: None,
            event_id: id.into(),
            study_id: STUDY.into(),
            subject_id: String::new(),
            visit_id: String::new(),
            clinical_date: "2024-06-01".into(),
            body: Some(body),
        }],
    }
}

fn unblind(id: &str, reason: &str) -> pb::SubmitRequest {
    study_event(
        id,
        pb::event::Body::StudyUnblinded(pb::StudyUnblinded {
            reason: reason.into(),
        }),
    )
}

/// Registers STIR blinded (admin), enrolls (writer), records subject 0's baseline and week 12.
async fn seed(channel: &Channel, t: &Tokens, cohort: &Cohort) {
    let (mut register, enroll): (Vec<_>, Vec<_>) = cohort
        .enrollment()
        .events
        .into_iter()
        .partition(|e| matches!(e.body, Some(pb::event::Body::StudyRegistered(_))));
    for event in &mut register {
        if let Some(pb::event::Body::StudyRegistered(study)) = &mut event.body {
            study.blinded = true;
        }
    }
    let mut ingest = IngestClient::new(channel.clone());
    for (token, events) in [(&t.admin, register), (&t.writer, enroll)] {
        ingest
            .append(with_token(
                pb::SubmitRequest {
                    batch_id: "seed".into(),
                    events,
                },
                token,
            ))
            .await
            .expect("seed batch accepted");
    }
    for visit in ["baseline", "week12"] {
        ingest
            .append(with_token(cohort.visit_batch(0, visit), &t.writer))
            .await
            .expect("visit accepted");
    }
}

async fn subject(channel: &Channel, token: &str) -> pb::SubjectOutcomes {
    OutcomesClient::new(channel.clone())
        .get_subject(with_token(
            pb::GetSubjectRequest {
                study_id: STUDY.into(),
                subject_id: subject_id(0),
                protocol_version: None,
            },
            token,
        ))
        .await
        .expect("subject readable")
        .into_inner()
}

/// Whether GetCohort's endpoint tables come per arm; the pooled tables are always there.
async fn cohort_shows_arms(channel: &Channel, token: &str) -> bool {
    let cohort = OutcomesClient::new(channel.clone())
        .get_cohort(with_token(
            pb::GetCohortRequest {
                study_id: STUDY.into(),
                visit_id: String::new(),
                protocol_version: None,
            },
            token,
        ))
        .await
        .expect("cohort readable")
        .into_inner();
    assert!(!cohort.endpoints.is_empty(), "pooled tables stay visible");
    let per_arm = cohort.endpoints.iter().all(|table| !table.arms.is_empty());
    assert_eq!(
        per_arm,
        cohort.endpoints.iter().any(|table| !table.arms.is_empty()),
        "all tables per arm or none: {cohort:?}"
    );
    assert_eq!(
        per_arm,
        cohort.visits.iter().all(|visit| !visit.arms.is_empty()),
        "visit statistics per arm exactly when endpoint tables are: {cohort:?}"
    );
    per_arm
}

/// Whether the answer carries what depends on the arm; the outcome values are always there.
fn shows_arm_dependent(subject: &pb::SubjectOutcomes) -> bool {
    assert!(!subject.visits.is_empty(), "outcomes stay visible");
    assert!(
        subject.visits.iter().all(|v| v.doi.is_some()),
        "{subject:?}"
    );
    let schedules = subject.visits.iter().all(|v| v.schedule.is_some());
    let endpoints = !subject.endpoints.is_empty();
    assert_eq!(schedules, endpoints, "{subject:?}");
    schedules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blinded_reader_sees_no_arm_until_an_admin_unblinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, channel, t) = start(dir.path()).await;
    let cohort = Cohort::new(2017, 2).with_stir_protocol();
    seed(&channel, &t, &cohort).await;

    // (case, token, sees what depends on the arm) while blinded.
    let blinded = [("reader", &t.reader, false), ("auditor", &t.auditor, true)];
    for (case, token, sees) in blinded {
        let answer = subject(&channel, token).await;
        assert_eq!(shows_arm_dependent(&answer), sees, "{case}");
        assert_eq!(cohort_shows_arms(&channel, token).await, sees, "{case}");
        if !sees {
            assert!(
                !format!("{answer:?}").contains(STIR_ARM),
                "{case}: {answer:?}"
            );
        }
    }

    // A reader's Watch while blinded: outcomes without their schedule; the auditor's with it.
    let mut watches = Vec::new();
    for token in [&t.reader, &t.auditor] {
        let stream = OutcomesClient::new(channel.clone())
            .watch(with_token(
                pb::WatchRequest {
                    study_id: STUDY.into(),
                },
                token,
            ))
            .await
            .expect("watch opens")
            .into_inner();
        watches.push(stream);
    }
    // The writer's own answer is blinded too (writers are not an unblinded role).
    let answer = IngestClient::new(channel.clone())
        .append(with_token(cohort.visit_batch(1, "baseline"), &t.writer))
        .await
        .expect("baseline")
        .into_inner();
    // The endpoints an answer carries depend on the arm (its visits and baseline) too.
    assert!(
        answer
            .outcomes
            .iter()
            .all(|o| o.schedule.is_none() && o.endpoints.is_empty()),
        "{answer:?}"
    );
    IngestClient::new(channel.clone())
        .append(with_token(cohort.visit_batch(1, "week4"), &t.writer))
        .await
        .expect("week 4");
    for (watch, sees) in watches.iter_mut().zip([false, true]) {
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
            .await
            .expect("an outcome in time")
            .expect("stream open")
            .expect("an outcome");
        assert_eq!(outcome.schedule.is_some(), sees, "{outcome:?}");
        assert_eq!(!outcome.endpoints.is_empty(), sees, "{outcome:?}");
    }

    // Unblinding: (case, token, request, expected code or accepted), in order.
    let lock = study_event(
        "lock-1",
        pb::event::Body::StudyLocked(pb::StudyLocked {
            reason: "database lock before unblinding".into(),
        }),
    );
    let steps: Vec<(&str, &String, pb::SubmitRequest, Option<Code>)> = vec![
        (
            "reader unblinds",
            &t.reader,
            unblind("u1", "curious"),
            Some(Code::PermissionDenied),
        ),
        (
            "writer unblinds",
            &t.writer,
            unblind("u1", "curious"),
            Some(Code::PermissionDenied),
        ),
        (
            "auditor unblinds",
            &t.auditor,
            unblind("u1", "audit"),
            Some(Code::PermissionDenied),
        ),
        (
            "admin without a reason",
            &t.admin,
            unblind("u1", ""),
            Some(Code::InvalidArgument),
        ),
        ("admin locks the data first", &t.admin, lock, None),
        (
            "admin unblinds during the lock",
            &t.admin,
            unblind("u1", "final analysis"),
            None,
        ),
        (
            "admin unblinds again",
            &t.admin,
            unblind("u2", "again"),
            Some(Code::FailedPrecondition),
        ),
    ];
    let mut ingest = IngestClient::new(channel.clone());
    for (case, token, request, expected) in steps {
        let result = ingest.append(with_token(request, token)).await;
        match (expected, result) {
            (None, Ok(_)) => {}
            (None, Err(status)) => panic!("{case}: {status:?}"),
            (Some(code), Ok(response)) => panic!("{case}: expected {code:?}, got {response:?}"),
            (Some(code), Err(status)) => assert_eq!(status.code(), code, "{case}: {status:?}"),
        }
    }
    assert!(
        shows_arm_dependent(&subject(&channel, &t.reader).await),
        "unblinded reader"
    );
    assert!(
        cohort_shows_arms(&channel, &t.reader).await,
        "unblinded reader's cohort"
    );
    server.stop().await.expect("stops");
}
