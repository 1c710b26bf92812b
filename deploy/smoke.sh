#!/usr/bin/env bash
# Container smoke test, run by CI: builds the image from deploy/Dockerfile with buildah (from a local
# Debian base, with the host's Rust toolchain mounted), runs it with podman as the operators would
# (non-root, read-only root filesystem, no capabilities, the log on a volume), and checks:
#   1. the container reports health SERVING (the host's `myolog healthcheck` through the published port,
#      and the image's own HEALTHCHECK);
#   2. a small cohort submitted from outside the container through the published port is acknowledged
#      and scored (`myolog demo`), and the metrics endpoint counts it;
#   3. SIGTERM (`podman stop`) ends it cleanly (exit 0, graceful shutdown in the logs);
#   4. a new container on the same volume still has the events and outcomes;
#   5. `myolog verify --data /data` passes inside a container on that volume.
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

image=${SMOKE_IMAGE:-localhost/myolog:smoke}
export BASE_IMAGE=${BASE_IMAGE:-localhost/debian-bookworm-min:latest}
tag=smoke-$$
volume=myolog-$tag
work=$(mktemp -d /tmp/myolog-smoke.XXXXXX)

step "tools: podman, buildah, runc, debootstrap"
missing=()
for tool in podman buildah runc debootstrap; do
    command -v "$tool" > /dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q > "$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log"; exit 1; }
    apt-get install -y -q podman buildah runc debootstrap >> "$work/apt.log" 2>&1 \
        || { tail -n 20 "$work/apt.log"; exit 1; }
fi
podman --version
buildah --version

# podman's defaults fail in this sandbox (crun on hybrid cgroups; RLIMIT_NOFILE may not be set).
export CONTAINERS_CONF=$root/deploy/containers.conf
podman=(podman --runtime runc --cgroup-manager cgroupfs)

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for name in "$tag-1" "$tag-2" "$tag-verify"; do
        "${podman[@]}" rm -f -t 5 "$name" > /dev/null 2>&1 || true
    done
    "${podman[@]}" volume rm -f "$volume" > /dev/null 2>&1 || true
    if [ "${SMOKE_KEEP_IMAGE:-1}" = 0 ]; then
        "${podman[@]}" rmi -f "$image" > /dev/null 2>&1 || true
    fi
    rm -rf "$work"
    if [ "$status" = 0 ]; then
        echo "smoke: passed in $(($(date +%s) - start_time)) s"
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
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
[ -x "$cargo_home/bin/cargo" ] || fail "no Rust toolchain at $cargo_home to mount into the build"
buildah bud --isolation chroot --layers --format docker \
    --build-arg BUILDER_IMAGE="$BASE_IMAGE" \
    --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
    -v "$cargo_home:/usr/local/cargo" -v "$rustup_home:/usr/local/rustup" \
    -f deploy/Dockerfile -t "$image" . > "$work/build.log" 2>&1 \
    || { tail -n 60 "$work/build.log"; fail "image build"; }
echo "  $(grep -c -- '--> Using cache' "$work/build.log") cached steps"
grep -E 'Finished .release' "$work/build.log" | sed 's/^ */  cargo: /' || true
"${podman[@]}" image inspect "$image" --format \
    'user={{.Config.User}} stopsignal={{.Config.StopSignal}} healthcheck={{.Config.Healthcheck.Test}}'

# The client runs on the host, outside the container: the image's own binary (Debian bookworm on
# both sides), so no second release build is needed.
client=$work/myolog
cid=$("${podman[@]}" create "$image")
"${podman[@]}" cp "$cid:/usr/local/bin/myolog" "$client"
"${podman[@]}" rm "$cid" > /dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port)
metrics_port=$(free_port)
addr=http://127.0.0.1:$grpc_port

# Run as a Kubernetes pod with the deploy/k8s securityContext would: read-only root, no capabilities.
run_server() {
    local name=$1; shift
    # --health-interval disable: no systemd timer here; `podman healthcheck run` runs it on demand.
    "${podman[@]}" run -d --name "$name" --health-interval disable "$@" \
        --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
        -p "127.0.0.1:$grpc_port:50051" -p "127.0.0.1:$metrics_port:9464" \
        -v "$volume:/data" "$image" > /dev/null
}

wait_serving() {
    local name=$1 deadline=$(($(date +%s) + 90))
    until "$client" healthcheck --addr "$addr" > "$work/health.log" 2>&1; do
        if [ "$("${podman[@]}" inspect -f '{{.State.Running}}' "$name")" != true ]; then
            "${podman[@]}" logs "$name" | tail -n 30
            fail "$name exited before it was SERVING"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/health.log"; fail "$name not SERVING in 90 s"; }
        sleep 1
    done
    echo "$name: SERVING on $addr"
    # The image's HEALTHCHECK, run by podman inside the container.
    "${podman[@]}" healthcheck run "$name" > /dev/null || fail "image HEALTHCHECK of $name failed"
    echo "$name: image HEALTHCHECK healthy"
}

stop_cleanly() {
    local name=$1 t0 exit_code
    t0=$(date +%s)
    "${podman[@]}" stop -t 20 "$name" > /dev/null
    exit_code=$("${podman[@]}" inspect -f '{{.State.ExitCode}}' "$name")
    "${podman[@]}" logs "$name" > "$work/$name.log" 2>&1
    echo "$name: stopped by SIGTERM in $(($(date +%s) - t0)) s, exit code $exit_code"
    [ "$exit_code" = 0 ] || { tail -n 30 "$work/$name.log"; fail "$name did not exit cleanly on SIGTERM"; }
    grep -iE 'shut ?down|stopp(ed|ing)|graceful' "$work/$name.log" | tail -n 3 | sed 's/^/  log: /'
    grep -qiE 'shut ?down|stopped|graceful' "$work/$name.log" \
        || { tail -n 20 "$work/$name.log"; fail "no graceful shutdown in the logs of $name"; }
}

scrape() {
    python3 - "$metrics_port" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5) as r:
    print(r.read().decode())
PY
}

"${podman[@]}" volume create "$volume" > /dev/null

step "first container on volume $volume"
run_server "$tag-1"
wait_serving "$tag-1"

step "submit a small cohort from the host through 127.0.0.1:$grpc_port"
"$client" demo --addr "$addr" > "$work/demo-1.txt" 2> "$work/demo-1.err" \
    || { cat "$work/demo-1.txt" "$work/demo-1.err"; fail "demo against the container"; }
sed 's/^/  /' "$work/demo-1.txt" | head -n 40
"$client" outcomes --addr "$addr" > "$work/outcomes-1.txt" 2>&1 \
    || { cat "$work/outcomes-1.txt"; fail "myolog outcomes against the first container"; }

step "metrics on 127.0.0.1:$metrics_port"
if [ "${SMOKE_SKIP_METRICS:-0}" = 1 ]; then
    echo "skipped (SMOKE_SKIP_METRICS=1)"
else
    scrape > "$work/metrics-1.txt" 2> "$work/metrics-1.err" \
        || fail "no metrics endpoint: $(tail -n 1 "$work/metrics-1.err")"
    grep -E '^myolog_(events_appended_total|events_rejected_total|append_latency_seconds_(count|sum)|outcomes_computed_total|open_streams)' \
        "$work/metrics-1.txt" | sed 's/^/  /'
    appended=$(awk '$1 == "myolog_events_appended_total" {print $2}' "$work/metrics-1.txt")
    [ "${appended:-0}" -gt 0 ] || fail "metrics count no appended events"
fi

step "SIGTERM"
stop_cleanly "$tag-1"

step "second container on the same volume (JSON logs)"
run_server "$tag-2" -e MYOLOG_LOG_FORMAT=json
wait_serving "$tag-2"
# Before anything is submitted again: the outcomes come from the log replayed at start.
"$client" outcomes --addr "$addr" > "$work/outcomes-2.txt" 2>&1 \
    || { cat "$work/outcomes-2.txt"; fail "myolog outcomes against the second container"; }
diff "$work/outcomes-1.txt" "$work/outcomes-2.txt" > "$work/outcomes-read.diff" \
    || { cat "$work/outcomes-read.diff"; fail "outcomes read after the restart differ"; }
echo "  myolog outcomes after the restart: identical to before ($(wc -l < "$work/outcomes-2.txt") lines)"
sed 's/^/  | /' "$work/outcomes-2.txt" | head -n 14
# The same cohort again: every event must already be in the log (acknowledged as a duplicate), the
# head must not move, and the outcomes must be the ones computed before the restart.
"$client" demo --addr "$addr" > "$work/demo-2.txt" 2> "$work/demo-2.err" \
    || { cat "$work/demo-2.txt" "$work/demo-2.err"; fail "demo against the second container"; }
acks() { sed -n 's/.* \([0-9][0-9]*\) events acknowledged.* (\([0-9][0-9]*\) of them already in the log).*/\1 \2/p' "$1"; }
head_of() { grep -o 'head sequence [0-9]*, hash [0-9a-f]*' "$1"; }
read -r acked_1 dup_1 <<< "$(acks "$work/demo-1.txt")"
read -r acked_2 dup_2 <<< "$(acks "$work/demo-2.txt")"
echo "  first run:  $acked_1 events acknowledged, $dup_1 already in the log; $(head_of "$work/demo-1.txt")"
echo "  second run: $acked_2 events acknowledged, $dup_2 already in the log; $(head_of "$work/demo-2.txt")"
[ "${acked_1:-0}" -gt 0 ] && [ "$dup_1" = 0 ] || fail "the first run did not append a fresh cohort"
[ "$acked_2" = "$acked_1" ] && [ "$dup_2" = "$acked_2" ] || fail "events were lost across the restart"
[ "$(head_of "$work/demo-1.txt")" = "$(head_of "$work/demo-2.txt")" ] || fail "the log head moved"
outcomes() { sed -n '/^Week-12 outcomes/,$p' "$1" | grep -v '^done in'; }
diff <(outcomes "$work/demo-1.txt") <(outcomes "$work/demo-2.txt") > "$work/outcomes.diff" \
    || { cat "$work/outcomes.diff"; fail "outcomes differ after the restart"; }
echo "  demo outcomes after the restart: identical ($(outcomes "$work/demo-2.txt" | wc -l) lines)"
stop_cleanly "$tag-2"
python3 - "$work/$tag-2.log" <<'PY' || fail "the second container's logs are not JSON lines"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
records = [json.loads(l) for l in lines]
assert records, "no log lines"
print(f"  {len(records)} log lines, all JSON; last: {records[-1].get('fields', {}).get('message')}")
PY

step "myolog verify --data /data inside a container on the volume"
"${podman[@]}" run --name "$tag-verify" --health-interval disable --read-only --cap-drop ALL -v "$volume:/data" "$image" \
    verify --data /data > "$work/verify.txt" 2>&1 || { cat "$work/verify.txt"; fail "verify"; }
sed 's/^/  /' "$work/verify.txt"
