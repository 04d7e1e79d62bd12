# bench/servers.sh, sourced by bench/compare.sh, bench/muc.sh and bench/sm.sh: starling,
# Prosody (Debian's 0.12), ejabberd (Debian's 23.01) and the floor relay, each set up with
# a private configuration, storage and logs under $TMP, on loopback, with accounts; and
# how each is (re)started for a run.
#
# The sourcing script sets: BIN (starling's bin/), PY, RES (its results directory), NUSERS (accounts user1..NUSERS, password $PW), SERVERS (a
# list of starling, prosody, ejabberd, relay), and a say function; it may set, before
# pick_ports:
#   ADDR_starling ADDR_prosody ADDR_ejabberd ADDR_relay   each server's address (127.0.0.1)
# and, before writing the configs (setup_* or write_config_*), hooks for more features:
#   ST_SED       sed expressions applied to starling's sample config (after ours)
#   PR_MODULES   more Prosody modules, e.g. '"smacks", "mam"'
#   PR_GLOBAL    Prosody options before the VirtualHost (global)
#   PR_EXTRA     Lua after it (options of the host, a Component)
#   EJ_MODULES   more ejabberd modules: YAML lines under modules:, indented two spaces
#   EJ_GLOBAL    more top-level ejabberd YAML
# Then: install_servers, servers_init NAME (TMP, a fresh /tmp/starling-NAME.*, the servers'
# folders in it, free ports), servers_start (sets up and starts each of SERVERS,
# checks a login on the last account, and keeps in SERVERS those that work, with
# PORT_s, PID_s, MECH_s, ADDR_s), fresh S (restarts server S and waits until it is quiet);
# for muc.sh and sm.sh, run_one (one starling-bench run recorded in RES) and write_meta.
# Processes are recorded in STARTED for bench/procs.sh, which must be sourced too.

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
ADDR_starling=${ADDR_starling:-127.0.0.1} ADDR_prosody=${ADDR_prosody:-127.0.0.1}
ADDR_ejabberd=${ADDR_ejabberd:-127.0.0.1} ADDR_relay=${ADDR_relay:-127.0.0.1}
ST_SED=${ST_SED:-} PR_MODULES=${PR_MODULES:-} PR_GLOBAL=${PR_GLOBAL:-} PR_EXTRA=${PR_EXTRA:-}
EJ_MODULES=${EJ_MODULES:-} EJ_GLOBAL=${EJ_GLOBAL:-}

# ---- prosody and ejabberd from Debian --------------------------------------------------------

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

servers_init() { # servers_init NAME
    # File descriptors: 10,000 connections need as many on each side.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
    TMP=$(mktemp -d "/tmp/starling-$1.XXXXXX") || exit 1
    chmod 755 "$TMP" # Prosody runs as its own user when we are root: it must reach its dir.
    ST_DIR=$TMP/starling
    PR_DIR=$TMP/prosody
    PR_CFG=$PR_DIR/prosody.cfg.lua
    EJ_DIR=$TMP/ejabberd
    pick_ports
}

# Free ports, asked for together so they differ: starling's c2s, Direct TLS and s2s,
# Prosody's c2s, ejabberd's c2s and Erlang distribution (on 127.0.0.1), the relay's.
pick_ports() {
    set -- $($PY - "$ADDR_starling" "$ADDR_prosody" "$ADDR_ejabberd" "$ADDR_relay" <<'PYEOF'
import socket, sys
st, pr, ej, rl = sys.argv[1:]
ss = []
for a in (st, st, st, pr, ej, "127.0.0.1", rl):
    s = socket.socket()
    s.bind((a, 0))
    ss.append(s)
print(*[s.getsockname()[1] for s in ss])
PYEOF
)
    ST_PORT=$1 ST_TLS=$2 ST_S2S=$3 PR_PORT=$4 EJ_PORT=$5 EJ_DIST=$6 RL_PORT=$7
    PORT_starling=$ST_PORT PORT_prosody=$PR_PORT PORT_ejabberd=$EJ_PORT PORT_relay=$RL_PORT
}

wait_port() { # wait_port ADDR PORT PID: until something accepts on PORT, or PID dies (30 s)
    local i
    for i in $(seq 1 150); do
        $PY -c "import socket; socket.create_connection(('$1', $2), 1)" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# ---- starling -------------------------------------------------------------------------------
# The sample config, with the login pace off (login_rate = 0): the login run comes from
# eight addresses, which c2s.login_rate would hold to 800 logins a second; it measures
# the server, not that limit.
# ST_SED's expressions come last, so they may change ours.
write_config_starling() {
    mkdir -p "$ST_DIR"
    "$BIN/starlingctl" sample-config |
        sed -e "s|\"127.0.0.1:5222\"|\"$ADDR_starling:$ST_PORT\"|" \
            -e "s|\"127.0.0.1:5223\"|\"$ADDR_starling:$ST_TLS\"|" \
            -e "s|\"127.0.0.1:5269\"|\"$ADDR_starling:$ST_S2S\"|" \
            -e 's|login_rate = [0-9]*;|login_rate = 0;|' \
            -e 's|require_encryption = true;|require_encryption = false;|' \
            -e 's|allow_plain_without_tls = false;|allow_plain_without_tls = true;|' \
            -e "${ST_SED:-b}" >"$ST_DIR/starling.conf"
    grep -q "$ADDR_starling:$ST_PORT" "$ST_DIR/starling.conf" &&
        grep -q 'login_rate = 0;' "$ST_DIR/starling.conf" ||
        { say "starling: the sample config changed shape; fix the sed in bench/servers.sh"; return 1; }
}
setup_starling() {
    write_config_starling || return 1
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
    wait_port "$ADDR_starling" "$ST_PORT" "$PID_starling" || { tail -n 20 "$ST_DIR/server.log"; return 1; }
}

# ---- Prosody --------------------------------------------------------------------------------
# As root, Prosody must run as its own user (it refuses root; Debian's unit does the same),
# and prosodyctl switches to that user by itself.
as_prosody() {
    if [ "$(id -u)" = 0 ]; then setpriv --reuid=prosody --regid=prosody --clear-groups "$@"
    else "$@"; fi
}
write_config_prosody() {
    mkdir -p "$PR_DIR/data"
    cp "$ST_DIR/localhost.crt" "$ST_DIR/localhost.key" "$PR_DIR/"
    # The modules: what starling also does for a client (roster, blocking, carbons, disco,
    # ping; offline, presence, message and iq are loaded anyway). Debian's default also
    # loads mod_limits, whose c2s rate of 10 kB/s would throttle the benchmark: not here.
    # mod_blocklist keeps 64 users' blocklists in its cache by default; past that, each
    # message opens the recipient's blocklist and privacy files (absent ones included)
    # and its account file: the cache holds every account here, as ejabberd's do.
    cat >"$PR_CFG" <<EOF
-- Written by bench/servers.sh for one benchmark run.
pidfile = "$PR_DIR/prosody.pid"
data_path = "$PR_DIR/data"
log = { warn = "$PR_DIR/prosody.log" }
admins = { }
plugin_paths = { }
modules_enabled = { "roster", "saslauth", "tls", "disco", "carbons", "ping", "blocklist", "posix"${PR_MODULES:+, $PR_MODULES} }
modules_disabled = { "s2s" }
c2s_ports = { $PR_PORT }
c2s_interfaces = { "$ADDR_prosody" }
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
$PR_GLOBAL
VirtualHost "localhost"
    ssl = { certificate = "$PR_DIR/localhost.crt", key = "$PR_DIR/localhost.key" }
$PR_EXTRA
EOF
    [ "$(id -u)" = 0 ] && chown -R prosody:prosody "$PR_DIR"
    return 0
}
setup_prosody() {
    write_config_prosody || return 1
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
    wait_port "$ADDR_prosody" "$PR_PORT" "$PID_prosody" ||
        { tail -n 20 "$PR_DIR/server.log" "$PR_DIR/prosody.log"; return 1; }
}

# ---- ejabberd -------------------------------------------------------------------------------
# ejabberdctl runs the node as the ejabberd user under su, with epmd, and its node name and
# cookie live in /etc and /var/lib. We run the same VM with the same flags ejabberdctl
# passes (+K true +P 250000, ERL_MAX_PORTS, ERL_MAX_ETS_TABLES, -mnesia dir, -s ejabberd)
# as whoever runs this script, with a private node name, cookie and distribution port
# (-erl_epmd_port, no epmd), so the PID we start is beam.smp itself.
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
write_config_ejabberd() {
    EJ_LIBS=$(sed -n "s/^ERL_LIBS='\(.*\)'$/\1/p" /usr/sbin/ejabberdctl)
    EJ_LIBS=${EJ_LIBS:-/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)}
    mkdir -p "$EJ_DIR/spool" "$EJ_DIR/logs"
    cat "$ST_DIR/localhost.crt" "$ST_DIR/localhost.key" >"$EJ_DIR/localhost.pem"
    # The modules: as for Prosody, what starling also does (mod_blocking needs mod_privacy).
    # Shapers off, a listen backlog for login bursts (the default is 5), stored SCRAM-SHA-256,
    # caches (accounts, rosters, privacy lists) larger than the accounts: at the default of
    # 1,000 entries they thrash ("Shrinking cache") from the 1,000-client runs on.
    cat >"$EJ_DIR/ejabberd.yml" <<EOF
# Written by bench/servers.sh for one benchmark run.
loglevel: warning
hosts:
  - localhost
certfiles:
  - "$EJ_DIR/localhost.pem"
listen:
  -
    port: $EJ_PORT
    ip: "$ADDR_ejabberd"
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
$EJ_MODULES
$EJ_GLOBAL
EOF
}
setup_ejabberd() {
    write_config_ejabberd
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
    wait_port "$ADDR_ejabberd" "$EJ_PORT" "$PID_ejabberd" || { tail -n 20 "$EJ_DIR/server.log"; return 1; }
}
# One account through ejabberd_auth:try_register (what `ejabberdctl register` calls), then
# its passwd record written again under the other names. try_register takes ~7.6 ms an
# account (PBKDF2 in Erlang), over a minute for 10,000.
make_accounts_ejabberd() {
    # The port opens before the auth tables exist: a busy machine gets a few tries.
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        ej_rpc "rpc:call(N, mnesia, wait_for_tables, [[passwd], 1000]) =:= ok orelse halt(1)" \
            >/dev/null 2>&1 && break
        sleep 1
    done
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

# ---- the floor ------------------------------------------------------------------------------
# No accounts: it takes any PLAIN login on trust, so the login check below settles on PLAIN.
start_relay() {
    # A relay just stopped may hold its port for a moment after it exited (the kernel
    # tears its io_uring, and the listening socket with it, down afterwards): a few tries.
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        "$BIN/relay" -H "$ADDR_relay" -p "$RL_PORT" >>"$TMP/relay.log" 2>&1 &
        PID_relay=$!
        STARTED="$STARTED $PID_relay"
        wait_port "$ADDR_relay" "$RL_PORT" "$PID_relay" && return 0
        sleep 0.5
    done
    tail -n 20 "$TMP/relay.log"
    return 1
}

# ---- start everything ------------------------------------------------------------------------
# starling's set-up runs in any case: its certificate serves the others too.
servers_start() {
    local s mech
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
            if "$BIN/starling-bench" login -H "$(eval echo \$ADDR_$s)" -p "$(eval echo \$PORT_$s)" \
                -c 2 --first $((NUSERS - 1)) \
                --users 2 -n 4 -d 10 --password "$PW" --mech $mech -q >"$RES/check-$s.out" 2>&1; then
                eval MECH_$s=$mech
                SIMPLE_SERVERS="$SIMPLE_SERVERS $s"
                break
            fi
        done
        case " $SIMPLE_SERVERS " in
            *" $s "*) say "$s: up on $(eval echo \$ADDR_$s):$(eval echo \$PORT_$s) (pid $(eval echo \$PID_$s)), logins work ($(eval echo \$MECH_$s))" ;;
            *) cat "$RES/check-$s.out"; say "$s: logins fail; left out"; stop_pid "$(eval echo \$PID_$s)" ;;
        esac
    done
    SERVERS=$SIMPLE_SERVERS
    [ -n "$SERVERS" ] || die "no server could be started"
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


# ---- runs of bench/muc.sh and bench/sm.sh ----------------------------------------------------
# run_one MEASUREMENT SERVER ROUND LIMIT ARGS...: starling-bench ARGS against SERVER (its
# address, port, mechanism and PID added), at most LIMIT seconds; its JSON and output go
# to RES, a line to RES/runs.tsv (which the caller starts with its header), one about the
# result to stdout. The exit status is left in RC.
run_one() {
    local m=$1 s=$2 r=$3 limit=$4 addr port pid mech json
    shift 4
    addr=$(eval echo \$ADDR_$s) port=$(eval echo \$PORT_$s) pid=$(eval echo \$PID_$s)
    mech=$(eval echo \$MECH_$s)
    json=$RES/$m-$s-r$r.json
    timeout -k 5 "$limit" "$BIN/starling-bench" "$@" -H "$addr" -p "$port" --mech "$mech" \
        --password "$PW" --server-pid "$pid" -q -l "$s" -o "$json" >"$RES/$m-$s-r$r.out" 2>&1
    RC=$?
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$s" "$r" "$RC" "$json" \
        "starling-bench $* -H $addr -p $port --mech $mech --server-pid $pid" >>"$RES/runs.tsv"
    say "$(printf '%-5s %-8s round %s: %s' "$m" "$s" "$r" \
        "$($PY bench/ratio-summary --one "$json" 2>/dev/null || echo "no result (exit $RC)")")"
}

# write_meta KEY=VALUE...: RES/meta.env, the machine and versions with the caller's keys.
write_meta() {
    {
        echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "elapsed_s=$(($(date +%s) - T_START))"
        printf '%s\n' "$@"
        echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
        echo "ncpu=$(nproc)"
        echo "starling=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
        echo "prosody=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null)"
        echo "ejabberd=$(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null)"
        echo "servers=$SERVERS"
    } >"$RES/meta.env"
    cp "$ST_DIR/starling.conf" "$PR_CFG" "$EJ_DIR/ejabberd.yml" "$RES/" 2>/dev/null
}
