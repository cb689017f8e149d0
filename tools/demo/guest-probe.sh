#!/bin/busybox sh
# Copyright 2026 The bmi_driver Authors.
#
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
#
# The demo guest's probes: what this node can and cannot reach.
#   bmi-probe PLAN_FILE
# PLAN_FILE is the probe plan the lab put on the node's config drive (LUN 2);
# its format is in doc/probes.md. For each tenant
# nic it configures, it prints
#   BMI-NET node=<node> <iface> <mac> <address>
# then runs every probe at once, each until it succeeds or times out, and
# prints one line per probe:
#   BMI-PROBE <node> -> <to> <kind> reachable|blocked
# and finally BMI-PROBES-DONE node=<node>. A malformed plan prints
# BMI-BOOT-FAIL plan: <why> and exits 1. Runs under busybox alone.
plan=${1:?usage: bmi-probe PLAN_FILE}
fail() { echo "BMI-BOOT-FAIL plan: $*"; exit 1; }

# First line: the format's name and version.
read -r magic version < "$plan" || fail "empty"
[ "$magic $version" = "BMI-PLAN 1" ] || fail "not a BMI-PLAN 1"

node=
timeout=60
tenants=
work=$(mktemp -d /tmp/bmi-probe.XXXXXX)

iface_of() {  # iface_of MAC: the interface with that address
    local mac=$1 dev
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/address" 2>/dev/null)" = "$mac" ] && {
            echo "${dev##*/}"; return 0; }
    done
    return 1
}

# The whole plan is read and checked before anything is configured.
seen_end=
while read -r word a b c d e f g h; do
    case $word in
    BMI-PLAN|'') ;;
    node) node=$a ;;
    timeout)
        case $a in ''|*[!0-9]*) fail "timeout $a is not a number" ;; esac
        timeout=$a ;;
    tenant)
        [ -n "$b" ] || fail "tenant needs a MAC and an address"
        tenants="$tenants $a,$b" ;;
    probe)
        [ -n "$b" ] || fail "probe needs a kind and a target"
        case $a in
        tenant-net|boot-files|own-disk)
            [ -n "$c" ] || fail "probe $a $b: no argument" ;;
        iscsi-login)
            [ -n "$h" ] || fail "probe iscsi-login $b: needs portal," \
                "port, target, initiator, user and secret" ;;
        *) fail "unknown probe kind $a" ;;
        esac ;;
    end) seen_end=1; break ;;
    *) fail "unknown line: $word" ;;
    esac
done < "$plan"
[ -n "$seen_end" ] || fail "no end line (truncated?)"
[ -n "$node" ] || fail "no node line"

for t in $tenants; do
    mac=${t%%,*} addr=${t#*,}
    dev=$(iface_of "$mac") || fail "no nic with MAC $mac"
    ip link set dev "$dev" up || fail "ip link set $dev up"
    ip addr add "$addr" dev "$dev" || fail "ip addr add $addr dev $dev"
    echo "BMI-NET node=$node $dev $mac $addr"
done

# Each probe succeeds or times out on its own; all run at once, so a plan
# of blocked probes takes one timeout, not one per probe.
probe_tenant_net() {  # IP
    ping -c 1 -W 1 "$1" >/dev/null 2>&1
}
probe_boot_files() {  # URL: reachable when the server answers with content
    rm -f "$out"
    # Not wget -T: busybox 1.35's wget (Debian 12) segfaults with it.
    timeout 5 wget -q -O "$out" "$1" 2>/dev/null && [ -s "$out" ]
}
probe_iscsi_login() {  # PORTAL PORT TARGET INITIATOR USER SECRET
    # A login with these credentials; logged out again at once.
    # iscsistart retries for long against a portal that does not answer.
    timeout 10 iscsistart -i "$4" -t "$3" -g 1 -a "$1" -p "$2" -u "$5" \
        -w "$6" >"$out" 2>&1 || return 1
    timeout 10 iscsistart -i "$4" -t "$3" -g 1 -a "$1" -p "$2" -u "$5" \
        -w "$6" -L >/dev/null 2>&1 || true
    return 0
}
probe_own_disk() {  # LABEL: write, sync and read back a file on its root
    local f=/var/lib/bmi/probe.$n
    echo "own-disk $node $n" > "$f" && sync &&
        [ "$(cat "$f")" = "own-disk $node $n" ] && rm -f "$f" && sync
}

run_probe() {  # N KIND TO ARGS...: probe number N of the plan
    local n=$1 kind=$2 to=$3 fn end result=blocked
    local out=$work/out.$1
    shift 3
    case $kind in
    tenant-net) fn=probe_tenant_net ;;
    boot-files) fn=probe_boot_files ;;
    iscsi-login) fn=probe_iscsi_login ;;
    own-disk) fn=probe_own_disk ;;
    esac
    end=$(($(date +%s) + timeout))
    while [ "$(date +%s)" -lt "$end" ]; do
        if "$fn" "$@"; then result=reachable; break; fi
        # A refused login or a missing file will not change: try again
        # only every few seconds (peers may still be booting).
        sleep 2
    done
    echo "BMI-PROBE $node -> $to $kind $result"
}

n=0
while read -r word kind to a b c d e f; do
    [ "$word" = end ] && break
    [ "$word" = probe ] || continue
    n=$((n + 1))
    # shellcheck disable=SC2086 # the arguments are words of the plan
    run_probe "$n" "$kind" "$to" $a $b $c $d $e $f &
done < "$plan"
wait
rm -rf "$work"
echo "BMI-PROBES-DONE node=$node"
