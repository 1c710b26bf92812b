#!/usr/bin/env bash
# Container smoke test, run by CI: builds the image from deploy/Dockerfile with buildah (from a local
# Debian base, with the host's Rust toolchain mounted) and runs it with podman as operators would
# (user 10001, read-only root filesystem, no capabilities, the log on one volume), three containers in
# turn on the same volume, each stopped with SIGTERM (exit 0 and "stopped" in its logs):
#   1. local mode (no principals file: the server binds loopback only, so the container shares the
#      host's network and listens on 127.0.0.1): health SERVING (host `myolog healthcheck` and the
#      image's HEALTHCHECK), the demo cohort streamed by the host's `myolog demo`, its outcomes read
#      with `myolog outcomes`, the metrics counting the appends;
#   2. the operators' configuration (bridge network, ports published on 127.0.0.1, a principals file
#      with auditor, reader, admin and writer tokens, plaintext allowed, JSON logs): SERVING through
#      the published port, a call without a token refused, Audit.Verify and Outcomes.GetCohort with the
#      tokens (deploy/grpc_check.py, Python grpcio) see the cohort's head; then, from outside the
#      container through the published port, a small cohort: study SMOKE-2 registered with the admin's
#      token (the writer's refused), three subjects enrolled and a baseline and week-12 visit each sent
#      with the writer's token, every event acked (sequence, hash), each subject's DOI and TIS read
#      back with the auditor's token (the other study's reader refused); metrics through the port;
#   3. local mode again: the outcomes read back (STIR-DEMO with `myolog outcomes`, SMOKE-2 with the
#      Python client on loopback) are identical to those before the restarts, and the demo cohort
#      resent is acknowledged entirely as already in the log, the head unchanged; a read-only
#      follower (`MYOLOG_FOLLOW`, its own volume) copies it, serves the same outcomes as of the same
#      sequence, and refuses writes naming the primary;
#   4. the operators' configuration with TLS (a CA and a server certificate for myolog.example made
#      with openssl): SERVING over TLS from the host with the certificate verified against that
#      name, refused against 127.0.0.1 and in plaintext, and the image's HEALTHCHECK healthy over
#      TLS through MYOLOG_CLIENT_TLS_CA and MYOLOG_CLIENT_TLS_SERVER_NAME;
# then `myolog verify --data /data` passes inside a container on the volume (every event of both),
# and on the follower's volume with the same events, head sequence and hash.
# Every server container also archives to a directory (`MYOLOG_ARCHIVE=file:///archive`, a host
# directory): at the end the drill (`myolog restore --verify-only`) passes, the log's volume is
# deleted, `myolog restore` rebuilds it from the archive on a new volume, and `myolog verify` there
# reports the same events, head sequence and hash as before.
# Everything listens on 127.0.0.1 only. Bounded in time (SMOKE_TIMEOUT seconds, default 2700); the
# containers and the volume are removed on exit, the images are kept as a build cache.
#
# Settings (environment): SMOKE_TIMEOUT, SMOKE_IMAGE (default localhost/myolog:smoke),
# BASE_IMAGE (default localhost/debian-bookworm-min:latest), SMOKE_KEEP_IMAGE=0 to remove the image.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

: "${SMOKE_TIMEOUT:=2700}"
if [ -z "${SMOKE_BOUNDED:-}" ]; then
    # Re-run under timeout so that no step can hang CI; TERM lets the cleanup trap run.
    SMOKE_BOUNDED=1 exec timeout --kill-after=30 "$SMOKE_TIMEOUT" bash "$0" "$@"
fi

start_time=$(date +%s)
step() { printf '\n== [%4ss] %s\n' "$(($(date +%s) - start_time))" "$*"; }
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
checks=0
passed() { checks=$((checks + 1)); echo "  ok: $*"; }

image=${SMOKE_IMAGE:-localhost/myolog:smoke}
export BASE_IMAGE=${BASE_IMAGE:-localhost/debian-bookworm-min:latest}
tag=smoke-$$
volume=myolog-$tag
follower_volume=myolog-$tag-follower
work=$(mktemp -d /tmp/myolog-smoke.XXXXXX)

step "tools: podman, buildah, runc, debootstrap, openssl"
missing=()
for tool in podman buildah runc debootstrap openssl; do
    command -v "$tool" > /dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q > "$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log"; exit 1; }
    apt-get install -y -q podman buildah runc debootstrap openssl >> "$work/apt.log" 2>&1 \
        || { tail -n 20 "$work/apt.log"; exit 1; }
fi
podman --version
buildah --version

# podman's defaults fail in this sandbox (crun on hybrid cgroups; RLIMIT_NOFILE may not be set).
export CONTAINERS_CONF=$root/deploy/containers.conf
podman=(podman --runtime runc --cgroup-manager cgroupfs)
# There is no systemd here to run health-check timers, and podman says so on every run/stop/rm of a
# container that has a HEALTHCHECK; `quiet` drops those lines and keeps every other message.
quiet() { "$@" 2> >(grep -v 'systemd connection' >&2); }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for name in "$tag-1" "$tag-2" "$tag-3" "$tag-4" "$tag-verify" "$tag-drill" "$tag-restore" \
        "$tag-verify-restored" "$tag-follower" "$tag-verify-follower"; do
        "${podman[@]}" rm -f -v -t 5 "$name" > /dev/null 2>&1 || true
    done
    "${podman[@]}" volume rm -f "$volume" "$follower_volume" > /dev/null 2>&1 || true
    if [ "${SMOKE_KEEP_IMAGE:-1}" = 0 ]; then
        "${podman[@]}" rmi -f "$image" > /dev/null 2>&1 || true
    fi
    rm -rf "$work"
    if [ "$status" = 0 ]; then
        echo "smoke: passed in $(($(date +%s) - start_time)) s"
        echo "smoke: $checks passed, 0 failed"
    else
        echo "smoke: FAILED (exit $status) after $(($(date +%s) - start_time)) s" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 124' TERM

step "base image $BASE_IMAGE (debootstrap once, then cached)"
bash deploy/base-image.sh

step "build $image (buildah, stub-dependency layer cached across runs)"
# The toolchain that rustup installed: CARGO_HOME and RUSTUP_HOME, or where `cargo` on PATH lives.
cargo_bin=$(command -v cargo || true)
cargo_home=${CARGO_HOME:-${cargo_bin:+$(dirname "$(dirname "$cargo_bin")")}}
cargo_home=${cargo_home:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$(dirname "$cargo_home")/.rustup}
[ -x "$cargo_home/bin/cargo" ] || fail "no Rust toolchain at $cargo_home to mount into the build"
buildah bud --isolation chroot --layers --format docker \
    --build-arg BUILDER_IMAGE="$BASE_IMAGE" \
    --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
    -v "$cargo_home:/usr/local/cargo" -v "$rustup_home:/usr/local/rustup" \
    -f deploy/Dockerfile -t "$image" . > "$work/build.log" 2>&1 \
    || { tail -n 60 "$work/build.log"; fail "image build"; }
echo "  $(grep -c -- '--> Using cache' "$work/build.log") cached steps"
grep -E 'Finished .release' "$work/build.log" | sed 's/^ */  cargo: /' || true
# Keep the layer cache of this build only: `--layers` keeps an image per step, and each rebuild of
# the dependency layer would otherwise leave gigabytes of untagged images behind.
keep=$(grep -oE -- '--> (Using cache )?[0-9a-f]{11,64}' "$work/build.log" | awk '{print $NF}' | cut -c1-11 | sort -u)
removed=0
for _ in 1 2 3 4 5; do
    progress=0
    for id in $("${podman[@]}" images -a --no-trunc --format '{{.ID}} {{.Repository}}' \
                | awk '$2 == "<none>" {print $1}' | sed 's/^sha256://' | cut -c1-11 | sort -u); do
        grep -qx "$id" <<< "$keep" && continue
        if "${podman[@]}" rmi "$id" > /dev/null 2>&1; then removed=$((removed + 1)); progress=1; fi
    done
    [ "$progress" = 1 ] || break
done
echo "  removed $removed untagged images of earlier builds"
"${podman[@]}" image inspect "$image" --format \
    'user={{.Config.User}} stopsignal={{.Config.StopSignal}} healthcheck={{.Config.Healthcheck.Test}}'

# The client runs on the host, outside the container: the image's own binary (Debian bookworm on
# both sides), so no second release build is needed.
client=$work/myolog
cid=$("${podman[@]}" create --no-healthcheck "$image")
"${podman[@]}" cp "$cid:/usr/local/bin/myolog" "$client"
"${podman[@]}" rm -v "$cid" > /dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port)
metrics_port=$(free_port)
addr=http://127.0.0.1:$grpc_port
study=STIR-DEMO
smoke_study=SMOKE-2

# The archive: a host directory the containers' user owns (a mounted backup volume in production).
archive=$work/archive
mkdir -p "$archive"
chown 10001:10001 "$archive"
# The settings of deploy/k8s: read-only root with a /tmp, no capabilities, no privilege escalation;
# every server archives its log in the background.
locked_down=(--read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)
hardened=("${locked_down[@]}" -v "$volume:/data" -v "$archive:/archive" -e MYOLOG_ARCHIVE=file:///archive)

# Local mode: the container shares the host's network namespace and binds 127.0.0.1 (no principals
# file, so off-loopback addresses are refused by design). The image's HEALTHCHECK names port 50051;
# here it is given the chosen port.
run_local() {
    local name=$1; shift
    quiet "${podman[@]}" run -d --name "$name" "${hardened[@]}" --network host \
        --health-cmd "[\"myolog\", \"healthcheck\", \"--addr\", \"$addr\"]" --health-interval disable \
        -e MYOLOG_ADDR="127.0.0.1:$grpc_port" -e MYOLOG_METRICS_ADDR="127.0.0.1:$metrics_port" \
        "$@" "$image" > /dev/null
}

# The operators' configuration: the image's own addresses (0.0.0.0:50051 and :9464 inside the
# container), published on 127.0.0.1 only, with a principals file.
run_secured() {
    local name=$1; shift
    quiet "${podman[@]}" run -d --name "$name" "${hardened[@]}" --health-interval disable \
        -p "127.0.0.1:$grpc_port:50051" -p "127.0.0.1:$metrics_port:9464" \
        -v "$work/principals.toml:/etc/myolog/principals.toml:ro" \
        -e MYOLOG_PRINCIPALS=/etc/myolog/principals.toml -e MYOLOG_ALLOW_PLAINTEXT=true \
        "$@" "$image" > /dev/null
}

# Waits until the host's `myolog healthcheck ARGS...` (default: --addr $addr) answers SERVING, then
# runs the image's own HEALTHCHECK inside the container.
wait_serving() {
    local name=$1 deadline=$(($(date +%s) + 90))
    shift
    local check=("$@")
    [ "${#check[@]}" -gt 0 ] || check=(--addr "$addr")
    until "$client" healthcheck "${check[@]}" > "$work/health.log" 2>&1; do
        if [ "$("${podman[@]}" inspect -f '{{.State.Running}}' "$name")" != true ]; then
            "${podman[@]}" logs "$name" 2>&1 | tail -n 30
            fail "$name exited before it was SERVING"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/health.log"; fail "$name not SERVING in 90 s"; }
        sleep 1
    done
    passed "$name: SERVING (healthcheck ${check[*]})"
    # The image's HEALTHCHECK, run by podman inside the container.
    quiet "${podman[@]}" healthcheck run "$name" > /dev/null || fail "the HEALTHCHECK of $name failed"
    passed "$name: image HEALTHCHECK healthy"
}

stop_cleanly() {
    local name=$1 t0 exit_code
    t0=$(date +%s)
    quiet "${podman[@]}" stop -t 20 "$name" > /dev/null
    exit_code=$("${podman[@]}" inspect -f '{{.State.ExitCode}}' "$name")
    "${podman[@]}" logs "$name" > "$work/$name.log" 2>&1
    echo "$name: stopped by SIGTERM in $(($(date +%s) - t0)) s, exit code $exit_code"
    [ "$exit_code" = 0 ] || { tail -n 30 "$work/$name.log"; fail "$name did not exit cleanly on SIGTERM"; }
    grep -iE 'SIGTERM|shut ?down|stopped' "$work/$name.log" | tail -n 3 | sed 's/^/  log: /'
    grep -qE '"stopped"|server: stopped' "$work/$name.log" \
        || { tail -n 20 "$work/$name.log"; fail "no graceful shutdown in the logs of $name"; }
    passed "$name: SIGTERM, exit 0, graceful shutdown logged"
}

scrape() {
    python3 - "$metrics_port" > "$work/metrics.txt" <<'PY' || fail "no metrics on 127.0.0.1:$metrics_port"
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5) as r:
    print(r.read().decode())
PY
    grep -E '^myolog_(events_appended_total|events_rejected_total|append_latency_seconds_(count|sum)|outcomes_computed_total|open_streams)' \
        "$work/metrics.txt" | sed 's/^/  /'
    awk '$1 == "myolog_events_appended_total" {print $2}' "$work/metrics.txt"
}

acks() { sed -n 's/.* \([0-9][0-9]*\) events acknowledged.* (\([0-9][0-9]*\) of them already in the log).*/\1 \2/p' "$1"; }
head_of() { grep -o 'head sequence [0-9]*, hash [0-9a-f]*' "$1"; }
outcomes_of() { sed -n '/^Week-12 outcomes/,$p' "$1" | grep -v '^done in'; }

"${podman[@]}" volume create "$volume" > /dev/null

step "1. local mode on volume $volume: demo cohort from the host"
run_local "$tag-1"
wait_serving "$tag-1"
"$client" demo --addr "$addr" > "$work/demo-1.txt" 2> "$work/demo-1.err" \
    || { cat "$work/demo-1.txt" "$work/demo-1.err"; fail "demo against the container"; }
# One process reads and cuts: `sed | head` dies of SIGPIPE under pipefail once the output is long.
sed -n '1,40s/^/  | /p' "$work/demo-1.txt"
read -r acked_1 dup_1 <<< "$(acks "$work/demo-1.txt")"
[ "${acked_1:-0}" -gt 0 ] && [ "$dup_1" = 0 ] || fail "the demo did not append a fresh cohort"
# The primary visit as the demo names it ("Cohort at W12 (n = 10)"): the id depends on the protocol.
visit=$(sed -n 's/^Cohort at \([^ ]*\) (n = .*/\1/p;T;q' "$work/demo-1.txt")
[ -n "$visit" ] || fail "no cohort visit in the demo's output"
"$client" outcomes --addr "$addr" --study "$study" --visit "$visit" > "$work/outcomes-1.txt" 2>&1 \
    || { cat "$work/outcomes-1.txt"; fail "myolog outcomes against the first container"; }
appended=$(scrape | tail -n 1)
[ "${appended:-0}" = "$acked_1" ] || fail "metrics count $appended appended events, the demo $acked_1"
passed "demo cohort from the host: $acked_1 events acknowledged; metrics count them"
stop_cleanly "$tag-1"

step "2. operators' configuration: published 127.0.0.1 ports, principals file, JSON logs"
# Tokens issued on the host; the container reads only their hashes (as user 10001).
"$client" token issue --principal smoke-auditor --role auditor --file "$work/principals.toml" \
    > "$work/auditor.token" 2> /dev/null || fail "myolog token issue (auditor)"
"$client" token issue --principal smoke-reader --role reader --study "$study" \
    --file "$work/principals.toml" > "$work/reader.token" 2> /dev/null || fail "myolog token issue (reader)"
"$client" token issue --principal smoke-admin --role admin --file "$work/principals.toml" \
    > "$work/admin.token" 2> /dev/null || fail "myolog token issue (admin)"
"$client" token issue --principal smoke-edc --role writer --study "$smoke_study" \
    --file "$work/principals.toml" > "$work/writer.token" 2> /dev/null || fail "myolog token issue (writer)"
chown 10001:10001 "$work/principals.toml"
run_secured "$tag-2" -e MYOLOG_LOG_FORMAT=json
wait_serving "$tag-2"
python3 -m pip install -q --disable-pip-version-check grpcio==1.85.1 grpcio-tools==1.85.1 > /dev/null 2>&1 \
    || python3 -c 'import grpc, grpc_tools' || fail "grpcio and grpcio-tools are needed for grpc_check.py"
python3 deploy/grpc_check.py proto "127.0.0.1:$grpc_port" "$(cat "$work/auditor.token")" \
    "$(cat "$work/reader.token")" "$study" > "$work/check.json" || fail "authenticated checks through the published port"
echo "  $(cat "$work/check.json")"
python3 - "$work/check.json" "$acked_1" "$(head_of "$work/demo-1.txt")" <<'PY' || fail "the secured container does not see the cohort"
import json, sys
check = json.load(open(sys.argv[1]))
head_seq, head_hash = sys.argv[3].split()[2].rstrip(","), sys.argv[3].split()[4]
assert check["head_sequence"] == int(head_seq), (check["head_sequence"], head_seq)
assert check["head_hash"].startswith(head_hash), (check["head_hash"], head_hash)
assert check["enrolled"] > 0 and check["cohort_visits"] > 0, check
PY
passed "no token refused; Audit.Verify and Outcomes.GetCohort with tokens through the published port"
# A small cohort from outside the container through the published port: admin registers SMOKE-2,
# the writer (scoped to it) enrols and sends the visits, the auditor reads the outcomes back.
python3 deploy/grpc_check.py submit proto "127.0.0.1:$grpc_port" "$(cat "$work/admin.token")" \
    "$(cat "$work/writer.token")" "$(cat "$work/auditor.token")" "$(cat "$work/reader.token")" \
    "$smoke_study" > "$work/submit.json" || fail "a cohort submitted through the published port"
read -r smoke_acked smoke_first smoke_head <<< "$(python3 - "$work/submit.json" "$work/outcomes-smoke-2.json" <<'PY'
import json, sys
submit = json.load(open(sys.argv[1]))
json.dump(submit["outcomes"], open(sys.argv[2], "w"), sort_keys=True)
for subject, o in sorted(submit["outcomes"].items()):
    print(f"  | {submit['study']} {subject} week12: {o['doi']} ({o['doi_improved']} improved), "
          f"TIS {o['tis_score']} {o['tis_category']}", file=sys.stderr)
print(submit["acked"], submit["first_sequence"], submit["head_sequence"])
PY
)"
[ "${smoke_acked:-0}" -gt 0 ] || fail "no events acked for $smoke_study"
passed "$smoke_study through the published port: admin registered it (writer refused), writer sent $smoke_acked events acked (sequences $smoke_first..$smoke_head, hashes), DOI/TIS read back with the auditor's token"
scrape > /dev/null
passed "metrics through the published port"
stop_cleanly "$tag-2"
python3 - "$work/$tag-2.log" <<'PY' || fail "the logs of $tag-2 are not JSON lines"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
assert records, "no log lines"
print(f"  {len(records)} log lines, all JSON; last: {records[-1].get('fields', {}).get('message')}")
PY
passed "JSON logs"

step "3. local mode again: outcomes after two restarts, cohort resent"
run_local "$tag-3"
wait_serving "$tag-3"
# Before anything is sent again: the outcomes come from the log replayed at start.
"$client" outcomes --addr "$addr" --study "$study" --visit "$visit" > "$work/outcomes-3.txt" 2>&1 \
    || { cat "$work/outcomes-3.txt"; fail "myolog outcomes against the third container"; }
# The header names the log head they are read at, which SMOKE-2's events moved: the outcomes must not.
grep -q ", as of log sequence $smoke_head\$" "$work/outcomes-3.txt" \
    || { head -n 1 "$work/outcomes-3.txt"; fail "the third container's outcomes are not as of sequence $smoke_head"; }
diff <(sed 's/, as of log sequence [0-9]*$//' "$work/outcomes-1.txt") \
    <(sed 's/, as of log sequence [0-9]*$//' "$work/outcomes-3.txt") > "$work/outcomes.diff" \
    || { cat "$work/outcomes.diff"; fail "the outcomes read after the restarts differ"; }
passed "myolog outcomes identical to before the restarts ($(wc -l < "$work/outcomes-3.txt") lines)"
sed -n '1,14s/^/  | /p' "$work/outcomes-3.txt"
# SMOKE-2, sent through the published port of the second container, read on loopback (local mode).
python3 deploy/grpc_check.py read proto "127.0.0.1:$grpc_port" "" "$smoke_study" > "$work/read-3.json" \
    || fail "reading $smoke_study from the third container"
python3 - "$work/read-3.json" "$work/outcomes-smoke-2.json" <<'PY' || fail "the outcomes of $smoke_study differ after the restarts"
import json, sys
after = json.load(open(sys.argv[1]))["outcomes"]
before = json.load(open(sys.argv[2]))
assert after == before, (after, before)
print(f"  {len(after)} subjects: " + ", ".join(f"{s} {o['doi']}" for s, o in sorted(after.items())))
PY
passed "$smoke_study outcomes identical to those read through the published port"
"$client" demo --addr "$addr" > "$work/demo-3.txt" 2> "$work/demo-3.err" \
    || { cat "$work/demo-3.txt" "$work/demo-3.err"; fail "demo against the third container"; }
read -r acked_3 dup_3 <<< "$(acks "$work/demo-3.txt")"
echo "  first run:  $acked_1 events acknowledged, $dup_1 already in the log; $(head_of "$work/demo-1.txt")"
echo "  resent:     $acked_3 events acknowledged, $dup_3 already in the log; $(head_of "$work/demo-3.txt")"
[ "$acked_3" = "$acked_1" ] && [ "$dup_3" = "$acked_3" ] || fail "events were lost across the restarts"
[ "$(head_of "$work/demo-1.txt")" = "$(head_of "$work/demo-3.txt")" ] || fail "the log head moved"
diff <(outcomes_of "$work/demo-1.txt") <(outcomes_of "$work/demo-3.txt") > "$work/demo.diff" \
    || { cat "$work/demo.diff"; fail "the demo's outcomes differ after the restarts"; }
passed "cohort resent: all already in the log, head unchanged, outcomes identical"

step "3b. a read-only follower of the third container, on its own volume"
# A follower copies its primary and does not archive (the primary does): no MYOLOG_ARCHIVE here.
follower_grpc_port=$(free_port)
follower_addr=http://127.0.0.1:$follower_grpc_port
"${podman[@]}" volume create "$follower_volume" > /dev/null
quiet "${podman[@]}" run -d --name "$tag-follower" "${locked_down[@]}" -v "$follower_volume:/data" \
    --network host --health-cmd "[\"myolog\", \"healthcheck\", \"--addr\", \"$follower_addr\"]" \
    --health-interval disable -e MYOLOG_ADDR="127.0.0.1:$follower_grpc_port" \
    -e MYOLOG_METRICS_ADDR="127.0.0.1:$(free_port)" -e MYOLOG_FOLLOW="$addr" -e MYOLOG_FOLLOW_POLL_MS=200 \
    "$image" > /dev/null
wait_serving "$tag-follower" --addr "$follower_addr"
# Caught up once it answers the primary's outcomes as of the primary's head sequence.
deadline=$(($(date +%s) + 90))
until "$client" outcomes --addr "$follower_addr" --study "$study" --visit "$visit" \
        > "$work/outcomes-follower.txt" 2>&1 \
    && cmp -s "$work/outcomes-3.txt" "$work/outcomes-follower.txt"; do
    [ "$(date +%s)" -lt "$deadline" ] || { diff "$work/outcomes-3.txt" "$work/outcomes-follower.txt"; fail "the follower did not catch up in 90 s"; }
    sleep 1
done
passed "follower: caught up; the same outcomes as the primary, as of log sequence $smoke_head"
if "$client" demo --addr "$follower_addr" > "$work/demo-follower.txt" 2>&1; then
    fail "the follower took writes"
fi
grep -q "read-only follower of $addr" "$work/demo-follower.txt" \
    || { tail -n 5 "$work/demo-follower.txt"; fail "the follower's refusal does not name its primary"; }
passed "follower: writes refused, naming the primary $addr"
stop_cleanly "$tag-follower"
stop_cleanly "$tag-3"

step "4. TLS: the operators' configuration with a server certificate, the image's HEALTHCHECK over TLS"
# A CA and a server certificate for the service's name only (not 127.0.0.1), made with openssl here:
# the health checks must verify the certificate against that name.
tls=$work/tls
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=Myolog smoke CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" > "$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; fail "openssl: CA"; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=myolog.example" \
    -keyout "$tls/server.key" -out "$tls/server.csr" >> "$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; fail "openssl: key"; }
printf 'subjectAltName=DNS:myolog.example\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
    > "$tls/server.ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
    -extfile "$tls/server.ext" -out "$tls/server.pem" >> "$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; fail "openssl: certificate"; }
chown 10001:10001 "$tls/server.key" "$tls/server.pem" "$tls/ca.pem"
chmod 0400 "$tls/server.key"
quiet "${podman[@]}" run -d --name "$tag-4" "${hardened[@]}" --health-interval disable \
    -p "127.0.0.1:$grpc_port:50051" \
    -v "$work/principals.toml:/etc/myolog/principals.toml:ro" -v "$tls:/etc/myolog/tls:ro" \
    -e MYOLOG_PRINCIPALS=/etc/myolog/principals.toml \
    -e MYOLOG_TLS_CERT=/etc/myolog/tls/server.pem -e MYOLOG_TLS_KEY=/etc/myolog/tls/server.key \
    -e MYOLOG_CLIENT_TLS_CA=/etc/myolog/tls/ca.pem \
    -e MYOLOG_CLIENT_TLS_SERVER_NAME=myolog.example \
    "$image" > /dev/null
tls_addr=https://127.0.0.1:$grpc_port
# SERVING over TLS with the certificate verified against myolog.example, then the image's
# HEALTHCHECK over TLS (MYOLOG_CLIENT_TLS_CA and MYOLOG_CLIENT_TLS_SERVER_NAME).
wait_serving "$tag-4" --addr "$tls_addr" --tls-ca "$tls/ca.pem" --tls-server-name myolog.example
if "$client" healthcheck --addr "$tls_addr" --tls-ca "$tls/ca.pem" > "$work/health-name.log" 2>&1; then
    fail "a certificate for myolog.example was accepted for 127.0.0.1"
fi
if "$client" healthcheck --addr "http://127.0.0.1:$grpc_port" > "$work/health-plain.log" 2>&1; then
    fail "a plaintext health check passed against the TLS server"
fi
passed "refused: the certificate checked against 127.0.0.1 ($(head -c 60 "$work/health-name.log")...), and plaintext"
stop_cleanly "$tag-4"

step "myolog verify --data /data inside a container on the volume"
"${podman[@]}" run --name "$tag-verify" --no-healthcheck "${hardened[@]}" --network none "$image" \
    verify --data /data > "$work/verify.txt" 2>&1 || { cat "$work/verify.txt"; fail "verify"; }
sed 's/^/  /' "$work/verify.txt"
total=$((acked_1 + smoke_acked))
grep -q "^ok: $total events verified; head sequence $smoke_head " "$work/verify.txt" \
    || fail "verify did not check the $total events ($acked_1 demo, $smoke_acked $smoke_study)"
passed "myolog verify --data /data in a container ($total events)"
"${podman[@]}" run --name "$tag-verify-follower" --no-healthcheck "${locked_down[@]}" \
    -v "$follower_volume:/data" --network none "$image" \
    verify --data /data > "$work/verify-follower.txt" 2>&1 || { cat "$work/verify-follower.txt"; fail "verify (follower)"; }
diff "$work/verify.txt" "$work/verify-follower.txt" > "$work/follower.diff" \
    || { cat "$work/follower.diff"; fail "the follower's log differs from the primary's"; }
passed "the follower's volume verifies with the primary's events, head sequence and hash"

step "lost volume: the archive's drill passes, then a restore on a new volume verifies as before"
segments=$(find "$archive/segments" -name '*.seg' | wc -l)
[ "$segments" -gt 0 ] || fail "nothing was archived"
"${podman[@]}" run --name "$tag-drill" --no-healthcheck "${hardened[@]}" --network none "$image" \
    restore --from file:///archive --verify-only > "$work/drill.txt" 2>&1 || { cat "$work/drill.txt"; fail "drill"; }
sed 's/^/  /' "$work/drill.txt"
passed "restore drill: $segments segments verified"
"${podman[@]}" rm -f -v "$tag-1" "$tag-2" "$tag-3" "$tag-4" "$tag-verify" "$tag-drill" "$tag-follower" \
    "$tag-verify-follower" > /dev/null 2>&1 || true
"${podman[@]}" volume rm -f "$volume" > /dev/null
"${podman[@]}" volume create "$volume" > /dev/null
"${podman[@]}" run --name "$tag-restore" --no-healthcheck "${hardened[@]}" --network none "$image" \
    restore --from file:///archive --data /data > "$work/restore.txt" 2>&1 || { cat "$work/restore.txt"; fail "restore"; }
sed 's/^/  /' "$work/restore.txt"
"${podman[@]}" run --name "$tag-verify-restored" --no-healthcheck "${hardened[@]}" --network none "$image" \
    verify --data /data > "$work/verify-restored.txt" 2>&1 || { cat "$work/verify-restored.txt"; fail "verify"; }
sed 's/^/  /' "$work/verify-restored.txt"
diff "$work/verify.txt" "$work/verify-restored.txt" > "$work/restore.diff" \
    || { cat "$work/restore.diff"; fail "the restored log differs from the lost one"; }
passed "volume deleted and restored from the archive: $total events, same head sequence and hash"
