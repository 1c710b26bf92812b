//! A Python client (grpcio, stubs generated from proto/ at test time by grpcio-tools) submits events
//! to a real server and reads outcomes. Fails, never skips, when python3, grpcio or grpcio-tools is
//! missing: install them with `python3 -m pip install -r requirements-test.txt` (the README's test
//! command does).

use std::path::{Path, PathBuf};
use std::process::Command;

use myolog_proto::v1 as pb;
use myolog_tests::{Clients, start};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python_ready() {
    let check = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools.protoc"])
        .output();
    match check {
        Err(error) => {
            panic!("python3 is required for the Python client test and could not run: {error}")
        }
        Ok(output) if !output.status.success() => panic!(
            "grpcio and grpcio-tools are required for the Python client test: run \
             `python3 -m pip install -r requirements-test.txt`\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Ok(_) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_client_submits_events_and_reads_outcomes() {
    python_ready();
    let stubs = tempfile::tempdir().expect("tempdir");
    myolog_tests::python_stubs(stubs.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let addr = server.addr.to_string();
    let script = repo_root().join("tests/python/client.py");
    let stubs_path = stubs.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(addr)
            .env("PYTHONPATH", stubs_path)
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs the client");
    assert!(
        output.status.success(),
        "the Python client failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON report");
    assert_eq!(report["acked"], 10);
    assert_eq!(report["doi"], "DOI_STATUS_MET");
    assert_eq!(report["cohort_doi"], serde_json::json!([1, 1]));
    assert_eq!(report["result_json"]["doi"]["status"], "met");

    // What Python read is what the Rust client reads, and the log holds exactly the acked events.
    let mut clients = Clients::connect(&server).await;
    assert_eq!(clients.head().await, 10);
    let subject = clients
        .outcomes
        .get_subject(pb::GetSubjectRequest {
            study_id: "PY-STUDY".into(),
            subject_id: "P001".into(),
            protocol_version: None,
        })
        .await
        .expect("subject")
        .into_inner();
    let week12 = subject
        .visits
        .iter()
        .find(|v| v.visit_id == "week12")
        .expect("week 12");
    assert_eq!(
        report["tis_score"],
        week12
            .tis
            .as_ref()
            .map(|t| t.score.clone())
            .unwrap_or_default()
    );
    let rust_json: serde_json::Value = serde_json::from_str(&week12.result_json).expect("json");
    assert_eq!(report["result_json"], rust_json);
    server.stop().await.expect("stops");
}
