//! The real `myolog` binary's security settings: it refuses to start, saying why, when asked to
//! listen off loopback without a principals file, to serve plaintext off loopback, or given half a
//! TLS configuration or an unreadable principals file; `myolog token issue` prints a token that a
//! running server accepts once it has been sent SIGHUP, without a restart.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use tonic::{Code, Request};

mod common;

use common::myolog;

fn issue(dir: &Path, principal: &str, role: &str) -> String {
    let output = myolog(dir)
        .args(["token", "issue", "--principal", principal, "--role", role])
        .args(["--file", "principals.toml"])
        .output()
        .expect("myolog token issue runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    issue(dir.path(), "inspector", "auditor");
    let base = ["serve", "--data", "data", "--metrics-addr", "127.0.0.1:0"];
    // (extra arguments, part of the reason on stderr)
    let cases: [(&[&str], &str); 5] = [
        (&["--addr", "0.0.0.0:0"], "without a principals file"),
        (
            &["--addr", "0.0.0.0:0", "--principals", "principals.toml"],
            "refusing plaintext",
        ),
        (
            &["--addr", "127.0.0.1:0", "--tls-cert", "server.pem"],
            "--tls-cert and --tls-key go together",
        ),
        (
            &["--addr", "127.0.0.1:0", "--principals", "missing.toml"],
            "reading principals file",
        ),
        (
            &[
                "--addr",
                "127.0.0.1:0",
                "--tls-cert",
                "no.pem",
                "--tls-key",
                "no.key",
            ],
            "reading TLS certificate",
        ),
    ];
    for (extra, reason) in cases {
        let output = myolog(dir.path())
            .args(base)
            .args(extra)
            .output()
            .expect("myolog serve runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{extra:?} started");
        assert!(stderr.contains(reason), "{extra:?}: {stderr}");
    }
}

async fn verify(url: &str, token: &str) -> Code {
    let mut client = match AuditClient::connect(url.to_string()).await {
        Ok(client) => client,
        Err(_) => return Code::Unavailable,
    };
    let mut request = Request::new(pb::VerifyRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    match client.verify(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_while_running_works_after_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = issue(dir.path(), "inspector", "auditor");
    let server = common::Server::start(
        dir.path(),
        &["--data", "data", "--principals", "principals.toml"],
    );
    let url = server.url.clone();
    assert_eq!(verify(&url, &first).await, Code::Ok);

    let second = issue(dir.path(), "inspector-2", "auditor");
    assert_eq!(verify(&url, &second).await, Code::Unauthenticated);
    let sent = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let mut code = Code::Unknown;
    for _ in 0..100 {
        code = verify(&url, &second).await;
        if code == Code::Ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, Code::Ok, "the new token works after SIGHUP");
    assert_eq!(
        verify(&url, &first).await,
        Code::Ok,
        "the old one still does"
    );
    drop(server);
}
