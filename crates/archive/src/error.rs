//! Every way archiving, restoring and head signing can fail, as values. A segment that is missing,
//! duplicated, reordered or altered is named by its object name.

use myolog_storage::{Hash, ReplicationError, StorageError};

use crate::segment::{SegmentName, SegmentProblem};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive target {target}: {action} {object} failed: {source}")]
    Store {
        target: String,
        action: &'static str,
        object: String,
        source: Box<object_store::Error>,
    },
    #[error("archive target configuration: {0}")]
    Config(String),
    #[error("{action} {path}: {source}")]
    LocalIo {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{object} already exists: archive objects are written create-only and never replaced \
         (another writer sealed it)"
    )]
    AlreadyExists { object: String },
    #[error(
        "writer epoch {epoch} is fenced off: epoch {newer} has taken over this archive (a promoted \
         server writes it now); this server must not take writes: retire its volume, or rebuild \
         it from the archive (myolog restore) as a new follower"
    )]
    Fenced { epoch: u64, newer: u64 },
    #[error("the archive's epochs are exhausted (u64::MAX claimed): start a new archive")]
    EpochsExhausted,
    #[error("the writer epoch recorded in {path}: {problem}")]
    EpochRecord { path: String, problem: String },
    #[error("{object} is not an archive object this build knows (stray or renamed)")]
    UnknownObject { object: String },
    #[error("segment {name}: {problem}")]
    Segment {
        name: SegmentName,
        problem: SegmentProblem,
    },
    #[error("segments for seqs {from}..={to} are missing: the archive jumps to {next}")]
    MissingSegment {
        from: u64,
        to: u64,
        next: SegmentName,
    },
    #[error("segment {name} duplicates seqs already covered by {earlier}")]
    DuplicateSegment {
        name: SegmentName,
        earlier: SegmentName,
    },
    #[error(
        "segment {name} does not chain onto the segment before it (its chain hash before is \
         {found}, the previous segment ends on {expected})"
    )]
    SegmentChainBroken {
        name: SegmentName,
        expected: Hash,
        found: Hash,
    },
    #[error(
        "the archive and the log disagree at seq {seq} (archived hash {archived}, the log's \
         {log}): this archive belongs to another log"
    )]
    ForeignLog { seq: u64, archived: Hash, log: Hash },
    #[error("the archive holds seqs up to {archived}, beyond the log's head {head}")]
    ArchiveAheadOfLog { archived: u64, head: u64 },
    #[error(
        "the log being restored into already holds seqs up to {log}, beyond the restored {archived}"
    )]
    LogAheadOfArchive { log: u64, archived: u64 },
    #[error("the archive ends at seq {archived}; seq {requested} was asked for")]
    AsOfBeyondArchive { requested: u64, archived: u64 },
    #[error("restoring into {log}: {source}")]
    Replication {
        log: String,
        source: ReplicationError,
    },
    #[error("the restored log does not verify: {0}")]
    RestoredLogDamaged(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("a blocking log task failed: {0}")]
    Task(String),
}

impl ArchiveError {
    pub(crate) fn task(error: tokio::task::JoinError) -> ArchiveError {
        ArchiveError::Task(error.to_string())
    }
}
