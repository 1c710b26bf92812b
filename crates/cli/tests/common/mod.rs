//! What the process-level tests share (archive, follower, import, token, signals): the real
//! `myolog` binary started as a server on loopback (its address read from its log), synthetic
//! batches written through `Ingest.Append`, and the log's head read through `Audit.Verify`.

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

/// `myolog serve` on loopback with ports the kernel picks (its log names the gRPC address), in `dir`.
pub fn serve_command(dir: &Path) -> Command {
    let mut command = myolog(dir);
    command.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
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
        let mut child = serve_command(dir)
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
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

/// [`run`] with these environment variables set (an S3 archive's `AWS_*`).
pub fn run_with_env(
    dir: &Path,
    args: &[&str],
    env: &[(&str, String)],
    expect_success: bool,
) -> Output {
    let output = myolog(dir)
        .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
        .args(args)
        .output()
        .expect("myolog runs");
    assert_eq!(
        output.status.success(),
        expect_success,
        "myolog {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The sequence a verify of `data` reports as its head (`myolog verify`, which walks the chain).
pub fn verified_head(dir: &Path, data: &str) -> u64 {
    let text = stdout(&run(dir, &["verify", "--data", data], true));
    head_sequence_in(&text)
}

/// The number after "head sequence " in a verify or restore line.
pub fn head_sequence_in(text: &str) -> u64 {
    text.split_once("head sequence ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no head sequence in {text:?}"))
}

/// The promotion drill, on any archive: `listing` returns every object of the archive as
/// "folder/name fingerprint" (the fingerprint changes when the bytes do).
///
/// A primary archiving with epoch 3 and a follower; `myolog promote` on the running follower's volume
/// is refused; the follower is SIGKILLed, the primary takes
/// more writes and archives them, then its node is lost (SIGKILL). `myolog promote` on the
/// follower's volume catches up every archived event (verified chain, the primary's head), takes
/// epoch 4 (the archive's newest + 1, found by listing it) and records it; served as a primary it
/// takes writes sealed under epoch 4, and a restart with a stale `MYOLOG_ARCHIVE_EPOCH=1` keeps
/// epoch 4. The old primary, back with its epoch 3, is refused (server and `myolog archive`) and
/// changes no object of the archive; a restore of the whole archive verifies across both epochs.
pub async fn promotion_drill(
    dir: &Path,
    archive: &str,
    env: &[(&str, String)],
    listing: &dyn Fn() -> Vec<String>,
) {
    let archiving = [
        "--archive",
        archive,
        "--archive-max-age-ms",
        "50",
        "--archive-segment-events",
        "40",
    ];
    let primary = Server::start_with_env(
        dir,
        &[
            &["--data", "primary", "--archive-epoch", "3"][..],
            &archiving,
        ]
        .concat(),
        env,
    );
    let follower = Server::start(
        dir,
        &[
            "--data",
            "follower",
            "--follow",
            &primary.url,
            "--follow-poll-ms",
            "20",
        ],
    );
    let mut batches = cohort_batches(41, 6).into_iter();
    for batch in batches.by_ref().take(8) {
        append(&primary.url, batch).await.expect("appended");
    }
    let copied = head(&primary.url).await;
    let started = Instant::now();
    while head(&follower.url).await != copied {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no convergence"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A volume a server still holds is refused, and no epoch is taken.
    let epochs = || -> Vec<String> {
        listing()
            .into_iter()
            .filter(|object| object.starts_with("epochs/"))
            .collect()
    };
    let epochs_before = epochs();
    let busy = run_with_env(
        dir,
        &["promote", "--data", "follower", "--archive", archive],
        env,
        false,
    );
    assert!(stderr(&busy).contains("in use"), "{}", stderr(&busy));
    assert_eq!(epochs(), epochs_before);
    follower.kill();
    for batch in batches.by_ref().take(20) {
        append(&primary.url, batch).await.expect("appended");
    }
    let target = head(&primary.url).await;
    assert!(
        target.0 > copied.0 + 40,
        "the archive holds segments the follower lacks"
    );
    // The primary's node is lost once the archive holds everything it acknowledged.
    let started = Instant::now();
    loop {
        let drill = run_with_env(
            dir,
            &["restore", "--from", archive, "--verify-only"],
            env,
            true,
        );
        if head_sequence_in(&stdout(&drill)) == target.0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not archived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    primary.kill();
    assert_eq!(
        verified_head(dir, "follower"),
        copied.0,
        "the follower is behind"
    );

    let promoted = stdout(&run_with_env(
        dir,
        &["promote", "--data", "follower", "--archive", archive],
        env,
        true,
    ));
    assert!(
        promoted.contains(&format!("{} events caught up", target.0 - copied.0))
            && promoted.contains("writer epoch 4 (the archive's newest was 3)"),
        "{promoted}"
    );
    assert_eq!(
        verified_head(dir, "follower"),
        target.0,
        "caught up, chain verified"
    );
    assert!(
        listing()
            .iter()
            .any(|object| object.starts_with("epochs/e00000000000000000004 "))
    );

    // Served as the primary, without --follow and without an epoch setting.
    let server = Server::start_with_env(
        dir,
        &[&["--data", "follower"][..], &archiving].concat(),
        env,
    );
    assert!(
        server.log_text().contains("epoch=4"),
        "{}",
        server.log_text()
    );
    assert_eq!(head(&server.url).await, target);
    let mut last = target.0;
    for batch in batches.by_ref().take(6) {
        let acks = append(&server.url, batch)
            .await
            .expect("the promoted primary takes writes");
        assert!(acks.iter().all(|(seq, _)| *seq > last));
        last = acks.last().map_or(last, |(seq, _)| *seq);
    }
    server.stop();
    // A restart keeps the recorded epoch over a stale setting in its configuration.
    let stale = [("MYOLOG_ARCHIVE_EPOCH", "1".to_string())];
    let restarted = Server::start_with_env(
        dir,
        &[&["--data", "follower"][..], &archiving].concat(),
        &[env, &stale[..]].concat(),
    );
    assert!(
        restarted.log_text().contains("epoch=4"),
        "{}",
        restarted.log_text()
    );
    for batch in batches.by_ref().take(4) {
        append(&restarted.url, batch)
            .await
            .expect("appended after the restart");
    }
    let final_head = head(&restarted.url).await;
    restarted.stop();

    let segments: Vec<myolog_archive::SegmentName> = listing()
        .iter()
        .filter_map(|object| object.strip_prefix("segments/"))
        .map(|object| {
            let name = object.split_whitespace().next().unwrap_or_default();
            myolog_archive::SegmentName::parse(name).expect("a segment name")
        })
        .collect();
    for name in &segments {
        let expected = if name.first_seq > target.0 { 4 } else { 3 };
        assert_eq!(name.epoch, expected, "{name}");
    }
    assert_eq!(
        segments.iter().map(|name| name.last_seq).max(),
        Some(final_head.0)
    );

    // The old primary comes back with its epoch: refused, and the archive is untouched.
    let before = listing();
    let old = run_with_env(
        dir,
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--data",
            "primary",
            "--archive",
            archive,
        ],
        env,
        false,
    );
    let refusal = stderr(&old);
    assert!(
        refusal.contains("writer epoch 3 is fenced off: epoch 4 has taken over this archive"),
        "{refusal}"
    );
    let shipped = run_with_env(
        dir,
        &[
            "archive", "--data", "primary", "--to", archive, "--epoch", "3",
        ],
        env,
        false,
    );
    assert!(
        stderr(&shipped).contains("fenced off"),
        "{}",
        stderr(&shipped)
    );
    assert_eq!(listing(), before, "the old primary changed the archive");

    // The whole archive, both epochs, restores into one verified chain.
    let restored = run_with_env(
        dir,
        &["restore", "--from", archive, "--data", "restored"],
        env,
        true,
    );
    assert_eq!(head_sequence_in(&stdout(&restored)), final_head.0);
    assert_eq!(verified_head(dir, "restored"), final_head.0);
}
