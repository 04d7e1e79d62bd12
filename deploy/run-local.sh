#!/bin/sh
# `make run`: one node on localhost in the foreground, with the embedded store.
# Everything it makes stays under var/: the config (var/starling.conf, written once from
# the commented defaults, with the admin listener on 127.0.0.1:5280 and the pid file
# var/starling.pid, and a WebSocket listener on 127.0.0.1:5290 for browser clients), a
# self-signed certificate for localhost, the SQLite database with two
# demo accounts. The config's file names are relative to its folder, so the defaults put
# the rest beside it in var/. Ctrl-C stops the node cleanly.
set -eu
O=${1:-build/release}
cd "$(dirname "$0")/.."
BIN="$O/bin"
CONF=var/starling.conf
mkdir -p var

ADMIN_LISTEN=127.0.0.1:5280
WS_LISTEN=127.0.0.1:5290
if [ ! -f "$CONF" ]; then
    # The defaults, but for the admin group's listener and pid file, and c2s's WebSocket
    # listener (plain: a browser on this machine connects to it directly).
    "$BIN/starlingctl" sample-config | awk -v listen="$ADMIN_LISTEN" -v ws="$WS_LISTEN" '
        /^admin = \{/ { admin = 1 }
        /^c2s = \{/ { c2s = 1 }
        admin && /^    listen = "";/ { sub(/""/, "\"" listen "\"") }
        admin && /^    pid_file = "";/ { sub(/""/, "\"starling.pid\"") }
        c2s && /^    websocket_listen = "";/ { sub(/""/, "\"" ws "\"") }
        /^};/ { admin = 0; c2s = 0 }
        { print }' >"$CONF"
    echo "wrote $CONF (the defaults; edit it and restart, or send SIGHUP)"
elif grep -q '^ *[a-z]* = "var/' "$CONF"; then
    # Written when file names were relative to the working directory: "var/starling.db"
    # now means var/var/starling.db.
    sed -i 's|^\( *[a-z]* = "\)var/|\1|' "$CONF"
    echo "$CONF: file names are relative to its folder now; dropped their var/ prefix"
fi
if ! grep -q '^admin = {' "$CONF"; then
    # Written before the admin listener existed.
    printf '\nadmin = {\n    listen = "%s";\n    pid_file = "starling.pid";\n};\n' "$ADMIN_LISTEN" >>"$CONF"
    echo "$CONF: added the admin listener ($ADMIN_LISTEN) and pid file"
fi
"$BIN/starlingctl" --config "$CONF" users >/dev/null 2>&1 || true
if [ ! -f var/localhost.crt ] || [ ! -f var/localhost.key ]; then
    "$BIN/starlingctl" --config "$CONF" gencert
fi
for u in alice bob; do
    if ! "$BIN/starlingctl" --config "$CONF" users | grep -qx "$u@localhost"; then
        "$BIN/starlingctl" --config "$CONF" adduser "$u@localhost" "$u"
        echo "created demo account $u@localhost (password: $u)"
    fi
done

cat <<MSG

starling is starting on localhost:
  STARTTLS   127.0.0.1:5222     Direct TLS   127.0.0.1:5223
  admin      http://$ADMIN_LISTEN/health, /ready, /metrics (admin.listen in $CONF)
  WebSocket  ws://$WS_LISTEN/xmpp-websocket for browser clients such as Converse.js
             (c2s.websocket_listen in $CONF; a config written before it has none)
Log in with any XMPP client as alice@localhost / alice or bob@localhost / bob
(the certificate is self-signed: accept it, or pin var/localhost.crt).
More accounts:  $BIN/starlingctl --config $CONF adduser carol@localhost secret
Stop with Ctrl-C.

MSG
exec "$BIN/starling" --config "$CONF"
