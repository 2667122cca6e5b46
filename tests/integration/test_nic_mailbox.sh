#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# PF-VF mailbox interception through godwitd (docs/devices.md, Mailbox interception):
#   replay  a guest sets its MAC, a VLAN and multicast hashes over the mailbox; the VMM's
#           record shows them; after a live migration they are in force on the destination's
#           VF, whose PF never saw those exchanges, and traffic to the guest's MAC continues
#   deny    a NIC created with trust=off: the guest's MAC change gets a NACK, it keeps its
#           MAC and its traffic flows; godwitd's /metrics shows the VMM's exchanges and denial
set -u
. "$(dirname "$0")/nic_lib.sh" gw-nicmbx "$@"

# setup DIR PEER-ARGS...: a peer and two daemons cabled to it. Sets S and B.
setup() {
	S=$1
	shift
	peer_start "$S" "$@"
	for h in a b; do
		daemon "${S#"$TMP"/}/$h" --emul-nic "gen=1,vfs=2,uplink=$(cat "$S/ready")" \
			--metrics 127.0.0.1:0
	done
	B=$(cat "$S/b/listen-address")
}
GA() { gw "$S/a" "$@"; }
GB() { gw "$S/b" "$@"; }

# ---- replay ----
# Traffic runs until the test has seen it continue on B (no budget of frames to run out first).
setup "$TMP/replay" --rate 600
GUEST_MAC=02:00:00:00:aa:01
GA vm create rep --memory 64M --guest "$GUEST" --nic vf \
	--cmdline "nic-echo:0:mac=$GUEST_MAC,vlan=100,mc=3" >"$S/out" 2>&1 || fail "create: $(cat "$S/out")"
GA vm start rep >"$S/out" 2>&1 || fail "start: $(cat "$S/out")"
wait_for "$S" 1500 300
before=$(received "$S")
[ "$before" -ge 1500 ] && pass "replay: the guest echoes on A ($before frames)" ||
	fail "replay: no traffic on A ($before)"
GA --json vm info rep >"$S/info-a.json" 2>&1
rec() { jget "$1" "['nics'][0]['recorded']$2" 2>/dev/null; }
if [ "$(rec "$S/info-a.json" "['mac']")" = "$GUEST_MAC" ] &&
	[ "$(rec "$S/info-a.json" "['vlans']")" = "[100]" ] &&
	[ "$(rec "$S/info-a.json" "['multicast']")" = 3 ]; then
	pass "replay: A's VMM recorded MAC $GUEST_MAC, VLAN 100, 3 multicast hashes from $(rec "$S/info-a.json" "['exchanges']") exchanges"
else
	fail "replay: the record on A is $(rec "$S/info-a.json" "")"
fi
migrated=0
GA --json migrate rep --to "$B" --to-token-file "$S/b/token" >"$S/mig.json" 2>"$S/mig.err" &&
	migrated=1 || fail "replay: migrate: $(mig_why "$S/mig")"
# Once the migration is over, every echo comes from B. Frames go to the guest's own MAC: B's
# VF accepts them only if its PF took on that MAC. (The loss bound of a migration is
# nic_migrate's subject; here the frames must keep coming.)
after=$(received "$S")
if [ "$migrated" = 1 ] && wait_for "$S" $((after + 1500)) 300; then
	pass "replay: traffic to the guest's MAC continues on B ($(($(received "$S") - after)) frames since the migration)"
else
	fail "replay: traffic did not continue on B: $(received "$S") in all, $after when the migration ended, $before before it"
fi
peer_stop "$S"
got=$(jget "$S/peer.json" "['received']")
sent=$(jget "$S/peer.json" "['sent']")
lost=$(jget "$S/peer.json" "['lost']")
outage=$(jget "$S/peer.json" "['sent_during_outage']")
echo "     replay frames: received $got of $sent, lost $lost ($outage sent during the longest outage)"
GB --json vm info rep >"$S/info-b.json" 2>&1
[ "$(rec "$S/info-b.json" "['mac']")" = "$GUEST_MAC" ] && [ "$(rec "$S/info-b.json" "['vlans']")" = "[100]" ] &&
	pass "replay: B's VMM holds the record it received" ||
	fail "replay: the record on B is $(rec "$S/info-b.json" "")"
GB vm stop rep >/dev/null 2>&1
bexit=$S/b/vms/rep/exit.json
wait_file "$bexit" 30
pf() { jget "$bexit" "['vfs'][0]['pf_config']$1" 2>/dev/null; }
if [ "$(pf "['mac']")" = "$GUEST_MAC" ] && [ "$(pf "['vlans']")" = "[100]" ] &&
	[ "$(pf "['mc_hashes']")" = "[256, 257, 258]" ]; then
	pass "replay: B's PF agent, blank before, has the guest's MAC, VLAN and multicast in force"
else
	fail "replay: B's PF agent has $(pf "")"
fi
grep -q "replayed the recorded VF configuration" "$S/b/vms/rep/vmm.log" &&
	pass "replay: B's VMM logged the replay" || fail "replay: no replay in B's VMM log"
pkill -KILL -f "$S/" 2>/dev/null
sleep 0.2

# ---- deny ----
# A fixed number of frames here: each must be echoed; there is no migration to outlast.
setup "$TMP/deny" --count 2000 --rate 2000
GA vm create deny --memory 64M --guest "$GUEST" --nic vf,mac=02:00:00:00:bb:01,trust=off \
	--cmdline "nic-echo:0:mac=02:00:00:00:bb:99" >"$S/out" 2>&1 || fail "create: $(cat "$S/out")"
GA vm start deny >"$S/out" 2>&1 || fail "start: $(cat "$S/out")"
peer_wait "$S" 300
[ "$(jget "$S/peer.json" "['result']")" = pass ] &&
	pass "deny: the guest's traffic flows (2000 frames echoed intact)" ||
	fail "deny: traffic: $(cat "$S/peer.json")"
[ "$(jget "$S/peer.json" "['vf_mac']")" = 02:00:00:00:bb:01 ] &&
	pass "deny: the guest kept its MAC 02:00:00:00:bb:01" ||
	fail "deny: the guest speaks as $(jget "$S/peer.json" "['vf_mac']")"
GA --json vm info deny >"$S/info.json" 2>&1
GA vm info deny >"$S/info.txt" 2>&1
[ "$(rec "$S/info.json" "['denied']")" = 1 ] && [ "$(rec "$S/info.json" "['mac']")" = 02:00:00:00:bb:01 ] &&
	pass "deny: the VMM denied the MAC change ($(grep recorded "$S/info.txt" | sed 's/^ *//'))" ||
	fail "deny: record $(rec "$S/info.json" "")"
grep -q "trust off" "$S/info.txt" && pass "deny: vm info shows the NIC untrusted" ||
	fail "deny: vm info: $(cat "$S/info.txt")"
# What the VMM counts reaches Prometheus through godwitd (read from the VMM at scrape time).
PROM="/usr/bin/python3 $(dirname "$0")/../lib/gw_prom.py"
if $PROM scrape "$(cat "$S/a/metrics-address")" "$S/a.prom" 2>"$S/prom.err"; then
	m_ex=$($PROM value "$S/a.prom" godwit_mailbox_exchanges_total vm=deny 2>&1)
	m_den=$($PROM value "$S/a.prom" godwit_mailbox_denials_total vm=deny 2>&1)
	r_ex=$(rec "$S/info.json" "['exchanges']")
	[ "$m_den" = 1 ] && [ "$m_ex" = "$r_ex" ] && [ "$r_ex" -gt 0 ] &&
		pass "deny: /metrics shows the VMM's $m_ex exchanges and 1 denial" ||
		fail "deny: /metrics: exchanges $m_ex (the record: $r_ex), denials $m_den"
else
	fail "deny: /metrics: $(cat "$S/prom.err")"
fi

gw_finish "mailbox interception"
