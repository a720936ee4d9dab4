#!/usr/bin/env bash
# Starts KubeLLM locally: the API server with an embedded etcd under .state/, two member GPU clusters
# (real kube-apiserver, kube-controller-manager and kube-scheduler with simulated GPU nodes) registered as
# Clusters, and the controller manager. Logs under .state/logs/. Ctrl-C stops everything.
# Flags after `--` go to kubellm-apiserver; `--no-members` skips the member clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh
exec .venv/bin/python -m kubellm.devcluster demo --state-dir "${KUBELLM_STATE_DIR:-.state}" "$@"
