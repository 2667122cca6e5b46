#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, NIC migration case: packets per second through an emulated VF before, during
# and after a live migration with each DMA mode (off, shadow, track), and the VM exits per
# packet in steady state before and after. Two godwitd, one godwit-nicpeer as the switch.
# Usage: bench/nic_migrate.sh BUILD RAW.jsonl   (appends one JSON line per mode)
set -euo pipefail
BUILD=$(realpath "$1")
RAW=$2
WINDOW_S=${NIC_MIG_WINDOW_S:-2}	  # steady-state measuring windows
CAP=${NIC_MIG_BANDWIDTH:-512K}	  # stretches pre-copy so that "during" is measurable
RUNS=${NIC_MIG_RUNS:-5}		  # per mode, interleaved; the report takes medians
GODWITD=$BUILD/daemon/godwitd
GODWIT=$BUILD/cli/godwit
GUEST=$BUILD/tests/guest/godwit-test-guest
PEER=$BUILD/tools/nicpeer/godwit-nicpeer
WORK=$(mktemp -d /tmp/godwit-bench-nicmig-XXXXXX)
cleanup() {
	pkill -KILL -f "$WORK/" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[bench] %s\n' "$*" >&2; }
py() { /usr/bin/python3 -c "$@"; }

# stats FILE: "elapsed received" from the peer's stats file.
stats() { py 'import json,sys; s=json.load(open(sys.argv[1])); print(s["elapsed_s"], s["received"])' "$1"; }
# exits HOST TOKEN VM: I/O + MMIO exits of a running VM so far.
exits() {
	"$GODWIT" --host "$1" --token-file "$2" --json vm info "$3" |
		py 'import json,sys; v=json.load(sys.stdin); print(int(v.get("exitsIo",0))+int(v.get("exitsMmio",0)))'
}
fresh() { sleep 0.15; stats "$1"; } # a snapshot newer than now (written every 100 ms)

one() { # MODE RUN
	local mode=$1 run=$2 S=$WORK/$1-$2
	mkdir -p "$S"
	"$PEER" --listen udp:127.0.0.1:0 --ready-file "$S/ready" --window 32 --duration 120 \
		--wait-announce 60 --stats-file "$S/stats.json" --stats-every 100 --json --quiet \
		>"$S/peer.json" 2>"$S/peer.err" &
	local peer=$!
	for _ in $(seq 100); do [ -s "$S/ready" ] && break; sleep 0.05; done
	local h
	for h in a b; do
		"$GODWITD" --listen 127.0.0.1:0 --state-dir "$S/$h" --log-level warn \
			--emul-nic "gen=1,vfs=1,uplink=$(cat "$S/ready")" >"$S/$h.log" 2>&1 &
		disown
	done
	for h in a b; do
		for _ in $(seq 100); do [ -s "$S/$h/listen-address" ] && break; sleep 0.05; done
	done
	local A B
	A=$(cat "$S/a/listen-address")
	B=$(cat "$S/b/listen-address")
	"$GODWIT" --host "$A" --token-file "$S/a/token" vm create nic --memory 64M --guest "$GUEST" \
		--cmdline nic-echo --nic vf >/dev/null
	"$GODWIT" --host "$A" --token-file "$S/a/token" vm start nic >/dev/null
	for _ in $(seq 600); do
		[ -s "$S/stats.json" ] && [ "$(stats "$S/stats.json" | cut -d' ' -f2)" -gt 3000 ] && break
		sleep 0.1
	done
	# Steady state on A.
	local s0 s1 s2 s3 s4 s5 e0 e1 e4 e5
	s0=$(fresh "$S/stats.json")
	e0=$(exits "$A" "$S/a/token" nic)
	sleep "$WINDOW_S"
	s1=$(fresh "$S/stats.json")
	e1=$(exits "$A" "$S/a/token" nic)
	# The migration, with traffic flowing.
	s2=$(fresh "$S/stats.json")
	local ok=true
	"$GODWIT" --host "$A" --token-file "$S/a/token" --json migrate nic --to "$B" \
		--to-token-file "$S/b/token" --dma-mode "$mode" --max-bandwidth "$CAP" \
		>"$S/mig.json" 2>"$S/mig.err" || ok=false
	s3=$(stats "$S/stats.json")
	# Steady state on B.
	sleep 1
	s4=$(fresh "$S/stats.json")
	e4=$(exits "$B" "$S/b/token" nic)
	sleep "$WINDOW_S"
	s5=$(fresh "$S/stats.json")
	e5=$(exits "$B" "$S/b/token" nic)
	kill -INT "$peer" 2>/dev/null || true
	wait "$peer" || true
	py '
import json, sys
mode, ok, raw = sys.argv[1], sys.argv[2] == "true", sys.argv[3]
s = [tuple(map(float, a.split())) for a in sys.argv[4:10]]
e0, e1, e4, e5 = map(int, sys.argv[10:14])
run = int(sys.argv[14])
def pps(a, b):
    return (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else None
def per(ea, eb, a, b):
    return (eb - ea) / (b[1] - a[1]) if b[1] > a[1] else None
m = {}
try:
    m = json.loads(open(raw + "/mig.json").read().strip().split("\n")[-1])
except (OSError, ValueError, IndexError):
    pass
try:
    peer = json.load(open(raw + "/peer.json"))
except (OSError, ValueError):
    peer = {}
ok = ok and m.get("phase") == "MIGRATION_PHASE_DONE"
print(json.dumps({
    "tool": "godwit", "case": "nic-migrate", "mode": mode, "run": run, "ok": ok,
    "pps_before": pps(s[0], s[1]), "pps_during": pps(s[2], s[3]), "pps_after": pps(s[4], s[5]),
    "migration_s": s[3][0] - s[2][0],
    "exits_per_packet_before": per(e0, e1, s[0], s[1]),
    "exits_per_packet_after": per(e4, e5, s[4], s[5]),
    "downtime_ms": int(m.get("downtimeUs", 0)) / 1e3,
    "dma_pages": int(m.get("dmaPagesDirtied", 0)), "dma_bytes": int(m.get("dmaBytesCopied", 0)),
    "lost": peer.get("lost"), "corrupt": peer.get("corrupt"), "duplicates": peer.get("duplicates"),
    "error": m.get("error", "") if not ok else ""}))' \
		"$mode" "$ok" "$S" "$s0" "$s1" "$s2" "$s3" "$s4" "$s5" "$e0" "$e1" "$e4" "$e5" "$run" >>"$RAW"
	log "nic-migrate $mode: $(tail -n 1 "$RAW")"
	pkill -KILL -f "$S/" 2>/dev/null || true
	sleep 0.3
}

log "nic-migrate: pre-copy capped at $CAP/s, ${WINDOW_S} s steady-state windows, $RUNS runs"
for run in $(seq "$RUNS"); do
	for mode in off shadow track; do
		one "$mode" "$run"
	done
done
