#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench: godwit and QEMU side by side, same machine, same run, over loopback.
# Cases: a 2 GiB VM holding 512 MiB of pseudo-random data and then idle ("idle-after-fill"),
# and the same with a workload that keeps dirtying memory ("dirtying"). RUNS migrations each,
# ping-ponging between two hosts so the data is filled once per case. Then the NIC case
# (bench/nic.sh): packets per second and VM exits per packet through the emulated VF, and the
# NIC migration case (bench/nic_migrate.sh): the same during a migration per DMA mode, and
# the NIC generations case (bench/nic_generations.sh): downtime for match, mismatch, absent;
# and the Linux cases (bench/linux.sh): boot to init, and a 1 GiB Linux guest's migration; and
# the packet case (bench/packets.sh): the uplink's port types side by side.
set -euo pipefail
BUILD=$(realpath "${1:-build}")
RUNS=${RUNS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/results
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/godwit-bench-XXXXXX)
RAW=$WORK/raw.jsonl
: >"$RAW"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	pkill -KILL -f "$WORK/" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[bench] %s\n' "$*" >&2; }

GODWITD=$BUILD/daemon/godwitd
GODWIT=$BUILD/cli/godwit
GUEST=$BUILD/tests/guest/godwit-test-guest
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
QEMU=$(command -v qemu-system-x86_64 || true)

# ---------------- godwit ----------------
bench_godwit() { # CASE CMDLINE
	local case=$1 cmdline=$2
	for h in a b; do
		"$GODWITD" --listen 127.0.0.1:0 --state-dir "$WORK/$case-$h" --log-level warn &
		PIDS+=($!)
		disown
	done
	for h in a b; do
		for _ in $(seq 100); do [ -s "$WORK/$case-$h/listen-address" ] && break; sleep 0.05; done
	done
	local addr_a addr_b
	addr_a=$(cat "$WORK/$case-a/listen-address")
	addr_b=$(cat "$WORK/$case-b/listen-address")
	local ga=("$GODWIT" --host "$addr_a" --token-file "$WORK/$case-a/token")
	"${ga[@]}" vm create bench --memory 2G --guest "$GUEST" --cmdline "$cmdline" >/dev/null
	"${ga[@]}" vm start bench >/dev/null
	log "godwit $case: waiting for the guest to fill its memory"
	for _ in $(seq 1200); do
		grep -q "guest report \(checksum\|verify\)" "$WORK/$case-a/vms/bench/vmm.log" 2>/dev/null && break
		sleep 0.5
	done
	local from=a to=b
	for run in $(seq "$RUNS"); do
		local addr_to tok_to addr_from tok_from
		addr_from=$(cat "$WORK/$case-$from/listen-address")
		addr_to=$(cat "$WORK/$case-$to/listen-address")
		"$GODWIT" --host "$addr_from" --token-file "$WORK/$case-$from/token" --json migrate bench \
			--to "$addr_to" --to-token-file "$WORK/$case-$to/token" ${CHANNELS:+--channels $CHANNELS} >"$WORK/m.json" || true
		tail -n 1 "$WORK/m.json" | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)
ok = m.get("phase") == "MIGRATION_PHASE_DONE"
total = int(m.get("totalTimeUs", 0)) / 1e3
print(json.dumps({"tool": "godwit", "case": sys.argv[1], "run": int(sys.argv[2]), "ok": ok,
                  "total_ms": total, "downtime_ms": int(m.get("downtimeUs", 0)) / 1e3,
                  "bytes": int(m.get("bytesSent", 0)),
                  "mbps": int(m.get("bytesSent", 0)) * 8 / 1e6 / (total / 1e3) if total else 0,
                  "error": m.get("error", "")}))' "$case" "$run" >>"$RAW"
		log "godwit $case run $run: $(tail -n 1 "$RAW")"
		local t=$from; from=$to; to=$t
	done
	"$GODWIT" --host "$(cat "$WORK/$case-$from/listen-address")" --token-file "$WORK/$case-$from/token" vm stop bench --force >/dev/null || true
}

# ---------------- QEMU ----------------
qemu_start() { # NAME APPEND [incoming]
	local name=$1 append=$2 extra=()
	[ "${3:-}" = incoming ] && extra=(-incoming defer)
	"$QEMU" -accel tcg -M q35 -m 2G -smp 1 -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
		-append "console=ttyS0 quiet $append" -display none -monitor none \
		-serial "file:$WORK/$name.log" -qmp "unix:$WORK/$name.qmp,server,nowait" -no-reboot \
		"${extra[@]}" >"$WORK/$name.out" 2>&1 &
	PIDS+=($!)
	disown
	echo $!
}

bench_qemu() { # CASE APPEND CHANNELS LABEL
	local case=$1 append=$2 channels=$3 label=$4
	local pa pb
	pa=$(qemu_start "$label-a" "$append")
	log "$label $case: waiting for the guest to fill its memory"
	for _ in $(seq 1200); do grep -q BENCH-FILLED "$WORK/$label-a.log" 2>/dev/null && break; sleep 0.5; done
	sleep 1
	local from=a to=b pfrom=$pa port=47000
	for run in $(seq "$RUNS"); do
		local pto
		pto=$(qemu_start "$label-$to" "$append" incoming)
		port=$((port + 1))
		if /usr/bin/python3 "$HERE/qmp.py" "$WORK/$label-$from.qmp" "$WORK/$label-$to.qmp" "$port" "$channels" >"$WORK/q.json"; then
			ok=true
		else
			ok=false
		fi
		/usr/bin/python3 -c '
import json, sys
q = json.load(open(sys.argv[1]))
print(json.dumps({"tool": sys.argv[2], "case": sys.argv[3], "run": int(sys.argv[4]),
                  "ok": sys.argv[5] == "true", "total_ms": q.get("total_ms", 0),
                  "downtime_ms": q.get("downtime_ms", 0), "bytes": q.get("bytes", 0),
                  "mbps": q.get("mbps", 0), "error": q.get("error", "")}))' \
			"$WORK/q.json" "$label" "$case" "$run" "$ok" >>"$RAW"
		log "$label $case run $run: $(tail -n 1 "$RAW")"
		kill "$pfrom" 2>/dev/null || true
		rm -f "$WORK/$label-$from.qmp"
		pfrom=$pto
		local t=$from; from=$to; to=$t
	done
	kill "$pfrom" 2>/dev/null || true
}

# BENCH_ONLY=godwit skips QEMU; BENCH_ONLY=nic runs only the NIC cases; BENCH_ONLY=linux only
# the Linux cases; BENCH_ONLY=vfio only the passthrough cases (bench/vfio.sh); BENCH_ONLY=packets
# only the packet case (bench/packets.sh: udp:, tap: and dpdk: uplinks side by side).
if [ "${BENCH_ONLY:-}" = vfio ]; then
	"$HERE/vfio.sh" "$BUILD" "$RAW"
	"$HERE/vfio_migrate.sh" "$BUILD" "$RAW"
	/usr/bin/python3 "$HERE/report.py" "$RAW" "$OUT" "$(qemu-system-x86_64 --version | head -1)" \
		"$RUNS" latest-vfio
	exit 0
fi
if [ "${BENCH_ONLY:-}" = vfio-migrate ]; then
	"$HERE/vfio_migrate.sh" "$BUILD" "$RAW"
	/usr/bin/python3 "$HERE/report.py" "$RAW" "$OUT" "$(qemu-system-x86_64 --version | head -1)" \
		"$RUNS" latest-vfio-migrate
	exit 0
fi
if [ "${BENCH_ONLY:-}" = tls ]; then
	"$HERE/tls.sh" "$BUILD" "$RAW"
	/usr/bin/python3 "$HERE/report.py" "$RAW" "$OUT" "$(qemu-system-x86_64 --version | head -1)" \
		"$RUNS" latest-tls
	exit 0
fi
if [ "${BENCH_ONLY:-}" = packets ]; then
	"$HERE/packets.sh" "$BUILD" "$RAW"
	/usr/bin/python3 "$HERE/report.py" "$RAW" "$OUT" "$(qemu-system-x86_64 --version | head -1)" \
		"$RUNS" latest-packets
	exit 0
fi
if [ "${BENCH_ONLY:-}" = linux ]; then
	"$HERE/linux.sh" "$BUILD" "$RAW"
	/usr/bin/python3 "$HERE/report.py" "$RAW" "$OUT" "$(qemu-system-x86_64 --version | head -1)" \
		"$RUNS" latest-linux
	exit 0
fi
if [ "${BENCH_ONLY:-}" != nic ]; then
	log "godwit: $BUILD, $RUNS runs per case"
	bench_godwit idle-after-fill fill-random:512
	bench_godwit dirtying dirty:256:4000
fi
"$HERE/nic.sh" "$BUILD" "$RAW"
"$HERE/nic_migrate.sh" "$BUILD" "$RAW"
"$HERE/nic_generations.sh" "$BUILD" "$RAW"
if [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY:-}" = linux ]; then
	"$HERE/linux.sh" "$BUILD" "$RAW" || log "the Linux cases failed; see above"
fi
if [ -z "${BENCH_ONLY:-}" ]; then
	"$HERE/vfio.sh" "$BUILD" "$RAW" || log "the passthrough cases failed; see above"
	"$HERE/vfio_migrate.sh" "$BUILD" "$RAW" || log "the passthrough migrations failed; see above"
	"$HERE/tls.sh" "$BUILD" "$RAW" || log "the encryption case failed; see above"
	"$HERE/packets.sh" "$BUILD" "$RAW" || log "the packet case failed; see above"
fi
if [ -n "$QEMU" ] && [ -n "$KERNEL" ] && [ -z "${BENCH_ONLY:-}" ]; then
	"$HERE/mkinitramfs.sh" "$WORK/initrd.gz"
	QV=$("$QEMU" --version | head -1)
	log "QEMU: $QV, kernel $KERNEL"
	bench_qemu idle-after-fill "bench.mib=512" 1 qemu
	bench_qemu idle-after-fill "bench.mib=512" 2 qemu-multifd
	bench_qemu dirtying "bench.mib=512 bench.mode=dirty" 1 qemu
	bench_qemu dirtying "bench.mib=512 bench.mode=dirty" 2 qemu-multifd
elif [ -n "${BENCH_ONLY:-}" ]; then
	QV="not run (BENCH_ONLY=$BENCH_ONLY)"
else
	QV="not installed"
	log "QEMU or a kernel is missing: only godwit was measured (run scripts/install-deps.sh)"
fi
/usr/bin/python3 "$HERE/report.py" "$RAW" "$OUT" "$QV" "$RUNS" "latest${BENCH_ONLY:+-$BENCH_ONLY}"
