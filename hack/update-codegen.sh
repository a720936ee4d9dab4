#!/usr/bin/env bash
# Writes the generated clientset (kubellm/client/generated: typed clients, listers, informer accessors)
# from the API types in kubellm/apis. Run it after changing the types; hack/verify-codegen.sh checks it was.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m kubellm.client.gen "$@"
