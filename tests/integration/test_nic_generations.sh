#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Reconfiguration across NIC generations (docs/devices.md, Across generations), with traffic flowing:
#   match     gen1 -> gen1: the device state moves as it is; no quiesce happens
#   mismatch  gen1 -> gen2: the source quiesces the VF (the driver resets it), sends no
#             device state but the guest's configuration from before the reset; the
#             destination re-creates it on gen2, the guest renegotiates (API 1.1, two queue
#             pairs) and keeps echoing
#   failure   a mismatch migration whose destination dies after the quiesce: the source
#             device comes back and traffic flows on the source
set -u
. "$(dirname "$0")/nic_lib.sh" gw-nicgen "$@"
# Traffic runs until the test stops it (nic_lib.sh: no budget of frames to run out first).
G() { local h=$1; shift; gw "$TMP/$h" "$@"; }
addr() { cat "$TMP/$1/listen-address"; }
decision() { /usr/bin/python3 -c 'import json,sys
m = json.loads(open(sys.argv[1]).read().strip().split("\n")[-1])
d = m["decisions"][0]
print(d["decision"], "|", d["source"], "->", d["destination"], "|", d["reason"])' "$1" 2>/dev/null; }

P1=$TMP/p1
peer_start "$P1" --rate 500
daemon a --emul-nic "gen=1,vfs=2,uplink=$(cat "$P1/ready")"
daemon b --emul-nic "gen=2,vfs=2,uplink=$(cat "$P1/ready")"
daemon c --emul-nic "gen=1,vfs=2,uplink=$(cat "$P1/ready")"

G a vm create gen --memory 64M --guest "$GUEST" --cmdline nic-echo:0:mc=2 --nic vf >/dev/null || fail "create"
G a vm start gen >/dev/null || fail "start"
wait_for "$P1" 800 300 && pass "the guest echoes on A's gen1 VF" || fail "no traffic on A"

# match: A (gen1) -> C (gen1).
G a --json migrate gen --to "$(addr c)" --to-token-file "$TMP/c/token" >"$TMP/m1.json" 2>"$TMP/m1.err" ||
	fail "A -> C: $(mig_why "$TMP/m1")"
d1=$(decision "$TMP/m1.json")
case "$d1" in
match*) pass "gen1 -> gen1: decision $d1" ;;
*) fail "gen1 -> gen1: decision '$d1'" ;;
esac
before=$(received "$P1")
wait_for "$P1" $((before + 800)) 300 && pass "gen1 -> gen1: the guest keeps echoing on C" ||
	fail "gen1 -> gen1: no traffic on C"
# A quiesce would have the guest reset and renegotiate, which it reports (nic-ready): on C it
# must not have, in all the time it echoed there, and nothing may be re-created there.
if grep -q "guest report nic-ready" "$TMP/c/vms/gen/vmm.log" ||
	grep -q "re-created" "$TMP/c/vms/gen/vmm.log" ||
	grep -q "quiesced for re-creation" "$TMP"/a/vms/gen/vmm.log 2>/dev/null; then
	fail "gen1 -> gen1: the device was quiesced or re-created"
else
	pass "gen1 -> gen1: no quiesce: the guest never renegotiated, the device state moved as it is"
fi

# mismatch: C (gen1) -> B (gen2).
before=$(received "$P1")
G c --json migrate gen --to "$(addr b)" --to-token-file "$TMP/b/token" >"$TMP/m2.json" 2>"$TMP/m2.err" ||
	fail "C -> B: $(mig_why "$TMP/m2")"
d2=$(decision "$TMP/m2.json")
case "$d2" in
mismatch*) pass "gen1 -> gen2: decision $d2" ;;
*) fail "gen1 -> gen2: decision '$d2'" ;;
esac
grep -q "mismatch" "$TMP/c.log" && pass "gen1 -> gen2: the decision is in the source daemon's log" ||
	fail "gen1 -> gen2: no decision in the daemon log"
grep -q "re-created from the source's record" "$TMP/b/vms/gen/vmm.log" &&
	pass "gen1 -> gen2: B's VMM re-created the device from the record" ||
	fail "gen1 -> gen2: no re-creation logged on B"
# The record B's PF agent took is the guest's configuration from before the reset that
# quiesced the VF (the reset cleared the source PF's copy): its two multicast hashes.
grep -q "replayed the recorded VF configuration to the PF agent: MAC [0-9a-f:]*, 0 VLANs, 2 multicast hashes" "$TMP/b/vms/gen/vmm.log" &&
	pass "gen1 -> gen2: B's PF agent took the guest's configuration from before the quiesce (2 multicast hashes)" ||
	fail "gen1 -> gen2: B's replay: $(grep -o "replayed the recorded.*" "$TMP/b/vms/gen/vmm.log")"
wait_for "$P1" $((before + 1500)) 300 && pass "gen1 -> gen2: the guest keeps echoing on B ($(( $(received "$P1") - before )) frames since)" ||
	fail "gen1 -> gen2: no traffic on B ($(received "$P1") in all, $before before)"
grep -q "guest report nic-ready a=2 b=2" "$TMP/b/vms/gen/vmm.log" &&
	pass "gen1 -> gen2: the guest renegotiated API 1.1 and runs two queue pairs" ||
	fail "gen1 -> gen2: no renegotiation to 2 queue pairs: $(grep nic-ready "$TMP/b/vms/gen/vmm.log")"
G b vm info gen 2>&1 | grep -q "gen2" && pass "gen1 -> gen2: vm info shows the gen2 VF" ||
	fail "gen1 -> gen2: vm info: $(G b vm info gen 2>&1 | grep nic0)"
peer_stop "$P1"
echo "     frames: $(jget "$P1/peer.json" "['received']") of $(jget "$P1/peer.json" "['sent']") echoed, lost $(jget "$P1/peer.json" "['lost']"), duplicates $(jget "$P1/peer.json" "['duplicates']"), corrupt $(jget "$P1/peer.json" "['corrupt']")"
[ "$(jget "$P1/peer.json" "['corrupt']")" = 0 ] && [ "$(jget "$P1/peer.json" "['duplicates']")" = 0 ] &&
	pass "no corrupt or duplicate frame over both migrations" || fail "corrupt or duplicate frames"
pkill -KILL -f "$TMP/[abc]/" 2>/dev/null
sleep 0.3

# failure after the quiesce: A (gen1) -> B (gen2), B's VMM killed during pre-copy.
P2=$TMP/p2
peer_start "$P2" --rate 500
daemon a2 --emul-nic "gen=1,vfs=1,uplink=$(cat "$P2/ready")"
daemon b2 --emul-nic "gen=2,vfs=1,uplink=$(cat "$P2/ready")"
G a2 vm create fl --memory 64M --guest "$GUEST" --cmdline nic-echo:0 --nic vf >/dev/null || fail "create fl"
G a2 vm start fl >/dev/null || fail "start fl"
wait_for "$P2" 800 300 || fail "failure case: no traffic on A"
# The quiesce comes once pre-copy converged, just before the VM stops. The destination's VMM
# is frozen (SIGSTOP) as soon as it exists, so the migration cannot finish; once the source
# has quiesced the VF, the migration is cancelled. Pre-copy goes on into the socket buffers;
# the frozen destination acknowledges nothing, so two fixed channels (--channels auto's measure
# ends with a SYNC the destination must answer, before any round) and a stall timeout far
# beyond the test's own waits (it would fail the migration before the quiesce).
G a2 migrate fl --to "$(addr b2)" --to-token-file "$TMP/b2/token" --max-bandwidth 256K \
	--channels 2 --stall-timeout 3600 --detach \
	>"$TMP/m3.out" 2>&1 || fail "failure case: migrate --detach: $(cat "$TMP/m3.out")"
id=$(grep -Eo '[0-9a-f]{16}' "$TMP/m3.out" | head -1)
end=$((SECONDS + $(bound 60)))
until grep -q "migrating to" "$TMP/a2/vms/fl/vmm.log" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; do sleep 0.01; done
pkill -STOP -f "$TMP/b2/vms/" 2>/dev/null
end=$((SECONDS + $(bound 120)))
until grep -q "quiesced for re-creation" "$TMP/a2/vms/fl/vmm.log" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; do sleep 0.02; done
grep -q "quiesced for re-creation" "$TMP/a2/vms/fl/vmm.log" &&
	pass "failure case: the source quiesced the VF for re-creation" ||
	fail "failure case: no quiesce on the source"
G a2 migration cancel "$id" >/dev/null 2>&1
end=$((SECONDS + $(bound 120)))
until G a2 migration status "$id" 2>/dev/null | grep -qiE "cancel|fail" || [ "$SECONDS" -ge "$end" ]; do
	sleep 0.1
done
G a2 migration status "$id" >"$TMP/m3.st" 2>&1
grep -qiE "cancel|fail" "$TMP/m3.st" && pass "failure case: the migration ended ($(grep phase "$TMP/m3.st" | sed 's/  */ /g'))" ||
	fail "failure case: the migration did not end: $(cat "$TMP/m3.st")"
pkill -KILL -f "$TMP/b2/vms/" 2>/dev/null
grep -q "the reset ends and the driver goes on here" "$TMP/a2/vms/fl/vmm.log" &&
	pass "failure case: the source device came back" || fail "failure case: the source device did not come back"
before=$(received "$P2")
wait_for "$P2" $((before + 800)) 300 && pass "failure case: traffic flows on the source again ($(( $(received "$P2") - before )) frames)" ||
	fail "failure case: no traffic on the source after the failure"
G a2 vm info fl 2>&1 | grep -q "state *running" && pass "failure case: the VM runs on A" ||
	fail "failure case: $(G a2 vm info fl 2>&1 | head -3)"
peer_stop "$P2"

gw_finish generation
