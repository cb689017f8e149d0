#!/usr/bin/env bash
# Ironic all-in-one (API + conductor in one `ironic` process) with the bmi
# plugin, for the functional tests, the benchmark and the demo.
#   tools/ironic-aio.sh start STATE_DIR [EXTRA_CONF_FILE...]
#   tools/ironic-aio.sh stop STATE_DIR
# start writes STATE_DIR/ironic.conf (sqlite in STATE_DIR, noauth,
# rpc_transport none, API on 127.0.0.1:$BMI_IRONIC_PORT) and STATE_DIR/bmi.conf
# (from $BMI_STATE/services.json: Ceph, tgtd, HIL), runs ironic-dbsync, starts
# `ironic` in the background (pid in STATE_DIR/ironic.pid, log in
# STATE_DIR/ironic.log), waits until the API answers and the conductor offers
# the bmi hardware type, and writes STATE_DIR/env.json. EXTRA_CONF_FILEs are
# passed as further --config-file, after ours: their settings win.
# A second start while Ironic runs is a no-op; stop sends TERM, then KILL.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
VENV=${BMI_VENV:-$here/.venv}
BMI_STATE=${BMI_STATE:-$here/.state}
PORT=${BMI_IRONIC_PORT:-6385}
HIL_PORT=${BMI_HIL_PORT:-7000}
START_TIMEOUT=${BMI_IRONIC_START_TIMEOUT:-180}
STOP_TIMEOUT=${BMI_IRONIC_STOP_TIMEOUT:-30}
URL=http://127.0.0.1:$PORT
# Ironic gives its threads 128 KiB stacks; librados' start-up (it is loaded
# in a conductor thread with the bmi interfaces) needs more: with 128 KiB the
# conductor dies of SIGSEGV in libceph-common's get_global_options().
export IRONIC_THREAD_STACK_SIZE=${IRONIC_THREAD_STACK_SIZE:-2097152}
log() { printf '[ironic-aio] %s\n' "$*"; }
die() { printf '[ironic-aio] %s\n' "$*" >&2; exit 1; }

usage() { die "usage: ironic-aio.sh start|stop STATE_DIR [EXTRA_CONF_FILE...]"; }
[ $# -ge 2 ] || usage
action=$1 STATE=$2
shift 2

running_pid() {
    local pid
    pid=$(cat "$STATE/ironic.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# services.json -> shell variables (one place that knows its keys).
read_services() {
    local env=$BMI_STATE/services.json
    [ -r "$env" ] || die "$env is missing: start ceph and tgtd first (tools/services.sh start ceph tgtd)"
    eval "$("$VENV/bin/python" - "$env" <<'PY'
import json, shlex, sys
env = json.load(open(sys.argv[1]))
for key in ('ceph_conf', 'ceph_user', 'ceph_keyring', 'ceph_tgt_user',
            'image_pool', 'glance_pool', 'tgtd_portal'):
    if not env.get(key):
        sys.exit('services.json has no %s' % key)
    print('S_%s=%s' % (key, shlex.quote(str(env[key]))))
PY
)"
}

write_conf() {
    local portal_host=${S_tgtd_portal%:*} portal_port=${S_tgtd_portal##*:}
    mkdir -p "$STATE/httpboot" "$STATE/tftpboot" "$STATE/images" \
             "$STATE/master_images" "$STATE/locks" "$STATE/bmi" \
             "$BMI_STATE/locks"
    cat > "$STATE/ironic.conf" <<CONF
# Written by tools/ironic-aio.sh: Ironic all-in-one for bmi_driver's tests.
[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = bmi-aio
debug = ${BMI_IRONIC_DEBUG:-false}
enabled_hardware_types = bmi,fake-hardware
enabled_boot_interfaces = ipxe,fake
enabled_deploy_interfaces = bmi,fake
enabled_storage_interfaces = bmi,noop
enabled_vendor_interfaces = bmi,no-vendor,fake
enabled_network_interfaces = noop,hil
default_network_interface = noop
enabled_power_interfaces = fake,redfish
enabled_management_interfaces = fake,redfish
enabled_inspect_interfaces = no-inspect
enabled_raid_interfaces = no-raid
enabled_bios_interfaces = no-bios
enabled_console_interfaces = no-console
enabled_rescue_interfaces = no-rescue
enabled_firmware_interfaces = no-firmware

[api]
host_ip = 127.0.0.1
port = $PORT
api_workers = 1

[database]
connection = sqlite:///$STATE/ironic.sqlite

[dhcp]
dhcp_provider = none

[deploy]
http_root = $STATE/httpboot
http_url = http://127.0.0.1:8089
fast_track = false

[pxe]
tftp_root = $STATE/tftpboot
images_path = $STATE/images
instance_master_path = $STATE/master_images

[conductor]
# A BMI node has no local disk: cleaning has nothing to do and is fast.
automated_clean = true
force_power_state_during_sync = false
heartbeat_interval = 5

[nova]
send_power_notifications = false

[oslo_concurrency]
lock_path = $STATE/locks
CONF
    cat > "$STATE/bmi.conf" <<CONF
# Written by tools/ironic-aio.sh from $BMI_STATE/services.json.
[bmi]
state_path = $STATE/bmi

[ceph]
conf_file = $S_ceph_conf
user = $S_ceph_user
keyring = $S_ceph_keyring
image_pool = $S_image_pool
clone_pool = $S_image_pool
glance_pool = $S_glance_pool

[iscsi]
portal_address = $portal_host
portal_port = $portal_port
tgt_ceph_user = $S_ceph_tgt_user

[coordination]
backend_url = file://$BMI_STATE/locks

[hil]
url = http://127.0.0.1:$HIL_PORT
auth_type = none
CONF
}

# HTTP GET with the venv's Python (curl is not on every machine).
http_get() {
    "$VENV/bin/python" - "$1" <<'PY'
import sys, urllib.request
req = urllib.request.Request(
    sys.argv[1], headers={'X-OpenStack-Ironic-API-Version': 'latest'})
with urllib.request.urlopen(req, timeout=5) as resp:
    sys.stdout.write(resp.read().decode())
PY
}

offers_bmi() {
    http_get "$URL/v1/drivers?type=dynamic" 2>/dev/null \
        | grep -q '"name": *"bmi"'
}

wait_ready() {
    local pid=$1 log_from=$2 deadline=$((SECONDS + START_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$STATE/ironic.log" >&2 || true
            die "ironic exited during start-up: see $STATE/ironic.log"
        fi
        # The API outlives a conductor that could not start: look at the log.
        if tail -c "+$log_from" "$STATE/ironic.log" | grep -E -m 3 \
                'Failed to register hardware types|Child [0-9]+ (killed by signal|exited with status)' >&2; then
            stop
            die "the conductor did not start: see $STATE/ironic.log"
        fi
        # The conductor lists the hardware types it loaded once it has
        # registered; that is when nodes of type bmi can be enrolled.
        if offers_bmi; then
            return 0
        fi
        sleep 1
    done
    tail -n 30 "$STATE/ironic.log" >&2 || true
    stop
    die "Ironic did not offer the bmi hardware type within ${START_TIMEOUT}s: see $STATE/ironic.log"
}

start() {
    mkdir -p "$STATE"
    STATE=$(cd "$STATE" && pwd)
    local pid extra conf_args=() conf_files=()
    if pid=$(running_pid); then
        log "already running (pid $pid, $URL)"
        return 0
    fi
    read_services
    write_conf
    conf_files=("$STATE/ironic.conf" "$STATE/bmi.conf")
    for extra in "$@"; do
        [ -r "$extra" ] || die "extra configuration file $extra is not readable"
        conf_files+=("$(cd "$(dirname "$extra")" && pwd)/$(basename "$extra")")
    done
    for extra in "${conf_files[@]}"; do conf_args+=(--config-file "$extra"); done
    if http_get "$URL/" >/dev/null 2>&1; then
        die "something else already answers on $URL"
    fi

    if [ -e "$STATE/ironic.sqlite" ]; then
        "$VENV/bin/ironic-dbsync" "${conf_args[@]}" upgrade >>"$STATE/ironic.log" 2>&1
    else
        "$VENV/bin/ironic-dbsync" "${conf_args[@]}" create_schema >>"$STATE/ironic.log" 2>&1
    fi
    local log_from=$(($(stat -c %s "$STATE/ironic.log") + 1))
    # Its own session: stop signals the whole process group.
    setsid "$VENV/bin/ironic" "${conf_args[@]}" >>"$STATE/ironic.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$STATE/ironic.pid"
    wait_ready "$pid" "$log_from"
    "$VENV/bin/python" - "$STATE/env.json" "$URL" "$pid" "$STATE/httpboot" \
        "$STATE/ironic.log" "${conf_files[@]}" <<'PY'
import json, sys
path, url, pid, http_root, log = sys.argv[1:6]
with open(path, 'w') as f:
    json.dump({'url': url, 'pid': int(pid), 'conf': sys.argv[6:],
               'http_root': http_root, 'log': log}, f, indent=2)
PY
    log "Ironic on $URL (pid $pid, log $STATE/ironic.log)"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        rm -f "$STATE/ironic.pid"
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((STOP_TIMEOUT * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "ironic (pid $pid) ignored TERM: killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/ironic.pid"
    log "stopped"
}

case $action in
start) start "$@" ;;
stop) stop ;;
*) usage ;;
esac
