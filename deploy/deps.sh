#!/bin/sh
# Installs, from Debian's archive, every package starling needs to build, run and test
# that is not installed yet. Quiet and quick when nothing is missing (one dpkg-query).
#
# The federation tests (tests/integration/peers.py) run their own Prosody, ejabberd and
# dnsmasq, the cluster tests their own PostgreSQL and HAProxy, each with a config of theirs
# on an address of its own: the system services the prosody, ejabberd, erlang-base (epmd),
# postgresql and haproxy packages would start on install are kept from
# starting (policy-rc.d) and then disabled (systemctl, or update-rc.d without systemd).
# tests/integration/test_deploy.py checks deploy/ with systemd-analyze (systemd; never
# started here), haproxy -c and python3-yaml.
# tests/integration/test_converse.py runs Converse.js (from npm, see converse() below) in
# Debian's Chromium, driven by chromium-driver and python3-selenium.
# Nothing else of theirs (configs, data in /var/lib) is touched.
set -eu

PKGS="gcc make pkg-config clang libclang-rt-14-dev
liburing-dev android-libboringssl-dev libjemalloc-dev libxxhash-dev
libidn-dev libsqlite3-dev libconfig-dev libexpat1-dev libc-ares-dev dnsmasq-base
python3 python3-pytest python3-slixmpp python3-cryptography python3-prometheus-client libstrophe-dev
prosody lua-unbound ejabberd erlang-base util-linux
postgresql libpq-dev libnanomsg-dev haproxy systemd python3-yaml
chromium chromium-driver python3-selenium"
# npm fetches Converse.js (below); a machine whose nodejs brings its own npm keeps it.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

# Converse.js, the browser client tests/integration/test_converse.py runs in Chromium:
# pinned, from the npm registry, unpacked into build/converse/package (build/ is not the
# tree's). Fetched again only when the version changes.
CONVERSE_VERSION=14.0.0
converse() {
    dir="$(dirname "$0")/../build/converse"
    [ "$(cat "$dir/version" 2>/dev/null)" = "$CONVERSE_VERSION" ] && return 0
    echo "deps: Converse.js $CONVERSE_VERSION from npm"
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "converse.js@$CONVERSE_VERSION" >/dev/null &&
        tar xzf "converse.js-$CONVERSE_VERSION.tgz" && rm "converse.js-$CONVERSE_VERSION.tgz")
    echo "$CONVERSE_VERSION" >"$dir/version"
}

installed=" $(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $PKGS 2>/dev/null |
              awk '$2 ~ /^ii/ { printf "%s ", $1 }') "
missing=""
for p in $PKGS; do
    case "$installed" in
    *" $p "*) ;;
    *) missing="$missing $p" ;;
    esac
done
if [ -z "$missing" ]; then
    converse
    exit 0
fi

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

# The servers' system services are never started: a policy-rc.d (invoke-rc.d's and
# deb-systemd-invoke's veto) for the time of the install, unless the machine has one of
# its own (containers usually do, refusing everything already).
POLICY=/usr/sbin/policy-rc.d
case "$missing" in
*prosody* | *ejabberd* | *erlang-base* | *postgresql* | *haproxy*)
    if [ ! -e $POLICY ]; then
        trap '$SUDO rm -f $POLICY' EXIT
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee $POLICY >/dev/null
        $SUDO chmod 755 $POLICY
    fi ;;
esac

# Try without refreshing the index first: on a warm machine that is much faster.
$SUDO apt-get install -y -q $missing >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q $missing >/dev/null
}

# ... and disabled, so that no boot starts them either.
for p in $missing; do
    case $p in
    prosody | ejabberd | haproxy) units="$p" ;;
    postgresql) units="postgresql" ;;
    erlang-base) units="epmd.socket epmd.service" ;;
    *) continue ;;
    esac
    for u in $units; do
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
            $SUDO systemctl disable --now "$u" >/dev/null 2>&1 || true
        elif [ -e "/etc/init.d/$u" ] && command -v update-rc.d >/dev/null 2>&1; then
            $SUDO update-rc.d "$u" disable >/dev/null 2>&1 || true
        fi
    done
done

converse
