//! Crash safety: a child process appends in a loop and is killed with SIGKILL at random moments
//! (half of them while it opens the log); after every kill, each acknowledged event is present and
//! intact, the sequence is contiguous, the chain verifies and new appends work.
//!
//! The child is this test binary re-executed with an environment variable set, running
//! `crash_child_appends_until_killed`, which prints `ACK <seq> <event id> <hash>` after each append
//! returns. SIGKILL kills the process but not the kernel, so this proves the log's recovery of
//! whatever sled had written; power loss is covered by the fdatasync discipline (see docs/operations.md, storage durability).
#![allow(clippy::unwrap_used)] // A test should fail loudly at the failing call; helpers included.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{event, payload_for};
use myolog_storage::{EventLog, ExpectedVersion, Hash, StorageError};

const CHILD_LOG_VAR: &str = "MYOLOG_TEST_CRASH_CHILD_LOG";
const CHILD_ROUND_VAR: &str = "MYOLOG_TEST_CRASH_CHILD_ROUND";
const SEED_VAR: &str = "MYOLOG_TEST_CRASH_SEED";
/// Kills per test run: half of them early (see `kill_delay`), half in the append loop.
const KILLS: u32 = 48;

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Acked {
    event_id: String,
    hash: Hash,
}

#[test]
fn acknowledged_events_survive_sigkill_at_random_moments() {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash test seed {seed} (set {SEED_VAR} to replay)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let mut acked: BTreeMap<u64, Acked> = BTreeMap::new();
    let mut acked_by_children = 0usize;
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_appends_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_LOG_VAR, &path)
            .env(CHILD_ROUND_VAR, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            // Only complete lines count: a line cut by the kill was never fully acknowledged.
            let mut lines = Vec::new();
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    lines.push(line.trim_end().to_owned());
                }
                line.clear();
            }
            lines
        });
        std::thread::sleep(kill_delay(round, &mut rng));
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        for line in lines.iter().filter(|line| line.starts_with("ACK ")) {
            let fields: Vec<&str> = line.split(' ').collect();
            let seq: u64 = fields[1].parse().unwrap();
            let entry = Acked {
                event_id: fields[2].to_owned(),
                hash: Hash::from_hex(fields[3]).unwrap(),
            };
            if let Some(previous) = acked.insert(seq, entry.clone()) {
                assert_eq!(
                    previous, entry,
                    "round {round}: seq {seq} acknowledged twice differently"
                );
            }
            acked_by_children += 1;
        }

        let log = open_after_kill(&path);
        check_every_acknowledged_event(&log, &acked, round);
        // New appends work and continue the sequence.
        let id = format!("parent-after-kill-{round}");
        let appended = log
            .append(vec![event(&id, "parent", ExpectedVersion::Any)], "parent")
            .unwrap();
        assert_eq!(appended[0].seq, log.head().seq);
        assert!(!appended[0].duplicate);
        acked.insert(
            appended[0].seq,
            Acked {
                event_id: id,
                hash: appended[0].hash,
            },
        );
        // A retry of an event acknowledged before the kill is recognised, not duplicated.
        if let Some((&seq, last)) = acked
            .iter()
            .rev()
            .find(|(_, a)| a.event_id.starts_with('c'))
        {
            let retry = log
                .append(vec![child_event(&last.event_id)], "child")
                .unwrap();
            assert_eq!(
                (retry[0].seq, retry[0].hash, retry[0].duplicate),
                (seq, last.hash, true)
            );
        }
    }
    assert!(
        acked_by_children >= 50,
        "the children acknowledged only {acked_by_children} events"
    );
    println!("{acked_by_children} events acknowledged by killed children, all recovered");
}

/// How long the child lives. Odd rounds kill it within 40 ms, while it starts, opens the log and
/// sled recovers (and rewrites its snapshot, the write whose cut left a log sled could not open
/// until `leftovers.rs` mended it: early kills found that within a few runs of this test, the
/// later ones only rarely); even rounds kill it 20-300 ms in, deep into its append loop.
fn kill_delay(round: u32, rng: &mut Rng) -> Duration {
    if round % 2 == 1 {
        Duration::from_millis(rng.below(40))
    } else {
        Duration::from_millis(20 + rng.below(280))
    }
}

fn open_after_kill(path: &std::path::Path) -> EventLog {
    // The kernel releases a killed process's flock as it reaps it; give it a moment if needed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match EventLog::open(path, common::options()) {
            Ok(log) => return log,
            Err(StorageError::InUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(error) => panic!("reopen after kill failed: {error}"),
        }
    }
}

fn check_every_acknowledged_event(log: &EventLog, acked: &BTreeMap<u64, Acked>, round: u32) {
    let head = log.head();
    let last_acked = acked.keys().next_back().copied().unwrap_or(0);
    assert!(
        head.seq >= last_acked,
        "round {round}: head {} behind acknowledged seq {last_acked}",
        head.seq
    );
    let mut expected_seq = 1;
    let mut previous = Hash::ZERO;
    for event in log.read_range(..) {
        let event = event.unwrap();
        assert_eq!(
            event.seq, expected_seq,
            "round {round}: sequence not contiguous"
        );
        assert_eq!(
            event.prev_hash, previous,
            "round {round}: chain broken at {}",
            event.seq
        );
        assert_eq!(
            event.payload,
            payload_for(&event.event_id),
            "round {round}: payload of {}",
            event.seq
        );
        if let Some(acked) = acked.get(&event.seq) {
            assert_eq!(
                (&event.event_id, event.hash),
                (&acked.event_id, acked.hash),
                "round {round}"
            );
        }
        previous = event.hash;
        expected_seq += 1;
    }
    assert_eq!(
        expected_seq - 1,
        head.seq,
        "round {round}: replay ends before the head"
    );
    let report = log.verify().unwrap();
    assert!(report.is_intact(), "round {round}: {report:?}");
}

fn child_event(event_id: &str) -> myolog_storage::NewEvent {
    let stream = format!("child/{}", event_id.len() % 3);
    event(event_id, &stream, ExpectedVersion::Any)
}

/// The child of `acknowledged_events_survive_sigkill_at_random_moments`; a no-op in a normal run.
#[test]
fn crash_child_appends_until_killed() {
    let Some(path) = std::env::var_os(CHILD_LOG_VAR) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_VAR).unwrap().parse().unwrap();
    let log = open_after_kill(std::path::Path::new(&path));
    // Two appending threads, so kills also land inside group commits of several batches.
    let threads: Vec<_> = (0..2u64)
        .map(|thread| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut rng = Rng((round + 1) * 7919 + thread * 104_729);
                for batch_number in 0.. {
                    let size = 1 + rng.below(8);
                    let batch: Vec<_> = (0..size)
                        .map(|i| child_event(&format!("c{round}-{thread}-{batch_number}-{i}")))
                        .collect();
                    let ids: Vec<String> = batch.iter().map(|e| e.event_id.clone()).collect();
                    let appended = log.append(batch, "child").unwrap();
                    let mut out = std::io::stdout().lock();
                    for (id, appended) in ids.iter().zip(&appended) {
                        writeln!(out, "ACK {} {id} {}", appended.seq, appended.hash).unwrap();
                    }
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
