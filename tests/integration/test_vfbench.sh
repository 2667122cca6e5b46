#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwit-vfbench (bench/vfbench: the emulated VF's device model with the guest's driver played on
# the host) echoes godwit-nicpeer's frames over a udp: uplink on loopback, and over a dpdk: uplink
# whose far end is godwit-nicpeer's own dpdk: port (net_memif, shared memory): every frame comes
# back intact, the device model counts them both ways, and a bad uplink is a usage error. No
# speed is asserted. No KVM, no root.
set -u
VFB=$1
PEER=$2
FRAMES=3000
. "$(dirname "$0")/../lib/gw_test.sh"
gw_tmp gw-vfbench

# echo_run NAME PEER-LISTEN UPLINK: the peer sends FRAMES frames and godwit-vfbench echoes them
# (UPLINK "peer": the spec the peer bound, from its ready file).
echo_run() {
	local name=$1 listen=$2 uplink=$3
	rm -f "$TMP/ready"
	"$PEER" --listen "$listen" --ready-file "$TMP/ready" --count "$FRAMES" --window 32 \
		--wait-announce 30 --json --quiet >"$TMP/peer.json" 2>"$TMP/peer.err" &
	local peer=$!
	gw_bg "$peer"
	GW_UNTIL_STEP=0.05 gw_until 120 test -s "$TMP/ready"
	if [ ! -s "$TMP/ready" ]; then
		fail "$name: godwit-nicpeer did not bind: $(tail -n 2 "$TMP/peer.err")"
		kill "$peer" 2>/dev/null
		return
	fi
	[ "$uplink" != peer ] || uplink=$(cat "$TMP/ready")
	"$VFB" --uplink "$uplink" --frames "$FRAMES" --timeout 60 --json >"$TMP/vfb.json" \
		2>"$TMP/vfb.err"
	local rc=$?
	wait "$peer"
	local prc=$?
	if [ "$rc" -eq 0 ] && [ "$(jget "$TMP/vfb.json" "['result']" 2>/dev/null)" = pass ]; then
		pass "$name: godwit-vfbench echoed $FRAMES frames"
	else
		fail "$name: godwit-vfbench exit $rc: $(cat "$TMP/vfb.json" "$TMP/vfb.err" | tail -n 3)"
	fi
	if [ "$prc" -eq 0 ] && [ "$(jget "$TMP/peer.json" "['received']" 2>/dev/null)" = "$FRAMES" ] &&
		[ "$(jget "$TMP/peer.json" "['lost']" 2>/dev/null)" = 0 ] &&
		[ "$(jget "$TMP/peer.json" "['corrupt']" 2>/dev/null)" = 0 ]; then
		pass "$name: the peer got $FRAMES echoes, 0 lost, 0 corrupt"
	else
		fail "$name: the peer (exit $prc): $(cat "$TMP/peer.json" "$TMP/peer.err" | tail -n 3)"
	fi
	# The device model moved every frame both ways (and the announce out).
	local rx tx
	rx=$(jget "$TMP/vfb.json" "['rx_frames']" 2>/dev/null)
	tx=$(jget "$TMP/vfb.json" "['tx_frames']" 2>/dev/null)
	if [ "$rx" = "$FRAMES" ] && [ "${tx:-0}" -gt "$FRAMES" ]; then
		pass "$name: device model: rx $rx, tx $tx frames"
	else
		fail "$name: device model counts: rx ${rx:-?}, tx ${tx:-?} (wanted rx $FRAMES, tx > $FRAMES)"
	fi
}
echo_run udp udp:127.0.0.1:0 peer
# Both ends DPDK, over shared memory (net_memif): the peer serves, the VF's uplink connects.
echo_run memif "dpdk:net_memif0,role=server,socket=$TMP/memif.sock" \
	"dpdk:net_memif0,role=client,socket=$TMP/memif.sock"
expect "a bad uplink is a usage error" 2 "uplink 'bogus:x'" -- "$VFB" --uplink bogus:x --frames 1
expect "--frames wants a number" 2 "bad number" -- "$VFB" --uplink udp:127.0.0.1:9 --frames x
gw_finish vfbench
