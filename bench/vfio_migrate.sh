#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench's passthrough migration cases, in the test hosts: the test guest's nic-echo on a
# VF of h1's igb (QEMU's 82576, Linux's igb PF) passed through by godwit's vfio backend, echoing
# godwit-nicpeer's frames (window 16) from h1's PF, migrates to h2, which has no VF ("absent":
# godwit's own model takes over), once per DMA mode (off, shadow, track), and back onto a VFIO VF
# of h1 ("match" or "mismatch"). Per migration: packets per second in steady state before it and
# during its pre-copy (stretched by a bandwidth cap), downtime, and the longest gap in the echoes
# (the traffic outage) with what was lost. "During" runs from the migration's start to that gap
# (the VF quiesced for re-creation), sampled every 100 ms. Then QEMU is asked to do the same with a VF it passed
# through with -device vfio-pci, and its refusal is recorded: it cannot migrate a VFIO device
# without a vendor migration driver.
# usage: bench/vfio_migrate.sh BUILD RAW   (appends JSON lines to RAW)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD=$(realpath "$1")
RAW=$2
RUNS=${VF_MIG_RUNS:-${RUNS:-3}}
CAP=${VF_MIG_BANDWIDTH:-64K} # stretches pre-copy (the guest dirties little) to seconds
WINDOW_S=${VF_MIG_WINDOW_S:-3}
PF=0000:00:04.0
GODWITD=$BUILD/daemon/godwitd
GODWIT=$BUILD/cli/godwit
GUEST=$BUILD/tests/guest/godwit-test-guest
PEER=$BUILD/tools/nicpeer/godwit-nicpeer
TH=("$SRC/tests/hosts/testhost.sh" --build "$BUILD")
log() { printf '[bench vfio-migrate] %s\n' "$*" >&2; }
py() { /usr/bin/python3 -c "$@"; }

"${TH[@]}" linux >/dev/null 2>&1 || true # the kernel QEMU is given
"${TH[@]}" boot h1 h2 >&2
X=$(mktemp -d "$BUILD/testhosts/bench-vfmig-XXXXXX")
sweep() {
	for h in h1 h2; do
		"${TH[@]}" run "$h" -- sh -c 'pkill -KILL -f "[g]w-bench-vf"; pkill -KILL -f "[g]odwit-nicpeer";
			pkill -KILL -f "[q]emu-system-x86_64"; sleep 1; rm -rf /tmp/[g]w-bench-vf*' >/dev/null 2>&1 || true
	done
	"${TH[@]}" run h1 -- bridge fdb del 02:00:00:00:00:01 dev eth1 self >/dev/null 2>&1 || true
}
cleanup() {
	sweep
	rm -rf "$X"
}
trap cleanup EXIT
sweep
"${TH[@]}" run h1 -- sh -c "echo 0 > /sys/bus/pci/devices/$PF/sriov_numvfs"
# daemon HOST PORT DIR ARGS...: a godwitd there, for as long as this script runs (the command
# that started it stays in the background); its address and token in X.
daemon() {
	local h=$1 port=$2 dir=$3 ip n
	shift 3
	ip=10.77.0.$((10 + ${h#h}))
	n=$(basename "$dir")
	"${TH[@]}" run "$h" --timeout 7200 -- bash -c '
		d=$1 x=$2 listen=$3 n=$4 h=$5; shift 5
		"$0" --listen "$listen" --state-dir "$d" --log-level info "$@" \
			--tls-cert "$x/ca/$h.pem" --tls-key "$x/ca/$h-key.pem" --tls-ca "$x/ca/ca.pem" \
			>"$x/$n.log" 2>&1 &
		for _ in $(seq 300); do [ -s "$d/listen-address" ] && break; sleep 0.1; done
		cp "$d/token" "$x/$n.token"; cp "$d/listen-address" "$x/$n.addr"
		wait' "$GODWITD" "$dir" "$X" "$ip:$port" "$n" "$h" "$@" >/dev/null 2>&1 &
	for _ in $(seq 600); do [ -s "$X/$n.addr" ] && return 0; sleep 0.1; done
	log "godwitd did not start on $h: $(tail -n 5 "$X/$n.log" 2>/dev/null)"
	return 1
}
# The daemons speak mutual TLS, as they would between real hosts.
MKCA=$SRC/scripts/make-test-ca.sh
"$MKCA" "$X/ca" ca && "$MKCA" "$X/ca" host h1 IP:10.77.0.11,DNS:h1 &&
	"$MKCA" "$X/ca" host h2 IP:10.77.0.12,DNS:h2
daemon h1 7710 /tmp/gw-bench-vf-a --pf "$PF,vfs=2"
daemon h2 7711 /tmp/gw-bench-vf-b --emul-nic none --emul-uplink packet:eth1
A=$(cat "$X/gw-bench-vf-a.addr") B=$(cat "$X/gw-bench-vf-b.addr")
GA=("${TH[@]}" run h1 -- "$GODWIT" --host "$A" --token-file "$X/gw-bench-vf-a.token" --tls-ca "$X/ca/ca.pem")
GB=("${TH[@]}" run h1 -- "$GODWIT" --host "$B" --token-file "$X/gw-bench-vf-b.token" --tls-ca "$X/ca/ca.pem")
# The peer runs on h1's PF: QEMU's igb switches its frames to the VF while the VM is on h1 (the
# PF takes the peer's MAC as its own, so the echoes come back to it), the data segment to h2.
"${TH[@]}" run h1 -- bridge fdb replace 02:00:00:00:00:01 dev eth1 self permanent
"${GA[@]}" vm create bm --memory 64M --guest "$GUEST" --cmdline nic-echo:0 \
	--nic vf,backend=vfio >&2
"${GA[@]}" vm start bm >&2
BMMAC=$("${GA[@]}" --json vm info bm | py 'import json,sys; print(json.load(sys.stdin)["nics"][0]["mac"])')

stats() { py 'import json,sys; s=json.load(open(sys.argv[1])); print(s["elapsed_s"], s["received"])' "$1" 2>/dev/null || echo "0 0"; }
fresh() { sleep 0.15; stats "$1"; }
# until_more FILE N SECS: until the peer has N more echoes than now.
until_more() {
	local r0 r
	r0=$(stats "$1" | cut -d' ' -f2)
	for _ in $(seq $(($3 * 10))); do
		r=$(stats "$1" | cut -d' ' -f2)
		[ "$r" -ge $((r0 + $2)) ] && return 0
		sleep 0.1
	done
	return 1
}

# one CASE MODE RUN G... :: MIGRATE-ARGS...: one migration with its own peer; a JSON line.
one() {
	local case=$1 mode=$2 run=$3 S
	shift 3
	S=$X/$case-$mode-$run
	mkdir -p "$S"
	local g=() m=()
	while [ "$1" != :: ]; do g+=("$1"); shift; done
	shift
	m=("$@")
	"${TH[@]}" run h1 --timeout 900 -- "$PEER" --listen packet:eth1 --window 16 --duration 600 \
		--vf-mac "$BMMAC" --stats-file "$S/stats.json" --stats-every 100 --json --quiet \
		>"$S/peer.json" 2>"$S/peer.err" &
	local peer=$!
	until_more "$S/stats.json" 1000 300 || log "$case $mode: the VM does not echo"
	local s0 s1 ok=true mig
	s0=$(fresh "$S/stats.json")
	sleep "$WINDOW_S"
	s1=$(fresh "$S/stats.json")
	# The peer's count every 100 ms while the migration runs: "during" is from its start to
	# the echoes' longest gap (the VF quiesced and re-created), found afterwards.
	"${g[@]}" --json migrate bm "${m[@]}" --allow-tsc-change >"$S/mig.json" 2>"$S/mig.err" &
	mig=$!
	: >"$S/series"
	while kill -0 "$mig" 2>/dev/null; do
		stats "$S/stats.json" >>"$S/series"
		sleep 0.1
	done
	wait "$mig" || ok=false
	until_more "$S/stats.json" 500 120 || ok=false
	"${TH[@]}" run h1 -- pkill -INT -f "[g]odwit-nicpeer --listen packet:eth1"
	wait "$peer" || true
	py '
import json, sys
case, mode, run, ok, s = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "true", sys.argv[5]
st = [tuple(map(float, a.split())) for a in sys.argv[6:8]]
def pps(a, b):
    return (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else None
ser = [tuple(map(float, l.split())) for l in open(s + "/series") if len(l.split()) == 2]
ser = [p for p in ser if p[0] > 0]
# The longest stretch without a new echo; "during" ends where it begins.
gap_at, gap = len(ser) - 1, 0.0
for i in range(len(ser)):
    j = i
    while j + 1 < len(ser) and ser[j + 1][1] == ser[i][1]:
        j += 1
    if ser[j][0] - ser[i][0] > gap:
        gap, gap_at = ser[j][0] - ser[i][0], i
during = pps(ser[0], ser[gap_at]) if ser and gap_at > 0 else None
try:
    m = json.loads(open(s + "/mig.json").read().strip().split("\n")[-1])
except (OSError, ValueError, IndexError):
    m = {}
try:
    p = json.load(open(s + "/peer.json"))
except (OSError, ValueError):
    p = {}
dec = " ".join(d.get("decision", "") for d in m.get("decisions", []))
ok = ok and m.get("phase") == "MIGRATION_PHASE_DONE"
err = ""
if not ok:
    err = m.get("error") or open(s + "/mig.err").read().strip()[-300:]
print(json.dumps({
    "tool": "godwit", "case": case, "mode": mode, "run": run, "ok": ok, "decision": dec,
    "pps_before": pps(st[0], st[1]), "pps_during": during,
    "during_s": ser[gap_at][0] - ser[0][0] if ser else None,
    "migration_s": ser[-1][0] - ser[0][0] if ser else None,
    "downtime_ms": int(m.get("downtimeUs", 0)) / 1e3,
    "outage_ms": p.get("max_outage_ms"), "lost": p.get("lost"), "corrupt": p.get("corrupt"),
    "duplicates": p.get("duplicates"), "error": err}))' \
		"$case" "$mode" "$run" "$ok" "$S" "$s0" "$s1" >>"$RAW"
	log "$case $mode run $run: $(tail -n 1 "$RAW")"
}

for run in $(seq "$RUNS"); do
	for mode in off shadow track; do
		one vf-migrate "$mode" "$run" "${GA[@]}" :: --to "$B" \
			--to-token-file "$X/gw-bench-vf-b.token" --dma-mode "$mode" --max-bandwidth "$CAP"
		one vf-return "$mode" "$run" "${GB[@]}" :: --to "$A" \
			--to-token-file "$X/gw-bench-vf-a.token"
	done
done

# QEMU with a VF of the same PF passed through (-device vfio-pci), asked to migrate.
"${GA[@]}" vm stop bm >&2 || true
"${GA[@]}" --json host info >"$X/host.json"
VF=$(py 'import json,sys
vfs = json.load(open(sys.argv[1]))["sriovPfs"][0]["vfs"]
print([v["hostAddress"] for v in vfs if v["available"]][0])' "$X/host.json")
KERNEL=$(cat "$BUILD/testhosts/linux-kernel")
"${TH[@]}" run h1 --timeout 120 -- bash -c '
	qemu-system-x86_64 -accel kvm -cpu host -m 256 -nodefaults -display none -S \
		-kernel "$1" -append "console=ttyS0" -device "vfio-pci,host=$2" \
		-qmp "unix:$3/qmp.sock,server=on,wait=off" >"$3/qemu.log" 2>&1 &
	q=$!
	python3 - "$3/qmp.sock" >"$3/qemu-migrate.json" <<"PY"
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(300):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.1)
f = s.makefile("rw")
json.loads(f.readline())
def cmd(name, **args):
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
cmd("qmp_capabilities")
r = cmd("migrate", uri="exec:cat >/dev/null")
info = cmd("query-migrate").get("return", {})
print(json.dumps({"migrate": r, "query": info}))
PY
	kill -KILL $q; wait $q 2>/dev/null; true' qemu-refusal "$KERNEL" "$VF" "$X" || true
py '
import json, sys
x = sys.argv[1]
try:
    q = json.load(open(x + "/qemu-migrate.json"))
    err = q["migrate"].get("error", {}).get("desc", "")
    refused = bool(err) or q["query"].get("status") == "failed"
    why = err or q["query"].get("error-desc", "")
except (OSError, ValueError, KeyError) as e:
    try:
        out = open(x + "/qemu.log").read()[-300:]
    except OSError:
        out = ""
    refused, why = False, "QEMU did not answer: " + str(e) + " " + out
print(json.dumps({"tool": "qemu", "case": "vf-migrate", "mode": "-", "run": 1, "ok": False,
                  "refused": refused, "error": why}))' "$X" >>"$RAW"
log "qemu: $(tail -n 1 "$RAW")"
