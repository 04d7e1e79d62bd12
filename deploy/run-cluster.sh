#!/bin/sh
# `make cluster`: a three-node cluster on loopback in the foreground, behind HAProxy, with
# a PostgreSQL of its own. Everything it makes stays under var/cluster/:
#   pg/             PostgreSQL's data (initdb once), its socket in pgsock/ only (no TCP)
#   nodeN.conf      node N's config, written at every start (edit this script instead)
#   nodeN.pid       node N's supervisor (admin.pid_file); nodeN.log its log,
#                   nodeN.status what `starlingctl --config DIR/nodeN.conf cluster` shows
#   haproxy.cfg     HAProxy on 127.0.0.1:5222 (STARTTLS) and 127.0.0.1:5223 (Direct TLS),
#                   to the nodes with the PROXY protocol v2, each checked on /ready
#   localhost.crt   one self-signed certificate for the three nodes
# Node N listens on 127.0.0.1N: c2s 5222 and 5223, s2s 5269, its cluster link 5270, its
# admin listener 5280; HAProxy connects to them from 127.0.0.10. The demo accounts of
# `make run` (alice, bob) are made once in the shared database. Ctrl-C stops the nodes,
# then HAProxy, then PostgreSQL.
#
# deploy/run-cluster.sh BUILD_DIR --write-configs DIR writes the node and HAProxy
# configs into DIR (absolute) and starts nothing. For tests, beside a `make cluster`:
# STARLING_CLUSTER_DIR (var/cluster), STARLING_CLUSTER_NET (127.0.0.1: nodes on NET1 to
# NET3, HAProxy's source NET0) and STARLING_CLUSTER_FRONT (127.0.0.1, where HAProxy
# listens). tests/integration/test_deploy.py does both.
set -eu
O=${1:-build/release}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
case $O in
/*) BIN="$O/bin" ;;
*) BIN="$ROOT/$O/bin" ;;
esac
DIR=${STARLING_CLUSTER_DIR:-$ROOT/var/cluster}
NET=${STARLING_CLUSTER_NET:-127.0.0.1}
FRONT=${STARLING_CLUSTER_FRONT:-127.0.0.1}
ONLY_CONFIGS=0
if [ "${2:-}" = "--write-configs" ]; then
    DIR=${3:?"--write-configs needs a folder"}
    ONLY_CONFIGS=1
fi
SOCK="$DIR/pgsock"
PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
HAPROXY=/usr/sbin/haproxy
NODES="1 2 3"

node_addr() { echo "$NET$1"; }

# write_node N: var/cluster/nodeN.conf. The other nodes by name and link address.
write_node() {
    a=$(node_addr "$1")
    peers=""
    for m in $NODES; do
        [ "$m" = "$1" ] && continue
        peers="$peers${peers:+, }\"node$m=$(node_addr "$m"):5270\""
    done
    cat >"$DIR/node$1.conf" <<CONF
# Written by deploy/run-cluster.sh at every start: edit the script, not this file.
domain = "localhost";
storage = {
    backend = "postgresql";
    dsn = "host=$SOCK dbname=starling user=starling";
};
c2s = {
    listen = "$a:5222";
    listen_tls = "$a:5223";
    # Shared by the three nodes, beside this file.
    certificate = "localhost.crt";
    key = "localhost.key";
    # HAProxy connects from ${NET}0 and starts with a PROXY protocol v2 header;
    # clients connecting directly (from 127.0.0.1) need none.
    proxy_from = [ "${NET}0" ];
};
s2s = {
    listen = "$a:5269";
};
admin = {
    listen = "$a:5280";
    # starlingctl drain finds the supervisor there.
    pid_file = "node$1.pid";
};
cluster = {
    node = "node$1";
    listen = "$a:5270";
    nodes = [ $peers ];
    status_file = "node$1.status";
};
CONF
}

write_haproxy() {
    {
        cat <<CONF
# Written by deploy/run-cluster.sh at every start (deploy/haproxy/haproxy.cfg is the
# commented one for production).
defaults
    mode tcp
    log stdout format raw local0
    option tcplog
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout check 3s
    retries 2
    option redispatch
frontend xmpp_starttls
    bind $FRONT:5222
    default_backend xmpp_starttls
frontend xmpp_tls
    bind $FRONT:5223
    default_backend xmpp_tls
CONF
        for be in xmpp_starttls:5222 xmpp_tls:5223; do
            cat <<CONF
backend ${be%:*}
    balance leastconn
    option httpchk GET /ready
    http-check expect status 200
    default-server send-proxy-v2 source ${NET}0 check port 5280 inter 1s fall 2 rise 1
CONF
            for n in $NODES; do
                echo "    server node$n $(node_addr "$n"):${be#*:}"
            done
        done
    } >"$DIR/haproxy.cfg"
}

mkdir -p "$DIR"
for n in $NODES; do write_node "$n"; done
write_haproxy
[ "$ONLY_CONFIGS" = 1 ] && exit 0

for n in $NODES; do
    if [ -f "$DIR/node$n.pid" ] && kill -0 "$(cat "$DIR/node$n.pid")" 2>/dev/null; then
        echo "run-cluster: node$n is running already (pid $(cat "$DIR/node$n.pid")): stop it first" >&2
        exit 1
    fi
done

# PostgreSQL refuses to run as root: as root it runs as the postgres user (or nobody),
# owning its data and socket folders.
AS=""
if [ "$(id -u)" -eq 0 ]; then
    pguser=postgres
    id "$pguser" >/dev/null 2>&1 || pguser=nobody
    AS="setpriv --reuid=$pguser --regid=$(id -g "$pguser") --init-groups"
fi
mkdir -p "$DIR/pg" "$SOCK"
[ -n "$AS" ] && chown "$pguser:" "$DIR/pg" "$SOCK"
chmod 700 "$DIR/pg"
# A clone in root's home (mode 0700) is out of the postgres user's reach: it may then
# search folders it cannot read (CAP_DAC_READ_SEARCH), and nothing more.
if [ -n "$AS" ] && ! $AS sh -c 'cd "$1"' sh "$DIR/pg" 2>/dev/null; then
    AS="$AS --inh-caps=+dac_read_search --ambient-caps=+dac_read_search"
fi
if [ ! -f "$DIR/pg/PG_VERSION" ]; then
    echo "run-cluster: initdb $DIR/pg"
    $AS "$PGBIN/initdb" -D "$DIR/pg" -U starling --auth=trust -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 ||
        { cat "$DIR/initdb.log" >&2; exit 1; }
fi

nodes="" pids=""
stop() {
    rc=$1
    trap - INT TERM EXIT
    set +e
    echo
    echo "run-cluster: stopping"
    # Only what this run started, by the PIDs it got.
    for p in $nodes; do kill -TERM "$p" 2>/dev/null; done
    for p in $nodes; do wait "$p" 2>/dev/null; done
    for n in $NODES; do rm -f "$DIR/node$n.pid"; done
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    # SIGINT is PostgreSQL's fast shutdown: sessions end, what is committed stays.
    [ -n "${pg:-}" ] && kill -INT "$pg" 2>/dev/null
    wait 2>/dev/null || true
    exit "$rc"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

if "$PGBIN/pg_isready" -q -h "$SOCK"; then
    echo "run-cluster: a PostgreSQL is running on $DIR/pg already (pid" \
        "$(head -n 1 "$DIR/pg/postmaster.pid")): stop it first" >&2
    exit 1
fi
# Its own session, so that the terminal's Ctrl-C reaches the nodes and not it: it stops
# last, once the routers finished their writes.
setsid $AS "$PGBIN/postgres" -D "$DIR/pg" -c listen_addresses= \
    -c unix_socket_directories="$SOCK" >"$DIR/pg.log" 2>&1 &
pg=$!
i=0
until kill -0 $pg 2>/dev/null && "$PGBIN/pg_isready" -q -h "$SOCK"; do
    i=$((i + 1))
    if [ $i -ge 100 ] || ! kill -0 $pg 2>/dev/null; then
        echo "run-cluster: PostgreSQL did not start:" >&2
        tail -n 20 "$DIR/pg.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$("$PGBIN/psql" -h "$SOCK" -U starling -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'starling'")" ]; then
    "$PGBIN/createdb" -h "$SOCK" -U starling starling
    echo "run-cluster: created the database starling"
fi

ctl() { "$BIN/starlingctl" --config "$DIR/node1.conf" "$@"; }
if [ ! -f "$DIR/localhost.crt" ] || [ ! -f "$DIR/localhost.key" ]; then
    ctl gencert
fi
for u in alice bob; do
    if ! ctl users | grep -qx "$u@localhost"; then
        ctl adduser "$u@localhost" "$u"
        echo "run-cluster: created demo account $u@localhost (password: $u)"
    fi
done

for n in $NODES; do
    "$BIN/starling" --config "$DIR/node$n.conf" >"$DIR/node$n.log" 2>&1 &
    echo $! >"$DIR/node$n.pid"
    nodes="$nodes $!"
done
"$HAPROXY" -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
haproxy=$!
pids="$pids $haproxy"

sleep 1
for n in $NODES haproxy; do
    case $n in
    haproxy) pid=$haproxy log="$DIR/haproxy.log" ;;
    *) pid=$(cat "$DIR/node$n.pid") log="$DIR/node$n.log" n=node$n ;;
    esac
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run-cluster: $n did not start:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
done

show=${DIR#"$ROOT"/}
cat <<MSG

A three-node starling cluster is starting on localhost, behind HAProxy:
  STARTTLS   $FRONT:5222     Direct TLS   $FRONT:5223
  nodes      ${NET}1, ${NET}2, ${NET}3 (admin: http://${NET}N:5280/ready)
Log in with any XMPP client as alice@localhost / alice or bob@localhost / bob
(the certificate is self-signed: accept it, or pin $show/localhost.crt).
More accounts, seen by every node:
  $O/bin/starlingctl --config $show/node1.conf adduser carol@localhost secret
Logs: $show/node{1,2,3}.log, haproxy.log, pg.log. Stop with Ctrl-C.

MSG
tail -n 0 -F "$DIR"/node1.log "$DIR"/node2.log "$DIR"/node3.log "$DIR"/haproxy.log &
pids="$pids $!"
wait
