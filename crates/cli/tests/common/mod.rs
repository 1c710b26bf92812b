//! What the process-level archive and follower tests share: the real `myolog` binary started as a
//! server on loopback (its address read from its log), synthetic batches written through
//! `Ingest.Append`, and the log's head read through `Audit.Verify`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use myolog_proto::v1 as pb;
use myolog_proto::v1::audit_client::AuditClient;
use myolog_proto::v1::ingest_client::IngestClient;

/// The binary, with no `MYOLOG_*` of the test's own environment, run in `dir`.
pub fn myolog(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_myolog"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MYOLOG_") || key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command.current_dir(dir);
    command
}

/// Runs a command to its end; panics with its stderr unless it exits as `expect_success` says.
pub fn run(dir: &Path, args: &[&str], expect_success: bool) -> Output {
    let output = myolog(dir).args(args).output().expect("myolog runs");
    assert_eq!(
        output.status.success(),
        expect_success,
        "myolog {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `myolog serve` process; SIGKILLed when dropped unless stopped first.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// Every line it logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `myolog serve --addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 <args>` in `dir` and
    /// waits until it serves.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        Server::start_with_env(dir, args, &[])
    }

    /// [`Server::start`] with these environment variables set.
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Server {
        let mut child = myolog(dir)
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("myolog serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel::<String>();
        let lines = Arc::clone(&log);
        // Drain the log on a thread (a full pipe would block the server).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("serving addr=Some(")
                    && let Some((addr, _)) = rest.split_once(')')
                {
                    let _ = addr_tx.send(addr.to_string());
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not start:\n{}",
                    log.lock().expect("log lock").join("\n")
                );
            }
        };
        Server {
            child,
            url: format!("http://{addr}"),
            log,
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "{status}\n{}", self.log_text());
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// Waits for the process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every batch of a synthetic cohort of `n` subjects (enrolment first, then each visit).
pub fn cohort_batches(seed: u64, n: usize) -> Vec<pb::SubmitRequest> {
    let cohort = myolog_synth::Cohort::new(seed, n).with_stir_protocol();
    let mut batches = vec![cohort.enrollment()];
    for index in 0..cohort.len() {
        for (visit, _) in myolog_synth::VISITS {
            batches.push(cohort.visit_batch(index, visit));
        }
    }
    batches
}

/// Appends `batch` through `Ingest.Append`: its acks (sequence, hash), or the refusal.
pub async fn append(
    url: &str,
    batch: pb::SubmitRequest,
) -> Result<Vec<(u64, Vec<u8>)>, tonic::Status> {
    let mut client = IngestClient::connect(url.to_string())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let response = client.append(batch).await?.into_inner();
    if let Some(rejection) = response.rejection {
        return Err(tonic::Status::failed_precondition(format!(
            "rejected: {} {}",
            rejection.code, rejection.message
        )));
    }
    Ok(response
        .acks
        .into_iter()
        .map(|ack| (ack.sequence, ack.hash))
        .collect())
}

/// The server's head (sequence, hash) through `Audit.Verify`, which also checks the chain.
pub async fn head(url: &str) -> (u64, Vec<u8>) {
    let mut client = AuditClient::connect(url.to_string())
        .await
        .expect("connect");
    let report = client
        .verify(pb::VerifyRequest {})
        .await
        .expect("verify")
        .into_inner();
    assert!(report.ok, "{report:?}");
    (report.head_sequence, report.head_hash)
}

/// [`head`] with a bearer token.
pub async fn head_as(url: &str, token: &str) -> (u64, Vec<u8>) {
    let mut client = AuditClient::connect(url.to_string())
        .await
        .expect("connect");
    let mut request = tonic::Request::new(pb::VerifyRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    let report = client.verify(request).await.expect("verify").into_inner();
    assert!(report.ok, "{report:?}");
    (report.head_sequence, report.head_hash)
}
