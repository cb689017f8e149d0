#!/usr/bin/env bash
# Start or stop the HIL test server (tests/hil_server) on 127.0.0.1.
#   tools/hil-server.sh start STATE_DIR [SEED_JSON]
#   tools/hil-server.sh stop STATE_DIR
# Port: $BMI_HIL_PORT (default 7000). The server keeps its state in
# STATE_DIR/hil-state.json (a SEED_JSON replaces it at start; see
# tests/hil_server/server.py for the format), logs to STATE_DIR/hil.log,
# and its pid is in STATE_DIR/hil.pid. start writes STATE_DIR/env.json:
#   {"url": "http://127.0.0.1:7000", "pid": N, "state_file": "..."}
# A second start while the server runs is a no-op; stop sends TERM, then
# KILL after 10 s.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
VENV=${BMI_VENV:-$here/.venv}
PORT=${BMI_HIL_PORT:-7000}
START_TIMEOUT=${BMI_HIL_START_TIMEOUT:-30}
log() { printf '[hil-server] %s\n' "$*"; }
usage() { echo "usage: hil-server.sh start STATE_DIR [SEED_JSON] | stop STATE_DIR" >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1 dir=$2 seed=${3:-}

running() {
    local pid; pid=$(cat "$dir/hil.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

start() {
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if running; then
        log "already running (pid $(cat "$dir/hil.pid"))"; return 0
    fi
    local state=$dir/hil-state.json
    if [ -n "$seed" ]; then
        "$VENV/bin/python" -c 'import json, sys; json.load(open(sys.argv[1]))' "$seed" \
            || { log "$seed is not valid JSON"; exit 1; }
        cp "$seed" "$state"
    fi
    if listening; then
        log "port $PORT is taken by another process: set BMI_HIL_PORT"; exit 1
    fi
    (cd "$here" && exec "$VENV/bin/python" -m tests.hil_server \
        --port "$PORT" --state "$state") >>"$dir/hil.log" 2>&1 &
    local pid=$!
    echo "$pid" > "$dir/hil.pid"
    local deadline=$((SECONDS + START_TIMEOUT))
    until listening; do
        if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            log "the HIL test server did not start: see $dir/hil.log"
            kill "$pid" 2>/dev/null || true
            rm -f "$dir/hil.pid"
            exit 1
        fi
        sleep 0.2
    done
    cat > "$dir/env.json" <<JSON
{"url": "http://127.0.0.1:$PORT", "pid": $pid, "state_file": "$state"}
JSON
    log "HIL test server on http://127.0.0.1:$PORT (pid $pid)"
}

stop() {
    local pid; pid=$(cat "$dir/hil.pid" 2>/dev/null) || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        log "stopped (pid $pid)"
    fi
    rm -f "$dir/hil.pid" "$dir/env.json"
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
