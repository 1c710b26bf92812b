//! Read-only followers through the real `myolog` binary: a follower SIGKILLed at random moments
//! while its primary takes writes resumes and converges on the primary's exact chain and
//! outcomes; writes to a follower are refused naming the primary; a follower whose log does not
//! chain onto what the primary sends stops and says so; with a principals file, a follower holding
//! a reader's token is refused the copy (replication needs an auditor or admin) and one holding an
//! auditor's answers each role as the primary does; a promoted follower takes a newer archive
//! epoch and the old primary, restarted, is fenced off; `myolog promote` on a follower behind a
//! directory archive (the drill in `common::promotion_drill`; on S3 in `s3.rs`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, append, cohort_batches, head, run, stdout};

/// A small xorshift generator seeded from the clock: random kill moments, reported on failure.
struct Random(u64);

impl Random {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn follow(dir: &Path, data: &str, primary: &str) -> Server {
    Server::start(
        dir,
        &[
            "--data",
            data,
            "--follow",
            primary,
            "--follow-poll-ms",
            "20",
        ],
    )
}

/// Waits until the follower's head equals `target`.
async fn converge(follower: &str, target: &(u64, Vec<u8>)) {
    let started = Instant::now();
    loop {
        let now = head(follower).await;
        if &now == target {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the follower is at {} and does not reach {}",
            now.0,
            target.0
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_killed_at_random_moments_resumes_and_converges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let primary = Server::start(dir.path(), &["--data", "primary"]);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("kill moments seeded with {seed}");
    let mut random = Random(seed);

    let url = primary.url.clone();
    let writer = tokio::spawn(async move {
        for batch in cohort_batches(21, 16) {
            append(&url, batch)
                .await
                .expect("the primary takes the write");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut follower = follow(dir.path(), "follower", &primary.url);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(50 + random.next(400))).await;
        follower.kill();
        follower = follow(dir.path(), "follower", &primary.url);
    }
    writer.await.expect("writer");
    let target = head(&primary.url).await;
    converge(&follower.url, &target).await;

    // Reads on the follower: the same outcomes as the primary's.
    let study = myolog_synth::STUDY.to_string();
    let visit = myolog_synth::STIR_VISIT_IDS[3].1.to_string();
    let cohort = |url: String| {
        let study = study.clone();
        let visit = visit.clone();
        async move {
            let mut client = myolog_proto::v1::outcomes_client::OutcomesClient::connect(url)
                .await
                .expect("connect");
            client
                .get_cohort(myolog_proto::v1::GetCohortRequest {
                    study_id: study,
                    visit_id: visit,
                    ..Default::default()
                })
                .await
                .expect("cohort")
                .into_inner()
        }
    };
    // The log's head is visible a moment before the projection has applied the last batch.
    let expected = cohort(primary.url.clone()).await;
    let started = Instant::now();
    while cohort(follower.url.clone()).await != expected {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the outcomes differ"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Writes to the follower are refused, naming the primary.
    let refused = append(&follower.url, cohort_batches(22, 1).remove(0))
        .await
        .expect_err("a follower takes no writes");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("read-only follower")
            && refused.message().contains(&primary.url),
        "{}",
        refused.message()
    );

    follower.stop();
    primary.stop();
    run(dir.path(), &["verify", "--data", "follower"], true);
    assert_eq!(
        stdout(&run(dir.path(), &["replay", "--data", "follower"], true)),
        stdout(&run(dir.path(), &["replay", "--data", "primary"], true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_fed_an_event_that_does_not_chain_stops_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The follower's log is another primary's history.
    let other = Server::start(dir.path(), &["--data", "follower"]);
    for batch in cohort_batches(1, 1) {
        append(&other.url, batch).await.expect("appended");
    }
    let other_head = head(&other.url).await;
    other.stop();

    let primary = Server::start(dir.path(), &["--data", "primary"]);
    for batch in cohort_batches(2, 3) {
        append(&primary.url, batch).await.expect("appended");
    }
    assert!(head(&primary.url).await.0 > other_head.0);
    let mut follower = follow(dir.path(), "follower", &primary.url);
    let status = follower
        .wait_exit(Duration::from_secs(30))
        .expect("the follower stops by itself");
    assert!(!status.success());
    let log = follower.log_text();
    assert!(
        log.contains("does not chain") && log.contains(&format!("seq {}", other_head.0 + 1)),
        "{log}"
    );
    drop(follower);
    // Nothing of the primary's was stored.
    let verified = stdout(&run(dir.path(), &["verify", "--data", "follower"], true));
    assert!(
        verified.contains(&format!("head sequence {} ", other_head.0)),
        "{verified}"
    );
    primary.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_follower_takes_over_the_archive_and_fences_the_old_primary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = format!("file://{}", dir.path().join("archive").display());
    let primary = Server::start(
        dir.path(),
        &[
            "--data",
            "primary",
            "--archive",
            &archive,
            "--archive-max-age-ms",
            "50",
        ],
    );
    let follower = follow(dir.path(), "follower", &primary.url);
    let mut batches = cohort_batches(8, 2);
    let last = batches.pop().expect("batches");
    for batch in batches {
        append(&primary.url, batch).await.expect("appended");
    }
    let target = head(&primary.url).await;
    converge(&follower.url, &target).await;
    // The primary's node is lost.
    primary.kill();
    follower.stop();

    let promoted = Server::start(
        dir.path(),
        &["--data", "follower", "--archive", &archive, "--promote"],
    );
    assert!(
        promoted.log_text().contains("epoch 2"),
        "{}",
        promoted.log_text()
    );
    assert_eq!(head(&promoted.url).await, target);
    let acks = append(&promoted.url, last)
        .await
        .expect("the new primary takes writes");
    assert!(!acks.is_empty() && acks.iter().all(|(seq, _)| *seq > target.0));
    promoted.stop();

    // The old primary comes back with its old epoch: its archiver is fenced off and it stops.
    let mut old = common::serve_command(dir.path())
        .args(["--data", "primary", "--archive", &archive])
        .output()
        .expect("runs");
    assert!(!old.status.success());
    let message = String::from_utf8_lossy(&std::mem::take(&mut old.stderr)).into_owned();
    assert!(message.contains("fenced off"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_a_directory_archive_is_promoted_and_the_old_primary_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("archive");
    let archive = format!("file://{}", root.display());
    let listing = || directory_listing(&root);
    common::promotion_drill(dir.path(), &archive, &[], &listing).await;
}

/// Every object of a directory archive as "folder/name length:digest".
fn directory_listing(root: &Path) -> Vec<String> {
    use std::hash::{Hash, Hasher};
    let mut objects = Vec::new();
    for folder in ["segments", "epochs"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let bytes = std::fs::read(entry.path()).expect("an archive object");
            let mut digest = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut digest);
            objects.push(format!(
                "{folder}/{} {}:{:x}",
                entry.file_name().to_string_lossy(),
                bytes.len(),
                digest.finish()
            ));
        }
    }
    objects.sort();
    objects
}

fn issue(dir: &Path, principal: &str, role: &str, study: Option<&str>) -> String {
    let mut args = vec![
        "token",
        "issue",
        "--principal",
        principal,
        "--role",
        role,
        "--file",
        "principals.toml",
    ];
    if let Some(study) = study {
        args.extend(["--study", study]);
    }
    stdout(&run(dir, &args, true)).trim().to_string()
}

async fn append_as(
    url: &str,
    batch: myolog_proto::v1::SubmitRequest,
    token: &str,
) -> Result<(), tonic::Status> {
    let mut client = myolog_proto::v1::ingest_client::IngestClient::connect(url.to_string())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(batch);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    let response = client.append(request).await?.into_inner();
    assert!(response.rejection.is_none(), "{:?}", response.rejection);
    Ok(())
}

async fn cohort_as(
    url: &str,
    token: &str,
) -> Result<myolog_proto::v1::CohortOutcomes, tonic::Status> {
    let mut client = myolog_proto::v1::outcomes_client::OutcomesClient::connect(url.to_string())
        .await
        .expect("connect");
    let mut request = tonic::Request::new(myolog_proto::v1::GetCohortRequest {
        study_id: myolog_synth::STUDY.into(),
        visit_id: myolog_synth::STIR_VISIT_IDS[3].1.into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    client
        .get_cohort(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_tokens_answers_each_role_as_the_primary_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let study = myolog_synth::STUDY;
    let admin = issue(dir.path(), "dm-admin", "admin", None);
    let writer = issue(dir.path(), "edc", "writer", Some(study));
    let reader = issue(dir.path(), "statistician", "reader", Some(study));
    let auditor = issue(dir.path(), "inspector", "auditor", None);
    let secured = ["--principals", "principals.toml"];
    let primary = Server::start(dir.path(), &[&["--data", "primary"][..], &secured].concat());
    let mut batches = cohort_batches(31, 3).into_iter();
    let (register, enroll): (Vec<_>, Vec<_>) = batches
        .next()
        .expect("enrolment")
        .events
        .into_iter()
        .partition(|e| {
            matches!(
                e.body,
                Some(myolog_proto::v1::event::Body::StudyRegistered(_))
            )
        });
    let batch = |id: &str, events| myolog_proto::v1::SubmitRequest {
        batch_id: id.into(),
        events,
    };
    append_as(&primary.url, batch("register", register), &admin)
        .await
        .expect("admin registers");
    append_as(&primary.url, batch("enroll", enroll), &writer)
        .await
        .expect("writer enrols");
    for visit in batches {
        append_as(&primary.url, visit, &writer)
            .await
            .expect("writer sends visits");
    }
    let primary_head = common::head_as(&primary.url, &auditor).await;

    // A follower whose token is a reader's is refused the copy and says why; it copies nothing.
    let refused = common::Server::start_with_env(
        dir.path(),
        &[
            &[
                "--data",
                "refused",
                "--follow",
                &primary.url,
                "--follow-poll-ms",
                "20",
            ][..],
            &secured,
        ]
        .concat(),
        &[("MYOLOG_FOLLOW_TOKEN", reader.clone())],
    );
    let started = Instant::now();
    while !refused.log_text().contains("cannot read the primary") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            refused.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused.log_text().contains("replicate"),
        "{}",
        refused.log_text()
    );
    assert_eq!(common::head_as(&refused.url, &auditor).await.0, 0);
    refused.stop();

    let follower = common::Server::start_with_env(
        dir.path(),
        &[
            &[
                "--data",
                "follower",
                "--follow",
                &primary.url,
                "--follow-poll-ms",
                "20",
            ][..],
            &secured,
        ]
        .concat(),
        &[("MYOLOG_FOLLOW_TOKEN", auditor.clone())],
    );
    let started = Instant::now();
    while common::head_as(&follower.url, &auditor).await != primary_head {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no convergence"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each role reads on the follower exactly what it reads on the primary (the same principals
    // file, the same blinding rules). The log's head is visible a moment before the projection
    // has applied the last batch, so the reads are compared until they agree.
    for token in [&reader, &auditor] {
        let expected = cohort_as(&primary.url, token)
            .await
            .expect("the primary answers");
        let started = Instant::now();
        loop {
            let answer = cohort_as(&follower.url, token).await;
            if answer.as_ref().ok() == Some(&expected) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the follower answers {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A reader's token does not reach the audit reads on the follower either.
    let mut audit = myolog_proto::v1::audit_client::AuditClient::connect(follower.url.clone())
        .await
        .expect("connect");
    let mut request = tonic::Request::new(myolog_proto::v1::VerifyRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {reader}").parse().expect("ascii"),
    );
    let denied = audit.verify(request).await.expect_err("denied");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    // A writer's write to the follower is refused naming the primary.
    let refused = append_as(&follower.url, cohort_batches(31, 3).remove(1), &writer)
        .await
        .expect_err("refused");
    assert!(
        refused.message().contains(&primary.url),
        "{}",
        refused.message()
    );
    follower.stop();
    primary.stop();
}
