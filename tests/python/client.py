"""A Python EDC client of Myolog: stubs generated from proto/ at test time (grpcio-tools).

Usage: PYTHONPATH=<generated stubs> python3 client.py HOST:PORT

Registers a study, enrolls one subject, records a baseline and a week-12 visit (unary Append and the
bidirectional Submit stream), retries a batch, sends an invalid form, then reads the outcomes.
Prints one JSON object with what it saw; exits non-zero with a message on any unexpected answer.
"""

import json
import sys

import grpc

from myolog.v1 import events_pb2 as ev
from myolog.v1 import outcomes_pb2 as out
from myolog.v1 import service_pb2 as svc
from myolog.v1 import service_pb2_grpc as svc_grpc

STUDY = "PY-STUDY"
SUBJECT = "P001"


def fail(message):
    print(f"python client: {message}", file=sys.stderr)
    sys.exit(1)


def event(event_id, visit, date, **body):
    return ev.Event(
        event_id=event_id,
        study_id=STUDY,
        subject_id=SUBJECT if "study_registered" not in body else "",
        visit_id=visit,
        clinical_date=date,
        **body,
    )


def visit_forms(visit, date, physician, patient, extramuscular, mmt, haq_di, ck):
    def recorded(suffix, **instrument):
        return event(
            f"{SUBJECT}.{visit}.{suffix}", visit, date,
            assessment_recorded=ev.AssessmentRecorded(**instrument),
        )

    return [
        recorded("globals", globals=ev.Globals(
            physician_global=ev.Vas(cm=physician),
            patient_global=ev.Vas(cm=patient),
            extramuscular_global=ev.Vas(mm=extramuscular),
        )),
        recorded("mmt8", mmt8=ev.Mmt8(max=80, total=mmt)),
        recorded("haq_di", haq_di=ev.HaqDi(value=haq_di)),
        recorded("enzymes", enzymes=ev.Enzymes(ck=ev.EnzymeResult(value=ck, uln="200", unit="U/L"))),
    ]


def main():
    if len(sys.argv) != 2:
        fail("usage: client.py HOST:PORT")
    channel = grpc.insecure_channel(sys.argv[1])
    grpc.channel_ready_future(channel).result(timeout=10)
    ingest = svc_grpc.IngestStub(channel)
    outcomes = svc_grpc.OutcomesStub(channel)

    setup = svc.SubmitRequest(batch_id="setup", events=[
        event(f"{STUDY}.registered", "", "2024-01-01",
              study_registered=ev.StudyRegistered(title="Python client study", population=ev.POPULATION_ADULT)),
        event(f"{SUBJECT}.enrolled", "", "2024-01-02", subject_enrolled=ev.SubjectEnrolled(arm="open label")),
    ])
    first = ingest.Append(setup, timeout=10)
    if len(first.acks) != 2 or any(a.duplicate for a in first.acks):
        fail(f"unexpected setup acks: {first}")
    retry = ingest.Append(setup, timeout=10)
    if [a.sequence for a in retry.acks] != [a.sequence for a in first.acks] or not all(a.duplicate for a in retry.acks):
        fail(f"a retry must return the original acks: {retry}")

    baseline = svc.SubmitRequest(batch_id="baseline", events=visit_forms(
        "baseline", "2024-01-08", "6.0", "7.0", 45, 60, "1.5", "2000"))
    bad_forms = visit_forms("week12", "2024-04-01", "2.0", "3.5", 20, 70, "0.8", "300")
    bad_forms[0].assessment_recorded.globals.physician_global.cm = "10.5"
    bad = svc.SubmitRequest(batch_id="bad", events=bad_forms)
    week12 = svc.SubmitRequest(batch_id="week12", events=visit_forms(
        "week12", "2024-04-01", "2.0", "3.5", 20, 70, "0.8", "300"))

    answers = list(ingest.Submit(iter([baseline, bad, week12]), timeout=20))
    if len(answers) != 3:
        fail(f"one answer per batch expected, got {len(answers)}")
    if answers[0].HasField("rejection") or len(answers[0].acks) != 4:
        fail(f"baseline not acked: {answers[0]}")
    rejection = answers[1].rejection
    fields = [v.field for v in rejection.bad_request.field_violations]
    if rejection.code != "INVALID_ARGUMENT" or answers[1].acks:
        fail(f"the bad batch must be rejected: {answers[1]}")
    if "events[0].assessment_recorded.globals.physician_global.cm" not in fields:
        fail(f"the rejection must name the field path: {fields}")
    if answers[2].HasField("rejection") or len(answers[2].acks) != 4:
        fail(f"week 12 not acked: {answers[2]}")
    if not any(o.visit_id == "week12" for o in answers[2].outcomes):
        fail("the week-12 answer must carry the recomputed outcome")

    try:
        ingest.Append(bad, timeout=10)
        fail("unary Append of the bad batch must fail")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
            fail(f"expected INVALID_ARGUMENT, got {error.code()}")

    subject = outcomes.GetSubject(svc.GetSubjectRequest(study_id=STUDY, subject_id=SUBJECT), timeout=10)
    week12_outcome = next((v for v in subject.visits if v.visit_id == "week12"), None)
    if week12_outcome is None:
        fail(f"no week-12 outcome: {subject}")
    cohort = outcomes.GetCohort(svc.GetCohortRequest(study_id=STUDY), timeout=10)
    print(json.dumps({
        "acked": len(first.acks) + len(answers[0].acks) + len(answers[2].acks),
        "rejected_fields": fields,
        "doi": out.DoiStatus.Name(week12_outcome.doi.status),
        "doi_improved": list(week12_outcome.doi.improved),
        "tis_score": week12_outcome.tis.score,
        "tis_category": out.TisCategory.Name(week12_outcome.tis.category),
        "result_json": json.loads(week12_outcome.result_json),
        "cohort_doi": [cohort.visits[0].doi_responders.responders, cohort.visits[0].doi_responders.total],
    }))


if __name__ == "__main__":
    main()
