#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench, NIC case: packets per second through godwit's emulated SR-IOV VF, the test
# guest echoing what godwit-nicpeer sends, and the VM exits each packet costs.
# Usage: bench/nic.sh BUILD RAW.jsonl   (appends one JSON line per configuration)
set -euo pipefail
BUILD=$(realpath "$1")
RAW=$2
FRAMES=${NIC_FRAMES:-20000}
WINDOW=${NIC_WINDOW:-32}
VMM=$BUILD/vmm/godwit-vmm
GUEST=$BUILD/tests/guest/godwit-test-guest
PEER=$BUILD/tools/nicpeer/godwit-nicpeer
WORK=$(mktemp -d /tmp/godwit-bench-nic-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
log() { printf '[bench] %s\n' "$*" >&2; }

# one CONFIG GUESTOPTS VFOPTS GEN
one() {
	local config=$1 gopts=$2 vfopts=$3 gen=$4
	rm -f "$WORK/ready"
	"$PEER" --listen udp:127.0.0.1:0 --ready-file "$WORK/ready" --count "$FRAMES" \
		--window "$WINDOW" --json --quiet >"$WORK/peer.json" 2>"$WORK/peer.err" &
	local peer=$!
	for _ in $(seq 100); do [ -s "$WORK/ready" ] && break; sleep 0.05; done
	"$VMM" --memory 64M --guest "$GUEST" --cmdline "nic-echo:$FRAMES$gopts" \
		--serial "file:$WORK/console" --json --timeout 600 --log-level warn \
		--vf "pf=0,vf=2,gen=$gen,mac=02:67:77:00:00:02$vfopts,uplink=$(cat "$WORK/ready")" \
		>"$WORK/vmm.json" 2>"$WORK/vmm.err" || true
	wait "$peer" || true
	/usr/bin/python3 - "$WORK/peer.json" "$WORK/vmm.json" "$config" "$FRAMES" "$WINDOW" \
		>>"$RAW" <<'EOF'
import json, sys
peer, vmm, config, frames, window = sys.argv[1:6]
try:
    p = json.load(open(peer))
    v = json.load(open(vmm))
except (OSError, ValueError) as e:
    print(json.dumps({"tool": "godwit", "case": "nic-echo", "config": config, "ok": False,
                      "error": str(e)}))
    sys.exit(0)
ex = v.get("exits", {})
exits = sum(ex.get(k, 0) for k in ("io", "mmio", "hlt"))
got = p.get("received", 0)
vf = (v.get("vfs") or [{}])[0]
print(json.dumps({
    "tool": "godwit", "case": "nic-echo", "config": config, "ok": p.get("result") == "pass",
    "frames": int(frames), "window": int(window), "received": got, "lost": p.get("lost"),
    "pps": p.get("pps"), "rtt_avg_us": p.get("rtt_us", {}).get("avg"),
    "rx_no_desc": vf.get("rx_no_desc"), "exits": exits,
    "mbx_exchanges": vf.get("mbx_exchanges"), "mbx_exits": vf.get("mbx_exits"),
    "mbx_idle_exits_per_s": (vf.get("mbx_idle_exits", 0) / p["elapsed_s"]
                             if p.get("elapsed_s") else None),
    "mbx_exits_per_exchange": (vf.get("mbx_exits", 0) / vf["mbx_exchanges"]
                               if vf.get("mbx_exchanges") else None), "mmio_exits": ex.get("mmio", 0),
    "exits_per_packet": exits / got if got else None,
    "irqs_per_packet": vf.get("irqs", 0) / got if got else None,
    "error": "" if p.get("result") == "pass" else p.get("result", "?")}))
EOF
	log "nic-echo $config: $(tail -n 1 "$RAW")"
}

log "nic-echo: $FRAMES frames, window $WINDOW, per configuration"
one "gen1 msix trapped-pages" "" ",pages=trap" 1
one "gen1 msix direct-pages" "" ",pages=direct" 1
one "gen1 intx trapped-pages" ":intx" ",pages=trap" 1
one "gen1 poll trapped-pages" ":poll" ",pages=trap" 1
one "gen2 msix 2-queues" "" ",pages=trap" 2
one "gen1 msix mailbox page always trapped" "" ",pages=trap,mbx=trap" 1
