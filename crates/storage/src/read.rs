//! One stored event read back by its sequence number and decoded, with any damage reported as
//! corruption at that sequence: shared by the log's reads, the writer's duplicate checks and the
//! replication append, below all three.

use crate::error::StorageError;
use crate::event::RecordedEvent;
use crate::format;

pub(crate) fn read_event(
    tree: &sled::Tree,
    seq: u64,
) -> Result<Option<RecordedEvent>, StorageError> {
    let key = format::event_key(seq);
    match tree.get(key)? {
        None => Ok(None),
        Some(value) => decode_stored(&key, &value).map(Some),
    }
}

pub(crate) fn decode_stored(key: &[u8], value: &[u8]) -> Result<RecordedEvent, StorageError> {
    format::decode_event(value).map_err(|reason| StorageError::Corrupt {
        location: match format::seq_from_event_key(key) {
            Some(seq) => format!("event seq {seq}"),
            None => format!("event key {key:?}"),
        },
        reason,
    })
}
