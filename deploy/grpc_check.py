"""Authenticated checks of a running Myolog server, for deploy/smoke.sh.

Usage: python3 grpc_check.py PROTO_DIR HOST:PORT AUDITOR_TOKEN READER_TOKEN STUDY

Generates Python stubs from PROTO_DIR (grpcio-tools) into a temporary directory, then:
- a call without a token must be refused with UNAUTHENTICATED;
- Audit.Verify with the auditor's bearer token must report an intact chain;
- Outcomes.GetCohort with the reader's token (scoped to STUDY) must answer for that study.
Prints one JSON object (head sequence and hash, events checked, cohort size); exits non-zero with a
message on anything else.
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


def main():
    if len(sys.argv) != 6:
        fail(__doc__.strip().splitlines()[2])
    proto_dir, addr, auditor_token, reader_token, study = sys.argv[1:]
    import grpc

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

            def bearer(token):
                return [("authorization", f"Bearer {token}")]

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
