//! Audit end-to-end: the synthetic cohort through a real server batch by batch, keeping what the
//! service reported after each batch; then replays of the log as of each batch's last sequence (from
//! the command-line code path and over `Audit.Replay`) must equal those live outcomes exactly. Also:
//! byte-identical replays, as-of-time, provenance, the exports, and a tampered log.

use std::collections::BTreeMap;

use myolog_audit::progress::Progress;
use myolog_audit::replay::{self, AsOf, Format};
use myolog_audit::{adam, export};
use myolog_cli::audit::open_log;
use myolog_proto::v1 as pb;
use myolog_synth::Cohort;
use myolog_tests::{Clients, cohort_batches, start};

const SEED: u64 = 2017;
const SUBJECTS: usize = 4;

/// What the service said after one batch.
struct Snapshot {
    last_sequence: u64,
    last_hash: Vec<u8>,
    outcomes: Vec<pb::VisitOutcome>,
    cohort: pb::CohortOutcomes,
}

/// Streams a small cohort batch by batch through a live server over `dir`, snapshotting every
/// subject's outcomes and the cohort after each accepted batch; stops the server.
async fn live_snapshots(dir: &std::path::Path) -> Vec<Snapshot> {
    let server = start(dir).await;
    let mut clients = Clients::connect(&server).await;
    let cohort = Cohort::new(SEED, SUBJECTS);
    let mut snapshots = Vec::new();
    for batch in cohort_batches(&cohort, false) {
        let response = clients.append(batch).await;
        let last = response
            .acks
            .iter()
            .max_by_key(|ack| ack.sequence)
            .expect("an accepted batch has acks");
        let mut outcomes = Vec::new();
        for index in 0..SUBJECTS {
            outcomes.extend(clients.subject(index).await.visits);
        }
        snapshots.push(Snapshot {
            last_sequence: last.sequence,
            last_hash: last.hash.clone(),
            outcomes,
            cohort: clients.cohort().await,
        });
    }
    server.stop().await.expect("server stops");
    snapshots
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_as_of_each_batch_equals_what_the_service_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshots = live_snapshots(dir.path()).await;
    assert!(snapshots.len() > 10, "enrollment and many visit batches");

    // Over gRPC first (a server on the same log, restarted), then from the log directly.
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    for snapshot in &snapshots {
        let mut stream = clients
            .audit
            .replay(pb::ReplayRequest {
                as_of: Some(pb::replay_request::AsOf::Sequence(snapshot.last_sequence)),
            })
            .await
            .expect("replay call")
            .into_inner();
        let mut replayed = Vec::new();
        while let Some(item) = stream.message().await.expect("replayed outcome") {
            let provenance = item.provenance.expect("provenance");
            assert_eq!(provenance.last_sequence, snapshot.last_sequence);
            assert_eq!(provenance.chain_hash, snapshot.last_hash);
            assert_eq!(provenance.engine_version, env!("CARGO_PKG_VERSION"));
            replayed.push(item.outcome.expect("outcome"));
        }
        assert_eq!(
            replayed, snapshot.outcomes,
            "Audit.Replay as of {}",
            snapshot.last_sequence
        );
    }
    let beyond = clients
        .audit
        .replay(pb::ReplayRequest {
            as_of: Some(pb::replay_request::AsOf::Sequence(u64::MAX)),
        })
        .await
        .expect("replay call")
        .into_inner()
        .message()
        .await;
    assert_eq!(
        beyond.expect_err("beyond the head").code(),
        tonic::Code::OutOfRange
    );
    server.stop().await.expect("server stops");

    let log = open_log(dir.path()).expect("log opens");
    for snapshot in &snapshots {
        let replayed = replay::project(
            &log,
            AsOf::Sequence(snapshot.last_sequence),
            &mut Progress::hidden(),
        )
        .expect("replay");
        let outcomes: Vec<pb::VisitOutcome> = replayed
            .outcomes()
            .into_iter()
            .map(|r| {
                assert_eq!(r.provenance.last_sequence, snapshot.last_sequence);
                assert_eq!(
                    r.provenance.chain_hash,
                    snapshot
                        .last_hash
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                );
                assert!(
                    r.provenance.algorithms.iter().any(|a| a == "doi-2004@1")
                        && r.provenance.algorithms.iter().any(|a| a == "tis-2016@1"),
                    "{:?}",
                    r.provenance.algorithms
                );
                myolog_wire::outcome::visit_outcome(&r.outcome)
            })
            .collect();
        assert_eq!(
            outcomes, snapshot.outcomes,
            "replay as of {}",
            snapshot.last_sequence
        );
        // `myolog replay`'s JSON Lines carry the service's result JSON byte for byte.
        let mut jsonl = Vec::new();
        replayed
            .write_all_outcomes(Format::Jsonl, &mut jsonl)
            .expect("replay written");
        let lines: Vec<&str> = std::str::from_utf8(&jsonl)
            .expect("UTF-8")
            .lines()
            .collect();
        assert_eq!(lines.len(), snapshot.outcomes.len());
        for (line, live) in lines.iter().zip(&snapshot.outcomes) {
            let result = format!("\"result\":{},", live.result_json);
            assert!(line.contains(&result), "{line}\n{result}");
        }
        assert_eq!(
            replayed
                .cohorts()
                .iter()
                .map(myolog_wire::outcome::cohort)
                .collect::<Vec<_>>(),
            vec![snapshot.cohort.clone()],
            "cohort as of {}",
            snapshot.last_sequence
        );
    }
}

/// A log with the whole demo cohort (correction included), closed.
async fn demo_log(dir: &std::path::Path) {
    let server = start(dir).await;
    let mut clients = Clients::connect(&server).await;
    for batch in cohort_batches(&Cohort::new(SEED, SUBJECTS), true) {
        clients.append(batch).await;
    }
    server.stop().await.expect("server stops");
}

fn replay_bytes(log: &myolog_storage::EventLog, as_of: AsOf, format: Format) -> Vec<u8> {
    let replayed = replay::project(log, as_of, &mut Progress::hidden()).expect("replay");
    let mut out = Vec::new();
    replay::write_outcomes(&replayed.outcomes(), format, &mut out).expect("write");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_byte_identical_and_as_of_time_cuts_at_recorded_at() {
    let dir = tempfile::tempdir().expect("temp dir");
    demo_log(dir.path()).await;
    let log = open_log(dir.path()).expect("log opens");
    for format in [Format::Jsonl, Format::Csv] {
        let first = replay_bytes(&log, AsOf::Head, format);
        assert!(!first.is_empty());
        assert_eq!(first, replay_bytes(&log, AsOf::Head, format), "{format:?}");
    }
    // The cohort statistics: deterministic too, one record per study x follow-up visit.
    let replayed = replay::project(&log, AsOf::Head, &mut Progress::hidden()).expect("replay");
    let cohorts = |format| {
        let mut out = Vec::new();
        replay::write_cohorts(&replayed, format, &mut out).expect("cohorts");
        out
    };
    assert_eq!(cohorts(Format::Csv), cohorts(Format::Csv));
    // Per visit, the row of every subject, then one per arm (here the demo's one enrolled arm).
    let rows: Vec<(u32, myolog_projection::report::CohortVisit)> = replayed
        .cohorts()
        .iter()
        .flat_map(|c| {
            c.visits.iter().flat_map(move |v| {
                std::iter::once((c.enrolled, v.clone()))
                    .chain(v.arms.iter().map(move |arm| (c.enrolled, arm.clone())))
            })
        })
        .collect();
    assert!(rows.iter().any(|(_, v)| !v.arm.is_empty()), "arm rows");
    let jsonl = String::from_utf8(cohorts(Format::Jsonl)).expect("utf-8");
    assert_eq!(jsonl.lines().count(), rows.len());
    for (line, (enrolled, visit)) in jsonl.lines().zip(&rows) {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        assert_eq!(value["visit_id"], visit.visit_id);
        assert_eq!(value["arm"], visit.arm);
        // Every demo subject is on the one arm.
        assert_eq!(value["enrolled"], *enrolled);
        assert_eq!(value["subjects"], visit.subjects);
        let doi = visit.doi_responders.unwrap_or_default();
        assert_eq!(value["doi_responders"]["responders"], doi.responders);
    }
    drop(replayed);

    // Every line of the JSONL parses and carries its provenance.
    let jsonl = String::from_utf8(replay_bytes(&log, AsOf::Head, Format::Jsonl)).expect("utf-8");
    let head = log.head();
    for line in jsonl.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        assert_eq!(value["provenance"]["last_sequence"], head.seq);
        assert_eq!(value["provenance"]["chain_hash"], head.hash.to_hex());
    }

    // As of the recorded-at of some events: everything recorded up to then, nothing after.
    let events: Vec<_> = log
        .read_range(1..=head.seq)
        .collect::<Result<_, _>>()
        .expect("read");
    for probe in [1, head.seq / 3, head.seq / 2, head.seq] {
        let at = events[usize::try_from(probe - 1).expect("index")].recorded_at_unix_nanos;
        let expected_last = events
            .iter()
            .take_while(|e| e.recorded_at_unix_nanos <= at)
            .last()
            .expect("at least the probe")
            .seq;
        let by_time =
            replay::project(&log, AsOf::Time(at), &mut Progress::hidden()).expect("replay by time");
        assert_eq!(
            by_time.last_sequence, expected_last,
            "as of time of {probe}"
        );
        assert_eq!(
            replay_bytes(&log, AsOf::Time(at), Format::Jsonl),
            replay_bytes(&log, AsOf::Sequence(expected_last), Format::Jsonl)
        );
    }
    let before_anything = replay::project(&log, AsOf::Time(0), &mut Progress::hidden())
        .expect("replay before the first event");
    assert_eq!(before_anything.last_sequence, 0);
    assert!(before_anything.outcomes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_link_corrections_and_flag_responders() {
    let dir = tempfile::tempdir().expect("temp dir");
    demo_log(dir.path()).await;
    let log = open_log(dir.path()).expect("log opens");

    let mut trail = Vec::new();
    let written = export::write_audit_trail(
        &log,
        AsOf::Head,
        Format::Jsonl,
        &mut trail,
        &mut Progress::hidden(),
    )
    .expect("audit trail");
    assert_eq!(written, log.head().seq);
    let mut prefix = Vec::new();
    let written_prefix = export::write_audit_trail(
        &log,
        AsOf::Sequence(10),
        Format::Jsonl,
        &mut prefix,
        &mut Progress::hidden(),
    )
    .expect("audit trail as of 10");
    assert_eq!(written_prefix, 10);
    assert!(
        trail.starts_with(&prefix),
        "the prefix's trail is the trail's prefix"
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(trail.clone())
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    let by_id: BTreeMap<&str, &serde_json::Value> = rows
        .iter()
        .map(|row| (row["event_id"].as_str().expect("event id"), row))
        .collect();
    let corrections: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|row| row["event_type"] == "myolog.v1.AssessmentCorrected")
        .collect();
    assert_eq!(corrections.len(), 1);
    let correction = corrections[0];
    assert!(!correction["why"].as_str().unwrap_or_default().is_empty());
    let superseded = correction["supersedes"]["event_id"]
        .as_str()
        .expect("supersedes");
    assert_eq!(
        by_id[superseded]["sequence"], correction["supersedes"]["sequence"],
        "the link names the superseded event's sequence"
    );
    assert!(
        by_id[superseded]["what"]
            .as_str()
            .unwrap_or_default()
            .starts_with("globals:"),
        "the superseded value stays in the trail"
    );
    for row in &rows {
        assert_eq!(row["recorded_by"], "edc-default");
        assert!(
            row["recorded_at"]
                .as_str()
                .unwrap_or_default()
                .ends_with('Z')
        );
    }

    // The ADaM dataset agrees with the replayed outcomes it came from.
    let replayed = replay::project(&log, AsOf::Head, &mut Progress::hidden()).expect("replay");
    let outcomes = replayed.outcomes();
    let dataset = adam::rows(&replayed);
    for replayed in &outcomes {
        let o = &replayed.outcome;
        let row = |paramcd: &str| {
            dataset
                .iter()
                .find(|r| {
                    r.subjid == o.subject_id.as_str()
                        && r.avisit == o.visit_id.as_str()
                        && r.paramcd == paramcd
                })
                .unwrap_or_else(|| panic!("{paramcd} row of {} {}", o.subject_id, o.visit_id))
        };
        let doi = row("DOI");
        let expected = match o.doi_status() {
            "met" => Some(true),
            "not_met" => Some(false),
            _ => None,
        };
        assert_eq!(doi.crit1fl, expected, "{} {}", o.subject_id, o.visit_id);
        let tis = row("TIS");
        let score = o.tis_score();
        assert_eq!(
            tis.aval.map(|d| d.to_string()).unwrap_or_default(),
            score,
            "TIS of {} {}",
            o.subject_id,
            o.visit_id
        );
        if let Some(cdasi) = o.cdasi() {
            let act = row("CDASIACT");
            assert_eq!(
                act.chg.map(|d| d.to_string()),
                cdasi.activity_change.map(|c| c.to_string())
            );
            assert_eq!(act.crit1fl, Some(cdasi.mcid_reached));
        }
        assert!(
            doi.ady.is_some_and(|day| day > 1),
            "follow-up after baseline"
        );
    }
    // Each subject's rows start with its baseline records (ABLFL = Y, AVAL = BASE, study day 1).
    for replayed in &outcomes {
        let o = &replayed.outcome;
        let first = dataset
            .iter()
            .find(|r| r.subjid == o.subject_id.as_str())
            .expect("rows of the subject");
        assert!(first.ablfl && first.avisit == o.baseline_visit_id.as_str());
        if let Some(cdasi) = o.cdasi() {
            let base = dataset
                .iter()
                .find(|r| r.subjid == o.subject_id.as_str() && r.ablfl && r.paramcd == "CDASIACT")
                .expect("CDASI baseline record");
            assert_eq!(
                base.aval.map(|d| d.to_string()),
                cdasi.baseline_activity.map(|v| v.to_string())
            );
            assert_eq!(base.ady, Some(1));
            assert_eq!((base.chg, base.crit1fl), (None, None));
        }
    }
    let mut csv = Vec::new();
    adam::write_dataset(&dataset, Format::Csv, &mut csv).expect("csv");
    let csv = String::from_utf8(csv).expect("utf-8");
    assert!(csv.starts_with("STUDYID,USUBJID,SUBJID,ARMCD,ARM,AVISIT,ADT,ADY,ABLFL,PARAMCD,PARAM,AVAL,AVALC,BASE,CHG,PCHG,CRIT1,CRIT1FL,ALGORITHM\r\n"));
    // Every row names the arm the subject was enrolled on; without a protocol there is no arm name.
    let arms: std::collections::BTreeSet<(&str, &str)> = dataset
        .iter()
        .map(|row| (row.armcd.as_str(), row.arm.as_str()))
        .collect();
    assert_eq!(
        arms,
        std::collections::BTreeSet::from([("tofacitinib XR 11 mg", "")])
    );
    assert_eq!(csv.lines().count(), dataset.len() + 1);
}
