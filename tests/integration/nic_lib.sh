# SPDX-License-Identifier: Apache-2.0
# Shared harness of the NIC integration tests, sourced as
#   . "$(dirname "$0")/nic_lib.sh" PREFIX "$@"
# with the test's arguments GODWITD GODWIT GUEST PEER. Skips (exit 77) without a usable
# /dev/kvm; gives what tests/lib/gw_test.sh gives (TMP, pass, fail, jget, gw_finish, ...) and
# bound, received, wait_for, wait_file, peer_start, peer_stop, peer_wait, gw, mig_why, daemon.
#
# Nothing here assumes how fast the host is: the guest and the device threads may run ten times
# slower in a test host under TCG than on paravirtual KVM. Traffic runs until the test stops
# it, and every wait is for a condition, bounded, and ends in a message when the bound passes.
# The bounds are generous; together they stay inside the test's budget (GW_NIC_BUDGET seconds,
# default 840, under CTest's 900): a wait that would outlast it gives up early, with its message.
GODWITD=$2
GODWIT=$3
GUEST=$4
PEER=$5
. "$(dirname "$0")/../lib/gw_test.sh"
gw_need_kvm "these tests"
gw_tmp "$1"
BUDGET_END=$((SECONDS + ${GW_NIC_BUDGET:-840}))
PEER_PID=
PRC=
# bound SECS: SECS, or what is left of the test's budget when that is less (at least 1).
bound() {
	local left=$((BUDGET_END - SECONDS))
	[ "$left" -ge 1 ] || left=1
	echo $(($1 < left ? $1 : left))
}
# received DIR: echoes the godwit-nicpeer writing DIR/stats.json has seen so far (no Python:
# this runs in every round of a wait, and starting Python is slow on a slow host).
received() {
	local n
	n=$(sed -n 's/.*"received":\([0-9]*\).*/\1/p' "$1/stats.json" 2>/dev/null)
	echo "${n:-0}"
}
# wait_for DIR N [SECS]: until that peer has seen N echoes; at most SECS (default 120) and not
# past the moment the peer ended. 1 when it did not get there.
wait_for() {
	local end=$((SECONDS + $(bound "${3:-120}")))
	while [ "$(received "$1")" -lt "$2" ]; do
		[ "$SECONDS" -lt "$end" ] && [ ! -s "$1/peer.json" ] || return 1
		sleep 0.1
	done
}
# wait_file FILE SECS: until FILE exists and is not empty; at most SECS.
wait_file() {
	local end=$((SECONDS + $(bound "$2")))
	while [ ! -s "$1" ]; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}
# peer_start DIR ARGS...: a godwit-nicpeer with its files in DIR (ready, stats.json, peer.json,
# peer.err) and ARGS added; it sends until peer_stop unless ARGS give --count. Sets PEER_PID.
# It listens on PEER_LISTEN (default udp:127.0.0.1:0).
peer_start() {
	local d=$1
	shift
	mkdir -p "$d"
	"$PEER" --listen "${PEER_LISTEN:-udp:127.0.0.1:0}" --ready-file "$d/ready" --window 8 \
		--wait-announce 300 \
		--stats-file "$d/stats.json" --json --quiet "$@" >"$d/peer.json" 2>"$d/peer.err" &
	PEER_PID=$!
	wait_file "$d/ready" 30 || fail "the traffic peer did not start: $(cat "$d/peer.err")"
}
# peer_end DIR PID SECS: waits at most SECS for the peer to exit, kills it past that; its exit
# code in PRC; fails when it left no report.
peer_end() {
	local end=$((SECONDS + $(bound "$3")))
	while kill -0 "$2" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
	if kill -0 "$2" 2>/dev/null; then
		kill -KILL "$2" 2>/dev/null
		fail "the traffic peer in $1 did not finish within $3 s: $(tail -n 3 "$1/peer.err")"
	fi
	wait "$2" 2>/dev/null
	PRC=$?
	[ -s "$1/peer.json" ] || fail "the traffic peer in $1 left no report: $(tail -n 3 "$1/peer.err")"
}
# peer_stop DIR [PID]: ends the traffic. SIGTERM: no more frames; the ones in flight are echoed
# or, after 2 s, lost; then the peer writes its report to DIR/peer.json.
peer_stop() {
	local pid=${2:-$PEER_PID}
	kill -TERM "$pid" 2>/dev/null
	peer_end "$1" "$pid" 30
}
# peer_wait DIR SECS [PID]: a peer that sends a --count of frames: until it is done.
peer_wait() {
	local pid=${3:-$PEER_PID} end=$((SECONDS + $(bound "$2")))
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "the traffic peer in $1 did not finish its frames within $2 s ($(received "$1") echoed)"
	peer_stop "$1" "$pid"
}
# gw DIR ARGS...: the CLI against the godwitd with its state in DIR. Bounded: GW_NIC_CALL_S
# seconds (default 300; a migration is one call), and it says so when that ran out.
gw() {
	local d=$1 rc limit
	shift
	limit=$(bound "${GW_NIC_CALL_S:-300}")
	timeout -k 5 "$limit" "$GODWIT" --host "$(cat "$d/listen-address" 2>/dev/null)" \
		--token-file "$d/token" "$@"
	rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "godwit $1 $2: no answer within $limit s: killed" >&2
	fi
	return "$rc"
}
# mig_why PREFIX: why the migration whose CLI output is in PREFIX.json and PREFIX.err failed:
# the CLI's message and the error in the last state it printed.
mig_why() {
	local err
	err=$(/usr/bin/python3 -c 'import json,sys
m = json.loads(open(sys.argv[1]).read().strip().split("\n")[-1])
e = m.get("error")
if isinstance(e, dict):
    print("%s: %s" % (e.get("code"), e.get("message")))
else:
    print("last state %s: %s" % (m.get("phase", "?"), e or "(no error)"))' "$1.json" 2>/dev/null)
	echo "$(tr '\n' ' ' <"$1.err" 2>/dev/null)${err:+[$err]}"
}
# daemon NAME ARGS...: a godwitd with state in $TMP/NAME (log $TMP/NAME.log), once it listens.
daemon() {
	local n=$1
	shift
	mkdir -p "$(dirname "$TMP/$n")"
	"$GODWITD" --listen 127.0.0.1:0 --state-dir "$TMP/$n" "$@" >"$TMP/$n.log" 2>&1 &
	disown
	wait_file "$TMP/$n/listen-address" 60 ||
		fail "godwitd $n does not listen after 60 s: $(tail -n 3 "$TMP/$n.log")"
}
