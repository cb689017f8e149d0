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

# `make demo`: virtual machines on a real switch boot, through Ironic, from
# copy-on-write clones of a golden image in Ceph, exported by tgt and
# sanbooted by iPXE; the real HIL puts each project's nodes on its own VLAN.
#
#   tools/demo.sh
#
# Installs what is missing (tools/install-deps.sh demo, outside any
# namespace), builds the golden images (cached in .state/demo), starts the
# lab (python -m tools.lab start: the network namespace bmi-lab and, inside
# it, Ceph, Open vSwitch, the real HIL, the gateway's dnsmasq and nginx,
# tgtd, Ironic, libvirtd, sushy-tools), then runs the scenarios of
# tools/lab/e2e.py inside the namespace: two projects' VMs probe each other
# on their tenant networks, then deploy, snapshot, deploy from the snapshot;
# last, a Debian 12 guest (tools/demo/build-debian.sh) boots from its clone,
# cloud-init applies the config drive Ironic built, and an SSH login runs a
# command on it (tools/lab/guest.py).
# If it started the lab, it stops every service by pid and deletes the
# namespace at the end, also on failure or Ctrl-C; a lab that was already
# running is left alone.
#
# Environment: BMI_STATE (default .state).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
VENV=${BMI_VENV:-$here/.venv}
export BMI_STATE=${BMI_STATE:-$here/.state}
# The scenarios need the all-in-one lab (its VMs, Neutron, the one tgtd).
export BMI_LAB_CONDUCTORS=1
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

lab() { "$VENV/bin/python" -W ignore -m tools.lab "$@"; }
started=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$started" ]; then
        step "stopping the lab and deleting its namespace"
        lab stop >/dev/null 2>&1 || true
    fi
    exit $rc
}
trap cleanup EXIT
trap 'failed_step="${failed_step:-setup} (interrupted)"; exit 130' INT TERM

run_step "install dependencies" tools/install-deps.sh demo
run_step "build the golden image (cached after the first run)" \
    tools/demo/build-image.sh "$DEMO"
run_step "build the Debian guest's golden image (cached after the first run)" \
    tools/demo/build-debian.sh "$DEMO"

# `lab status`: 0 the all-in-one runs, 3 it does not, 4 the
# multi-conductor lab runs (tools/lab/services.py conflicting()).
lab_status=0
lab status >/dev/null 2>&1 || lab_status=$?
if [ "$lab_status" -eq 0 ]; then
    step "the lab runs already: left alone"
elif [ "$lab_status" -eq 4 ]; then
    failed_step="start the lab"
    fail "the multi-conductor lab runs; stop it first (python -m tools.lab stop)"
else
    started=yes
    # In a session of its own: Ctrl-C must not kill a service that the
    # clean-up still needs (undeploy talks to Ironic and HIL).
    run_step "start the lab (namespace bmi-lab and its services)" \
        setsid -w "$VENV/bin/python" -W ignore -m tools.lab start
fi

failed_step="the VM scenarios"
lab exec -- env BMI_DEMO_T0="$T0" "$VENV/bin/python" -W ignore \
    -m tools.lab.e2e \
    --services "$BMI_STATE/services.json" --lab-dir "$DEMO/lab" \
    --image "$DEMO/bmi-demo.raw" --guest-image "$DEMO/bmi-debian.raw" ||
    exit 1
failed_step=
step "demo done"
