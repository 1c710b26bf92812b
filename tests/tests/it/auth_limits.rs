//! Limits end to end against a real server with small limits: too many events in a batch
//! (INVALID_ARGUMENT), an oversized message, too many concurrent streams and too many calls per
//! second for one principal (RESOURCE_EXHAUSTED); every answer names the limit and its value, and
//! nothing is stored.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use myolog_cli::token::{IssueArgs, issue};
use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_proto::v1::outcomes_client::OutcomesClient;
use myolog_server::app::AppConfig;
use myolog_server::auth::limits::Limits;
use myolog_server::auth::{Auth, now_unix_nanos};
use myolog_server::server;
use myolog_synth::{Cohort, STUDY};
use tonic::transport::Channel;
use tonic::{Code, Request};

const LIMITS: Limits = Limits {
    max_message_bytes: 64 * 1024,
    max_events_per_batch: 5,
    max_streams_per_principal: 2,
    rate_per_principal: 20,
};

fn token(file: &Path, principal: &str, role: &str) -> String {
    issue(
        &IssueArgs {
            principal: principal.into(),
            role: role.into(),
            studies: vec![STUDY.into()],
            sites: Vec::new(),
            file: file.to_path_buf(),
            expires: None,
        },
        now_unix_nanos(),
    )
    .expect("issued")
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

/// The one check: a refusal with `code` whose message names every part of `names`.
fn assert_limit<T: std::fmt::Debug>(
    case: &str,
    result: Result<T, tonic::Status>,
    code: Code,
    names: &[&str],
) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {status:?}");
    for name in names {
        assert!(
            status.message().contains(name),
            "{case}: {:?} lacks {name}",
            status.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_refused_by_name_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("principals.toml");
    let admin = token(&file, "dm-admin", "admin");
    let writer = token(&file, "edc-a", "writer");
    let reader = token(&file, "stat-a", "reader");
    let auditor = token(&file, "inspector", "auditor");
    let auth = Auth::from_file(&file).expect("principals");
    auth.use_limits(LIMITS);
    let running = server::start_secured(
        AppConfig::new(dir.path().join("log")),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(Arc::clone(&auth)),
    )
    .await
    .expect("server starts");
    let channel = Channel::from_shared(running.url())
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut ingest = IngestClient::new(channel.clone());

    let cohort = Cohort::new(2017, 2);
    let (register, enroll): (Vec<_>, Vec<_>) = cohort
        .enrollment()
        .events
        .into_iter()
        .partition(|e| matches!(e.body, Some(pb::event::Body::StudyRegistered(_))));
    for (token, events) in [(&admin, register), (&writer, enroll)] {
        ingest
            .append(authed(
                pb::SubmitRequest {
                    batch_id: String::new(),
                    events,
                },
                token,
            ))
            .await
            .expect("seed accepted");
    }
    let head = running.app.head_seq();

    // Events per batch: a visit is more than five forms.
    let visit = cohort.visit_batch(0, "baseline");
    assert!(visit.events.len() > LIMITS.max_events_per_batch);
    let result = ingest.append(authed(visit.clone(), &writer)).await;
    assert_limit(
        "too many events (Append)",
        result,
        Code::InvalidArgument,
        &["max_events_per_batch", " 5"],
    );
    let streamed = match ingest
        .submit(authed(tokio_stream::iter(vec![visit]), &writer))
        .await
    {
        Err(status) => Err(status),
        Ok(response) => response.into_inner().message().await,
    };
    assert_limit(
        "too many events (Submit)",
        streamed,
        Code::InvalidArgument,
        &["max_events_per_batch"],
    );

    // Message size: one withdrawal with a reason far over 64 KiB.
    let mut huge = cohort.visit_batch(1, "baseline");
    huge.events.truncate(1);
    huge.events[0].body = Some(pb::event::Body::SubjectWithdrawn(pb::SubjectWithdrawn {
        reason: "x".repeat(100 * 1024),
    }));
    let result = ingest.append(authed(huge, &writer)).await;
    assert_limit(
        "oversized message",
        result,
        Code::ResourceExhausted,
        &["max_message_bytes", "65536"],
    );
    assert_eq!(running.app.head_seq(), head, "nothing stored");

    // Concurrent streams per principal: two open Watch streams, the third call is refused; closing
    // one frees its place.
    let mut outcomes = OutcomesClient::new(channel.clone());
    let watch = || {
        authed(
            pb::WatchRequest {
                study_id: STUDY.into(),
            },
            &reader,
        )
    };
    let first = outcomes.watch(watch()).await.expect("first stream");
    let _second = outcomes.watch(watch()).await.expect("second stream");
    let third = outcomes.watch(watch()).await;
    assert_limit(
        "third stream",
        third,
        Code::ResourceExhausted,
        &["max_streams_per_principal", " 2"],
    );
    drop(first);
    let mut reopened = false;
    for _ in 0..40 {
        if outcomes.watch(watch()).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened, "a closed stream frees its place");

    // Rate per principal: the auditor's 20-call bucket runs dry within a burst of 40 calls.
    let mut audit = AuditClient::new(channel);
    let mut refused = None;
    for _ in 0..40 {
        if let Err(status) = audit.verify(authed(pb::VerifyRequest {}, &auditor)).await {
            refused = Some(status);
            break;
        }
    }
    assert_limit(
        "rate",
        refused.map_or(Ok(()), Err),
        Code::ResourceExhausted,
        &["rate_per_principal", "20 per second"],
    );
    assert_eq!(running.app.head_seq(), head, "nothing stored");
    running.stop().await.expect("stops");
}

/// One batch limit: raised above the default, it is the only bound on the way in. A batch of
/// 1,201 events (a registration and 1,200 enrolments) is stored whole under a limit of 1,500, and the
/// next size up from the limit is refused naming the flag, with nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_batch_limit_can_be_raised_and_holds_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = 1_500;
    let auth = Auth::local("local-admin");
    auth.use_limits(Limits {
        max_events_per_batch: limit,
        ..Limits::default()
    });
    let config = AppConfig {
        max_events_per_batch: limit,
        ..AppConfig::new(dir.path().join("log"))
    };
    let running = server::start_secured(config, SocketAddr::from(([127, 0, 0, 1], 0)), Some(auth))
        .await
        .expect("server starts");
    let channel = Channel::from_shared(running.url())
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut ingest = IngestClient::new(channel);
    let big = Cohort::new(2017, 1_200).enrollment();
    assert_eq!(big.events.len(), 1_201);
    let acks = ingest
        .append(big)
        .await
        .expect("a batch under the raised limit is accepted")
        .into_inner()
        .acks;
    assert_eq!(acks.len(), 1_201);
    let head = running.app.head_seq();
    let too_big = Cohort::new(2018, limit).enrollment();
    assert_eq!(too_big.events.len(), limit + 1);
    assert_limit(
        "one event over the raised limit",
        ingest.append(too_big).await,
        Code::InvalidArgument,
        &["max_events_per_batch", "--max-events-per-batch", "1500"],
    );
    assert_eq!(running.app.head_seq(), head, "nothing stored");
    running.stop().await.expect("server stops");
}
