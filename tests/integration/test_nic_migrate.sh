#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A VM with an emulated VF live-migrates between two godwitd (same generation) while
# godwit-nicpeer keeps traffic flowing through it: corruption 0, duplicates 0, loss no more
# than the frames sent while the VM was not running, and the guest keeps echoing on the
# destination.
set -u
GODWITD=$1
GODWIT=$2
GUEST=$3
PEER=$4
if [ ! -r /dev/kvm ] || ! : <>/dev/kvm 2>/dev/null; then
	echo "SKIP: migration tests need a usable /dev/kvm"
	exit 77
fi
TMP=$(mktemp -d /tmp/gw-nicmig-XXXXXX)
fails=0
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	pkill -KILL -f "$TMP/" 2>/dev/null
	sleep 0.2
	rm -rf "$TMP"
}
trap cleanup EXIT
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
jget() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

# A steady rate keeps frames flowing for about 12 s, so the migration happens mid-stream.
COUNT=${GW_NIC_MIGRATE_FRAMES:-4800}
RATE=${GW_NIC_MIGRATE_RATE:-400}
# The traffic peer is "the switch" both hosts' PFs are cabled to.
"$PEER" --listen udp:127.0.0.1:0 --ready-file "$TMP/ready" --count "$COUNT" --rate "$RATE" --window 8 \
	--wait-announce 120 --stats-file "$TMP/stats.json" --json --quiet \
	>"$TMP/peer.json" 2>"$TMP/peer.err" &
peer=$!
PIDS+=("$peer")
for _ in $(seq 100); do [ -s "$TMP/ready" ] && break; sleep 0.05; done
UPLINK=$(cat "$TMP/ready")

daemon() { # NAME [extra args]
	local n=$1
	shift
	"$GODWITD" --listen 127.0.0.1:0 --state-dir "$TMP/$n" "$@" >"$TMP/$n.log" 2>&1 &
	PIDS+=($!)
	disown
	for _ in $(seq 100); do [ -s "$TMP/$n/listen-address" ] && break; sleep 0.05; done
}
daemon a --emul-nic "gen=1,vfs=2,uplink=$UPLINK"
daemon b --emul-nic "gen=1,vfs=2,uplink=$UPLINK"
A=$(cat "$TMP/a/listen-address")
B=$(cat "$TMP/b/listen-address")
GA=("$GODWIT" --host "$A" --token-file "$TMP/a/token")
GB=("$GODWIT" --host "$B" --token-file "$TMP/b/token")

"${GA[@]}" vm create echo1 --memory 64M --guest "$GUEST" --cmdline nic-echo --nic vf \
	>"$TMP/out" 2>&1 || { fail "create: $(cat "$TMP/out")"; exit 1; }
"${GA[@]}" vm start echo1 >"$TMP/out" 2>&1 || { fail "start: $(cat "$TMP/out")"; exit 1; }

received() { [ -s "$TMP/stats.json" ] && jget "$TMP/stats.json" "['received']" || echo 0; }
# Migrate once a third of the frames went through, with the traffic still running.
for _ in $(seq 1200); do [ "$(received)" -ge $((COUNT / 3)) ] && break; sleep 0.1; done
before=$(received)
if [ "$before" -lt $((COUNT / 3)) ]; then
	fail "traffic never got going on A (received $before)"
	tail -5 "$TMP/a.log" "$TMP/peer.err"
	exit 1
fi
pass "the guest echoes on A ($before frames so far)"
if "${GA[@]}" --json migrate echo1 --to "$B" --to-token-file "$TMP/b/token" \
	>"$TMP/mig.json" 2>"$TMP/mig.err"; then
	# --json follows the migration as one object per line; the last is the final state.
	down=$(/usr/bin/python3 -c 'import json,sys
m = json.loads(open(sys.argv[1]).read().split("\n")[-2])
print(int(m.get("downtime_us", m.get("downtimeUs", 0))) / 1000)' "$TMP/mig.json" 2>/dev/null)
	pass "migrate A -> B with traffic running (downtime ${down:-?} ms)"
else
	fail "migrate: $(cat "$TMP/mig.err" "$TMP/mig.json")"
fi
wait "$peer"
prc=$?
sent=$(jget "$TMP/peer.json" "['sent']")
got=$(jget "$TMP/peer.json" "['received']")
lost=$(jget "$TMP/peer.json" "['lost']")
dup=$(jget "$TMP/peer.json" "['duplicates']")
bad=$(jget "$TMP/peer.json" "['corrupt']")
ann=$(jget "$TMP/peer.json" "['announces']")
outage=$(jget "$TMP/peer.json" "['sent_during_outage']")
gap=$(jget "$TMP/peer.json" "['max_outage_ms']")
echo "     frames: sent $sent received $got lost $lost duplicates $dup corrupt $bad;" \
	"longest outage ${gap} ms with $outage frames sent during it; announces $ann"
[ "$bad" = 0 ] && pass "no corrupt frame" || fail "$bad corrupt frames"
[ "$dup" = 0 ] && pass "no duplicate frame" || fail "$dup duplicate frames"
if [ "$lost" -le "$outage" ]; then
	pass "lost $lost <= $outage frames sent while the VM was not running"
else
	fail "lost $lost frames, more than the $outage sent during the outage (peer exit $prc)"
fi
[ "$ann" -ge 2 ] && pass "the destination announced the VF's new place" ||
	fail "only $ann announce(s): the destination never spoke"
if [ "$got" -ge $((before + COUNT / 3)) ]; then
	pass "the guest kept echoing on B ($((got - before)) frames after the migration began)"
else
	fail "too few echoes after the migration: $got in all, $before before"
fi
"${GB[@]}" vm info echo1 >"$TMP/info" 2>&1
grep -Eq "running" "$TMP/info" && pass "echo1 runs on B" || fail "echo1 not running on B: $(cat "$TMP/info")"
"${GB[@]}" vm console echo1 --timeout 3 >"$TMP/con" 2>&1
if grep -q "bad [1-9]" "$TMP/con"; then fail "the guest saw bad frames: $(grep bad "$TMP/con" | tail -1)"; fi

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all NIC migration tests passed"
