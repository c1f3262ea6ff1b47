#!/usr/bin/env bash
# `make test-cluster`: the curriculum on a throw-away kind cluster (needs Docker and kind).
#
#   1. create the kind cluster from clusters/kind-config.yaml (pinned node image)
#   2. build the kit's image (Dockerfile) and load it into the kind nodes; install the operators (clusters/install-operators.sh, pinned versions)
#   3. apply clusters/overlays/local-kind, wait for the RayCluster, the hello Job, the model Job and then the
#      InferenceService (its pod waits for that model)
#   4. run every learner notebook with papermill, PROFILE=kind SMOKE=True
#   5. always: print diagnostics (and bundle them under build/cluster-diagnostics), delete the cluster
#
# Not part of `make test`. Set KIT_KEEP_CLUSTER=1 to keep the cluster for debugging.
set -euo pipefail
cd "${BASH_SOURCE[0]%/*}/.."

PY="${PY:-.venv/bin/python}"
missing=()
for tool in docker kind kubectl helm git; do command -v "$tool" >/dev/null || missing+=("$tool"); done  # helm, git: install-operators.sh
if (( ${#missing[@]} )); then
  echo "make test-cluster needs: ${missing[*]}. Run \`$PY -m kit doctor\` for where to get them." >&2
  exit 2
fi
CLUSTER="$("$PY" -c 'from kit import versions; print(versions.KIND_CLUSTER)')"
NAMESPACE="$("$PY" -c 'from kit import versions; print(versions.NAMESPACE)')"
FIELD_MANAGER="$("$PY" -c 'from kit import versions; print(versions.FIELD_MANAGER)')"
OUT="build/kind-runs"
DIAG="build/cluster-diagnostics"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "a kind cluster named $CLUSTER already exists: delete it (kind delete cluster --name $CLUSTER) first" >&2
  exit 2
fi

finish() {
  local status=$?
  echo "== diagnostics (exit status so far: $status)"
  kubectl get nodes -o wide || true
  kubectl get pods -A -o wide || true
  kubectl get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -n 40 || true
  "$PY" -m kit cluster diagnostics --namespace "$NAMESPACE" --out "$DIAG" || true
  if [[ "${KIT_KEEP_CLUSTER:-0}" == 1 ]]; then
    echo "== keeping kind cluster $CLUSTER (KIT_KEEP_CLUSTER=1)"
  else
    echo "== deleting kind cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit "$status"
}
trap finish EXIT

echo "== creating kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --config clusters/kind-config.yaml --wait 180s
kubectl config use-context "kind-$CLUSTER"
"$PY" -m kit cluster profile

echo "== building the kit's image and loading it into kind"
KIT_IMAGE="$("$PY" -c 'from kit import versions; print(versions.IMAGES["kit"])')"
eval "docker build $("$PY" kit/versions.py image-args cpu) ."
kind load docker-image "$KIT_IMAGE" --name "$CLUSTER"

echo "== installing operators"
clusters/install-operators.sh

echo "== applying clusters/overlays/local-kind"
kubectl apply --server-side --field-manager="$FIELD_MANAGER" -k clusters/overlays/local-kind
"$PY" -m kit cluster wait RayCluster kit-raycluster -n "$NAMESPACE" --timeout 600 --diagnostics "$DIAG"
"$PY" -m kit cluster wait Job hello -n "$NAMESPACE" --timeout 300 --diagnostics "$DIAG"
# The servers' pods wait in an init container until the Job below has written the model to the models volume.
"$PY" -m kit cluster wait Job publish-digits -n "$NAMESPACE" --timeout 900 --diagnostics "$DIAG"
"$PY" -m kit cluster wait InferenceService digits -n "$NAMESPACE" --timeout 600 --diagnostics "$DIAG"
kubectl delete -k clusters/overlays/local-kind --ignore-not-found --wait=true

echo "== running the curriculum with PROFILE=kind"
mkdir -p "$OUT"
failed=()
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
  name="$(basename "$notebook")"
  echo "-- $name"
  if ! "$PY" -m papermill "$notebook" "$OUT/$name" -k python3 --cwd notebooks -p PROFILE kind -p SMOKE True \
       --no-progress-bar; then
    failed+=("$name")
  fi
done
if (( ${#failed[@]} )); then
  echo "failed under PROFILE=kind: ${failed[*]} (executed copies in $OUT)" >&2
  exit 1
fi
echo "== all notebooks passed with PROFILE=kind"
