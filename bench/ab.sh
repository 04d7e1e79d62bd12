#!/bin/bash
# bench/ab.sh OLD_BIN NEW_BIN: two builds of starling side by side, for a change to the
# hot path. Each build gets a node of its own (its sample-config defaults, plain TCP
# allowed, login_rate 0, ACCOUNTS accounts); the runs alternate between the builds within
# each round (ROUNDS), each against a freshly started node, so that the machine's noise
# hits both; starling-bench samples the server's CPU over every process of the node.
#   chat-rate   chat, 100 clients, open loop at RATE msgs/s (CPU per message, latency)
#   chat-sat    chat, 100 clients, 10 in flight each (throughput)
#   login       log in and out again, 100 at once, ACCOUNTS accounts
# Prints one line per run, then the medians and NEW/OLD as ratios (lower is better for
# CPU, higher for throughput).
#   ROUNDS=3 DURATION=10 RATE=2000 ACCOUNTS=200
set -u
cd "$(dirname "$0")/.." || exit 1
[ $# -eq 2 ] || { echo "usage: bench/ab.sh OLD_BIN NEW_BIN" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
RATE=${RATE:-2000}
ACCOUNTS=${ACCOUNTS:-200}
PY=/usr/bin/python3
PW=password
TMP=$(mktemp -d /tmp/starling-ab.XXXXXX) || exit 1
PID=
cleanup() {
    if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_node() { # setup_node BIN TAG: a node's folder, config and accounts
    local bin=$1 dir=$TMP/$2 ports
    mkdir -p "$dir"
    ports=$($PY -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
    set -- $ports
    "$bin/starlingctl" sample-config |
        sed -e "s|\"127.0.0.1:5222\"|\"127.0.0.1:$1\"|" \
            -e "s|\"127.0.0.1:5223\"|\"127.0.0.1:$2\"|" \
            -e "s|\"127.0.0.1:5269\"|\"127.0.0.1:$3\"|" \
            -e "s|var/|$dir/|" \
            -e 's|login_rate = [0-9]*;|login_rate = 0;|' \
            -e 's|require_encryption = true;|require_encryption = false;|' \
            -e 's|allow_plain_without_tls = false;|allow_plain_without_tls = true;|' \
            >"$dir/starling.conf"
    grep -q 'login_rate = 0;' "$dir/starling.conf" || { echo "the sample changed shape" >&2; return 1; }
    "$bin/starlingctl" --config "$dir/starling.conf" gencert >/dev/null 2>&1 &&
        "$bin/starlingctl" --config "$dir/starling.conf" adduser user1@localhost "$PW" \
            2>>"$dir/ctl.log" || return 1
    $PY bench/clone_accounts.py "$dir/starling.db" "$ACCOUNTS" >/dev/null || return 1
    echo "$1" >"$dir/port"
}

run() { # run BIN TAG WHAT: a fresh node, one measurement; prints "WHAT TAG value unit"
    local bin=$1 dir=$TMP/$2 what=$3 port i
    port=$(cat "$dir/port")
    "$bin/starling" --config "$dir/starling.conf" >>"$dir/server.log" 2>&1 &
    PID=$!
    for i in $(seq 1 150); do
        grep -q 'c2s is serving' "$dir/server.log" 2>/dev/null && break
        sleep 0.1
    done
    : >"$dir/server.log"
    local args
    case $what in
    chat-rate) args="chat -c 100 -r $RATE" ;;
    chat-sat) args="chat -c 100 -w 10" ;;
    login) args="login -c 100 --users $ACCOUNTS" ;;
    esac
    "$bin/starling-bench" $args -d "$DURATION" -p "$port" --mech PLAIN --password "$PW" \
        --server-pid $PID -q -o "$dir/$what.json" >"$dir/bench.txt" 2>&1
    kill -TERM $PID 2>/dev/null
    wait $PID 2>/dev/null
    PID=
    $PY - "$dir/$what.json" "$what" "$2" <<'PYEOF'
import json, sys
path, what, tag = sys.argv[1:]
try:
    r = json.load(open(path))
    cpu = r["cpu"]["server_us_per_unit"]
    m = r["measured"]
    rate = m["logins_per_s"] if what == "login" else m["msgs_per_s"]
    lost = m.get("msg_lost", 0)
except (OSError, ValueError, KeyError):
    cpu, rate, lost = float("nan"), float("nan"), -1
print(f"{what} {tag} {cpu:.2f} {rate:.0f} {lost}")
PYEOF
}

setup_node "$1" old || exit 1
setup_node "$2" new || exit 1
: >"$TMP/runs"
for round in $(seq 1 "$ROUNDS"); do
    for what in chat-rate chat-sat login; do
        run "$1" old "$what" | tee -a "$TMP/runs"
        run "$2" new "$what" | tee -a "$TMP/runs"
    done
done
$PY - "$TMP/runs" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print()
print("| measurement | server CPU per unit (us): old | new | new/old | rate (/s): old | new | new/old |")
print("|---|---:|---:|---:|---:|---:|---:|")
for what in ("chat-rate", "chat-sat", "login"):
    med = {}
    for tag in ("old", "new"):
        xs = [(float(r[2]), float(r[3])) for r in rows if r[0] == what and r[1] == tag]
        med[tag] = (statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs))
    o, n = med["old"], med["new"]
    print(f"| {what} | {o[0]:.1f} | {n[0]:.1f} | {n[0]/o[0]:.2f} | {o[1]:.0f} | {n[1]:.0f} | {n[1]/o[1]:.2f} |")
PYEOF
