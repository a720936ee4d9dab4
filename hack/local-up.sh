#!/usr/bin/env bash
# Starts KubeLLM locally: an embedded etcd under .state/ and the API server. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh
exec .venv/bin/python cmd/kubellm-apiserver --state-dir "${KUBELLM_STATE_DIR:-.state}" "$@"
