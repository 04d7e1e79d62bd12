#!/bin/bash
# compare.sh [BUILD_DIR]: starling side by side with Prosody and ejabberd (issue 5), on this
# machine, over plain TCP on loopback, with starling-bench driving each server in turn; and
# beside them the floor, a bare relay that does no XMPP work (bench/relay_main.c), in the
# chat runs.
#
# What it does, in order:
#   1. Installs Debian's prosody (0.12) and ejabberd (23.01) when missing (apt-get, through
#      sudo when not root). Debian starts their system services on install: right after
#      installing, it stops and disables them (systemctl when systemd runs; otherwise it
#      kills the daemons by the pidfiles the packages use, and only those). Their data in
#      /var/lib is never touched.
#   2. Writes a private configuration for each server in a temporary directory (free
#      127.0.0.1 ports, storage in that directory, no s2s, rate limits and shapers off,
#      warn-level logs), creates the accounts with each server's own tool (the first one)
#      and clones its credentials in the server's own storage format for the rest,
#      starts the three servers in the background and checks that a login works on the
#      last account of each. Steps 1 and 2 are bench/servers.sh's, shared with
#      bench/muc.sh and bench/sm.sh.
#   3. Measures, interleaved (each measurement against starling, Prosody, ejabberd, then
#      the next measurement; ROUNDS times), so that the machine's noise hits all three,
#      each run against a freshly started server:
#        chat100   chat, 100 clients, 10 messages in flight each (saturation)
#        chat1000  chat, 1,000 clients, 1 in flight each (saturation)
#        rate2000  chat, 100 clients, open loop at 2,000 msgs/s (latency)
#        login     log in and out again, 500 at once, 1,000 accounts
#      and then idle: IDLE_CLIENTS connections held online (memory per connection = RSS
#      delta / N). Server CPU and memory cover every
#      process of the server (starling: supervisor, router, c2s; Prosody: the lua process;
#      ejabberd: beam.smp and its children), sampled by starling-bench --server-pid.
#   4. Writes the table (medians of the rounds, every round beside) to OUT/compare.md,
#      replaces the section "Side by side: starling, Prosody, ejabberd" of
#      bench/RESULTS.md with it (full mode only, unless WRITE_RESULTS says otherwise) and
#      renders the runs with bench/report into OUT/report.html (one run per server and
#      measurement, the median round) and OUT/report-all.html (every run).
# Every process it starts is stopped by its PID when it exits, however it exits.
#
# Environment (defaults in parentheses; QUICK=1 changes the defaults marked *):
#   QUICK=1          a short version (about 3 minutes) for trying the script out
#   ROUNDS           rounds of the interleaved measurements (3; *1)
#   DURATION         seconds measured per run (10; *3)
#   IDLE_CLIENTS     connections of the idle run (10000; *2000)
#   IDLE_SECONDS     seconds the idle run holds them (5; *2)
#   SERVERS          which servers, in this order ("starling prosody ejabberd relay")
#   SOURCES          local addresses of login and idle runs (127.0.0.2-9)
#   OUT              where results go (build/bench); its compare/ is replaced
#   WRITE_RESULTS    1: replace the section in bench/RESULTS.md (1; *0)
#   KEEP=1           keep the temporary directory (configs, logs, storage)
set -u
O=${1:-build/release}
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
case $O in /*) ;; *) O=$ROOT/$O ;; esac
BIN=$O/bin
PY=/usr/bin/python3
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-3} IDLE_CLIENTS=${IDLE_CLIENTS:-2000}
    IDLE_SECONDS=${IDLE_SECONDS:-2} WRITE_RESULTS=${WRITE_RESULTS:-0}
else
    ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
    IDLE_SECONDS=${IDLE_SECONDS:-5} WRITE_RESULTS=${WRITE_RESULTS:-1}
fi
SERVERS=${SERVERS:-starling prosody ejabberd relay}
SOURCES=${SOURCES:-127.0.0.2-9}
OUT=${OUT:-$ROOT/build/bench}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
RES=$OUT/compare
PW=password
LOGIN_USERS=1000
# Logins: 500 at once, because ejabberd keeps a stream ~100 ms after the client closed it,
# which caps a closed loop at clients / 0.1 s; 1,000 accounts, because the generator runs
# PBKDF2 once per account (then caches the keys, as a client does).
# Accounts: enough for every run (the idle run uses user1..IDLE_CLIENTS).
NUSERS=$LOGIN_USERS
[ "$IDLE_CLIENTS" -gt "$NUSERS" ] && NUSERS=$IDLE_CLIENTS
T_START=$(date +%s)

say() { printf 'compare: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

for p in starling starlingctl starling-bench relay; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing (make first)"
done

# ---- processes we start, and how they all stop ----------------------------------------------
STARTED=""          # root PIDs of every server started, for the trap
TMP=""

. bench/procs.sh # descendants, stop_pid, cleanup on exit, cpu_ticks

# ---- 1, 2. the servers (bench/servers.sh) ---------------------------------------------------
. bench/servers.sh

mkdir -p "$OUT" || exit 1
rm -rf "$RES"
mkdir -p "$RES" || exit 1
install_servers
servers_init compare
servers_start

# ---- 3. the measurements ---------------------------------------------------------------------
B="$BIN/starling-bench"
# The arguments of each measurement (without port, mechanism and output).
args_of() {
    case $1 in
        chat100) echo "chat -c 100 -w 10 -d $DURATION" ;;
        chat1000) echo "chat -c 1000 -w 1 -d $DURATION" ;;
        rate2000) echo "chat -c 100 -r 2000 -d $DURATION" ;;
        login) echo "login -c 500 --pending 500 --users $LOGIN_USERS -d $DURATION --source $SOURCES" ;;
        idle) echo "idle -c $IDLE_CLIENTS -d $IDLE_SECONDS --source $SOURCES" ;;
    esac
}
printf 'measurement\tserver\tround\tstatus\tjson\tcommand\n' >"$RES/runs.tsv"
# run MEASUREMENT SERVER ROUND: one starling-bench run, bounded in time.
run() {
    local m=$1 s=$2 r=$3 port pid mech json cmd rc limit
    port=$(eval echo \$PORT_$s) pid=$(eval echo \$PID_$s) mech=$(eval echo \$MECH_$s)
    json=$RES/$m-$s-r$r.json
    cmd="starling-bench $(args_of "$m") -p $port --mech $mech --server-pid $pid"
    limit=$((DURATION + IDLE_SECONDS + 120))
    # shellcheck disable=SC2046
    timeout -k 5 $limit "$B" $(args_of "$m") -p "$port" --mech "$mech" --password "$PW" \
        --server-pid "$pid" -q -l "$s" -o "$json" >"$RES/$m-$s-r$r.out" 2>&1
    rc=$?
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$s" "$r" "$rc" "$json" "$cmd" >>"$RES/runs.tsv"
    printf 'compare: %-8s %-8s round %s: %s\n' "$m" "$s" "$r" \
        "$($PY "$ROOT/bench/compare-summary" --one "$json" 2>/dev/null || echo "no result (exit $rc)")"
}

MEASUREMENTS="chat100 chat1000 rate2000 login"
say "$ROUNDS round(s) of $MEASUREMENTS, $DURATION s each, servers:$SERVERS"
for r in $(seq 1 "$ROUNDS"); do
    for m in $MEASUREMENTS; do
        for s in $SERVERS; do
            case $s/$m in relay/login) continue ;; esac # the floor is of messages
            fresh "$s" && run "$m" "$s" "$r"
        done
    done
done

# Idle memory: RSS delta / N, on a fresh server too.
say "idle: $IDLE_CLIENTS connections for $IDLE_SECONDS s"
for s in $SERVERS; do
    [ "$s" = relay ] && continue
    fresh "$s" && run idle "$s" 1
    stop_pid "$(eval echo \$PID_$s)"
done

# ---- 4. the table and the report -------------------------------------------------------------
{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "elapsed_s=$(($(date +%s) - T_START))"
    echo "quick=$QUICK rounds=$ROUNDS duration=$DURATION idle_clients=$IDLE_CLIENTS idle_seconds=$IDLE_SECONDS"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "ncpu=$(nproc)"
    echo "mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "virt=$(systemd-detect-virt 2>/dev/null || echo unknown)"
    echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "starling=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "prosody=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null)"
    echo "ejabberd=$(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null)"
    echo "erlang=$(dpkg-query -W -f='${Version}' erlang-base 2>/dev/null)"
    echo "lua=$(dpkg-query -W -f='${Version}' lua5.4 2>/dev/null)"
    for s in $SERVERS; do echo "mech_$s=$(eval echo \$MECH_$s)"; done
    echo "servers=$SERVERS"
    echo "sources=$SOURCES"
} >"$RES/meta.env"
cp "$ST_DIR/starling.conf" "$RES/" 2>/dev/null
cp "$PR_CFG" "$RES/" 2>/dev/null
cp "$EJ_DIR/ejabberd.yml" "$RES/" 2>/dev/null

WR=""
[ "$WRITE_RESULTS" = 1 ] && WR="--results $ROOT/bench/RESULTS.md"
# shellcheck disable=SC2086
$PY "$ROOT/bench/compare-summary" --dir "$RES" --markdown "$OUT/compare.md" $WR \
    --report "$ROOT/bench/report" --html "$OUT/report.html" --html-all "$OUT/report-all.html" ||
    die "the summary failed"
echo
cat "$OUT/compare.md"
echo
say "table: $OUT/compare.md$([ "$WRITE_RESULTS" = 1 ] && echo ", and in bench/RESULTS.md")"
say "report: $OUT/report.html (median round of each), $OUT/report-all.html (every run)"
say "raw results: $RES/ ($(($(date +%s) - T_START)) s in all)"
