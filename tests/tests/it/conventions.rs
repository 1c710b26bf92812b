//! One scoring road: every outcome of a protocol study is scored under the conventions of the
//! protocol version in force and names that version. For each convention a protocol can set, a
//! subject on the boundary it decides is read through every road an outcome leaves the service by:
//! the `Append` answer, `Watch`, `GetSubject`, `GetCohort` (visit statistics and endpoint tables),
//! `Audit.Replay`, `myolog replay` and the ADaM export. All must agree, under the default value and
//! under the protocol's own. An amendment that changes a convention is replayed on either side of it
//! and pushed to watchers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use myolog_cli::audit::OutputFormat as Format;
use myolog_cli::audit::{AsOfArgs, ExportArgs, ReplayArgs, What, run_export, run_replay};
use myolog_cli::study::{self, RegisterArgs};
use myolog_proto::v1 as pb;
use myolog_synth as synth;
use myolog_tests::{Clients, start};
use pb::assessment_recorded::Instrument;
use serde_json::Value;
use tokio_stream::StreamExt;

const STUDY: &str = "STIR";
const SUBJECT: &str = "S001";
/// Day 0 of S001: enrolment (first dose) on 2024-01-08.
const DAY_ZERO: i64 = 19_730;

fn day(offset: i64) -> String {
    synth::date_from_days(DAY_ZERO + offset)
}

fn stir_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocols/stir.toml");
    std::fs::read_to_string(path).expect("stir.toml")
}

/// STIR's protocol with one `[conventions]` line replaced (`key = value`).
fn stir_with(key: &str, value: &str) -> String {
    let text = stir_text();
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("{key} =")))
        .unwrap_or_else(|| panic!("stir.toml sets {key}"))
        .to_string();
    text.replacen(&line, &format!("{key} = {value}"), 1)
}

/// A CDASI form whose activity is 4 points per location: erythema 3 and scale 1 in `locations` places.
fn cdasi(locations: usize) -> pb::Cdasi {
    let mut all = pb::CdasiLocations::default();
    let lit = pb::CdasiLocation {
        erythema: 3,
        scale: 1,
        ..Default::default()
    };
    let slots = [
        &mut all.scalp,
        &mut all.malar,
        &mut all.periorbital,
        &mut all.rest_of_face,
        &mut all.v_neck,
    ];
    for slot in slots.into_iter().take(locations) {
        *slot = Some(lit);
    }
    pb::Cdasi {
        locations: Some(all),
        ..Default::default()
    }
}

/// HAQ items with every item of the first six categories answered `score` and grip and activities
/// left unanswered: six categories, enough for a HAQ-DI under the Stanford rule, not under seven.
fn haq_six_categories(score: u32) -> pb::Haq {
    let answered = |n: usize| vec![pb::HaqItem { score: Some(score) }; n];
    pb::Haq {
        items: Some(pb::HaqItems {
            dressing: answered(2),
            arising: answered(2),
            eating: answered(3),
            walking: answered(2),
            hygiene: answered(3),
            reach: answered(2),
            grip: vec![pb::HaqItem { score: None }; 3],
            activities: vec![pb::HaqItem { score: None }; 3],
        }),
        aids: Vec::new(),
        help: Vec::new(),
    }
}

fn vas(cm: &str) -> Option<pb::Vas> {
    Some(pb::Vas {
        value: Some(pb::vas::Value::Cm(cm.into())),
    })
}

fn form(visit: &str, offset: i64, name: &str, instrument: Instrument) -> pb::Event {
    pb::Event {
        source_audit: None,
        event_id: format!("{STUDY}.{SUBJECT}.{visit}.{name}"),
        study_id: STUDY.into(),
        subject_id: SUBJECT.into(),
        visit_id: visit.into(),
        clinical_date: day(offset),
        body: Some(pb::event::Body::AssessmentRecorded(
            pb::AssessmentRecorded {
                instrument: Some(instrument),
            },
        )),
    }
}

/// The whole core set and CDASI at one visit. Baseline: CDASI activity 16 (moderate/severe under
/// Stanford's 14, mild under UPenn's 19); week 12: 12, a fall of exactly 4 (the UPenn MCID, not
/// Stanford's 5). HAQ has six answered categories at both visits.
fn visit_forms(visit: &str, offset: i64) -> Vec<pb::Event> {
    let baseline = visit == "BL";
    let (globals, mmt, haq, ck, cdasi_locations) = if baseline {
        (["6", "6", "4"], 100, 1, "1200", 4)
    } else {
        (["2", "3", "1"], 130, 0, "300", 3)
    };
    vec![
        form(
            visit,
            offset,
            "globals",
            Instrument::Globals(pb::Globals {
                physician_global: vas(globals[0]),
                patient_global: vas(globals[1]),
                extramuscular_global: vas(globals[2]),
            }),
        ),
        form(
            visit,
            offset,
            "mmt8",
            Instrument::Mmt8(pb::Mmt8 {
                max: 150,
                total: Some(mmt),
                grades: None,
            }),
        ),
        form(
            visit,
            offset,
            "haq",
            Instrument::Haq(haq_six_categories(haq)),
        ),
        form(
            visit,
            offset,
            "enzymes",
            Instrument::Enzymes(pb::Enzymes {
                ck: Some(pb::EnzymeResult {
                    value: ck.into(),
                    uln: "200".into(),
                    unit: "U/L".into(),
                }),
                ..Default::default()
            }),
        ),
        form(
            visit,
            offset,
            "cdasi",
            Instrument::Cdasi(cdasi(cdasi_locations)),
        ),
    ]
}

fn enrolment() -> pb::Event {
    pb::Event {
        source_audit: None,
        event_id: format!("{STUDY}.{SUBJECT}.enrolled"),
        study_id: STUDY.into(),
        subject_id: SUBJECT.into(),
        visit_id: String::new(),
        clinical_date: day(0),
        body: Some(pb::event::Body::SubjectEnrolled(pb::SubjectEnrolled {
            arm: "TOFA".into(),
            ..Default::default()
        })),
    }
}

fn batch(events: Vec<pb::Event>) -> pb::SubmitRequest {
    pb::SubmitRequest {
        batch_id: String::new(),
        events,
    }
}

async fn register(file: &Path, url: String, amend: bool) {
    let args = RegisterArgs {
        file: file.to_path_buf(),
        addr: url,
        study: None,
        amend,
        date: Some(day(-30)),
        event_id: None,
        tls: Default::default(),
    };
    study::register(&args, &mut Vec::new())
        .await
        .expect("register");
}

/// The log's head: no `--as-of-*` flag.
fn head() -> AsOfArgs {
    AsOfArgs {
        as_of_seq: None,
        as_of_time: None,
    }
}

fn result(outcome: &pb::VisitOutcome) -> Value {
    serde_json::from_str(&outcome.result_json).expect("result_json is JSON")
}

/// How one endpoint table shows a decision.
type EndpointRead = fn(&pb::EndpointTable) -> String;

/// One convention and what it decides for the boundary subject at week 12.
struct Case {
    key: &'static str,
    value: &'static str,
    /// The decided value as the scoring result shows it.
    decision: fn(&Value) -> Value,
    /// The same decision as the wire summary, cohort visit table and endpoint table show it, when
    /// they show it at all.
    wire: fn(&pb::VisitOutcome) -> Option<String>,
    cohort: fn(&pb::CohortVisit) -> Option<String>,
    endpoint: Option<(&'static str, EndpointRead)>,
    /// (PARAMCD, column) of the ADaM row at week 12 that carries the decision.
    adam: Option<(&'static str, &'static str)>,
    /// What each road shows under the default value, then under the protocol's value.
    expected: [Reads; 2],
}

/// What every road showed for the boundary subject.
#[derive(Debug, Clone, PartialEq)]
struct Reads {
    decision: Value,
    wire: Option<String>,
    cohort: Option<String>,
    endpoint: Option<String>,
    adam: Option<String>,
}

fn reads(
    decision: Value,
    wire: Option<&str>,
    cohort: Option<&str>,
    endpoint: Option<&str>,
    adam: Option<&str>,
) -> Reads {
    Reads {
        decision,
        wire: wire.map(str::to_string),
        cohort: cohort.map(str::to_string),
        endpoint: endpoint.map(str::to_string),
        adam: adam.map(str::to_string),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            key: "cdasi_mcid",
            value: "5",
            decision: |result| result["cdasi"]["mcid_reached"].clone(),
            wire: |outcome| outcome.cdasi.as_ref().map(|c| c.mcid_reached.to_string()),
            cohort: |visit| {
                visit
                    .cdasi_mcid
                    .as_ref()
                    .map(|p| format!("{}/{}", p.responders, p.total))
            },
            endpoint: Some(("MCID_W12", |table| {
                table
                    .responders
                    .as_ref()
                    .map(|p| format!("{}/{}", p.responders, p.total))
                    .unwrap_or_default()
            })),
            adam: Some(("CDASIACT", "CRIT1FL")),
            expected: [
                reads(
                    Value::Bool(true),
                    Some("true"),
                    Some("1/1"),
                    Some("1/1"),
                    Some("Y"),
                ),
                reads(
                    Value::Bool(false),
                    Some("false"),
                    Some("0/1"),
                    Some("0/1"),
                    Some("N"),
                ),
            ],
        },
        Case {
            key: "cdasi_severity_cutoff",
            value: "19",
            decision: |result| result["cdasi"]["severity"]["baseline"].clone(),
            wire: |_| None,
            cohort: |_| None,
            endpoint: None,
            adam: None,
            expected: [
                reads(Value::from("moderate_severe"), None, None, None, None),
                reads(Value::from("mild"), None, None, None, None),
            ],
        },
        Case {
            key: "haq_min_categories",
            value: "7",
            decision: |result| result["tis"]["status"].clone(),
            wire: |outcome| outcome.tis.as_ref().map(|t| t.evaluable.to_string()),
            cohort: |visit| visit.tis.as_ref().map(|t| t.evaluable.to_string()),
            endpoint: Some(("TIS_W12", |table| table.not_evaluable.to_string())),
            adam: Some(("HAQDI", "AVAL")),
            expected: [
                reads(
                    Value::from("evaluable"),
                    Some("true"),
                    Some("1"),
                    Some("0"),
                    Some("0"),
                ),
                reads(
                    Value::from("not_evaluable"),
                    Some("false"),
                    Some("0"),
                    Some("1"),
                    Some(""),
                ),
            ],
        },
    ]
}

/// The ADaM export's `column` on the week-12 row of `paramcd` (JSON Lines; blank for a null).
fn adam_cell(data: &Path, paramcd: &str, column: &str) -> String {
    let out = data
        .parent()
        .expect("parent")
        .join(format!("adam-{paramcd}.jsonl"));
    let code = run_export(&ExportArgs {
        data: data.to_path_buf(),
        what: Some(What::Adam),
        format: vec![myolog_cli::audit::ExportFormat::Jsonl],
        out: Some(out.clone()),
        as_of: head(),
        package: Default::default(),
    });
    assert_eq!(code, std::process::ExitCode::SUCCESS, "export");
    let text = std::fs::read_to_string(out).expect("adam jsonl");
    let row = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("json line"))
        .find(|row| row["PARAMCD"] == paramcd && row["AVISIT"] == "W12")
        .unwrap_or_else(|| panic!("no {paramcd} row at W12 in {text}"));
    match &row[column] {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `myolog replay` (JSONL) of the stopped log: the week-12 record.
fn replayed_w12(data: &Path, as_of: AsOfArgs) -> Value {
    let out = data.parent().expect("parent").join("replay.jsonl");
    let code = run_replay(&ReplayArgs {
        data: data.to_path_buf(),
        as_of,
        format: Format::Jsonl,
        out: Some(out.clone()),
        cohort: false,
        endpoints: false,
        eligibility: false,
    });
    assert_eq!(code, std::process::ExitCode::SUCCESS, "replay");
    std::fs::read_to_string(out)
        .expect("replay output")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("json line"))
        .find(|record| record["visit_id"] == "W12")
        .expect("a W12 record")
}

async fn watch(clients: &Clients) -> tonic::Streaming<pb::VisitOutcome> {
    clients
        .outcomes
        .clone()
        .watch(pb::WatchRequest {
            study_id: STUDY.into(),
        })
        .await
        .expect("watch")
        .into_inner()
}

/// The next watched outcome of week 12 (earlier visits' outcomes may come first).
async fn next_w12(stream: &mut tonic::Streaming<pb::VisitOutcome>) -> pb::VisitOutcome {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an outcome within 10 s")
            .expect("stream open")
            .expect("outcome");
        if next.visit_id == "W12" {
            return next;
        }
    }
}

/// Runs the boundary subject under `protocol_text` and returns what each road showed, after
/// checking that every scoring result names the protocol version and the value in force.
async fn run(case: &Case, protocol_text: &str, expected_value: &str) -> Reads {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let file = dir.path().join("stir.toml");
    std::fs::write(&file, protocol_text).expect("write protocol");
    let server = start(&data).await;
    let mut clients = Clients::connect(&server).await;
    register(&file, server.url(), false).await;
    let mut watched = watch(&clients).await;
    let mut events = vec![enrolment()];
    events.extend(visit_forms("BL", 0));
    clients.append(batch(events)).await;
    let answer = clients.append(batch(visit_forms("W12", 84))).await;
    let answered = answer
        .outcomes
        .iter()
        .find(|o| o.visit_id == "W12")
        .expect("the answer carries W12")
        .clone();
    let watched = next_w12(&mut watched).await;
    let subject = clients
        .outcomes
        .get_subject(pb::GetSubjectRequest {
            study_id: STUDY.into(),
            subject_id: SUBJECT.into(),
            protocol_version: None,
        })
        .await
        .expect("get subject")
        .into_inner();
    let got = subject
        .visits
        .iter()
        .find(|o| o.visit_id == "W12")
        .expect("GetSubject has W12")
        .clone();
    let cohort = clients
        .outcomes
        .get_cohort(pb::GetCohortRequest {
            study_id: STUDY.into(),
            visit_id: String::new(),
            protocol_version: None,
        })
        .await
        .expect("get cohort")
        .into_inner();
    let cohort_w12 = cohort
        .visits
        .iter()
        .find(|v| v.visit_id == "W12")
        .expect("cohort W12");
    let mut replay = clients
        .audit
        .replay(pb::ReplayRequest { as_of: None })
        .await
        .expect("replay")
        .into_inner();
    let mut replayed = None;
    while let Some(item) = replay.message().await.expect("replayed") {
        if item.outcome.as_ref().is_some_and(|o| o.visit_id == "W12") {
            replayed = Some(item);
        }
    }
    let replayed = replayed.expect("Audit.Replay has W12");
    server.stop().await.expect("server stops");

    let replayed_outcome = replayed.outcome.clone().expect("outcome");
    assert_eq!(
        replayed.provenance.as_ref().map(|p| p.protocol.as_str()),
        Some("STIR v1"),
        "{}: Audit.Replay provenance names the protocol version",
        case.key
    );
    let cli = replayed_w12(&data, head());
    assert_eq!(
        cli["provenance"]["protocol"], "STIR v1",
        "{}: myolog replay",
        case.key
    );
    let results = [
        ("Append answer", result(&answered)),
        ("Watch", result(&watched)),
        ("GetSubject", result(&got)),
        ("Audit.Replay", result(&replayed_outcome)),
        ("myolog replay", cli["result"].clone()),
    ];
    let decision = (case.decision)(&results[0].1);
    for (road, result) in &results {
        assert_eq!(
            result["conventions"]["protocol"], "STIR v1",
            "{}: {road}",
            case.key
        );
        assert_eq!(
            result["conventions"][case.key].to_string(),
            expected_value,
            "{}: {road} names the value in force",
            case.key
        );
        assert_eq!(
            (case.decision)(result),
            decision,
            "{}: {road} agrees",
            case.key
        );
    }
    let wire = (case.wire)(&answered);
    for (road, outcome) in [
        ("Watch", &watched),
        ("GetSubject", &got),
        ("Audit.Replay", &replayed_outcome),
    ] {
        assert_eq!(
            (case.wire)(outcome),
            wire,
            "{}: {road} wire summary",
            case.key
        );
    }
    let endpoint = case.endpoint.map(|(id, read)| {
        read(
            cohort
                .endpoints
                .iter()
                .find(|table| table.endpoint == id)
                .expect("endpoint table"),
        )
    });
    let adam = case
        .adam
        .map(|(paramcd, column)| adam_cell(&data, paramcd, column));
    Reads {
        decision,
        wire,
        cohort: (case.cohort)(cohort_w12),
        endpoint,
        adam,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_road_scores_a_boundary_subject_under_the_protocols_conventions() {
    for case in cases() {
        let default_value = stir_text()
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{} = ", case.key)))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("default value")
            .to_string();
        let under_default = run(&case, &stir_text(), &default_value).await;
        assert_eq!(
            under_default, case.expected[0],
            "{} = {default_value}",
            case.key
        );
        let under_protocol = run(&case, &stir_with(case.key, case.value), case.value).await;
        assert_eq!(
            under_protocol, case.expected[1],
            "{} = {}",
            case.key, case.value
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_amendment_of_the_mcid_rescores_and_replays_on_either_side() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let v1: PathBuf = dir.path().join("stir.toml");
    std::fs::write(&v1, stir_text()).expect("v1");
    let v2 = dir.path().join("stir-v2.toml");
    std::fs::write(
        &v2,
        stir_with("cdasi_mcid", "5")
            .replacen("version = 1 ", "version = 2 ", 1)
            .replacen(
                "[study]",
                "[protocol.amendment]\nsummary = \"CDASI MCID of 5 points (Stanford)\"\n\n[study]",
                1,
            ),
    )
    .expect("v2");
    let server = start(&data).await;
    let mut clients = Clients::connect(&server).await;
    register(&v1, server.url(), false).await;
    let mut events = vec![enrolment()];
    events.extend(visit_forms("BL", 0));
    clients.append(batch(events)).await;
    let answer = clients.append(batch(visit_forms("W12", 84))).await;
    let before = answer
        .outcomes
        .iter()
        .find(|o| o.visit_id == "W12")
        .expect("W12");
    assert_eq!(result(before)["conventions"]["protocol"], "STIR v1");
    assert_eq!(before.cdasi.as_ref().map(|c| c.mcid_reached), Some(true));
    let head_before = clients.head().await;

    let mut watched = watch(&clients).await;
    register(&v2, server.url(), true).await;
    let pushed = next_w12(&mut watched).await;
    assert_eq!(
        result(&pushed)["conventions"]["protocol"],
        "STIR v2",
        "Watch"
    );
    assert_eq!(
        pushed.cdasi.as_ref().map(|c| c.mcid_reached),
        Some(false),
        "Watch"
    );
    let subject = clients
        .outcomes
        .get_subject(pb::GetSubjectRequest {
            study_id: STUDY.into(),
            subject_id: SUBJECT.into(),
            protocol_version: None,
        })
        .await
        .expect("get subject")
        .into_inner();
    let now = subject
        .visits
        .iter()
        .find(|o| o.visit_id == "W12")
        .expect("W12");
    assert_eq!(
        result(now)["conventions"]["protocol"],
        "STIR v2",
        "GetSubject"
    );
    assert_eq!(
        now.cdasi.as_ref().map(|c| c.mcid_reached),
        Some(false),
        "GetSubject"
    );
    server.stop().await.expect("server stops");

    let as_of = |seq: Option<u64>| AsOfArgs {
        as_of_seq: seq,
        as_of_time: None,
    };
    let replayed_before = replayed_w12(&data, as_of(Some(head_before)));
    assert_eq!(replayed_before["provenance"]["protocol"], "STIR v1");
    assert_eq!(replayed_before["result"]["conventions"]["cdasi_mcid"], 4);
    assert_eq!(replayed_before["cdasi"]["mcid_reached"], true);
    let replayed_after = replayed_w12(&data, as_of(None));
    assert_eq!(replayed_after["provenance"]["protocol"], "STIR v2");
    assert_eq!(replayed_after["result"]["conventions"]["cdasi_mcid"], 5);
    assert_eq!(replayed_after["cdasi"]["mcid_reached"], false);
}
