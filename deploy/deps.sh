#!/bin/sh
# Installs, from Debian's archive, every package starling needs to build, run and test
# that is not installed yet. Quiet and quick when nothing is missing (one dpkg-query).
set -eu

PKGS="gcc make pkg-config clang libclang-rt-14-dev
liburing-dev android-libboringssl-dev libjemalloc-dev libxxhash-dev
libidn-dev libsqlite3-dev libconfig-dev libexpat1-dev libc-ares-dev dnsmasq-base
python3 python3-pytest python3-slixmpp libstrophe-dev"

installed=" $(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $PKGS 2>/dev/null |
              awk '$2 ~ /^ii/ { printf "%s ", $1 }') "
missing=""
for p in $PKGS; do
    case "$installed" in
    *" $p "*) ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Try without refreshing the index first: on a warm machine that is much faster.
$SUDO apt-get install -y -q $missing >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q $missing >/dev/null
}
