#!/usr/bin/env bash
# Fails (exit 1, naming the stale files) when kubellm/client/generated differs from what
# hack/update-codegen.sh would write from the current API types.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m kubellm.client.gen --verify "$@"
