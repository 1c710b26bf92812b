//! The group commit, in two pipelined phases.
//!
//! sled does not merge concurrent flushes (16 threads appending one event each reach the same rate as
//! one thread), so the log merges them itself. Appenders queue their batch; the appender that finds
//! no apply in progress becomes the apply leader ([`Writer::apply_group`]): it takes every queued
//! batch, validates them in arrival order — each against the state left by the earlier accepted
//! batches, including those of earlier groups still being made durable — and writes the accepted
//! batches' chunks and then the head record, the group's commit point ([`Writer::insert_group`]).
//! It then hands the apply role on and
//! makes its group durable ([`Syncer::make_durable`]): ONE flush and fdatasync, which covers every
//! group applied so far, and only then answers its appenders. So the next group is validated and
//! applied while the previous one is being fsynced, and its sync may start while the previous one
//! is still running (up to [`SYNC_LANES`] at once). A batch that fails validation is answered at
//! once with its error and contributes nothing; the other batches of the group are unaffected.
//! Nothing is visible to readers before it is durable: readers stop at the durable head.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use crate::durability::DurableFiles;
use crate::error::{AppendError, StorageError};
use crate::event::{Appended, Clock, ExpectedVersion, Hash, Head, NewEvent};
use crate::format::{self, EventFields};
use crate::index::{Index, fingerprint};

/// Why an appender waiting in the queue is woken: its answer arrived, or the apply role was handed
/// to it (see `EventLog::append`). Each waiter is woken only for itself: a shared condition
/// variable woke every waiting appender at each hand-over and each answered group, and those
/// futile wake-ups were the largest cost of a 16-appender group commit on two cores.
#[derive(Debug)]
pub(crate) enum Wake {
    Answer(Result<Vec<Appended>, AppendError>),
    Lead,
}

/// Where an append's wake-ups go: a channel of capacity one. An appender still queued has no
/// answer yet and is offered the apply role at most once before it takes its own request out of
/// the queue, so the one slot is empty whenever something is sent: `try_send` never blocks and
/// never finds it full. (An unbounded channel would allocate and zero a 31-slot block for that one
/// message, on every append.)
pub(crate) type Reply = SyncSender<Wake>;

/// Sends an append its answer. An appender that gave up waiting is not an error of the log.
pub(crate) fn answer(reply: &Reply, result: Result<Vec<Appended>, AppendError>) {
    let _ = reply.try_send(Wake::Answer(result));
}

/// An append waiting for the writer.
#[derive(Debug)]
pub(crate) struct AppendRequest {
    /// Checked for shape in the caller's thread (see `EventLog::append`).
    pub events: Vec<NewEvent>,
    pub principal: String,
    pub reply: Reply,
}

/// The committed head, shared with readers; the condition variable wakes tailing readers.
#[derive(Debug, Default)]
pub(crate) struct HeadWatch {
    pub head: Mutex<Head>,
    pub advanced: Condvar,
}

impl HeadWatch {
    pub fn get(&self) -> Head {
        *self
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves the head forward (never back) and wakes tailing readers.
    fn advance(&self, head: Head) {
        let mut current = self
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if head.seq > current.seq {
            *current = head;
            self.advanced.notify_all();
        }
    }
}

/// State both phases see.
#[derive(Debug, Default)]
pub(crate) struct CommitShared {
    /// Seq and hash of the last event applied to sled (durable or not yet).
    pub applied: Mutex<Head>,
    /// Set once an apply or a sync failed: what is on disk is then unknown, so nothing more is
    /// acknowledged (after a failed fsync, Linux may have dropped the dirty pages, so even a later
    /// successful fsync would prove nothing).
    pub poisoned: Mutex<Option<String>>,
    /// Whether sled may have written, or may write, a blob file, which each sync must then find and
    /// fdatasync. False only while the log's small-values marker is present (see
    /// [`format::META_SMALL_VALUES_KEY`]); set before the apply that stores the first larger value.
    pub blobs_possible: AtomicBool,
}

impl CommitShared {
    pub(crate) fn poisoned(&self) -> Option<String> {
        self.poisoned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn poison(&self, cause: String) {
        let mut poisoned = self
            .poisoned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        poisoned.get_or_insert(cause);
    }
}

/// The apply phase's state; behind a mutex in `EventLog`, used by one apply leader at a time.
#[derive(Debug)]
pub(crate) struct Writer {
    pub tree: sled::Tree,
    pub clock: Arc<dyn Clock>,
    /// Seq and hash of the last applied event.
    pub head: Head,
    /// Event ids and streams of applied events, shared with readers (who filter by durable head).
    pub index: Arc<RwLock<Index>>,
    /// At most this many events go into one group commit (bounds memory and latency).
    pub max_group_events: usize,
    /// Largest chunk in bytes (see [`format::CHUNK_TARGET_BYTES`]).
    pub chunk_target_bytes: usize,
    pub shared: Arc<CommitShared>,
    /// Reused for encoding each event before it is copied into sled's buffer.
    pub scratch: Vec<u8>,
    /// Hashes part of a large group's events on the other core.
    pub hash_helper: HashHelper,
}

/// A group applied to sled whose accepted appenders wait for it to become durable.
#[derive(Debug)]
pub(crate) struct AppliedGroup {
    last_seq: u64,
    answers: Vec<(Reply, Vec<Appended>)>,
}

/// How many flush + fdatasync runs may be in flight at once. The disk completes concurrent cache
/// flushes faster than the same number one after another (raw sled reaches about 2.5 times one
/// thread's durable rate with four threads syncing at once here, and no more with sixteen), so a
/// group applied while another is being synced starts its own sync instead of queueing behind it.
/// Measured with 4 and 16 appenders: one lane was slowest, two lanes sometimes fell to half of
/// raw sled at batch 1 (three appenders' groups waiting for two lanes), four were best.
pub(crate) const SYNC_LANES: usize = 4;

/// The durability phase's state, shared by the appenders that make their groups durable.
#[derive(Debug)]
pub(crate) struct Syncer {
    pub db: sled::Db,
    /// The sync lanes not in use: one set of file handles each ([`SYNC_LANES`] in all). Separate
    /// descriptors matter: Linux reports a failed writeback to the next fsync of *each* open file
    /// description, so a sync on one lane cannot consume the error another lane's sync must see.
    pub free_lanes: Mutex<Vec<DurableFiles>>,
    /// Signalled when a lane is given back.
    pub lane_freed: Condvar,
    /// The last event known durable; what readers may see.
    pub durable: Mutex<Head>,
    pub head_watch: Arc<HeadWatch>,
    pub shared: Arc<CommitShared>,
}

impl Syncer {
    /// Makes `group` durable (unless a later flush already did) and answers its appenders.
    pub fn make_durable(&self, group: AppliedGroup) {
        match self.sync_through(group.last_seq) {
            Ok(()) => {
                for (reply, appended) in group.answers {
                    answer(&reply, Ok(appended));
                }
            }
            Err(cause) => {
                for (reply, _) in group.answers {
                    answer(
                        &reply,
                        Err(StorageError::Poisoned {
                            cause: cause.clone(),
                        }
                        .into()),
                    );
                }
            }
        }
    }

    fn durable_seq(&self) -> u64 {
        self.durable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .seq
    }

    /// A free sync lane, or the first to become free.
    fn lane(&self) -> Lane<'_> {
        let mut free = self
            .free_lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            if let Some(files) = free.pop() {
                return Lane {
                    syncer: self,
                    files: Some(files),
                };
            }
            free = self
                .lane_freed
                .wait(free)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    pub(crate) fn sync_through(&self, seq: u64) -> Result<(), String> {
        if let Some(cause) = self.shared.poisoned() {
            return Err(cause);
        }
        if self.durable_seq() >= seq {
            return Ok(());
        }
        let mut lane = self.lane();
        // A sync on another lane may have covered this group while this one waited for a lane.
        if let Some(cause) = self.shared.poisoned() {
            return Err(cause);
        }
        if self.durable_seq() >= seq {
            return Ok(());
        }
        // Everything applied before the flush starts is covered by it: sled's flush returns once
        // its log is stable up to everything reserved before the call, and fdatasync persists
        // every page of the file written before it, whichever thread wrote it.
        let covered = *self
            .shared
            .applied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let synced = self.db.flush().map_err(StorageError::from).and_then(|_| {
            // Read after `covered`: a writer that stores a large value sets the flag before its
            // apply, and publishes `applied` after it.
            let blobs_possible = self.shared.blobs_possible.load(Ordering::SeqCst);
            lane.sync(blobs_possible)
        });
        drop(lane);
        if let Err(error) = synced {
            let cause = error.to_string();
            self.shared.poison(cause.clone());
            return Err(cause);
        }
        // If a concurrent sync failed, what is on disk is unknown: acknowledge nothing.
        if let Some(cause) = self.shared.poisoned() {
            return Err(cause);
        }
        {
            let mut durable = self
                .durable
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if covered.seq > durable.seq {
                *durable = covered;
            }
        }
        self.head_watch.advance(covered);
        Ok(())
    }
}

/// Poisons the log if dropped while armed: a panic between staging a group's events in the index
/// and applying them to sled would leave index entries for events that were never written, which
/// later groups would count as stream versions. Nothing panics there by design; this makes sure a
/// bug cannot turn into a wrong stream version, only into a refusal to append until reopened.
struct UnfinishedGroup {
    shared: Arc<CommitShared>,
    armed: bool,
}

impl Drop for UnfinishedGroup {
    fn drop(&mut self) {
        if self.armed {
            self.shared
                .poison("a group commit was interrupted by a panic; reopen the log".into());
        }
    }
}

/// A sync lane in use; given back to the pool when dropped, also if the sync panicked.
struct Lane<'a> {
    syncer: &'a Syncer,
    files: Option<DurableFiles>,
}

impl Lane<'_> {
    fn sync(&mut self, blobs_possible: bool) -> Result<(), StorageError> {
        match self.files.as_mut() {
            Some(files) => files.sync(blobs_possible),
            // Only `drop` takes the files out.
            None => Ok(()),
        }
    }
}

impl Drop for Lane<'_> {
    fn drop(&mut self) {
        if let Some(files) = self.files.take() {
            self.syncer
                .free_lanes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(files);
            self.syncer.lane_freed.notify_one();
        }
    }
}

/// What is known of an earlier event with the same id: enough to answer a retry or detect a conflict.
#[derive(Clone, Copy, Debug)]
struct EarlierEvent {
    seq: u64,
    stream_version: u64,
    hash: Hash,
}

/// A new event accepted into the group being staged, borrowed from its request. Its seq is the
/// group's first seq plus its position among these; its hash is known once the group is encoded.
#[derive(Clone, Copy, Debug)]
struct StagedEvent<'a> {
    event: &'a NewEvent,
    principal: &'a str,
    stream_version: u64,
    /// The event id's index fingerprint, computed once for the lookup, the index and an undo.
    print: u64,
}

/// The answer to one event of an accepted batch, before the group's hashes are known.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// The group's staged event at this position: new, or (`duplicate`) a retry of it.
    Staged { position: usize, duplicate: bool },
    /// A retry of an event applied by an earlier group.
    Applied(EarlierEvent),
}

/// The earlier event with an event's id.
#[derive(Clone, Copy, Debug)]
enum Earlier {
    Staged(usize),
    Applied(EarlierEvent),
}

/// Whether two submissions of one event id carry the same content: stream key, event type, schema
/// version and payload — never the server-assigned fields or the expected version. Compared field
/// by field, which is exact and cheaper than hashing every event's content up front (the content
/// digest of the format docs is what this comparison is equivalent to).
fn same_content(
    new: &NewEvent,
    stream_key: &str,
    event_type: &str,
    schema: u32,
    payload: &[u8],
) -> bool {
    new.schema_version == schema
        && new.stream_key == stream_key
        && new.event_type == event_type
        && new.payload == payload
}

impl Writer {
    /// Writes a group: the small-values marker's removal if it goes, the chunks, and last the head
    /// record, one sled insert each. Not one `apply_batch`: sled 0.34 seals and writes its current
    /// log buffer twice per batch (before and after reserving the batch manifest), two buffer
    /// writes, two `sync_file_range` calls and two thread-pool wake-ups per group commit on top of
    /// the flush's own, about an eighth of the server's CPU per event at 16 streams. sled's log
    /// is recovered as a prefix, so the head record, inserted last, is the commit point: a crash
    /// between the inserts leaves chunks past the recorded head, which opening removes (see
    /// `log::recover`); the group's appenders are answered only after the flush covering the head
    /// record.
    fn insert_group(
        &self,
        marker_goes: bool,
        chunks: Vec<([u8; 9], Vec<u8>)>,
        head_record: [u8; 40],
    ) -> Result<(), sled::Error> {
        if marker_goes {
            self.tree.remove(format::META_SMALL_VALUES_KEY)?;
        }
        for (key, chunk) in chunks {
            self.tree.insert(key, chunk)?;
        }
        self.tree.insert(format::META_HEAD_KEY, &head_record[..])?;
        Ok(())
    }

    /// Validates and applies a group (see the module docs). Rejected requests are answered at
    /// once; accepted ones are returned to be made durable and answered by [`Syncer`]. The caller
    /// drops the group's requests, outside the apply role: freeing their events is not serial work.
    pub fn apply_group(&mut self, group: &[AppendRequest]) -> Option<AppliedGroup> {
        if let Some(cause) = self.shared.poisoned() {
            for request in group {
                answer(
                    &request.reply,
                    Err(StorageError::Poisoned {
                        cause: cause.clone(),
                    }
                    .into()),
                );
            }
            return None;
        }
        // One timestamp per group: every event of a commit became durable at the same moment.
        let recorded_at = self.clock.now_unix_nanos();
        let group_start = self.head;
        let Some(first_seq) = group_start.seq.checked_add(1) else {
            // Only a forged commit record could bring the head this close to the end.
            for request in group {
                answer(&request.reply, Err(sequence_exhausted().into()));
            }
            return None;
        };
        let index_lock = self.index.clone();
        // Validation stages each new event straight into the index, under its write lock: readers
        // ignore staged seqs (they stop at the durable head) and wait only for these lookups, not
        // for the encoding and hashing below, which run after the lock is released.
        let mut index = index_lock
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut unfinished = UnfinishedGroup {
            shared: self.shared.clone(),
            armed: true,
        };
        let mut staged: Vec<StagedEvent<'_>> = Vec::new();
        let mut accepted: Vec<(&Reply, Vec<Slot>)> = Vec::with_capacity(group.len());
        for request in group {
            match self.stage_batch(request, first_seq, &mut staged, &mut index) {
                Ok(slots) => accepted.push((&request.reply, slots)),
                Err(error) => {
                    answer(&request.reply, Err(error));
                }
            }
        }
        drop(index);
        if staged.is_empty() {
            unfinished.armed = false;
            // Nothing new, only retries: their originals may belong to a group still being made
            // durable, so they are answered once everything applied so far is durable.
            let answers = accepted
                .into_iter()
                .map(|(reply, slots)| (reply.clone(), resolve(&slots, first_seq, &[], &[])))
                .collect::<Vec<_>>();
            return (!answers.is_empty()).then_some(AppliedGroup {
                last_seq: self.head.seq,
                answers,
            });
        }

        let mut chunks: Vec<([u8; 9], Vec<u8>)> = Vec::new();
        let mut hashes = Vec::with_capacity(staged.len());
        let mut large_value = false;
        let mut prev_hash = group_start.hash;
        let prepared = self.hash_helper.hash_prefixes(prepare_events(
            &staged,
            first_seq,
            recorded_at,
            &mut self.scratch,
        ));
        // Only this fold follows the chain: each event's last SHA-256 blocks and its two hashes.
        let mut values = Vec::with_capacity(staged.len());
        for prepared in prepared {
            let (value, hash) = prepared.seal(prev_hash);
            values.push(value);
            hashes.push(hash);
            prev_hash = hash;
        }
        let entries: Vec<format::ChunkEntry<'_>> = staged
            .iter()
            .zip(&values)
            .map(|(staged_event, value)| format::ChunkEntry {
                event_id: &staged_event.event.event_id,
                stream_key: &staged_event.event.stream_key,
                stored: value,
            })
            .collect();
        large_value |= insert_chunks(
            &mut chunks,
            first_seq,
            recorded_at,
            &entries,
            self.chunk_target_bytes,
        );
        let head_record = format::encode_head(first_seq + staged.len() as u64 - 1, prev_hash);
        let marker_goes = !self.shared.blobs_possible.load(Ordering::SeqCst) && large_value;
        if marker_goes {
            // From this group on, sled may write blob files: syncs list them from now on (the flag
            // is set before the inserts, so the sync covering them sees it), and the marker goes
            // before the first large value is stored.
            self.shared.blobs_possible.store(true, Ordering::SeqCst);
        }
        if let Err(error) = self.insert_group(marker_goes, chunks, head_record) {
            // What reached sled is unknown; refuse further appends until a reopen recovers.
            let cause = StorageError::from(error).to_string();
            self.shared.poison(cause.clone());
            let mut index = index_lock
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            unstage(&mut index, &staged, first_seq, 0);
            unfinished.armed = false;
            for (reply, _) in accepted {
                answer(
                    reply,
                    Err(StorageError::Poisoned {
                        cause: cause.clone(),
                    }
                    .into()),
                );
            }
            return None;
        }
        self.head = Head {
            seq: group_start.seq + staged.len() as u64,
            hash: prev_hash,
        };
        unfinished.armed = false;
        *self
            .shared
            .applied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = self.head;
        let answers = accepted
            .into_iter()
            .map(|(reply, slots)| (reply.clone(), resolve(&slots, first_seq, &staged, &hashes)))
            .collect();
        Some(AppliedGroup {
            last_seq: self.head.seq,
            answers,
        })
    }

    /// Validates one batch against the applied events and the group's earlier accepted batches,
    /// all of which are in `index`, and stages its new events there and in `staged`. On error,
    /// nothing of the batch remains staged.
    fn stage_batch<'a>(
        &self,
        request: &'a AppendRequest,
        first_seq: u64,
        staged: &mut Vec<StagedEvent<'a>>,
        index: &mut Index,
    ) -> Result<Vec<Slot>, AppendError> {
        let batch_start = staged.len();
        let result = self.stage_batch_inner(request, first_seq, batch_start, staged, index);
        if result.is_err() {
            unstage(index, staged, first_seq, batch_start);
            staged.truncate(batch_start);
        }
        result
    }

    fn stage_batch_inner<'a>(
        &self,
        request: &'a AppendRequest,
        first_seq: u64,
        batch_start: usize,
        staged: &mut Vec<StagedEvent<'a>>,
        index: &mut Index,
    ) -> Result<Vec<Slot>, AppendError> {
        let mut slots = Vec::with_capacity(request.events.len());
        staged.reserve(request.events.len());
        for (position, event) in request.events.iter().enumerate() {
            let print = fingerprint(&event.event_id);
            if let Some((earlier, same)) =
                self.lookup_event_id(event, print, first_seq, staged, index)?
            {
                if !same {
                    let original_seq = match earlier {
                        // The earlier event is in this very batch: it was never recorded.
                        Earlier::Staged(at) if at >= batch_start => None,
                        Earlier::Staged(at) => Some(first_seq + at as u64),
                        Earlier::Applied(earlier) => Some(earlier.seq),
                    };
                    return Err(AppendError::EventIdConflict {
                        index: position,
                        event_id: event.event_id.clone(),
                        original_seq,
                    });
                }
                slots.push(match earlier {
                    Earlier::Staged(at) => Slot::Staged {
                        position: at,
                        duplicate: true,
                    },
                    Earlier::Applied(earlier) => Slot::Applied(earlier),
                });
                continue;
            }
            let position_in_group = staged.len();
            let stream_version =
                index.insert_next(print, &event.stream_key, |current_version| {
                    if let ExpectedVersion::Exactly(expected) = event.expected_version
                        && expected != current_version
                    {
                        return Err(AppendError::WrongExpectedVersion {
                            index: position,
                            event_id: event.event_id.clone(),
                            stream_key: event.stream_key.clone(),
                            expected,
                            actual: current_version,
                        });
                    }
                    Ok(first_seq
                        .checked_add(position_in_group as u64)
                        .ok_or_else(sequence_exhausted)?)
                })?;
            slots.push(Slot::Staged {
                position: position_in_group,
                duplicate: false,
            });
            staged.push(StagedEvent {
                event,
                principal: &request.principal,
                stream_version,
                print,
            });
        }
        Ok(slots)
    }

    /// The earlier event with `event`'s id, if any, and whether its content is the same.
    fn lookup_event_id(
        &self,
        event: &NewEvent,
        print: u64,
        first_seq: u64,
        staged: &[StagedEvent<'_>],
        index: &Index,
    ) -> Result<Option<(Earlier, bool)>, StorageError> {
        let event_id = event.event_id.as_str();
        for seq in index.candidates_by_fingerprint(print) {
            if seq >= first_seq {
                // Staged by this group: compare with the submitted event, not yet in sled.
                let Some(at) = usize::try_from(seq - first_seq).ok() else {
                    continue;
                };
                if let Some(other) = staged.get(at).map(|staged_event| staged_event.event)
                    && other.event_id == event_id
                {
                    let same = same_content(
                        event,
                        &other.stream_key,
                        &other.event_type,
                        other.schema_version,
                        &other.payload,
                    );
                    return Ok(Some((Earlier::Staged(at), same)));
                }
                continue;
            }
            let stored =
                crate::read::read_event(&self.tree, seq)?.ok_or_else(|| StorageError::Corrupt {
                    location: format!("event seq {seq}"),
                    reason: crate::error::DecodeError::Truncated {
                        field: "indexed event (missing)",
                    },
                })?;
            if stored.event_id == event_id {
                let same = same_content(
                    event,
                    &stored.stream_key,
                    &stored.event_type,
                    stored.schema_version,
                    &stored.payload,
                );
                let earlier = EarlierEvent {
                    seq,
                    stream_version: stored.stream_version,
                    hash: stored.hash,
                };
                return Ok(Some((Earlier::Applied(earlier), same)));
            }
        }
        Ok(None)
    }
}

/// Where [`insert_chunks`] puts chunks: a sled batch (replication) or a list of inserts (writer).
pub(crate) trait ChunkSink {
    fn put(&mut self, key: [u8; 9], chunk: Vec<u8>);
}

impl ChunkSink for sled::Batch {
    fn put(&mut self, key: [u8; 9], chunk: Vec<u8>) {
        self.insert(&key[..], chunk);
    }
}

impl ChunkSink for Vec<([u8; 9], Vec<u8>)> {
    fn put(&mut self, key: [u8; 9], chunk: Vec<u8>) {
        self.push((key, chunk));
    }
}

/// Adds the chunks of consecutive events `entries`, the first of which is `first_seq`, all
/// recorded at `recorded_at`, to `sink`; returns whether any chunk is larger than
/// [`format::SMALL_VALUE_LIMIT`].
pub(crate) fn insert_chunks(
    sink: &mut impl ChunkSink,
    first_seq: u64,
    recorded_at: i64,
    entries: &[format::ChunkEntry<'_>],
    chunk_target_bytes: usize,
) -> bool {
    let mut large_value = false;
    let mut rest = entries;
    let mut chunk_first_seq = first_seq;
    for length in format::chunk_lengths(
        entries.iter().map(format::ChunkEntry::encoded_len),
        chunk_target_bytes,
    ) {
        let (chunk_entries, after) = rest.split_at(length.min(rest.len()));
        let last_hash = chunk_entries
            .last()
            .map_or(Hash::ZERO, |entry| format::stored_hash(entry.stored));
        let chunk = format::encode_chunk(chunk_first_seq, recorded_at, last_hash, chunk_entries);
        large_value |= chunk.len() > format::SMALL_VALUE_LIMIT;
        sink.put(format::chunk_key(chunk_first_seq), chunk);
        chunk_first_seq += length as u64;
        rest = after;
    }
    large_value
}

/// Groups of at least this many new events share their prefix hashing with the [`HashHelper`].
/// Waking it costs a few microseconds; hashing a 1 KB event's prefix about half of one.
const PARALLEL_HASH_MIN_EVENTS: usize = 64;

/// Events per unit of hashing claimed by either thread.
const PREPARE_CHUNK_EVENTS: usize = 16;

/// Encodes every staged event into the buffer sled will keep, up to its previous hash (see
/// [`format::PreparedEvent`]). Encoding, and so every allocation, stays on the apply leader's
/// thread; the prefix hashing of a large group is then shared with the [`HashHelper`].
fn prepare_events(
    staged: &[StagedEvent<'_>],
    first_seq: u64,
    recorded_at: i64,
    scratch: &mut Vec<u8>,
) -> Vec<format::PreparedEvent> {
    let prepare = |scratch: &mut Vec<u8>, offset: usize, events: &[StagedEvent<'_>]| {
        (first_seq + offset as u64..)
            .zip(events)
            .map(|(seq, staged_event)| {
                let event = staged_event.event;
                format::PreparedEvent::new(
                    scratch,
                    &EventFields {
                        seq,
                        stream_key: &event.stream_key,
                        stream_version: staged_event.stream_version,
                        event_id: &event.event_id,
                        event_type: &event.event_type,
                        schema_version: event.schema_version,
                        payload: &event.payload,
                        recorded_at_unix_nanos: recorded_at,
                        recorded_by: staged_event.principal,
                        prev_hash: Hash::ZERO,
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    prepare(scratch, 0, staged)
}

/// One large group's prefix hashing, shared by the apply leader and the [`HashHelper`]: chunks of
/// prepared events, claimed in turn from `next`.
#[derive(Debug)]
struct HashJob {
    chunks: Vec<Mutex<Vec<format::PreparedEvent>>>,
    next: AtomicUsize,
}

impl HashJob {
    /// Hashes unclaimed chunks until none is left.
    fn claim_all(&self) {
        while let Some(chunk) = self.chunks.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            let mut chunk = chunk.lock().unwrap_or_else(|poisoned| {
                let mut chunk = poisoned.into_inner();
                chunk.iter_mut().for_each(format::PreparedEvent::reset_hash);
                chunk
            });
            chunk
                .iter_mut()
                .for_each(format::PreparedEvent::hash_prefix);
        }
    }
}

#[derive(Debug, Default)]
struct HelperSlot {
    job: Option<Arc<HashJob>>,
    shutdown: bool,
}

#[derive(Debug, Default)]
struct HelperShared {
    slot: Mutex<HelperSlot>,
    posted: Condvar,
}

/// A thread, one per open log, that hashes part of each large group's event prefixes (see
/// [`format::PreparedEvent`]) while the apply leader hashes the rest, so that a lone appender's
/// big batch uses both cores when the other one is free. The leader never waits for the helper to
/// start: it hashes every chunk the helper has not claimed, and waits only for a chunk the helper
/// is hashing (at most [`PREPARE_CHUNK_EVENTS`] events). Absent on a single core or when the
/// thread cannot be spawned; then [`format::PreparedEvent::seal`] hashes everything. Stops when
/// the log is dropped.
#[derive(Debug)]
pub(crate) struct HashHelper {
    shared: Option<Arc<HelperShared>>,
}

impl HashHelper {
    pub fn start() -> HashHelper {
        if !two_cores() {
            return HashHelper { shared: None };
        }
        let shared = Arc::new(HelperShared::default());
        let theirs = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("myolog-hash".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                loop {
                    let job = {
                        let mut slot = theirs
                            .slot
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        loop {
                            if slot.shutdown {
                                return;
                            }
                            if let Some(job) = slot.job.take() {
                                break job;
                            }
                            slot = theirs
                                .posted
                                .wait(slot)
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                        }
                    };
                    job.claim_all();
                }
            });
        HashHelper {
            shared: spawned.is_ok().then_some(shared),
        }
    }

    /// Runs the prefix hashing of a large group on this thread and the helper; returns the events
    /// in their order.
    fn hash_prefixes(&self, prepared: Vec<format::PreparedEvent>) -> Vec<format::PreparedEvent> {
        let Some(shared) = &self.shared else {
            return prepared;
        };
        if prepared.len() < PARALLEL_HASH_MIN_EVENTS {
            return prepared;
        }
        let total = prepared.len();
        let mut chunks = Vec::with_capacity(total.div_ceil(PREPARE_CHUNK_EVENTS));
        let mut rest = prepared.into_iter();
        loop {
            let chunk: Vec<_> = rest.by_ref().take(PREPARE_CHUNK_EVENTS).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(Mutex::new(chunk));
        }
        let job = Arc::new(HashJob {
            chunks,
            next: AtomicUsize::new(0),
        });
        {
            let mut slot = shared
                .slot
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.job = Some(job.clone());
        }
        shared.posted.notify_one();
        job.claim_all();
        // A helper that has not started yet must not start on this job later for nothing.
        shared
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .job = None;
        let mut out = Vec::with_capacity(total);
        for chunk in &job.chunks {
            // Waits only while the helper hashes this chunk; events it left unhashed (if it
            // panicked) are hashed by `seal`.
            let mut chunk = chunk.lock().unwrap_or_else(|poisoned| {
                let mut chunk = poisoned.into_inner();
                chunk.iter_mut().for_each(format::PreparedEvent::reset_hash);
                chunk
            });
            out.append(&mut chunk);
        }
        out
    }
}

impl Drop for HashHelper {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared
                .slot
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .shutdown = true;
            shared.posted.notify_all();
        }
    }
}

/// Whether this process may run on more than one core (asked once).
fn two_cores() -> bool {
    static TWO_CORES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TWO_CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|cores| cores.get() > 1)
            .unwrap_or(false)
    })
}

/// Removes `staged[from..]` from the index, newest first.
fn unstage(index: &mut Index, staged: &[StagedEvent<'_>], first_seq: u64, from: usize) {
    for (at, staged_event) in staged.iter().enumerate().skip(from).rev() {
        index.unstage(
            staged_event.print,
            &staged_event.event.stream_key,
            first_seq + at as u64,
        );
    }
}

/// The answers of one accepted batch, once the group's hashes are known.
fn resolve(
    slots: &[Slot],
    first_seq: u64,
    staged: &[StagedEvent<'_>],
    hashes: &[Hash],
) -> Vec<Appended> {
    slots
        .iter()
        .map(|slot| match *slot {
            Slot::Staged {
                position,
                duplicate,
            } => Appended {
                seq: first_seq + position as u64,
                hash: hashes.get(position).copied().unwrap_or(Hash::ZERO),
                stream_version: staged.get(position).map_or(0, |s| s.stream_version),
                duplicate,
            },
            Slot::Applied(earlier) => Appended {
                seq: earlier.seq,
                hash: earlier.hash,
                stream_version: earlier.stream_version,
                duplicate: true,
            },
        })
        .collect()
}

/// The error of an append that would need a seq beyond `u64::MAX`.
fn sequence_exhausted() -> StorageError {
    StorageError::Corrupt {
        location: "head".into(),
        reason: crate::error::DecodeError::Truncated {
            field: "sequence space exhausted",
        },
    }
}

#[cfg(test)]
mod tests {
    //! Group commit semantics that need a deterministic group: several batches handed to the
    //! writer at once, as concurrent appenders would.

    use super::*;
    use crate::event::SystemClock;
    use std::collections::HashSet;
    use std::sync::mpsc;

    fn writer_for(dir: &std::path::Path) -> (Writer, Syncer) {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .open()
            .unwrap();
        let tree = db.open_tree(format::TREE_NAME).unwrap();
        let shared = Arc::new(CommitShared::default());
        let writer = Writer {
            tree,
            clock: Arc::new(SystemClock),
            head: Head::default(),
            index: Arc::new(RwLock::new(Index::default())),
            max_group_events: 1000,
            chunk_target_bytes: format::CHUNK_TARGET_BYTES,
            shared: shared.clone(),
            scratch: Vec::new(),
            hash_helper: HashHelper::start(),
        };
        let syncer = Syncer {
            free_lanes: Mutex::new(vec![
                DurableFiles::open(dir).unwrap(),
                DurableFiles::open(dir).unwrap(),
            ]),
            lane_freed: Condvar::new(),
            db,
            durable: Mutex::new(Head::default()),
            head_watch: Arc::new(HeadWatch::default()),
            shared,
        };
        (writer, syncer)
    }

    /// The receiving end of a test request: only answers are expected (the apply role is handed
    /// on by `EventLog::append`, which these tests bypass).
    struct Answer(mpsc::Receiver<Wake>);

    impl Answer {
        fn try_recv(&self) -> Result<Result<Vec<Appended>, AppendError>, mpsc::TryRecvError> {
            self.0.try_recv().map(|wake| match wake {
                Wake::Answer(result) => result,
                Wake::Lead => panic!("a test request was offered the apply role"),
            })
        }
    }

    fn request(events: &[(&str, &str, ExpectedVersion, &str)]) -> (AppendRequest, Answer) {
        let events = events
            .iter()
            .map(|(id, stream, expected, payload)| NewEvent {
                event_id: (*id).into(),
                stream_key: (*stream).into(),
                expected_version: *expected,
                event_type: "t".into(),
                schema_version: 1,
                payload: payload.as_bytes().to_vec(),
            })
            .collect();
        let (reply, answer) = mpsc::sync_channel(1);
        (
            AppendRequest {
                events,
                principal: "p".into(),
                reply,
            },
            Answer(answer),
        )
    }

    #[test]
    fn a_failing_batch_fails_alone_and_later_batches_see_earlier_ones_of_the_same_group() {
        use ExpectedVersion::*;
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, syncer) = writer_for(dir.path());
        let requests = [
            request(&[("a", "s", Exactly(0), "x"), ("b", "s", Exactly(1), "y")]),
            // Expects the state before the first batch: rejected.
            request(&[("c", "t", Exactly(0), "z"), ("d", "s", Exactly(0), "w")]),
            // Expects the state after the first batch, and retries its event "a".
            request(&[("a", "s", Exactly(0), "x"), ("e", "s", Exactly(2), "v")]),
            // Reuses "b" with other content: rejected, citing the seq "b" got in this group.
            request(&[("b", "s", Any, "changed")]),
            // Uses "c", which only the rejected batch had: accepted.
            request(&[("c", "t", Exactly(0), "z")]),
        ];
        let (group, answers): (Vec<_>, Vec<_>) = requests.into_iter().unzip();
        let applied = writer.apply_group(&group).unwrap();
        // The rejected batches are answered at once; the accepted ones only once durable.
        assert!(matches!(
            answers[1].try_recv().unwrap(),
            Err(AppendError::WrongExpectedVersion {
                index: 1,
                actual: 2,
                ..
            })
        ));
        assert!(matches!(
            answers[3].try_recv().unwrap(),
            Err(AppendError::EventIdConflict {
                original_seq: Some(2),
                ..
            })
        ));
        assert!(answers[0].try_recv().is_err());
        assert_eq!(syncer.head_watch.get().seq, 0);
        syncer.make_durable(applied);
        let answers: Vec<_> = answers
            .iter()
            .map(|answer| answer.try_recv().ok())
            .collect();
        let seqs = |i: usize| -> Vec<(u64, bool)> {
            answers[i]
                .as_ref()
                .unwrap()
                .as_ref()
                .unwrap()
                .iter()
                .map(|a| (a.seq, a.duplicate))
                .collect()
        };
        assert_eq!(seqs(0), [(1, false), (2, false)]);
        assert_eq!(seqs(2), [(1, true), (3, false)]);
        assert_eq!(seqs(4), [(4, false)]);
        assert_eq!(writer.head.seq, 4);
        assert_eq!(syncer.head_watch.get(), writer.head);
        let recorded = writer.tree.get(format::META_HEAD_KEY).unwrap();
        let report = crate::verify::verify(&writer.tree, recorded).unwrap();
        assert!(
            report.is_intact() && report.events_checked == 4,
            "{report:?}"
        );
        // The whole group was one commit: one recorded-at for all of its events.
        let stamps: HashSet<i64> = (1..=4)
            .map(|seq| {
                crate::read::read_event(&writer.tree, seq)
                    .unwrap()
                    .unwrap()
                    .recorded_at_unix_nanos
            })
            .collect();
        assert_eq!(stamps.len(), 1);
    }

    #[test]
    fn groups_synced_on_concurrent_lanes_are_all_answered_and_the_head_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, syncer) = writer_for(dir.path());
        let mut applied = Vec::new();
        let mut answers = Vec::new();
        for round in 0..8 {
            let id = format!("e{round}");
            let (group, answer) = request(&[(id.as_str(), "s", ExpectedVersion::Any, "x")]);
            applied.push(writer.apply_group(&[group]).unwrap());
            answers.push(answer);
        }
        // Every group syncs on its own thread, later groups first: lanes run at once, and a sync
        // that finds its group covered by a later one answers without syncing.
        std::thread::scope(|scope| {
            for group in applied.into_iter().rev() {
                let syncer = &syncer;
                scope.spawn(move || syncer.make_durable(group));
            }
        });
        let seqs: Vec<u64> = answers
            .iter()
            .map(|answer| answer.try_recv().unwrap().unwrap()[0].seq)
            .collect();
        assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
        assert_eq!(syncer.head_watch.get(), writer.head);
        assert_eq!(writer.head.seq, 8);
    }

    #[test]
    fn a_retry_of_an_event_not_yet_durable_is_answered_only_once_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, syncer) = writer_for(dir.path());
        let (first, first_answer) = request(&[("a", "s", ExpectedVersion::Any, "x")]);
        let first_group = writer.apply_group(&[first]).unwrap();
        // The next group, applied while the first is not yet durable, retries its event.
        let (retry, retry_answer) = request(&[("a", "s", ExpectedVersion::Any, "x")]);
        let retry_group = writer.apply_group(&[retry]).unwrap();
        assert!(retry_answer.try_recv().is_err(), "answered before durable");
        syncer.make_durable(retry_group);
        let retried = retry_answer.try_recv().unwrap().unwrap();
        assert_eq!((retried[0].seq, retried[0].duplicate), (1, true));
        // The first group's own sync finds it already durable.
        syncer.make_durable(first_group);
        assert_eq!(first_answer.try_recv().unwrap().unwrap()[0].seq, 1);
        assert_eq!(syncer.head_watch.get().seq, 1);
    }
}
