#!/usr/bin/env bash
# Builds kdhost's image with Debian's podman and proves it works: /healthz and /readyz answer,
# the image's HEALTHCHECK passes, one signed interaction from the Discord stand-in (run from
# the same image) is answered, `kdhost demo --once` runs in it, and SIGTERM ends it cleanly
# (exit 0, after the graceful stop). Long (a release build): not part of the test command.
#
#   sudo deploy/check-image.sh            (from anywhere; KD_IMAGE=name:tag to name the image,
#                                          KD_SKIP_BUILD=1 to check the one built before)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${KD_IMAGE:-localhost/kdhost:check}
POD=kd-check-$$   # the containers' name prefix
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
RUN_FLAGS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

step() { printf '\n== %s\n' "$*"; }
fail() { printf '\ncheck-image: FAILED: %s\n' "$*" >&2; exit 1; }
started=$(date +%s)

command -v podman >/dev/null || fail "podman is missing: apt-get install -y podman runc"
command -v curl >/dev/null || fail "curl is missing"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HOST_PORT=$(free_port)
STANDIN_PORT=$(free_port)

WORKDIR=$(mktemp -d)
cleanup() {
    # One at a time: podman 4.3 leaves the second of `rm -f a b` running.
    for c in "$POD-kdhost" "$POD-discord"; do
        "${PODMAN[@]}" rm -f "$c" >/dev/null 2>&1 || true
    done
    rm -rf "$WORKDIR"
}
trap cleanup EXIT

# Wait for URL to answer 200 (up to 60 s: only bounds a hang).
wait_ok() {
    local url=$1 i
    for i in $(seq 1 120); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.5
    done
    return 1
}

step "base images (deploy/base-images.sh: made locally when no registry is reachable)"
if ! "${PODMAN[@]}" image exists docker.io/library/rust:1.95-bookworm; then
    deploy/base-images.sh
else
    echo "present"
fi

if [ -n "${KD_SKIP_BUILD:-}" ] && "${PODMAN[@]}" image exists "$IMAGE"; then
    step "KD_SKIP_BUILD: checking the image built before ($IMAGE)"
else
    step "podman build -f deploy/Dockerfile -t $IMAGE ."
    build_started=$(date +%s)
    "${PODMAN[@]}" build --format docker --pull=never --layers -f deploy/Dockerfile -t "$IMAGE" . \
        || fail "the image did not build"
    echo "built in $(( $(date +%s) - build_started )) s"
fi
"${PODMAN[@]}" image inspect --format 'size {{.Size}} bytes, user {{.Config.User}}, entrypoint {{.Config.Entrypoint}} {{.Config.Cmd}}, healthcheck {{.Config.Healthcheck.Test}}' "$IMAGE"
user=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = "10001:10001" ] || fail "the image runs as '$user', not the non-root kdhost user"

# A one-off container; podman's complaint that no systemd schedules its HEALTHCHECK is left out.
run_once() { "${PODMAN[@]}" run --rm "${RUN_FLAGS[@]}" "$@" 2> >(grep -v 'systemd connection' >&2); }

step "the CLI verbs run in it"
run_once "$IMAGE" --version
run_once "$IMAGE" config validate /etc/kdhost/config

step "kdhost demo --once in it"
run_once "$IMAGE" demo --once --listen 127.0.0.1:8080 >"$WORKDIR/demo.log" 2>&1 \
    || { tail -30 "$WORKDIR/demo.log"; fail "kdhost demo --once failed in the image"; }
grep -E "^(→|  ←|  rule)" "$WORKDIR/demo.log" | cut -c1-150 | head -30 || true
grep -q "  rule guilds/" "$WORKDIR/demo.log" || fail "the demo's webhook did not reach its channel through the rule"

# podman without systemd cannot schedule the HEALTHCHECK itself (it says so on stderr):
# `podman healthcheck run` below runs it. Its other complaints are shown if a start fails.
start() { "${PODMAN[@]}" run -d "${RUN_FLAGS[@]}" "$@" >/dev/null 2>"$WORKDIR/podman.err" || { cat "$WORKDIR/podman.err"; fail "podman run $*"; }; }

# One network namespace for both (a pod's infra container cannot be given these ulimits
# here): kdhost joins the stand-in's, whose ports are published.
step "serve: the Discord stand-in and kdhost sharing one network (ports $HOST_PORT → 8080, $STANDIN_PORT → 8090)"
start --name "$POD-discord" -p "127.0.0.1:$HOST_PORT:8080" -p "127.0.0.1:$STANDIN_PORT:8090" "$IMAGE" \
    standin discord --listen 0.0.0.0:8090 --target http://127.0.0.1:8080/interactions
wait_ok "http://127.0.0.1:$STANDIN_PORT/_testkit/requests" || fail "the stand-in did not start: $("${PODMAN[@]}" logs "$POD-discord" 2>&1 | tail -5)"
settings=$("${PODMAN[@]}" logs "$POD-discord" 2>/dev/null)
public_key=$(sed -n 's/^ *DISCORD_PUBLIC_KEY=//p' <<<"$settings")
app_id=$(sed -n 's/^ *DISCORD_APPLICATION_ID=//p' <<<"$settings")
[ -n "$public_key" ] && [ -n "$app_id" ] || fail "the stand-in printed no settings"
start --name "$POD-kdhost" --network "container:$POD-discord" \
    -e DISCORD_API_BASE=http://127.0.0.1:8090 -e DISCORD_PUBLIC_KEY="$public_key" \
    -e DISCORD_APPLICATION_ID="$app_id" -e DISCORD_BOT_TOKEN=standin-bot-token \
    -e KD_SHUTDOWN_DELAY_MS=2000 -e KD_METRICS_LISTEN=0.0.0.0:9090 \
    "$IMAGE"

step "GET /healthz and /readyz"
wait_ok "http://127.0.0.1:$HOST_PORT/healthz" || { "${PODMAN[@]}" logs "$POD-kdhost" | tail -20; fail "/healthz never answered 200"; }
curl -fsS "http://127.0.0.1:$HOST_PORT/healthz"; echo
wait_ok "http://127.0.0.1:$HOST_PORT/readyz" || { curl -sS "http://127.0.0.1:$HOST_PORT/readyz"; fail "/readyz never answered 200"; }
curl -fsS "http://127.0.0.1:$HOST_PORT/readyz"; echo

step "the image's HEALTHCHECK (kdhost health)"
"${PODMAN[@]}" healthcheck run "$POD-kdhost" 2>/dev/null && echo healthy || fail "the HEALTHCHECK failed"

step "a signed interaction: the stand-in signs /help and posts it to kdhost"
answer=$(curl -fsS -XPOST "http://127.0.0.1:$STANDIN_PORT/_testkit/send" -H 'content-type: application/json' -d '{"command":"help"}') \
    || fail "the stand-in could not deliver the interaction"
python3 - "$answer" <<'PY' || fail "the interaction's answer is wrong: $answer"
import json, sys
a = json.loads(sys.argv[1])
assert a["status"] == 200, a
r = a["response"]
assert r["type"] == 4, r
content = json.dumps(r["data"])
assert "kaltura" in content.lower(), content
print("HTTP", a["status"], "type", r["type"], "-", (r["data"].get("content") or r["data"]["embeds"][0].get("title", ""))[:80])
PY

step "memory (for the manifests' requests and limits): RSS idle, then after 2,000 signed interactions, 16 at a time"
rss() { "${PODMAN[@]}" exec "$POD-kdhost" sh -c 'grep -E "VmRSS|VmHWM" /proc/1/status' | tr -s ' \t' ' ' | tr '\n' ' '; }
echo "idle: $(rss)"
load_started=$(date +%s%N)
seq 2000 | xargs -P16 -I{} curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$STANDIN_PORT/_testkit/send" \
    -H 'content-type: application/json' -d '{"command":"help"}' || fail "an interaction under load failed"
echo "2,000 interactions in $(( ($(date +%s%N) - load_started) / 1000000 )) ms (curl per request: a bound, not a benchmark)"
echo "after: $(rss)"
"${PODMAN[@]}" healthcheck run "$POD-kdhost" >/dev/null 2>&1 && echo "still healthy"

step "SIGTERM: a graceful stop, exit 0"
stop_started=$(date +%s%N)
"${PODMAN[@]}" stop -t 60 "$POD-kdhost" >/dev/null 2>&1
code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$POD-kdhost")
echo "exited $code after $(( ($(date +%s%N) - stop_started) / 1000000 )) ms"
"${PODMAN[@]}" logs "$POD-kdhost" 2>&1 | grep -iE "stop|drain|shutting" | tail -5
[ "$code" = 0 ] || { "${PODMAN[@]}" logs "$POD-kdhost" | tail -20; fail "kdhost exited $code on SIGTERM"; }

step "image OK ($IMAGE) in $(( $(date +%s) - started )) s"
