//! Surviving a lost disk: the event log shipped, as sealed segments of its hash chain, to a
//! directory or an S3-compatible bucket; rebuilt from them, whole or as of a point in time; and
//! its head signed so a rebuilt log can be proven to hold exactly the signed history. See
//! `docs/archive.md` for the segment format, the loss window and the operator's side.
//!
//! * [`ArchiveTarget`] — where segments go (`local_directory`, `s3_from_env`).
//! * [`archive_log`] — ship every durable event not yet archived (resumable);
//!   [`Archiver`] — the background archiver, sealing by count and age, with an [`ArchiveLag`].
//! * [`restore`] — rebuild a log (or, `verify_only`, check that one could be rebuilt).
//! * [`promote`] — make a (follower's) log the archive's next writer: catch up, claim the next
//!   epoch, record it on the volume; [`writer_epoch`] — the epoch a server on a volume uses.
//! * [`SignedHead`] — sign a log's head with Ed25519 and check a log against it.
//!
//! This crate is NOT clinical: it moves opaque stored events and never decodes a payload; it
//! knows neither sled (only `myolog-storage`) nor the wire (no tonic, no protobuf). It is async
//! (object_store is) and runs blocking log calls on tokio's blocking threads.

mod error;
mod head;
mod promote;
mod restore;
pub mod segment;
mod ship;
mod target;

pub use error::ArchiveError;
pub use head::{HeadError, HeadPublicKey, HeadSigningKey, SignedHead};
pub use promote::{EPOCH_RECORD_FILE, PromoteReport, promote, recorded_epoch, writer_epoch};
pub use restore::{RestoreOptions, RestorePoint, RestoreReport, restore, verify_archive};
pub use segment::{Segment, SegmentName, SegmentProblem};
pub use ship::{
    ArchiveLag, ArchiveReport, Archiver, LagHandle, SegmentPolicy, SegmentWriter, archive_log,
};
pub use target::ArchiveTarget;
