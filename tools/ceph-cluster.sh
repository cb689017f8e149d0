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

# A throwaway one-node Ceph cluster on 127.0.0.1 for tests and the demo:
# one mon, one mgr, one bluestore OSD on a sparse file, pools of size 1.
#   tools/ceph-cluster.sh start DIR   boot (or re-use) the cluster in DIR
#   tools/ceph-cluster.sh stop DIR    stop its daemons, by pid
#   tools/ceph-cluster.sh wipe DIR    stop and delete DIR
# After start, DIR/ceph.conf and DIR/ceph.client.admin.keyring are usable
# with `ceph -c DIR/ceph.conf`. Pools: bmi-images (the library), images
# (stands for Glance's). A cephx user client.tgt may use both, for tgtd.
set -euo pipefail
cmd=${1:?usage: ceph-cluster.sh start|stop|wipe DIR}
dir=${2:?usage: ceph-cluster.sh start|stop|wipe DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
MON_PORT=${BMI_CEPH_MON_PORT:-6789}
MON_PORT_V2=${BMI_CEPH_MON_PORT_V2:-3300}
POOLS=(bmi-images images)

log() { printf '[ceph] %s\n' "$*"; }
ceph_() { timeout 30 ceph -c "$conf" "$@"; }

running() {  # running NAME: is the daemon whose pid file DIR/NAME.pid alive?
    local pid
    pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null
}

stop() {
    for d in mgr.x osd.0 mon.a; do
        local pid
        pid=$(cat "$dir/$d.pid" 2>/dev/null) || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/$d.pid"
    done
}

write_conf() {
    cat > "$conf" <<CONF
[global]
fsid = $(cat "$dir/fsid")
mon host = [v2:127.0.0.1:$MON_PORT_V2,v1:127.0.0.1:$MON_PORT]
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/\$cluster.\$name.keyring
log file = $dir/log/\$name.log
run dir = $dir/run
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
auth allow insecure global id reclaim = false
paxos propose interval = 0.02
rbd default features = layering,exclusive-lock,object-map,fast-diff,deep-flatten
ms bind ipv6 = false

[mon]
# Admin sockets for the daemons (here, [mgr] and [osd]) and none for the
# clients (Ceph 16.2's default): in [global], one path per name was shared
# by every process of client.bmi and every LUN's client in a tgtd; all but
# one failed to bind it, an error line in the log at each connect.
admin socket = $dir/run/\$name.asok
mon data = $dir/mon.\$id
mon cluster log file = $dir/log/cluster.log

[mgr]
admin socket = $dir/run/\$name.asok
mgr data = $dir/mgr.\$id
mgr initial modules =

# tgtd's RBD backing store (one rados client per LUN) reads this file:
# without op timeouts a full pool blocks librbd, and with it tgtd's main
# loop, for ever (issue 12). Shorter than the plugin's [iscsi]
# tgtadm_timeout (30 s), so a LUN on a blocked pool fails first.
[client.tgt]
rados osd op timeout = ${BMI_TGT_CEPH_OP_TIMEOUT:-10}
rados mon op timeout = ${BMI_TGT_CEPH_OP_TIMEOUT:-10}
client mount timeout = ${BMI_TGT_CEPH_OP_TIMEOUT:-10}

[osd]
admin socket = $dir/run/\$name.asok
osd data = $dir/osd.\$id
osd objectstore = bluestore
bluestore block path = $dir/osd.\$id/block.file
bluestore block create = true
bluestore block size = ${BMI_CEPH_OSD_SIZE:-42949672960}
osd memory target = 1073741824
osd max object name len = 256
osd max object namespace len = 64
CONF
}

create() {
    log "creating a new cluster in $dir"
    # Every key file below is made 0600 (the keyrings hold cephx secrets).
    umask 077
    rm -rf "$dir/mon.a" "$dir/osd.0" "$dir/mgr.x" "$dir/log" "$dir/run"
    mkdir -p "$dir/log" "$dir/run" "$dir/mon.a" "$dir/osd.0" "$dir/mgr.x"
    uuidgen > "$dir/fsid"
    write_conf
    local admin=$dir/ceph.client.admin.keyring
    ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. \
        --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$admin" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' \
        --cap mds 'allow *' >/dev/null
    ceph-authtool "$dir/mon.keyring" --import-keyring "$admin" >/dev/null
    monmaptool --create --clobber --fsid "$(cat "$dir/fsid")" \
        --addv a "[v2:127.0.0.1:$MON_PORT_V2,v1:127.0.0.1:$MON_PORT]" \
        "$dir/monmap" >/dev/null
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" \
        --keyring "$dir/mon.keyring"
    start_mon
    local osd_uuid
    osd_uuid=$(uuidgen)
    ceph_ osd new "$osd_uuid" >/dev/null
    ceph-authtool --create-keyring "$dir/osd.0/keyring" --gen-key -n osd.0 \
        >/dev/null
    ceph_ auth add osd.0 osd 'allow *' mon 'allow profile osd' \
        mgr 'allow profile osd' -i "$dir/osd.0/keyring" >/dev/null
    cp "$dir/osd.0/keyring" "$dir/ceph.osd.0.keyring"
    ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" \
        >"$dir/log/osd-mkfs.log" 2>&1
    ceph_ auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' \
        mds 'allow *' -o "$dir/ceph.mgr.x.keyring"
    start_daemons
    # clone v2: children listed in milliseconds, no protection needed
    ceph_ osd set-require-min-compat-client mimic --yes-i-really-mean-it \
        >/dev/null 2>&1
    for p in "${POOLS[@]}"; do
        ceph_ osd pool create "$p" 32 32 >/dev/null 2>&1
        ceph_ osd pool set "$p" size 1 --yes-i-really-mean-it >/dev/null 2>&1
        rbd -c "$conf" pool init "$p"
    done
    # The plugin's own user and tgtd's: "profile rbd" on the pools, nothing
    # more.
    local caps=""
    for p in "${POOLS[@]}"; do
        caps="${caps:+$caps, }profile rbd pool=$p"
    done
    for u in bmi tgt; do
        ceph_ auth get-or-create "client.$u" mon 'profile rbd' osd "$caps" \
            mgr "profile rbd" -o "$dir/ceph.client.$u.keyring"
    done
    touch "$dir/created"
}

port_taken() {  # port_taken PORT: does anything listen on 127.0.0.1:PORT?
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_mon() {
    running mon.a && return 0
    if port_taken "$MON_PORT" || port_taken "$MON_PORT_V2"; then
        log "127.0.0.1:$MON_PORT or :$MON_PORT_V2 is taken by another" \
            "process (another cluster?)"
        exit 1
    fi
    ceph-mon -c "$conf" -i a -f >>"$dir/log/mon.a.stdout" 2>&1 &
    echo $! > "$dir/mon.a.pid"
    for _ in $(seq 100); do
        ceph_ mon stat >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    log "monitor did not start: see $dir/log/mon.a.log"; exit 1
}

start_daemons() {
    start_mon
    if ! running osd.0; then
        ceph-osd -c "$conf" -i 0 -f >>"$dir/log/osd.0.stdout" 2>&1 &
        echo $! > "$dir/osd.0.pid"
    fi
    if ! running mgr.x; then
        ceph-mgr -c "$conf" -i x -f >>"$dir/log/mgr.x.stdout" 2>&1 &
        echo $! > "$dir/mgr.x.pid"
    fi
}

pgs_clean() {  # all PGs active+clean (a cluster being created has none yet)
    ! [ -e "$dir/created" ] || ceph_ pg stat 2>/dev/null |
        grep -Eq '^[0-9]+ pgs: [0-9]+ active\+clean;'
}

wait_healthy() {
    local i
    for i in $(seq 300); do
        if ceph_ osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' &&
                ceph_ mgr stat -f json 2>/dev/null |
                grep -q '"available":true' && pgs_clean; then
            return 0
        fi
        sleep 0.2
    done
    log "cluster not healthy after 60 s:"; ceph_ -s || true; exit 1
}

case $cmd in
start)
    t0=$(date +%s.%N)
    if [ -e "$dir/created" ] && [ -e "$dir/fsid" ]; then
        write_conf
        start_daemons
    else
        stop
        create
    fi
    # cephx keys are for root alone (also those of a cluster made by an
    # older version of this script, which left them 0644).
    chmod 0700 "$dir"
    chmod 0600 "$dir"/*.keyring "$dir"/*/keyring 2>/dev/null || true
    wait_healthy
    awk -v a="$t0" -v b="$(date +%s.%N)" -v c="$conf" \
        'BEGIN { printf "[ceph] healthy in %.1f s: %s\n", b - a, c }'
    ;;
stop) stop; log "stopped" ;;
wipe) stop; rm -rf "$dir"; log "wiped $dir" ;;
*) echo "usage: ceph-cluster.sh start|stop|wipe DIR" >&2; exit 2 ;;
esac
