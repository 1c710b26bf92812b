//! Stopping `myolog serve` with SIGTERM at any moment of its life is a graceful shutdown: an
//! orchestrator may stop a pod that is still starting, and a signal that arrives before the server
//! installed its handler would kill the process with no shutdown at all.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

mod common;

#[test]
fn a_sigterm_during_start_up_stops_the_server_gracefully_once_it_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = common::serve_command(dir.path())
        .args(["--data", "log"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("myolog serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (line_tx, line_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    // The first log line comes from the authenticator, early in start-up: long before the log is
    // opened and the server binds its services.
    let first = line_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server logs as it starts");
    let mut log = vec![first];
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    while let Ok(line) = line_rx.recv_timeout(Duration::from_secs(60)) {
        log.push(line);
    }
    let status = child.wait().expect("wait");
    let log = log.join("\n");
    assert!(
        status.success(),
        "a SIGTERM during start-up killed the server: {status}\n{log}"
    );
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(
        log.contains("stopped"),
        "no graceful shutdown logged:\n{log}"
    );
}
