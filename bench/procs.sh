# bench/procs.sh, sourced by bench/compare.sh and bench/federation.sh: the processes a
# benchmark script starts and how they all stop. The script sets STARTED (root PIDs of
# every server it started, space-separated), TMP (its temporary folder, or "") and a say
# function; cleanup runs on exit however the script exits, and stops only those PIDs and
# their descendants.

# The PIDs of pid's descendants, deepest last (from /proc, found afresh).
descendants() {
    local k
    for k in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$k"
        descendants "$k"
    done
}

# stop_pid PID: SIGTERM to PID, up to 15 s for it to go, then SIGKILL to whatever is left
# of it and of the descendants it had when we asked.
stop_pid() {
    local pid=$1 kids k
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kids=$(descendants "$pid")
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        for k in $pid $kids; do kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null; done
    fi
    wait "$pid" 2>/dev/null
    STARTED=$(echo "$STARTED" | tr ' ' '\n' | grep -vx "$pid" | tr '\n' ' ')
    return 0
}

cleanup() {
    local pid
    for pid in $STARTED; do stop_pid "$pid"; done
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        if [ "${KEEP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# CPU ticks (1/100 s) used so far by the PIDs given and their descendants.
cpu_ticks() {
    local t=0 p v
    for p in "$@" $(for q in "$@"; do descendants "$q"; done); do
        v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
        t=$((t + ${v:-0}))
    done
    echo $t
}
