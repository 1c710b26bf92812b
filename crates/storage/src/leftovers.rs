//! The log directory's lock, and the mending of what sled 0.34 leaves behind when a process is
//! killed inside one of sled's own non-atomic file writes, done before sled reads the directory.
//!
//! Two such writes exist in sled 0.34, and the SIGKILL crash test reached the first in CI:
//! * **Snapshots.** On every open, sled writes a snapshot to `snap.<lsn>.generating`, fsyncs it and
//!   renames it to `snap.<lsn>`; only then does it delete older snapshots. But its reader
//!   (`Config::get_snapshot_files`) skips only `.in___motion` files, so after a kill during that
//!   write it picks the cut `.generating` file (the highest name) and fails to open with "Read
//!   corrupted data". Deleting the file gives exactly the directory of a kill just before sled
//!   created it, a state sled recovers from: the previous snapshot and the log behind it are intact.
//! * **Configuration.** On creation, sled writes `conf` in place (text, then CRC) before it writes
//!   any data, and a cut `conf` fails the open the same way. While `db` is still empty and no
//!   snapshot exists, the database holds nothing, so `conf` can go and sled writes it whole again.
//!
//! Deleting sled's files is safe only while no other process uses the directory, so the log takes
//! an exclusive `flock` on the directory itself first and holds it for its lifetime. Unlike sled's
//! lock on `db`, it is released the moment the log is dropped.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::durability::io_error;
use crate::error::StorageError;

/// An exclusive lock on a log directory; released when dropped (the descriptor is closed).
#[derive(Debug)]
pub(crate) struct DirectoryLock {
    _directory: File,
}

impl DirectoryLock {
    /// Takes the lock, retrying for up to `wait` while another process holds it.
    pub(crate) fn acquire(path: &Path, wait: Duration) -> Result<DirectoryLock, StorageError> {
        let directory =
            File::open(path).map_err(io_error("opening the log directory to lock it"))?;
        let deadline = Instant::now() + wait;
        loop {
            match directory.try_lock() {
                Ok(()) => {
                    return Ok(DirectoryLock {
                        _directory: directory,
                    });
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StorageError::InUse {
                        path: path.to_path_buf(),
                    });
                }
                Err(TryLockError::Error(source)) => {
                    return Err(io_error("locking the log directory")(source));
                }
            }
        }
    }
}

/// Deletes cut snapshots and, in a database never written (an empty `db` and no snapshot), the
/// configuration. Answers whether the database was never written, i.e. whether the open is a
/// creation. Call only while holding the [`DirectoryLock`].
pub(crate) fn mend_sled_leftovers(path: &Path) -> Result<bool, StorageError> {
    let mut snapshot_left = false;
    let entries = std::fs::read_dir(path).map_err(io_error("listing the log directory"))?;
    for entry in entries {
        let entry = entry.map_err(io_error("listing the log directory"))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("snap.") {
            continue;
        }
        if name.ends_with(".generating") {
            std::fs::remove_file(entry.path())
                .map_err(io_error("deleting a snapshot sled left unfinished"))?;
        } else {
            snapshot_left = true;
        }
    }
    let conf = path.join("conf");
    let database_empty = match std::fs::metadata(path.join("db")) {
        Ok(metadata) => metadata.len() == 0,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
        Err(error) => return Err(io_error("inspecting the log's database file")(error)),
    };
    // A snapshot means sled once recovered data here: an empty `db` next to one is damage to
    // report, never a creation to redo.
    if database_empty && !snapshot_left && conf.exists() {
        std::fs::remove_file(&conf).map_err(io_error(
            "deleting the configuration of a database never written",
        ))?;
        return Ok(true);
    }
    Ok(false)
}
