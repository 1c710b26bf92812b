//! End-to-end: a real server on 127.0.0.1:0 over a log in a temporary directory, real tonic clients.
//! Cohort in, outcomes out (equal to the scoring crate computed directly); idempotent retries;
//! rejected batches store nothing; restart gives the same outcomes; corrections; Watch; health and
//! reflection.

use std::collections::BTreeMap;
use std::time::Duration;

use myolog_domain::case::ScoreCase;
use myolog_domain::conventions::ScoringConventions;
use myolog_domain::event::EventBody;
use myolog_domain::visit::{Population, VisitAssessments};
use myolog_proto::v1 as pb;
use myolog_synth::{self as synth, Cohort, PRIMARY_VISIT, STUDY};
use myolog_tests::{Clients, cohort_batches, start, violation_fields};
use myolog_wire as wire;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

const SEED: u64 = 2017;

async fn submit_all(
    clients: &mut Clients,
    batches: Vec<pb::SubmitRequest>,
) -> Vec<pb::SubmitResponse> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mut responses = clients
        .ingest
        .submit(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("submit")
        .into_inner();
    let mut out = Vec::new();
    for batch in batches {
        tx.send(batch).await.expect("send");
        let response = responses
            .message()
            .await
            .expect("response")
            .expect("one response per batch");
        assert!(
            response.rejection.is_none(),
            "batch {} rejected: {:?}",
            response.batch_id,
            response.rejection
        );
        out.push(response);
    }
    out
}

/// The visits' assessments computed directly from the batches: forms applied in order, a correction
/// replacing the form it supersedes.
fn expected_assessments(
    batches: &[pb::SubmitRequest],
) -> BTreeMap<(String, String), VisitAssessments> {
    let mut forms: Vec<(String, (String, String), myolog_domain::event::Assessment)> = Vec::new();
    for batch in batches {
        for event in wire::batch_from_proto(&batch.events).expect("valid cohort") {
            let (Some(subject), Some(visit)) = (&event.subject, &event.visit) else {
                continue;
            };
            let key = (subject.to_string(), visit.to_string());
            match event.body {
                EventBody::AssessmentRecorded(form) => {
                    forms.push((event.event_id.to_string(), key, form))
                }
                EventBody::AssessmentCorrected {
                    supersedes,
                    corrected,
                    ..
                } => {
                    forms.retain(|(id, _, _)| id != supersedes.as_str());
                    forms.push((event.event_id.to_string(), key, corrected));
                }
                _ => {}
            }
        }
    }
    let mut visits: BTreeMap<(String, String), VisitAssessments> = BTreeMap::new();
    for (_, key, form) in forms {
        form.apply_to(visits.entry(key).or_default());
    }
    visits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cohort_in_outcomes_out_equal_the_scoring_crate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let cohort = Cohort::new(SEED, 10);
    let batches = cohort_batches(&cohort, true);
    let responses = submit_all(&mut clients, batches.clone()).await;
    let acked: usize = responses.iter().map(|r| r.acks.len()).sum();
    let sent: usize = batches.iter().map(|b| b.events.len()).sum();
    assert_eq!(acked, sent);
    assert_eq!(clients.head().await, u64::try_from(sent).expect("fits"));

    let expected = expected_assessments(&batches);
    let mut compared = 0;
    for index in 0..cohort.len() {
        let subject = clients.subject(index).await;
        let subject_id = synth::subject_id(index);
        let baseline = &expected[&(subject_id.clone(), "baseline".to_string())];
        assert_eq!(
            subject.visits.len(),
            synth::VISITS.len() - 1,
            "{subject_id}: every follow-up visit"
        );
        for outcome in &subject.visits {
            assert_eq!(outcome.baseline_visit_id, "baseline");
            let followup = &expected[&(subject_id.clone(), outcome.visit_id.clone())];
            let case = ScoreCase {
                id: None,
                population: Population::Adult,
                baseline: baseline.clone(),
                followup: followup.clone(),
                conventions: ScoringConventions::default(),
            };
            let direct = myolog_scoring::score_case(&case);
            let direct_json = serde_json::to_string(&direct).expect("serialises");
            assert_eq!(
                outcome.result_json, direct_json,
                "{subject_id} {}",
                outcome.visit_id
            );
            let tis = outcome.tis.as_ref().expect("tis");
            assert_eq!(
                tis.score,
                direct
                    .tis
                    .score
                    .map(|s| s.0.normalize().to_string())
                    .unwrap_or_default()
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 40);

    // The cohort statistics agree with the per-subject outcomes.
    let cohort_outcomes = clients.cohort().await;
    let week12 = cohort_outcomes
        .visits
        .iter()
        .find(|v| v.visit_id == PRIMARY_VISIT)
        .expect("week 12");
    let mut met = 0;
    for index in 0..cohort.len() {
        let subject = clients.subject(index).await;
        let visit = subject
            .visits
            .iter()
            .find(|v| v.visit_id == PRIMARY_VISIT)
            .expect("week 12");
        if visit
            .doi
            .as_ref()
            .is_some_and(|d| d.status == pb::DoiStatus::Met as i32)
        {
            met += 1;
        }
    }
    let doi = week12.doi_responders.as_ref().expect("doi");
    assert_eq!((doi.responders, doi.total), (met, 10));
    assert!(doi.ci_low <= f64::from(met) / 10.0 && f64::from(met) / 10.0 <= doi.ci_high);
    let cdasi = week12.cdasi_activity.as_ref().expect("cdasi");
    assert_eq!(cdasi.n, 10);
    assert!(cdasi.paired_t_p.is_some() && cdasi.wilcoxon_p.is_some());
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_get_the_original_acks_and_store_nothing_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let cohort = Cohort::new(SEED, 2);
    let enrollment = clients.append(cohort.enrollment()).await;
    let first = clients.append(cohort.visit_batch(0, "baseline")).await;
    let head = clients.head().await;
    assert!(first.acks.iter().all(|a| !a.duplicate));

    // The same batch again, unary and over a Submit stream, and the enrollment too.
    let again = clients.append(cohort.visit_batch(0, "baseline")).await;
    let streamed = submit_all(
        &mut clients,
        vec![cohort.visit_batch(0, "baseline"), cohort.enrollment()],
    )
    .await;
    for retry in [&again, &streamed[0]] {
        assert_eq!(retry.acks.len(), first.acks.len());
        for (a, b) in first.acks.iter().zip(&retry.acks) {
            assert_eq!(
                (a.sequence, &a.hash, &a.event_id),
                (b.sequence, &b.hash, &b.event_id)
            );
            assert!(b.duplicate);
        }
    }
    assert!(
        streamed[1]
            .acks
            .iter()
            .zip(&enrollment.acks)
            .all(|(r, o)| r.duplicate && r.sequence == o.sequence)
    );
    assert_eq!(clients.head().await, head, "retries stored nothing");
    server.stop().await.expect("stops");
}

/// A mutation of a valid batch and the rejection it must cause.
struct RejectionCase {
    name: &'static str,
    mutate: fn(&mut pb::SubmitRequest),
    code: Code,
    field: &'static str,
}

fn mmt8_of(batch: &mut pb::SubmitRequest) -> &mut pb::Mmt8 {
    batch
        .events
        .iter_mut()
        .find_map(|e| match &mut e.body {
            Some(pb::event::Body::AssessmentRecorded(pb::AssessmentRecorded {
                instrument: Some(pb::assessment_recorded::Instrument::Mmt8(m)),
            })) => Some(m),
            _ => None,
        })
        .expect("batch has an MMT-8")
}

fn globals_of(batch: &mut pb::SubmitRequest) -> &mut pb::Globals {
    batch
        .events
        .iter_mut()
        .find_map(|e| match &mut e.body {
            Some(pb::event::Body::AssessmentRecorded(pb::AssessmentRecorded {
                instrument: Some(pb::assessment_recorded::Instrument::Globals(g)),
            })) => Some(g),
            _ => None,
        })
        .expect("batch has globals")
}

const REJECTIONS: &[RejectionCase] = &[
    RejectionCase {
        name: "deltoid grade 11",
        mutate: |b| {
            if let Some(g) = &mut mmt8_of(b).grades {
                g.deltoid = Some(pb::MmtGrade {
                    grade: Some(11),
                    right: None,
                    left: None,
                });
            }
        },
        code: Code::InvalidArgument,
        field: "events[1].assessment_recorded.mmt8.grades.deltoid.grade",
    },
    RejectionCase {
        name: "bilateral max with unilateral grades",
        mutate: |b| mmt8_of(b).max = 150,
        code: Code::InvalidArgument,
        field: "events[1].assessment_recorded.mmt8.grades.deltoid",
    },
    RejectionCase {
        name: "physician global 10.5 cm",
        mutate: |b| {
            globals_of(b).physician_global = Some(pb::Vas {
                value: Some(pb::vas::Value::Cm("10.5".into())),
            })
        },
        code: Code::InvalidArgument,
        field: "events[0].assessment_recorded.globals.physician_global.cm",
    },
    RejectionCase {
        name: "patient global 101 mm",
        mutate: |b| {
            globals_of(b).patient_global = Some(pb::Vas {
                value: Some(pb::vas::Value::Mm(101)),
            })
        },
        code: Code::InvalidArgument,
        field: "events[0].assessment_recorded.globals.patient_global.mm",
    },
    RejectionCase {
        name: "impossible date",
        mutate: |b| b.events[2].clinical_date = "2024-02-30".into(),
        code: Code::InvalidArgument,
        field: "events[2].clinical_date",
    },
    RejectionCase {
        name: "no visit on an assessment",
        mutate: |b| b.events[0].visit_id = String::new(),
        code: Code::InvalidArgument,
        field: "events[0].visit_id",
    },
    RejectionCase {
        name: "unknown study",
        mutate: |b| {
            for e in &mut b.events {
                e.study_id = "NOPE".into();
            }
        },
        code: Code::FailedPrecondition,
        field: "events[0].study_id",
    },
    RejectionCase {
        name: "subject not enrolled",
        mutate: |b| {
            for e in &mut b.events {
                e.subject_id = "S999".into();
            }
        },
        code: Code::FailedPrecondition,
        field: "events[0].subject_id",
    },
    RejectionCase {
        name: "event id reused with other content",
        mutate: |b| {
            b.events[0].event_id = format!("{STUDY}.S001.enrolled");
        },
        code: Code::AlreadyExists,
        field: "events[0].event_id",
    },
    RejectionCase {
        name: "same event id twice in one batch",
        mutate: |b| b.events[1].event_id = b.events[0].event_id.clone(),
        code: Code::FailedPrecondition,
        field: "events[1].event_id",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_batches_are_rejected_with_field_paths_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let cohort = Cohort::new(SEED, 2);
    clients.append(cohort.enrollment()).await;
    let head = clients.head().await;
    for case in REJECTIONS {
        let mut batch = cohort.visit_batch(0, "baseline");
        (case.mutate)(&mut batch);

        // Unary: the status, with the BadRequest in its details.
        let status = clients
            .ingest
            .append(batch.clone())
            .await
            .expect_err(case.name);
        assert_eq!(
            status.code(),
            case.code,
            "{}: {}",
            case.name,
            status.message()
        );
        let fields: Vec<String> = status
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        assert!(
            fields.iter().any(|f| f == case.field),
            "{}: {fields:?}",
            case.name
        );

        // Stream: an in-band rejection, and the stream stays usable.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let mut responses = clients
            .ingest
            .submit(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("submit")
            .into_inner();
        tx.send(batch).await.expect("send");
        let response = responses
            .message()
            .await
            .expect("answer")
            .expect("one answer");
        let rejection = response.rejection.as_ref().expect(case.name);
        assert!(response.acks.is_empty(), "{}", case.name);
        assert!(
            violation_fields(rejection).iter().any(|f| f == case.field),
            "{}: {rejection:?}",
            case.name
        );
        let expected_code = match case.code {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            _ => "ALREADY_EXISTS",
        };
        assert_eq!(rejection.code, expected_code, "{}", case.name);
        tx.send(pb::SubmitRequest {
            batch_id: "noop".into(),
            events: Vec::new(),
        })
        .await
        .expect("send");
        let next = responses
            .message()
            .await
            .expect("answer")
            .expect("the stream is still open");
        assert!(next.rejection.is_some(), "an empty batch is rejected too");

        assert_eq!(clients.head().await, head, "{}: nothing stored", case.name);
    }
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_on_the_same_data_gives_the_same_outcomes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cohort = Cohort::new(SEED, 10);
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    submit_all(&mut clients, cohort_batches(&cohort, true)).await;
    let mut before = Vec::new();
    for index in 0..cohort.len() {
        before.push(clients.subject(index).await);
    }
    let cohort_before = clients.cohort().await;
    let head = clients.head().await;
    drop(clients);
    server.stop().await.expect("stops");

    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    assert_eq!(clients.head().await, head);
    for (index, expected) in before.iter().enumerate() {
        assert_eq!(&clients.subject(index).await, expected, "subject {index}");
    }
    assert_eq!(clients.cohort().await, cohort_before);
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_correction_changes_the_outcome_and_both_values_stay_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let cohort = Cohort::new(SEED, 10);
    submit_all(&mut clients, cohort_batches(&cohort, false)).await;
    let (index, visit) = synth::CORRECTED;
    let week12 = |s: pb::SubjectOutcomes| {
        s.visits
            .into_iter()
            .find(|v| v.visit_id == visit)
            .expect("visit")
    };
    let as_entered = week12(clients.subject(index).await);

    let correction = clients.append(cohort.correction()).await;
    assert_eq!(
        correction.outcomes.len(),
        1,
        "the corrected visit's outcome comes back with the ack"
    );
    let corrected = week12(clients.subject(index).await);
    assert_eq!(correction.outcomes[0], corrected);
    assert_ne!(as_entered.result_json, corrected.result_json);
    assert_ne!(
        as_entered.doi, corrected.doi,
        "the swapped digits changed the DOI"
    );

    // Both values are in the log: the original form and the correction naming it with its reason.
    let events = clients.read_all().await;
    let Some(pb::event::Body::AssessmentCorrected(c)) = events
        .last()
        .and_then(|e| e.event.as_ref())
        .and_then(|e| e.body.clone())
    else {
        panic!("the last event is the correction");
    };
    let original = events
        .iter()
        .find(|e| e.event_id == c.supersedes_event_id)
        .expect("original kept");
    let physician =
        |form: Option<&pb::AssessmentRecorded>| match form.and_then(|f| f.instrument.clone()) {
            Some(pb::assessment_recorded::Instrument::Globals(g)) => g.physician_global,
            _ => None,
        };
    let original_form = match original.event.as_ref().and_then(|e| e.body.as_ref()) {
        Some(pb::event::Body::AssessmentRecorded(form)) => Some(form),
        _ => None,
    };
    assert!(physician(original_form).is_some());
    assert_ne!(physician(original_form), physician(c.corrected.as_ref()));
    assert!(!c.reason.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e.recorded_by == myolog_server::app::DEFAULT_PRINCIPAL)
    );
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_sees_outcomes_as_they_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let mut clients = Clients::connect(&server).await;
    let cohort = Cohort::new(SEED, 2);
    clients.append(cohort.enrollment()).await;
    clients.append(cohort.visit_batch(1, "baseline")).await;
    let mut watch = clients
        .outcomes
        .watch(pb::WatchRequest {
            study_id: STUDY.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut other_study = clients
        .outcomes
        .watch(pb::WatchRequest {
            study_id: "OTHER".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let response = clients.append(cohort.visit_batch(1, "week4")).await;
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an update within 5 s")
        .expect("stream open")
        .expect("outcome");
    assert_eq!(
        (seen.subject_id.as_str(), seen.visit_id.as_str()),
        ("S002", "week4")
    );
    assert_eq!(seen, response.outcomes[0]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other_study.next())
            .await
            .is_err(),
        "a filtered watch sees nothing of this study"
    );
    // Shutdown ends the watch streams (drain).
    drop(clients);
    server.stop().await.expect("stops");
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("stream ends on shutdown");
    assert!(
        !matches!(end, Some(Ok(_))),
        "no more outcomes after shutdown: {end:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_is_serving_and_reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;

    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    myolog_cli::healthcheck::check(&server.url(), &Default::default(), Duration::from_secs(5))
        .await
        .expect("SERVING");

    let channel = myolog_tests::channel(&server).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection v1")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "myolog.v1.Ingest",
        "myolog.v1.Outcomes",
        "myolog.v1.Audit",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }

    let alpha_request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "myolog.v1.Ingest".into(),
            ),
        ),
    };
    let mut alpha = AlphaClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![alpha_request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let answer = alpha.message().await.expect("answer").expect("one answer");
    assert!(
        matches!(
            answer.message_response,
            Some(tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "v1alpha answers with the file descriptor: {answer:?}"
    );

    let url = server.url();
    server.stop().await.expect("stops");
    assert!(
        myolog_cli::healthcheck::check(&url, &Default::default(), Duration::from_secs(2))
            .await
            .is_err(),
        "not SERVING once stopped"
    );
}
