#!/bin/sh
# smoke.sh BIN_DIR: proves starling-bench works end to end against a real starling node.
#
# Starts one node on free loopback ports with its own config (the shipped defaults, limits
# included: every client comes from 127.0.0.1), certificate and database in a temporary
# directory, creates the accounts with starlingctl, runs every scenario
# for a couple of seconds with a few connections (plain TCP, STARTTLS and Direct TLS;
# SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN), renders the results with bench/report, and
# stops the node by its PID. Each run passes when starling-bench's exit status says
# stanzas flowed and nothing was lost or failed. This is not a timing test: the figures
# are printed, never judged.
#
# The floor of `make bench`, bench/relay, gets a short chat and login run too, so that
# compare.sh does not find it broken; bench/federation.sh runs once briefly with a
# starling pair (about 15 s), and bench/sm.sh with starling alone (about 15 s).
#
# The muc and sm scenarios (and bench/muc.sh) need MUC and XEP-0198 in the server, which
# are built in other branches: HAVE_MUC and HAVE_SM below turn their runs on when the
# sample config shows them (a muc group; c2s.resume_timeout) and skip them otherwise.
# Once both are merged, set HAVE_MUC=1 and HAVE_SM=1 unconditionally, so that a server
# that loses either fails here instead of being skipped.
#
# A run that ends with status 3 ("the server lacks what the scenario needs") would count
# as skipped; none is expected to.
#
# The last line is "N passed, N failed, N skipped"; the exit status is 0 when none failed.
set -u
BIN=$(cd "${1:-build/release/bin}" && pwd) || exit 2
cd "$(dirname "$0")/.."
REPORT="$PWD/bench/report"
PY=/usr/bin/python3
USERS=40
PW=smoke-secret
for p in starling starlingctl starling-bench relay; do
    [ -x "$BIN/$p" ] || { echo "smoke: $BIN/$p is missing (make first)"; exit 2; }
done

DIR=$(mktemp -d /tmp/starling-smoke.XXXXXX)
PID= RELAY=
cleanup() {
    [ -n "$RELAY" ] && kill -TERM "$RELAY" 2>/dev/null
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null
        # The supervisor drains and stops its children; give it a moment, then insist.
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    [ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Three free ports at once (asked together so they differ).
set -- $($PY -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
C2S=$1 C2S_TLS=$2 S2S=$3 RELAY_PORT=$4
CONF=$DIR/starling.conf
"$BIN/starlingctl" sample-config |
    sed -e "s|\"127.0.0.1:5222\"|\"127.0.0.1:$C2S\"|" \
        -e "s|\"127.0.0.1:5223\"|\"127.0.0.1:$C2S_TLS\"|" \
        -e "s|\"127.0.0.1:5269\"|\"127.0.0.1:$S2S\"|" \
        -e 's|require_encryption = true;|require_encryption = false;|' \
        -e 's|allow_plain_without_tls = false;|allow_plain_without_tls = true;|' >"$CONF"
grep -q "127.0.0.1:$C2S" "$CONF" ||
    { echo "smoke: the sample config changed shape; fix the sed above"; exit 2; }
"$BIN/starlingctl" --config "$CONF" gencert >/dev/null || exit 2
n=1
while [ $n -le $USERS ]; do
    "$BIN/starlingctl" --config "$CONF" adduser "user$n@localhost" "$PW" || exit 2
    n=$((n + 1))
done

"$BIN/starling" --config "$CONF" >"$DIR/server.log" 2>&1 &
PID=$!
ready=0
for _ in $(seq 1 50); do
    if $PY -c "import socket; socket.create_connection(('127.0.0.1', $C2S), 1)" 2>/dev/null; then
        ready=1
        break
    fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.2
done
if [ $ready = 0 ]; then
    echo "smoke: starling did not come up; its log:"
    cat "$DIR/server.log"
    exit 1
fi
echo "smoke: starling (pid $PID) on 127.0.0.1:$C2S (STARTTLS) and :$C2S_TLS (Direct TLS), $USERS accounts"

passed=0 failed=0 skipped=0
# run NAME ALLOWED_SKIP_STATUS ARGS...: one starling-bench run; prints its summary.
# SERVER (the PID measured, starling's unless set) and LABEL may be set for one run.
run() {
    name=$1 skip=$2
    shift 2
    echo "== $name: starling-bench $*"
    "$BIN/starling-bench" "$@" -H 127.0.0.1 --password "$PW" --server-pid "${SERVER:-$PID}" -q \
        -l "${LABEL:-starling} $name" -o "$DIR/$name.json" >"$DIR/$name.out" 2>&1
    rc=$?
    sed 's/^/   /' "$DIR/$name.out"
    if [ $rc -eq 0 ]; then
        echo "   PASS"
        passed=$((passed + 1))
    elif [ $rc -eq "$skip" ]; then
        echo "   SKIP (exit $rc: known gap in the server, see bench/smoke.sh)"
        skipped=$((skipped + 1))
    else
        echo "   FAIL (exit $rc)"
        failed=$((failed + 1))
    fi
}

run login-scram256 0 login -p "$C2S" -c 4 --users 20 -d 2
run login-starttls-scram1 0 login -p "$C2S" -c 4 --users 20 -d 2 --tls starttls --mech SCRAM-SHA-1
run login-direct-plain 0 login -p "$C2S_TLS" -c 4 --users 20 -d 2 --tls direct --mech PLAIN
run idle 0 idle -p "$C2S" -c $USERS -d 2 --ramp 200
run chat-window 0 chat -p "$C2S" -c 10 -w 5 -d 2 -T 2
run chat-open-loop 0 chat -p "$C2S" -c 10 -r 500 -d 2 --tls starttls
run chat-count 0 chat -p "$C2S_TLS" -c 4 -w 3 -n 2000 -d 30 --tls direct -s 300
run presence 0 presence -p "$C2S" -c 12 -k 4 --presence-rate 20 -d 2 --drain 1
run mixed 0 mixed -p "$C2S" -c 20 -r 100 --mix chat=60,idle=20,login=20 --think 0.5 -d 3
run mixed-presence 0 mixed -p "$C2S" -c 20 -r 100 --presence-rate 20 --think 0.5 -d 2 --drain 1

HAVE_MUC=0 HAVE_SM=0
"$BIN/starlingctl" sample-config | grep -q '^muc = {' && HAVE_MUC=1
"$BIN/starlingctl" sample-config | grep -q 'resume_timeout' && HAVE_SM=1
# skip NAME WHY: a run left out, counted as skipped.
skip() {
    echo "== $1: SKIP ($2)"
    skipped=$((skipped + 1))
}
if [ $HAVE_MUC = 1 ]; then
    run muc-window 0 muc -p "$C2S" -c 12 --senders 3 -w 2 -d 2
    run muc-open-loop 0 muc -p "$C2S" -c 12 --senders 2 -r 50 -d 2 --tls starttls --room smoke@conference.localhost
else
    skip muc "no MUC in this starling yet: no muc group in its sample config"
fi
if [ $HAVE_SM = 1 ]; then
    run sm-window 0 sm -p "$C2S" -c 10 -w 5 -d 2 --ack-every 3
    run sm-open-loop 0 sm -p "$C2S_TLS" -c 10 -r 200 -d 2 --tls direct
else
    skip sm "no XEP-0198 in this starling yet: no c2s.resume_timeout in its sample config"
fi

"$BIN/relay" -p "$RELAY_PORT" >"$DIR/relay.log" 2>&1 &
RELAY=$!
for _ in $(seq 1 50); do
    $PY -c "import socket; socket.create_connection(('127.0.0.1', $RELAY_PORT), 0.2)" \
        2>/dev/null && break
    sleep 0.1
done
SERVER=$RELAY LABEL=relay run relay-chat 0 chat -p "$RELAY_PORT" -c 10 -w 5 -d 1 --mech PLAIN
SERVER=$RELAY LABEL=relay run relay-login 0 login -p "$RELAY_PORT" -c 4 --users 20 -d 1 --mech PLAIN

# script NAME PATTERN CMD...: one of bench/'s side-by-side scripts, briefly; the lines of
# its output matching PATTERN are shown when it passes, its tail when it fails.
script() {
    name=$1 pat=$2
    shift 2
    echo "== $name: $*"
    if "$@" >"$DIR/$name.out" 2>&1; then
        grep "$pat" "$DIR/$name.out" | sed 's/^/   /'
        echo "   PASS"
        passed=$((passed + 1))
    else
        sed 's/^/   /' "$DIR/$name.out" | tail -n 40
        echo "   FAIL"
        failed=$((failed + 1))
    fi
}

# Federation: bench/federation.sh with a starling pair only, a second of each run.
script federation '^federation: ' env ROUNDS=1 DURATION=1 CLIENTS=20 PRATE=5 SERVERS=starling \
    OUT="$DIR/federation" bench/federation.sh "$BIN/.."
# bench/sm.sh (and through it bench/servers.sh, which compare.sh and muc.sh share) with
# starling alone; its sm run may end with status 3 until the server has XEP-0198.
script sm.sh '^sm: \|^| starling' env ROUNDS=1 DURATION=1 CLIENTS=10 SERVERS=starling \
    OUT="$DIR/sm" bench/sm.sh "$BIN/.."
if [ $HAVE_MUC = 1 ]; then
    script muc.sh '^muc: ' env ROUNDS=1 DURATION=1 OCCUPANTS=20 SERVERS="starling relay" \
        OUT="$DIR/muc" bench/muc.sh "$BIN/.."
else
    skip muc.sh "no MUC in this starling yet"
fi

if kill -0 "$PID" 2>/dev/null; then
    echo "== the server survived every run"
else
    echo "== FAIL: the server died; its log:"
    tail -n 30 "$DIR/server.log"
    failed=$((failed + 1))
fi
if "$REPORT" -o "$DIR/report.html" "$DIR"/*.json && grep -q '<svg' "$DIR/report.html"; then
    echo "== report: $(grep -c '<svg' "$DIR/report.html") plots in $DIR/report.html"
    passed=$((passed + 1))
else
    echo "== FAIL: bench/report"
    failed=$((failed + 1))
fi
[ "${KEEP:-0}" = 1 ] && echo "smoke: results kept in $DIR"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
