#!/bin/sh
# The store's latency and throughput, SQLite against PostgreSQL, side by side
# (bench/storebench_main.c): an SQLite file in a temporary folder, and a PostgreSQL that
# tests/pg-run starts (Unix socket, fsync off: the round trips and the server's work,
# not the disk). N requests per figure (default 5000).
set -eu
O=${1:-build/release}
N=${N:-5000}
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/starling-storebench-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$O/bin/storebench" sqlite "$dir/bench.db" "$N"
echo
tests/pg-run sh -c '"$0" postgresql "$STARLING_TEST_PG" "$1"' "$O/bin/storebench" "$N"
