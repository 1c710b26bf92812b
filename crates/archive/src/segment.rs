//! Sealed segments: a contiguous run of the hash chain as one immutable object, and the object
//! names that sort by sequence.
//!
//! # Object name
//!
//! `segments/<first seq>-<last seq>.e<epoch>.seg`, sequences as 20 decimal digits (every u64 fits,
//! so names sort by sequence as plain strings) and the writer's epoch as at least 4 digits, e.g.
//! `segments/00000000000000000001-00000000000000001000.e0003.seg`.
//!
//! # Segment format, version 1
//!
//! Integers big-endian, hashes 32 bytes:
//!
//! ```text
//! "MYOLOGSG"            8 bytes
//! format version        u16   (1)
//! writer epoch          u64
//! first seq             u64
//! last seq              u64
//! chain hash before     32 bytes (the hash of event first-1; zeros when first is 1)
//! chain hash after      32 bytes (the hash of event last)
//! event count           u32   (last - first + 1)
//! per event, in order:  canonical length u32 ‖ canonical event bytes ‖ event hash
//! checksum              32 bytes: SHA-256 of every byte before it
//! ```
//!
//! The canonical event bytes are exactly what the log hashes (`myolog_storage::format`), so anyone
//! can re-derive each event hash with `sha256sum` and follow the chain across segments from the
//! chain hashes. The checksum catches a damaged object before any event is parsed; the chain
//! catches an altered one even if its checksum was recomputed.

use sha2::{Digest, Sha256};

use myolog_storage::{Hash, StoredEvent};

/// The folder of segment objects under an archive's prefix.
pub const SEGMENT_FOLDER: &str = "segments";
/// The newest segment format this build reads and writes.
pub const SEGMENT_FORMAT_VERSION: u16 = 1;

const SEGMENT_TAG: &[u8; 8] = b"MYOLOGSG";
const HASH_LEN: usize = 32;
const SEQ_DIGITS: usize = 20;

/// What a segment object's name says: its sequence range and the epoch of the writer that sealed
/// it. Ordered by first seq, then last seq, then epoch: the archive's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName {
    pub first_seq: u64,
    pub last_seq: u64,
    pub epoch: u64,
}

impl SegmentName {
    /// The file name, without the folder.
    pub fn file_name(&self) -> String {
        format!(
            "{:0width$}-{:0width$}.e{:04}.seg",
            self.first_seq,
            self.last_seq,
            self.epoch,
            width = SEQ_DIGITS
        )
    }

    /// Parses a file name written by [`SegmentName::file_name`]; `None` for anything else.
    pub fn parse(file_name: &str) -> Option<SegmentName> {
        let stem = file_name.strip_suffix(".seg")?;
        let (range, epoch) = stem.split_once(".e")?;
        let (first, last) = range.split_once('-')?;
        let digits = |text: &str, width: usize| {
            (text.len() >= width && text.bytes().all(|byte| byte.is_ascii_digit()))
                .then(|| text.parse::<u64>().ok())
                .flatten()
        };
        let name = SegmentName {
            first_seq: digits(first, SEQ_DIGITS)?,
            last_seq: digits(last, SEQ_DIGITS)?,
            epoch: digits(epoch, 4)?,
        };
        // Only the canonical spelling: two names for one segment would defeat create-only puts.
        (name.file_name() == file_name && name.first_seq >= 1 && name.first_seq <= name.last_seq)
            .then_some(name)
    }
}

impl std::fmt::Display for SegmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SEGMENT_FOLDER}/{}", self.file_name())
    }
}

/// A sealed run of the chain: events `first_seq..=last_seq`, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub epoch: u64,
    /// The hash of the event before the first (zeros for a segment starting at seq 1).
    pub chain_before: Hash,
    pub events: Vec<StoredEvent>,
}

/// Why a segment object's bytes are not a valid segment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SegmentProblem {
    #[error("truncated while reading {0}")]
    Truncated(&'static str),
    #[error("not a Myolog segment (bad tag)")]
    BadTag,
    #[error("segment format version {found}; this build reads up to {supported}")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("checksum mismatch: the object was altered or damaged")]
    Checksum,
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    #[error("holds no events")]
    Empty,
    #[error("the header says {header}, the name says {name}: renamed or reordered")]
    NameMismatch { header: String, name: String },
    #[error("event {index} of the segment: {reason}")]
    Event {
        index: usize,
        reason: myolog_storage::Refusal,
    },
    #[error("event seq {seq} is not the next one (expected {expected})")]
    OutOfOrder { seq: u64, expected: u64 },
    #[error("event seq {seq} does not chain onto the event before it")]
    ChainBroken { seq: u64 },
    #[error("the header's chain hash after ({header}) is not the last event's hash ({last})")]
    ChainAfterMismatch { header: Hash, last: Hash },
}

impl Segment {
    /// The segment's first sequence (0 if it holds no events, which `encode` never writes).
    pub fn first_seq(&self) -> u64 {
        self.events.first().map_or(0, |event| event.seq)
    }

    pub fn last_seq(&self) -> u64 {
        self.events.last().map_or(0, |event| event.seq)
    }

    /// The hash of the last event: the chain hash the next segment starts from.
    pub fn chain_after(&self) -> Hash {
        self.events
            .last()
            .map_or(self.chain_before, |event| event.hash)
    }

    pub fn name(&self) -> SegmentName {
        SegmentName {
            first_seq: self.first_seq(),
            last_seq: self.last_seq(),
            epoch: self.epoch,
        }
    }

    /// Checks, before the segment is sealed, what a restore will check of its events: they start
    /// at `first_seq`, follow one another, chain from `chain_before`, and each one's canonical
    /// bytes hash to its hash (a log damaged on disk is never shipped). The layout of the bytes
    /// was checked when they were read from the log, and [`Segment::encode`] is a plain
    /// concatenation, so this is the whole of [`Segment::decode`]'s check at a third of its cost:
    /// one hash per event, no copy, no checksum recomputed over the encoded object.
    pub fn check_events(&self, first_seq: u64) -> Result<(), SegmentProblem> {
        if self.events.is_empty() {
            return Err(SegmentProblem::Empty);
        }
        let mut previous = self.chain_before;
        for (index, event) in self.events.iter().enumerate() {
            let expected = first_seq.saturating_add(index as u64);
            if event.seq != expected {
                return Err(SegmentProblem::OutOfOrder {
                    seq: event.seq,
                    expected,
                });
            }
            if event.prev_hash != previous {
                return Err(SegmentProblem::ChainBroken { seq: event.seq });
            }
            let recomputed = Hash(Sha256::digest(&event.canonical).into());
            if recomputed != event.hash {
                return Err(SegmentProblem::Event {
                    index,
                    reason: myolog_storage::Refusal::HashMismatch {
                        stated: event.hash,
                        recomputed,
                    },
                });
            }
            previous = event.hash;
        }
        Ok(())
    }

    /// The object's bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .events
            .iter()
            .map(|event| 4 + event.canonical.len() + HASH_LEN)
            .sum();
        let mut out = Vec::with_capacity(8 + 2 + 24 + 2 * HASH_LEN + 4 + size + HASH_LEN);
        out.extend_from_slice(SEGMENT_TAG);
        out.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.first_seq().to_be_bytes());
        out.extend_from_slice(&self.last_seq().to_be_bytes());
        out.extend_from_slice(&self.chain_before.0);
        out.extend_from_slice(&self.chain_after().0);
        // Segments hold at most a few thousand events (the archiver's count limit).
        out.extend_from_slice(&u32_len(self.events.len()));
        for event in &self.events {
            out.extend_from_slice(&u32_len(event.canonical.len()));
            out.extend_from_slice(&event.canonical);
            out.extend_from_slice(&event.hash.0);
        }
        let checksum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&checksum);
        out
    }

    /// Decodes and checks a segment object read under `name`: checksum, layout, that the header
    /// matches the name, every event's hash, and the chain from `chain before` to `chain after`.
    pub fn decode(bytes: &[u8], name: &SegmentName) -> Result<Segment, SegmentProblem> {
        let Some(body_len) = bytes.len().checked_sub(HASH_LEN) else {
            return Err(SegmentProblem::Truncated("checksum"));
        };
        let (body, checksum) = bytes.split_at(body_len);
        if bytes.len() >= SEGMENT_TAG.len() && &bytes[..SEGMENT_TAG.len()] != SEGMENT_TAG {
            return Err(SegmentProblem::BadTag);
        }
        let recomputed: [u8; 32] = Sha256::digest(body).into();
        if recomputed[..] != checksum[..] {
            return Err(SegmentProblem::Checksum);
        }
        let mut reader = Reader { bytes: body };
        if reader.take(SEGMENT_TAG.len(), "tag")? != SEGMENT_TAG {
            return Err(SegmentProblem::BadTag);
        }
        let version = u16::from_be_bytes(reader.array("format version")?);
        if version != SEGMENT_FORMAT_VERSION {
            return Err(SegmentProblem::UnsupportedVersion {
                found: version,
                supported: SEGMENT_FORMAT_VERSION,
            });
        }
        let epoch = u64::from_be_bytes(reader.array("epoch")?);
        let first_seq = u64::from_be_bytes(reader.array("first seq")?);
        let last_seq = u64::from_be_bytes(reader.array("last seq")?);
        let chain_before = Hash(reader.array("chain hash before")?);
        let chain_after = Hash(reader.array("chain hash after")?);
        let count = u32::from_be_bytes(reader.array("event count")?);
        let header = SegmentName {
            first_seq,
            last_seq,
            epoch,
        };
        if header != *name {
            return Err(SegmentProblem::NameMismatch {
                header: header.file_name(),
                name: name.file_name(),
            });
        }
        if count == 0 {
            return Err(SegmentProblem::Empty);
        }
        if u64::from(count) != last_seq.saturating_sub(first_seq).saturating_add(1) {
            return Err(SegmentProblem::Truncated(
                "events (count disagrees with range)",
            ));
        }
        // Never trust a count to size an allocation: each event takes at least 36 bytes.
        let mut events = Vec::with_capacity((count as usize).min(reader.bytes.len() / 36));
        let mut previous = chain_before;
        for index in 0..count as usize {
            let len = u32::from_be_bytes(reader.array("event length")?) as usize;
            let canonical = reader.take(len, "event bytes")?.to_vec();
            let hash = Hash(reader.array("event hash")?);
            let event = StoredEvent::from_canonical(canonical, hash)
                .map_err(|reason| SegmentProblem::Event { index, reason })?;
            let expected = first_seq.saturating_add(index as u64);
            if event.seq != expected {
                return Err(SegmentProblem::OutOfOrder {
                    seq: event.seq,
                    expected,
                });
            }
            if event.prev_hash != previous {
                return Err(SegmentProblem::ChainBroken { seq: event.seq });
            }
            previous = event.hash;
            events.push(event);
        }
        if !reader.bytes.is_empty() {
            return Err(SegmentProblem::TrailingBytes(reader.bytes.len()));
        }
        if previous != chain_after {
            return Err(SegmentProblem::ChainAfterMismatch {
                header: chain_after,
                last: previous,
            });
        }
        Ok(Segment {
            epoch,
            chain_before,
            events,
        })
    }
}

fn u32_len(len: usize) -> [u8; 4] {
    // Canonical events are bounded by the log's limits (a few MiB), segments by the count limit.
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

/// A bounds-checked cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], SegmentProblem> {
        if self.bytes.len() < len {
            return Err(SegmentProblem::Truncated(field));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], SegmentProblem> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_sort_by_sequence_and_reject_other_spellings() {
        let name = SegmentName {
            first_seq: 1,
            last_seq: 1000,
            epoch: 3,
        };
        assert_eq!(
            name.file_name(),
            "00000000000000000001-00000000000000001000.e0003.seg"
        );
        assert_eq!(SegmentName::parse(&name.file_name()), Some(name));
        let later = SegmentName {
            first_seq: 1001,
            last_seq: 1001,
            epoch: 12_345,
        };
        assert_eq!(SegmentName::parse(&later.file_name()), Some(later));
        assert!(name.file_name() < later.file_name());
        for other in [
            "1-1000.e0003.seg",
            "00000000000000000001-00000000000000001000.e3.seg",
            "00000000000000000001-00000000000000001000.e0003.seg.tmp",
            "00000000000000001000-00000000000000000001.e0003.seg",
            "00000000000000000000-00000000000000000001.e0003.seg",
            "0000000000000000000x-00000000000000000001.e0003.seg",
            "",
        ] {
            assert_eq!(SegmentName::parse(other), None, "{other}");
        }
    }

    /// Three chained events of a real log.
    fn three_events() -> Vec<StoredEvent> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = myolog_storage::EventLog::open(dir.path(), myolog_storage::LogOptions::default())
            .expect("open");
        for id in ["a", "b", "c"] {
            log.append(
                vec![myolog_storage::NewEvent {
                    event_id: id.into(),
                    stream_key: "s".into(),
                    expected_version: myolog_storage::ExpectedVersion::Any,
                    event_type: "T".into(),
                    schema_version: 1,
                    payload: vec![1, 2, 3],
                }],
                "tester",
            )
            .expect("append");
        }
        log.read_stored_range(1..=3)
            .collect::<Result<_, _>>()
            .expect("read")
    }

    #[test]
    fn events_are_checked_before_sealing_as_a_restore_checks_them() {
        let events = three_events();
        let check = |events: Vec<StoredEvent>, first_seq: u64, expected: Option<SegmentProblem>| {
            let segment = Segment {
                epoch: 1,
                chain_before: Hash::ZERO,
                events,
            };
            let checked = segment.check_events(first_seq);
            assert_eq!(checked.err(), expected);
            // Whatever passes the check decodes as a restore reads it.
            if expected.is_none() {
                assert_eq!(
                    Segment::decode(&segment.encode(), &segment.name()),
                    Ok(segment)
                );
            }
        };
        check(events.clone(), 1, None);
        check(Vec::new(), 1, Some(SegmentProblem::Empty));
        check(
            events.clone(),
            2,
            Some(SegmentProblem::OutOfOrder {
                seq: 1,
                expected: 2,
            }),
        );
        check(
            events[1..].to_vec(),
            2,
            Some(SegmentProblem::ChainBroken { seq: 2 }),
        );
        let skipped = vec![events[0].clone(), events[2].clone()];
        check(
            skipped,
            1,
            Some(SegmentProblem::OutOfOrder {
                seq: 3,
                expected: 2,
            }),
        );
        let mut damaged = events.clone();
        if let Some(byte) = damaged[1].canonical.last_mut() {
            *byte ^= 1;
        }
        let recomputed = Hash(Sha256::digest(&damaged[1].canonical).into());
        check(
            damaged,
            1,
            Some(SegmentProblem::Event {
                index: 1,
                reason: myolog_storage::Refusal::HashMismatch {
                    stated: events[1].hash,
                    recomputed,
                },
            }),
        );
    }

    #[test]
    fn arbitrary_bytes_are_a_problem_never_a_panic() {
        let name = SegmentName {
            first_seq: 1,
            last_seq: 1,
            epoch: 1,
        };
        let mut bytes = Vec::new();
        for len in 0..200usize {
            bytes.push((len * 31 + 7) as u8);
            assert!(Segment::decode(&bytes, &name).is_err());
            let mut tagged = SEGMENT_TAG.to_vec();
            tagged.extend_from_slice(&bytes);
            let checksum: [u8; 32] = Sha256::digest(&tagged).into();
            tagged.extend_from_slice(&checksum);
            assert!(Segment::decode(&tagged, &name).is_err());
        }
    }
}
