//! Making sled's writes power-safe.
//!
//! sled 0.34's `flush()` ends in `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)`, which pushes
//! dirty pages to the device but neither flushes the device's volatile write cache nor persists file
//! metadata (sled issues #1351, #1452). An acknowledged append must survive power loss, so after
//! every flush the log calls `fdatasync` on sled's files itself:
//!
//! * `<dir>/db` — sled's log-structured data file, where every update is written;
//! * `<dir>/blobs/<lsn>` — sled writes any log item above segment size / 4 (128 KiB by default) to
//!   its own blob file and never syncs it; new blob files are synced, then the blobs directory
//!   (skipped while every stored value is too small to make sled write a blob:
//!   [`crate::format::META_SMALL_VALUES_KEY`]);
//! * `<dir>/conf` and the directory entries are synced once, when the log is created.
//!
//! sled's `snap.*` files are a recovery accelerator that sled rebuilds from `db` when missing, so
//! they need no sync of ours.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::StorageError;

/// Open handles to the files whose contents must be durable before an append is acknowledged.
#[derive(Debug)]
pub(crate) struct DurableFiles {
    db_file: File,
    blobs_dir: PathBuf,
    synced_blobs: HashSet<OsString>,
}

impl DurableFiles {
    pub fn open(dir: &Path) -> Result<DurableFiles, StorageError> {
        // Read-only is enough for fdatasync on Linux; sled's flock on `db` is unaffected by another
        // descriptor of the same file (unlike fcntl locks, which a close would release).
        let db_file = File::open(dir.join("db")).map_err(io_error("opening <log>/db for fsync"))?;
        let blobs_dir = dir.join("blobs");
        let mut files = DurableFiles {
            db_file,
            blobs_dir,
            synced_blobs: HashSet::new(),
        };
        // Blobs written before a crash may never have been synced: sync every one present now.
        files.sync_new_blobs()?;
        Ok(files)
    }

    /// fdatasync of the data file and, if `blobs_possible`, of any blob file not yet synced. Call
    /// after `Db::flush`. Listing the blobs directory costs about as much CPU as hashing an event,
    /// at every commit, so it is skipped while the log's values are all too small for sled to
    /// write a blob (see [`crate::format::SMALL_VALUE_LIMIT`]).
    pub fn sync(&mut self, blobs_possible: bool) -> Result<(), StorageError> {
        self.db_file
            .sync_data()
            .map_err(io_error("fdatasync of <log>/db"))?;
        if blobs_possible {
            self.sync_new_blobs()?;
        }
        Ok(())
    }

    fn sync_new_blobs(&mut self) -> Result<(), StorageError> {
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error("listing <log>/blobs")(error)),
        };
        let mut present = HashSet::new();
        let mut synced_any = false;
        for entry in entries {
            let entry = entry.map_err(io_error("listing <log>/blobs"))?;
            let name = entry.file_name();
            if !self.synced_blobs.contains(&name) {
                match File::open(entry.path()) {
                    Ok(blob) => blob
                        .sync_data()
                        .map_err(io_error("fdatasync of a sled blob"))?,
                    // sled garbage-collects blobs concurrently; a vanished blob needs no sync.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(io_error("opening a sled blob for fsync")(error)),
                }
                synced_any = true;
            }
            present.insert(name);
        }
        if synced_any {
            sync_dir(&self.blobs_dir)?;
        }
        // Forget blobs sled has removed, so the set does not grow forever.
        self.synced_blobs = present;
        Ok(())
    }
}

/// Syncs what a freshly created log consists of: sled's files and the directory entries naming them.
pub(crate) fn sync_new_log(dir: &Path) -> Result<(), StorageError> {
    for name in ["db", "conf"] {
        let path = dir.join(name);
        if path.exists() {
            File::open(&path)
                .and_then(|file| file.sync_all())
                .map_err(io_error("fsync of a new log's files"))?;
        }
    }
    let blobs = dir.join("blobs");
    if blobs.is_dir() {
        sync_dir(&blobs)?;
    }
    sync_dir(dir)?;
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// fsync of a directory, which persists the entries (file creations, renames) in it.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error("fsync of a directory"))
}

pub(crate) fn io_error(action: &'static str) -> impl Fn(io::Error) -> StorageError {
    move |source| StorageError::Io { action, source }
}
