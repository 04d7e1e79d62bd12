#!/bin/sh
# bench/cluster_login.sh [BUILD_DIR]: logins through HAProxy in front of `make cluster`'s
# three nodes, against logins straight to one of them (bench/RESULTS.md, "Cluster").
#
# Starts deploy/run-cluster.sh in a temporary folder on 127.0.6.x (beside a `make run` or
# `make cluster` of the developer's), makes N accounts in the shared PostgreSQL, then
# runs starling-bench's login scenario (STARTTLS, SCRAM-SHA-256) twice: through HAProxy
# (PROXY protocol v2 to the nodes) and to node1 directly. The CPU counted is every process
# run-cluster.sh started: PostgreSQL, HAProxy, the three nodes and their children.
# Prints both and their ratio; with REPORT=FILE also writes the HTML report of both runs
# there (bench/report; bench/cluster-report.html is one).
set -eu
O=${1:-build/release}
cd "$(dirname "$0")/.."
BIN=$(pwd)/$O/bin
CLIENTS=${CLIENTS:-50}
DURATION=${DURATION:-10}
NET=127.0.6.1
FRONT=127.0.6.1
TMP=$(mktemp -d /tmp/starling-cluster-login-XXXXXX)
chmod 755 "$TMP" # PostgreSQL runs as its own user when we are root
cluster=""
# SIGTERM: a script started with & ignores SIGINT, so its Ctrl-C trap never runs.
cleanup() {
    [ -n "$cluster" ] && kill -TERM "$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

STARLING_CLUSTER_DIR="$TMP/c" STARLING_CLUSTER_NET=$NET STARLING_CLUSTER_FRONT=$FRONT \
    deploy/run-cluster.sh "$O" >"$TMP/cluster.log" 2>&1 &
cluster=$!
i=0
until grep -q "Stop with Ctrl-C" "$TMP/cluster.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 $cluster 2>/dev/null; then
        cat "$TMP/cluster.log" >&2
        echo "cluster_login: the cluster did not start" >&2
        exit 1
    fi
    sleep 0.1
done
# HAProxy sends clients only to nodes whose /ready answers 200.
for n in 1 2 3; do
    i=0
    until /usr/bin/python3 -c "import urllib.request as u, sys
sys.exit(u.urlopen(sys.argv[1], timeout=1).status != 200)" "http://${NET}$n:5280/ready" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 300 ] && { echo "cluster_login: node$n never ready" >&2; exit 1; }
        sleep 0.1
    done
done
sleep 3 # HAProxy's health checks see them up

ctl="$BIN/starlingctl --config $TMP/c/node1.conf"
n=1
while [ $n -le "$CLIENTS" ]; do
    $ctl adduser "user$n@localhost" password >/dev/null 2>&1 || true
    n=$((n + 1))
done

run() { # LABEL HOST
    "$BIN/starling-bench" login -H "$2" -p 5222 --tls starttls -c "$CLIENTS" -d "$DURATION" \
        --server-pid "$cluster" -l "$1" -q -o "$TMP/$1.json" >"$TMP/$1.out" 2>&1 || true
    /usr/bin/python3 - "$TMP/$1.json" "$1" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
cpu = j.get("cpu", {}).get("server_us_per_unit")
rate = round(j["measured"]["logins_per_s"])
print(f"{sys.argv[2]}: {rate} logins/s, server CPU per login {cpu:.1f} us")
open(sys.argv[1] + ".cpu", "w").write(str(cpu))
EOF
}
echo "== logins, $CLIENTS clients at once, STARTTLS + SCRAM-SHA-256, ${DURATION}s each"
run direct "${NET}1"
run haproxy "$FRONT"
/usr/bin/python3 -c "
d = float(open('$TMP/direct.json.cpu').read()); h = float(open('$TMP/haproxy.json.cpu').read())
print(f'through HAProxy / direct: {h / d:.2f}x server CPU per login')"
if [ -n "${REPORT:-}" ]; then
    bench/report -o "$REPORT" --title "Logins: one node directly, and make cluster's three behind HAProxy" \
        "$TMP/direct.json" "$TMP/haproxy.json"
fi
