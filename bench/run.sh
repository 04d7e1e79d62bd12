#!/bin/sh
# `make bench`: runs every benchmark of bench/ against the build in $1 and prints the
# figures that bench/RESULTS.md records. Performance goals live here, never in tests.
set -eu
O=${1:-build/release}
cd "$(dirname "$0")/.."
echo "== XML stream parser against expat (bench/xmlbench_main.c)"
"$O/bin/xmlbench"
echo "== SASL: server CPU per login (bench/sasl_main.c)"
"$O/bin/sasl"
echo "== TLS: server CPU per handshake, heap per idle connection (bench/tls_main.c)"
"$O/bin/tls"
echo
echo "== shared-memory ring between two processes (bench/ringbench_main.c)"
"$O/bin/ringbench"
echo
echo "== presence fan-out: one user, 1,000 online contacts (bench/fanout_main.c)"
"$O/bin/fanout" -k 1000 -n 2000
"$O/bin/fanout" -k 1000 -n 2000 -s 4 -t 4
echo
echo "== the store: SQLite against PostgreSQL, one request at a time and 64 pipelined (bench/store.sh)"
bench/store.sh "$O"
echo
echo "== the cluster: CPU per message in a node and across nodes, link bytes of a broadcast (bench/cluster.py)"
/usr/bin/python3 bench/cluster.py "$O/bin"
echo
echo "== logins through HAProxy in front of make cluster's three nodes (bench/cluster_login.sh)"
bench/cluster_login.sh "$O"
echo
echo "== side by side: starling, Prosody and ejabberd end to end (bench/compare.sh)"
# COMPARE=0 skips it; QUICK=1 makes it short (see bench/compare.sh).
if [ "${COMPARE:-1}" != 0 ]; then
    bench/compare.sh "$O"
fi
echo
echo "== federation side by side: starling, Prosody, ejabberd each with itself (bench/federation.sh)"
# FEDERATION=0 skips it; ROUNDS, DURATION, CLIENTS... shorten it (see bench/federation.sh).
if [ "${FEDERATION:-1}" != 0 ]; then
    bench/federation.sh "$O"
fi
echo
echo "== group chat side by side: a room of 1,000 occupants on starling, Prosody, ejabberd (bench/muc.sh)"
# MUC=0 skips it; ROUNDS, DURATION, OCCUPANTS... shorten it (see bench/muc.sh).
if [ "${MUC:-1}" != 0 ]; then
    bench/muc.sh "$O"
fi
echo
echo "== what stream management and archiving cost per message (bench/sm.sh)"
# SM=0 skips it; STARLING_MAM_ON turns starling's archiving on (see bench/sm.sh).
if [ "${SM:-1}" != 0 ]; then
    bench/sm.sh "$O"
fi
