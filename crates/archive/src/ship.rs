//! Shipping the log to an archive: [`archive_log`] ships everything durable once (a stopped or a
//! running log), [`Archiver`] runs in the background and seals a segment whenever enough events
//! wait or the oldest has waited long enough, and reports its lag as an [`ArchiveLag`].
//!
//! Both resume where the archive ends: the last segment is read back and its chain hash compared
//! with the log's event of the same sequence, so an archive of another log is refused rather than
//! continued.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use myolog_storage::{EventLog, Head, StoredEvent, unix_nanos_from_system_time};

use crate::error::ArchiveError;
use crate::segment::{SEGMENT_FOLDER, Segment, SegmentName};
use crate::target::ArchiveTarget;

/// When the archiver seals a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentPolicy {
    /// Seal as soon as this many events wait. Default: 1,000.
    pub max_events: usize,
    /// Seal whatever waits once the oldest waiting event was recorded this long ago: the most a
    /// lost disk can lose. Default: 5 s.
    pub max_age: Duration,
}

impl Default for SegmentPolicy {
    fn default() -> Self {
        SegmentPolicy {
            max_events: 1_000,
            max_age: Duration::from_secs(5),
        }
    }
}

/// Seals segments of one log into one archive as the writer of one epoch.
#[derive(Debug)]
pub struct SegmentWriter {
    target: ArchiveTarget,
    epoch: u64,
    /// The last archived event (seq 0 and zeros for an empty archive).
    archived: Head,
}

impl SegmentWriter {
    /// Claims `epoch` on `target` and finds where the archive ends. Refused with
    /// [`ArchiveError::Fenced`] if a newer epoch has claimed the archive.
    pub async fn open(target: ArchiveTarget, epoch: u64) -> Result<SegmentWriter, ArchiveError> {
        let writer = SegmentWriter::find_end(target, epoch).await?;
        writer.claim().await?;
        Ok(writer)
    }

    /// [`SegmentWriter::open`] for shipping `log`, which must hold the archive as its prefix: that
    /// is checked before the epoch is claimed, so a server started on the wrong volume (or an old
    /// primary whose log the archive has moved past) is refused without touching the archive.
    pub async fn open_for_log(
        log: &EventLog,
        target: ArchiveTarget,
        epoch: u64,
    ) -> Result<SegmentWriter, ArchiveError> {
        let writer = SegmentWriter::find_end(target, epoch).await?;
        writer.check_matches(log).await?;
        writer.claim().await?;
        Ok(writer)
    }

    /// Refuses a fenced `epoch` and reads where the archive ends, writing nothing.
    async fn find_end(target: ArchiveTarget, epoch: u64) -> Result<SegmentWriter, ArchiveError> {
        target.check_not_fenced(epoch, true).await?;
        let archived = match target.segments().await?.last() {
            None => Head::default(),
            Some(last) => {
                let bytes = target.get(SEGMENT_FOLDER, &last.file_name()).await?;
                let segment =
                    Segment::decode(&bytes, last).map_err(|problem| ArchiveError::Segment {
                        name: *last,
                        problem,
                    })?;
                Head {
                    seq: segment.last_seq(),
                    hash: segment.chain_after(),
                }
            }
        };
        Ok(SegmentWriter {
            target,
            epoch,
            archived,
        })
    }

    /// Records this writer's epoch in the archive, then checks no newer one claimed it meanwhile.
    async fn claim(&self) -> Result<(), ArchiveError> {
        self.target.claim_epoch(self.epoch).await?;
        self.target.check_not_fenced(self.epoch, false).await
    }

    /// The last archived event.
    pub fn archived(&self) -> Head {
        self.archived
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Seals `events`, which must continue the archive, as one create-only segment object.
    pub async fn seal(&mut self, events: Vec<StoredEvent>) -> Result<SegmentName, ArchiveError> {
        let segment = Segment {
            epoch: self.epoch,
            chain_before: self.archived.hash,
            events,
        };
        let name = segment.name();
        // What is sealed must chain exactly onto what is archived, and every event must be what a
        // restore will accept, before the bytes leave.
        segment
            .check_events(self.archived.seq + 1)
            .map_err(|problem| ArchiveError::Segment { name, problem })?;
        let bytes = segment.encode();
        self.target.check_not_fenced(self.epoch, false).await?;
        self.target
            .put_new(SEGMENT_FOLDER, &name.file_name(), bytes)
            .await?;
        self.archived = Head {
            seq: segment.last_seq(),
            hash: segment.chain_after(),
        };
        Ok(name)
    }

    /// Checks that the archive so far is a prefix of `log`: the log holds the last archived event
    /// with the same hash.
    async fn check_matches(&self, log: &EventLog) -> Result<(), ArchiveError> {
        let archived = self.archived;
        if archived.seq == 0 {
            return Ok(());
        }
        let reader = log.clone();
        let event = tokio::task::spawn_blocking(move || reader.get(archived.seq))
            .await
            .map_err(ArchiveError::task)??;
        match event {
            None => Err(ArchiveError::ArchiveAheadOfLog {
                archived: archived.seq,
                head: log.head().seq,
            }),
            Some(event) if event.hash != archived.hash => Err(ArchiveError::ForeignLog {
                seq: archived.seq,
                archived: archived.hash,
                log: event.hash,
            }),
            Some(_) => Ok(()),
        }
    }
}

/// Durable events `from..=to` of `log`, read on a blocking thread.
async fn read_stored(log: &EventLog, from: u64, to: u64) -> Result<Vec<StoredEvent>, ArchiveError> {
    let reader = log.clone();
    tokio::task::spawn_blocking(move || {
        reader
            .read_stored_range(from..=to)
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(ArchiveError::task)?
    .map_err(ArchiveError::from)
}

/// What [`archive_log`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveReport {
    /// The segments sealed by this call, in order.
    pub sealed: Vec<SegmentName>,
    /// The last archived event after the call.
    pub archived: Head,
}

/// Ships every durable event of `log` not yet in the archive, in segments of at most
/// `max_events`, the last one possibly shorter. Resumable: starts after the archive's last
/// segment. `log` may be running; events committed during the call may or may not be shipped.
pub async fn archive_log(
    log: &EventLog,
    target: &ArchiveTarget,
    epoch: u64,
    max_events: usize,
) -> Result<ArchiveReport, ArchiveError> {
    let mut writer = SegmentWriter::open_for_log(log, target.clone(), epoch).await?;
    let max_events = max_events.max(1) as u64;
    let head = log.head().seq;
    let mut sealed = Vec::new();
    while writer.archived().seq < head {
        let from = writer.archived().seq + 1;
        let to = head.min(from.saturating_add(max_events - 1));
        let events = read_stored(log, from, to).await?;
        sealed.push(writer.seal(events).await?);
    }
    Ok(ArchiveReport {
        sealed,
        archived: writer.archived(),
    })
}

/// How far the archive is behind the log: what a metrics endpoint reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArchiveLag {
    /// The last archived sequence.
    pub archived_seq: u64,
    /// The log's durable head when the archiver last looked.
    pub durable_seq: u64,
    /// `durable_seq - archived_seq`: what a lost disk would lose now.
    pub events_behind: u64,
    /// Age of the oldest unarchived event (0 when nothing waits).
    pub seconds_behind: f64,
    /// Segments this archiver has sealed.
    pub segments_sealed: u64,
    /// The last failure (a store error the archiver retries), cleared by the next success.
    pub last_error: Option<String>,
    /// The epoch this archiver writes as: after a promotion, operators check that the new
    /// primary took the next one and the old primary is fenced off.
    pub writer_epoch: u64,
}

/// A reader of an [`Archiver`]'s lag, cheap to clone, usable from any thread.
#[derive(Clone, Debug, Default)]
pub struct LagHandle(Arc<Mutex<ArchiveLag>>);

impl LagHandle {
    pub fn get(&self) -> ArchiveLag {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut ArchiveLag)) {
        change(
            &mut self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }
}

/// The background archiver of a running log (see the module docs).
#[derive(Debug)]
pub struct Archiver {
    log: EventLog,
    writer: SegmentWriter,
    policy: SegmentPolicy,
    lag: LagHandle,
}

impl Archiver {
    /// Claims `epoch` on `target`, checks the archive is a prefix of `log` and resumes after it.
    pub async fn start(
        log: EventLog,
        target: ArchiveTarget,
        epoch: u64,
        policy: SegmentPolicy,
    ) -> Result<Archiver, ArchiveError> {
        let writer = SegmentWriter::open_for_log(&log, target, epoch).await?;
        let lag = LagHandle::default();
        lag.update(|lag| {
            lag.archived_seq = writer.archived().seq;
            lag.writer_epoch = writer.epoch();
        });
        Ok(Archiver {
            log,
            writer,
            policy: SegmentPolicy {
                max_events: policy.max_events.max(1),
                max_age: policy.max_age,
            },
            lag,
        })
    }

    pub fn lag_handle(&self) -> LagHandle {
        self.lag.clone()
    }

    /// The last archived event.
    pub fn archived(&self) -> Head {
        self.writer.archived()
    }

    /// Seals every full segment waiting and, if the oldest waiting event is older than the age
    /// limit (or `flush_all`), the rest. Returns what was sealed.
    pub async fn seal_due(&mut self, flush_all: bool) -> Result<Vec<SegmentName>, ArchiveError> {
        let max_events = self.policy.max_events as u64;
        let mut sealed = Vec::new();
        loop {
            let head = self.log.head().seq;
            let from = self.writer.archived().seq + 1;
            if from > head {
                self.report(head, None);
                return Ok(sealed);
            }
            let waiting = head - from + 1;
            // Only the oldest waiting event's age matters until a segment is due.
            let oldest = read_stored(&self.log, from, from).await?;
            let age = age_seconds(
                oldest
                    .first()
                    .map_or(i64::MAX, |event| event.recorded_at_unix_nanos),
            );
            let due =
                flush_all || waiting >= max_events || age >= self.policy.max_age.as_secs_f64();
            if !due {
                self.report(head, Some(age));
                return Ok(sealed);
            }
            let to = head.min(from.saturating_add(max_events - 1));
            let events = read_stored(&self.log, from, to).await?;
            sealed.push(self.writer.seal(events).await?);
            self.lag.update(|lag| lag.segments_sealed += 1);
            // Reported after every segment, not only once caught up: under load a catch-up takes
            // many segments, and the metrics, health details, --max-archive-lag and
            // --ack-after-archive read this report meanwhile. The age is the oldest event's before
            // this segment, an upper bound until the next poll measures again.
            self.report(head, Some(age));
        }
    }

    fn report(&self, durable_seq: u64, oldest_age: Option<f64>) {
        let archived_seq = self.writer.archived().seq;
        self.lag.update(|lag| {
            lag.archived_seq = archived_seq;
            lag.durable_seq = durable_seq.max(archived_seq);
            lag.events_behind = durable_seq.saturating_sub(archived_seq);
            lag.seconds_behind = oldest_age.unwrap_or(0.0);
            lag.last_error = None;
        });
    }

    /// Runs until `shutdown` completes, then ships everything durable and returns. A store error
    /// is recorded in the lag and retried at the next poll; being fenced off by a newer epoch
    /// ends the run with [`ArchiveError::Fenced`].
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<Head, ArchiveError> {
        let poll =
            (self.policy.max_age / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(poll) => {}
            }
            match self.seal_due(false).await {
                Ok(_) => {}
                Err(error @ (ArchiveError::Fenced { .. } | ArchiveError::ForeignLog { .. })) => {
                    return Err(error);
                }
                Err(error) => {
                    let message = error.to_string();
                    self.lag.update(|lag| lag.last_error = Some(message));
                }
            }
        }
        self.seal_due(true).await?;
        Ok(self.writer.archived())
    }
}

/// Seconds since `recorded_at_unix_nanos` (0 for a time in the future).
fn age_seconds(recorded_at_unix_nanos: i64) -> f64 {
    let now = unix_nanos_from_system_time(SystemTime::now());
    let nanos = now.saturating_sub(recorded_at_unix_nanos).max(0);
    nanos as f64 / 1e9
}
