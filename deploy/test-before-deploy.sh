#!/usr/bin/env bash
# What must pass before a deploy: the operator's config, every rule, every plugin file, the
# commands Discord would get (a dry run: nothing is sent), the deployment files, then the
# whole test suite. Prints each step; stops at the first failure.
#
#   deploy/test-before-deploy.sh          (KD_SKIP_TESTS=1 skips the test suite)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
fail() { printf '\ntest-before-deploy: FAILED: %s\n' "$*" >&2; exit 1; }

step "building kdhost"
rustup target add wasm32-wasip2 >/dev/null
cargo build -p kdhost
kd=target/debug/kdhost

step "kdhost config validate config"
$kd config validate config || fail "config/ is not valid"

step "kdhost script check (every rule under scripts/ and examples/rules/)"
n=0
while IFS= read -r -d '' rule; do
    $kd script check "$rule" >/dev/null || fail "$rule"
    n=$((n + 1))
done < <(find scripts examples/rules -name '*.rhai' -print0)
echo "$n rules compile"

step "kdhost plugin check (every component in plugins/, the first-party plugins and the examples; not the test fixtures)"
n=0
while IFS= read -r -d '' wasm; do
    $kd plugin check "$wasm" >/dev/null || fail "$wasm"
    n=$((n + 1))
done < <(find plugins target/guests/wasm32-wasip2/release -maxdepth 1 -name '*.wasm' ! -name 'kd_fixture_*' -print0 2>/dev/null)
echo "$n components load"

step "kdhost commands sync --dry-run"
$kd commands sync --dry-run || fail "the command set would be refused"

step "deployment files: kustomize renders both overlays, promtool accepts the alerts"
for overlay in dev prod; do
    kubectl kustomize --load-restrictor LoadRestrictionsNone "deploy/k8s/overlays/$overlay" >/dev/null \
        || fail "deploy/k8s/overlays/$overlay does not render"
done
promtool check rules deploy/observability/alerts.yml >/dev/null || fail "alerts.yml"

if [ -z "${KD_SKIP_TESTS:-}" ]; then
    step "cargo test (the README's test command's last part)"
    cargo test || fail "tests"
fi
step "ready to deploy"
