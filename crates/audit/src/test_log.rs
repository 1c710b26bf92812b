//! Test logs: the synthetic cohort's requests stored as the service stores them (decoded and
//! validated by the wire codec, canonically re-encoded, one append per request), so the audit code is
//! tested on the bytes the service writes without starting it.

use std::path::Path;

use myolog_proto::v1 as pb;
use myolog_storage::{EventLog, ExpectedVersion, LogOptions, NewEvent};
use myolog_synth::{Cohort, VISITS};

/// Appends each request as one batch, as `Ingest.Append` would after validation.
pub(crate) fn append_requests(
    log: &EventLog,
    requests: impl IntoIterator<Item = pb::SubmitRequest>,
) {
    for request in requests {
        let events = request
            .events
            .iter()
            .map(|wire_event| {
                let event =
                    myolog_wire::event_from_proto(wire_event, "event").expect("valid event");
                NewEvent {
                    event_id: event.event_id.to_string(),
                    stream_key: myolog_wire::stream_key(&event),
                    expected_version: ExpectedVersion::Any,
                    event_type: event.body.type_name().into(),
                    schema_version: myolog_wire::stored::SCHEMA_VERSION,
                    payload: myolog_wire::stored::encode(wire_event),
                }
            })
            .collect();
        log.append(events, "test").expect("append");
    }
}

/// A closed log in `dir` with `cohort`'s enrolment and every visit of every subject.
pub(crate) fn cohort_log(dir: &Path, cohort: &Cohort) {
    let log = EventLog::open(dir, LogOptions::default()).expect("log opens");
    let mut requests = vec![cohort.enrollment()];
    for (visit, _) in VISITS {
        requests.extend((0..cohort.len()).map(|index| cohort.visit_batch(index, visit)));
    }
    append_requests(&log, requests);
}
