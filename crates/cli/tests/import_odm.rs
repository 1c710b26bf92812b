//! The real `myolog import odm` binary against a real `myolog serve`: killed (SIGKILL) in the middle
//! of an import, it is run again and the log ends with every planned event exactly once; a third run
//! stores nothing. The exit status says a partial import (the fixture's planted discrepancies) from a
//! failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use myolog_proto::v1 as pb;
use pb::audit_client::AuditClient;
use pb::ingest_client::IngestClient;

mod common;

use common::myolog;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/edc")
        .join(name)
}

/// Stops a child when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The STIR-shaped export with its two records repeated `copies` times under other subject keys.
fn big_export(copies: usize) -> String {
    let text = std::fs::read_to_string(fixture("redcap_longitudinal_stir.xml")).expect("fixture");
    let start = text.find("\t<SubjectData").expect("subjects");
    let end = text.find("</ClinicalData>").expect("end");
    let subjects = &text[start..end];
    let mut out = text[..start].to_string();
    for copy in 0..copies {
        out.push_str(
            &subjects
                .replace(
                    "SubjectKey=\"STIR-01\"",
                    &format!("SubjectKey=\"A{copy:04}\""),
                )
                .replace(
                    "SubjectKey=\"STIR-02\"",
                    &format!("SubjectKey=\"B{copy:04}\""),
                ),
        );
    }
    out.push_str(&text[end..]);
    out
}

async fn head(url: &str) -> u64 {
    let mut audit = AuditClient::connect(url.to_string())
        .await
        .expect("connects");
    audit
        .verify(pb::VerifyRequest {})
        .await
        .expect("verify")
        .into_inner()
        .head_sequence
}

async fn event_ids(url: &str) -> Vec<String> {
    let mut audit = AuditClient::connect(url.to_string())
        .await
        .expect("connects");
    let mut stream = audit
        .read_events(pb::ReadEventsRequest {
            from_sequence: 1,
            limit: 0,
            study_id: String::new(),
        })
        .await
        .expect("read")
        .into_inner();
    let mut ids = Vec::new();
    while let Some(event) = stream.message().await.expect("event") {
        ids.push(event.event_id);
    }
    ids
}

fn import(dir: &Path, url: &str) -> Command {
    let mut command = myolog(dir);
    command.args([
        "import",
        "odm",
        "big.xml",
        "--mapping",
        "stir.mapping.toml",
        "--addr",
        url,
        "--batch-size",
        "1",
    ]);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_midway_resumes_without_loss_or_duplicates() {
    const COPIES: usize = 40;
    // 25 events per STIR-01-shaped record, 24 per STIR-02-shaped one.
    const PLANNED: u64 = (COPIES as u64) * 49;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("big.xml"), big_export(COPIES)).expect("write export");
    std::fs::copy(
        fixture("stir_redcap.mapping.toml"),
        dir.path().join("stir.mapping.toml"),
    )
    .expect("mapping");
    let server = common::Server::start(dir.path(), &["--data", "data"]);
    let url = server.url.clone();
    IngestClient::connect(url.clone())
        .await
        .expect("connects")
        .append(pb::SubmitRequest {
            batch_id: "register".into(),
            events: vec![pb::Event {
                event_id: "STIR.registered".into(),
                study_id: "STIR".into(),
                clinical_date: "2024-01-01".into(),
                body: Some(pb::event::Body::StudyRegistered(pb::StudyRegistered {
                    title: "STIR-shaped".into(),
                    population: pb::Population::Adult as i32,
                    baseline_visit_id: "BL".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }],
        })
        .await
        .expect("registered");

    // One event per append: slow enough to be killed in the middle.
    let child = import(dir.path(), &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("import starts");
    let mut child = Killed(child);
    for _ in 0..1200 {
        if head(&url).await > 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    child.0.kill().expect("SIGKILL");
    let _ = child.0.wait();
    let after_kill = head(&url).await;
    assert!(
        after_kill > 100 && after_kill < 1 + PLANNED,
        "killed in the middle: {after_kill} of {}",
        1 + PLANNED
    );
    assert!(
        !dir.path().join("stir.mapping.ledger.json").exists(),
        "a killed run writes no ledger"
    );

    let output = import(dir.path(), &url).output().expect("import runs");
    let summary = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "partial (discrepancies): {summary}"
    );
    assert!(
        summary.contains(&format!("{} already present", after_kill - 1)),
        "{summary}"
    );
    assert_eq!(head(&url).await, 1 + PLANNED);
    let mut ids = event_ids(&url).await;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, 1 + PLANNED, "no event stored twice");

    let output = import(dir.path(), &url).output().expect("import runs");
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.contains("events sent: 0 stored"), "{summary}");
    assert_eq!(head(&url).await, 1 + PLANNED);

    // A server that is not there: exit 1, saying so.
    let output = import(dir.path(), "http://127.0.0.1:9")
        .output()
        .expect("import runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot connect"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
