//! Data lock end to end: a real server on 127.0.0.1:0 with a principals file. Only an admin locks
//! and unlocks, always with a reason; while a study is locked every write to it is refused with
//! FAILED_PRECONDITION naming the lock (who, sequence, reason) and nothing of the batch is stored;
//! the check sees earlier events of the same batch; concurrent writers never slip a write in after
//! the lock; a retry of an event stored before the lock keeps its original ack (idempotency wins:
//! nothing new is written, so the lock is not broken); the lock survives a restart and a replay as
//! of any sequence shows the lock state of that point.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use myolog_audit::progress::Progress;
use myolog_audit::replay::{self, AsOf};
use myolog_cli::audit::open_log;
use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_server::app::AppConfig;
use myolog_server::auth::Auth;
use myolog_server::server::{self, Running};
use myolog_synth::{Cohort, STUDY};
use myolog_tests::issue_token;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

const ADMIN: &str = "dm-admin";
/// The admin as the log records it (principal and role).
const ADMIN_RECORDED: &str = "dm-admin (admin)";
const REASON: &str = "database lock for the interim analysis";

struct Tokens {
    writer: String,
    reader: String,
    auditor: String,
    admin: String,
}

fn tokens(dir: &Path) -> (std::path::PathBuf, Tokens) {
    let file = dir.join("principals.toml");
    let tokens = Tokens {
        writer: issue_token(&file, "edc-a", "writer", &[STUDY]),
        reader: issue_token(&file, "stat-a", "reader", &[STUDY]),
        auditor: issue_token(&file, "inspector", "auditor", &[]),
        admin: issue_token(&file, ADMIN, "admin", &[]),
    };
    (file, tokens)
}

async fn start(dir: &Path, principals: &Path) -> (Running, Channel) {
    let auth = Auth::from_file(principals).expect("principals file loads");
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
    (server, channel)
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii header"),
    );
    request
}

async fn head(channel: &Channel, auditor: &str) -> u64 {
    AuditClient::new(channel.clone())
        .verify(with_token(pb::VerifyRequest {}, auditor))
        .await
        .expect("auditor verifies")
        .into_inner()
        .head_sequence
}

fn study_event(id: &str, body: pb::event::Body) -> pb::Event {
    pb::Event {
        source_audit: None,
        event_id: id.into(),
        study_id: STUDY.into(),
        subject_id: String::new(),
        visit_id: String::new(),
        clinical_date: "2024-06-01".into(),
        body: Some(body),
    }
}

fn lock(id: &str, reason: &str) -> pb::Event {
    study_event(
        id,
        pb::event::Body::StudyLocked(pb::StudyLocked {
            reason: reason.into(),
        }),
    )
}

fn unlock(id: &str, reason: &str) -> pb::Event {
    study_event(
        id,
        pb::event::Body::StudyUnlocked(pb::StudyUnlocked {
            reason: reason.into(),
        }),
    )
}

fn batch(events: Vec<pb::Event>) -> pb::SubmitRequest {
    pb::SubmitRequest {
        batch_id: "b".into(),
        events,
    }
}

/// Appends an accepted batch; the sequence of its first event.
async fn append_seq(channel: &Channel, request: pb::SubmitRequest, token: &str) -> u64 {
    IngestClient::new(channel.clone())
        .append(with_token(request, token))
        .await
        .expect("accepted")
        .into_inner()
        .acks[0]
        .sequence
}

/// Registers the study (admin), enrolls the cohort and records every baseline (writer).
async fn seed(channel: &Channel, tokens: &Tokens, cohort: &Cohort) {
    let (register, enroll): (Vec<_>, Vec<_>) = cohort
        .enrollment()
        .events
        .into_iter()
        .partition(|e| matches!(e.body, Some(pb::event::Body::StudyRegistered(_))));
    let mut ingest = IngestClient::new(channel.clone());
    for (token, events) in [(&tokens.admin, register), (&tokens.writer, enroll)] {
        ingest
            .append(with_token(batch(events), token))
            .await
            .expect("seed batch accepted");
    }
    for index in 0..cohort.len() {
        ingest
            .append(with_token(
                cohort.visit_batch(index, "baseline"),
                &tokens.writer,
            ))
            .await
            .expect("baseline accepted");
    }
}

/// What a step expects: accepted, or refused with this code, a field violation at this path and
/// these fragments in the message.
enum Expect {
    Accepted,
    Refused(Code, &'static str, &'static [&'static str]),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_refuses_writes_until_an_admin_unlocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, t) = tokens(dir.path());
    let (server, channel) = start(dir.path(), &file).await;
    let cohort = Cohort::new(7, 3);
    seed(&channel, &t, &cohort).await;
    let week4 = |index| cohort.visit_batch(index, "week4");
    // (case, token, batch, expected) in order: each refusal leaves the head where it was.
    let steps: Vec<(&str, &String, pb::SubmitRequest, Expect)> = vec![
        (
            "writer locks",
            &t.writer,
            batch(vec![lock("lock-1", REASON)]),
            Expect::Refused(Code::PermissionDenied, "", &["lock"]),
        ),
        (
            "reader locks",
            &t.reader,
            batch(vec![lock("lock-1", REASON)]),
            Expect::Refused(Code::PermissionDenied, "", &[]),
        ),
        (
            "auditor locks",
            &t.auditor,
            batch(vec![lock("lock-1", REASON)]),
            Expect::Refused(Code::PermissionDenied, "", &[]),
        ),
        (
            "admin locks without a reason",
            &t.admin,
            batch(vec![lock("lock-1", "")]),
            Expect::Refused(Code::InvalidArgument, "events[0].study_locked.reason", &[]),
        ),
        (
            "admin unlocks a study that is not locked",
            &t.admin,
            batch(vec![unlock("unlock-0", "nothing")]),
            Expect::Refused(
                Code::FailedPrecondition,
                "events[0].study_id",
                &["not locked"],
            ),
        ),
        (
            "admin locks",
            &t.admin,
            batch(vec![lock("lock-1", REASON)]),
            Expect::Accepted,
        ),
        (
            "writer records a visit during the lock",
            &t.writer,
            week4(0),
            Expect::Refused(
                Code::FailedPrecondition,
                "events[0].study_id",
                &[ADMIN, REASON, "locked by"],
            ),
        ),
        (
            "admin locks again",
            &t.admin,
            batch(vec![lock("lock-2", REASON)]),
            Expect::Refused(
                Code::FailedPrecondition,
                "events[0].study_id",
                &["already locked"],
            ),
        ),
        (
            "writer unlocks",
            &t.writer,
            batch(vec![unlock("unlock-1", "want to write")]),
            Expect::Refused(Code::PermissionDenied, "", &[]),
        ),
        (
            "admin unlocks without a reason",
            &t.admin,
            batch(vec![unlock("unlock-1", "")]),
            Expect::Refused(
                Code::InvalidArgument,
                "events[0].study_unlocked.reason",
                &[],
            ),
        ),
        (
            "admin unlocks",
            &t.admin,
            batch(vec![unlock("unlock-1", "query 17 on S001 week 4")]),
            Expect::Accepted,
        ),
        (
            "writer records a visit after the unlock",
            &t.writer,
            week4(0),
            Expect::Accepted,
        ),
    ];
    let mut ingest = IngestClient::new(channel.clone());
    for (case, token, request, expect) in steps {
        let before = head(&channel, &t.auditor).await;
        let result = ingest.append(with_token(request, token)).await;
        let after = head(&channel, &t.auditor).await;
        match (expect, result) {
            (Expect::Accepted, Ok(_)) => assert!(after > before, "{case}: stored"),
            (Expect::Accepted, Err(status)) => panic!("{case}: refused: {status:?}"),
            (Expect::Refused(code, _, _), Ok(response)) => {
                panic!("{case}: expected {code:?}, accepted: {response:?}")
            }
            (Expect::Refused(code, field, fragments), Err(status)) => {
                assert_eq!(status.code(), code, "{case}: {status:?}");
                assert_eq!(after, before, "{case}: nothing stored");
                if !field.is_empty() {
                    let fields: Vec<String> = status
                        .get_details_bad_request()
                        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                        .unwrap_or_default();
                    assert!(fields.iter().any(|f| f == field), "{case}: {fields:?}");
                }
                for fragment in fragments {
                    assert!(
                        status.message().contains(fragment),
                        "{case}: {fragment:?} not in {:?}",
                        status.message()
                    );
                }
            }
        }
    }
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_sees_earlier_events_of_the_same_batch() {
    // The local principal (no principals file) may send lock and clinical events in one batch.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server::start(
        AppConfig::new(dir.path().join("log")),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("server starts");
    let channel = Channel::from_shared(server.url())
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut ingest = IngestClient::new(channel.clone());
    let cohort = Cohort::new(7, 2);
    ingest.append(cohort.enrollment()).await.expect("enrolment");
    let visit = |index: usize| cohort.visit_batch(index, "baseline").events;
    let with = |mut events: Vec<pb::Event>, more: Vec<pb::Event>| {
        events.extend(more);
        batch(events)
    };
    // (case, batch, refused at this field or accepted)
    let cases: Vec<(&str, pb::SubmitRequest, Option<&str>)> = vec![
        (
            "lock then a visit",
            with(vec![lock("l1", "lock")], visit(0)),
            Some("events[1].study_id"),
        ),
        (
            "lock twice",
            batch(vec![lock("l1", "lock"), lock("l2", "again")]),
            Some("events[1].study_id"),
        ),
        (
            "unlock before any lock",
            batch(vec![unlock("u1", "unlock"), lock("l1", "lock")]),
            Some("events[0].study_id"),
        ),
        (
            "a visit, lock, unlock, a visit",
            with(
                with(visit(0), vec![lock("l1", "lock"), unlock("u1", "reopen")]).events,
                visit(1),
            ),
            None,
        ),
    ];
    for (case, request, refused_at) in cases {
        let before = head(&channel, "unused").await;
        let result = ingest.append(request).await;
        let after = head(&channel, "unused").await;
        match (refused_at, result) {
            (None, Ok(_)) => assert!(after > before, "{case}"),
            (None, Err(status)) => panic!("{case}: {status:?}"),
            (Some(field), Ok(response)) => panic!("{case}: accepted {response:?}, not {field}"),
            (Some(field), Err(status)) => {
                assert_eq!(
                    status.code(),
                    Code::FailedPrecondition,
                    "{case}: {status:?}"
                );
                let fields: Vec<String> = status
                    .get_details_bad_request()
                    .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                    .unwrap_or_default();
                assert!(fields.iter().any(|f| f == field), "{case}: {fields:?}");
                assert_eq!(after, before, "{case}: nothing stored");
            }
        }
    }
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_an_event_acked_before_the_lock_keeps_its_ack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, t) = tokens(dir.path());
    let (server, channel) = start(dir.path(), &file).await;
    let cohort = Cohort::new(7, 2);
    seed(&channel, &t, &cohort).await;
    let mut ingest = IngestClient::new(channel.clone());
    let original = ingest
        .append(with_token(cohort.visit_batch(0, "week4"), &t.writer))
        .await
        .expect("before the lock")
        .into_inner();
    ingest
        .append(with_token(batch(vec![lock("lock-1", "lock")]), &t.admin))
        .await
        .expect("admin locks");
    let before = head(&channel, &t.auditor).await;
    // Idempotency wins: the retry writes nothing, so answering it breaks no lock.
    let retry = ingest
        .append(with_token(cohort.visit_batch(0, "week4"), &t.writer))
        .await
        .expect("a retry is answered with its original acks")
        .into_inner();
    assert_eq!(retry.acks.len(), original.acks.len());
    for (again, first) in retry.acks.iter().zip(&original.acks) {
        assert!(again.duplicate, "{again:?}");
        assert_eq!((again.sequence, &again.hash), (first.sequence, &first.hash));
    }
    // A retry with one new event is a write: refused as a whole.
    let mut mixed = cohort.visit_batch(0, "week4");
    mixed.events.extend(cohort.visit_batch(1, "week4").events);
    let status = ingest
        .append(with_token(mixed, &t.writer))
        .await
        .expect_err("a new event during the lock");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(head(&channel, &t.auditor).await, before, "nothing stored");
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_store_after_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, t) = tokens(dir.path());
    let (server, channel) = start(dir.path(), &file).await;
    let cohort = Arc::new(Cohort::new(11, 5));
    seed(&channel, &t, &cohort).await;
    let mut writers = Vec::new();
    for index in 0..cohort.len() {
        for visit in ["week4", "week8", "week12", "week16-ext"] {
            let (channel, cohort, token) = (channel.clone(), Arc::clone(&cohort), t.writer.clone());
            writers.push(tokio::spawn(async move {
                IngestClient::new(channel)
                    .append(with_token(cohort.visit_batch(index, visit), &token))
                    .await
            }));
        }
    }
    let locked = IngestClient::new(channel.clone())
        .append(with_token(batch(vec![lock("lock-1", "lock")]), &t.admin))
        .await
        .expect("admin locks")
        .into_inner();
    let lock_seq = locked.acks[0].sequence;
    for writer in writers {
        match writer.await.expect("task") {
            Ok(response) => {
                for ack in response.into_inner().acks {
                    assert!(ack.sequence < lock_seq, "{ack:?} after lock {lock_seq}");
                }
            }
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(
        head(&channel, &t.auditor).await,
        lock_seq,
        "nothing after the lock"
    );
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_survives_a_restart_and_replay_shows_it_as_of_any_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, t) = tokens(dir.path());
    let (server, channel) = start(dir.path(), &file).await;
    let cohort = Cohort::new(7, 2);
    seed(&channel, &t, &cohort).await;
    let lock_seq = append_seq(
        &channel,
        batch(vec![lock("lock-1", "final lock")]),
        &t.admin,
    )
    .await;
    server.stop().await.expect("stops");

    let (server, channel) = start(dir.path(), &file).await;
    let status = IngestClient::new(channel.clone())
        .append(with_token(cohort.visit_batch(0, "week4"), &t.writer))
        .await
        .expect_err("still locked after a restart");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains(ADMIN), "{status:?}");
    let unlock_seq = append_seq(
        &channel,
        batch(vec![unlock("unlock-1", "reopened")]),
        &t.admin,
    )
    .await;
    server.stop().await.expect("stops");

    let log = open_log(&dir.path().join("log")).expect("log opens");
    // (replay as of, locked by and reason, or unlocked)
    let cases = [
        (lock_seq - 1, None),
        (lock_seq, Some((ADMIN_RECORDED, "final lock"))),
        (unlock_seq - 1, Some((ADMIN_RECORDED, "final lock"))),
        (unlock_seq, None),
    ];
    for (seq, expected) in cases {
        let replayed =
            replay::project(&log, AsOf::Sequence(seq), &mut Progress::hidden()).expect("replay");
        let lock = replayed
            .projection
            .study(&myolog_domain::event::StudyId::new(STUDY).expect("study id"))
            .expect("registered")
            .lock
            .as_ref()
            .map(|lock| (lock.locked_by.as_str(), lock.reason.as_str(), lock.seq));
        assert_eq!(
            lock,
            expected.map(|(by, reason)| (by, reason, lock_seq)),
            "as of {seq}"
        );
    }
}
