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
#      and clones its credentials in the server's own storage format for the rest (see
#      make_accounts_*), starts the three servers in the background and checks that a
#      login works on the last account of each.
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

# ---- 1. prosody and ejabberd from Debian -----------------------------------------------------
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# The system services a package just installed and started: stopped and disabled, so that
# only our own instances run. Without a running systemd (containers), the daemons the
# package started are killed by the pidfiles its init script uses, and nothing else is.
stop_system_service() {
    local svc=$1 pidfile pid
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        $SUDO systemctl stop "$svc" >/dev/null 2>&1
        $SUDO systemctl disable "$svc" >/dev/null 2>&1
    else
        command -v update-rc.d >/dev/null && $SUDO update-rc.d "$svc" disable >/dev/null 2>&1
        case $svc in
            prosody) pidfile=/run/prosody/prosody.pid ;;
            ejabberd) pidfile=$(sed -n 's/^EJABBERD_PID_PATH=//p' /etc/default/ejabberd 2>/dev/null)
                      pidfile=${pidfile:-/run/ejabberd/ejabberd.pid} ;;
        esac
        if [ -r "$pidfile" ] && pid=$(cat "$pidfile") && [ -n "$pid" ] &&
            grep -qaE 'prosody|beam|ejabberd' "/proc/$pid/cmdline" 2>/dev/null; then
            $SUDO kill -TERM "$pid" 2>/dev/null && say "stopped the $svc daemon the package started (pid $pid)"
        fi
    fi
}

install_servers() {
    local missing="" s
    for s in $SERVERS; do
        case $s in prosody|ejabberd) installed "$s" || missing="$missing $s" ;; esac
    done
    [ -z "$missing" ] && return 0
    say "installing$missing from Debian"
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -q --no-install-recommends $missing >"$RES/apt.log" 2>&1; then
        $SUDO apt-get update -q >>"$RES/apt.log" 2>&1
        $SUDO apt-get install -y -q --no-install-recommends $missing >>"$RES/apt.log" 2>&1 ||
            { tail -n 20 "$RES/apt.log"; die "apt-get install$missing failed"; }
    fi
    for s in $missing; do stop_system_service "$s"; done
}

mkdir -p "$OUT" || exit 1
rm -rf "$RES"
mkdir -p "$RES" || exit 1
install_servers

# File descriptors: 10,000 connections need as many on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

TMP=$(mktemp -d /tmp/starling-compare.XXXXXX) || exit 1
chmod 755 "$TMP"    # Prosody runs as its own user when we are root: it must reach its dir.

# Free loopback ports, asked for together so they differ.
set -- $($PY -c '
import socket
ss = [socket.socket() for _ in range(7)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
ST_PORT=$1 ST_TLS=$2 ST_S2S=$3 PR_PORT=$4 EJ_PORT=$5 EJ_DIST=$6 RL_PORT=$7

wait_port() { # wait_port PORT PID: until something accepts on PORT, or PID dies (30 s)
    local i
    for i in $(seq 1 150); do
        $PY -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# ---- 2a. starling --------------------------------------------------------------------------
ST_DIR=$TMP/starling
# The sample config, with the login pace off (login_rate = 0): the login run comes from
# eight addresses, which c2s.login_rate would hold to 800 logins a second; it measures
# the server, not that limit.
setup_starling() {
    mkdir -p "$ST_DIR"
    "$BIN/starlingctl" sample-config |
        sed -e "s|\"127.0.0.1:5222\"|\"127.0.0.1:$ST_PORT\"|" \
            -e "s|\"127.0.0.1:5223\"|\"127.0.0.1:$ST_TLS\"|" \
            -e "s|\"127.0.0.1:5269\"|\"127.0.0.1:$ST_S2S\"|" \
            -e 's|login_rate = [0-9]*;|login_rate = 0;|' \
            -e 's|require_encryption = true;|require_encryption = false;|' \
            -e 's|allow_plain_without_tls = false;|allow_plain_without_tls = true;|' \
            >"$ST_DIR/starling.conf"
    grep -q "127.0.0.1:$ST_PORT" "$ST_DIR/starling.conf" &&
        grep -q 'login_rate = 0;' "$ST_DIR/starling.conf" ||
        { say "starling: the sample config changed shape; fix the sed in bench/compare.sh"; return 1; }
    "$BIN/starlingctl" --config "$ST_DIR/starling.conf" gencert >/dev/null || return 1
    # One account through starlingctl (SCRAM-SHA-1 and -256 keys, 4096 iterations), then
    # its row copied under the other names (bench/clone_accounts.py).
    "$BIN/starlingctl" --config "$ST_DIR/starling.conf" adduser "user1@localhost" "$PW" || return 1
    local n
    n=$($PY bench/clone_accounts.py "$ST_DIR/starling.db" "$NUSERS") || return 1
    echo "starling: $n"
}
start_starling() {
    "$BIN/starling" --config "$ST_DIR/starling.conf" >>"$ST_DIR/server.log" 2>&1 &
    PID_starling=$!
    STARTED="$STARTED $PID_starling"
    wait_port "$ST_PORT" "$PID_starling" || { tail -n 20 "$ST_DIR/server.log"; return 1; }
}
PORT_starling=$ST_PORT

# ---- 2b. Prosody ----------------------------------------------------------------------------
PR_DIR=$TMP/prosody
PR_CFG=$PR_DIR/prosody.cfg.lua
# As root, Prosody must run as its own user (it refuses root; Debian's unit does the same),
# and prosodyctl switches to that user by itself.
as_prosody() {
    if [ "$(id -u)" = 0 ]; then setpriv --reuid=prosody --regid=prosody --clear-groups "$@"
    else "$@"; fi
}
setup_prosody() {
    mkdir -p "$PR_DIR/data"
    cp "$ST_DIR/localhost.crt" "$ST_DIR/localhost.key" "$PR_DIR/"
    # The modules: what starling also does for a client (roster, blocking, carbons, disco,
    # ping; offline, presence, message and iq are loaded anyway). Debian's default also
    # loads mod_limits, whose c2s rate of 10 kB/s would throttle the benchmark: not here.
    # mod_blocklist keeps 64 users' blocklists in its cache by default; past that, each
    # message opens the recipient's blocklist and privacy files (absent ones included)
    # and its account file: the cache holds every account here, as ejabberd's do.
    cat >"$PR_CFG" <<EOF
-- Written by bench/compare.sh for one benchmark run.
pidfile = "$PR_DIR/prosody.pid"
data_path = "$PR_DIR/data"
log = { warn = "$PR_DIR/prosody.log" }
admins = { }
plugin_paths = { }
modules_enabled = { "roster", "saslauth", "tls", "disco", "carbons", "ping", "blocklist", "posix" }
modules_disabled = { "s2s" }
c2s_ports = { $PR_PORT }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
legacy_ssl_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
password_hash = "SHA-256"          -- SCRAM-SHA-256 from stored keys, as starling and ejabberd
default_iteration_count = 4096     -- as starling's scram_iterations
storage = "internal"
blocklist_cache_size = 20000       -- default 64: beyond, every message reads 2 files
c2s_stanza_size_limit = 262144
network_settings = { tcp_backlog = 4096 }
limits = { c2s = { rate = "1000mb/s" } }   -- only read by mod_limits, which is not loaded
certificates = "$PR_DIR"
VirtualHost "localhost"
    ssl = { certificate = "$PR_DIR/localhost.crt", key = "$PR_DIR/localhost.key" }
EOF
    [ "$(id -u)" = 0 ] && chown -R prosody:prosody "$PR_DIR"
    # One account through prosodyctl, then its file copied under the other names (the
    # format is Prosody's own: data/localhost/accounts/<user>.dat). prosodyctl register
    # takes ~40 ms an account, 7 minutes for 10,000.
    prosodyctl --config "$PR_CFG" register user1 localhost "$PW" >"$PR_DIR/register.log" 2>&1 ||
        { cat "$PR_DIR/register.log"; return 1; }
    as_prosody $PY - "$PR_DIR/data/localhost/accounts" "$NUSERS" <<'EOF' || return 1
import os, shutil, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(2, n + 1):
    if not os.path.exists(f"{d}/user{i}.dat"):
        shutil.copyfile(f"{d}/user1.dat", f"{d}/user{i}.dat")
print(f"prosody: {len(os.listdir(d))} accounts")
EOF
}
start_prosody() {
    rm -f "$PR_DIR/prosody.pid"
    as_prosody prosody --config "$PR_CFG" -F >>"$PR_DIR/server.log" 2>&1 &
    PID_prosody=$!
    STARTED="$STARTED $PID_prosody"
    wait_port "$PR_PORT" "$PID_prosody" || { tail -n 20 "$PR_DIR/server.log" "$PR_DIR/prosody.log"; return 1; }
}
PORT_prosody=$PR_PORT

# ---- 2c. ejabberd ---------------------------------------------------------------------------
# ejabberdctl runs the node as the ejabberd user under su, with epmd, and its node name and
# cookie live in /etc and /var/lib. We run the same VM with the same flags ejabberdctl
# passes (+K true +P 250000, ERL_MAX_PORTS, ERL_MAX_ETS_TABLES, -mnesia dir, -s ejabberd)
# as whoever runs this script, with a private node name, cookie and distribution port
# (-erl_epmd_port, no epmd), so the PID we start is beam.smp itself.
EJ_DIR=$TMP/ejabberd
EJ_NODE=starling-compare-$$@localhost
EJ_COOKIE=cmp$$$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
ej_env() {
    env HOME="$EJ_DIR" \
        EJABBERD_CONFIG_PATH="$EJ_DIR/ejabberd.yml" EJABBERD_LOG_PATH="$EJ_DIR/logs/ejabberd.log" \
        ERL_LIBS="$EJ_LIBS" ERL_MAX_PORTS=32000 ERL_MAX_ETS_TABLES=1400 \
        ERL_CRASH_DUMP="$EJ_DIR/logs/erl_crash.dump" ERL_CRASH_DUMP_BYTES=0 "$@"
}
# ej_rpc ERLANG_EXPRS: evaluates them on a hidden node connected to ours; N is our node.
ej_rpc() {
    ej_env erl -sname "ctl-$$-$RANDOM@localhost" -setcookie "$EJ_COOKIE" -hidden -noinput \
        -start_epmd false -erl_epmd_port "$EJ_DIST" -dist_listen false \
        -eval "N = '$EJ_NODE', pong = net_adm:ping(N), $1, halt()."
}
setup_ejabberd() {
    EJ_LIBS=$(sed -n "s/^ERL_LIBS='\(.*\)'$/\1/p" /usr/sbin/ejabberdctl)
    EJ_LIBS=${EJ_LIBS:-/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)}
    mkdir -p "$EJ_DIR/spool" "$EJ_DIR/logs"
    cat "$ST_DIR/localhost.crt" "$ST_DIR/localhost.key" >"$EJ_DIR/localhost.pem"
    # The modules: as for Prosody, what starling also does (mod_blocking needs mod_privacy).
    # Shapers off, a listen backlog for login bursts (the default is 5), stored SCRAM-SHA-256,
    # caches (accounts, rosters, privacy lists) larger than the accounts: at the default of
    # 1,000 entries they thrash ("Shrinking cache") from the 1,000-client runs on.
    cat >"$EJ_DIR/ejabberd.yml" <<EOF
# Written by bench/compare.sh for one benchmark run.
loglevel: warning
hosts:
  - localhost
certfiles:
  - "$EJ_DIR/localhost.pem"
listen:
  -
    port: $EJ_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls: true
    starttls_required: false
    backlog: 4096
cache_size: 20000
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 5000
  c2s_shaper: none
modules:
  mod_disco: {}
  mod_roster: {}
  mod_carboncopy: {}
  mod_privacy: {}
  mod_blocking: {}
  mod_ping: {}
  mod_offline: {}
EOF
}
start_ejabberd() {
    (cd "$EJ_DIR/spool" &&
        exec env HOME="$EJ_DIR" \
            EJABBERD_CONFIG_PATH="$EJ_DIR/ejabberd.yml" EJABBERD_LOG_PATH="$EJ_DIR/logs/ejabberd.log" \
            ERL_LIBS="$EJ_LIBS" ERL_MAX_PORTS=32000 ERL_MAX_ETS_TABLES=1400 \
            ERL_CRASH_DUMP="$EJ_DIR/logs/erl_crash.dump" ERL_CRASH_DUMP_BYTES=0 \
            erl -sname "$EJ_NODE" -setcookie "$EJ_COOKIE" -start_epmd false \
            -erl_epmd_port "$EJ_DIST" -kernel inet_dist_use_interface '{127,0,0,1}' \
            +K true +P 250000 -noinput -mnesia dir "\"$EJ_DIR/spool\"" -s ejabberd \
            >>"$EJ_DIR/server.log" 2>&1) &
    PID_ejabberd=$!
    STARTED="$STARTED $PID_ejabberd"
    wait_port "$EJ_PORT" "$PID_ejabberd" || { tail -n 20 "$EJ_DIR/server.log"; return 1; }
}
# One account through ejabberd_auth:try_register (what `ejabberdctl register` calls), then
# its passwd record written again under the other names. try_register takes ~7.6 ms an
# account (PBKDF2 in Erlang), over a minute for 10,000.
make_accounts_ejabberd() {
    ej_rpc "
        U1 = {<<\"user1\">>, <<\"localhost\">>},
        case rpc:call(N, ejabberd_auth, try_register, [<<\"user1\">>, <<\"localhost\">>, <<\"$PW\">>]) of
            ok -> ok; {error, exists} -> ok
        end,
        [P] = rpc:call(N, mnesia, dirty_read, [passwd, U1]),
        Recs = [setelement(2, P, {<<\"user\", (integer_to_binary(I))/binary>>, <<\"localhost\">>})
                || I <- lists:seq(2, $NUSERS)],
        ok = rpc:call(N, lists, foreach, [fun(R) -> mnesia:dirty_write(R) end, Recs]),
        io:format(\"ejabberd: ~p accounts~n\", [rpc:call(N, mnesia, table_info, [passwd, size])])"
}
PORT_ejabberd=$EJ_PORT

# ---- 2d. the floor --------------------------------------------------------------------------
# No accounts: it takes any PLAIN login on trust, so the login check below settles on PLAIN.
start_relay() {
    "$BIN/relay" -p "$RL_PORT" >>"$TMP/relay.log" 2>&1 &
    PID_relay=$!
    STARTED="$STARTED $PID_relay"
    wait_port "$RL_PORT" "$PID_relay" || { tail -n 20 "$TMP/relay.log"; return 1; }
}
PORT_relay=$RL_PORT

# ---- start everything ------------------------------------------------------------------------
SIMPLE_SERVERS=""
MECH_starling=SCRAM-SHA-256 MECH_prosody=SCRAM-SHA-256 MECH_ejabberd=SCRAM-SHA-256
setup_starling || die "starling: set-up failed"
for s in $SERVERS; do
    case $s in
        starling) start_starling ;;
        prosody) setup_prosody && start_prosody ;;
        ejabberd) setup_ejabberd && start_ejabberd && make_accounts_ejabberd ;;
        relay) start_relay ;;
        *) die "unknown server '$s' in SERVERS" ;;
    esac || { say "$s: could not be set up or started; left out"; continue; }
    # A login on the last account proves the copied credentials work; a server without
    # SCRAM-SHA-256 gets PLAIN instead (and the table says so).
    for mech in SCRAM-SHA-256 PLAIN; do
        if "$BIN/starling-bench" login -p "$(eval echo \$PORT_$s)" -c 2 --first $((NUSERS - 1)) \
            --users 2 -n 4 -d 10 --password "$PW" --mech $mech -q >"$RES/check-$s.out" 2>&1; then
            eval MECH_$s=$mech
            SIMPLE_SERVERS="$SIMPLE_SERVERS $s"
            break
        fi
    done
    case " $SIMPLE_SERVERS " in
        *" $s "*) say "$s: up on 127.0.0.1:$(eval echo \$PORT_$s) (pid $(eval echo \$PID_$s)), logins work ($(eval echo \$MECH_$s))" ;;
        *) cat "$RES/check-$s.out"; say "$s: logins fail; left out"; stop_pid "$(eval echo \$PID_$s)" ;;
    esac
done
SERVERS=$SIMPLE_SERVERS
[ -n "$SERVERS" ] || die "no server could be started"

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

# settle PID: waits (30 s at most) until the server has been quiet for a second, below 5 %
# of a core: the sessions of the last run closed, their messages stored offline, its
# garbage collected, so that none of it is counted against the next run.
settle() {
    local a b quiet=0 i
    a=$(cpu_ticks "$1")
    for i in $(seq 1 60); do
        sleep 0.5
        b=$(cpu_ticks "$1")
        if [ $((b - a)) -le 2 ]; then
            quiet=$((quiet + 1))
            [ $quiet -ge 2 ] && return 0
        else
            quiet=0
        fi
        a=$b
    done
    say "the server (pid $1) is still busy after 30 s; going on"
}

# Every run gets a freshly started server, whose start-up work is over before the run
# samples its baseline: what one run leaves behind (sessions closing, messages stored
# offline, caches and tables grown by 1,000 clients, garbage) is never counted against
# the next, so the order of the runs does not matter. (It does for Prosody: kept running,
# it needs about 4 times the CPU per message at 100 clients after one 1,000-client run.)
fresh() {
    local s=$1
    stop_pid "$(eval echo \$PID_$s)"
    if start_$s; then
        settle "$(eval echo \$PID_$s)"
    else
        say "$s: did not start again"
        return 1
    fi
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
