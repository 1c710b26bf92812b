//! End-to-end access control: a real server on 127.0.0.1:0 with a principals file, real tonic clients
//! sending `authorization: Bearer` metadata. Unauthenticated and unauthorised calls are refused with
//! the right code and store nothing (the log head is unchanged); readers see only their studies;
//! every RPC x role answers as the permission table says; recorded-by is the caller (in the log and
//! the audit-trail export); reloading the file takes effect for new calls without dropping open
//! streams.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use myolog_audit::export;
use myolog_audit::progress::Progress;
use myolog_audit::replay::{AsOf, Format};
use myolog_cli::audit::open_log;
use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_proto::v1::outcomes_client::OutcomesClient;
use myolog_server::app::AppConfig;
use myolog_server::auth::permissions::{Grant, RPC_PERMISSIONS, Role};
use myolog_server::auth::{Auth, tokens};
use myolog_server::server::{self, Running};
use myolog_synth::{self as synth, Cohort, STUDY};
use myolog_tests::{issue_token, issue_token_for_sites};
use tonic::transport::Channel;
use tonic::{Code, Request};

const OTHER_STUDY: &str = "OTHER-STUDY";

/// One server with a principals file and a token per principal.
struct Fixture {
    dir: tempfile::TempDir,
    file: PathBuf,
    auth: Arc<Auth>,
    server: Running,
    channel: Channel,
    /// Writer for STUDY, writer for OTHER_STUDY, reader of STUDY, reader of OTHER_STUDY, auditor,
    /// admin.
    writer: String,
    other_writer: String,
    reader: String,
    other_reader: String,
    auditor: String,
    admin: String,
    /// Integration (EDC bridge) of STUDY.
    integration: String,
    expired: String,
    revoked: String,
}

/// A hand-written entry (expired or revoked tokens cannot be issued).
fn append_entry(file: &Path, principal: &str, extra: &str) -> String {
    let token = tokens::generate().expect("random");
    let entry = format!(
        "\n[[token]]\nprincipal = \"{principal}\"\nrole = \"writer\"\nstudies = [\"{STUDY}\"]\n\
         sha256 = \"{}\"\n{extra}\n",
        tokens::hex(&tokens::hash(&token))
    );
    let mut text = std::fs::read_to_string(file).expect("read principals");
    text.push_str(&entry);
    std::fs::write(file, text).expect("write principals");
    token
}

impl Fixture {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("principals.toml");
        let writer = issue_token(&file, "edc-a", "writer", &[STUDY]);
        let other_writer = issue_token(&file, "edc-b", "writer", &[OTHER_STUDY]);
        let reader = issue_token(&file, "stat-a", "reader", &[STUDY]);
        let other_reader = issue_token(&file, "stat-b", "reader", &[OTHER_STUDY]);
        let auditor = issue_token(&file, "inspector", "auditor", &[]);
        let admin = issue_token(&file, "dm-admin", "admin", &[]);
        let integration = issue_token(&file, "redcap-a", "integration", &[STUDY]);
        let expired = append_entry(&file, "edc-old", "expires = \"2020-01-01T00:00:00Z\"");
        let revoked = append_entry(&file, "edc-lost", "revoked = true");
        let auth = Auth::from_file(&file).expect("principals file loads");
        let server = server::start_secured(
            AppConfig::new(dir.path().join("log")),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Some(Arc::clone(&auth)),
        )
        .await
        .expect("server starts");
        let channel = Channel::from_shared(server.url())
            .expect("url")
            .connect()
            .await
            .expect("connects");
        Self {
            dir,
            file,
            auth,
            server,
            channel,
            writer,
            other_writer,
            reader,
            other_reader,
            auditor,
            admin,
            integration,
            expired,
            revoked,
        }
    }

    fn ingest(&self) -> IngestClient<Channel> {
        IngestClient::new(self.channel.clone())
    }

    fn outcomes(&self) -> OutcomesClient<Channel> {
        OutcomesClient::new(self.channel.clone())
    }

    fn audit(&self) -> AuditClient<Channel> {
        AuditClient::new(self.channel.clone())
    }

    /// The log head, read as the auditor.
    async fn head(&self) -> u64 {
        self.audit()
            .verify(with_header(
                pb::VerifyRequest {},
                Some(&bearer(&self.auditor)),
            ))
            .await
            .expect("auditor verifies")
            .into_inner()
            .head_sequence
    }

    /// Registers STUDY (admin) and enrolls two subjects with their baseline (writer).
    async fn seed(&self, cohort: &Cohort) {
        let enrollment = cohort.enrollment();
        let (register, enroll): (Vec<_>, Vec<_>) = enrollment
            .events
            .into_iter()
            .partition(|e| matches!(e.body, Some(pb::event::Body::StudyRegistered(_))));
        let batches = [
            (&self.admin, "register", register),
            (&self.writer, "enroll", enroll),
        ];
        for (token, batch_id, events) in batches {
            let response = self
                .ingest()
                .append(with_token(
                    pb::SubmitRequest {
                        batch_id: batch_id.into(),
                        events,
                    },
                    token,
                ))
                .await
                .expect("seed batch accepted")
                .into_inner();
            assert!(response.rejection.is_none(), "{response:?}");
        }
        let baseline = cohort.visit_batch(0, "baseline");
        self.ingest()
            .append(with_token(baseline, &self.writer))
            .await
            .expect("baseline accepted");
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn with_header<T>(message: T, header: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(header) = header {
        request
            .metadata_mut()
            .insert("authorization", header.parse().expect("ascii header"));
    }
    request
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    with_header(message, Some(&bearer(token)))
}

/// The one check: a call's outcome has this code, and the log head did not move.
async fn assert_refused<R: std::fmt::Debug>(
    fixture: &Fixture,
    case: &str,
    result: Result<R, tonic::Status>,
    expected: Code,
    head_before: u64,
) {
    match result {
        Ok(response) => panic!("{case}: expected {expected:?}, got {response:?}"),
        Err(status) => assert_eq!(status.code(), expected, "{case}: {status:?}"),
    }
    assert_eq!(fixture.head().await, head_before, "{case}: nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_calls_are_refused_and_store_nothing() {
    let fixture = Fixture::start().await;
    let cohort = Cohort::new(2017, 2);
    fixture.seed(&cohort).await;
    let head = fixture.head().await;
    let unknown = tokens::generate().expect("random");
    let expired = bearer(&fixture.expired);
    let revoked = bearer(&fixture.revoked);
    let unknown = bearer(&unknown);
    let truncated = bearer(&fixture.writer[..fixture.writer.len() - 1]);
    let basic = fixture.writer.replace("myo_", "Basic myo_");
    // (case, authorization header)
    let cases: [(&str, Option<&str>); 7] = [
        ("no token", None),
        ("not a bearer header", Some(&basic)),
        ("malformed token", Some("Bearer hello")),
        ("truncated token", Some(&truncated)),
        ("unknown token", Some(&unknown)),
        ("expired token", Some(&expired)),
        ("revoked token", Some(&revoked)),
    ];
    for (case, header) in cases {
        let batch = cohort.visit_batch(1, "baseline");
        let result = fixture.ingest().append(with_header(batch, header)).await;
        assert_refused(&fixture, case, result, Code::Unauthenticated, head).await;
        let read = fixture
            .outcomes()
            .get_cohort(with_header(
                pb::GetCohortRequest {
                    study_id: STUDY.into(),
                    visit_id: String::new(),
                    protocol_version: None,
                },
                header,
            ))
            .await;
        assert_eq!(
            read.expect_err(case).code(),
            Code::Unauthenticated,
            "{case}"
        );
    }
    fixture.server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_outside_the_callers_scope_are_denied_and_store_nothing() {
    let fixture = Fixture::start().await;
    let cohort = Cohort::new(2017, 2);
    fixture.seed(&cohort).await;
    let head = fixture.head().await;
    let in_scope = cohort.visit_batch(1, "baseline");
    let mut other_study = in_scope.clone();
    for event in &mut other_study.events {
        event.study_id = OTHER_STUDY.into();
    }
    let mut mixed = in_scope.clone();
    mixed.events[0].study_id = OTHER_STUDY.into();
    let register = pb::SubmitRequest {
        batch_id: "register-again".into(),
        events: cohort
            .enrollment()
            .events
            .into_iter()
            .filter(|e| matches!(e.body, Some(pb::event::Body::StudyRegistered(_))))
            .collect(),
    };
    // (case, token, batch)
    let cases = [
        ("writer for A writing to B", &fixture.writer, other_study),
        ("writer with one event of B", &fixture.writer, mixed),
        (
            "writer for B writing to A",
            &fixture.other_writer,
            in_scope.clone(),
        ),
        ("writer registering a study", &fixture.writer, register),
        ("reader writing", &fixture.reader, in_scope.clone()),
        ("auditor writing", &fixture.auditor, in_scope.clone()),
        (
            "admin entering clinical data",
            &fixture.admin,
            in_scope.clone(),
        ),
    ];
    for (case, token, batch) in cases {
        let unary = fixture
            .ingest()
            .append(with_token(batch.clone(), token))
            .await;
        assert_refused(&fixture, case, unary, Code::PermissionDenied, head).await;
        // The same through the Submit stream: refused at the call or as the stream's first answer.
        let streamed = match fixture
            .ingest()
            .submit(with_token(tokio_stream::iter(vec![batch]), token))
            .await
        {
            Err(status) => Err(status),
            Ok(response) => response.into_inner().message().await,
        };
        assert_refused(&fixture, case, streamed, Code::PermissionDenied, head).await;
    }
    // The writer's own batch is accepted and recorded as the writer.
    let response = fixture
        .ingest()
        .append(with_token(in_scope, &fixture.writer))
        .await
        .expect("in scope")
        .into_inner();
    assert!(response.rejection.is_none());
    let mut events = fixture
        .audit()
        .read_events(with_token(
            pb::ReadEventsRequest {
                study_id: String::new(),
                from_sequence: 1,
                limit: 0,
            },
            &fixture.auditor,
        ))
        .await
        .expect("auditor reads")
        .into_inner();
    let mut recorded_by = Vec::new();
    while let Some(event) = events.message().await.expect("event") {
        recorded_by.push((event.event_type, event.recorded_by));
    }
    assert!(!recorded_by.is_empty());
    for (event_type, by) in recorded_by {
        let expected = if event_type == "myolog.v1.StudyRegistered" {
            "dm-admin (admin)"
        } else {
            "edc-a (writer)"
        };
        assert_eq!(by, expected, "{event_type}");
    }
    let log_dir = fixture.dir.path().join("log");
    fixture.server.stop().await.expect("stops");
    // The audit-trail export names the same principal and role for every event.
    let log = open_log(&log_dir).expect("log opens");
    let mut trail = Vec::new();
    export::write_audit_trail(
        &log,
        AsOf::Head,
        Format::Jsonl,
        &mut trail,
        &mut Progress::hidden(),
    )
    .expect("audit trail");
    let rows: Vec<serde_json::Value> = String::from_utf8(trail)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON row"))
        .collect();
    assert_eq!(rows.len() as u64, log.head().seq);
    for row in rows {
        let by = row["recorded_by"].as_str().expect("recorded_by");
        assert!(by == "dm-admin (admin)" || by == "edc-a (writer)", "{row}");
    }
}

/// The SubjectEnrolled of `cohort`'s subject `index`, enrolled at `site` ("" = no site).
fn enrolment_at(cohort: &Cohort, index: usize, site: &str) -> pb::SubmitRequest {
    let subject = synth::subject_id(index);
    let mut events: Vec<pb::Event> = cohort
        .enrollment()
        .events
        .into_iter()
        .filter(|e| e.subject_id == subject)
        .collect();
    assert_eq!(events.len(), 1, "one enrolment of {subject}");
    let Some(pb::event::Body::SubjectEnrolled(enrolled)) = &mut events[0].body else {
        panic!("{subject}: not a SubjectEnrolled");
    };
    enrolled.site_id = site.into();
    pb::SubmitRequest {
        batch_id: format!("enrol-{subject}-{site}"),
        events,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_scoped_writers_write_only_for_their_sites() {
    let fixture = Fixture::start().await;
    let site_writer =
        issue_token_for_sites(&fixture.file, "edc-site1", "writer", &[STUDY], &["SITE-01"]);
    fixture.auth.reload().expect("reloads");
    let cohort = Cohort::new(2017, 4);
    let register = pb::SubmitRequest {
        batch_id: "register".into(),
        events: cohort
            .enrollment()
            .events
            .into_iter()
            .filter(|e| matches!(e.body, Some(pb::event::Body::StudyRegistered(_))))
            .collect(),
    };
    fixture
        .ingest()
        .append(with_token(register, &fixture.admin))
        .await
        .expect("admin registers");
    // Subject 3 is enrolled at SITE-01 and assessed in one batch: the batch's own enrolment counts.
    let mut enrol_and_assess = enrolment_at(&cohort, 3, "SITE-01");
    enrol_and_assess
        .events
        .extend(cohort.visit_batch(3, "baseline").events);
    // A batch with one event in scope and one outside is refused whole.
    let mut mixed = cohort.visit_batch(0, "week4");
    mixed.events.extend(cohort.visit_batch(1, "week4").events);
    // (case, token, batch, expected: None = accepted, Some(code) = refused and nothing stored), in order.
    let cases: Vec<(&str, &String, pb::SubmitRequest, Option<Code>)> = vec![
        (
            "site writer enrols at its site",
            &site_writer,
            enrolment_at(&cohort, 0, "SITE-01"),
            None,
        ),
        (
            "site writer enrols at another site",
            &site_writer,
            enrolment_at(&cohort, 1, "SITE-02"),
            Some(Code::PermissionDenied),
        ),
        (
            "site writer enrols without a site",
            &site_writer,
            enrolment_at(&cohort, 1, ""),
            Some(Code::PermissionDenied),
        ),
        (
            "study-wide writer enrols at another site",
            &fixture.writer,
            enrolment_at(&cohort, 1, "SITE-02"),
            None,
        ),
        (
            "study-wide writer enrols without a site",
            &fixture.writer,
            enrolment_at(&cohort, 2, ""),
            None,
        ),
        (
            "site writer records for a subject at its site",
            &site_writer,
            cohort.visit_batch(0, "baseline"),
            None,
        ),
        (
            "site writer records for a subject at another site",
            &site_writer,
            cohort.visit_batch(1, "baseline"),
            Some(Code::PermissionDenied),
        ),
        (
            "site writer records for a subject without a site",
            &site_writer,
            cohort.visit_batch(2, "baseline"),
            Some(Code::PermissionDenied),
        ),
        (
            "site writer enrols and records in one batch",
            &site_writer,
            enrol_and_assess,
            None,
        ),
        (
            "study-wide writer records for a subject at another site",
            &fixture.writer,
            cohort.visit_batch(1, "baseline"),
            None,
        ),
        (
            "study-wide writer records for a subject at the writer's site",
            &fixture.writer,
            cohort.visit_batch(0, "week4"),
            None,
        ),
        (
            "site writer with one event at another site",
            &site_writer,
            mixed,
            Some(Code::PermissionDenied),
        ),
    ];
    for (case, token, batch, expected) in cases {
        let head = fixture.head().await;
        if expected.is_some() {
            // Through the Submit stream too: refused as the stream's first answer, nothing stored.
            let streamed = match fixture
                .ingest()
                .submit(with_token(tokio_stream::iter(vec![batch.clone()]), token))
                .await
            {
                Err(status) => Err(status),
                Ok(response) => response.into_inner().message().await,
            };
            assert_refused(&fixture, case, streamed, Code::PermissionDenied, head).await;
        }
        let result = fixture.ingest().append(with_token(batch, token)).await;
        match expected {
            None => {
                let response = result
                    .unwrap_or_else(|e| panic!("{case}: {e:?}"))
                    .into_inner();
                assert!(response.rejection.is_none(), "{case}: {response:?}");
                assert!(fixture.head().await > head, "{case}: stored");
            }
            Some(code) => {
                if let Err(status) = &result {
                    // The refusal names the site (or its absence) and the writer's sites.
                    assert!(status.message().contains("SITE-01"), "{case}: {status:?}");
                    assert!(
                        status.message().contains("SITE-02")
                            || status.message().contains("no site"),
                        "{case}: {status:?}"
                    );
                }
                assert_refused(&fixture, case, result, code, head).await;
            }
        }
    }
    fixture.server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_only_their_studies() {
    let fixture = Fixture::start().await;
    let cohort = Cohort::new(2017, 2);
    fixture.seed(&cohort).await;
    let subject = || pb::GetSubjectRequest {
        study_id: STUDY.into(),
        subject_id: synth::subject_id(0),
        protocol_version: None,
    };
    let cohort_request = |study: &str| pb::GetCohortRequest {
        study_id: study.into(),
        visit_id: String::new(),
        protocol_version: None,
    };
    let watch = |study: &str| pb::WatchRequest {
        study_id: study.into(),
    };
    // Allowed: own study, and the auditor anything.
    for token in [&fixture.reader, &fixture.auditor] {
        let got = fixture
            .outcomes()
            .get_subject(with_token(subject(), token))
            .await
            .expect("own study readable")
            .into_inner();
        assert_eq!(got.subject_id, synth::subject_id(0));
        fixture
            .outcomes()
            .get_cohort(with_token(cohort_request(STUDY), token))
            .await
            .expect("own cohort readable");
    }
    // Denied, with the same code whether or not the study exists (nothing leaks).
    // (case, result code)
    let mut cases: Vec<(&str, Code)> = Vec::new();
    let other = &fixture.other_reader;
    let code = |r: Result<tonic::Response<_>, tonic::Status>| match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    };
    cases.push((
        "GetSubject of another study",
        code(
            fixture
                .outcomes()
                .get_subject(with_token(subject(), other))
                .await
                .map(|_| tonic::Response::new(())),
        ),
    ));
    for study in [STUDY, "NO-SUCH-STUDY"] {
        cases.push((
            "GetCohort of another study",
            code(
                fixture
                    .outcomes()
                    .get_cohort(with_token(cohort_request(study), other))
                    .await
                    .map(|_| tonic::Response::new(())),
            ),
        ));
        cases.push((
            "Watch of another study",
            code(
                fixture
                    .outcomes()
                    .watch(with_token(watch(study), other))
                    .await
                    .map(|_| tonic::Response::new(())),
            ),
        ));
    }
    cases.push((
        "Watch of every study",
        code(
            fixture
                .outcomes()
                .watch(with_token(watch(""), &fixture.reader))
                .await
                .map(|_| tonic::Response::new(())),
        ),
    ));
    cases.push((
        "ReadEvents (the whole log) as a reader",
        code(
            fixture
                .audit()
                .read_events(with_token(
                    pb::ReadEventsRequest {
                        study_id: String::new(),
                        from_sequence: 1,
                        limit: 0,
                    },
                    &fixture.reader,
                ))
                .await
                .map(|_| tonic::Response::new(())),
        ),
    ));
    for (case, got) in cases {
        assert_eq!(got, Code::PermissionDenied, "{case}");
    }
    fixture.server.stop().await.expect("stops");
}

/// Calls `path` with a minimal request naming STUDY (tag 1 is `study_id` in every Outcomes request;
/// the other requests are sent empty) and returns the code of the call's answer (OK when the
/// response headers arrived without an error).
async fn call_rpc(channel: &Channel, path: &'static str, token: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Err(error) = grpc.ready().await {
        panic!("channel ready: {error}");
    }
    let message = if path.starts_with("/myolog.v1.Outcomes/") {
        pb::WatchRequest {
            study_id: STUDY.into(),
        }
    } else {
        pb::WatchRequest::default()
    };
    let header = token.map(bearer);
    let path_and_query = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    // A study-scoped read of the log names the study (a scoped caller may read no other).
    if path == "/myolog.v1.Audit/ReadEvents" {
        let request = with_header(
            pb::ReadEventsRequest {
                from_sequence: 1,
                limit: 0,
                study_id: STUDY.into(),
            },
            header.as_deref(),
        );
        let codec = tonic_prost::ProstCodec::<pb::ReadEventsRequest, ()>::default();
        return match grpc.server_streaming(request, path_and_query, codec).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
    }
    let request = with_header(message, header.as_deref());
    let codec = tonic_prost::ProstCodec::<pb::WatchRequest, ()>::default();
    let path = path_and_query;
    match grpc.server_streaming(request, path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_and_role_answers_as_the_permission_table_says() {
    let fixture = Fixture::start().await;
    fixture.seed(&Cohort::new(2017, 2)).await;
    // (role, token): scoped roles are scoped to STUDY, the study every call names.
    let roles = [
        (Role::Writer, &fixture.writer),
        (Role::Reader, &fixture.reader),
        (Role::Auditor, &fixture.auditor),
        (Role::Admin, &fixture.admin),
        (Role::Integration, &fixture.integration),
    ];
    let mut checked = 0;
    for (path, permission) in RPC_PERMISSIONS {
        for (role, token) in roles {
            let code = call_rpc(&fixture.channel, path, Some(token)).await;
            match role.grants(*permission) {
                Grant::Denied => assert_eq!(code, Code::PermissionDenied, "{path} as {role}"),
                Grant::OwnStudies | Grant::All => assert!(
                    !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                    "{path} as {role}: {code:?}"
                ),
            }
            checked += 1;
        }
        let anonymous = call_rpc(&fixture.channel, path, None).await;
        if *permission == myolog_server::auth::Permission::Public {
            assert_eq!(anonymous, Code::Ok, "{path} without a token");
        } else {
            assert_eq!(anonymous, Code::Unauthenticated, "{path} without a token");
        }
    }
    assert_eq!(checked, RPC_PERMISSIONS.len() * 5);
    // A method not in the table is denied even to the auditor.
    let code = call_rpc(
        &fixture.channel,
        "/myolog.v1.Audit/DeleteEverything",
        Some(&fixture.auditor),
    )
    .await;
    assert_eq!(code, Code::PermissionDenied);
    fixture.server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_the_file_changes_new_calls_and_keeps_open_streams() {
    let fixture = Fixture::start().await;
    let cohort = Cohort::new(2017, 2);
    fixture.seed(&cohort).await;
    let mut watch = fixture
        .outcomes()
        .watch(with_token(
            pb::WatchRequest {
                study_id: STUDY.into(),
            },
            &fixture.reader,
        ))
        .await
        .expect("watch opens")
        .into_inner();
    // A new token works only after the reload.
    let late = issue_token(&fixture.file, "edc-late", "writer", &[STUDY]);
    let first = fixture
        .ingest()
        .append(with_token(cohort.visit_batch(1, "baseline"), &late))
        .await;
    assert_eq!(
        first.expect_err("not loaded yet").code(),
        Code::Unauthenticated
    );
    // A broken file is refused and the old table stays.
    let good = std::fs::read_to_string(&fixture.file).expect("read");
    std::fs::write(&fixture.file, format!("{good}\n[[token]]\nbroken")).expect("write");
    assert!(fixture.auth.reload().is_err());
    std::fs::write(&fixture.file, &good).expect("write");
    // Revoke the reader by hand, then reload.
    let at = good.find("principal = \"stat-a\"").expect("reader entry");
    let revoked = format!(
        "{}{}",
        &good[..at],
        good[at..].replacen("revoked = false", "revoked = true", 1)
    );
    assert_ne!(revoked, good);
    std::fs::write(&fixture.file, revoked).expect("write");
    fixture.auth.reload().expect("reloads");
    let response = fixture
        .ingest()
        .append(with_token(cohort.visit_batch(0, "week4"), &late))
        .await
        .expect("loaded after reload")
        .into_inner();
    assert!(response.rejection.is_none());
    // The reader's open stream still delivers the new outcome; its new calls are refused.
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
        .await
        .expect("outcome in time")
        .expect("stream open")
        .expect("an outcome");
    assert_eq!(outcome.study_id, STUDY);
    let again = fixture
        .outcomes()
        .get_cohort(with_token(
            pb::GetCohortRequest {
                study_id: STUDY.into(),
                visit_id: String::new(),
                protocol_version: None,
            },
            &fixture.reader,
        ))
        .await;
    assert_eq!(again.expect_err("revoked").code(), Code::Unauthenticated);
    drop(watch);
    fixture.server.stop().await.expect("stops");
}
