#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The dpdk: uplink end to end (sriov/src/port_dpdk.c): emulated VFs whose wire is a DPDK
# net_af_packet port on a veth pair, each VMM with its own EAL. One segment, a Linux bridge with
# three veth pairs: godwit-nicpeer on one (packet:), VM A and VM B on the others (dpdk:).
#  1. VM A echoes what the peer sends: 100,000 frames, 0 lost, 0 corrupt.
#  2. Two VMs: VM B echoes, VM A relays (nic-echo relay=B's MAC), so every frame of the peer
#     goes from VM A to VM B and back through both DPDK ports: 100,000 frames, 0 lost, 0 corrupt.
# Skips (77) without KVM, or where this host cannot make veth pairs or a bridge.
set -u
VMM=$1
GUEST=$2
PEER=$3
. "$(dirname "$0")/../lib/gw_test.sh"
gw_need_kvm "the DPDK NIC tests"
gw_tmp gw-nicdpdk
N=${GW_DPDK_FRAMES:-100000}
MAC_A=02:67:77:00:0d:0a
MAC_B=02:67:77:00:0d:0b

. "$(dirname "$0")/dpdk_lib.sh"
dpdk_segment a b

# vmm NAME MAC IFACE GUESTARGS: one VMM in the background, its files TMP/NAME.*; sets VPID.
vmm() {
	"$VMM" --memory 64M --guest "$GUEST" --cmdline "nic-echo:$4" --serial "file:$TMP/$1.console" \
		--json --timeout 900 --log-level warn \
		--vf "pf=0,vf=0,gen=1,mac=$2,uplink=dpdk:net_af_packet0,iface=$3" \
		>"$TMP/$1.json" 2>"$TMP/$1.err" &
	VPID=$!
	gw_bg "$VPID"
}
# ready NAME: until the guest's driver is up (and has announced).
ready() {
	for _ in $(seq 600); do
		grep -q "nic-echo: ready" "$TMP/$1.console" 2>/dev/null && return 0
		kill -0 "$VPID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
# peer NAME: godwit-nicpeer on the bridge, N frames, 32 in flight, its report in TMP/NAME.json;
# sets PPID_ and PJ (that report).
peer() {
	rm -f "$TMP/ready"
	PJ=$TMP/$1.json
	"$PEER" --listen "packet:${K}p" --ready-file "$TMP/ready" --count "$N" --window 32 \
		--wait-announce 120 --json --quiet >"$PJ" 2>"$TMP/$1.err" &
	PPID_=$!
	gw_bg "$PPID_"
}
# verdict WHAT VMM-NAMES...: every VMM and the peer ended well, every frame came back intact.
verdict() {
	local what=$1 rc prc v ok=1
	shift
	wait "$PPID_"
	prc=$?
	for v in "$@"; do
		wait "${PIDS[$v]}"
		rc=$?
		if [ "$rc" -ne 0 ]; then
			ok=0
			fail "$what: VMM $v exit $rc: $(tail -n 3 "$TMP/$v.err" "$TMP/$v.console" | tr '\n' ' ')"
		elif [ "$(jget "$TMP/$v.json" "['nic_bad']")" != 0 ]; then
			ok=0
			fail "$what: the guest of $v found $(jget "$TMP/$v.json" "['nic_bad']") bad frames"
		fi
		case "$(jget "$TMP/$v.json" "['vfs'][0]['port']" 2>/dev/null)" in
		"dpdk net_af_packet0 "*) ;;
		*) ok=0 && fail "$what: $v's port is '$(jget "$TMP/$v.json" "['vfs'][0]['port']" 2>/dev/null)'" ;;
		esac
	done
	if [ ! -s "$PJ" ]; then
		fail "$what: the peer left no report (exit $prc): $(tail -n 3 "${PJ%.json}.err")"
		return
	fi
	local got lost dup bad
	got=$(jget "$PJ" "['received']")
	lost=$(jget "$PJ" "['lost']")
	dup=$(jget "$PJ" "['duplicates']")
	bad=$(jget "$PJ" "['corrupt']")
	if [ "$prc" = 0 ] && [ "$got" = "$N" ] && [ "$lost" = 0 ] && [ "$dup" = 0 ] && [ "$bad" = 0 ] &&
		[ "$ok" = 1 ]; then
		pass "$what: $got of $N frames back, 0 lost, 0 duplicated, 0 corrupt ($(jget "$PJ" "['pps']") pps)"
	else
		fail "$what: peer exit $prc, received $got of $N, lost $lost, duplicates $dup, corrupt $bad"
	fi
}
declare -A PIDS
# On failure: what each VMM's VF and each peer counted (peer reports name the frames lost and
# duplicated), so that a loss shows where it happened.
gw_failure_hook() {
	local f
	for f in "$TMP"/*.json; do
		echo "       $(basename "$f"): $(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
if "vfs" in d:
    d = {**{k: v for k, v in d.items() if not isinstance(v, (dict, list))},
         **{k: v for k, v in d["vfs"][0].items() if k != "port"}}
print(d)' "$f" 2>&1)"
	done
}

# 1. VM A and the peer.
vmm a1 "$MAC_A" "${K}a" "$N"
PIDS[a1]=$VPID
peer peer1
verdict "VM - peer through net_af_packet" a1

# 2. The peer's frames through VM A (relay) to VM B (echo) and back. B comes up first, so that
# the peer follows A's announce only (it goes where the last announce came from).
vmm b2 "$MAC_B" "${K}b" "$N"
PIDS[b2]=$VPID
ready b2 || fail "VM B's driver did not come up: $(tail -n 3 "$TMP/b2.console" "$TMP/b2.err")"
peer peer2
vmm a2 "$MAC_A" "${K}a" "$((2 * N)):relay=$MAC_B"
PIDS[a2]=$VPID
verdict "VM - VM through two DPDK ports" a2 b2
rx=$(jget "$TMP/b2.json" "['vfs'][0]['rx_frames']")
tx=$(jget "$TMP/a2.json" "['vfs'][0]['tx_frames']")
[ "$rx" -ge "$N" ] && [ "$tx" -ge $((2 * N)) ] &&
	pass "VM - VM: VM B took in $rx frames, VM A sent $tx (to B and back to the peer)" ||
	fail "VM - VM: VM B took in $rx frames, VM A sent $tx; $N and $((2 * N)) wanted"

gw_finish "NIC through DPDK ports"
