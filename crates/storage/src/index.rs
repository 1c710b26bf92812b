//! The in-memory indexes: event id -> seq and stream -> seqs, rebuilt at open from the commit
//! records (see [`crate::format`]) and extended by the writer after each durable commit.
//!
//! Memory is 30–60 bytes per event (hash-table and vector growth) plus each stream key once: event ids are kept as 64-bit
//! fingerprints, and a fingerprint match is confirmed by reading the event and comparing its id, so a
//! fingerprint collision costs one extra read and never a wrong answer.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};

/// Event ids and streams of all committed events.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Fingerprint of an event id -> the seq of the first event whose id has that fingerprint.
    first_by_fingerprint: HashMap<u64, u64>,
    /// Further seqs whose ids share a fingerprint with an earlier one (rare).
    colliding: HashMap<u64, Vec<u64>>,
    /// Stream key -> seqs of its events in stream order; a stream's version is the length.
    streams: HashMap<String, Vec<u64>>,
}

/// The fingerprint of an event id. SipHash with fixed keys: stable within a process, which is all an
/// in-memory index needs, and confirmed against the stored id on every match.
pub(crate) fn fingerprint(event_id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    event_id.hash(&mut hasher);
    hasher.finish()
}

impl Index {
    /// Records that event `seq` has id `event_id` and is the next event of `stream_key`.
    pub fn insert(&mut self, event_id: &str, stream_key: &str, seq: u64) {
        let print = fingerprint(event_id);
        if let Some(&first) = self.first_by_fingerprint.get(&print) {
            if first != seq {
                self.colliding.entry(print).or_default().push(seq);
            }
        } else {
            self.first_by_fingerprint.insert(print, seq);
        }
        match self.streams.get_mut(stream_key) {
            Some(seqs) => seqs.push(seq),
            None => {
                self.streams.insert(stream_key.to_owned(), vec![seq]);
            }
        }
    }

    /// Seqs of events whose id may be `event_id` (confirm each by reading it).
    pub fn candidates(&self, event_id: &str) -> Vec<u64> {
        let print = fingerprint(event_id);
        let mut seqs: Vec<u64> = self
            .first_by_fingerprint
            .get(&print)
            .copied()
            .into_iter()
            .collect();
        if let Some(more) = self.colliding.get(&print) {
            seqs.extend_from_slice(more);
        }
        seqs
    }

    /// The stream's current version: its number of events.
    pub fn stream_version(&self, stream_key: &str) -> u64 {
        self.streams
            .get(stream_key)
            .map_or(0, |seqs| seqs.len() as u64)
    }

    /// The stream's version counting only events up to seq `up_to` (readers pass the durable
    /// head, since the index also holds events still being made durable).
    pub fn stream_version_at(&self, stream_key: &str, up_to: u64) -> u64 {
        self.streams
            .get(stream_key)
            .map_or(0, |seqs| seqs.partition_point(|&seq| seq <= up_to) as u64)
    }

    /// Seqs of the stream's events from version `from_version` (1-based) on, up to seq `up_to`.
    pub fn stream_seqs(&self, stream_key: &str, from_version: u64, up_to: u64) -> Vec<u64> {
        let Some(seqs) = self.streams.get(stream_key) else {
            return Vec::new();
        };
        let end = seqs.partition_point(|&seq| seq <= up_to);
        let skip = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        seqs.get(skip..end).map(<[u64]>::to_vec).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_fingerprints_keep_every_candidate_and_streams_count_versions() {
        let mut index = Index::default();
        index.insert("a", "s", 1);
        index.insert("b", "s", 2);
        index.insert("c", "t", 3);
        // Simulate a collision by inserting a second seq under the same id's fingerprint.
        index.insert("a", "t", 4);
        assert_eq!(index.candidates("a"), [1, 4]);
        assert_eq!(index.candidates("b"), [2]);
        assert!(index.candidates("zzz").is_empty());
        assert_eq!(index.stream_version("s"), 2);
        assert_eq!(index.stream_version("t"), 2);
        assert_eq!(index.stream_version("none"), 0);
        assert_eq!(index.stream_seqs("s", 2, u64::MAX), [2]);
        assert_eq!(index.stream_seqs("t", 1, u64::MAX), [3, 4]);
        assert_eq!(index.stream_seqs("t", 1, 3), [3]);
        assert!(index.stream_seqs("t", 9, u64::MAX).is_empty());
        assert!(index.stream_seqs("t", 2, 3).is_empty());
        assert_eq!(index.stream_version_at("t", 3), 1);
        assert_eq!(index.stream_version_at("t", 2), 0);
    }
}
