//! End-to-end tests over real loopback gRPC live in `tests/`; this library is their shared harness:
//! a real server on 127.0.0.1:0 over a log in a temporary directory (stopped through a oneshot by
//! [`myolog_server::server::Running::stop`]), real tonic clients, and the synthetic cohort.

use std::net::SocketAddr;
use std::path::Path;

use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use myolog_proto::v1::ingest_client::IngestClient;
use myolog_proto::v1::outcomes_client::OutcomesClient;
use myolog_server::app::AppConfig;
use myolog_server::server::{self, Running};
use myolog_synth::{self as synth, Cohort, VISITS};
use tonic::transport::Channel;

/// Starts a server on an OS-chosen loopback port over the log in `dir`.
pub async fn start(dir: &Path) -> Running {
    server::start(AppConfig::new(dir), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("server starts")
}

/// A connected channel to a running server.
pub async fn channel(server: &Running) -> Channel {
    Channel::from_shared(server.url())
        .expect("valid url")
        .connect()
        .await
        .expect("connects")
}

/// Clients of the three services.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ingest: IngestClient<Channel>,
    pub outcomes: OutcomesClient<Channel>,
    pub audit: AuditClient<Channel>,
}

impl Clients {
    /// Clients over one channel.
    pub async fn connect(server: &Running) -> Self {
        let channel = channel(server).await;
        Self {
            ingest: IngestClient::new(channel.clone()),
            outcomes: OutcomesClient::new(channel.clone()),
            audit: AuditClient::new(channel),
        }
    }

    /// Appends a batch (unary), panicking on any error.
    pub async fn append(&mut self, batch: pb::SubmitRequest) -> pb::SubmitResponse {
        self.ingest
            .append(batch)
            .await
            .expect("append succeeds")
            .into_inner()
    }

    /// The log's head sequence, through Audit.Verify.
    pub async fn head(&mut self) -> u64 {
        let report = self
            .audit
            .verify(pb::VerifyRequest {})
            .await
            .expect("verify")
            .into_inner();
        assert!(report.ok, "log verifies: {report:?}");
        report.head_sequence
    }

    /// Every stored event, through Audit.ReadEvents.
    pub async fn read_all(&mut self) -> Vec<pb::LoggedEvent> {
        let mut stream = self
            .audit
            .read_events(pb::ReadEventsRequest {
                study_id: String::new(),
                from_sequence: 1,
                limit: 0,
            })
            .await
            .expect("read events")
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = stream.message().await.expect("event") {
            events.push(event);
        }
        events
    }

    /// All visit outcomes of one subject of the synthetic study.
    pub async fn subject(&mut self, index: usize) -> pb::SubjectOutcomes {
        self.outcomes
            .get_subject(pb::GetSubjectRequest {
                study_id: synth::STUDY.into(),
                subject_id: synth::subject_id(index),
                protocol_version: None,
            })
            .await
            .expect("get subject")
            .into_inner()
    }

    /// The cohort statistics of the synthetic study.
    pub async fn cohort(&mut self) -> pb::CohortOutcomes {
        self.outcomes
            .get_cohort(pb::GetCohortRequest {
                study_id: synth::STUDY.into(),
                visit_id: String::new(),
                protocol_version: None,
            })
            .await
            .expect("get cohort")
            .into_inner()
    }
}

/// Every batch of the synthetic cohort in submission order: enrollment, then each visit of each
/// subject; the correction right after the primary visit when `with_correction`.
pub fn cohort_batches(cohort: &Cohort, with_correction: bool) -> Vec<pb::SubmitRequest> {
    let mut batches = vec![cohort.enrollment()];
    for (visit, _) in VISITS {
        for index in 0..cohort.len() {
            batches.push(cohort.visit_batch(index, visit));
        }
        if with_correction && visit == synth::PRIMARY_VISIT {
            batches.push(cohort.correction());
        }
    }
    batches
}

/// Field paths of a rejection's violations.
pub fn violation_fields(rejection: &pb::Rejection) -> Vec<String> {
    rejection
        .bad_request
        .iter()
        .flat_map(|b| &b.field_violations)
        .map(|v| v.field.clone())
        .collect()
}

/// Issues a bearer token for `principal` with `role`, scoped to `studies`, into the principals file
/// `file` (created when missing), through the same code path as `myolog token issue`.
pub fn issue_token(file: &Path, principal: &str, role: &str, studies: &[&str]) -> String {
    issue_token_for_sites(file, principal, role, studies, &[])
}

/// [`issue_token`] scoped to `sites` too (`myolog token issue --site X`); no sites means study-wide.
pub fn issue_token_for_sites(
    file: &Path,
    principal: &str,
    role: &str,
    studies: &[&str],
    sites: &[&str],
) -> String {
    myolog_cli::token::issue(
        &myolog_cli::token::IssueArgs {
            principal: principal.into(),
            role: role.into(),
            studies: studies.iter().map(|s| s.to_string()).collect(),
            sites: sites.iter().map(|s| s.to_string()).collect(),
            file: file.to_path_buf(),
            expires: None,
        },
        myolog_server::auth::now_unix_nanos(),
    )
    .expect("token issued")
}

/// Generates Python gRPC stubs from `proto/` into `out` with grpcio-tools. Fails, never skips,
/// without python3, grpcio or grpcio-tools (the README's test command installs them).
pub fn python_stubs(out: &Path) {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let output = std::process::Command::new("python3")
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto.display()))
        .arg(format!("--python_out={}", out.display()))
        .arg(format!("--grpc_python_out={}", out.display()))
        .args([
            "myolog/v1/events.proto",
            "myolog/v1/outcomes.proto",
            "myolog/v1/service.proto",
            "google/rpc/error_details.proto",
        ])
        .output()
        .expect("python3 -m grpc_tools.protoc runs (pip install -r requirements-test.txt)");
    assert!(
        output.status.success(),
        "grpc_tools.protoc failed on proto/:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
