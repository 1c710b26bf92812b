"""Authenticated checks of a running Myolog server, for deploy/smoke.sh.

Usage: python3 grpc_check.py PROTO_DIR HOST:PORT AUDITOR_TOKEN READER_TOKEN STUDY
       python3 grpc_check.py submit PROTO_DIR HOST:PORT ADMIN_TOKEN WRITER_TOKEN AUDITOR_TOKEN READER_TOKEN STUDY
       python3 grpc_check.py read PROTO_DIR HOST:PORT TOKEN STUDY

Generates Python stubs from PROTO_DIR (grpcio-tools) into a temporary directory, then:
- (no mode) a call without a token must be refused with UNAUTHENTICATED; Audit.Verify with the
  auditor's bearer token must report an intact chain; Outcomes.GetCohort with the reader's token
  (scoped to STUDY) must answer for that study;
- submit: a new STUDY registered with the admin's token (the writer's refused with
  PERMISSION_DENIED), a small cohort sent with the writer's token (scoped to STUDY): three subjects
  enrolled, a baseline and a week-12 visit each (globals, MMT-8, HAQ-DI, CK with its ULN), every
  event acked with a sequence and a 32-byte hash, the sequences contiguous; then each subject's
  week-12 outcome read with the auditor's token must have a DOI status (met or not met) and a TIS
  score, the reader's token (not scoped to STUDY) must be refused with PERMISSION_DENIED, and
  Audit.Verify must end at the last ack;
- read: the week-12 outcomes of the subjects `submit` sends (GetSubject each) in STUDY with TOKEN, or no
  token when TOKEN is empty (a local-mode server on loopback).
Prints one JSON object; exits non-zero with a message on anything else.
"""

import importlib
import json
import pathlib
import sys
import tempfile


def fail(message):
    print(f"grpc_check: {message}", file=sys.stderr)
    sys.exit(1)


def generate_stubs(proto_dir, out_dir):
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(proto_dir)) for p in pathlib.Path(proto_dir).rglob("*.proto"))
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}", *protos]
    if protoc.main(args) != 0:
        fail(f"protoc failed on {proto_dir}")
    sys.path.insert(0, str(out_dir))


def bearer(token):
    return [("authorization", f"Bearer {token}")] if token else None


# The small cohort of `submit`: subject, (physician cm, patient cm, extramuscular mm, MMT-8 total,
# HAQ-DI, CK U/L) at baseline and at week 12. S01 improves on every measure (DOI met), S02 barely
# moves (not met), S03 improves on most of them.
SUBJECTS = {
    "S01": (("6.0", "7.0", 45, 60, "1.5", "2000"), ("2.0", "3.5", 20, 72, "0.8", "300")),
    "S02": (("5.0", "5.0", 30, 64, "1.0", "900"), ("5.0", "5.5", 30, 63, "1.125", "950")),
    "S03": (("7.5", "6.0", 50, 55, "2.0", "3100"), ("4.0", "4.5", 25, 66, "1.25", "700")),
}
VISITS = (("baseline", "2024-01-08"), ("week12", "2024-04-01"))


def read_outcomes(svc, outcomes, study, subjects, token):
    import grpc
    from myolog.v1 import outcomes_pb2 as out

    result = {}
    for subject_id in subjects:
        try:
            subject = outcomes.GetSubject(svc.GetSubjectRequest(study_id=study, subject_id=subject_id),
                                          metadata=bearer(token), timeout=10)
        except grpc.RpcError as error:
            fail(f"GetSubject {study}/{subject_id}: {error.code()} {error.details()}")
        week12 = next((v for v in subject.visits if v.visit_id == "week12"), None)
        if week12 is None:
            fail(f"no week-12 outcome for {study}/{subject_id}: {subject}")
        doi = out.DoiStatus.Name(week12.doi.status)
        if doi not in ("DOI_STATUS_MET", "DOI_STATUS_NOT_MET"):
            fail(f"{study}/{subject_id}: DOI not computed ({doi}): {week12}")
        result[subject_id] = {
            "doi": doi,
            "doi_improved": len(week12.doi.improved),
            "tis_score": week12.tis.score,
            "tis_category": out.TisCategory.Name(week12.tis.category),
            "result_json": week12.result_json,
        }
    return result


def submit(svc, channel, study, admin_token, writer_token, auditor_token, reader_token):
    import grpc
    from myolog.v1 import events_pb2 as ev

    svc_grpc = importlib.import_module("myolog.v1.service_pb2_grpc")
    ingest = svc_grpc.IngestStub(channel)
    outcomes = svc_grpc.OutcomesStub(channel)
    audit = svc_grpc.AuditStub(channel)

    def event(event_id, subject_id, visit, date, **body):
        return ev.Event(event_id=event_id, study_id=study, subject_id=subject_id, visit_id=visit,
                        clinical_date=date, **body)

    def visit_forms(subject_id, visit, date, values):
        physician, patient, extramuscular, mmt, haq_di, ck = values

        def recorded(suffix, **instrument):
            return event(f"{study}.{subject_id}.{visit}.{suffix}", subject_id, visit, date,
                         assessment_recorded=ev.AssessmentRecorded(**instrument))

        return [
            recorded("globals", globals=ev.Globals(
                physician_global=ev.Vas(cm=physician), patient_global=ev.Vas(cm=patient),
                extramuscular_global=ev.Vas(mm=extramuscular))),
            recorded("mmt8", mmt8=ev.Mmt8(max=80, total=mmt)),
            recorded("haq_di", haq_di=ev.HaqDi(value=haq_di)),
            recorded("enzymes", enzymes=ev.Enzymes(ck=ev.EnzymeResult(value=ck, uln="200", unit="U/L"))),
        ]

    acks = []

    def check_acked(name, response, count):
        if response.HasField("rejection") or len(response.acks) != count:
            fail(f"{name}: expected {count} acks, got {response}")
        for ack in response.acks:
            if ack.sequence < 1 or len(ack.hash) != 32 or ack.duplicate:
                fail(f"{name}: bad ack {ack}")
        acks.extend(response.acks)

    registered = svc.SubmitRequest(batch_id=f"{study}.register", events=[
        event(f"{study}.registered", "", "", "2024-01-01",
              study_registered=ev.StudyRegistered(title="Container smoke study",
                                                  population=ev.POPULATION_ADULT))])
    try:
        ingest.Append(registered, metadata=bearer(writer_token), timeout=10)
        fail("StudyRegistered with a writer's token was accepted")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.PERMISSION_DENIED:
            fail(f"StudyRegistered by a writer: expected PERMISSION_DENIED, got {error.code()}")
    check_acked("StudyRegistered (admin)", ingest.Append(registered, metadata=bearer(admin_token), timeout=10), 1)

    enrolled = svc.SubmitRequest(batch_id=f"{study}.enrol", events=[
        event(f"{study}.{s}.enrolled", s, "", "2024-01-02", subject_enrolled=ev.SubjectEnrolled(arm="open label"))
        for s in SUBJECTS])
    check_acked("SubjectEnrolled (writer)", ingest.Append(enrolled, metadata=bearer(writer_token), timeout=10),
                len(SUBJECTS))

    # The visits over the bidirectional stream, one batch per subject and visit.
    batches = [svc.SubmitRequest(batch_id=f"{study}.{s}.{visit}",
                                 events=visit_forms(s, visit, date, values[i]))
               for i, (visit, date) in enumerate(VISITS) for s, values in SUBJECTS.items()]
    answers = list(ingest.Submit(iter(batches), metadata=bearer(writer_token), timeout=30))
    if len(answers) != len(batches):
        fail(f"one answer per batch expected, got {len(answers)} for {len(batches)}")
    for batch, answer in zip(batches, answers):
        check_acked(batch.batch_id, answer, 4)
        if batch.batch_id.endswith("week12") and not any(o.visit_id == "week12" for o in answer.outcomes):
            fail(f"{batch.batch_id}: the answer carries no week-12 outcome")
    sequences = [a.sequence for a in acks]
    if sequences != list(range(sequences[0], sequences[0] + len(sequences))):
        fail(f"the acked sequences are not contiguous: {sequences}")

    try:
        outcomes.GetSubject(svc.GetSubjectRequest(study_id=study, subject_id="S01"),
                            metadata=bearer(reader_token), timeout=10)
        fail(f"a reader of another study read {study}")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.PERMISSION_DENIED:
            fail(f"reader of another study: expected PERMISSION_DENIED, got {error.code()}")
    read = read_outcomes(svc, outcomes, study, SUBJECTS, auditor_token)
    verified = audit.Verify(svc.VerifyRequest(), metadata=bearer(auditor_token), timeout=30)
    if not verified.ok or verified.head_sequence != acks[-1].sequence or verified.head_hash != acks[-1].hash:
        fail(f"Audit.Verify does not end at the last ack {acks[-1].sequence}: {verified}")
    return {
        "study": study,
        "acked": len(acks),
        "first_sequence": acks[0].sequence,
        "head_sequence": acks[-1].sequence,
        "head_hash": acks[-1].hash.hex(),
        "writer_register_refused": True,
        "other_reader_refused": True,
        "outcomes": read,
    }


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] in ("submit", "read") else None
    args = sys.argv[2:] if mode else sys.argv[1:]
    expected = {None: 5, "submit": 7, "read": 4}[mode]
    if len(args) != expected:
        fail("\n       ".join(__doc__.strip().splitlines()[2:5]))
    import grpc

    if mode:
        proto_dir, addr = args[:2]
        with tempfile.TemporaryDirectory() as out_dir:
            generate_stubs(proto_dir, out_dir)
            svc = importlib.import_module("myolog.v1.service_pb2")
            svc_grpc = importlib.import_module("myolog.v1.service_pb2_grpc")
            with grpc.insecure_channel(addr) as channel:
                grpc.channel_ready_future(channel).result(timeout=10)
                if mode == "submit":
                    print(json.dumps(submit(svc, channel, args[6], *args[2:6])))
                else:
                    token, study = args[2:]
                    outcomes = svc_grpc.OutcomesStub(channel)
                    print(json.dumps({"study": study,
                                      "outcomes": read_outcomes(svc, outcomes, study, SUBJECTS, token)}))
        return

    proto_dir, addr, auditor_token, reader_token, study = args

    with tempfile.TemporaryDirectory() as out_dir:
        generate_stubs(proto_dir, out_dir)
        svc = importlib.import_module("myolog.v1.service_pb2")
        svc_grpc = importlib.import_module("myolog.v1.service_pb2_grpc")
        with grpc.insecure_channel(addr) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            audit = svc_grpc.AuditStub(channel)
            outcomes = svc_grpc.OutcomesStub(channel)

            try:
                audit.Verify(svc.VerifyRequest(), timeout=10)
                fail("Audit.Verify without a token was answered")
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                    fail(f"without a token: expected UNAUTHENTICATED, got {error.code()}")

            verified = audit.Verify(svc.VerifyRequest(), metadata=bearer(auditor_token), timeout=30)
            if not verified.ok:
                fail(f"Audit.Verify: chain damaged at {verified.first_bad_sequence}: {verified.reason}")
            cohort = outcomes.GetCohort(svc.GetCohortRequest(study_id=study),
                                        metadata=bearer(reader_token), timeout=30)
            print(json.dumps({
                "unauthenticated_refused": True,
                "verify_ok": verified.ok,
                "events_checked": verified.checked,
                "head_sequence": verified.head_sequence,
                "head_hash": verified.head_hash.hex(),
                "study": cohort.study_id,
                "enrolled": cohort.enrolled,
                "cohort_visits": len(cohort.visits),
                "cohort_as_of_sequence": cohort.as_of_sequence,
            }))


if __name__ == "__main__":
    main()
