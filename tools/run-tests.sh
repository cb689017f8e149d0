#!/usr/bin/env bash
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

# `make test`: install what is missing (outside any namespace), run the unit
# tests, start the lab (every service inside the network namespace bmi-lab,
# which `python -m tools.lab start` creates), run the functional tests inside
# that namespace, then the same with the two-conductor lab
# (BMI_LAB_CONDUCTORS=2, tests/multi), and stop every service by pid and
# delete the namespace, also when tests fail. Ends with one line: "tests: N passed, N failed,
# N skipped".
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
passed=0 failed=0 skipped=0
count() {  # add the last stestr run's figures to the totals
    local stats
    stats=$("$VENV/bin/stestr" last --subunit |
        "$VENV/bin/subunit-stats" 2>/dev/null || true)
    figure() { awk "/^$1 tests:/ {print \$3}" <<<"$stats" || echo 0; }
    passed=$((passed + $(figure Passed)))
    failed=$((failed + $(figure Failed)))
    skipped=$((skipped + $(figure Skipped)))
}
lab() { "$VENV/bin/python" -m tools.lab "$@"; }
cleanup() {
    step "stop services and delete the lab namespace"
    lab stop || true
}
trap cleanup EXIT

step "unit tests"
BMI_TEST_PATH=./tests/unit "$VENV/bin/stestr" run || rc=1
count

# The e2e tests' golden image, built here: inside the lab's namespace
# (where the tests run) apt cannot reach Debian's mirror.
step "build the demo images (outside the lab: they need Debian's mirror)"
tools/demo/build-image.sh "$BMI_STATE/demo"
tools/demo/build-debian.sh "$BMI_STATE/demo"

step "start services"
lab start

step "functional tests against the live services"
lab exec -- ceph -c "$BMI_STATE/ceph/ceph.conf" -s |
    sed -n '/services:/,/data:/p'
lab exec -- env BMI_TEST_PATH=./tests/functional \
    "$VENV/bin/stestr" run --concurrency 1 || rc=1
count

# Issue 12: Ironic as a cloud runs it (tools/lab/multi.py): MariaDB,
# JSON-RPC, one API and two conductors, each with its own tgtd gateway,
# etcd for the plugin's locks. Its own lab, so a fresh namespace.
step "stop the all-in-one lab"
lab stop || rc=1
step "start the two-conductor lab"
export BMI_LAB_CONDUCTORS=2
if lab start; then
    step "multi-conductor tests"
    lab exec -- env BMI_TEST_PATH=./tests/multi \
        "$VENV/bin/stestr" run --concurrency 1 || rc=1
    count
    # A short fault soak (tools/lab/soak.py) against the two conductors:
    # its last line is the soak's figures; it fails unless leaked=0
    # operator=0.
    step "short fault soak (SOAK_CYCLES=${SOAK_CYCLES:-20})"
    soak_rc=0
    # A fault every round (of SOAK_NODES=2 nodes), dealt from every kind
    # (SOAK_FAULTS unset: tools/lab/soak.py's FAULTS), conductor_kill
    # included: the lab's conductors keep JSON-RPC's port 8089, so the
    # reservations of a killed one are cleared at its restart
    # (tools/lab/multi.py, conductor_host()).
    lab exec -- env SOAK_CYCLES="${SOAK_CYCLES:-20}" SOAK_NODES=2 \
        SOAK_FAULT_RATE="${SOAK_FAULT_RATE:-1}" \
        SOAK_FAULTS="${SOAK_FAULTS:-}" \
        SOAK_SETTLE="${SOAK_SETTLE:-90}" SOAK_TIME="${SOAK_TIME:-600}" \
        "$VENV/bin/python" -m tools.lab.soak || soak_rc=$?
    if [ "$soak_rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); rc=1
    fi
else
    echo "the two-conductor lab did not start"; rc=1
fi

step "summary"
if [ "$passed" -eq 0 ]; then
    echo "no test ran"; rc=1
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $rc
