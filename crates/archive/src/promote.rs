//! Promotion: making a log — a stopped follower's copy, or an empty volume — the archive's next
//! writer after the primary is lost, and the writer epoch a data volume keeps across restarts.
//!
//! [`promote`] holds the log open (so no server runs on it meanwhile), catches it up from the
//! archive, claims an epoch newer than every epoch the archive holds (found by listing it, never
//! typed in by the operator) and records that epoch on the volume. From then on
//! [`writer_epoch`] gives every start of a server on that volume the recorded epoch, so a
//! restarted primary keeps it while the old primary, still on its old epoch, is fenced off.
//!
//! This module is NOT the server's switch from follower to primary: it works on a log nobody
//! serves, and the server started on the volume afterwards is an ordinary primary.

use std::io::Write;
use std::path::{Path, PathBuf};

use myolog_storage::{EventLog, Head, LogOptions};

use crate::error::ArchiveError;
use crate::restore::restore_into;
use crate::target::ArchiveTarget;

/// The file, inside the log's directory, holding the writer epoch of the server on this volume:
/// the decimal epoch and a newline.
pub const EPOCH_RECORD_FILE: &str = "archive-writer-epoch";

/// What [`promote`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromoteReport {
    /// The archive's last event.
    pub archived: Head,
    /// Events copied from the archive into the log (0 when it was not behind).
    pub events_appended: u64,
    /// The log's head after the catch-up: the archive's, or beyond it when the log holds events
    /// the old primary had not archived yet (the new writer archives them first).
    pub log_head: Head,
    /// The newest epoch the archive held before the promotion (`None`: a new archive).
    pub previous_epoch: Option<u64>,
    /// The epoch claimed for the promoted writer and recorded on the volume.
    pub epoch: u64,
}

/// Promotes the log in `dir` (created if missing) to the writer of `target`: catches it up from
/// the archive, claims an epoch newer than any the archive or the volume holds, and records it
/// on the volume. Refused, writing no epoch, if the log is not the archive's prefix or
/// continuation ([`ArchiveError::ForeignLog`]) or the archive does not verify.
pub async fn promote(
    target: &ArchiveTarget,
    dir: &Path,
    log_options: LogOptions,
) -> Result<PromoteReport, ArchiveError> {
    let open_dir = dir.to_path_buf();
    let log = tokio::task::spawn_blocking(move || EventLog::open(open_dir, log_options))
        .await
        .map_err(ArchiveError::task)??;
    let before = log.head().seq;
    let caught_up = restore_into(target, Some(log.clone()), None, true).await?;
    let log_head = log.head();
    let recorded = recorded_epoch(dir)?;
    let previous_epoch = target.newest_epoch().await?;
    let epoch = target
        .claim_next_epoch(recorded.unwrap_or(0).max(previous_epoch.unwrap_or(0)))
        .await?;
    record_epoch(dir, epoch)?;
    tokio::task::spawn_blocking(move || drop(log))
        .await
        .map_err(ArchiveError::task)?;
    Ok(PromoteReport {
        archived: caught_up.head,
        events_appended: log_head.seq.saturating_sub(before),
        log_head,
        previous_epoch,
        epoch,
    })
}

/// The epoch a server on the log in `dir` archives with: the larger of the epoch recorded on
/// the volume and `requested` (the operator's setting, 1 when unset), recorded if it is new. A
/// recorded epoch is never lowered, so a restart with a stale setting keeps the promoted epoch.
/// Call it with the log open (the directory then holds the log's files).
pub fn writer_epoch(dir: &Path, requested: Option<u64>) -> Result<u64, ArchiveError> {
    let recorded = recorded_epoch(dir)?;
    let epoch = recorded.unwrap_or(0).max(requested.unwrap_or(1)).max(1);
    if recorded != Some(epoch) {
        record_epoch(dir, epoch)?;
    }
    Ok(epoch)
}

/// The epoch recorded in `dir`, if any.
pub fn recorded_epoch(dir: &Path) -> Result<Option<u64>, ArchiveError> {
    let path = dir.join(EPOCH_RECORD_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            parse_epoch_record(&bytes)
                .map(Some)
                .map_err(|problem| ArchiveError::EpochRecord {
                    path: path.display().to_string(),
                    problem,
                })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ArchiveError::LocalIo {
            action: "reading",
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The record's text: decimal digits of an epoch from 1 to u64::MAX, then one newline.
fn parse_epoch_record(bytes: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not text".to_string())?;
    let digits = text
        .strip_suffix('\n')
        .ok_or_else(|| "it does not end with a newline (cut short?)".to_string())?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!(
            "{digits:?} is not an epoch (decimal digits, 1 to {})",
            u64::MAX
        ));
    }
    match digits.parse::<u64>() {
        Ok(epoch) if epoch >= 1 => Ok(epoch),
        _ => Err(format!(
            "{digits} is not an epoch (decimal digits, 1 to {})",
            u64::MAX
        )),
    }
}

/// Writes the record atomically and durably: a temporary file, fsynced, renamed over the record,
/// then the directory fsynced; a crash leaves the old record or the new one, never a cut one.
fn record_epoch(dir: &Path, epoch: u64) -> Result<(), ArchiveError> {
    let path = dir.join(EPOCH_RECORD_FILE);
    let temporary = dir.join(format!("{EPOCH_RECORD_FILE}.new"));
    let io = |action: &'static str, path: &PathBuf| {
        let path = path.display().to_string();
        move |source| ArchiveError::LocalIo {
            action,
            path,
            source,
        }
    };
    let mut file = std::fs::File::create(&temporary).map_err(io("creating", &temporary))?;
    file.write_all(format!("{epoch}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("writing", &temporary))?;
    drop(file);
    std::fs::rename(&temporary, &path).map_err(io("renaming onto", &path))?;
    std::fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(io("fsync of", &dir.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(record: &[u8], expected: Result<u64, &str>) {
        let parsed = parse_epoch_record(record);
        match expected {
            Ok(epoch) => assert_eq!(parsed, Ok(epoch), "{record:?}"),
            Err(fragment) => {
                let problem = parsed.expect_err("refused");
                assert!(problem.contains(fragment), "{record:?}: {problem}");
            }
        }
    }

    #[test]
    fn epoch_records() {
        check(b"1\n", Ok(1));
        check(b"4\n", Ok(4));
        check(b"18446744073709551615\n", Ok(u64::MAX));
        check(b"18446744073709551616\n", Err("not an epoch"));
        check(b"0\n", Err("not an epoch"));
        check(b"4", Err("newline"));
        check(b"\n", Err("not an epoch"));
        check(b"+4\n", Err("not an epoch"));
        check(b" 4\n", Err("not an epoch"));
        check(b"4\n\n", Err("not an epoch"));
        check(b"\xff\n", Err("not text"));
    }

    #[test]
    fn a_recorded_epoch_is_kept_and_never_lowered() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(recorded_epoch(dir.path()).expect("read"), None);
        // check(requested, epoch used): each start on the same volume, in order.
        for (requested, expected) in [
            (None, 1),
            (Some(3), 3),
            (None, 3),
            (Some(2), 3),
            (Some(5), 5),
        ] {
            assert_eq!(
                writer_epoch(dir.path(), requested).expect("epoch"),
                expected,
                "requested {requested:?}"
            );
            assert_eq!(recorded_epoch(dir.path()).expect("read"), Some(expected));
        }
        std::fs::write(dir.path().join(EPOCH_RECORD_FILE), b"five\n").expect("write");
        let error = writer_epoch(dir.path(), None).expect_err("a damaged record is refused");
        assert!(error.to_string().contains(EPOCH_RECORD_FILE), "{error}");
    }
}
