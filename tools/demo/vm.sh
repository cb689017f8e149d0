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

# The demo's VM lab by hand: libvirtd (no systemd, private socket, no TCP),
# sushy-tools' Redfish emulator on 127.0.0.1:8000 and an HTTP server for
# iPXE files on 127.0.0.1:8089, each stopped by pid.
#   tools/demo/vm.sh start|stop|status [LAB_DIR]     (default .state/demo/lab)
# start prints the libvirt URI, the Redfish and HTTP addresses (also in
# LAB_DIR/env.json). Guests: `virsh -c <uri> list --all`; their serial
# consoles are LAB_DIR/console/<domain>.log. The code is
# tools/lab/vmlab.py, shared with tools/demo.sh and the e2e tests.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${BMI_VENV:-$here/.venv}
cmd=${1:?usage: vm.sh start|stop|status [LAB_DIR]}
dir=${2:-${BMI_STATE:-$here/.state}/demo/lab}
cd "$here"
exec "$VENV/bin/python" -W ignore -m tools.lab.vmlab "$cmd" "$dir"
