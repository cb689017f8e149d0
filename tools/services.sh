#!/usr/bin/env bash
# Start or stop the services bmi_driver's functional tests and demo use,
# all on 127.0.0.1, each stopped by its recorded pid.
#   tools/services.sh start [ceph] [tgtd] [ironic] [hil]
#                                  (default: all four; ironic needs ceph and tgtd)
#   tools/services.sh stop [ceph] [tgtd] [ironic] [hil]   (default: all)
# State lives in $BMI_STATE (default .state/ in the checkout); what the
# tests need to know is written to $BMI_STATE/services.json.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STATE=${BMI_STATE:-$here/.state}
mkdir -p "$STATE/log"
STATE=$(cd "$STATE" && pwd)
CEPH_DIR=$STATE/ceph
TGTD_PORTAL=${BMI_TGTD_PORTAL:-127.0.0.1:3260}
log() { printf '[services] %s\n' "$*"; }

tgtd_running() {
    local pid; pid=$(cat "$STATE/tgtd.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null
}

start_tgtd() {
    if tgtd_running; then return 0; fi
    if tgtadm --lld iscsi --mode system --op show >/dev/null 2>&1; then
        log "a tgtd that is not ours already runs: stop it first"; exit 1
    fi
    # -t: fewer worker threads per LUN (each RBD LUN has its own rados client)
    tgtd -f -t "${BMI_TGTD_THREADS:-4}" --iscsi "portal=$TGTD_PORTAL" >>"$STATE/log/tgtd.log" 2>&1 &
    echo $! > "$STATE/tgtd.pid"
    for _ in $(seq 50); do
        tgtadm --lld iscsi --mode system --op show >/dev/null 2>&1 && { log "tgtd on $TGTD_PORTAL"; return 0; }
        sleep 0.1
    done
    log "tgtd did not start: see $STATE/log/tgtd.log"; exit 1
}

stop_tgtd() {
    local pid; pid=$(cat "$STATE/tgtd.pid" 2>/dev/null) || return 0
    if kill -0 "$pid" 2>/dev/null; then
        # SIGTERM is not reliable for tgtd, and it refuses to exit while it
        # has targets: delete them (closing their RBD images, so no watch
        # lingers), then ask it to exit.
        local tid
        for tid in $(tgtadm --lld iscsi --mode target --op show 2>/dev/null |
                     sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
            tgtadm --lld iscsi --mode target --op delete --force --tid "$tid" >/dev/null 2>&1 || true
        done
        tgtadm --lld iscsi --mode system --op delete >/dev/null 2>&1 || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/tgtd.pid"
}

write_env() {
    cat > "$STATE/services.json" <<JSON
{
  "state_dir": "$STATE",
  "ceph_conf": "$CEPH_DIR/ceph.conf",
  "ceph_admin_keyring": "$CEPH_DIR/ceph.client.admin.keyring",
  "ceph_user": "bmi",
  "ceph_keyring": "$CEPH_DIR/ceph.client.bmi.keyring",
  "ceph_tgt_user": "tgt",
  "image_pool": "bmi-images",
  "glance_pool": "images",
  "tgtd_portal": "$TGTD_PORTAL",
  "tgtd_running": $(tgtd_running && echo true || echo false),
  "ironic_state": "$STATE/ironic",
  "hil_state": "$STATE/hil"
}
JSON
}

case ${1:-} in
start)
    shift
    what=("$@"); [ ${#what[@]} -gt 0 ] || what=(ceph tgtd ironic hil)
    for s in "${what[@]}"; do
        case $s in
        ceph) "$here/tools/ceph-cluster.sh" start "$CEPH_DIR"; write_env ;;
        tgtd) start_tgtd; write_env ;;
        # Ironic's bmi.conf is made from services.json: write it first.
        ironic) "$here/tools/ironic-aio.sh" start "$STATE/ironic" ${BMI_IRONIC_EXTRA_CONF:-} ;;
        hil) "$here/tools/hil-server.sh" start "$STATE/hil" ${BMI_HIL_SEED:-} ;;
        *) echo "unknown service $s" >&2; exit 2 ;;
        esac
    done
    write_env
    ;;
stop)
    shift
    what=" $* "; [ $# -gt 0 ] || what=" ceph tgtd ironic hil "
    # Users first, what they use last.
    for s in hil ironic tgtd ceph; do
        case $what in *" $s "*) ;; *) continue ;; esac
        case $s in
        hil) "$here/tools/hil-server.sh" stop "$STATE/hil" || true ;;
        ironic) "$here/tools/ironic-aio.sh" stop "$STATE/ironic" || true ;;
        tgtd) stop_tgtd ;;
        ceph) "$here/tools/ceph-cluster.sh" stop "$CEPH_DIR" ;;
        esac
    done
    ;;
*) echo "usage: services.sh start|stop [ceph] [tgtd] [ironic] [hil]" >&2; exit 2 ;;
esac
