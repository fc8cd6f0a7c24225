#!/usr/bin/env bash
# Poll popdns's /healthz and announce or withdraw the anycast routes of
# bird.conf (static protocols popdns_anycast4 / popdns_anycast6) with birdc.
#
#   bird-healthcheck.sh [URL]         # default http://127.0.0.1:9153/healthz
#
# Announces after RISE good polls in a row, withdraws after FALL bad ones
# (popdns already applies rise/fall to the local PoP's check, so these are
# short). `touch /etc/popdns/withdraw` withdraws whatever /healthz says.
# Run it as a service (bird-healthcheck.service) next to bird and popdns.
set -u
URL="${1:-http://127.0.0.1:9153/healthz}"
INTERVAL="${INTERVAL:-1}"
RISE="${RISE:-3}"
FALL="${FALL:-2}"
WITHDRAW_FILE="${WITHDRAW_FILE:-/etc/popdns/withdraw}"
PROTOCOLS=(popdns_anycast4 popdns_anycast6)

state=down good=0 bad=0
set_state() {
    local verb=$1
    for p in "${PROTOCOLS[@]}"; do
        birdc -r "$verb" "$p" >/dev/null 2>&1 || birdc "$verb" "$p" >/dev/null
    done
    echo "popdns anycast: $verb (${2})"
}
# Start withdrawn whatever BIRD was doing.
set_state disable "start"
while true; do
    if [ ! -e "$WITHDRAW_FILE" ] && curl -sf -m 1 -o /dev/null "$URL"; then
        good=$((good + 1)) bad=0
    else
        bad=$((bad + 1)) good=0
    fi
    if [ "$state" = down ] && [ "$good" -ge "$RISE" ]; then
        state=up
        set_state enable "$URL answered 200 $RISE times"
    elif [ "$state" = up ] && [ "$bad" -ge "$FALL" ]; then
        state=down
        set_state disable "$URL failed $FALL times or $WITHDRAW_FILE exists"
    fi
    sleep "$INTERVAL"
done
