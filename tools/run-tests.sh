#!/usr/bin/env bash
# `make test`: install what is missing, start the services, run the unit
# tests then the functional tests, and stop every service it started, also
# when tests fail.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
VENV=${BMI_VENV:-$here/.venv}
export BMI_STATE=${BMI_STATE:-$here/.state}
export BMI_TEST_ENV=$BMI_STATE/services.json
step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }

step "install dependencies"
tools/install-deps.sh base

rc=0
cleanup() { step "stop services"; tools/services.sh stop || true; }
trap cleanup EXIT

step "unit tests"
BMI_TEST_PATH=./tests/unit "$VENV/bin/stestr" run --color || rc=1

step "start services"
tools/services.sh start

step "functional tests against the live cluster"
BMI_TEST_PATH=./tests/functional "$VENV/bin/stestr" run --concurrency 1 --color || rc=1

step "summary"
"$VENV/bin/stestr" last --subunit | "$VENV/bin/subunit2py" --no-passthrough 2>/dev/null | tail -n 0 || true
exit $rc
