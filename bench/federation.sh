#!/bin/bash
# federation.sh [BUILD_DIR]: federation side by side (issue 10). Three pairs of servers
# federating with each other on loopback, starling <-> starling, Prosody <-> Prosody and
# ejabberd <-> ejabberd, each server on an address of its own (c2s on 5222, s2s on 5269
# there), driven by starling-bench with the senders on side A and the receivers on side B
# (`--peer`): every message and presence crosses s2s.
#
# Streams between the servers: STARTTLS, self-signed certificates that the other side
# cannot verify, so every stream authenticates with Server Dialback (XEP-0220), the same
# for all three. Names: starling finds its peer through s2s.routes; Prosody and ejabberd
# resolve through a hosts file of ours (Prosody: libunbound's hoststxt, with the .test
# zone answered locally so that the SRV query fails at once and RFC 6120's fallback to
# the domain on 5269 applies; ejabberd: ERL_INETRC naming that file and no nameserver,
# and the file bound over /etc/hosts in a mount namespace of its own). Nothing
# system-wide is read or changed; no DNS server is needed.
#
# Measurements, interleaved (each round: starling, Prosody, ejabberd; each pair freshly
# started, its s2s streams made by a warm-up before anything is measured):
#   rate   chat at a fixed RATE msgs/s from CLIENTS/2 senders on A to as many receivers
#          on B (latency percentiles)
#   sat    the same closed loop, WINDOW in flight per sender (delivered msgs/s)
#   hub    presence: user1 on A, whose CLIENTS/2 contacts are every user on B, all
#          online, changes presence at PRATE/s (stanzas delivered/s, latency)
#   lrate, lsat  starling only: rate and sat with the same senders and their partners
#          on node A itself, the cost of a local message (issue 10's goal: a remote one
#          at most 1.5 times it)
# Server CPU is that of every process of both servers (starling: supervisor, router, c2s,
# s2s; Prosody: lua; ejabberd: beam.smp and its children), read from /proc by
# starling-bench --server-pid over the measured interval only. After each starling pair
# stops, its fan-out counters are read from its logs (the router's "remote contacts in N
# frames to s2s", s2s's "presence fan-out: F frames carried S stanzas").
#
# Output: OUT/federation/ (every run's JSON and log, the servers' configs and logs of the
# last round, summary.md: medians, spread, ratios to starling). Exit status 0 when every
# run ended cleanly (nothing lost, no error), 1 otherwise.
#
# Environment (defaults in parentheses):
#   ROUNDS (3)  DURATION seconds per run (10)  CLIENTS both sides together (1000)
#   RATE (500)  WINDOW (2)  PRATE presence changes/s of the hub (2)
#   SERVERS ("starling prosody ejabberd")  MEASUREMENTS ("rate sat hub lrate lsat")
#   OUT (build/bench)  KEEP=1 keeps the servers' folders (/tmp/starling-federation.*)
#   PROSODY_LOG (warn; debug logs every stanza)
#   STARLING_S2S: more directives for both starling nodes' s2s group, e.g.
#   "multicast_max = 0;" to measure the broadcast without XEP-0033
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
CLIENTS=${CLIENTS:-1000}
RATE=${RATE:-500}
WINDOW=${WINDOW:-2}
PRATE=${PRATE:-2}
SERVERS=${SERVERS:-starling prosody ejabberd}
MEASUREMENTS=${MEASUREMENTS:-rate sat hub lrate lsat}
OUT=${OUT:-$ROOT/build/bench}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
RES=$OUT/federation
PW=password
T_START=$(date +%s)

say() { printf 'federation: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

for p in starling starlingctl starling-bench starling-s2s; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing (make first)"
done
for s in $SERVERS; do
    case $s in
        prosody) command -v prosody >/dev/null || die "prosody is not installed (Debian's prosody)" ;;
        ejabberd) [ -x /usr/sbin/ejabberdctl ] || die "ejabberd is not installed (Debian's ejabberd)" ;;
        starling) ;;
        *) die "unknown server '$s' in SERVERS" ;;
    esac
done
[ $((CLIENTS % 2)) = 0 ] || die "CLIENTS must be even"
ulimit -n 20000 2>/dev/null

# ---- processes we start, and how they all stop ----------------------------------------------
STARTED=""
TMP=""
. bench/procs.sh # descendants, stop_pid, cleanup on exit, cpu_ticks

mkdir -p "$OUT" && rm -rf "$RES" && mkdir -p "$RES" || exit 1
TMP=$(mktemp -d /tmp/starling-federation.XXXXXX) || exit 1
chmod 755 "$TMP" # Prosody runs as its own user when we are root

# ---- addresses: one per server, held with the integration tests' lock files ----------------
LOCK_DIR=/tmp/starling-test-addresses
mkdir -p "$LOCK_DIR" && chmod 1777 "$LOCK_DIR" 2>/dev/null
bindable() { # bindable ADDRESS: nothing on ADDRESS:5222 and :5269
    $PY -c '
import socket, sys
for p in (5222, 5269):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try: s.bind((sys.argv[1], p))
    except OSError: sys.exit(1)
    finally: s.close()' "$1"
}
claim() { # claim: prints a free address of 127.0.3.0/24, its lock held until we exit
    local i a fd
    for i in $(seq 1 254); do
        a=127.0.3.$i
        exec {fd}>"$LOCK_DIR/$a.lock" || continue
        if flock -n "$fd" && bindable "$a"; then
            CLAIMED="$a"
            return 0
        fi
        exec {fd}>&-
    done
    return 1
}
declare -A ADDR DOMAIN BOOT
for s in $SERVERS; do
    for side in a b; do
        claim || die "no free loopback address in 127.0.3.0/24"
        ADDR[$s$side]=$CLAIMED
        DOMAIN[$s$side]=${s:0:1}$side.test # sa.test, pb.test, eb.test...
    done
done
HOSTS=$TMP/hosts
{
    echo "127.0.0.1 localhost"
    for k in "${!ADDR[@]}"; do echo "${ADDR[$k]} ${DOMAIN[$k]}"; done
} >"$HOSTS"
chmod 644 "$HOSTS"

# A self-signed certificate for each domain (nobody can verify it: dialback).
cert() { # cert DIR DOMAIN: DIR/DOMAIN.crt, .key and .pem (both)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=$2" -addext "subjectAltName=DNS:$2" \
        -keyout "$1/$2.key" -out "$1/$2.crt" >/dev/null 2>&1 || return 1
    cat "$1/$2.crt" "$1/$2.key" >"$1/$2.pem"
}

wait_log() { # wait_log FILE TEXT COUNT PID: until FILE holds TEXT COUNT times (60 s)
    for _ in $(seq 1 300); do
        [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# ---- starling ---------------------------------------------------------------------------------
setup_starling() { # setup_starling SIDE
    local d=$TMP/starling-$1 dom=${DOMAIN[starling$1]} a=${ADDR[starling$1]}
    mkdir -p "$d" && cert "$d" "$dom" || return 1
    cat >"$d/starling.conf" <<EOF
# Written by bench/federation.sh.
domain = "$dom";
log = { level = "info"; };
storage = { path = "$d/starling.db"; };
c2s = { listen = "$a:5222"; listen_tls = ""; certificate = "$d/$dom.crt"; key = "$d/$dom.key";
        require_encryption = false; allow_plain_without_tls = true; login_rate = 0; };
s2s = { listen = "$a:5269";
        routes = [ "${DOMAIN[starlinga]}=${ADDR[starlinga]}:5269", "${DOMAIN[starlingb]}=${ADDR[starlingb]}:5269" ];
        ${STARLING_S2S:-} };
EOF
    "$BIN/starlingctl" --config "$d/starling.conf" adduser "user1@$dom" "$PW" >"$d/ctl.log" 2>&1 &&
        $PY bench/clone_accounts.py "$d/starling.db" "$CLIENTS" >>"$d/ctl.log" || { cat "$d/ctl.log"; return 1; }
}
start_starling() { # start_starling SIDE: PID in SPID
    local d=$TMP/starling-$1
    : >"$d/server.log" # one boot's log: its fan-out counters are read when it stops
    "$BIN/starling" --config "$d/starling.conf" >>"$d/server.log" 2>&1 &
    SPID=$!
    STARTED="$STARTED $SPID"
    wait_log "$d/server.log" "s2s is serving" 1 "$SPID" &&
        wait_log "$d/server.log" "c2s is serving" 1 "$SPID" ||
        { tail -n 20 "$d/server.log"; return 1; }
}

# ---- Prosody ---------------------------------------------------------------------------------
as_prosody() {
    if [ "$(id -u)" = 0 ]; then setpriv --reuid=prosody --regid=prosody --clear-groups "$@"; else "$@"; fi
}
setup_prosody() {
    local d=$TMP/prosody-$1 dom=${DOMAIN[prosody$1]} a=${ADDR[prosody$1]} acc
    mkdir -p "$d/data" "$d/certs" && cert "$d/certs" "$dom" || return 1
    # As in compare.sh (no mod_limits, the blocklist cache above the accounts), plus
    # dialback; names from our hosts file only.
    cat >"$d/prosody.cfg.lua" <<EOF
-- Written by bench/federation.sh.
pidfile = "$d/prosody.pid"
data_path = "$d/data"
log = { ${PROSODY_LOG:-warn} = "$d/prosody.log" }
admins = { }
plugin_paths = { }
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "carbons", "ping", "blocklist", "posix" }
interfaces = { "$a" }
local_interfaces = { "$a" }
c2s_ports = { 5222 }
s2s_ports = { 5269 }
legacy_ssl_ports = { }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = 4096
storage = "internal"
blocklist_cache_size = 20000
network_settings = { tcp_backlog = 4096 }
unbound = { resolvconf = false, hoststxt = "$HOSTS", options = { ["local-zone:"] = "test. static" } }
certificates = "$d/certs"
VirtualHost "$dom"
EOF
    [ "$(id -u)" = 0 ] && chown -R prosody:prosody "$d"
    prosodyctl --config "$d/prosody.cfg.lua" register user1 "$dom" "$PW" >"$d/register.log" 2>&1 ||
        { cat "$d/register.log"; return 1; }
    acc=$(ls -d "$d"/data/*/accounts | head -n 1)
    as_prosody $PY - "$acc" "$CLIENTS" <<'EOF' || return 1
import os, shutil, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(2, n + 1):
    if not os.path.exists(f"{d}/user{i}.dat"):
        shutil.copyfile(f"{d}/user1.dat", f"{d}/user{i}.dat")
EOF
}
start_prosody() {
    local d=$TMP/prosody-$1
    rm -f "$d/prosody.pid"
    as_prosody prosody --config "$d/prosody.cfg.lua" -F >>"$d/server.log" 2>&1 &
    SPID=$!
    STARTED="$STARTED $SPID"
    for _ in $(seq 1 150); do
        $PY -c "import socket; socket.create_connection(('${ADDR[prosody$1]}', 5222), 1)" 2>/dev/null && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.2
    done
    tail -n 20 "$d/server.log" "$d/prosody.log"
    return 1
}

# ---- ejabberd ------------------------------------------------------------------------------
# As the integration tests' peers: the VM without distribution (no epmd, no node port),
# accounts made by an -eval at boot (user1 registered, its passwd record copied under the
# other names, as compare.sh does), /etc/hosts and /etc/resolv.conf ours in a mount
# namespace (ejabberd 23.01 resolves addresses through libc).
setup_ejabberd() {
    local d=$TMP/ejabberd-$1 dom=${DOMAIN[ejabberd$1]} a=${ADDR[ejabberd$1]}
    mkdir -p "$d/spool" "$d/logs" && cert "$d" "$dom" || return 1
    # No nameserver: SRV queries fail at once (nxdomain), addresses come from our hosts.
    printf '{resolv_conf, ""}.\n{hosts_file, "%s"}.\n{lookup, [file]}.\n' "$HOSTS" >"$d/inetrc"
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$d/resolv.conf"
    cat >"$d/ejabberd.yml" <<EOF
# Written by bench/federation.sh.
loglevel: warning
hosts:
  - "$dom"
certfiles:
  - "$d/$dom.pem"
acme:
  auto: false
s2s_use_starttls: required
s2s_dns_timeout: 2
s2s_dns_retries: 1
outgoing_s2s_families:
  - ipv4
outgoing_s2s_ipv4_address: "$a"
listen:
  -
    port: 5222
    ip: "$a"
    module: ejabberd_c2s
    starttls: true
    starttls_required: false
    shaper: none
    access: c2s
    backlog: 4096
    max_stanza_size: 262144
  -
    port: 5269
    ip: "$a"
    module: ejabberd_s2s_in
    shaper: none
    max_stanza_size: 524288
cache_size: 20000
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
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
  s2s_shaper: none
modules:
  mod_disco: {}
  mod_roster: {}
  mod_carboncopy: {}
  mod_privacy: {}
  mod_blocking: {}
  mod_ping: {}
  mod_offline: {}
  mod_s2s_dialback: {}
EOF
}
start_ejabberd() {
    local d=$TMP/ejabberd-$1 dom=${DOMAIN[ejabberd$1]} libs boot ns
    libs=$(sed -n "s/^ERL_LIBS='\(.*\)'$/\1/p" /usr/sbin/ejabberdctl)
    libs=${libs:-/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)}
    BOOT[ejabberd$1]=$((${BOOT[ejabberd$1]:-0} + 1))
    boot="H = <<\"$dom\">>, case ejabberd_auth:try_register(<<\"user1\">>, H, <<\"$PW\">>) of ok -> ok; {error, exists} -> ok end,
          [P] = mnesia:dirty_read(passwd, {<<\"user1\">>, H}),
          [mnesia:dirty_write(setelement(2, P, {<<\"user\", (integer_to_binary(I))/binary>>, H})) || I <- lists:seq(2, $CLIENTS)],
          io:format(\"federation-bench: ready~n\")."
    ns=(unshare --mount --propagation private)
    [ "$(id -u)" = 0 ] || ns=(unshare --user --map-root-user --mount --propagation private)
    (cd "$d/spool" && exec env -i PATH="$PATH" HOME="$d" EJABBERD_CONFIG_PATH="$d/ejabberd.yml" \
        EJABBERD_LOG_PATH="$d/logs/ejabberd.log" ERL_LIBS="$libs" ERL_INETRC="$d/inetrc" \
        ERL_CRASH_DUMP="$d/logs/erl_crash.dump" ERL_CRASH_DUMP_BYTES=0 ERL_MAX_PORTS=32000 \
        "${ns[@]}" sh -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"' \
        sh "$HOSTS" "$d/resolv.conf" erl -noinput +K true +P 250000 -mnesia dir "\"$d/spool\"" \
        -s ejabberd -eval "$boot" >>"$d/server.log" 2>&1) &
    SPID=$!
    STARTED="$STARTED $SPID"
    wait_log "$d/server.log" "federation-bench: ready" "${BOOT[ejabberd$1]}" "$SPID" ||
        { tail -n 30 "$d/server.log" "$d/logs/ejabberd.log"; return 1; }
}

# ---- one pair ---------------------------------------------------------------------------------
start_pair() { # start_pair SERVER: PID_A, PID_B
    start_$1 a || return 1
    PID_A=$SPID
    start_$1 b || return 1
    PID_B=$SPID
}
stop_pair() {
    stop_pid "$PID_A"
    stop_pid "$PID_B"
    PID_A= PID_B=
}

settle() { # until both servers have been quiet a second (30 s at most)
    local a b quiet=0
    a=$(cpu_ticks "$PID_A" "$PID_B")
    for _ in $(seq 1 60); do
        sleep 0.5
        b=$(cpu_ticks "$PID_A" "$PID_B")
        if [ $((b - a)) -le 3 ]; then quiet=$((quiet + 1)); [ $quiet -ge 2 ] && return 0; else quiet=0; fi
        a=$b
    done
}

B=$BIN/starling-bench
args_of() {
    case $1 in
        warm) echo "chat -c $CLIENTS -w 1 -n $((CLIENTS * 2)) -d 60" ;;
        rate) echo "chat -c $CLIENTS -r $RATE -d $DURATION" ;;
        sat) echo "chat -c $CLIENTS -w $WINDOW -d $DURATION" ;;
        hub) echo "presence --hub -c $CLIENTS --presence-rate $PRATE -d $DURATION" ;;
        # The same senders with their partners on their own node: a local message.
        lrate) echo "chat -c $((CLIENTS / 2)) -r $RATE -d $DURATION" ;;
        lsat) echo "chat -c $((CLIENTS / 2)) -w $WINDOW -d $DURATION" ;;
    esac
}
printf 'measurement\tserver\tround\tstatus\tjson\tcommand\n' >"$RES/runs.tsv"
run() { # run MEASUREMENT SERVER ROUND
    local m=$1 s=$2 r=$3 json rc args
    json=$RES/$m-$s-r$r.json
    args="$(args_of "$m") -H ${ADDR[${s}a]} -D ${DOMAIN[${s}a]} --mech SCRAM-SHA-256"
    case $m in l*) ;; *) args="$args --peer ${ADDR[${s}b]}:5222 --peer-domain ${DOMAIN[${s}b]}" ;; esac
    # shellcheck disable=SC2086
    timeout -k 5 $((DURATION + 200)) "$B" $args --password "$PW" --server-pid "$PID_A,$PID_B" \
        -q -l "$s" -o "$json" >"$RES/$m-$s-r$r.out" 2>&1
    rc=$?
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$s" "$r" "$rc" "$json" "starling-bench $args" >>"$RES/runs.tsv"
    $PY - "$json" "$m" "$s" "$r" "$rc" <<'EOF'
import json, sys
path, m, s, r, rc = sys.argv[1:]
try:
    j = json.load(open(path)); x = j["measured"]
    rate = x.get("msgs_per_s") if m != "hub" else x.get("presence_per_s")
    print(f"federation: {m:5} {s:9} round {r}: {rate} /s, server {j['cpu']['server_us_per_unit']:.1f} us/unit (exit {rc})")
except Exception as e:
    print(f"federation: {m:5} {s:9} round {r}: no result (exit {rc}: {e})")
EOF
}

# The fan-out counters a starling pair logged (the last of each kind per side).
starling_counters() { # starling_counters ROUND
    local side
    for side in a b; do
        {
            echo "round $1 side $side:"
            grep 'remote contacts in' "$TMP/starling-$side/server.log" | tail -n 1
            grep 'presence fan-out: .* frames carried' "$TMP/starling-$side/server.log" | tail -n 1
            grep 'XEP-0033: ' "$TMP/starling-$side/server.log" | tail -n 1
        } >>"$RES/starling-fanout.txt"
    done
}

# ---- set up, then the rounds ------------------------------------------------------------------
for s in $SERVERS; do
    setup_$s a && setup_$s b || die "$s: set-up failed"
    say "$s: ${DOMAIN[${s}a]} on ${ADDR[${s}a]}, ${DOMAIN[${s}b]} on ${ADDR[${s}b]}, $CLIENTS accounts each"
done
say "$ROUNDS round(s); $CLIENTS clients ($((CLIENTS / 2)) per side), $DURATION s per run"
for r in $(seq 1 "$ROUNDS"); do
    for s in $SERVERS; do
        start_pair "$s" || { say "$s: did not start"; stop_pair; continue; }
        # The warm-up makes the streams both ways (TCP, TLS, dialback). In round 1 the hub
        # run subscribes its users to each other across the servers before it measures
        # (kept in the servers' storage for the next rounds).
        run warm "$s" "$r"
        for m in $MEASUREMENTS; do
            case $s/$m in starling/*) ;; */l*) continue ;; esac
            settle
            run "$m" "$s" "$r"
        done
        stop_pair
        [ "$s" = starling ] && starling_counters "$r"
    done
done

# ---- summary ---------------------------------------------------------------------------------
{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "elapsed_s=$(($(date +%s) - T_START))"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) x $(nproc)"
    echo "kernel=$(uname -r)"
    echo "starling=$(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
    echo "prosody=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null)"
    echo "ejabberd=$(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null)"
    echo "erlang=$(dpkg-query -W -f='${Version}' erlang-base 2>/dev/null)"
} >"$RES/meta.env"
for s in $SERVERS; do
    for side in a b; do
        for f in starling.conf prosody.cfg.lua ejabberd.yml server.log prosody.log logs/ejabberd.log; do
            [ -f "$TMP/$s-$side/$f" ] && cp "$TMP/$s-$side/$f" "$RES/$s-$side-$(basename "$f")"
        done
    done
done
$PY "$ROOT/bench/federation-summary" "$RES" >"$RES/summary.md" || die "the summary failed"
cat "$RES/summary.md"
[ -f "$RES/starling-fanout.txt" ] && cat "$RES/starling-fanout.txt"
say "results in $RES ($(($(date +%s) - T_START)) s in all)"
# Exit status: 0 when every run ended cleanly (nothing lost, no error), 1 otherwise.
grep -q '^Every run ended cleanly' "$RES/summary.md"
