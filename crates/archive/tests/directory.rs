//! The archive on a directory target: ship, lose the disk, restore; point-in-time restores;
//! damaged archives named by segment; epochs and create-only objects; the background archiver.
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{append_events, copy_dir, open, reopen, stored};
use myolog_archive::{
    ArchiveError, ArchiveTarget, Archiver, RestoreOptions, RestorePoint, SegmentName,
    SegmentPolicy, SegmentWriter, archive_log, restore, verify_archive,
};

fn segment_files(archive: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(archive.join("segments"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_then_lose_the_disk_then_restore_gives_back_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("log");
    let archive_path = dir.path().join("archive");
    let target = ArchiveTarget::local_directory(&archive_path).unwrap();

    let log = open(&log_path);
    append_events(&log, "first", 2_500);
    let report = archive_log(&log, &target, 1, 1_000).await.unwrap();
    assert_eq!(report.archived, log.head());
    assert_eq!(
        report
            .sealed
            .iter()
            .map(|name| (name.first_seq, name.last_seq))
            .collect::<Vec<_>>(),
        [(1, 1000), (1001, 2000), (2001, 2500)]
    );
    assert_eq!(
        segment_files(&archive_path)[0],
        "00000000000000000001-00000000000000001000.e0001.seg"
    );
    // Nothing new: nothing shipped. Then more events: shipping resumes after the last segment.
    assert!(
        archive_log(&log, &target, 1, 1_000)
            .await
            .unwrap()
            .sealed
            .is_empty()
    );
    append_events(&log, "second", 300);
    let resumed = archive_log(&log, &target, 1, 1_000).await.unwrap();
    assert_eq!(
        resumed.sealed,
        [SegmentName {
            first_seq: 2501,
            last_seq: 2800,
            epoch: 1
        }]
    );
    let original = stored(&log);
    let original_head = log.head();
    drop(log);

    // The disk is lost.
    std::fs::remove_dir_all(&log_path).unwrap();

    let drill = verify_archive(&target, None).await.unwrap();
    assert_eq!(
        (drill.head, drill.segments, drill.events_appended),
        (original_head, 4, 0)
    );
    assert!(!log_path.exists(), "a drill writes no log");

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
    assert_eq!(restored.head, original_head);
    assert_eq!(restored.events_appended, original_head.seq);
    assert_eq!(
        restored.head_recorded_at_unix_nanos,
        Some(original.last().unwrap().recorded_at_unix_nanos)
    );
    let log = reopen(&log_path);
    assert_eq!(log.head(), original_head);
    // Same sequences, recorded-at times, hashes and bytes.
    assert_eq!(stored(&log), original);
    let verified = log.verify().unwrap();
    assert!(verified.is_intact(), "{verified:?}");
    assert_eq!(verified.events_checked, original_head.seq);
    // The restored log serves like the original: its indexes know every event id and stream.
    let event = log.get_by_event_id("first-17").unwrap().unwrap();
    assert_eq!(event.seq, 18);
    assert_eq!(log.stream_version("study/subject-3").unwrap(), 400);
    // And archiving the restored log into the same archive finds nothing to ship.
    assert!(
        archive_log(&log, &target, 2, 1_000)
            .await
            .unwrap()
            .sealed
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_in_time_restore_is_the_originals_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let target = ArchiveTarget::local_directory(&dir.path().join("archive")).unwrap();
    let log = open(&dir.path().join("log"));
    append_events(&log, "e", 1_200);
    archive_log(&log, &target, 1, 500).await.unwrap();
    let original = stored(&log);

    let by_seq = dir.path().join("by-seq");
    let report = restore(
        &target,
        &by_seq,
        RestoreOptions {
            as_of: Some(RestorePoint::Seq(777)),
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.head.seq, 777);
    let restored = reopen(&by_seq);
    assert_eq!(stored(&restored), original[..777]);
    assert!(restored.verify().unwrap().is_intact());

    // By time: every event recorded at or before the recorded-at of event 1001, which ends a
    // batch or not; the batch's later events share its time and come along.
    let moment = original[1000].recorded_at_unix_nanos;
    let expected = original
        .iter()
        .take_while(|event| event.recorded_at_unix_nanos <= moment)
        .count();
    assert!(expected > 1000 && expected < original.len());
    let by_time = dir.path().join("by-time");
    let report = restore(
        &target,
        &by_time,
        RestoreOptions {
            as_of: Some(RestorePoint::RecordedAt(moment)),
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.head.seq, expected as u64);
    let restored = reopen(&by_time);
    assert_eq!(stored(&restored), original[..expected]);
    assert!(restored.verify().unwrap().is_intact());

    let beyond = verify_archive(&target, Some(RestorePoint::Seq(5_000))).await;
    assert!(
        matches!(
            beyond,
            Err(ArchiveError::AsOfBeyondArchive {
                requested: 5_000,
                archived: 1_200
            })
        ),
        "{beyond:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_restore_continues_and_a_foreign_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = ArchiveTarget::local_directory(&dir.path().join("archive")).unwrap();
    let log = open(&dir.path().join("log"));
    append_events(&log, "e", 900);
    archive_log(&log, &target, 1, 400).await.unwrap();
    let original = stored(&log);

    let partial = dir.path().join("partial");
    restore(
        &target,
        &partial,
        RestoreOptions {
            as_of: Some(RestorePoint::Seq(450)),
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    let report = restore(
        &target,
        &partial,
        RestoreOptions {
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.events_appended, 450);
    assert_eq!(stored(&reopen(&partial)), original);

    // A log with another history is neither restored into nor archived into this archive.
    let other = dir.path().join("other");
    {
        let other_log = open(&other);
        append_events(&other_log, "other", 10);
        let refused = archive_log(&other_log, &target, 1, 400).await;
        assert!(
            matches!(refused, Err(ArchiveError::ArchiveAheadOfLog { .. })),
            "{refused:?}"
        );
    }
    let refused = restore(
        &target,
        &other,
        RestoreOptions {
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await;
    assert!(
        matches!(refused, Err(ArchiveError::ForeignLog { seq: 10, .. })),
        "{refused:?}"
    );
}

/// Archives 1,000 events in segments of 200 and returns the archive directory.
async fn five_segments(dir: &Path) -> std::path::PathBuf {
    let archive = dir.join("archive");
    let target = ArchiveTarget::local_directory(&archive).unwrap();
    let log = open(&dir.join("log"));
    append_events(&log, "e", 1_000);
    archive_log(&log, &target, 3, 200).await.unwrap();
    assert_eq!(segment_files(&archive).len(), 5);
    archive
}

/// Damages a copy of the archive with `damage`, then checks that a drill and a restore both fail
/// and that the error names `culprit`.
async fn check_named(
    archive: &Path,
    case: &str,
    culprit: &str,
    damage: impl FnOnce(&Path),
) -> String {
    let copy = archive.with_file_name(format!("damaged-{case}"));
    copy_dir(archive, &copy);
    damage(&copy.join("segments"));
    let target = ArchiveTarget::local_directory(&copy).unwrap();
    let drill = verify_archive(&target, None).await.unwrap_err().to_string();
    println!("{case}: {drill}");
    assert!(
        drill.contains(culprit),
        "{case}: {drill:?} does not name {culprit}"
    );
    let log_dir = archive.with_file_name(format!("restored-{case}"));
    let restore_error = restore(
        &target,
        &log_dir,
        RestoreOptions {
            log_options: common::options(),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(restore_error.contains(culprit), "{case}: {restore_error:?}");
    drill
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_missing_duplicated_or_reordered_segment_is_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let archive = five_segments(dir.path()).await;
    let files = segment_files(&archive);
    let third = files[2].clone();

    // One byte of an event payload altered: the checksum no longer matches.
    let message = check_named(&archive, "tampered", &third, |segments| {
        let path = segments.join(&third);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    })
    .await;
    assert!(message.contains("checksum"), "{message}");

    // Altered by someone who also recomputed the checksum: an event hash no longer matches.
    let message = check_named(&archive, "rechecksummed", &third, |segments| {
        let path = segments.join(&third);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        let body = bytes.len() - 32;
        let checksum = ring::digest::digest(&ring::digest::SHA256, &bytes[..body]);
        bytes[body..].copy_from_slice(checksum.as_ref());
        std::fs::write(&path, bytes).unwrap();
    })
    .await;
    assert!(!message.contains("checksum"), "{message}");

    // A segment deleted: the gap is reported with the segment after it.
    let fourth = files[3].clone();
    let message = check_named(&archive, "missing", &fourth, |segments| {
        std::fs::remove_file(segments.join(&third)).unwrap();
    })
    .await;
    assert!(message.contains("401..=600"), "{message}");

    // A segment duplicated under another writer's epoch.
    let duplicate = third.replace(".e0003.", ".e0004.");
    check_named(&archive, "duplicated", &duplicate, |segments| {
        std::fs::copy(segments.join(&third), segments.join(&duplicate)).unwrap();
    })
    .await;

    // Two segments' names swapped: their headers disagree with their names.
    let second = files[1].clone();
    check_named(&archive, "reordered", &second, |segments| {
        let swap = segments.join("swap");
        std::fs::rename(segments.join(&second), &swap).unwrap();
        std::fs::rename(segments.join(&third), segments.join(&second)).unwrap();
        std::fs::rename(&swap, segments.join(&third)).unwrap();
    })
    .await;

    // An object that is not a segment is never skipped.
    check_named(&archive, "stray", "notes.txt", |segments| {
        std::fs::write(segments.join("notes.txt"), b"hello").unwrap();
    })
    .await;

    // The undamaged archive still restores.
    let target = ArchiveTarget::local_directory(&archive).unwrap();
    assert_eq!(verify_archive(&target, None).await.unwrap().head.seq, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_epoch_is_refused_and_no_writer_overwrites_another() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let target = ArchiveTarget::local_directory(&archive).unwrap();
    let log = open(&dir.path().join("log"));
    append_events(&log, "e", 300);
    let events = stored(&log);

    // Two writers of epoch 7 start on the same empty archive and seal the same events: the first
    // wins, the second is refused and the first's object is untouched.
    let mut first = SegmentWriter::open(target.clone(), 7).await.unwrap();
    let mut second = SegmentWriter::open(target.clone(), 7).await.unwrap();
    let name = first.seal(events[..100].to_vec()).await.unwrap();
    let path = archive.join("segments").join(name.file_name());
    let before = std::fs::read(&path).unwrap();
    let refused = second.seal(events[..100].to_vec()).await;
    assert!(
        matches!(refused, Err(ArchiveError::AlreadyExists { .. })),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // Epoch 8 takes over; epoch 7 can no longer seal anything, nor can a new writer of epoch 7.
    let report = archive_log(&log, &target, 8, 100).await.unwrap();
    assert_eq!(report.archived.seq, 300);
    let fenced = first.seal(events[100..150].to_vec()).await;
    assert!(
        matches!(fenced, Err(ArchiveError::Fenced { epoch: 7, newer: 8 })),
        "{fenced:?}"
    );
    let fenced = SegmentWriter::open(target.clone(), 7).await;
    assert!(
        matches!(fenced, Err(ArchiveError::Fenced { epoch: 7, newer: 8 })),
        "{fenced:?}"
    );
    let fenced = archive_log(&log, &target, 2, 100).await;
    assert!(
        matches!(fenced, Err(ArchiveError::Fenced { .. })),
        "{fenced:?}"
    );
    // Every object the archive holds was written once: the segments chain 1..=300.
    assert_eq!(
        verify_archive(&target, None).await.unwrap().head,
        log.head()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_archiver_seals_by_count_and_by_age_and_reports_lag() {
    let dir = tempfile::tempdir().unwrap();
    let target = ArchiveTarget::local_directory(&dir.path().join("archive")).unwrap();
    // The system clock: the age limit is measured against recorded-at.
    let log = myolog_storage::EventLog::open(
        dir.path().join("log"),
        myolog_storage::LogOptions::default(),
    )
    .unwrap();
    let policy = SegmentPolicy {
        max_events: 100,
        max_age: Duration::from_millis(400),
    };
    let mut archiver = Archiver::start(log.clone(), target.clone(), 1, policy)
        .await
        .unwrap();
    let lag = archiver.lag_handle();
    append_events(&log, "e", 250);

    // By count: two full segments at once, 50 events left waiting, younger than the age limit.
    let sealed = archiver.seal_due(false).await.unwrap();
    assert_eq!(
        sealed.iter().map(|name| name.last_seq).collect::<Vec<_>>(),
        [100, 200]
    );
    let now = lag.get();
    assert_eq!(
        (now.archived_seq, now.durable_seq, now.events_behind),
        (200, 250, 50)
    );
    assert!(now.seconds_behind < 0.4, "{now:?}");
    assert_eq!(now.segments_sealed, 2);

    // By age: once the oldest waiting event is older than the limit.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let sealed = archiver.seal_due(false).await.unwrap();
    assert_eq!(
        sealed.iter().map(|name| name.last_seq).collect::<Vec<_>>(),
        [250]
    );
    assert_eq!(lag.get().events_behind, 0);

    // Running in the background: events appended while it runs are sealed within the age limit,
    // and a shutdown ships the rest.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(archiver.run(async {
        let _ = stopped.await;
    }));
    append_events(&log, "late", 30);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lag.get().archived_seq < 280 {
        assert!(
            std::time::Instant::now() < deadline,
            "not sealed by age: {:?}",
            lag.get()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    append_events(&log, "last", 5);
    stop.send(()).unwrap();
    let archived = running.await.unwrap().unwrap();
    assert_eq!(archived, log.head());
    assert_eq!(
        verify_archive(&target, None).await.unwrap().head,
        log.head()
    );
}

/// The epoch markers in the archive's `epochs/` folder.
fn epoch_files(archive: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(archive.join("epochs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_catches_up_claims_the_next_epoch_and_refuses_a_foreign_log() {
    let dir = tempfile::tempdir().unwrap();
    let archive_path = dir.path().join("archive");
    let target = ArchiveTarget::local_directory(&archive_path).unwrap();
    let primary = open(&dir.path().join("primary"));
    append_events(&primary, "p", 700);
    archive_log(&primary, &target, 5, 100).await.unwrap();

    // A follower holding the first 250 events (a point-in-time copy of the archive).
    let follower_path = dir.path().join("follower");
    restore(
        &target,
        &follower_path,
        RestoreOptions {
            as_of: Some(RestorePoint::Seq(250)),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    let report = myolog_archive::promote(&target, &follower_path, common::options())
        .await
        .unwrap();
    assert_eq!(report.archived, primary.head());
    assert_eq!(report.log_head, primary.head());
    assert_eq!(report.events_appended, 450);
    assert_eq!((report.previous_epoch, report.epoch), (Some(5), 6));
    assert_eq!(
        myolog_archive::recorded_epoch(&follower_path).unwrap(),
        Some(6)
    );
    // Every start on the volume keeps the epoch, whatever it asks for.
    assert_eq!(
        myolog_archive::writer_epoch(&follower_path, Some(1)).unwrap(),
        6
    );
    // The old primary's epoch is fenced off, without writing anything.
    let segments = segment_files(&archive_path);
    assert!(matches!(
        archive_log(&primary, &target, 5, 100).await,
        Err(ArchiveError::Fenced { epoch: 5, newer: 6 })
    ));
    assert_eq!(segment_files(&archive_path), segments);

    // Promotions never share an epoch: a second one takes 7.
    let again = dir.path().join("again");
    let report = myolog_archive::promote(&target, &again, common::options())
        .await
        .unwrap();
    assert_eq!((report.events_appended, report.epoch), (700, 7));

    // A log ahead of the archive is kept when it continues the archive.
    let ahead_path = dir.path().join("ahead");
    copy_dir(&dir.path().join("primary"), &ahead_path);
    let ahead = reopen(&ahead_path);
    append_events(&ahead, "unarchived", 30);
    drop(ahead);
    let report = myolog_archive::promote(&target, &ahead_path, common::options())
        .await
        .unwrap();
    assert_eq!((report.log_head.seq, report.events_appended), (730, 0));

    // Another log's volume is refused, and neither the archive nor the volume gets an epoch.
    let foreign_path = dir.path().join("foreign");
    let foreign = open(&foreign_path);
    append_events(&foreign, "other", 800);
    drop(foreign);
    let epochs = epoch_files(&archive_path);
    let refused = myolog_archive::promote(&target, &foreign_path, common::options()).await;
    assert!(
        matches!(refused, Err(ArchiveError::ForeignLog { seq: 700, .. })),
        "{refused:?}"
    );
    assert_eq!(epoch_files(&archive_path), epochs);
    assert_eq!(myolog_archive::recorded_epoch(&foreign_path).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_promotions_never_share_an_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let target = ArchiveTarget::local_directory(&dir.path().join("archive")).unwrap();
    target.claim_next_epoch(0).await.unwrap();
    let claims: Vec<_> = (0..8)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move { target.claim_next_epoch(0).await })
        })
        .collect();
    let mut epochs = Vec::new();
    for claim in claims {
        epochs.push(claim.await.unwrap().unwrap());
    }
    epochs.sort_unstable();
    assert_eq!(epochs, (2..=9).collect::<Vec<u64>>());
    // `after` raises the floor: a volume's recorded epoch above the archive's.
    assert_eq!(target.claim_next_epoch(20).await.unwrap(), 21);
}
