//! Stored events read back by sequence number: finding the chunk that holds a seq, decoding one
//! event of it, with any damage reported as corruption at that sequence. Shared by the log's
//! reads, the writer's duplicate checks and the replication append, below all three.

use crate::error::{DecodeError, StorageError};
use crate::event::RecordedEvent;
use crate::format::{self, Chunk};

/// The chunk holding `seq`, checksum checked; `None` if no chunk does.
pub(crate) fn chunk_holding(tree: &sled::Tree, seq: u64) -> Result<Option<Chunk>, StorageError> {
    let Some(entry) = tree
        .range(format::chunk_key(0)..=format::chunk_key(seq))
        .next_back()
    else {
        return Ok(None);
    };
    let (key, value) = entry?;
    let chunk = parse_stored_chunk(&key, value)?;
    Ok(chunk.position_of(seq).is_some().then_some(chunk))
}

/// Parses a chunk read from the tree (layout and checksum), naming its key's seq on failure.
pub(crate) fn parse_stored_chunk(key: &[u8], value: sled::IVec) -> Result<Chunk, StorageError> {
    let chunk = Chunk::parse_checked(value).map_err(|reason| corrupt_chunk(key, reason))?;
    if format::seq_from_chunk_key(key) != Some(chunk.first_seq()) {
        return Err(corrupt_chunk(
            key,
            DecodeError::OutOfPlace {
                claimed_seq: chunk.first_seq(),
            },
        ));
    }
    Ok(chunk)
}

fn corrupt_chunk(key: &[u8], reason: DecodeError) -> StorageError {
    StorageError::Corrupt {
        location: match format::seq_from_chunk_key(key) {
            Some(seq) => format!("the chunk starting at event seq {seq}"),
            None => format!("chunk key {key:?}"),
        },
        reason,
    }
}

/// Decodes event `seq` of `chunk`, which must hold it.
pub(crate) fn event_of(chunk: &Chunk, seq: u64) -> Result<RecordedEvent, StorageError> {
    let at = chunk
        .position_of(seq)
        .ok_or_else(|| StorageError::Corrupt {
            location: format!("event seq {seq}"),
            reason: DecodeError::Truncated {
                field: "event (not in the chunk read for it)",
            },
        })?;
    chunk.event(at).map_err(|reason| StorageError::Corrupt {
        location: format!("event seq {seq}"),
        reason,
    })
}

pub(crate) fn read_event(
    tree: &sled::Tree,
    seq: u64,
) -> Result<Option<RecordedEvent>, StorageError> {
    match chunk_holding(tree, seq)? {
        None => Ok(None),
        Some(chunk) => event_of(&chunk, seq).map(Some),
    }
}
