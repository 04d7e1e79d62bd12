#!/bin/bash
# bench/memory.sh: memory at rest of a node. For each build given (bin folders; default
# build/release/bin), a fresh node from that build's `starlingctl sample-config` (its
# defaults, but plain TCP allowed and login_rate 0) is started; SETTLE seconds after it
# serves, its start-up RSS is read per process (supervisor, router, c2s), and the sum of
# their PSS (shared pages divided among the processes that map them); then
# `starling-bench idle` holds N plain connections for DURATION seconds and reports
# (RSS of every process of the node with them online - RSS before) / N. Builds alternate
# within each N and round, so a before/after pair is measured side by side.
#
#   bench/memory.sh [BIN...]   e.g. bench/memory.sh /tmp/main/build/release/bin build/release/bin
#   COUNTS="5000 19000" (default), ROUNDS=1, DURATION=5, SETTLE=2
#
# The generator is the first build's starling-bench, connecting from 127.0.0.2-9 (19,000
# connections from one process fit under an open-files limit of 20,000). Accounts: user1
# made with starlingctl, its row copied under user2..userN (the same password).
set -u
cd "$(dirname "$0")/.." || exit 1
[ $# -gt 0 ] || set -- build/release/bin
COUNTS=${COUNTS:-"5000 19000"}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-5}
SETTLE=${SETTLE:-2}
PY=/usr/bin/python3
PW=password
MAXN=0
for n in $COUNTS; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
GEN=$1/starling-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null
TMP=$(mktemp -d /tmp/starling-memory.XXXXXX) || exit 1
PID=
cleanup() {
    if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
child_of() { # child_of PID EXE: the child of PID running EXE
    local k
    for k in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        [ "$(basename "$(readlink /proc/"$k"/exe 2>/dev/null)")" = "$2" ] && { echo "$k"; return; }
    done
}

# A node in $TMP/$2 from build $1, with N accounts; prints its port.
setup_node() {
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
            -e 's|require_encryption = true;|require_encryption = false;|' >"$dir/starling.conf"
    grep -q 'login_rate = 0;' "$dir/starling.conf" || { echo "the sample changed shape" >&2; return 1; }
    "$bin/starlingctl" --config "$dir/starling.conf" gencert >/dev/null 2>&1 &&
        "$bin/starlingctl" --config "$dir/starling.conf" adduser user1@localhost "$PW" 2>>"$dir/ctl.log" || return 1
    $PY bench/clone_accounts.py "$dir/starling.db" "$MAXN" >/dev/null || return 1
    echo "$1" >"$dir/port"
}

# run BIN TAG N: start a fresh node, read start-up RSS, hold N idle connections.
run() {
    local bin=$1 dir=$TMP/$2 n=$3 port r c i
    port=$(cat "$dir/port")
    rm -f "$dir"/starling.db-wal "$dir/out.json"
    "$bin/starling" --config "$dir/starling.conf" >>"$dir/server.log" 2>&1 &
    PID=$!
    for i in $(seq 1 150); do
        r=$(child_of $PID starling-router) c=$(child_of $PID starling-c2s)
        [ -n "$r" ] && [ -n "$c" ] && grep -q 'c2s is serving' "$dir/server.log" && break
        sleep 0.1
    done
    sleep "$SETTLE"
    local s=$(rss_kb $PID) rr=$(rss_kb "$r") cc=$(rss_kb "$c")
    local pss=$(($(pss_kb $PID) + $(pss_kb "$r") + $(pss_kb "$c")))
    "$GEN" idle -c "$n" -d "$DURATION" -p "$port" --source 127.0.0.2-9 --server-pid $PID \
        -q -o "$dir/out.json" >"$dir/bench.txt" 2>&1
    local ok=$?
    kill -TERM $PID 2>/dev/null
    wait $PID 2>/dev/null
    PID=
    $PY - "$dir/out.json" "$bin" "$n" "$s" "$rr" "$cc" "$pss" "$ok" <<'EOF'
import json, sys
path, tag, n, s, r, c, pss, ok = sys.argv[1:]
s, r, c, pss = (int(x) for x in (s, r, c, pss))
try:
    srv = json.load(open(path))["server"]
    per = "%.0f" % srv["rss_per_connection"]
    online = srv["online_loaded"]
except (OSError, ValueError, KeyError):
    per, online = "-", 0
print(f"| {tag} | {int(n):,} | {s/1024:.1f} | {r/1024:.1f} | {c/1024:.1f} | {(s+r+c)/1024:.1f} "
      f"| {pss/1024:.1f} | {online:,} | {per} |" + ("" if ok == "0" else f" (starling-bench exited {ok})"))
EOF
}

echo "| build | connections | start-up RSS MiB: supervisor | router | c2s | total | PSS total | online | idle bytes per connection |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
k=0
for bin in "$@"; do
    setup_node "$bin" "b$k" >/dev/null || { echo "set-up of $bin failed" >&2; exit 1; }
    k=$((k + 1))
done
for round in $(seq 1 "$ROUNDS"); do
    for n in $COUNTS; do
        k=0
        for bin in "$@"; do
            run "$bin" "b$k" "$n"
            k=$((k + 1))
        done
    done
done
