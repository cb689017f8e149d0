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

# `make soak`: the fault soak (tools/lab/soak.py, issue 12 item 6). Starts
# the lab services it needs (each stopped by its pid at the end, also when
# the soak fails) unless a lab already runs, runs the soak inside the lab's
# namespace and exits with its exit code. Its last line:
#   soak: cycles=N faults=F failed=X leaked=L healed=H operator=O
# SOAK_CYCLES (default 200), SOAK_SEED, SOAK_NODES, SOAK_FAULTS, SOAK_TIME,
# SOAK_SETTLE: see tools/lab/soak.py.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
VENV=${BMI_VENV:-$here/.venv}
export BMI_STATE=${BMI_STATE:-$here/.state}
export BMI_TEST_ENV=$BMI_STATE/services.json
lab() { "$VENV/bin/python" -m tools.lab "$@"; }
# No VM: fake power. Everything else the plugin talks to, real.
# The two-conductor lab by default (its conductor kills are real
# take-overs); BMI_LAB_CONDUCTORS=1 soaks the all-in-one lab.
export BMI_LAB_CONDUCTORS=${BMI_LAB_CONDUCTORS:-2}
started=""
# `lab status`: 0 the selected lab runs (it is left running), 3 it does
# not, 4 the other lab runs (tools/lab/services.py conflicting()).
status=0
lab status >/dev/null || status=$?
if [ "$status" -eq 4 ]; then
    lab status >&2 || true
    echo "error: another lab runs; stop it (python -m tools.lab stop)" \
        "or select it with BMI_LAB_CONDUCTORS" >&2
    exit 1
elif [ "$status" -ne 0 ]; then
    lab start
    started=yes
fi
[ -z "$started" ] || trap 'lab stop' EXIT
rc=0
lab exec -- "$VENV/bin/python" -m tools.lab.soak "$@" || rc=$?
exit $rc
