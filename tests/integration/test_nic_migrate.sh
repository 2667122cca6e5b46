#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A VM with an emulated VF live-migrates between two godwitd (same generation) while
# godwit-nicpeer keeps traffic flowing through it, once per DMA mode:
#   off     the negative control: the guest's own checks find received data that arrived
#           stale on the destination (device writes that dirty tracking never saw)
#   shadow  and track: corruption 0, duplicates 0, loss no more than the frames sent while
#           the VM was not running, no stale data, and the guest keeps echoing on B
# and a shadowed migration cancelled mid-pre-copy: traffic goes on at the source without
# loss, and the queue pages are mapped into the guest again.
# The guest runs nic-echo with "hold": received frames stay in their buffers (a pool of 256
# per queue) and are checked again before each buffer is reused.
set -u
. "$(dirname "$0")/nic_lib.sh" gw-nicmig "$@"

# A steady rate keeps frames flowing for about 10 s, so the migration happens mid-stream.
COUNT=${GW_NIC_MIGRATE_FRAMES:-8000}
RATE=${GW_NIC_MIGRATE_RATE:-800}

# The last migration state printed by --json (one object per line).
mig_field() { /usr/bin/python3 -c 'import json,sys
m = json.loads(open(sys.argv[1]).read().strip().split("\n")[-1])
print(m.get(sys.argv[2], 0))' "$1" "$2" 2>/dev/null; }

# setup NAME: a peer, two daemons cabled to it, VM NAME echoing on A. Sets S, GA, GB, B.
setup() {
	local name=$1
	S=$TMP/$name
	mkdir -p "$S"
	"$PEER" --listen udp:127.0.0.1:0 --ready-file "$S/ready" --count "$COUNT" --rate "$RATE" \
		--window 8 --wait-announce 120 --stats-file "$S/stats.json" --json --quiet \
		>"$S/peer.json" 2>"$S/peer.err" &
	PEER_PID=$!
	for _ in $(seq 100); do [ -s "$S/ready" ] && break; sleep 0.05; done
	local uplink
	uplink=$(cat "$S/ready")
	daemon "$name/a" --emul-nic "gen=1,vfs=2,uplink=$uplink"
	daemon "$name/b" --emul-nic "gen=1,vfs=2,uplink=$uplink"
	B=$(cat "$S/b/listen-address")
	GA=("$GODWIT" --host "$(cat "$S/a/listen-address")" --token-file "$S/a/token")
	GB=("$GODWIT" --host "$B" --token-file "$S/b/token")
	"${GA[@]}" vm create "$name" --memory 64M --guest "$GUEST" --cmdline nic-echo:0:hold \
		--nic vf >"$S/out" 2>&1 || { fail "$name: create: $(cat "$S/out")"; return 1; }
	"${GA[@]}" vm start "$name" >"$S/out" 2>&1 || { fail "$name: start: $(cat "$S/out")"; return 1; }
	# Migrate once a third of the frames went through, with the traffic still running.
	for _ in $(seq 1200); do [ "$(received "$S")" -ge $((COUNT / 3)) ] && break; sleep 0.1; done
	BEFORE=$(received "$S")
	if [ "$BEFORE" -lt $((COUNT / 3)) ]; then
		fail "$name: traffic never got going on A (received $BEFORE)"
		tail -5 "$S/a.log" "$S/peer.err"
		return 1
	fi
}

# peer_report NAME: waits for the peer and reads its report into variables.
peer_report() {
	wait "$PEER_PID"
	PRC=$?
	SENT=$(jget "$S/peer.json" "['sent']")
	GOT=$(jget "$S/peer.json" "['received']")
	LOST=$(jget "$S/peer.json" "['lost']")
	DUP=$(jget "$S/peer.json" "['duplicates']")
	BAD=$(jget "$S/peer.json" "['corrupt']")
	ANN=$(jget "$S/peer.json" "['announces']")
	OUTAGE=$(jget "$S/peer.json" "['sent_during_outage']")
	GAP=$(jget "$S/peer.json" "['max_outage_ms']")
	echo "     $1 frames: sent $SENT received $GOT lost $LOST duplicates $DUP corrupt $BAD;" \
		"longest outage ${GAP} ms with $OUTAGE frames sent during it; announces $ANN"
}

# migrate_with MODE: the whole scenario for one DMA mode.
migrate_with() {
	local mode=$1 name=echo-$1
	setup "$name" || return
	pass "$mode: the guest echoes on A ($BEFORE frames so far)"
	if ! "${GA[@]}" --json migrate "$name" --to "$B" --to-token-file "$S/b/token" \
		--dma-mode "$mode" >"$S/mig.json" 2>"$S/mig.err"; then
		fail "$mode: migrate: $(cat "$S/mig.err" "$S/mig.json")"
		return
	fi
	local down pages copied shown
	down=$(mig_field "$S/mig.json" downtimeUs)
	pages=$(mig_field "$S/mig.json" dmaPagesDirtied)
	copied=$(mig_field "$S/mig.json" dmaBytesCopied)
	shown=$(mig_field "$S/mig.json" dmaMode)
	pass "$mode: migrated A -> B with traffic running (downtime $((down / 1000)) ms; device DMA: $pages pages made dirty, $copied bytes copied)"
	[ "$shown" = "$mode" ] || fail "$mode: the migration reports DMA mode '$shown'"
	peer_report "$mode"
	# The guest's verdicts: its reports, in the VMM's log and in its final status.
	"${GB[@]}" vm stop "$name" >/dev/null 2>&1
	local blog=$S/b/vms/$name/vmm.log bexit=$S/b/vms/$name/exit.json stale gbad
	for _ in $(seq 50); do [ -s "$bexit" ] && break; sleep 0.1; done
	stale=$(grep -c "guest report nic-stale" "$blog")
	gbad=$(jget "$bexit" "['nic_bad']" 2>/dev/null || echo "?")
	case $mode in
	off)
		[ "$pages" = 0 ] && pass "off: nothing was made visible" ||
			fail "off: $pages pages marked dirty with DMA tracking off"
		if [ "$stale" -gt 0 ]; then
			pass "off: the guest on B found received data stale ($gbad failed checks; $(grep -m1 "guest report nic-stale" "$blog" | sed 's/.*report //'))"
		else
			fail "off: the guest found no stale data; the negative control shows nothing"
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
		if [ "$LOST" -le "$OUTAGE" ]; then
			pass "$mode: lost $LOST <= $OUTAGE frames sent while the VM was not running"
		else
			fail "$mode: lost $LOST frames, more than the $OUTAGE sent during the outage (peer exit $PRC)"
		fi
		[ "$ANN" -ge 2 ] && pass "$mode: the destination announced the VF's new place" ||
			fail "$mode: only $ANN announce(s): the destination never spoke"
		if [ "$GOT" -ge $((BEFORE + COUNT / 3)) ]; then
			pass "$mode: the guest kept echoing on B ($((GOT - BEFORE)) frames after the migration began)"
		else
			fail "$mode: too few echoes after the migration: $GOT in all, $BEFORE before"
		fi
		grep -q '"result":"stopped\|"exit_code"' "$bexit" && ! grep -q crash "$bexit" &&
			pass "$mode: $name ran on B until stopped" ||
			fail "$mode: $name on B: $(cat "$bexit")"
		;;
	esac
}

# A shadowed migration cancelled mid-pre-copy (held there by a bandwidth cap).
cancel_shadowed() {
	local name=echo-cancel
	setup "$name" || return
	local id
	if ! id=$("${GA[@]}" migrate "$name" --to "$B" --to-token-file "$S/b/token" \
		--max-bandwidth 256K --detach 2>"$S/mig.err"); then
		fail "cancel: migrate --detach: $(cat "$S/mig.err")"
		return
	fi
	id=$(echo "$id" | grep -Eo '[0-9a-f]{16}' | head -1)
	sleep 1.5
	"${GA[@]}" migration status "$id" >"$S/st1" 2>&1
	grep -q "precopy\|PRECOPY\|pre-copy" "$S/st1" && pass "cancel: migration $id is in pre-copy" ||
		fail "cancel: not in pre-copy before the cancel: $(cat "$S/st1")"
	"${GA[@]}" migration cancel "$id" >"$S/st2" 2>&1
	for _ in $(seq 100); do
		"${GA[@]}" migration status "$id" >"$S/st3" 2>&1
		grep -qi "cancel" "$S/st3" && break
		sleep 0.1
	done
	grep -qi "cancel" "$S/st3" && pass "cancel: the migration ended cancelled" ||
		fail "cancel: $(cat "$S/st3")"
	peer_report cancel
	[ "$BAD" = 0 ] && [ "$DUP" = 0 ] && pass "cancel: no corrupt or duplicate frame" ||
		fail "cancel: $BAD corrupt, $DUP duplicate frames"
	[ "$LOST" -le "$OUTAGE" ] && pass "cancel: lost $LOST <= $OUTAGE frames sent during an outage" ||
		fail "cancel: lost $LOST frames (outage: $OUTAGE)"
	[ "$GOT" -ge $((COUNT - OUTAGE)) ] && pass "cancel: the source kept echoing ($GOT of $SENT)" ||
		fail "cancel: only $GOT of $SENT echoed"
	"${GA[@]}" vm stop "$name" >/dev/null 2>&1
	local log=$S/a/vms/$name/vmm.log exit=$S/a/vms/$name/exit.json
	for _ in $(seq 50); do [ -s "$exit" ] && break; sleep 0.1; done
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

finish "NIC migration"
