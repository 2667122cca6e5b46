#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The kernel's own igbvf driver on godwit's emulated gen1 VF: it binds 8086:10ca, completes the
# mailbox reset and MAC handshake, sees link, and the guest's gw-lecho echoes 10,000 of
# godwit-nicpeer's frames through it: 0 lost, 0 duplicated, 0 corrupt.
set -u
BUILD=$1
VMM=$2
PEER=$3
COUNT=${GW_LINUX_ECHO_FRAMES:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/gw_test.sh"
. "$HERE/linux_lib.sh"
gw_tmp gw-linuxecho

"$PEER" --listen udp:127.0.0.1:0 --ready-file "$TMP/ready" --count "$COUNT" --window 16 \
	--wait-announce 300 --json --quiet >"$TMP/peer.json" 2>"$TMP/peer.err" &
peer=$!
gw_bg "$peer"
for _ in $(seq 100); do [ -s "$TMP/ready" ] && break; sleep 0.1; done
"$VMM" --memory 256M --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" \
	--cmdline "$LINUX_CMDLINE gw.test=echo" --serial "file:$TMP/console" --json --timeout 600 \
	--vf "pf=0,vf=0,gen=1,mac=02:67:77:00:02:01,uplink=$(cat "$TMP/ready")" \
	>"$TMP/vmm.json" 2>"$TMP/vmm.err" &
vmm=$!
gw_bg "$vmm"
wait "$peer"
prc=$?
kill -TERM "$vmm" 2>/dev/null
wait "$vmm"
for m in GODWIT-MODULE-LOADED GODWIT-ECHO-NETDEV GODWIT-ECHO-CARRIER "lecho: ready"; do
	grep -q "$m" "$TMP/console" && pass "guest: $m" || fail "guest never printed $m"
done
if [ "$prc" = 0 ]; then
	got=$(jget "$TMP/peer.json" "['received']")
	lost=$(jget "$TMP/peer.json" "['lost']")
	dup=$(jget "$TMP/peer.json" "['duplicates']")
	bad=$(jget "$TMP/peer.json" "['corrupt']")
	if [ "$got" = "$COUNT" ] && [ "$lost" = 0 ] && [ "$dup" = 0 ] && [ "$bad" = 0 ]; then
		pass "igbvf echoed $got frames: 0 lost, 0 duplicated, 0 corrupt ($(jget "$TMP/peer.json" "['pps']") pps)"
	else
		fail "igbvf: received $got of $COUNT, lost $lost, duplicated $dup, corrupt $bad"
	fi
else
	fail "godwit-nicpeer exit $prc"
	tail -n 5 "$TMP/peer.err" "$TMP/peer.json" | sed 's/^/       /'
fi
if [ "$fails" -gt 0 ]; then
	tail -n 20 "$TMP/console" "$TMP/vmm.err" | sed 's/^/       /'
fi
gw_finish integration_linux_echo
