# SPDX-License-Identifier: Apache-2.0
# Shared harness of the NIC integration tests, sourced as
#   . "$(dirname "$0")/nic_lib.sh" PREFIX "$@"
# with the test's arguments GODWITD GODWIT GUEST PEER. Skips (exit 77) without a usable
# /dev/kvm; gives TMP (removed at exit, with every process whose arguments name it), pass,
# fail, jget, received, wait_for, daemon and finish.
GODWITD=$2
GODWIT=$3
GUEST=$4
PEER=$5
if [ ! -r /dev/kvm ] || ! : <>/dev/kvm 2>/dev/null; then
	echo "SKIP: these tests need a usable /dev/kvm"
	exit 77
fi
TMP=$(mktemp -d "/tmp/$1-XXXXXX")
fails=0
cleanup() {
	pkill -KILL -f "$TMP/" 2>/dev/null
	wait 2>/dev/null
	sleep 0.2
	rm -rf "$TMP"
}
trap cleanup EXIT
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
jget() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }
# received DIR: echoes the godwit-nicpeer writing DIR/stats.json has seen so far.
received() { [ -s "$1/stats.json" ] && jget "$1/stats.json" "['received']" || echo 0; }
# wait_for DIR N: until that peer has seen N echoes (at most 60 s).
wait_for() {
	for _ in $(seq 600); do [ "$(received "$1")" -ge "$2" ] && return 0; sleep 0.1; done
	return 1
}
# daemon NAME ARGS...: a godwitd with state in $TMP/NAME (log $TMP/NAME.log), once it listens.
daemon() {
	local n=$1
	shift
	mkdir -p "$(dirname "$TMP/$n")"
	"$GODWITD" --listen 127.0.0.1:0 --state-dir "$TMP/$n" "$@" >"$TMP/$n.log" 2>&1 &
	disown
	for _ in $(seq 100); do [ -s "$TMP/$n/listen-address" ] && break; sleep 0.05; done
}
# finish WHAT: the verdict and the exit code.
finish() {
	[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
	echo "all $1 tests passed"
}
