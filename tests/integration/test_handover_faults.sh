#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A handover that runs the VM on exactly one host, whatever fails: two godwitd on loopback, a
# proxy between them (tests/lib/peer_proxy.py) that loses, holds or delays the destination's
# answers, and kill -9 of either daemon at the key phases of a migration, each followed by a
# restart. After every fault the VM runs on one host only and the guest verifies its memory.
#   1. the source's godwitd dies during pre-copy            -> the VM stays on the source
#   2. the source's godwitd dies at the handover, its Commit held and then dropped
#                                                            -> the VM stays on the source
#   3. the destination's godwitd dies during pre-copy: the migration is in doubt (the VM
#      paused), resolve refuses both ways while the destination is down, and its restart
#      settles it                                           -> the VM stays on the source
#  3b. the same, resolved with --keep-source --destination-down while B is down; B restarted
#      afterwards drops its copy                             -> the VM stays on the source
#   4. the source's godwitd dies after the commit, before its answer arrived
#                                                            -> the VM runs on the destination
#   5. the commit's answer is lost while the destination's VMM is stopped (the retried Commit
#      comes while the first still runs)                     -> the VM runs on the destination;
#      meanwhile an Abort is refused and QueryIncoming says COMMITTING; afterwards a Commit
#      succeeds again, an Abort is refused, QueryIncoming says COMMITTED
#   6. godwitd dies while it starts a VM: after its restart and a second start, one VMM runs it
set -u
GODWITD=$1
GODWIT=$2
GUEST=$3
PROTO_DIR=$4
. "$(dirname "$0")/../lib/gw_test.sh"
gw_need_kvm "handover fault tests"
gw_tmp gw-hand
PROXY=$(dirname "$0")/../lib/peer_proxy.py
PEER_CHECK=$(dirname "$0")/../lib/peer_check.py

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Fixed ports: a restarted daemon must be found where the other one's record says it is.
declare -A PORT PID
PORT[a]=$(free_port)
PORT[b]=$(free_port)

daemon() { # NAME: (re)starts godwitd NAME on its port, its state directory kept
	local n=$1
	rm -f "$TMP/$n/listen-address"
	"$GODWITD" --listen "127.0.0.1:${PORT[$n]}" --state-dir "$TMP/$n" --incoming-timeout 120 \
		>>"$TMP/$n.log" 2>&1 &
	PID[$n]=$!
	gw_bg "${PID[$n]}"
	disown
	GW_UNTIL_STEP=0.05 gw_until 120 test -s "$TMP/$n/listen-address" ||
		fail "godwitd $n did not listen within 120 s: $(tail -3 "$TMP/$n.log")"
}
crash() { # NAME: kill -9 of godwitd NAME (its VMMs run on)
	kill -KILL "${PID[$1]}"
	while kill -0 "${PID[$1]}" 2>/dev/null; do sleep 0.05; done
	echo "--- killed -9 ---" >>"$TMP/$1.log"
}
wait_file() { gw_until "$2" test -e "$1"; } # FILE SECONDS
phase_is() { # G-ARRAY ID REGEX: the migration's status (in TMP/st) matches
	local -n pg=$1
	"${pg[@]}" migration status "$2" >"$TMP/st" 2>&1
	grep -Eq -- "$3" "$TMP/st"
}
wait_phase() { # G-ARRAY ID REGEX SECONDS
	GW_UNTIL_STEP=0.25 gw_until "$4" phase_is "$1" "$2" "$3" && return 0
	cat "$TMP/st"
	return 1
}
proxy() { # RULE TARGET [ARGS]: starts the proxy; P is its port, CTL its directory
	local rule=$1 target=$2
	shift 2
	CTL=$(mktemp -d "$TMP/proxy-XXXX")
	/usr/bin/python3 "$PROXY" --rule "$rule" --target "$target" --ctl "$CTL" "$@" \
		>"$CTL/log" 2>&1 &
	PROXY_PID=$!
	gw_bg $PROXY_PID
	# Python's start alone can take many seconds in a loaded test host; the scenarios after
	# this one all need the proxy, so without it the test ends here.
	if ! wait_file "$CTL/port" 120; then
		fail "the proxy ($rule) did not start within 120 s: $(tail -3 "$CTL/log")"
		gw_finish "handover faults"
	fi
	P=$(cat "$CTL/port")
}
migrate() { # G-ARRAY TO TOKEN-FILE [ARGS]: a detached migration; MID is its id
	local -n g=$1
	local to=$2 tok=$3
	shift 3
	# The grant straight from the destination (its state directory holds the token), not
	# through the proxy: the proxy numbers the source daemon's requests (1 PrepareIncoming,
	# 2 Commit).
	"$GODWIT" --host "$(cat "$(dirname "$tok")/listen-address")" --token-file "$tok" \
		migration grant web >"$TMP/grant" 2>/dev/null
	"${g[@]}" --json migrate web --to "$to" --grant-file "$TMP/grant" --detach "$@" >"$TMP/m.json"
	MID=$(jget "$TMP/m.json" "['id']")
}
unverified() { # G-ARRAY SIDE: what the console gave, the VM's state and its VMM's last words
	local -n ug=$1
	echo "       console ($(wc -c <"$TMP/con") bytes):"
	tail -5 "$TMP/con" | sed 's/^/         /'
	"${ug[@]}" vm info web 2>&1 | sed 's/^/         /'
	echo "       $2's vmm.log:"
	tail -15 "$TMP/$2/vms/web/vmm.log" 2>&1 | sed 's/^/         /'
}
on_a_only() { # WHAT
	expect "$1: web runs on A" 0 'web +running' -- "${GA[@]}" vm list
	expect "$1: B holds no VM" 0 'no VMs' -- "${GB[@]}" vm list
	if verified GA web; then pass "$1: the guest verifies its memory on A"; else
		fail "$1: verification on A"
		unverified GA a
	fi
}
on_b_only() { # WHAT
	expect "$1: web runs on B" 0 'web +running' -- "${GB[@]}" vm list
	expect "$1: A holds no VM" 0 'no VMs' -- "${GA[@]}" vm list
	if verified GB web; then pass "$1: the guest verifies its memory on B"; else
		fail "$1: verification on B"
		unverified GB b
	fi
}

# The Python gRPC stubs scenario 5 calls Peer with, made while the rest runs.
/usr/bin/python3 "$PEER_CHECK" "$PROTO_DIR" "$TMP/gen" >"$TMP/gen.log" 2>&1 &
GEN_PID=$!
daemon a
daemon b
A=127.0.0.1:${PORT[a]}
B=127.0.0.1:${PORT[b]}
GA=("$GODWIT" --host "$A" --token-file "$TMP/a/token")
GB=("$GODWIT" --host "$B" --token-file "$TMP/b/token")

expect "create web on A" 0 created -- "${GA[@]}" vm create web --memory 32M --guest "$GUEST" --cmdline dirty:2:300
expect "start web on A" 0 started -- "${GA[@]}" vm start web
sleep 1

# --- 1. the source's godwitd dies during pre-copy ---
migrate GA "$B" "$TMP/b/token" --max-bandwidth 300K
wait_phase GA "$MID" 'phase +precopy' 60 || fail "1: no pre-copy"
crash a
daemon a
expect "1: the restarted source ends the migration, the VM kept" 1 \
	'phase +failed: godwitd restarted during the migration, before its handover: cancelled' -- \
	"${GA[@]}" migration watch "$MID"
on_a_only "1"

# --- 2. the source's godwitd dies at the handover; its Commit never arrives ---
proxy hold "$B"
migrate GA "127.0.0.1:$P" "$TMP/b/token"
if wait_file "$CTL/held-2" 240; then pass "2: the Commit is held at the handover"; else fail "2: no Commit held"; fi
crash a
echo drop >"$CTL/release"
daemon a
expect "2: the restarted source asks B, which aborts: the VM resumes on A" 1 \
	'phase +failed: the destination did not take the VM \(godwitd restarted during the handover\)' -- \
	"${GA[@]}" migration watch "$MID"
on_a_only "2"
kill "$PROXY_PID"

# --- 3. the destination's godwitd dies during pre-copy: in doubt until it is back ---
# Through a proxy that holds the Commit and then drops it: killed this early, B's daemon can
# have seen no commit, however fast the rest of the migration goes.
proxy hold "$B"
migrate GA "127.0.0.1:$P" "$TMP/b/token" --max-bandwidth 1M --downtime-ms 5000
b_waits() { grep -q "incoming migration $MID: waiting on" "$TMP/b.log"; }
GW_UNTIL_STEP=0.05 gw_until 120 b_waits || fail "3: B never prepared the incoming VM"
sleep 0.5 # the prepare's answer on its way
crash b
echo drop >"$CTL/release"
expect "3: B died during pre-copy" 0 'phase +(precopy|stop-and-copy|handover|in-doubt)' -- \
	"${GA[@]}" migration status "$MID"
if wait_phase GA "$MID" 'phase +in-doubt: handover in doubt' 240; then
	pass "3: the source holds the migration in doubt"
else fail "3: not in doubt"; fi
expect "3: migration list shows it in doubt" 0 "$MID .*in-doubt" -- "${GA[@]}" migration list
expect "3: migration list says the VM stays paused" 0 "migration $MID is in doubt: VM web stays paused" -- \
	"${GA[@]}" migration list
expect "3: --json migration list" 0 '"phase":"MIGRATION_PHASE_IN_DOUBT"' -- "${GA[@]}" --json migration list
expect "3: resolve --keep-source is refused while B is down" 1 'did not confirm the abort.*--destination-down' -- \
	"${GA[@]}" migration resolve "$MID" --keep-source
expect "3: resolve --keep-destination is refused while B is down" 1 'the destination did not commit' -- \
	"${GA[@]}" migration resolve "$MID" --keep-destination
expect "3: resolve needs a side" 2 'keep-source or --keep-destination' -- "${GA[@]}" migration resolve "$MID"
expect "3: resolve --help" 0 'Settles a migration in doubt' -- "${GA[@]}" migration resolve --help
daemon b
expect "3: B back, it confirms the abort: the VM resumes on A" 1 \
	'phase +failed: the destination did not take the VM' -- "${GA[@]}" migration watch "$MID"
on_a_only "3"
expect "3: resolve of a settled migration is refused" 1 'not in doubt' -- \
	"${GA[@]}" migration resolve "$MID" --keep-source
kill "$PROXY_PID"

# --- 3b. the same, and the operator knows B is down for good: the VM resumes on A ---
proxy hold "$B"
migrate GA "127.0.0.1:$P" "$TMP/b/token" --max-bandwidth 1M --downtime-ms 5000
GW_UNTIL_STEP=0.05 gw_until 120 b_waits || fail "3b: B never prepared the incoming VM"
sleep 0.5
crash b
echo drop >"$CTL/release"
if wait_phase GA "$MID" 'phase +in-doubt: handover in doubt' 240; then
	pass "3b: the source holds the migration in doubt"
else fail "3b: not in doubt"; fi
expect "3b: resolve --keep-source --destination-down resumes the VM on A" 0 \
	'phase +failed: the destination did not take the VM \(resolved by an operator: the destination is down\)' -- \
	"${GA[@]}" migration resolve "$MID" --keep-source --destination-down
expect "3b: resolve --destination-down goes with --keep-source only" 2 'destination-down' -- \
	"${GA[@]}" migration resolve "$MID" --keep-destination --destination-down
daemon b
# A owes B the abort: it asks again every 5 s until B, restarted, confirms it and drops its
# copy (without A, B's time limit for prepared VMs, 120 s here, would).
b_empty() { "${GB[@]}" vm list 2>&1 | grep -q 'no VMs'; }
GW_UNTIL_STEP=0.25 gw_until 300 b_empty
grep -q "incoming migration $MID aborted: resolved by an operator: the VM runs on the source" "$TMP/b.log" &&
	pass "3b: A's owed abort reached B once it was back" ||
	fail "3b: B dropped its copy without A's abort: $(grep "incoming migration $MID" "$TMP/b.log" | tail -2)"
on_a_only "3b"
kill "$PROXY_PID"

# --- 4. the source's godwitd dies after B committed, before the answer arrived ---
proxy hold-answer "$B"
migrate GA "127.0.0.1:$P" "$TMP/b/token"
if wait_file "$CTL/answered-2" 240; then pass "4: B answered the Commit (held from A)"; else fail "4: no answer to the Commit"; fi
crash a
daemon a
expect "4: the restarted source learns B committed and lets go" 0 'phase +done' -- \
	"${GA[@]}" migration watch "$MID"
on_b_only "4"
kill "$PROXY_PID"

# --- 5. the commit's answer is lost while it still runs; the retried Commit waits for it ---
proxy lose-answer "$A" --stop-pid-file "$TMP/dpid" --stop-s 60
# Asked straight of A (not through the proxy) while the first Commit runs there; started
# first, so that Python is ready when that moment comes.
wait "$GEN_PID"
/usr/bin/python3 "$PEER_CHECK" "$PROTO_DIR" "$TMP/gen" "$A" "grant-of:$TMP/b/migrations" "@$TMP/mid" \
	--after-file "$CTL/lost-2" --after-delay 0.7 --touch-after "$CTL/continue" \
	QueryIncoming Abort >"$TMP/during" 2>&1 &
CHECK_PID=$!
sleep 3
migrate GB "127.0.0.1:$P" "$TMP/a/token" --max-bandwidth 1M --downtime-ms 5000
echo "$MID" >"$TMP/mid"
# A's incoming VMM, found by its unique control socket (no RPC: the commit comes soon).
a_vmm() { DPID=$(pgrep -f -- "--control $TMP/a/vms/web/control.sock"); }
GW_UNTIL_STEP=0.02 gw_until 120 a_vmm || fail "5: no incoming VMM on A"
echo "$DPID" >"$TMP/dpid"
expect "5: the migration ends done although the commit's answer was lost" 0 'phase +done' -- \
	"${GB[@]}" migration watch "$MID"
wait "$CHECK_PID"
if [ $? -eq 77 ]; then
	echo "# skipped the direct Peer calls: $(cat "$TMP/during")"
else
	grep -q '^QueryIncoming OK STATE_COMMITTING' "$TMP/during" &&
		pass "5: QueryIncoming during the commit: COMMITTING" || fail "5: query during: $(cat "$TMP/during")"
	grep -q '^Abort FAILED_PRECONDITION .*being committed' "$TMP/during" &&
		pass "5: an Abort during the commit is refused" || fail "5: abort during: $(cat "$TMP/during")"
	/usr/bin/python3 "$PEER_CHECK" "$PROTO_DIR" "$TMP/gen" "$A" "grant-of:$TMP/b/migrations" "$MID" \
		Commit Abort QueryIncoming >"$TMP/after" 2>&1
	grep -q '^Commit OK' "$TMP/after" && pass "5: a Commit after the commit succeeds again" ||
		fail "5: commit after: $(cat "$TMP/after")"
	grep -q '^Abort FAILED_PRECONDITION .*already committed' "$TMP/after" &&
		pass "5: an Abort after the commit is refused" || fail "5: abort after: $(cat "$TMP/after")"
	grep -q '^QueryIncoming OK STATE_COMMITTED' "$TMP/after" &&
		pass "5: QueryIncoming after the commit: COMMITTED" || fail "5: query after: $(cat "$TMP/after")"
fi
[ -e "$CTL/lost-2" ] && pass "5: the proxy lost the commit's answer" || fail "5: no answer was lost"
ls "$CTL"/stopped-* >/dev/null 2>&1 && pass "5: A's VMM was stopped during the commit" || fail "5: no stop"
grep -q "the commit's answer did not come" "$TMP/b.log" && pass "5: B asked again" || fail "5: B did not retry"
expect "5: web runs on A" 0 'web +running' -- "${GA[@]}" vm list
expect "5: B holds no VM" 0 'no VMs' -- "${GB[@]}" vm list
if verified GA web; then pass "5: the guest verifies its memory on A"; else
	fail "5: verification on A"
	unverified GA a
fi
kill "$PROXY_PID"

# --- 6. godwitd dies while it starts a VM: no orphan VMM for a later start to duplicate ---
expect "6: create web2 on A" 0 created -- "${GA[@]}" vm create web2 --memory 16M --guest "$GUEST" --cmdline dirty:1:300
"${GA[@]}" vm start web2 >/dev/null 2>&1 &
web2_vmm() { pgrep -f -- "--control $TMP/a/vms/web2/control.sock" >/dev/null; }
GW_UNTIL_STEP=0.02 gw_until 120 web2_vmm || fail "6: web2's VMM never started"
crash a # as soon as the VMM was forked: the start never finished
daemon a
"${GA[@]}" vm start web2 >"$TMP/out" 2>&1 # a second start (refused if the first had finished)
N=$(pgrep -fc -- "--control $TMP/a/vms/web2/control.sock")
[ "$N" = 1 ] && pass "6: one VMM for web2 after the restart and a second start" ||
	fail "6: $N VMMs for web2: $(cat "$TMP/out")"
expect "6: web2 runs on A" 0 'web2 +running' -- "${GA[@]}" vm list

gw_failure_hook() {
	for n in a b; do echo "--- godwitd $n ---"; tail -25 "$TMP/$n.log"; done
}
gw_finish "handover faults"
