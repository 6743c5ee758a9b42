#!/usr/bin/env bash
# Production on Kubernetes: renders the prod overlay with the image tag to deploy, applies
# it, waits for both rollouts, and smoke-tests /readyz through the Ingress. Stops at the
# first failure (a rollout that does not finish is left for `kubectl rollout undo`).
#
#   KD_IMAGE_TAG=0.1.3 KD_PUBLIC_URL=https://kdhost.example.com deploy/prod.sh
set -euo pipefail
cd "$(dirname "$0")/.."

NS=${KD_NAMESPACE:-kaltura-discord}
TAG=${KD_IMAGE_TAG:?set KD_IMAGE_TAG to the image tag to deploy (never latest)}
URL=${KD_PUBLIC_URL:?set KD_PUBLIC_URL to where the Ingress answers (https://…)}
step() { printf '\n== %s\n' "$*"; }
fail() { printf '\nprod.sh: %s\n' "$*" >&2; exit 1; }

[ "$TAG" != latest ] || fail "KD_IMAGE_TAG=latest: deploy a tag that names one build"
for tool in kubectl curl; do command -v "$tool" >/dev/null || fail "$tool is missing"; done

step "cluster: $(kubectl config current-context), namespace $NS"
kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS"
kubectl -n "$NS" get secret kdhost-env >/dev/null 2>&1 \
    || fail "no Secret kdhost-env in $NS: kubectl -n $NS create secret generic kdhost-env --from-env-file=.env (docs/deploy.md)"

step "rendering deploy/k8s/overlays/prod with ghcr.io/kaltura-discord/kdhost:$TAG"
rendered=$(mktemp)
kubectl kustomize --load-restrictor LoadRestrictionsNone deploy/k8s/overlays/prod \
    | sed "s#ghcr.io/kaltura-discord/kdhost:[^\"[:space:]]*#ghcr.io/kaltura-discord/kdhost:$TAG#" >"$rendered"
grep -c '^kind:' "$rendered" | xargs printf '%s objects\n'

step "kubectl apply (server-side dry run first)"
kubectl apply --server-side --dry-run=server -f "$rendered" >/dev/null
kubectl apply --server-side -f "$rendered"

for d in kdhost kdhost-gateway; do
    step "waiting for deployment/$d"
    kubectl -n "$NS" rollout status "deployment/$d" --timeout=10m \
        || fail "deployment/$d did not roll out: kubectl -n $NS rollout undo deployment/$d"
done

step "smoke test: $URL/readyz"
for _ in $(seq 1 30); do
    if body=$(curl -fsS "$URL/readyz"); then
        echo "$body"
        step "deployed ghcr.io/kaltura-discord/kdhost:$TAG"
        exit 0
    fi
    sleep 2
done
fail "$URL/readyz did not answer 200 within 60 s"
