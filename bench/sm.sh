#!/bin/bash
# sm.sh [BUILD_DIR]: what XEP-0198 stream management and XEP-0313 archiving cost per
# message (issue 12), on starling, Prosody and ejabberd, each as a ratio to a plain chat
# message on the same server in the same round. Each server on a loopback address of its
# own (127.0.12.11, .12, .13), driven by starling-bench:
#   chat   plain chat pairs (CLIENTS clients, LOAD), on a server that offers stream
#          management (Prosody: mod_smacks; ejabberd: mod_stream_mgmt) but whose clients
#          do not enable it
#   sm     the same with every client enabling it (resume='true', as phone clients do),
#          answering the server's <r/> and asking for an ack every ACK_EVERY stanzas
#   mam    plain chat on the server with archiving on (Prosody: mod_mam, its default
#          policy archiving everything, internal storage with the quota lifted; ejabberd:
#          mod_mam with default: always, its mnesia store), so every message is stored
#          twice, in the sender's and the recipient's archive
# Each round runs the three against each server in turn, each run against a freshly
# started server; a ratio is taken within a round, then the median over the rounds.
# Server CPU is that of every process of the server, read from /proc by starling-bench
# --server-pid over the measured interval only.
#
# starling's sample config archives (mam.enabled = true): its chat and sm runs use the
# sample with STARLING_MAM_OFF applied (by default the sed expression that turns archiving
# off), its mam run the sample with STARLING_MAM_ON (by default none: the sample as it is).
#
# Output: OUT/sm/ (every run's JSON and output, runs.tsv, the configs, summary.md). Exit
# status 0 when every run ended cleanly, 1 otherwise.
#
# Environment (defaults in parentheses):
#   ROUNDS (3)  DURATION seconds per run (10)  CLIENTS (100)  LOAD ("-w 10": saturation;
#   e.g. "-r 2000" for a fixed rate)  ACK_EVERY (1)  SERVERS ("starling prosody ejabberd")
#   MEASUREMENTS ("chat sm mam")  OUT (build/bench)  KEEP=1  STARLING_MAM_ON  STARLING_MAM_OFF
# Every process it starts is stopped by its PID when it exits, however it exits.
set -u
O=${1:-build/release}
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
case $O in /*) ;; *) O=$ROOT/$O ;; esac
BIN=$O/bin
PY=/usr/bin/python3
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-100}
LOAD=${LOAD:--w 10}
ACK_EVERY=${ACK_EVERY:-1}
SERVERS=${SERVERS:-starling prosody ejabberd}
MEASUREMENTS=${MEASUREMENTS:-chat sm mam}
STARLING_MAM_ON=${STARLING_MAM_ON:-}
STARLING_MAM_OFF=${STARLING_MAM_OFF-'/^mam = {/,/^};/s|enabled = true;|enabled = false;|'}
OUT=${OUT:-$ROOT/build/bench}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
RES=$OUT/sm
PW=password
NUSERS=$CLIENTS
T_START=$(date +%s)

say() { printf 'sm: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

for p in starling starlingctl starling-bench; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing (make first)"
done

STARTED="" TMP=""
. bench/procs.sh

ADDR_starling=127.0.12.11 ADDR_prosody=127.0.12.12 ADDR_ejabberd=127.0.12.13
# The configurations: archiving off (base) or on (mam), stream management offered in both.
configure() { # configure SERVER base|mam: writes its config for the next start
    case $1/$2 in
        starling/base) ST_SED=$STARLING_MAM_OFF; write_config_starling ;;
        starling/mam) ST_SED=$STARLING_MAM_ON; write_config_starling ;;
        prosody/base) PR_MODULES='"smacks"' PR_GLOBAL=''; write_config_prosody ;;
        prosody/mam) PR_MODULES='"smacks", "mam"'
            PR_GLOBAL='storage_archive_item_limit = 100000000 -- default 1,000 an account'
            write_config_prosody ;;
        ejabberd/base) EJ_MODULES='  mod_stream_mgmt: {}'; write_config_ejabberd ;;
        ejabberd/mam) EJ_MODULES='  mod_stream_mgmt: {}
  mod_mam:
    default: always'
            write_config_ejabberd ;;
    esac
}
ST_SED=$STARLING_MAM_OFF PR_MODULES='"smacks"' EJ_MODULES='  mod_stream_mgmt: {}'
. bench/servers.sh

mkdir -p "$OUT" || exit 1
rm -rf "$RES"
mkdir -p "$RES" || exit 1
install_servers
servers_init sm
servers_start

args_of() {
    case $1 in
        chat | mam) echo "chat -c $CLIENTS $LOAD -d $DURATION" ;;
        sm) echo "sm -c $CLIENTS $LOAD --ack-every $ACK_EVERY -d $DURATION" ;;
    esac
}
printf 'measurement\tserver\tround\tstatus\tjson\tcommand\n' >"$RES/runs.tsv"
FAILED=0
say "$ROUNDS round(s) of $MEASUREMENTS, $DURATION s each, $CLIENTS clients $LOAD, servers:$SERVERS"
for r in $(seq 1 "$ROUNDS"); do
    for s in $SERVERS; do
        for m in $MEASUREMENTS; do
            [ "$m" = mam ] && configure "$s" mam
            if fresh "$s"; then
                # shellcheck disable=SC2046
                run_one "$m" "$s" "$r" $((DURATION + 120)) $(args_of "$m")
                [ "$RC" = 0 ] || FAILED=1
            fi
            [ "$m" = mam ] && configure "$s" base
        done
    done
done
for s in $SERVERS; do stop_pid "$(eval echo \$PID_$s)"; done

write_meta "rounds=$ROUNDS" "duration=$DURATION" "clients=$CLIENTS" \
    "load=$LOAD, an <r/> every $ACK_EVERY stanzas in the sm runs"
$PY bench/ratio-summary --sm "$RES" >"$RES/summary.md" || die "the summary failed"
echo
cat "$RES/summary.md"
say "summary: $RES/summary.md; raw results: $RES/ ($(($(date +%s) - T_START)) s in all)"
exit $FAILED
