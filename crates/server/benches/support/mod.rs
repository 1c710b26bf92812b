//! What the ingest and archive benchmarks both send: one visit batch after another per stream (the
//! baseline template's forms with unique ids), after the study's registration, each stream's subject
//! enrolled and its baseline visit. Kept in one place so both benchmarks measure the same load.

use myolog_proto::v1 as pb;
use myolog_synth::Cohort;

/// The visit batches of one stream: subject `B{stream}`, visits `v1..=v{n}`, each the baseline
/// template's 10 forms with unique ids.
pub fn stream_batches(
    template: &pb::SubmitRequest,
    stream: usize,
    n: usize,
) -> Vec<pb::SubmitRequest> {
    (1..=n)
        .map(|i| {
            let events = template
                .events
                .iter()
                .enumerate()
                .map(|(k, e)| pb::Event {
                    source_audit: None,
                    event_id: format!("b{stream}.v{i}.{k}"),
                    subject_id: format!("B{stream:03}"),
                    visit_id: format!("v{i}"),
                    ..e.clone()
                })
                .collect();
            pb::SubmitRequest {
                batch_id: format!("{stream}/{i}"),
                events,
            }
        })
        .collect()
}

/// Registration of the study and enrollment of every stream's subject, plus its baseline visit.
pub fn setup_batches(template: &pb::SubmitRequest, streams: usize) -> Vec<pb::SubmitRequest> {
    let cohort = Cohort::new(1, 1);
    let mut enrollment = cohort.enrollment();
    enrollment.events.truncate(1);
    let enrolled = cohort.enrollment().events[1].clone();
    for stream in 0..streams {
        enrollment.events.push(pb::Event {
            source_audit: None,
            event_id: format!("b{stream}.enrolled"),
            subject_id: format!("B{stream:03}"),
            ..enrolled.clone()
        });
    }
    let mut out = vec![enrollment];
    for stream in 0..streams {
        let mut baseline = template.clone();
        for (k, e) in baseline.events.iter_mut().enumerate() {
            e.event_id = format!("b{stream}.baseline.{k}");
            e.subject_id = format!("B{stream:03}");
        }
        out.push(baseline);
    }
    out
}
