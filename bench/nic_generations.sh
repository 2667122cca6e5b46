#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, NIC generations case: the downtime of a migration whose NIC decision is match
# (gen1 -> gen1), mismatch (gen1 -> gen2: quiesced, re-created) or absent (gen1 -> a host
# without VFs: emulated), and the traffic's longest outage as the peer saw it.
# Usage: bench/nic_generations.sh BUILD RAW.jsonl   (appends one JSON line per run)
set -euo pipefail
BUILD=$(realpath "$1")
RAW=$2
RUNS=${NIC_GEN_RUNS:-3}
GODWITD=$BUILD/daemon/godwitd
GODWIT=$BUILD/cli/godwit
GUEST=$BUILD/tests/guest/godwit-test-guest
PEER=$BUILD/tools/nicpeer/godwit-nicpeer
WORK=$(mktemp -d /tmp/godwit-bench-nicgen-XXXXXX)
cleanup() {
	pkill -KILL -f "$WORK/" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[bench] %s\n' "$*" >&2; }

one() { # DECISION RUN DEST-ARGS...
	local decision=$1 run=$2 S=$WORK/$1-$2
	shift 2
	mkdir -p "$S"
	"$PEER" --listen udp:127.0.0.1:0 --ready-file "$S/ready" --count 4000 --rate 500 --window 8 \
		--wait-announce 60 --stats-file "$S/stats.json" --json --quiet >"$S/peer.json" \
		2>"$S/peer.err" &
	local peer=$!
	for _ in $(seq 100); do [ -s "$S/ready" ] && break; sleep 0.05; done
	local up
	up=$(cat "$S/ready")
	"$GODWITD" --listen 127.0.0.1:0 --state-dir "$S/a" --log-level warn \
		--emul-nic "gen=1,vfs=1,uplink=$up" >/dev/null 2>&1 &
	disown
	"$GODWITD" --listen 127.0.0.1:0 --state-dir "$S/b" --log-level warn "${@//UPLINK/$up}" \
		>/dev/null 2>&1 &
	disown
	for h in a b; do
		for _ in $(seq 100); do [ -s "$S/$h/listen-address" ] && break; sleep 0.05; done
	done
	local GA=("$GODWIT" --host "$(cat "$S/a/listen-address")" --token-file "$S/a/token")
	"${GA[@]}" vm create g --memory 64M --guest "$GUEST" --cmdline nic-echo:0 --nic vf >/dev/null
	"${GA[@]}" vm start g >/dev/null
	for _ in $(seq 300); do
		[ -s "$S/stats.json" ] && [ "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["received"])' "$S/stats.json")" -ge 1000 ] && break
		sleep 0.1
	done
	"${GA[@]}" --json migrate g --to "$(cat "$S/b/listen-address")" --to-token-file "$S/b/token" \
		>"$S/mig.json" 2>"$S/mig.err" || true
	wait "$peer" || true
	/usr/bin/python3 - "$decision" "$run" "$S" >>"$RAW" <<'EOF'
import json, sys
decision, run, s = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    m = json.loads(open(s + "/mig.json").read().strip().split("\n")[-1])
except (OSError, ValueError, IndexError):
    m = {}
try:
    p = json.load(open(s + "/peer.json"))
except (OSError, ValueError):
    p = {}
got = (m.get("decisions") or [{}])[0].get("decision", "")
ok = m.get("phase") == "MIGRATION_PHASE_DONE" and got == decision
print(json.dumps({"tool": "godwit", "case": "nic-generations", "decision": decision, "run": run,
                  "ok": ok, "downtime_ms": int(m.get("downtimeUs", 0)) / 1e3,
                  "total_ms": int(m.get("totalTimeUs", 0)) / 1e3,
                  "outage_ms": p.get("max_outage_ms"), "lost": p.get("lost"),
                  "duplicates": p.get("duplicates"), "corrupt": p.get("corrupt"),
                  "error": "" if ok else (m.get("error") or "decision %r" % got)}))
EOF
	log "nic-generations $decision run $run: $(tail -n 1 "$RAW")"
	pkill -KILL -f "$S/" 2>/dev/null || true
	sleep 0.3
}

log "nic-generations: gen1 -> gen1, gen2 and no VF, $RUNS runs each"
for run in $(seq "$RUNS"); do
	one match "$run" --emul-nic "gen=1,vfs=1,uplink=UPLINK"
	one mismatch "$run" --emul-nic "gen=2,vfs=1,uplink=UPLINK"
	one absent "$run" --emul-nic none --emul-uplink UPLINK
done
