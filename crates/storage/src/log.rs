//! [`EventLog`]: opening a log directory, appending through the group-committing writer, and the
//! read paths (replay by sequence, by stream, by event id, the head).

use std::collections::HashSet;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::durability::{self, DurableFiles};
use crate::error::{AppendError, InvalidEvent, StorageError};
use crate::event::{
    Appended, Clock, Head, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES, NewEvent, RecordedEvent, SystemClock,
};
use crate::format::{self, Chunk};
use crate::index::Index;
use crate::leftovers::{self, DirectoryLock};
use crate::read::{chunk_holding, event_of, parse_stored_chunk};
use crate::replication::{ReplicationError, StoredEvent};
use crate::verify::{self, VerifyReport};
use crate::writer::{AppendRequest, CommitShared, HeadWatch, SYNC_LANES, Syncer, Wake, Writer};

/// How to open a log.
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Create the log if the path does not exist or is an empty directory. Default: true.
    pub create_if_missing: bool,
    /// The source of recorded-at. Default: [`SystemClock`].
    pub clock: Arc<dyn Clock>,
    /// sled's page cache size in bytes. Default: 256 MiB.
    pub cache_capacity_bytes: u64,
    /// Largest accepted batch. Default: 10,000 events.
    pub max_batch_events: usize,
    /// Most events the writer commits with one fsync (a larger batch is committed alone).
    /// Default: 4,000. Larger groups save few fsyncs once a group holds thousands of events, while
    /// smaller ones keep a group's bytes closer to the cache and let the next group be applied
    /// while this one syncs: 16 appenders at batch 1000 ran about 6% faster with 4,000 than with
    /// 20,000 (see docs/benchmarks.md, storage).
    pub max_group_events: usize,
    /// How long `open` keeps retrying while the directory's lock is held by something other than a
    /// live [`EventLog`] of this process. sled 0.34 releases its file lock only when its epoch-based
    /// garbage collector frees the last reference, which can happen shortly after the database was
    /// dropped, so an immediate reopen in the same process may briefly find it locked. A second
    /// process gets [`StorageError::InUse`] after this wait. Default: 2 s.
    pub lock_wait: Duration,
    /// Largest chunk the writer stores, in bytes (an event larger than this gets a chunk of its
    /// own). Default: [`format::CHUNK_TARGET_BYTES`], where the choice is explained; other values
    /// are for measuring that choice. Any value reads any log: chunk sizes are not recorded.
    pub chunk_target_bytes: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            create_if_missing: true,
            clock: Arc::new(SystemClock),
            cache_capacity_bytes: 256 * 1024 * 1024,
            max_batch_events: 10_000,
            max_group_events: 4_000,
            lock_wait: Duration::from_secs(2),
            chunk_target_bytes: format::CHUNK_TARGET_BYTES,
        }
    }
}

impl LogOptions {
    /// The sled configuration of a log directory. The benchmark configures raw sled identically.
    pub(crate) fn sled_config(&self, path: &Path) -> sled::Config {
        sled::Config::new()
            .path(path)
            .cache_capacity(self.cache_capacity_bytes)
            // Every commit flushes explicitly; sled's periodic background flush would only contend.
            .flush_every_ms(None)
    }
}

/// The append-only event log. Cheap to clone (an `Arc`); every method blocks the calling thread,
/// so async callers use `spawn_blocking`. Appends from all clones and threads are group-committed by
/// whichever appender leads the next commit.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("path", &self.inner.path)
            .field("head", &self.head())
            .finish()
    }
}

#[derive(Default)]
struct CommitQueue {
    waiting: Vec<AppendRequest>,
    /// An appender (or a replicated append) holds the apply role: it is validating and applying a
    /// group, or was handed the role and is waking up to do so.
    applying: bool,
    /// Replicated appends waiting for the apply role (on `replicator_turn`); an ending term lets
    /// them go first, since queued appenders are handed the role one after another.
    replicators_waiting: usize,
}

struct Inner {
    path: PathBuf,
    tree: sled::Tree,
    db: sled::Db,
    /// A group commit cut by a crash, removed when this handle opened the log.
    cut_commit: Option<CutCommit>,
    /// Appends waiting for the next group commit, and whether one is being applied.
    queue: Mutex<CommitQueue>,
    /// Signalled when an apply term ends while a replicated append waits for the role (queued
    /// appenders are woken one by one through their own channels instead).
    replicator_turn: Condvar,
    /// Used only by the appender that currently leads the apply phase (see [`EventLog::append`]).
    writer: Mutex<Writer>,
    /// The durability phase: flush + fdatasync on up to `SYNC_LANES` lanes at once, then the answers.
    syncer: Syncer,
    head_watch: Arc<HeadWatch>,
    index: Arc<RwLock<Index>>,
    max_batch_events: usize,
    /// Dropped after the fields above (declaration order), i.e. after the database handle.
    _registration: OpenLogRegistration,
    /// Dropped after `db`, `tree` and the writer (fields drop in declaration order), so no other
    /// process touches sled's files while this one may still use them.
    _directory_lock: DirectoryLock,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Every acknowledged append is already durable; this only spares sled some recovery work.
        let _ = self.db.flush();
    }
}

/// Ends an apply leader's term when dropped — also if the apply panicked, so followers never wait
/// for a leader that is gone.
struct ApplyTerm<'a> {
    inner: &'a Inner,
}

impl Drop for ApplyTerm<'_> {
    /// Hands the apply role on: to a waiting replicated append, else to the oldest queued appender
    /// (its own request is then the first of the group it takes), else to whoever comes next.
    fn drop(&mut self) {
        let mut queue = lock(&self.inner.queue);
        if queue.replicators_waiting > 0 {
            queue.applying = false;
            self.inner.replicator_turn.notify_all();
            return;
        }
        while let Some(oldest) = queue.waiting.first() {
            if oldest.reply.try_send(Wake::Lead).is_ok() {
                return;
            }
            // Its appender is gone (the slot is never full for a queued request): nobody waits for
            // this batch, so it is dropped unwritten.
            queue.waiting.remove(0);
        }
        queue.applying = false;
    }
}

/// The oldest queued requests holding at most `max_events` events (at least one request).
fn take_group(waiting: &mut Vec<AppendRequest>, max_events: usize) -> Vec<AppendRequest> {
    let mut events = 0;
    let take = waiting
        .iter()
        .enumerate()
        .take_while(|(position, request)| {
            events += request.events.len();
            *position == 0 || events <= max_events
        })
        .count();
    waiting.drain(..take).collect()
}

/// Locks a mutex, also after a panic elsewhere: the data it guards stays consistent because every
/// critical section here either completes or leaves the log poisoned explicitly.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EventLog {
    /// Opens (or creates, per `options`) the log in directory `path`.
    ///
    /// Fails with [`StorageError::InUse`] if another process or handle has it open,
    /// [`StorageError::NotAMyologLog`] if the path holds something else,
    /// [`StorageError::UnsupportedFormat`] if a newer Myolog wrote it.
    pub fn open(path: impl AsRef<Path>, options: LogOptions) -> Result<EventLog, StorageError> {
        let path = path.as_ref().to_path_buf();
        let creating = check_directory(&path, options.create_if_missing)?;
        let registration = OpenLogRegistration::register(&path)?;
        let directory_lock = DirectoryLock::acquire(&path, options.lock_wait)?;
        let creation_was_cut = leftovers::mend_sled_leftovers(&path)?;
        let creating = creating || creation_was_cut;
        let db = open_sled_waiting_for_lock(&path, &options)?;
        let tree = open_myolog_tree(&path, &db)?;
        let Recovered {
            head,
            index,
            damage,
            cut_commit,
        } = recover(
            &tree,
            options.max_group_events.max(options.max_batch_events),
        )?;
        if let Some((_, keys)) = &cut_commit {
            remove_cut_commit(&path, &db, &tree, keys)?;
        }
        let cut_commit = cut_commit.map(|(cut, _)| cut);
        let index = Arc::new(RwLock::new(index));
        if creating {
            db.flush()?;
            durability::sync_new_log(&path)?;
        }
        let lanes = (0..SYNC_LANES)
            .map(|_| DurableFiles::open(&path))
            .collect::<Result<Vec<_>, _>>()?;
        let head_watch = Arc::new(HeadWatch::default());
        *head_watch
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = head;
        // Without the marker (a larger value was stored, or an older build created the log), sled
        // may write blob files, so every commit lists `<log>/blobs`.
        let small_values_only = tree.contains_key(format::META_SMALL_VALUES_KEY)?;
        let shared = Arc::new(CommitShared {
            applied: Mutex::new(head),
            poisoned: Mutex::new(damage),
            blobs_possible: AtomicBool::new(!small_values_only),
        });
        let writer = Writer {
            tree: tree.clone(),
            clock: options.clock.clone(),
            head,
            index: index.clone(),
            max_group_events: options.max_group_events.max(1),
            chunk_target_bytes: options.chunk_target_bytes.max(1),
            shared: shared.clone(),
            scratch: Vec::new(),
            hash_helper: crate::writer::HashHelper::start(),
        };
        let syncer = Syncer {
            db: db.clone(),
            free_lanes: Mutex::new(lanes),
            lane_freed: Condvar::new(),
            durable: Mutex::new(head),
            head_watch: head_watch.clone(),
            shared,
        };
        Ok(EventLog {
            inner: Arc::new(Inner {
                path,
                tree,
                db,
                queue: Mutex::new(CommitQueue::default()),
                replicator_turn: Condvar::new(),
                writer: Mutex::new(writer),
                syncer,
                head_watch,
                index,
                max_batch_events: options.max_batch_events.max(1),
                cut_commit,
                _registration: registration,
                _directory_lock: directory_lock,
            }),
        })
    }

    /// The group commit a crash had cut (chunks stored, head record not), which opening removed:
    /// its events were never acknowledged. `None` when there was none.
    pub fn removed_cut_commit(&self) -> Option<CutCommit> {
        self.inner.cut_commit
    }

    /// The directory of the log.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends a batch atomically and durably: when this returns `Ok`, every event of the batch is
    /// on disk (flushed and fdatasync'd) and chained; on `Err`, nothing of the batch was written.
    /// `principal` is recorded as recorded-by of every event. Answers one [`Appended`] per event, in
    /// order; events whose id was recorded before with the same content are answered with the
    /// original (`duplicate: true`) and not written again.
    pub fn append(
        &self,
        batch: Vec<NewEvent>,
        principal: &str,
    ) -> Result<Vec<Appended>, AppendError> {
        if batch.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        if batch.len() > self.inner.max_batch_events {
            return Err(AppendError::BatchTooLarge {
                len: batch.len(),
                max: self.inner.max_batch_events,
            });
        }
        check_name("principal", principal).map_err(AppendError::InvalidPrincipal)?;
        for (index, event) in batch.iter().enumerate() {
            check_event(event).map_err(|reason| AppendError::InvalidEvent { index, reason })?;
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let request = AppendRequest {
            events: batch,
            principal: principal.to_owned(),
            reply,
        };
        // Leader/follower group commit in two pipelined phases (see `writer`). If no appender is
        // applying, this one leads: it takes everything queued (its own request included),
        // validates and applies it, hands the apply role on, then makes its group durable and
        // answers it. Otherwise it waits until its answer arrives or it can lead the next group. A
        // lone appender thus commits on its own thread without a hand-off; concurrent appenders
        // share fsyncs, and the next group is applied while the previous one is fsynced.
        let mut queue = lock(&self.inner.queue);
        queue.waiting.push(request);
        let mut leading = !queue.applying;
        queue.applying = true;
        loop {
            if leading {
                let term = ApplyTerm { inner: &self.inner };
                let (group, applied) = {
                    let mut writer = lock(&self.inner.writer);
                    let group = take_group(&mut queue.waiting, writer.max_group_events);
                    drop(queue);
                    let applied = writer.apply_group(&group);
                    (group, applied)
                };
                drop(term);
                if let Some(applied) = applied {
                    self.inner.syncer.make_durable(applied);
                }
                // Freeing the group's events is this appender's own work, after everyone's answer.
                drop(group);
            } else {
                drop(queue);
            }
            // Blocks until this append is answered (by its own group above, or another leader's)
            // or handed the apply role while its request is still queued.
            match answer.recv() {
                Ok(Wake::Answer(answer)) => return answer,
                Ok(Wake::Lead) => {
                    queue = lock(&self.inner.queue);
                    leading = true;
                }
                Err(mpsc::RecvError) => return Err(StorageError::AnswerLost.into()),
            }
        }
    }

    /// The last committed event's sequence and hash.
    pub fn head(&self) -> Head {
        self.inner.head_watch.get()
    }

    /// Blocks until the head passes `seq` or `timeout` elapses; returns the head then. For tailing
    /// readers (subscriptions) that have replayed up to `seq`.
    pub fn wait_for_head_after(&self, seq: u64, timeout: Duration) -> Head {
        let deadline = Instant::now() + timeout;
        let watch = &self.inner.head_watch;
        let mut head = watch
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while head.seq <= seq {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            head = match watch.advanced.wait_timeout(head, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *head
    }

    /// Streams events with sequence numbers in `range`, in order, without loading them all. The
    /// range is capped at the head when the iterator is created: only acknowledged, durable events
    /// are ever read (an event being committed could still vanish in a crash, and its sequence be
    /// reused). Tailing readers call [`EventLog::wait_for_head_after`] and read on.
    pub fn read_range(&self, range: impl RangeBounds<u64>) -> EventIter {
        EventIter {
            cursor: self.cursor(range),
        }
    }

    /// A cursor over the chunks holding `range`, capped at the durable head.
    fn cursor(&self, range: impl RangeBounds<u64>) -> ChunkCursor {
        let durable = self.head().seq;
        let first = match range.start_bound() {
            Bound::Included(seq) => Some(*seq),
            Bound::Excluded(seq) => seq.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let last = match range.end_bound() {
            Bound::Included(seq) => Some((*seq).min(durable)),
            Bound::Excluded(seq) => seq.checked_sub(1).map(|seq| seq.min(durable)),
            Bound::Unbounded => Some(durable),
        };
        ChunkCursor::new(&self.inner.tree, first, last)
    }

    /// Streams the events of one stream from `from_version` (1 for all), in stream order, up to
    /// the head at the call.
    pub fn read_stream(&self, stream_key: &str, from_version: u64) -> StreamIter {
        let durable = self.head().seq;
        let seqs = self
            .index()
            .stream_seqs(stream_key, from_version.max(1), durable);
        StreamIter {
            tree: self.inner.tree.clone(),
            seqs: seqs.into_iter(),
            chunk: None,
        }
    }

    /// The current version of a stream (0 if it has no events).
    pub fn stream_version(&self, stream_key: &str) -> Result<u64, StorageError> {
        // Infallible since the indexes moved to memory; kept a `Result` so callers need not change
        // if they ever move back to disk.
        let durable = self.head().seq;
        Ok(self.index().stream_version_at(stream_key, durable))
    }

    /// The event with sequence `seq`, if recorded (acknowledged and durable, as for `read_range`).
    pub fn get(&self, seq: u64) -> Result<Option<RecordedEvent>, StorageError> {
        if seq > self.head().seq {
            return Ok(None);
        }
        crate::read::read_event(&self.inner.tree, seq)
    }

    /// The event recorded under client event id `event_id`, if any.
    pub fn get_by_event_id(&self, event_id: &str) -> Result<Option<RecordedEvent>, StorageError> {
        let durable = self.head().seq;
        let candidates = self.index().candidates(event_id);
        for seq in candidates.into_iter().filter(|&seq| seq <= durable) {
            if let Some(event) = crate::read::read_event(&self.inner.tree, seq)?
                && event.event_id == event_id
            {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.inner
            .index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Streams stored events with sequence numbers in `range` as their canonical bytes and chain
    /// hashes, for an archive or a follower: like [`EventLog::read_range`], capped at the durable
    /// head when the iterator is created. The bytes are handed on as stored (layout checked, hash
    /// not): the receiver re-checks the chain.
    pub fn read_stored_range(&self, range: impl RangeBounds<u64>) -> StoredEventIter {
        StoredEventIter {
            cursor: self.cursor(range),
        }
    }

    /// Appends events another log already numbered, timestamped and chained (a restore from an
    /// archive, a follower), keeping their sequences, recorded-at times, principals and hashes.
    /// `events` must continue the head in order: each event's seq is the head's plus one, its
    /// previous hash is the head's hash, its canonical bytes hash to its stated hash, its stream
    /// version follows its stream and its event id is new; otherwise
    /// [`ReplicationError::Refused`] names the first sequence that failed and nothing is written.
    /// All or nothing, and durable (flushed and fdatasync'd) when this returns `Ok` with the new
    /// head. Waits for any group commit being applied; ordinary appends may interleave between
    /// calls, which a follower's log never has.
    pub fn append_replicated(&self, events: &[StoredEvent]) -> Result<Head, ReplicationError> {
        if events.is_empty() {
            return Err(ReplicationError::EmptyBatch);
        }
        if events.len() > self.inner.max_batch_events {
            return Err(ReplicationError::BatchTooLarge {
                len: events.len(),
                max: self.inner.max_batch_events,
            });
        }
        // Take the apply role as an appender leading a group commit would, so the writer's head
        // and indexes see no concurrent group.
        let mut queue = lock(&self.inner.queue);
        while queue.applying {
            queue.replicators_waiting += 1;
            queue = self
                .inner
                .replicator_turn
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.replicators_waiting -= 1;
        }
        queue.applying = true;
        let term = ApplyTerm { inner: &self.inner };
        let applied = {
            let mut writer = lock(&self.inner.writer);
            drop(queue);
            writer.apply_replicated(events)
        };
        drop(term);
        let head = applied?;
        self.inner
            .syncer
            .sync_through(head.seq)
            .map_err(|cause| StorageError::Poisoned { cause })?;
        Ok(head)
    }

    /// Walks the whole chain and the indexes and reports the first bad sequence and why.
    pub fn verify(&self) -> Result<VerifyReport, StorageError> {
        // The apply leader holds the writer while it inserts a group, head record last; the walk
        // itself needs no lock (it ends at the head record read here).
        let recorded = {
            let _no_group_in_flight = lock(&self.inner.writer);
            self.inner.tree.get(format::META_HEAD_KEY)?
        };
        verify::verify(&self.inner.tree, recorded)
    }
}

/// Walks the events `next_seq..=last_seq` chunk by chunk: one sled read and one checksum per
/// chunk, one decode per event. A seq no chunk holds is skipped (as a missing key was before
/// chunks; `verify` reports it); a damaged chunk is reported once and skipped.
struct ChunkCursor {
    chunks: sled::Iter,
    current: Option<Chunk>,
    next_seq: u64,
    last_seq: u64,
    done: bool,
}

impl ChunkCursor {
    fn new(tree: &sled::Tree, first: Option<u64>, last: Option<u64>) -> ChunkCursor {
        let (Some(first), Some(last)) = (first, last) else {
            return ChunkCursor::empty(tree);
        };
        if first > last {
            return ChunkCursor::empty(tree);
        }
        // The chunk holding `first` starts at or before it: the last chunk key up to it.
        let start = tree
            .range(format::chunk_key(0)..=format::chunk_key(first))
            .next_back()
            .and_then(|entry| entry.ok())
            .and_then(|(key, _)| format::seq_from_chunk_key(&key))
            .unwrap_or(first);
        ChunkCursor {
            chunks: tree.range(format::chunk_key(start)..=format::chunk_key(last)),
            current: None,
            next_seq: first,
            last_seq: last,
            done: false,
        }
    }

    fn empty(tree: &sled::Tree) -> ChunkCursor {
        ChunkCursor {
            chunks: tree.range(format::chunk_key(1)..format::chunk_key(1)),
            current: None,
            next_seq: 1,
            last_seq: 0,
            done: true,
        }
    }

    /// The next event's chunk and position, decoded by `decode`.
    fn next_with<T>(
        &mut self,
        decode: impl Fn(&Chunk, usize, u64) -> Result<T, StorageError>,
    ) -> Option<Result<T, StorageError>> {
        loop {
            if self.done || self.next_seq > self.last_seq {
                return None;
            }
            if let Some(chunk) = &self.current {
                if let Some(at) = chunk.position_of(self.next_seq) {
                    let seq = self.next_seq;
                    match self.next_seq.checked_add(1) {
                        Some(next) => self.next_seq = next,
                        None => self.done = true,
                    }
                    return Some(decode(chunk, at, seq));
                }
                self.current = None;
            }
            let (key, value) = match self.chunks.next()? {
                Ok(entry) => entry,
                Err(error) => return Some(Err(error.into())),
            };
            match parse_stored_chunk(&key, value) {
                Err(error) => return Some(Err(error)),
                Ok(chunk) if chunk.last_seq() < self.next_seq => {}
                Ok(chunk) => {
                    self.next_seq = self.next_seq.max(chunk.first_seq());
                    self.current = Some(chunk);
                }
            }
        }
    }
}

/// Iterator over events by sequence; see [`EventLog::read_range`].
pub struct EventIter {
    cursor: ChunkCursor,
}

impl fmt::Debug for EventIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventIter")
    }
}

impl Iterator for EventIter {
    type Item = Result<RecordedEvent, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next_with(|chunk, _, seq| event_of(chunk, seq))
    }
}

/// Iterator over stored events by sequence; see [`EventLog::read_stored_range`].
pub struct StoredEventIter {
    cursor: ChunkCursor,
}

impl fmt::Debug for StoredEventIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredEventIter")
    }
}

impl Iterator for StoredEventIter {
    type Item = Result<StoredEvent, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next_with(|chunk, at, seq| {
            let corrupt = |reason| StorageError::Corrupt {
                location: format!("event seq {seq}"),
                reason,
            };
            let stored = chunk.stored(at).unwrap_or_default();
            let event = StoredEvent::from_stored_value(stored).map_err(corrupt)?;
            if event.seq != seq {
                return Err(corrupt(crate::error::DecodeError::OutOfPlace {
                    claimed_seq: event.seq,
                }));
            }
            Ok(event)
        })
    }
}

/// Iterator over one stream's events; see [`EventLog::read_stream`].
pub struct StreamIter {
    tree: sled::Tree,
    seqs: std::vec::IntoIter<u64>,
    /// The chunk of the previous event: a stream's consecutive events often share one.
    chunk: Option<Chunk>,
}

impl fmt::Debug for StreamIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamIter")
    }
}

impl Iterator for StreamIter {
    type Item = Result<RecordedEvent, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let seq = self.seqs.next()?;
        let cached = self
            .chunk
            .as_ref()
            .is_some_and(|chunk| chunk.position_of(seq).is_some());
        if !cached {
            self.chunk = match chunk_holding(&self.tree, seq) {
                Ok(chunk) => chunk,
                Err(error) => return Some(Err(error)),
            };
        }
        Some(match &self.chunk {
            Some(chunk) => event_of(chunk, seq),
            None => Err(StorageError::Corrupt {
                location: format!("event seq {seq}"),
                reason: crate::error::DecodeError::Truncated {
                    field: "indexed event (missing)",
                },
            }),
        })
    }
}

fn check_name(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    if value.is_empty() {
        return Err(InvalidEvent::Empty { field });
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(InvalidEvent::TooLong {
            field,
            len: value.len(),
            max: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

fn check_event(event: &NewEvent) -> Result<(), InvalidEvent> {
    check_name("event id", &event.event_id)?;
    check_name("stream key", &event.stream_key)?;
    check_name("event type", &event.event_type)?;
    if event.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(InvalidEvent::TooLong {
            field: "payload",
            len: event.payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// Decides whether `path` is a log to open, a place to create one, or something else. Returns
/// whether a new log is being created.
fn check_directory(path: &Path, create_if_missing: bool) -> Result<bool, StorageError> {
    let not_a_log = |reason: &str| StorageError::NotAMyologLog {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if !create_if_missing {
                return Err(StorageError::Missing {
                    path: path.to_path_buf(),
                });
            }
            std::fs::create_dir_all(path)
                .map_err(durability::io_error("creating the log directory"))?;
            Ok(true)
        }
        Err(error) => Err(StorageError::Io {
            action: "inspecting the log path",
            source: error,
        }),
        Ok(metadata) if !metadata.is_dir() => Err(not_a_log("it is not a directory")),
        Ok(_) => {
            let names: HashSet<String> = std::fs::read_dir(path)
                .map_err(durability::io_error("listing the log directory"))?
                .filter_map(|entry| {
                    entry
                        .ok()
                        .map(|entry| entry.file_name().to_string_lossy().into_owned())
                })
                .collect();
            if names.contains("db") && names.contains("conf") {
                return Ok(false);
            }
            // Empty, or what a creation killed half-way leaves (sled makes `blobs/` first, then
            // `db`, then `conf`): a log still to be created. Anything else is someone's data.
            let sled_leftovers_only = names.iter().all(|name| {
                matches!(name.as_str(), "blobs" | "db" | "conf") || name.starts_with("snap.")
            });
            if !sled_leftovers_only {
                return Err(not_a_log(
                    "the directory holds other files and no sled database",
                ));
            }
            if !create_if_missing {
                return Err(StorageError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Ok(true)
        }
    }
}

/// Canonical paths of the logs this process has open, so that a second open in the same process
/// fails at once instead of waiting out `lock_wait`.
static OPEN_LOGS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Membership of a path in [`OPEN_LOGS`] for the lifetime of an [`EventLog`].
struct OpenLogRegistration {
    canonical: PathBuf,
}

impl OpenLogRegistration {
    fn register(path: &Path) -> Result<OpenLogRegistration, StorageError> {
        let canonical = path
            .canonicalize()
            .map_err(durability::io_error("resolving the log path"))?;
        let mut open_logs = OPEN_LOGS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if open_logs.contains(&canonical) {
            return Err(StorageError::InUse {
                path: path.to_path_buf(),
            });
        }
        open_logs.push(canonical.clone());
        Ok(OpenLogRegistration { canonical })
    }
}

impl Drop for OpenLogRegistration {
    fn drop(&mut self) {
        let mut open_logs = OPEN_LOGS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        open_logs.retain(|path| path != &self.canonical);
    }
}

fn open_sled_waiting_for_lock(path: &Path, options: &LogOptions) -> Result<sled::Db, StorageError> {
    let deadline = Instant::now() + options.lock_wait;
    loop {
        match options
            .sled_config(path)
            .open()
            .map_err(|error| map_open_error(path, error))
        {
            Err(StorageError::InUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn map_open_error(path: &Path, error: sled::Error) -> StorageError {
    // sled 0.34 reports a failed `flock` on `<dir>/db` as an `Other` I/O error with this text.
    if let sled::Error::Io(io) = &error
        && io.to_string().contains("could not acquire lock")
    {
        return StorageError::InUse {
            path: path.to_path_buf(),
        };
    }
    StorageError::from(error)
}

/// The metadata of a new log, written as one atomic batch: the magic, the format version, and the
/// small-values marker (no value stored yet, so no blob file can exist).
fn init_batch() -> sled::Batch {
    let mut init = sled::Batch::default();
    init.insert(format::META_MAGIC_KEY, format::MAGIC);
    init.insert(
        format::META_FORMAT_KEY,
        &format::FORMAT_VERSION.to_be_bytes()[..],
    );
    init.insert(format::META_SMALL_VALUES_KEY, &b"1"[..]);
    init
}

/// Opens the log's tree, initialising a pristine database, refusing foreign or newer ones.
fn open_myolog_tree(path: &Path, db: &sled::Db) -> Result<sled::Tree, StorageError> {
    let not_a_log = |reason: &str| StorageError::NotAMyologLog {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let has_tree = db
        .tree_names()
        .iter()
        .any(|name| name.as_ref() == format::TREE_NAME);
    if !has_tree {
        // Only a database nobody has written to becomes a log; never adopt someone else's data.
        let pristine = db.tree_names().len() == 1 && db.is_empty();
        if !pristine {
            return Err(not_a_log("a sled database without the Myolog magic"));
        }
        let tree = db.open_tree(format::TREE_NAME)?;
        tree.apply_batch(init_batch())?;
        return Ok(tree);
    }
    let tree = db.open_tree(format::TREE_NAME)?;
    let Some(magic) = tree.get(format::META_MAGIC_KEY)? else {
        // Creation writes the magic in the same atomic batch as everything else of the meta, so a
        // crash during creation leaves either the magic or an empty tree.
        if tree.is_empty() {
            tree.apply_batch(init_batch())?;
            return Ok(tree);
        }
        return Err(not_a_log("the log tree has no Myolog magic"));
    };
    if magic.as_ref() != format::MAGIC {
        return Err(not_a_log("the magic value is not Myolog's"));
    }
    let format_version = tree
        .get(format::META_FORMAT_KEY)?
        .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| not_a_log("the format version is missing or malformed"))?;
    if format_version < format::FORMAT_VERSION {
        return Err(StorageError::NeedsMigration {
            path: path.to_path_buf(),
            found: format_version,
            supported: format::FORMAT_VERSION,
        });
    }
    if format_version > format::FORMAT_VERSION {
        return Err(StorageError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: format_version,
            supported: format::FORMAT_VERSION,
        });
    }
    Ok(tree)
}

/// What opening found: the head, the indexes, damage that refuses appends, and a cut group commit
/// to remove.
struct Recovered {
    head: Head,
    index: Index,
    damage: Option<String>,
    /// The cut commit and its chunks' keys.
    cut_commit: Option<(CutCommit, Vec<sled::IVec>)>,
}

/// The chunks of a group commit that a crash cut before its head record was written: never
/// acknowledged, removed when the log is opened (see [`recover`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutCommit {
    /// The first and last sequence number the cut commit's chunks held.
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Rebuilds the head and the in-memory indexes from the chunks' tables (ids and stream keys; the
/// events are not decoded). A damaged or discontinuous chunk, or a head record that disagrees with
/// the last chunk, does not stop the log from opening — reads and `verify` must still work on a
/// damaged log — but it is returned as the reason to refuse appends.
///
/// The head record is a group commit's commit point (see [`crate::writer`]): a crash after some of
/// a group's chunks reached sled's log but before its head record did leaves chunks past the
/// recorded head, which nobody was told were stored. They are returned as a [`CutCommit`] only if
/// they are exactly what a cut commit leaves — chunks that follow the recorded head without a gap,
/// all with one commit time, the first event linking to the recorded head's hash, and no more events
/// than one group commit can hold (`max_cut_events`: a group takes up to `max_group_events`, and a
/// larger batch, of at most `max_batch_events`, goes alone); anything else past the head record is
/// reported as damage, as before, and nothing is removed.
fn recover(tree: &sled::Tree, max_cut_events: usize) -> Result<Recovered, StorageError> {
    let mut index = Index::default();
    let mut head = Head::default();
    let (recorded, recorded_damage) = match tree.get(format::META_HEAD_KEY)? {
        None => (None, None),
        Some(bytes) => match format::decode_head(&bytes) {
            Ok(recorded) => (Some(recorded), None),
            Err(error) => (
                None,
                Some(format!("the head record is damaged ({error}); run verify")),
            ),
        },
    };
    // Chunks past this seq are not committed; with a damaged head record every chunk is indexed.
    let committed_through = match (recorded, &recorded_damage) {
        (_, Some(_)) => u64::MAX,
        (Some((seq, _)), None) => seq,
        (None, None) => 0,
    };
    let mut last_seq = 0u64;
    let mut tail = Tail::default();
    let damaged = |head: Head, index: Index, problem: String| Recovered {
        head,
        index,
        damage: Some(problem),
        cut_commit: None,
    };
    for entry in tree.range(format::chunk_key(0)..=format::chunk_key(u64::MAX)) {
        let (key, value) = entry?;
        let chunk = match parse_stored_chunk(&key, value) {
            Ok(chunk) => chunk,
            Err(error) => return Ok(damaged(head, index, format!("{error}; run verify"))),
        };
        if Some(chunk.first_seq()) != last_seq.checked_add(1) {
            let problem = format!(
                "the chunk at seq {} does not follow seq {last_seq}; run verify",
                chunk.first_seq(),
            );
            return Ok(damaged(head, index, problem));
        }
        last_seq = chunk.last_seq();
        if chunk.first_seq() > committed_through {
            tail.add(key, chunk, max_cut_events);
            continue;
        }
        for at in 0..chunk.len() {
            if let (Some(event_id), Some(stream_key)) = (chunk.event_id(at), chunk.stream_key(at)) {
                index.insert(event_id, stream_key, chunk.first_seq() + at as u64);
            }
        }
        head = Head {
            seq: chunk.last_seq(),
            hash: chunk.last_hash(),
        };
    }
    if let Some(problem) = recorded_damage {
        return Ok(damaged(head, index, problem));
    }
    let agrees = match recorded {
        None => head.seq == 0,
        Some((seq, hash)) => seq == head.seq && hash == head.hash,
    };
    let disagreement = format!(
        "the head record ({}) disagrees with the last chunk, which ends at seq {last_seq}; run verify",
        recorded.map_or("missing".to_owned(), |(seq, _)| format!("seq {seq}")),
    );
    if !agrees {
        return Ok(damaged(head, index, disagreement));
    }
    let cut_commit = match tail.first {
        None => None,
        Some(first) => {
            let links = first
                .event(0)
                .is_ok_and(|event| event.prev_hash == head.hash);
            let one_group = tail.events <= max_cut_events as u64;
            if !(tail.one_commit && links && one_group) {
                return Ok(damaged(head, index, disagreement));
            }
            let cut = CutCommit {
                first_seq: first.first_seq(),
                last_seq,
            };
            Some((cut, tail.keys))
        }
    };
    Ok(Recovered {
        head,
        index,
        damage: None,
        cut_commit,
    })
}

/// The chunks past the head record, as [`recover`] finds them: the first (for its link to the head),
/// whether all share its commit time, how many events they hold, and their keys — collected only
/// while they could still be one cut commit, so a long damaged tail costs no memory.
#[derive(Default)]
struct Tail {
    first: Option<Chunk>,
    one_commit: bool,
    events: u64,
    keys: Vec<sled::IVec>,
}

impl Tail {
    fn add(&mut self, key: sled::IVec, chunk: Chunk, max_cut_events: usize) {
        self.events += chunk.len() as u64;
        match &self.first {
            None => self.one_commit = true,
            Some(first) => {
                self.one_commit &= chunk.recorded_at_unix_nanos() == first.recorded_at_unix_nanos();
            }
        }
        if self.events <= max_cut_events as u64 {
            self.keys.push(key);
        }
        self.first.get_or_insert(chunk);
    }
}

/// Removes a cut group commit's chunks, durably, before anything else is appended after the head.
fn remove_cut_commit(
    path: &Path,
    db: &sled::Db,
    tree: &sled::Tree,
    keys: &[sled::IVec],
) -> Result<(), StorageError> {
    let mut removal = sled::Batch::default();
    for key in keys {
        removal.remove(key.clone());
    }
    tree.apply_batch(removal)?;
    db.flush()?;
    DurableFiles::open(path)?.sync(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ExpectedVersion;

    fn request(events: usize) -> AppendRequest {
        let (reply, _answer) = mpsc::sync_channel(1);
        AppendRequest {
            events: (0..events)
                .map(|n| NewEvent {
                    event_id: format!("e{n}"),
                    stream_key: "s".into(),
                    expected_version: ExpectedVersion::Any,
                    event_type: "t".into(),
                    schema_version: 1,
                    payload: Vec::new(),
                })
                .collect(),
            principal: "p".into(),
            reply,
        }
    }

    /// Queues batches of `sizes` events, takes one group capped at `max_events`, and compares the
    /// group's batch sizes and what stays queued.
    fn check(sizes: &[usize], max_events: usize, taken: &[usize], left: &[usize]) {
        let mut waiting: Vec<_> = sizes.iter().map(|&size| request(size)).collect();
        let group = take_group(&mut waiting, max_events);
        let sizes_of = |requests: &[AppendRequest]| -> Vec<usize> {
            requests
                .iter()
                .map(|request| request.events.len())
                .collect()
        };
        assert_eq!(
            sizes_of(&group),
            taken,
            "taken from {sizes:?}, cap {max_events}"
        );
        assert_eq!(
            sizes_of(&waiting),
            left,
            "left of {sizes:?}, cap {max_events}"
        );
    }

    #[test]
    fn a_group_takes_queued_batches_in_order_up_to_the_cap_and_an_oversized_batch_alone() {
        check(&[1], 4, &[1], &[]);
        check(&[1, 1, 1, 1], 4, &[1, 1, 1, 1], &[]);
        check(&[1, 1, 1, 1, 1], 4, &[1, 1, 1, 1], &[1]);
        check(&[2, 3], 4, &[2], &[3]);
        check(&[3, 1, 1], 4, &[3, 1], &[1]);
        check(&[9, 1], 4, &[9], &[1]);
        check(&[1, 9], 4, &[1], &[9]);
        check(&[1000; 5], 4_000, &[1000; 4], &[1000]);
        check(&[10_000, 1], 4_000, &[10_000], &[1]);
    }
}
