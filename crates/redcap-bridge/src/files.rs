//! The files the bridge and `myolog import odm` keep beside a study's mapping: the mapping itself,
//! the ledger of what was sent, and atomic writes (a crash leaves the old or the new content). Not
//! for the bridge's own state (`crate::bridge`).

use std::io::Write;
use std::path::{Path, PathBuf};

use myolog_edc::mapping::Mapping;
use myolog_edc::plan::SentLedger;

/// A file that cannot be read, written or understood, named by its path.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mapping file {path}:\n{errors}")]
    Mapping { path: PathBuf, errors: String },
    #[error("ledger {path}: {message}")]
    Ledger { path: PathBuf, message: String },
}

/// The ledger's default place: `<mapping without .toml>.ledger.json` beside the mapping.
pub fn default_ledger_path(mapping: &Path) -> PathBuf {
    mapping.with_extension("ledger.json")
}

fn read_text(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a mapping file, every problem named by its TOML key path.
pub fn load_mapping(path: &Path) -> Result<Mapping, FileError> {
    Mapping::from_toml(&read_text(path)?).map_err(|errors| FileError::Mapping {
        path: path.to_path_buf(),
        errors: errors.to_string(),
    })
}

/// Reads a ledger; a missing file is an empty ledger (nothing sent yet).
pub fn load_ledger(path: &Path) -> Result<SentLedger, FileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => SentLedger::from_json(&text).map_err(|message| FileError::Ledger {
            path: path.to_path_buf(),
            message,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(SentLedger::default()),
        Err(source) => Err(FileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a file atomically: a temporary file beside it, fsynced, renamed over it, the directory
/// fsynced, so a crash leaves the old or the new content, never a mix.
pub fn write_atomically(path: &Path, content: &[u8]) -> Result<(), FileError> {
    let error = |source| FileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temporary = tempfile::NamedTempFile::new_in(&dir).map_err(error)?;
    temporary.write_all(content).map_err(error)?;
    temporary.as_file().sync_all().map_err(error)?;
    temporary
        .persist(path)
        .map_err(|persist| error(persist.error))?;
    if let Ok(directory) = std::fs::File::open(&dir) {
        // Not every platform can fsync a directory; the rename itself is what matters.
        let _ = directory.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_sits_beside_the_mapping() {
        assert_eq!(
            default_ledger_path(Path::new("/studies/stir.mapping.toml")),
            PathBuf::from("/studies/stir.mapping.ledger.json")
        );
        assert_eq!(
            default_ledger_path(Path::new("stir")),
            PathBuf::from("stir.ledger.json")
        );
    }
}
