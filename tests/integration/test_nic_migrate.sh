#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A VM with an emulated VF live-migrates between two godwitd (same generation) while
# godwit-nicpeer keeps traffic flowing through it, once per DMA mode:
#   off     the negative control: the guest's own checks find received data that arrived
#           stale on the destination (device writes that dirty tracking never saw)
#   shadow  and track: corruption 0, duplicates 0, no frame lost that reached a VF still at
#           work (only frames sent to the source after its last echo may be), no stale data,
#           and the guest keeps echoing on B
# and a shadowed migration cancelled mid-pre-copy: traffic goes on at the source without
# loss, and the queue pages are mapped into the guest again. Traffic runs until each scenario
# has seen what it checks (nic_lib.sh: no wait assumes the host's speed).
# The guest runs nic-echo with "hold": received frames stay in their buffers (a pool of 256
# per queue) and are checked again before each buffer is reused.
set -u
. "$(dirname "$0")/nic_lib.sh" gw-nicmig "$@"

# Traffic runs from the VM's start until the test has seen what it needs: WARMUP echoes on A
# before the migration, AFTER echoes on B once it is over (the off control needs the guest on
# B to reuse held buffers: a pool of 256 per queue). No fixed budget of frames can run out
# before the handover on a slow host.
WARMUP=${GW_NIC_MIGRATE_WARMUP:-600}
AFTER=${GW_NIC_MIGRATE_AFTER:-800}
RATE=${GW_NIC_MIGRATE_RATE:-800}

# The last migration state printed by --json (one object per line).
mig_field() { /usr/bin/python3 -c 'import json,sys
m = json.loads(open(sys.argv[1]).read().strip().split("\n")[-1])
print(m.get(sys.argv[2], 0))' "$1" "$2" 2>/dev/null; }

GA() { gw "$S/a" "$@"; }
GB() { gw "$S/b" "$@"; }

# setup NAME: a peer, two daemons cabled to it, VM NAME echoing on A. Sets S, B, BEFORE.
setup() {
	local name=$1
	S=$TMP/$name
	peer_start "$S" --rate "$RATE"
	local uplink
	uplink=$(cat "$S/ready")
	daemon "$name/a" --emul-nic "gen=1,vfs=2,uplink=$uplink"
	daemon "$name/b" --emul-nic "gen=1,vfs=2,uplink=$uplink"
	B=$(cat "$S/b/listen-address")
	GA vm create "$name" --memory 64M --guest "$GUEST" --cmdline nic-echo:0:hold \
		--nic vf >"$S/out" 2>&1 || { fail "$name: create: $(cat "$S/out")"; return 1; }
	GA vm start "$name" >"$S/out" 2>&1 || { fail "$name: start: $(cat "$S/out")"; return 1; }
	# Migrate once the traffic is well under way; it goes on meanwhile.
	if ! wait_for "$S" "$WARMUP" 300; then
		fail "$name: traffic never got going on A (received $(received "$S") of the $WARMUP wanted)"
		tail -n 5 "$S/a.log" "$S/peer.err" "$S/a/vms/$name/vmm.log" 2>&1
		peer_stop "$S"
		return 1
	fi
	BEFORE=$(received "$S")
}

# peer_report NAME: stops the traffic, waits for the peer and reads its report into variables.
peer_report() {
	peer_stop "$S"
	SENT=$(jget "$S/peer.json" "['sent']")
	GOT=$(jget "$S/peer.json" "['received']")
	LOST=$(jget "$S/peer.json" "['lost']")
	LOSTRUN=$(jget "$S/peer.json" "['lost_running']")
	DUP=$(jget "$S/peer.json" "['duplicates']")
	BAD=$(jget "$S/peer.json" "['corrupt']")
	ANN=$(jget "$S/peer.json" "['announces']")
	OUTAGE=$(jget "$S/peer.json" "['sent_during_outage']")
	GAP=$(jget "$S/peer.json" "['max_outage_ms']")
	echo "     $1 frames: sent $SENT received $GOT lost $LOST ($LOSTRUN of them while their VF" \
		"ran) duplicates $DUP corrupt $BAD; longest outage ${GAP} ms with $OUTAGE frames sent" \
		"during it; announces $ANN"
}

# check_loss WHAT: a frame may be lost only when it reached a VF that had stopped for good (the
# source, after its last echo): the peer counts the others as lost_running.
check_loss() {
	if [ "$LOSTRUN" = 0 ]; then
		pass "$1: lost $LOST frames, each sent to the source after its last echo (none the VF had taken in while it ran)"
	else
		fail "$1: $LOSTRUN of $LOST lost frames had reached a VF that was still at work (peer exit $PRC)"
	fi
}

# migrate_with MODE: the whole scenario for one DMA mode.
migrate_with() {
	local mode=$1 name=echo-$1
	setup "$name" || return
	pass "$mode: the guest echoes on A ($BEFORE frames so far)"
	if ! GA --json migrate "$name" --to "$B" --to-token-file "$S/b/token" \
		--dma-mode "$mode" >"$S/mig.json" 2>"$S/mig.err"; then
		fail "$mode: migrate: $(mig_why "$S/mig")"
		peer_stop "$S"
		return
	fi
	local down pages copied shown
	down=$(mig_field "$S/mig.json" downtimeUs)
	pages=$(mig_field "$S/mig.json" dmaPagesDirtied)
	copied=$(mig_field "$S/mig.json" dmaBytesCopied)
	shown=$(mig_field "$S/mig.json" dmaMode)
	pass "$mode: migrated A -> B with traffic running (downtime $((down / 1000)) ms; device DMA: $pages pages made dirty, $copied bytes copied)"
	[ "$shown" = "$mode" ] || fail "$mode: the migration reports DMA mode '$shown'"
	# The migration is over: every echo from now on comes from B.
	local after kept=0
	after=$(received "$S")
	wait_for "$S" $((after + AFTER)) 300 && kept=1
	local since=$(($(received "$S") - after))
	peer_report "$mode"
	# The guest's verdicts: its reports, in the VMM's log and in its final status.
	GB vm stop "$name" >/dev/null 2>&1
	local blog=$S/b/vms/$name/vmm.log bexit=$S/b/vms/$name/exit.json stale gbad
	wait_file "$bexit" 30
	stale=$(grep -c "guest report nic-stale" "$blog")
	gbad=$(jget "$bexit" "['nic_bad']" 2>/dev/null || echo "?")
	case $mode in
	off)
		[ "$pages" = 0 ] && pass "off: nothing was made visible" ||
			fail "off: $pages pages marked dirty with DMA tracking off"
		if [ "$stale" -gt 0 ]; then
			pass "off: the guest on B found received data stale ($gbad failed checks; $(grep -m1 "guest report nic-stale" "$blog" | sed 's/.*report //'))"
		else
			fail "off: the guest found no stale data; the negative control shows nothing ($since echoes on B)"
		fi
		;;
	shadow | track)
		[ "$pages" -gt 0 ] && pass "$mode: $pages pages made dirty by device DMA" ||
			fail "$mode: no page made dirty for device DMA"
		if [ "$mode" = shadow ]; then
			[ "$copied" -gt 0 ] && pass "shadow: $copied bytes copied from shadow buffers" ||
				fail "shadow: nothing copied"
		else
			[ "$copied" = 0 ] && pass "track: nothing copied" || fail "track: $copied bytes copied"
		fi
		[ "$stale" = 0 ] && [ "$gbad" = 0 ] &&
			pass "$mode: the guest's checks on B found every held frame intact" ||
			fail "$mode: the guest saw bad or stale data: $gbad failed checks, $stale stale reports"
		[ "$BAD" = 0 ] && pass "$mode: no corrupt frame" || fail "$mode: $BAD corrupt frames"
		[ "$DUP" = 0 ] && pass "$mode: no duplicate frame" || fail "$mode: $DUP duplicate frames"
		check_loss "$mode"
		[ "$ANN" -ge 2 ] && pass "$mode: the destination announced the VF's new place" ||
			fail "$mode: only $ANN announce(s): the destination never spoke"
		if [ "$kept" = 1 ]; then
			pass "$mode: the guest kept echoing on B ($since frames after the migration)"
		else
			fail "$mode: too few echoes on B: $since after the migration, $AFTER wanted ($GOT in all, $BEFORE before it began)"
		fi
		grep -q '"result":"stopped\|"exit_code"' "$bexit" && ! grep -q crash "$bexit" &&
			pass "$mode: $name ran on B until stopped" ||
			fail "$mode: $name on B: $(cat "$bexit")"
		;;
	esac
}

# A shadowed migration cancelled mid-pre-copy. A bandwidth cap holds it there: the guest's
# pages that are not zero (some 800 KiB) take about a minute at 16 KiB/s, however fast the
# host, which leaves the test time to see traffic through the shadow rings and cancel.
cancel_shadowed() {
	local name=echo-cancel
	setup "$name" || return
	local id end
	if ! id=$(GA migrate "$name" --to "$B" --to-token-file "$S/b/token" \
		--max-bandwidth 16K --detach 2>"$S/mig.err"); then
		fail "cancel: migrate --detach: $(cat "$S/mig.err")"
		peer_stop "$S"
		return
	fi
	id=$(echo "$id" | grep -Eo '[0-9a-f]{16}' | head -1)
	# Pre-copy, with shadowing engaged, and traffic through the shadow rings.
	end=$((SECONDS + $(bound 120)))
	until GA migration status "$id" >"$S/st1" 2>&1 && grep -q "precopy\|PRECOPY\|pre-copy" "$S/st1"; do
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.2
	done
	grep -q "precopy\|PRECOPY\|pre-copy" "$S/st1" && pass "cancel: migration $id is in pre-copy" ||
		fail "cancel: not in pre-copy before the cancel: $(cat "$S/st1")"
	end=$((SECONDS + $(bound 60)))
	until grep -q "DMA shadow mode on" "$S/a/vms/$name/vmm.log" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.1
	done
	local shadowed
	shadowed=$(received "$S")
	wait_for "$S" $((shadowed + 200)) 120 ||
		fail "cancel: no traffic while shadowed ($(received "$S") echoes, $shadowed when shadowing began)"
	GA migration cancel "$id" >"$S/st2" 2>&1
	end=$((SECONDS + $(bound 120)))
	until GA migration status "$id" >"$S/st3" 2>&1 && grep -Eq "^phase +(cancelled|failed|done)" "$S/st3"; do
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.2
	done
	if grep -Eq "^phase +cancelled" "$S/st3"; then
		pass "cancel: the migration ended cancelled"
	else
		fail "cancel: the migration did not end cancelled: $(tr '\n' ' ' <"$S/st2"); $(grep -E '^(phase|time)' "$S/st3" | tr '\n' ' ')"
		peer_stop "$S"
		return
	fi
	local after
	after=$(received "$S")
	wait_for "$S" $((after + 500)) 120 &&
		pass "cancel: the source kept echoing ($(($(received "$S") - after)) frames after the cancel)" ||
		fail "cancel: the source did not keep echoing: $(received "$S") echoes, $after at the cancel"
	peer_report cancel
	[ "$BAD" = 0 ] && [ "$DUP" = 0 ] && pass "cancel: no corrupt or duplicate frame" ||
		fail "cancel: $BAD corrupt, $DUP duplicate frames"
	[ "$LOSTRUN" = 0 ] && pass "cancel: no frame lost by the running VF (lost $LOST in all)" ||
		fail "cancel: $LOSTRUN frames lost by the running VF ($LOST in all)"
	GA vm stop "$name" >/dev/null 2>&1
	local log=$S/a/vms/$name/vmm.log exit=$S/a/vms/$name/exit.json
	wait_file "$exit" 30
	local gbad
	gbad=$(jget "$exit" "['nic_bad']" 2>/dev/null || echo "?")
	[ "$gbad" = 0 ] && ! grep -q "guest report nic-stale" "$log" &&
		pass "cancel: the guest found its data intact" ||
		fail "cancel: the guest reports $gbad failed checks"
	grep -q "DMA shadow mode on" "$log" && grep -q "DMA shadow mode off" "$log" &&
		pass "cancel: shadowing was engaged and handed back" ||
		fail "cancel: no shadow on/off in the VMM log: $(grep -i dma "$log" | head -3)"
	local direct dmode
	direct=$(jget "$exit" "['vfs'][0]['direct_pages']" 2>/dev/null)
	dmode=$(jget "$exit" "['vfs'][0]['dma_mode']" 2>/dev/null)
	# Bits 2 and 3: the queue pages (bit 0, the mailbox page, is mapped read-only when idle).
	[ -n "$direct" ] && [ $((direct & 12)) = 12 ] && [ "$dmode" = off ] &&
		pass "cancel: the queue pages are mapped into the guest again (no page stays trapped)" ||
		fail "cancel: after the cancel: direct pages mask '$direct', DMA mode '$dmode'"
}

# Each scenario's daemons and VMMs go when it is done: idle VMs still cost CPU here.
done_with() { pkill -KILL -f "$S/" 2>/dev/null; sleep 0.2; }
migrate_with off
done_with
migrate_with shadow
done_with
migrate_with track
done_with
cancel_shadowed
done_with

gw_finish "NIC migration"
