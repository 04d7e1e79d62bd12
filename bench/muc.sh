#!/bin/bash
# muc.sh [BUILD_DIR]: group chat side by side (issue 12). One room with OCCUPANTS
# occupants on starling, Prosody (mod_muc) and ejabberd (mod_muc), each server on a
# loopback address of its own (127.0.12.1, .2, .3; the floor relay on .4), driven in turn
# by starling-bench's muc scenario: every client joins bench@conference.localhost (the
# first creates it, with the default configuration but for the roles whose presence it
# broadcasts, BROADCAST), then SENDERS of them post and every occupant counts what
# reaches it. With BROADCAST=moderator (the default) only the owner's presence goes to
# everybody, so the room fills in O(N) presence stanzas instead of N*N/2 (with all roles,
# 1,000 joins are half a million presences: minutes on Prosody); the messages measured
# are the same either way.
#
# Measurements, interleaved (each round: starling, Prosody, ejabberd; each run against a
# freshly started server, after its start-up work):
#   sat    closed loop: each sender keeps WINDOW posts in flight, the next one leaving when
#          the room reflects one back: delivered stanzas/s (groupchat messages received by
#          all occupants per second) and server CPU per delivered stanza
#   rate   open loop: RATE posts/s in total (RATE x OCCUPANTS deliveries/s): latency of
#          each delivery, from when its post was due, and CPU per delivered stanza
#   floor  the relay (bench/relay_main.c) only: chat, 100 clients, 10 in flight each, its
#          CPU per message: issue 12's goal is starling's CPU per delivered stanza at most
#          twice it (and at least 10x ejabberd's delivered stanzas/s)
# Server CPU is that of every process of the server (starling: supervisor, router, c2s;
# Prosody: lua; ejabberd: beam.smp and its children), read from /proc by starling-bench
# --server-pid over the measured interval only.
#
# starling takes part when its sample config has a muc group (a build without MUC is
# left out); STARLING_SED (sed expressions for its config, e.g. to raise the room's
# occupant limit) is applied after the set-up's own.
#
# Output: OUT/muc/ (every run's JSON and output, runs.tsv, the servers' configs,
# summary.md: medians of the rounds, their spread, ratios to starling). Exit status 0 when
# every run ended cleanly, 1 otherwise.
#
# Environment (defaults in parentheses):
#   ROUNDS (3)  DURATION seconds measured per run (10)  OCCUPANTS (1000)  SENDERS (10)
#   WINDOW (1)  RATE posts/s (5)  BROADCAST (moderator; all: every role)
#   JOIN_TIMEOUT seconds the room may fill without progress (300)
#   SERVERS ("starling prosody ejabberd relay")
#   MEASUREMENTS ("sat rate floor")  OUT (build/bench)  KEEP=1 keeps the servers' folders
#   STARLING_SED (none)
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
OCCUPANTS=${OCCUPANTS:-1000}
SENDERS=${SENDERS:-10}
WINDOW=${WINDOW:-1}
RATE=${RATE:-5}
BROADCAST=${BROADCAST:-moderator}
JOIN_TIMEOUT=${JOIN_TIMEOUT:-300}
SERVERS=${SERVERS:-starling prosody ejabberd relay}
MEASUREMENTS=${MEASUREMENTS:-sat rate floor}
OUT=${OUT:-$ROOT/build/bench}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
RES=$OUT/muc
PW=password
NUSERS=$OCCUPANTS
[ "$NUSERS" -lt 100 ] && NUSERS=100 # the floor's 100 clients
T_START=$(date +%s)

say() { printf 'muc: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

for p in starling starlingctl starling-bench relay; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing (make first)"
done
if [[ " $SERVERS " == *" starling "* ]] && ! "$BIN/starlingctl" sample-config | grep -q '^muc = {'; then
    say "starling: no muc group in its sample config (no MUC yet): left out"
    SERVERS=$(echo "$SERVERS" | tr ' ' '\n' | grep -vx starling | tr '\n' ' ')
fi

STARTED="" TMP=""
. bench/procs.sh

ADDR_starling=127.0.12.1 ADDR_prosody=127.0.12.2 ADDR_ejabberd=127.0.12.3 ADDR_relay=127.0.12.4
ST_SED=${STARLING_SED:-}
# Prosody: the MUC component with its defaults (rooms locked until configured, no
# occupant limit) but for XEP-0421 occupant ids, which neither ejabberd 23.01 nor
# starling add (Prosody computes one per occupant for every presence it builds). ejabberd: mod_muc with its limits above the room's size (by default a
# room takes 200 users and stops broadcasting presence beyond 1,000).
PR_EXTRA='Component "conference.localhost" "muc"
    muc_occupant_id = false'
EJ_MODULES="  mod_muc:
    host: conference.localhost
    access_create: all
    max_users: $((OCCUPANTS + 100))
    max_users_presence: $((OCCUPANTS + 100))
    default_room_options:
      max_users: $((OCCUPANTS + 100))"
. bench/servers.sh

mkdir -p "$OUT" || exit 1
rm -rf "$RES"
mkdir -p "$RES" || exit 1
install_servers
servers_init muc
servers_start

# Logins 50 at a time: 1,000 at once on a loaded machine keep ejabberd's presence echo
# past the generator's 2 s wait. --timeout is also how long the room may fill without
# progress; a slow room gets 30 s to deliver what was posted before the end.
MUC_ARGS="--broadcast $BROADCAST --pending 50 --timeout $JOIN_TIMEOUT --drain 30 -d $DURATION"
args_of() {
    case $1 in
        sat) echo "muc -c $OCCUPANTS --senders $SENDERS -w $WINDOW $MUC_ARGS" ;;
        rate) echo "muc -c $OCCUPANTS --senders $SENDERS -r $RATE $MUC_ARGS" ;;
        floor) echo "chat -c 100 -w 10 -d $DURATION" ;;
    esac
}
printf 'measurement\tserver\tround\tstatus\tjson\tcommand\n' >"$RES/runs.tsv"
FAILED=0
say "$ROUNDS round(s) of $MEASUREMENTS, $DURATION s each, $OCCUPANTS occupants, servers:$SERVERS"
for r in $(seq 1 "$ROUNDS"); do
    for m in $MEASUREMENTS; do
        for s in $SERVERS; do
            case $m/$s in floor/relay) ;; floor/* | */relay) continue ;; esac
            fresh "$s" || continue
            # shellcheck disable=SC2046
            run_one "$m" "$s" "$r" $((DURATION + 3 * JOIN_TIMEOUT + 120)) $(args_of "$m")
            [ $RC = 0 ] || FAILED=1
        done
    done
done
for s in $SERVERS; do stop_pid "$(eval echo \$PID_$s)"; done

write_meta "rounds=$ROUNDS" "duration=$DURATION" "occupants=$OCCUPANTS" "senders=$SENDERS" \
    "window=$WINDOW" "rate=$RATE" "broadcast=$BROADCAST"
$PY bench/ratio-summary --muc "$RES" >"$RES/summary.md" || die "the summary failed"
echo
cat "$RES/summary.md"
say "summary: $RES/summary.md; raw results: $RES/ ($(($(date +%s) - T_START)) s in all)"
exit $FAILED
