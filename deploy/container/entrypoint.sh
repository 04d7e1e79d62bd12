#!/bin/sh
# The container's entry point: runs the supervisor on /etc/starling/starling.conf
# ($STARLING_CONFIG). A config shared by several nodes (a Kubernetes ConfigMap) cannot
# say which node it runs on, so one that has the line
#     @include "node.conf"
# (inside its cluster group) gets it here. node.conf holds
#     node = "NAME";                       $STARLING_NODE, else the host name
#     nodes = [ "OTHER=IPv4:PORT", ... ];  from $STARLING_PEERS, when set
# $STARLING_PEERS lists every node, itself too, as NAME=HOST:PORT separated by spaces;
# each other node's HOST is looked up (IPv4) here, waiting for it up to
# $STARLING_PEERS_WAIT seconds (60), since cluster.nodes takes addresses only.
# node.conf and a two-line config that includes the shared one go to /run/starling
# ($STARLING_RUN), the folder every @include and relative file name of the config then
# refers to: give the shared config absolute file names. The shared file is read again
# on SIGHUP, as without this. Arguments go to starling before --config: `--check`
# checks the config and starts nothing. $STARLING_BIN is where the programs are
# (/usr/local/bin).
set -eu
CONF=${STARLING_CONFIG:-/etc/starling/starling.conf}
RUN=${STARLING_RUN:-/run/starling}

# resolve HOST: its first IPv4 address, waiting for DNS to know it.
resolve() {
    t=0
    while :; do
        a=$(getent ahostsv4 "$1" | awk 'NR == 1 { print $1 }')
        [ -n "$a" ] && { echo "$a"; return; }
        if [ "$t" -ge "${STARLING_PEERS_WAIT:-60}" ]; then
            echo "starling-entrypoint: cannot resolve $1" >&2
            exit 1
        fi
        sleep 1
        t=$((t + 1))
    done
}

if grep -q '^[[:space:]]*@include "node.conf"' "$CONF"; then
    node=${STARLING_NODE:-$(hostname)}
    mkdir -p "$RUN"
    {
        printf 'node = "%s";\n' "$node"
        if [ -n "${STARLING_PEERS:-}" ]; then
            list=""
            for peer in $STARLING_PEERS; do
                name=${peer%%=*} hostport=${peer#*=}
                [ "$name" = "$node" ] && continue
                addr=$(resolve "${hostport%:*}")
                list="$list${list:+, }\"$name=$addr:${hostport##*:}\""
            done
            printf 'nodes = [ %s ];\n' "$list"
        fi
    } >"$RUN/node.conf"
    printf '# Written by starling-entrypoint: this node is %s.\n@include "%s"\n' \
        "$node" "$(realpath --relative-to="$RUN" "$CONF")" >"$RUN/starling.conf"
    CONF="$RUN/starling.conf"
fi
exec "${STARLING_BIN:-/usr/local/bin}/starling" "$@" --config "$CONF"
