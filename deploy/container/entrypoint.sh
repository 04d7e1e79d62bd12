#!/bin/sh
# The container's entry point: runs the supervisor on /etc/starling/starling.conf
# ($STARLING_CONFIG). A config shared by several nodes (a Kubernetes ConfigMap) cannot
# name the node it runs on, so one that has the line
#     @include "node.conf"
# (inside its cluster group) gets it here: node.conf says `node = "NAME";`, NAME being
# $STARLING_NODE or else the host name (a StatefulSet's pod name: starling-0, ...).
# node.conf and a two-line config that includes the shared one go to /run/starling
# ($STARLING_RUN), the folder every @include and relative file name of the config then
# refers to: give the shared config absolute file names. The shared file is read again
# on SIGHUP, as without this. Arguments go to starling before --config: `--check`
# checks the config and starts nothing. $STARLING_BIN is where the programs are
# (/usr/local/bin).
set -eu
CONF=${STARLING_CONFIG:-/etc/starling/starling.conf}
RUN=${STARLING_RUN:-/run/starling}
if grep -q '^[[:space:]]*@include "node.conf"' "$CONF"; then
    node=${STARLING_NODE:-$(hostname)}
    mkdir -p "$RUN"
    printf 'node = "%s";\n' "$node" >"$RUN/node.conf"
    printf '# Written by starling-entrypoint: this node is %s.\n@include "%s"\n' \
        "$node" "$(realpath --relative-to="$RUN" "$CONF")" >"$RUN/starling.conf"
    CONF="$RUN/starling.conf"
fi
exec "${STARLING_BIN:-/usr/local/bin}/starling" "$@" --config "$CONF"
