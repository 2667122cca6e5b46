#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwitd driven through the godwit CLI: VM lifecycle, console, auth, bad input, a crashed
# VMM, garbage on the port, and a daemon restart that re-adopts a running VM.
set -u
GODWITD=$1
GODWIT=$2
GUEST=$3
if [ ! -r /dev/kvm ] || ! : <>/dev/kvm 2>/dev/null; then
	echo "SKIP: the daemon lifecycle test needs a usable /dev/kvm"
	exit 77
fi
TMP=$(mktemp -d /tmp/gw-dc-XXXXXX)
S=$TMP/state
fails=0
DPID=
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null
	pkill -KILL -f "$S/vms/" 2>/dev/null
	sleep 0.2
	rm -rf "$TMP"
}
trap cleanup EXIT

pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }

start_daemon() {
	rm -f "$S/listen-address"
	"$GODWITD" --listen 127.0.0.1:0 --state-dir "$S" >>"$TMP/godwitd.log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do
		[ -s "$S/listen-address" ] && break
		sleep 0.05
	done
	ADDR=$(cat "$S/listen-address")
}

U=(--host "unix:$S/godwitd.sock")
# expect NAME WANT_RC PATTERN -- args to godwit
expect() {
	local name=$1 want=$2 pat=$3
	shift 4
	"$GODWIT" "$@" >"$TMP/out" 2>&1
	local rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$name: exit code $rc, wanted $want"; sed 's/^/       /' "$TMP/out" | tail -5
	elif ! grep -Eq -- "$pat" "$TMP/out"; then
		fail "$name: output lacks /$pat/"; sed 's/^/       /' "$TMP/out" | tail -5
	else
		pass "$name"
	fi
}

state_of() { "$GODWIT" "${U[@]}" --json vm info "$1" 2>/dev/null |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
pid_of() { "$GODWIT" "${U[@]}" --json vm info "$1" 2>/dev/null |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }
wait_state() { # NAME STATE TIMEOUT_S
	for _ in $(seq $(($3 * 10))); do
		[ "$(state_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

start_daemon
[ -n "$ADDR" ] && pass "godwitd serves on $ADDR" || { fail "godwitd did not start"; cat "$TMP/godwitd.log"; exit 1; }
[ "$(stat -c %a "$S/godwitd.sock")" = 600 ] && pass "unix socket is owner-only (0600)" ||
	fail "unix socket mode is $(stat -c %a "$S/godwitd.sock")"

# --- usage ---
expect "no command is a usage error" 2 'Usage' --
expect "--help" 0 'Exit codes' -- --help
expect "vm --help" 0 'create NAME' -- vm --help
expect "unknown command" 2 'unknown command' -- bogus
expect "vm create without a name" 2 'name is required' -- "${U[@]}" vm create --memory 32M --guest "$GUEST"
expect "bad size syntax" 2 'bad memory size' -- "${U[@]}" vm create x --memory lots --guest "$GUEST"

# --- host info and auth ---
expect "host info over the unix socket" 0 'kvm +available' -- "${U[@]}" host info
expect "TCP without a token is refused" 1 'UNAUTHENTICATED: missing bearer token' -- --host "$ADDR" host info
echo "not-the-token" >"$TMP/wrong"
expect "TCP with a wrong token is refused" 1 'UNAUTHENTICATED: wrong bearer token' -- --host "$ADDR" --token-file "$TMP/wrong" vm list
expect "TCP with the token" 0 'vms +0' -- --host "$ADDR" --token-file "$S/token" host info
expect "host info --json" 0 '"kvm":\{"available":true' -- --host "$ADDR" --token-file "$S/token" --json host info

# --- create and bad input ---
expect "create" 0 'vm web created' -- "${U[@]}" vm create web --memory 32M --guest "$GUEST" --cmdline dirty:1:50
expect "duplicate name" 1 'ALREADY_EXISTS' -- "${U[@]}" vm create web --memory 32M --guest "$GUEST"
expect "malformed name" 1 'INVALID_ARGUMENT: VM name' -- "${U[@]}" vm create 'We b' --memory 32M --guest "$GUEST"
expect "zero size" 1 'INVALID_ARGUMENT: memory size is zero' -- "${U[@]}" vm create z --memory 0 --guest "$GUEST"
expect "too large" 1 'INVALID_ARGUMENT: memory size' -- "${U[@]}" vm create z --memory 30G --guest "$GUEST"
expect "missing guest file" 1 'INVALID_ARGUMENT: guest image /no/such' -- "${U[@]}" vm create z --memory 32M --guest /no/such/guest
expect "unknown VM" 1 "NOT_FOUND: no VM named 'nope'" -- "${U[@]}" vm info nope
expect "--json error" 1 '"error":\{"code":"NOT_FOUND"' -- "${U[@]}" --json vm info nope

# --- start, console, list ---
expect "start" 0 'vm web started \(running\)' -- "${U[@]}" vm start web
expect "start twice" 1 'already running' -- "${U[@]}" vm start web
expect "list shows it running" 0 'web +running +32 MiB' -- "${U[@]}" vm list
expect "console shows the guest" 0 'dirty: pass [0-9]+: all 256 pages ok' -- "${U[@]}" vm console web --timeout 4
expect "delete while running" 1 'FAILED_PRECONDITION' -- "${U[@]}" vm delete web

# --- garbage on the TCP port: the daemon keeps serving ---
/usr/bin/python3 - "$ADDR" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
for junk in (b"\x00" * 64, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 64):
    s = socket.create_connection((host, int(port)))
    s.sendall(junk)
    s.settimeout(2)
    try:
        s.recv(1024)
    except OSError:
        pass
    s.close()
PY
expect "serving after garbage bytes" 0 'web +running' -- --host "$ADDR" --token-file "$S/token" vm list

# --- daemon restart with the VM left running ---
VPID=$(pid_of web)
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=
if kill -0 "$VPID" 2>/dev/null; then pass "VM survives godwitd stopping"; else fail "VM died with godwitd"; fi
start_daemon
if [ "$(state_of web)" = VM_STATE_RUNNING ] && [ "$(pid_of web)" = "$VPID" ]; then
	pass "restarted godwitd re-adopts the running VM (pid $VPID)"
else
	fail "re-adoption: state $(state_of web), pid $(pid_of web), wanted $VPID"
fi
expect "console after re-adoption" 0 'dirty: pass' -- "${U[@]}" vm console web --timeout 3

# --- a VMM that crashes is reported failed; the daemon lives on ---
expect "create crashy" 0 'created' -- "${U[@]}" vm create crashy --memory 32M --guest "$GUEST" --cmdline dirty:1:20
expect "start crashy" 0 'started' -- "${U[@]}" vm start crashy
kill -KILL "$(pid_of crashy)"
if wait_state crashy VM_STATE_FAILED 10; then pass "killed VMM is reported failed"; else fail "crashy is $(state_of crashy)"; fi
expect "failure reason shown" 0 'failed: godwit-vmm was killed \(signal 9\)' -- "${U[@]}" vm info crashy
expect "daemon still serves" 0 'web +running' -- "${U[@]}" vm list

# --- a guest that exits by itself ---
expect "create hello" 0 'created' -- "${U[@]}" vm create hello --memory 32M --guest "$GUEST" --cmdline hello
expect "start hello" 0 'started' -- "${U[@]}" vm start hello
if wait_state hello VM_STATE_STOPPED 20; then pass "guest exit is seen"; else fail "hello is $(state_of hello)"; fi
expect "exit reason" 0 'guest exited with code 0' -- "${U[@]}" vm info hello
expect "restart a stopped VM" 0 'started' -- "${U[@]}" vm start hello
wait_state hello VM_STATE_STOPPED 20

# --- stop and delete ---
expect "stop" 0 'vm web stopped' -- "${U[@]}" vm stop web
# Gone, or a zombie waiting for whatever reaps orphans on this machine: not running either way.
if [ -z "$(ps -o stat= -p "$VPID" | grep -v '^Z')" ]; then pass "VMM process is gone"; else fail "VMM still alive after stop"; fi
expect "stop a stopped VM" 1 'not running' -- "${U[@]}" vm stop web
expect "delete" 0 'vm web deleted' -- "${U[@]}" vm delete web
expect "deleted is gone" 1 'NOT_FOUND' -- "${U[@]}" vm info web
[ -d "$S/vms/web" ] && fail "VM directory left behind" || pass "VM directory removed"
expect "no migrations yet" 0 'no migrations' -- "${U[@]}" migration list
expect "unknown migration" 1 'NOT_FOUND' -- "${U[@]}" migration status 0123456789abcdef

if [ $fails -ne 0 ]; then
	echo "--- godwitd log ---"; tail -30 "$TMP/godwitd.log"
	echo "$fails check(s) failed"
	exit 1
fi
echo "all daemon/CLI checks passed"
