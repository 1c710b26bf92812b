//! `serve --archive s3://...` and `myolog restore --from s3://...` through the real binary against
//! moto's standalone S3 server (`moto[server]`, pinned in `requirements-test.txt`) on a loopback
//! port, credentials and endpoint only in the environment: a server archives a cohort, its log is
//! deleted, and the restore from the bucket verifies with the same head and replays identically;
//! the promotion drill (`common::promotion_drill`) on a bucket.
//!
//! Without moto the test fails, saying how to install it: a backup path never tested against S3
//! must not pass silently.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, append, cohort_batches, myolog, stdout};

const BUCKET: &str = "myolog-cli-test";

/// The moto server, stopped when dropped (also when the test fails).
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> (Moto, u16) {
    let check = Command::new("python3")
        .args(["-c", "import moto.server, flask, werkzeug"])
        .output()
        .expect("python3 is needed to run moto's S3 server");
    assert!(
        check.status.success(),
        "moto's standalone server is not installed ({}): run `pip install -r \
         requirements-test.txt` at the workspace root",
        String::from_utf8_lossy(&check.stderr).trim()
    );
    // A port free a moment ago; moto binds it itself (it cannot report a port it chose).
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
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
        .expect("moto starts");
    let mut moto = Moto(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = moto.0.try_wait() {
            panic!("moto exited with {status} before listening on port {port}");
        }
        assert!(Instant::now() < deadline, "moto did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (moto, port)
}

/// Creates the bucket with a plain HTTP request (moto accepts unsigned requests).
fn create_bucket(port: u16) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "creating the bucket: {response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_archived_to_s3_is_restored_from_the_bucket() {
    let (_moto, port) = start_moto();
    create_bucket(port);
    let env = moto_env(port);
    let url = format!("s3://{BUCKET}/stir");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with_env(
        dir.path(),
        &[
            "--data",
            "data",
            "--archive",
            &url,
            "--archive-segment-events",
            "50",
        ],
        &env,
    );
    for batch in cohort_batches(4, 3) {
        append(&server.url, batch).await.expect("appended");
    }
    server.stop();
    let run = |args: &[&str]| {
        let output = myolog(dir.path())
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .args(args)
            .output()
            .expect("myolog runs");
        assert!(
            output.status.success(),
            "myolog {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout(&output)
    };
    let verified = run(&["verify", "--data", "data"]);
    let replayed = run(&["replay", "--data", "data"]);
    std::fs::remove_dir_all(dir.path().join("data")).expect("the disk is lost");
    run(&["restore", "--from", &url, "--verify-only"]);
    run(&["restore", "--from", &url, "--data", "data"]);
    assert_eq!(run(&["verify", "--data", "data"]), verified);
    assert_eq!(run(&["replay", "--data", "data"]), replayed);
}

fn moto_env(port: u16) -> [(&'static str, String); 5] {
    [
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ]
}

/// Every object under `prefix/` in the bucket as "folder/name etag" (a plain ListObjectsV2, which
/// moto answers unsigned).
fn bucket_listing(port: u16, prefix: &str) -> Vec<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET /{BUCKET}?list-type=2&prefix={prefix}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "listing: {response}");
    assert!(
        !response.contains("<IsTruncated>true"),
        "listing cut: {response}"
    );
    let between = |text: &str, open: &str, close: &str| -> String {
        text.split_once(open)
            .and_then(|(_, rest)| rest.split_once(close))
            .map(|(inside, _)| inside.to_string())
            .unwrap_or_else(|| panic!("no {open} in {text}"))
    };
    let mut objects: Vec<String> = response
        .split("<Contents>")
        .skip(1)
        .map(|object| {
            let key = between(object, "<Key>", "</Key>");
            let name = key
                .strip_prefix(&format!("{prefix}/"))
                .unwrap_or(&key)
                .to_string();
            format!("{name} {}", between(object, "<ETag>", "</ETag>"))
        })
        .collect();
    objects.sort();
    objects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_an_s3_archive_is_promoted_and_the_old_primary_refused() {
    let (_moto, port) = start_moto();
    create_bucket(port);
    let env = moto_env(port);
    let dir = tempfile::tempdir().expect("tempdir");
    let listing = || bucket_listing(port, "promote");
    common::promotion_drill(
        dir.path(),
        &format!("s3://{BUCKET}/promote"),
        &env,
        &listing,
    )
    .await;
}
