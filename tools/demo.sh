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

# `make demo`: two virtual machines boot, through Ironic, from copy-on-write
# clones of a golden image in Ceph, exported by tgt and sanbooted by iPXE.
#
#   tools/demo.sh
#
# Installs what is missing (tools/install-deps.sh demo), builds the golden
# image (cached in .state/demo), starts Ceph, tgtd, Ironic and the HIL test
# server (python -m tools.lab start) and the VM lab (libvirtd,
# sushy-emulator, an HTTP server for Ironic's iPXE files), then runs the
# scenario of tools/lab/e2e.py:
# import, enroll, deploy, boot, snapshot, deploy from the snapshot,
# undeploy, check that nothing is left. Every service is on 127.0.0.1.
# Whatever this script started is stopped at the end, also on failure or
# Ctrl-C; services that were already running are left alone (they must
# then have been started with the demo's settings, see below).
#
# Environment: BMI_STATE (default .state).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
VENV=${BMI_VENV:-$here/.venv}
export BMI_STATE=${BMI_STATE:-$here/.state}
mkdir -p "$BMI_STATE"
BMI_STATE=$(cd "$BMI_STATE" && pwd)
DEMO=$BMI_STATE/demo
T0=$(date +%s.%N)
since() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN {printf "%.1f", a - b}'; }
step() { printf '[%6ss] %s\n' "$(since "$T0")" "$*"; }
failed_step=

fail() { echo "DEMO FAILED at step \"$failed_step\"${1:+: $1}" >&2; exit 1; }
run_step() {  # run_step NAME CMD...: one line per step, its time, or fail
    failed_step=$1; shift
    local s
    s=$(date +%s.%N)
    step "$failed_step ..."
    "$@" || fail
    step "$failed_step: ok ($(since "$s")s)"
}

# --- what is running already (left alone) and what we start (stopped) ----
lab() { "$VENV/bin/python" -W ignore -m tools.lab "$@"; }
was_running() { [ -x "$VENV/bin/python" ] && lab status "$1" >/dev/null; }
started=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" -W ignore -m tools.lab.vmlab stop "$DEMO/lab" \
            >/dev/null 2>&1 || true
    if [ ${#started[@]} -gt 0 ]; then
        step "stopping what the demo started: ${started[*]}"
        lab stop "${started[@]}" >/dev/null 2>&1 || true
    fi
    exit $rc
}
trap cleanup EXIT
trap 'failed_step="${failed_step:-setup} (interrupted)"; exit 130' INT TERM

run_step "install dependencies" tools/install-deps.sh demo
run_step "build the golden image (cached after the first run)" \
    tools/demo/build-image.sh "$DEMO"

# Ironic settings and HIL nodes the demo needs (see the files).
IRONIC_DEMO_CONF=$here/tools/demo/ironic-demo.conf
HIL_SEED=$here/tools/demo/hil-seed.json

for s in ceph tgtd hil ironic; do
    if was_running $s; then
        step "$s: already running, left alone"
    else
        failed_step="start $s"
        started+=("$s")
        # In a session of its own: Ctrl-C must not kill a service that the
        # clean-up still needs (undeploy talks to Ironic and HIL).
        run_step "start $s" setsid -w "$VENV/bin/python" -W ignore \
            -m tools.lab start "$s" --ironic-conf "$IRONIC_DEMO_CONF" \
            --hil-seed "$HIL_SEED"
    fi
done
if ! grep -q "$IRONIC_DEMO_CONF" "$BMI_STATE/ironic/env.json"; then
    failed_step="check Ironic's settings"
    fail "Ironic runs without $IRONIC_DEMO_CONF: stop it" \
         "(make services-stop) and run the demo again"
fi

failed_step="the VM scenario"
BMI_DEMO_T0=$T0 "$VENV/bin/python" -W ignore \
    -m tools.lab.e2e \
    --services "$BMI_STATE/services.json" --lab-dir "$DEMO/lab" \
    --image "$DEMO/bmi-demo.raw" || exit 1
failed_step=
step "demo done"
