//! The archive on a real S3-compatible server: moto's standalone server (`moto[server]`, pinned in
//! the workspace's `requirements-test.txt`) on a free loopback port. The scenario runs in a child
//! process (this test binary re-executed) whose environment holds the S3 settings, because the
//! target reads them from the environment, as the server will: ship, lose the disk, restore;
//! point in time; create-only puts (moto honours `If-None-Match: *`); an older epoch fenced off;
//! an object altered in the bucket named by the drill.
//!
//! Without moto the test fails, saying how to install it: a backup path that was never tested
//! against S3 must not pass silently.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{append_events, open, reopen, stored};
use myolog_archive::{
    ArchiveError, ArchiveTarget, RestoreOptions, RestorePoint, SegmentWriter, archive_log, restore,
    verify_archive,
};

const CHILD_VAR: &str = "MYOLOG_TEST_S3_CHILD";
const BUCKET: &str = "myolog-archive-test";
const PASSED: &str = "S3 SCENARIO PASSED";

/// The moto server, stopped when dropped (also when the test fails).
struct Moto {
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_moto() -> (Moto, u16) {
    let check = Command::new("python3")
        .args(["-c", "import moto.server, flask, werkzeug"])
        .output();
    match check {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "moto's standalone server is not installed ({}): run `pip install -r \
             requirements-test.txt` at the workspace root",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!("python3 is needed to run moto's S3 server: {error}"),
    }
    // A port free a moment ago; moto binds it itself (it cannot report a port it chose).
    let port = free_loopback_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut moto = Moto { child };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = moto.child.try_wait().unwrap() {
            panic!("moto's server exited with {status} before listening on port {port}");
        }
        assert!(
            Instant::now() < deadline,
            "moto did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (moto, port)
}

/// Creates the bucket with a plain HTTP request (object_store does not create buckets; moto's
/// server accepts unsigned requests).
fn create_bucket(port: u16) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "creating the bucket: {response}"
    );
}

#[test]
fn archive_and_restore_through_a_real_s3_compatible_server() {
    let (moto, port) = start_moto();
    create_bucket(port);
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "s3_child_scenario",
            "--nocapture",
            "--test-threads=1",
        ])
        // Only these settings: nothing of the machine's own AWS configuration may leak in.
        .env_clear()
        .env(CHILD_VAR, "1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .unwrap();
    drop(moto);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(PASSED),
        "the S3 scenario failed:\n{stdout}\n{stderr}"
    );
}

/// The scenario, run only in the child that `archive_and_restore_through_a_real_s3_compatible_server`
/// starts with the S3 environment.
#[test]
fn s3_child_scenario() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(scenario());
    println!("{PASSED}");
}

async fn scenario() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("log");
    let target = ArchiveTarget::s3_from_env(BUCKET, "prod/myolog").unwrap();

    let log = open(&log_path);
    append_events(&log, "e", 2_300);
    let report = archive_log(&log, &target, 2, 1_000).await.unwrap();
    assert_eq!(report.sealed.len(), 3);
    assert_eq!(report.archived, log.head());
    let original = stored(&log);
    let head = log.head();
    drop(log);
    std::fs::remove_dir_all(&log_path).unwrap();

    // The disk is lost; the bucket brings every event back.
    let restored = restore(
        &target,
        &log_path,
        RestoreOptions {
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(restored.head, head);
    let log = reopen(&log_path);
    assert_eq!(stored(&log), original);
    assert!(log.verify().unwrap().is_intact());

    let as_of = dir.path().join("as-of");
    restore(
        &target,
        &as_of,
        RestoreOptions {
            as_of: Some(RestorePoint::Seq(1_500)),
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(stored(&reopen(&as_of)), original[..1_500]);

    // An older epoch is fenced off.
    let fenced = SegmentWriter::open(target.clone(), 1).await;
    assert!(
        matches!(fenced, Err(ArchiveError::Fenced { epoch: 1, newer: 2 })),
        "{fenced:?}"
    );

    // Create-only on S3: two writers of one epoch race for the same name with different
    // content (two histories); the second is refused and the first's object stays.
    let race = ArchiveTarget::s3_from_env(BUCKET, "race").unwrap();
    let other_path = dir.path().join("other");
    let other = open(&other_path);
    append_events(&other, "other", 10);
    let theirs = stored(&other);
    let mut first = SegmentWriter::open(race.clone(), 5).await.unwrap();
    let mut second = SegmentWriter::open(race.clone(), 5).await.unwrap();
    first.seal(original[..10].to_vec()).await.unwrap();
    let refused = second.seal(theirs).await;
    assert!(
        matches!(refused, Err(ArchiveError::AlreadyExists { .. })),
        "{refused:?}"
    );
    let kept = verify_archive(&race, None).await.unwrap();
    assert_eq!(kept.head.hash, original[9].hash);

    // An object altered in the bucket (by someone with write access) is named by the drill.
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(BUCKET)
        .build()
        .unwrap();
    let name = &report.sealed[1];
    let path = object_store::path::Path::from(format!("prod/myolog/{name}"));
    use object_store::ObjectStoreExt;
    let mut bytes = store
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    store.put(&path, bytes.into()).await.unwrap();
    let drill = verify_archive(&target, None).await.unwrap_err().to_string();
    assert!(drill.contains(&name.file_name()), "{drill}");
    println!("drill after tampering: {drill}");
}
