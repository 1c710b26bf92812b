//! A tampered log: an attacker with disk access alters one stored event underneath the log (through
//! raw sled, as no API can). Verification must fail and name that first bad sequence, over gRPC
//! (`Audit.Verify`) and in the storage report `myolog verify` prints; the intact prefix still replays.

use myolog_audit::progress::Progress;
use myolog_audit::replay::{self, AsOf};
use myolog_cli::audit::open_log;
use myolog_proto::v1 as pb;
use myolog_storage::format;
use myolog_synth::Cohort;
use myolog_tests::{Clients, cohort_batches, start};

/// Opens the directory with raw sled, retrying while the log's own handle lets go of the file lock.
fn raw_sled(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(error) if std::time::Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("raw sled open of {}: {error}", path.display()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_event_is_named_by_verify_and_the_prefix_still_replays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    for batch in cohort_batches(&Cohort::new(2017, 3), true) {
        clients.append(batch).await;
    }
    let events = clients.read_all().await;
    server.stop().await.expect("server stops");
    let head = events.last().expect("events").sequence;
    // The correction: an attacker rewrites its reason in place.
    let victim = events
        .iter()
        .find(|e| e.event_type == "myolog.v1.AssessmentCorrected")
        .expect("a correction")
        .sequence;
    assert!(victim < head, "events follow the victim");

    let intact_before = {
        let log = open_log(dir.path()).expect("log opens");
        let report = log.verify().expect("verify runs");
        assert!(report.is_intact(), "{report:?}");
        drop(log);
        report
    };
    assert_eq!(intact_before.head.seq, head);

    tokio::task::spawn_blocking({
        let path = dir.path().to_path_buf();
        move || {
            let db = raw_sled(&path);
            let tree = db.open_tree(format::TREE_NAME).expect("tree");
            // The chunk holding the victim: the last chunk key at or before its seq.
            let (key, value) = tree
                .range(format::chunk_key(0)..=format::chunk_key(victim))
                .next_back()
                .expect("a chunk")
                .expect("read");
            let chunk = format::Chunk::parse(value.clone()).expect("chunk");
            let at = chunk
                .position_of(victim)
                .expect("the chunk holds the victim");
            let victim_bytes = chunk.stored(at).expect("stored event");
            let mut bytes = value.to_vec();
            let start = bytes
                .windows(victim_bytes.len())
                .position(|w| w == victim_bytes)
                .expect("the victim's bytes are in its chunk");
            let reason = victim_bytes
                .windows(13)
                .position(|w| w == b"transcription")
                .expect("the reason is stored in the payload");
            // Rewritten in place: the chunk's checksum is left as it was.
            bytes[start + reason] = b'T';
            tree.insert(key, bytes).expect("insert");
            db.flush().expect("flush");
        }
    })
    .await
    .expect("tamper task");

    // The storage report `myolog verify` prints, and its exit code's condition.
    let log = open_log(dir.path()).expect("tampered log still opens");
    let report = log.verify().expect("verify runs");
    let failure = report.first_bad.clone().expect("damage is found");
    assert_eq!(failure.seq, victim, "{failure}");
    assert_eq!(report.events_checked, victim - 1);
    assert!(failure.to_string().contains("content altered"), "{failure}");

    drop(log);
    // `myolog verify` exits 3 on damage (its report, printed, is the one checked above).
    let args = myolog_cli::command::VerifyArgs {
        data: dir.path().to_path_buf(),
        package: None,
        head: myolog_cli::archive::HeadCheckArgs::default(),
    };
    let exit = tokio::task::spawn_blocking(move || myolog_cli::command::verify(&args))
        .await
        .expect("verify task");
    assert_eq!(exit, std::process::ExitCode::from(3));
    let log = open_log(dir.path()).expect("tampered log still opens");

    // Replaying up to just before the damage still works and gives the intact prefix's chain hash.
    let prefix = replay::project(&log, AsOf::Sequence(victim - 1), &mut Progress::hidden())
        .expect("prefix replays");
    assert_eq!(
        prefix.chain_hash.to_hex(),
        events[usize::try_from(victim - 2).expect("index")]
            .hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    drop(prefix);
    tokio::task::spawn_blocking(move || drop(log))
        .await
        .expect("closed");

    // Over gRPC: a server on the tampered log reports the same first bad sequence.
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let verify = clients
        .audit
        .verify(pb::VerifyRequest {})
        .await
        .expect("verify call")
        .into_inner();
    assert!(!verify.ok);
    assert_eq!(verify.first_bad_sequence, victim);
    assert!(
        verify.reason.contains("content altered"),
        "{}",
        verify.reason
    );
    server.stop().await.expect("server stops");
}
