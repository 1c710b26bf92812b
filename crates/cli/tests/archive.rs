//! The archive through the real `myolog` binary: a server started with `--archive` to a directory
//! ships every event; after the log is deleted, `myolog restore` brings every archived event back,
//! `myolog verify` passes and the outcomes replay identically; a point-in-time restore equals the
//! replay as of that sequence; with `--ack-after-archive` every acknowledged event survives a
//! SIGKILL and a lost disk; the drill names a missing segment; a signed head verifies against its
//! log and fails against a log differing by one byte.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, append, cohort_batches, run, stderr, stdout};
use myolog_storage::{EventLog, LogOptions, StoredEvent};

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn replay(dir: &Path, data: &Path, as_of_seq: Option<u64>) -> String {
    let data = data.display().to_string();
    let mut args = vec!["replay", "--data", data.as_str()];
    let seq;
    if let Some(n) = as_of_seq {
        seq = n.to_string();
        args.extend(["--as-of-seq", seq.as_str()]);
    }
    stdout(&run(dir, &args, true))
}

fn verify_line(dir: &Path, data: &Path) -> String {
    stdout(&run(
        dir,
        &["verify", "--data", &data.display().to_string()],
        true,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_log_is_restored_from_the_archive_and_replays_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let archive = dir.path().join("archive");
    let server = Server::start(
        dir.path(),
        &[
            "--data",
            "data",
            "--archive",
            &file_url(&archive),
            "--archive-segment-events",
            "40",
            "--archive-max-age-ms",
            "100",
        ],
    );
    let mut acked = 0;
    for batch in cohort_batches(11, 6) {
        acked += append(&server.url, batch).await.expect("appended").len();
    }
    assert!(acked > 100, "{acked}");
    // A clean stop ships everything durable.
    server.stop();
    let original_verify = verify_line(dir.path(), &data);
    let original = replay(dir.path(), &data, None);
    let half = (acked / 2) as u64;
    let original_half = replay(dir.path(), &data, Some(half));
    assert_ne!(original, original_half);

    std::fs::remove_dir_all(&data).expect("the disk is lost");
    let segments = std::fs::read_dir(archive.join("segments"))
        .expect("segments")
        .count();
    assert!(segments >= 3, "{segments} segments");

    let drill = run(
        dir.path(),
        &["restore", "--from", &file_url(&archive), "--verify-only"],
        true,
    );
    assert!(
        stdout(&drill).contains("nothing written"),
        "{}",
        stdout(&drill)
    );
    assert!(!data.exists(), "the drill writes nothing");

    let restored = run(
        dir.path(),
        &["restore", "--from", &file_url(&archive), "--data", "data"],
        true,
    );
    assert!(
        stdout(&restored).contains(&format!("head sequence {acked} ")),
        "{}",
        stdout(&restored)
    );
    assert_eq!(verify_line(dir.path(), &data), original_verify);
    assert_eq!(replay(dir.path(), &data, None), original);

    // Point in time: the restore as of a sequence replays as the original did as of it.
    let point = dir.path().join("point");
    run(
        dir.path(),
        &[
            "restore",
            "--from",
            &file_url(&archive),
            "--data",
            "point",
            "--as-of-seq",
            &half.to_string(),
        ],
        true,
    );
    assert_eq!(replay(dir.path(), &point, None), original_half);

    // The restored log serves like the original: the server starts on it, archives on, and
    // takes new writes after the restored head.
    let server = Server::start(
        dir.path(),
        &["--data", "data", "--archive", &file_url(&archive)],
    );
    assert_eq!(common::head(&server.url).await.0, acked as u64);
    server.stop();

    // A segment lost from the archive stops the drill, naming what is missing.
    let mut names: Vec<_> = std::fs::read_dir(archive.join("segments"))
        .expect("segments")
        .map(|entry| entry.expect("entry").path())
        .collect();
    names.sort();
    std::fs::remove_file(&names[1]).expect("remove");
    let failed = run(
        dir.path(),
        &["restore", "--from", &file_url(&archive), "--verify-only"],
        false,
    );
    let message = stderr(&failed);
    assert!(message.contains("are missing"), "{message}");
    let next = names[2]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(message.contains(&next), "{message} should name {next}");
}

/// Appends every batch, timing each answer; returns the acks and the mean latency.
async fn timed_appends(url: &str, seed: u64, n: usize) -> (Vec<(u64, Vec<u8>)>, Duration) {
    let mut acks = Vec::new();
    let mut total = Duration::ZERO;
    let batches = cohort_batches(seed, n);
    let count = batches.len() as u32;
    for batch in batches {
        let started = Instant::now();
        acks.extend(append(url, batch).await.expect("appended"));
        total += started.elapsed();
    }
    (acks, total / count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_after_archive_every_acknowledged_event_survives_a_lost_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("archive");

    // The latency cost, reported (not asserted: the machine is shared): the same batches with
    // and without waiting for the archive.
    let plain = Server::start(dir.path(), &["--data", "plain"]);
    let (_, plain_mean) = timed_appends(&plain.url, 5, 3).await;
    plain.stop();

    let server = Server::start(
        dir.path(),
        &[
            "--data",
            "data",
            "--archive",
            &file_url(&archive),
            "--ack-after-archive",
        ],
    );
    let (acks, archived_mean) = timed_appends(&server.url, 5, 3).await;
    eprintln!(
        "ack latency per batch: {plain_mean:?} without the archive, {archived_mean:?} with \
         --ack-after-archive (20 ms segment age + poll + directory fsyncs)"
    );
    // No clean shutdown, then the disk is gone.
    server.kill();
    std::fs::remove_dir_all(dir.path().join("data")).expect("the disk is lost");

    run(
        dir.path(),
        &[
            "restore",
            "--from",
            &file_url(&archive),
            "--data",
            "restored",
        ],
        true,
    );
    let log = EventLog::open(
        dir.path().join("restored"),
        LogOptions {
            create_if_missing: false,
            ..LogOptions::default()
        },
    )
    .expect("open the restored log");
    assert!(!acks.is_empty());
    for (seq, hash) in &acks {
        let event = log
            .get(*seq)
            .expect("read")
            .unwrap_or_else(|| panic!("acknowledged event {seq} is not in the restored log"));
        assert_eq!(&event.hash.0.to_vec(), hash, "event {seq}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_archive_lag_refuses_writes_naming_the_lag_while_the_archive_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("archive");
    let server = Server::start(
        dir.path(),
        &[
            "--data",
            "data",
            "--archive",
            &file_url(&archive),
            "--max-archive-lag",
            "5",
            "--archive-max-age-ms",
            "50",
        ],
    );
    // The object store goes away: no segment can be written to the archive directory any more.
    let segments = archive.join("segments");
    if segments.exists() {
        std::fs::remove_dir_all(&segments).expect("remove");
    }
    std::fs::write(&segments, b"not a directory").expect("block");
    // Data entry goes on until the lag passes the limit.
    let mut batches = cohort_batches(3, 2).into_iter();
    append(&server.url, batches.next().expect("enrolment"))
        .await
        .expect("the first batch is taken while the archive is not yet behind");
    let mut refused = None;
    for batch in batches {
        match append(&server.url, batch).await {
            Ok(_) => {}
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let status = refused.expect("writes are refused once the lag passes 5 events");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("--max-archive-lag 5") && status.message().contains("behind"),
        "{}",
        status.message()
    );
    server.kill();
}

fn key_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let rng = ring::rand::SystemRandom::new();
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let path = dir.join(name);
    std::fs::write(&path, der.as_ref()).expect("write key");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_head_verifies_its_log_and_fails_on_one_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("keys");
    let key = key_file(&keys, "head.p8");
    let key = key.display().to_string();
    let server = Server::start(dir.path(), &["--data", "data", "--head-key", &key]);
    for batch in cohort_batches(2, 2) {
        append(&server.url, batch).await.expect("appended");
    }
    // The same head through the Audit service.
    let mut client = myolog_proto::v1::audit_client::AuditClient::connect(server.url.clone())
        .await
        .expect("connect");
    let served = client
        .get_signed_head(myolog_proto::v1::GetSignedHeadRequest {})
        .await
        .expect("signed head")
        .into_inner();
    server.stop();
    std::fs::write(dir.path().join("served.json"), &served.signed_head_json).expect("write");

    // A key on the data volume is refused.
    let inside = key_file(&dir.path().join("data"), "head.p8");
    let refused = run(
        dir.path(),
        &[
            "head",
            "--data",
            "data",
            "--sign",
            &inside.display().to_string(),
        ],
        false,
    );
    assert!(
        stderr(&refused).contains("data volume"),
        "{}",
        stderr(&refused)
    );
    std::fs::remove_file(inside).expect("remove");

    run(
        dir.path(),
        &[
            "head",
            "--data",
            "data",
            "--sign",
            &key,
            "--out",
            "head.json",
        ],
        true,
    );
    let public = stdout(&run(
        dir.path(),
        &["head", "--sign", &key, "--public-key"],
        true,
    ));
    let public = public.trim();
    for head in ["head.json", "served.json"] {
        let ok = run(
            dir.path(),
            &[
                "verify", "--data", "data", "--head", head, "--pubkey", public, "--exact",
            ],
            true,
        );
        assert!(stdout(&ok).contains("signed head ok"), "{}", stdout(&ok));
    }

    // A copy differing in one byte of its last event (recorded-by), re-hashed so its own chain
    // verifies: the signed head tells it apart.
    let original = EventLog::open(dir.path().join("data"), LogOptions::default()).expect("open");
    let events: Vec<StoredEvent> = original
        .read_stored_range(1..=original.head().seq)
        .collect::<Result<_, _>>()
        .expect("read");
    drop(original);
    let copy = EventLog::open(dir.path().join("copy"), LogOptions::default()).expect("open");
    let (last, before) = events.split_last().expect("events");
    copy.append_replicated(before).expect("copy");
    let mut canonical = last.canonical.clone();
    // The byte before the 32-byte previous hash is the last of recorded-by.
    let at = canonical.len() - 33;
    canonical[at] = if canonical[at] == b'a' { b'b' } else { b'a' };
    let hash = myolog_storage::canonical_hash(&canonical);
    let altered = StoredEvent::from_canonical(canonical, hash).expect("still an event");
    copy.append_replicated(&[altered])
        .expect("the altered event chains");
    drop(copy);
    verify_line(dir.path(), &dir.path().join("copy"));
    let mismatch = myolog_cmd_status(
        dir.path(),
        &[
            "verify",
            "--data",
            "copy",
            "--head",
            "head.json",
            "--pubkey",
            public,
        ],
    );
    assert_eq!(mismatch.0, Some(3), "{}", mismatch.1);
    assert!(mismatch.1.contains("MISMATCH"), "{}", mismatch.1);
}

fn myolog_cmd_status(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = common::myolog(dir).args(args).output().expect("runs");
    (
        output.status.code(),
        format!("{}{}", stdout(&output), stderr(&output)),
    )
}
