#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench's cycles case (BENCH_ONLY=cycles): where the CPU goes per page on each side of a
# migration. A 2 GiB VM holding CYCLES_MIB (default 512) MiB of pseudo-random data, idle, is
# migrated once between two godwitd over loopback while `perf record -a` samples every CPU;
# then the same with QEMU multifd (2 channels) for comparison. Samples are split by process
# (source godwit-vmm, destination godwit-vmm, the godwitds, the QEMUs), summed into CPU time and
# cycles per page, and the top functions of each side are listed (bench/cycles.py).
# The event is `cycles` where perf has hardware counters (perf stat -e cycles true), else
# `cpu-clock` (a timer: CPU time, no cycle count; test hosts under TCG have no PMU).
# Needs a KVM that runs the guests: natively or in test host h1, like the other cases.
# usage: bench/cycles.sh BUILD RAW          (appends JSON lines to RAW)
#        bench/cycles.sh --here BUILD OUT
# Knobs: CYCLES_MIB, CYCLES_FREQ (samples per second per CPU, default 2000), CYCLES_QEMU=0
# (godwit only), CHANNELS (godwit's).
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MIB=${CYCLES_MIB:-512}
FREQ=${CYCLES_FREQ:-2000}
CYCLES_QEMU=${CYCLES_QEMU:-1}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
log() { printf '[bench cycles] %s\n' "$*" >&2; }

if [ "${1:-}" != --here ]; then
	CYCLES_MIB=$MIB CYCLES_FREQ=$FREQ CYCLES_QEMU=$CYCLES_QEMU \
		bench_dispatch "$0" "$(realpath "$1")" "$2" cycles 3600 CYCLES_MIB CYCLES_FREQ \
		CYCLES_QEMU CHANNELS
	exit $?
fi

bench_here "$2" "$3"
WORK=$(mktemp -d /tmp/godwit-bench-cyc-XXXXXX)
cleanup() {
	[ -n "${PERF:-}" ] && kill -INT "$PERF" 2>/dev/null
	pkill -KILL -f "$WORK/" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
command -v perf >/dev/null || { log "perf is missing (linux-perf: scripts/install-deps.sh)"; exit 2; }
EVENT=cpu-clock
if perf stat -x, -e cycles true 2>&1 >/dev/null | grep -q '^[0-9]'; then
	EVENT=cycles
fi
MHZ=$(awk -F: '/^cpu MHz/ {print $2 + 0; exit}' /proc/cpuinfo)
log "event $EVENT, $FREQ samples/s per CPU, ${MHZ:-?} MHz, $(nproc) CPUs"

# perf_start NAME: system-wide sampling into WORK/NAME.data, and every thread's CPU time from
# /proc (bench/cpu_sampler.py: exact where the sampling is thin) into WORK/NAME.cpu, until
# perf_stop.
perf_start() {
	rm -f "$WORK/$1.stop"
	/usr/bin/python3 "$HERE/cpu_sampler.py" "$WORK/" "$WORK/$1.stop" "$WORK/$1.cpu" &
	SAMPLER=$!
	# cpu-clock on a fixed period (ns): in a test host, -F's frequency mode recorded next to
	# nothing (2026-12-05: 28 samples over a 31 s migration)
	local rate=(-F "$FREQ")
	[ "$EVENT" = cpu-clock ] && rate=(-c $((1000000000 / FREQ)))
	perf record -a -e "$EVENT" "${rate[@]}" -o "$WORK/$1.data" >"$WORK/$1.perf.log" 2>&1 &
	PERF=$!
	sleep 1 # perf is sampling once it has opened its events on every CPU
}
perf_stop() { # NAME
	# TERM, not INT: a background job of a script ignores SIGINT, and perf kept it so
	kill -TERM "$PERF" 2>/dev/null || true
	wait "$PERF" 2>/dev/null || true
	PERF=
	touch "$WORK/$1.stop"
	wait "$SAMPLER" 2>/dev/null || true
}

# summarize NAME TOOL ROLES-JSON MIGRATION-JSON: one JSON line to OUT.
summarize() {
	[ -s "$WORK/$1.data" ] || log "perf recorded nothing: $(tail -n 3 "$WORK/$1.perf.log")"
	perf script -i "$WORK/$1.data" -F pid,tid,comm,period,ip,sym,dso 2>"$WORK/$1.script.err" |
		/usr/bin/python3 "$HERE/cycles.py" --tool "$2" --event "$EVENT" --mhz "${MHZ:-0}" \
			--freq "$FREQ" --roles "$3" --migration "$4" --cpu "$WORK/$1.cpu" \
			--perf-log "$WORK/$1.perf.log" >>"$OUT"
	log "$2: $(tail -n 1 "$OUT" | cut -c1-600)"
}

# ---------------- godwit ----------------
godwit_case() {
	for h in a b; do
		"$GODWITD" --listen 127.0.0.1:0 --state-dir "$WORK/g-$h" --log-level info --insecure \
			>"$WORK/g-$h.log" 2>&1 &
		disown
	done
	for h in a b; do
		for _ in $(seq 200); do [ -s "$WORK/g-$h/listen-address" ] && break; sleep 0.05; done
	done
	G() { local h=$1; shift; "$GODWIT" --host "$(cat "$WORK/g-$h/listen-address")" \
		--token-file "$WORK/g-$h/token" "$@"; }
	G a vm create bench --memory 2G --guest "$GUEST" --cmdline "fill-random:$MIB" >/dev/null
	G a vm start bench >/dev/null
	for _ in $(seq 2400); do
		grep -q "guest report checksum" "$WORK/g-a/vms/bench/vmm.log" 2>/dev/null && break
		sleep 0.5
	done
	sleep 1
	local gsrc gdst vsrc vdst
	gsrc=$(pgrep -f -- "--state-dir $WORK/g-a" | head -1) || true
	gdst=$(pgrep -f -- "--state-dir $WORK/g-b" | head -1) || true
	vsrc=$(pgrep -f -- "godwit-vmm.*$WORK/g-a/" | head -1) || true
	# The source's log goes with its VM once the destination commits: follow it meanwhile.
	tail -n 0 -F "$WORK/g-a/vms/bench/vmm.log" >"$WORK/g-a.vmm.log" 2>/dev/null &
	local tailp=$!
	perf_start godwit
	G a --json migrate bench --to "$(cat "$WORK/g-b/listen-address")" \
		--to-token-file "$WORK/g-b/token" ${CHANNELS:+--channels $CHANNELS} >"$WORK/m.json" \
		2>"$WORK/m.err" || true
	perf_stop godwit
	vdst=$(pgrep -f -- "godwit-vmm.*$WORK/g-b/" | head -1) || true
	sleep 0.5
	kill "$tailp" 2>/dev/null || true
	# Pages: what the source's VMM logs at the handover ("N pages sent (Z zero)"), the data
	# pages being N - Z; where it logs no such line, bytes on the wire / 4096.
	local pages
	pages=$(grep -ho 'destination ready: [0-9]* pages sent ([0-9]* zero)' \
		"$WORK/g-a.vmm.log" 2>/dev/null | tail -1 | awk '{print $3 " " substr($6, 2)}') || true
	[ -n "$pages" ] || log "the source VMM logged no page count: pages are bytes / 4096"
	tail -n 1 "$WORK/m.json" | /usr/bin/python3 -c '
import json, sys
m = json.loads(sys.stdin.read() or "{}")
p = sys.argv[1].split()
print(json.dumps({"ok": m.get("phase") == "MIGRATION_PHASE_DONE",
                  "total_ms": int(m.get("totalTimeUs", 0)) / 1e3,
                  "downtime_ms": int(m.get("downtimeUs", 0)) / 1e3,
                  "bytes": int(m.get("bytesSent", 0)),
                  "pages_sent": int(p[0]) if p else None,
                  "zero_pages": int(p[1]) if len(p) > 1 else None,
                  "error": m.get("error", "")}))' "${pages:-}" >"$WORK/g.mig.json"
	summarize godwit godwit "{\"source-vmm\": [${vsrc:-0}], \"destination-vmm\": [${vdst:-0}],
		\"source-godwitd\": [${gsrc:-0}], \"destination-godwitd\": [${gdst:-0}]}" \
		"$(cat "$WORK/g.mig.json")"
	G b vm stop bench --force >/dev/null 2>&1 || true
	pkill -f "$WORK/g-[ab]" 2>/dev/null || true
	sleep 1
}

# ---------------- QEMU multifd ----------------
qemu_vm() { # NAME [incoming]
	local extra=()
	[ "${2:-}" = incoming ] && extra=(-incoming defer)
	qemu-system-x86_64 -accel kvm -cpu host -M q35 -m 2G -smp 1 -nodefaults -display none \
		-no-reboot -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
		-append "console=ttyS0 quiet bench.mib=$MIB" -serial "file:$WORK/$1.con" \
		-qmp "unix:$WORK/$1.qmp,server,nowait" "${extra[@]}" >"$WORK/$1.out" 2>&1 &
	disown
	echo $!
}

qemu_case() {
	"$HERE/mkinitramfs.sh" "$WORK/initrd.gz"
	local qa qb
	qa=$(qemu_vm q-a)
	for _ in $(seq 4800); do grep -q BENCH-FILLED "$WORK/q-a.con" 2>/dev/null && break; sleep 0.25; done
	sleep 1
	qb=$(qemu_vm q-b incoming)
	sleep 1
	perf_start qemu
	/usr/bin/python3 "$HERE/qmp.py" "$WORK/q-a.qmp" "$WORK/q-b.qmp" $((47900 + RANDOM % 90)) 2 \
		>"$WORK/q.json" || true
	perf_stop qemu
	/usr/bin/python3 -c '
import json, sys
q = json.load(open(sys.argv[1]))
b = q.get("bytes") or 0
print(json.dumps({"ok": "error" not in q, "total_ms": q.get("total_ms", 0),
                  "downtime_ms": q.get("downtime_ms", 0), "bytes": b, "pages_sent": None,
                  "zero_pages": None, "error": q.get("error", "")}))' "$WORK/q.json" \
		>"$WORK/q.mig.json"
	summarize qemu qemu-multifd "{\"source-qemu\": [$qa], \"destination-qemu\": [$qb]}" \
		"$(cat "$WORK/q.mig.json")"
	kill "$qa" "$qb" 2>/dev/null || true
}

godwit_case
if [ "$CYCLES_QEMU" = 1 ] && command -v qemu-system-x86_64 >/dev/null && [ -n "$KERNEL" ]; then
	qemu_case
fi
