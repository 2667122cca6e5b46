#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A NIC whose destination has no VF (the "absent" decision, docs/devices.md, Across generations): a VM echoing on a
# gen2 VF of host A migrates to host B, which declares no SR-IOV NIC (--emul-nic none): B's
# VMM serves the same gen2 interface with its own device model, the NIC shows as emulated,
# and the guest keeps echoing. Then it migrates on to host C, which has a gen1 VF: back onto
# passthrough (a mismatch: re-created on gen1), still echoing. And --require-passthrough to
# B is refused with nothing moved.
# With "dpdk" after the usual arguments (integration_nic_absent_dpdk), each host's uplink is a
# DPDK net_af_packet port on one bridge, one veth pair per host, and the peer is on the bridge
# too (packet:): the NIC B emulates keeps its uplink through DPDK.
set -u
. "$(dirname "$0")/nic_lib.sh" gw-nicabs "$@"

WIRE=${5:-udp}
if [ "$WIRE" != udp ]; then
	. "$(dirname "$0")/dpdk_lib.sh"
	dpdk_segment a b c
	PEER_LISTEN=packet:${K}p
fi
# Traffic runs until the test has seen the guest echo on C (no budget of frames that could run
# out before the second migration on a slow host).
peer_start "$TMP" --rate 600
up() {
	case $WIRE in
	dpdk) echo "dpdk:net_af_packet0,iface=$K$1" ;;
	mixed) [ "$1" = b ] && echo "dpdk:net_af_packet0,iface=$K$1" || echo "packet:$K$1" ;;
	packet) echo "packet:$K$1" ;;
	*) cat "$TMP/ready" ;;
	esac
}
daemon a --emul-nic "gen=2,vfs=1,uplink=$(up a)"
daemon b --emul-nic none --emul-uplink "$(up b)"
daemon c --emul-nic "gen=1,vfs=1,uplink=$(up c)"
G() { local h=$1; shift; gw "$TMP/$h" "$@"; }
# dups WHEN: the duplicates the peer counted so far, where they are told apart.
dups() { echo "     duplicates $1: $(sed -n 's/.*"duplicates":\([0-9]*\).*/\1/p' "$TMP/stats.json")"; }
addr() { cat "$TMP/$1/listen-address"; }

G a vm create abs --memory 64M --guest "$GUEST" --cmdline nic-echo:0 --nic vf >/dev/null ||
	fail "create on A"
G a vm start abs >/dev/null || fail "start on A"
wait_for "$TMP" 1000 300 && pass "the guest echoes on A's gen2 VF ($(received "$TMP") frames)" ||
	fail "no traffic on A ($(received "$TMP") echoes)"

# --require-passthrough: B cannot back the NIC with a VF, so nothing moves.
if G a migrate abs --to "$(addr b)" --to-token-file "$TMP/b/token" --require-passthrough \
	>"$TMP/req.out" 2>&1; then
	fail "--require-passthrough: the migration to a host without VFs went ahead"
else
	grep -q "passthrough is required" "$TMP/req.out" &&
		pass "--require-passthrough: refused ($(grep -o 'nic0: .*required' "$TMP/req.out" | head -1))" ||
		fail "--require-passthrough: unclear refusal: $(cat "$TMP/req.out")"
fi
G a vm info abs 2>&1 | grep -q "state *running" && ! G b vm info abs >/dev/null 2>&1 &&
	pass "--require-passthrough: the VM runs on A, B holds nothing" ||
	fail "--require-passthrough: VM state after the refusal: $(G a vm info abs 2>&1 | head -3)"

# A -> B: absent.
dups "before A -> B"
before=$(received "$TMP")
if G a --json migrate abs --to "$(addr b)" --to-token-file "$TMP/b/token" >"$TMP/m1.json" 2>"$TMP/m1.err"; then
	dec=$(/usr/bin/python3 -c 'import json,sys
m = json.loads(open(sys.argv[1]).read().strip().split("\n")[-1])
d = m["decisions"][0]
print(d["decision"], "|", d["destination"], "|", d["reason"])' "$TMP/m1.json")
	case "$dec" in
	absent*) pass "A -> B: decision $dec" ;;
	*) fail "A -> B: decision '$dec'" ;;
	esac
else
	fail "A -> B: $(mig_why "$TMP/m1")"
fi
G b vm info abs >"$TMP/info-b" 2>&1
grep -q "emulated by the VMM" "$TMP/info-b" && pass "on B the NIC is emulated: $(grep nic0 "$TMP/info-b" | sed 's/  */ /g')" ||
	fail "on B: $(cat "$TMP/info-b")"
if [ "$WIRE" = dpdk ]; then
	grep -q "uplink dpdk:net_af_packet0,iface=${K}b" "$TMP/info-b" &&
		pass "on B the emulated NIC's uplink is B's DPDK port" ||
		fail "on B the uplink is not B's DPDK port: $(grep nic0 "$TMP/info-b")"
fi
# Once the migration is over, every echo comes from B.
after=$(received "$TMP")
wait_for "$TMP" $((after + 1500)) 300 && pass "the guest keeps echoing on B's emulated VF ($(($(received "$TMP") - after)) frames since the migration)" ||
	fail "no traffic on B ($(received "$TMP") in all, $after when the migration ended, $before before it)"

# B -> C: back onto passthrough.
dups "after A -> B"
before=$(received "$TMP")
if G b --json migrate abs --to "$(addr c)" --to-token-file "$TMP/c/token" >"$TMP/m2.json" 2>"$TMP/m2.err"; then
	dec=$(/usr/bin/python3 -c 'import json,sys
m = json.loads(open(sys.argv[1]).read().strip().split("\n")[-1])
d = m["decisions"][0]
print(d["decision"], "|", d["source"], "->", d["destination"])' "$TMP/m2.json")
	case "$dec" in
	mismatch*emulated*pf0*) pass "B -> C: decision $dec" ;;
	*) fail "B -> C: decision '$dec'" ;;
	esac
else
	fail "B -> C: $(mig_why "$TMP/m2")"
fi
G c vm info abs >"$TMP/info-c" 2>&1
grep -q "gen1.*passthrough" "$TMP/info-c" && pass "on C the NIC is passthrough again, on gen1" ||
	fail "on C: $(cat "$TMP/info-c")"
# The guest renegotiates with C's gen1 VF first (the device was re-created from reset).
after=$(received "$TMP")
wait_for "$TMP" $((after + 1500)) 300 && pass "the guest keeps echoing on C ($(($(received "$TMP") - after)) frames since the migration)" ||
	fail "no traffic on C ($(received "$TMP") in all, $after when the migration ended, $before before it): $(grep -h "nic-echo\|renegotiat\|re-created" "$TMP/c/vms/abs/vmm.log" 2>/dev/null | tail -n 4)"
dups "after B -> C"
peer_stop "$TMP"
echo "     frames: $(jget "$TMP/peer.json" "['received']") of $(jget "$TMP/peer.json" "['sent']") echoed, lost $(jget "$TMP/peer.json" "['lost']"), duplicates $(jget "$TMP/peer.json" "['duplicates']"), corrupt $(jget "$TMP/peer.json" "['corrupt']")"
[ "$(jget "$TMP/peer.json" "['corrupt']")" = 0 ] && [ "$(jget "$TMP/peer.json" "['duplicates']")" = 0 ] &&
	pass "no corrupt or duplicate frame over both migrations" || fail "corrupt or duplicate frames"

gw_finish absent-device
