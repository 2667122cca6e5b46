#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwit-vfbench (bench/vfbench: the emulated VF's device model with the guest's driver played on
# the host) echoes godwit-nicpeer's frames over a udp: uplink on loopback: every frame comes back
# intact, the device model counts them both ways, and a bad uplink is a usage error. No speed is
# asserted. No KVM, no root.
set -u
VFB=$1
PEER=$2
FRAMES=3000
. "$(dirname "$0")/../lib/gw_test.sh"
gw_tmp gw-vfbench

"$PEER" --listen udp:127.0.0.1:0 --ready-file "$TMP/ready" --count "$FRAMES" --window 32 \
	--wait-announce 30 --json --quiet >"$TMP/peer.json" 2>"$TMP/peer.err" &
peer=$!
gw_bg "$peer"
GW_UNTIL_STEP=0.05 gw_until 120 test -s "$TMP/ready"
if [ ! -s "$TMP/ready" ]; then
	fail "godwit-nicpeer did not bind: $(tail -n 2 "$TMP/peer.err")"
	gw_finish vfbench
fi
"$VFB" --uplink "$(cat "$TMP/ready")" --frames "$FRAMES" --timeout 60 --json >"$TMP/vfb.json" \
	2>"$TMP/vfb.err"
rc=$?
wait "$peer"
prc=$?
if [ "$rc" -eq 0 ] && [ "$(jget "$TMP/vfb.json" "['result']" 2>/dev/null)" = pass ]; then
	pass "godwit-vfbench echoed $FRAMES frames"
else
	fail "godwit-vfbench exit $rc: $(cat "$TMP/vfb.json" "$TMP/vfb.err" | tail -n 3)"
fi
if [ "$prc" -eq 0 ] && [ "$(jget "$TMP/peer.json" "['received']" 2>/dev/null)" = "$FRAMES" ] &&
	[ "$(jget "$TMP/peer.json" "['lost']" 2>/dev/null)" = 0 ] &&
	[ "$(jget "$TMP/peer.json" "['corrupt']" 2>/dev/null)" = 0 ]; then
	pass "the peer got $FRAMES echoes, 0 lost, 0 corrupt"
else
	fail "the peer (exit $prc): $(cat "$TMP/peer.json" "$TMP/peer.err" | tail -n 3)"
fi
# The device model moved every frame both ways (and the announce out).
rx=$(jget "$TMP/vfb.json" "['rx_frames']" 2>/dev/null)
tx=$(jget "$TMP/vfb.json" "['tx_frames']" 2>/dev/null)
if [ "$rx" = "$FRAMES" ] && [ "${tx:-0}" -gt "$FRAMES" ]; then
	pass "device model: rx $rx, tx $tx frames"
else
	fail "device model counts: rx ${rx:-?}, tx ${tx:-?} (wanted rx $FRAMES, tx > $FRAMES)"
fi
expect "a bad uplink is a usage error" 2 "uplink 'bogus:x'" -- "$VFB" --uplink bogus:x --frames 1
expect "--frames wants a number" 2 "bad number" -- "$VFB" --uplink udp:127.0.0.1:9 --frames x
gw_finish vfbench
