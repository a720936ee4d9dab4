#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy), layer contracts (import-linter), then pytest
# (unit, integration against a real etcd the tests start, e2e). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh

echo ">> ruff"
.venv/bin/ruff check kubellm test bench cmd hack
echo ">> mypy"
.venv/bin/mypy
echo ">> import-linter"
.venv/bin/lint-imports --no-cache
echo ">> verify-codegen" && hack/verify-codegen.sh
echo ">> pytest"
.venv/bin/pytest -p no:cacheprovider "$@"
