//! The in-memory indexes: event id -> seq and stream -> seqs, rebuilt at open from the chunk
//! tables (see [`crate::format`]) and extended by the writer as it stages each group.
//!
//! Memory is 30–60 bytes per event (hash-table and vector growth) plus each stream key once: event ids are kept as 64-bit
//! fingerprints, and a fingerprint match is confirmed by reading the event and comparing its id, so a
//! fingerprint collision costs one extra read and never a wrong answer.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash as _, Hasher};

/// Event ids and streams of all committed events, and of the events of the group being staged.
///
/// The writer stages each new event here as it validates it (so later events and batches of the
/// same group see it, without a per-batch map) and [`Index::unstage`]s the events of a batch that
/// fails. Readers only ever look at seqs up to the durable head, so staged entries are invisible
/// to them.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Fingerprint of an event id -> the seq of the first event whose id has that fingerprint.
    first_by_fingerprint: HashMap<u64, u64, ByFingerprint>,
    /// Further seqs whose ids share a fingerprint with an earlier one (rare).
    colliding: HashMap<u64, Vec<u64>, ByFingerprint>,
    /// Stream key -> seqs of its events in stream order; a stream's version is the length.
    streams: HashMap<String, Vec<u64>>,
}

/// Keys of the fingerprint maps are already SipHash outputs: hashing them again would only cost
/// time, so the map uses them as they are.
type ByFingerprint = BuildHasherDefault<FingerprintHasher>;

#[derive(Debug, Default)]
pub(crate) struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here (`write_u64`); fold anything else in rather than ignore it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
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
        self.insert_fingerprint(fingerprint(event_id), stream_key, seq);
    }

    /// [`Index::insert`] with the id's [`fingerprint`] already computed.
    pub fn insert_fingerprint(&mut self, print: u64, stream_key: &str, seq: u64) {
        let _ = self.insert_next(print, stream_key, |_| {
            Ok::<u64, std::convert::Infallible>(seq)
        });
    }

    /// Records the next event of `stream_key`, whose id has fingerprint `print`, at the seq that
    /// `seq_for` gives for the stream's current version (the writer checks the event's expected
    /// version there). Returns the event's stream version; records nothing if `seq_for` fails.
    /// One lookup of the stream and one of the fingerprint: this runs once per appended event.
    pub fn insert_next<E>(
        &mut self,
        print: u64,
        stream_key: &str,
        seq_for: impl FnOnce(u64) -> Result<u64, E>,
    ) -> Result<u64, E> {
        let existing = self.streams.get_mut(stream_key);
        let current_version = existing.as_ref().map_or(0, |seqs| seqs.len() as u64);
        let seq = seq_for(current_version)?;
        match existing {
            Some(seqs) => seqs.push(seq),
            None => {
                self.streams.insert(stream_key.to_owned(), vec![seq]);
            }
        }
        match self.first_by_fingerprint.entry(print) {
            Entry::Occupied(first) => {
                if *first.get() != seq {
                    self.colliding.entry(print).or_default().push(seq);
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(seq);
            }
        }
        Ok(current_version + 1)
    }

    /// Undoes the [`Index::insert_fingerprint`] of `seq`, which must be the latest insert not yet
    /// undone (the writer unstages a failed batch's events newest first).
    pub fn unstage(&mut self, print: u64, stream_key: &str, seq: u64) {
        if let Some(more) = self.colliding.get_mut(&print)
            && more.last() == Some(&seq)
        {
            more.pop();
            if more.is_empty() {
                self.colliding.remove(&print);
            }
        } else if self.first_by_fingerprint.get(&print) == Some(&seq) {
            self.first_by_fingerprint.remove(&print);
        }
        if let Some(seqs) = self.streams.get_mut(stream_key)
            && seqs.last() == Some(&seq)
        {
            seqs.pop();
            if seqs.is_empty() {
                self.streams.remove(stream_key);
            }
        }
    }

    /// Seqs of events whose id may be `event_id` (confirm each by reading it).
    pub fn candidates(&self, event_id: &str) -> Vec<u64> {
        self.candidates_by_fingerprint(fingerprint(event_id))
            .collect()
    }

    /// Seqs of events whose id has fingerprint `print`, in insertion order.
    pub fn candidates_by_fingerprint(&self, print: u64) -> impl Iterator<Item = u64> + '_ {
        let more: &[u64] = self.colliding.get(&print).map_or(&[], Vec::as_slice);
        self.first_by_fingerprint
            .get(&print)
            .copied()
            .into_iter()
            .chain(more.iter().copied())
    }

    /// The stream's current version: its number of events (the writer gets it from
    /// [`Index::insert_next`]).
    #[cfg(test)]
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

    #[test]
    fn unstaging_restores_the_index_as_it_was() {
        let mut index = Index::default();
        index.insert("a", "s", 1);
        index.insert("b", "s", 2);
        // Staged and undone, newest first: a new stream, a colliding id and a fresh id.
        index.insert_fingerprint(fingerprint("c"), "new", 3);
        index.insert_fingerprint(fingerprint("a"), "s", 4);
        index.insert_fingerprint(fingerprint("d"), "s", 5);
        assert_eq!(index.candidates("a"), [1, 4]);
        index.unstage(fingerprint("d"), "s", 5);
        index.unstage(fingerprint("a"), "s", 4);
        index.unstage(fingerprint("c"), "new", 3);
        assert_eq!(index.candidates("a"), [1]);
        assert!(index.candidates("c").is_empty());
        assert!(index.candidates("d").is_empty());
        assert_eq!(index.stream_version("s"), 2);
        assert_eq!(index.stream_version("new"), 0);
        assert!(index.colliding.is_empty());
        assert!(!index.streams.contains_key("new"));
    }

    #[test]
    fn insert_next_passes_the_current_version_and_records_nothing_when_refused() {
        let mut index = Index::default();
        index.insert("a", "s", 1);
        let mut seen = Vec::new();
        let refused = index.insert_next(fingerprint("b"), "s", |version| {
            seen.push(version);
            Err("expected version 0")
        });
        assert_eq!(refused, Err("expected version 0"));
        let refused_new = index.insert_next(fingerprint("c"), "new", |version| {
            seen.push(version);
            Err("expected version 3")
        });
        assert_eq!(refused_new, Err("expected version 3"));
        assert!(index.candidates("b").is_empty());
        assert!(index.candidates("c").is_empty());
        assert!(!index.streams.contains_key("new"));
        assert_eq!(index.stream_version("s"), 1);
        let accepted = index.insert_next(fingerprint("b"), "s", |version| {
            seen.push(version);
            Ok::<u64, &str>(2)
        });
        assert_eq!(accepted, Ok(2));
        let accepted_new = index.insert_next(fingerprint("c"), "new", |version| {
            seen.push(version);
            Ok::<u64, &str>(3)
        });
        assert_eq!(accepted_new, Ok(1));
        assert_eq!(seen, [1, 0, 1, 0]);
        assert_eq!(index.candidates("b"), [2]);
        assert_eq!(index.stream_seqs("s", 1, u64::MAX), [1, 2]);
        assert_eq!(index.stream_seqs("new", 1, u64::MAX), [3]);
    }
}
