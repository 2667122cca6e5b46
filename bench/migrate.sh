#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench's migration cases, godwit and QEMU side by side on the same host, same run, over
# loopback, RUNS migrations each, ping-ponging between two hosts so the data is filled once per
# case and tool:
#   idle-after-fill     a 2 GiB VM holding 512 MiB of pseudo-random data, then idle
#   dirtying            the same while the guest keeps rewriting memory
#   idle-after-fill-4g  a 4 GiB VM holding BIG_MIB (default 512) MiB of pseudo-random data, idle
# Tools: godwit (two godwitd, `godwit migrate`), QEMU with one channel (qemu; not on the 4 GiB
# case) and multifd on 2 channels (qemu-multifd), QEMU on -accel kvm -cpu host. Both need a KVM
# that runs their guests: natively where testhost.sh's probe says this machine's KVM runs the
# test guest, else inside test host h1, under its nested KVM (bench/lib.sh).
# usage: bench/migrate.sh BUILD RAW          (appends JSON lines to RAW)
#        bench/migrate.sh --here BUILD OUT   (runs the cases on this machine, lines to OUT)
# Knobs: RUNS (5), CHANNELS (godwit's; default one per core), MIG_CASES (space-separated subset
# of the cases above), BIG_MIB, MIG_QEMU=0 (godwit only), BENCH_HOST_MEM (the test host's MiB;
# 4800 by default when the 4 GiB case runs, since godwitd refuses a VM larger than its host).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-5}
BIG_MIB=${BIG_MIB:-512}
MIG_CASES=${MIG_CASES:-idle-after-fill dirtying idle-after-fill-4g}
MIG_QEMU=${MIG_QEMU:-1}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
log() { printf '[bench migrate] %s\n' "$*" >&2; }
has_case() { case " $MIG_CASES " in *" $1 "*) return 0 ;; esac; return 1; }

if [ "${1:-}" != --here ]; then
	# godwitd refuses a VM larger than its host: the 4 GiB case needs a test host above 4 GiB
	has_case idle-after-fill-4g && export BENCH_HOST_MEM=${BENCH_HOST_MEM:-4800}
	RUNS=$RUNS BIG_MIB=$BIG_MIB MIG_CASES=$MIG_CASES MIG_QEMU=$MIG_QEMU \
		bench_dispatch "$0" "$(realpath "$1")" "$2" migrate 5400 RUNS BIG_MIB MIG_CASES \
		MIG_QEMU CHANNELS
	exit $?
fi

bench_here "$2" "$3"
QEMU=$(command -v qemu-system-x86_64 || true)
WORK=$(mktemp -d /tmp/godwit-bench-mig-XXXXXX)
cleanup() {
	pkill -KILL -f "$WORK/" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# Two 4 GiB VMs (source and destination) are more than a test host's memory (BENCH_HOST_MEM,
# 4800 MiB) though most of their RAM is never touched: godwit maps RAM with MAP_NORESERVE, QEMU
# does not, and the kernel's heuristic refuses a mapping larger than RAM + swap. In a test host
# (and only there: it is a throwaway machine) let the kernel overcommit.
if has_case idle-after-fill-4g && grep -q ' gw\.name=h' /proc/cmdline 2>/dev/null; then
	sysctl -qw vm.overcommit_memory=1 || log "cannot set vm.overcommit_memory=1"
fi

# ---------------- godwit ----------------
bench_godwit() { # CASE MEMORY CMDLINE
	local case=$1 mem=$2 cmdline=$3
	for h in a b; do
		# --insecure: the stream in clear, as QEMU's here (bench/tls.sh compares TLS)
		"$GODWITD" --listen 127.0.0.1:0 --state-dir "$WORK/$case-$h" --log-level warn --insecure \
			>"$WORK/$case-$h.log" 2>&1 &
		disown
	done
	for h in a b; do
		for _ in $(seq 200); do [ -s "$WORK/$case-$h/listen-address" ] && break; sleep 0.05; done
	done
	local ga=("$GODWIT" --host "$(cat "$WORK/$case-a/listen-address")" --token-file "$WORK/$case-a/token")
	"${ga[@]}" vm create bench --memory "$mem" --guest "$GUEST" --cmdline "$cmdline" >/dev/null
	"${ga[@]}" vm start bench >/dev/null
	log "godwit $case: waiting for the guest to fill its memory"
	for _ in $(seq 2400); do
		grep -q "guest report \(checksum\|verify\)" "$WORK/$case-a/vms/bench/vmm.log" 2>/dev/null && break
		sleep 0.5
	done
	local from=a to=b
	for run in $(seq "$RUNS"); do
		"$GODWIT" --host "$(cat "$WORK/$case-$from/listen-address")" \
			--token-file "$WORK/$case-$from/token" --json migrate bench \
			--to "$(cat "$WORK/$case-$to/listen-address")" --to-token-file "$WORK/$case-$to/token" \
			${CHANNELS:+--channels $CHANNELS} >"$WORK/m.json" 2>"$WORK/m.err" || true
		tail -n 1 "$WORK/m.json" | /usr/bin/python3 -c '
import json, sys
try:
    m = json.load(sys.stdin)
except ValueError:
    m = {"error": open(sys.argv[3]).read().strip()[-300:] or "no output"}
ok = m.get("phase") == "MIGRATION_PHASE_DONE"
total = int(m.get("totalTimeUs", 0)) / 1e3
print(json.dumps({"tool": "godwit", "case": sys.argv[1], "run": int(sys.argv[2]), "ok": ok,
                  "total_ms": total, "downtime_ms": int(m.get("downtimeUs", 0)) / 1e3,
                  "bytes": int(m.get("bytesSent", 0)),
                  "mbps": int(m.get("bytesSent", 0)) * 8 / 1e6 / (total / 1e3) if total else 0,
                  "channels": m.get("streamChannels", 0),
                  "channels_used": m.get("channelsUsed", m.get("streamChannels", 0)),
                  "channels_measured": m.get("channelsMeasured", ""),
                  "pages_resent": int(m.get("pagesResent", 0)), "error": m.get("error", "")}))' \
			"$case" "$run" "$WORK/m.err" >>"$OUT"
		log "godwit $case run $run: $(tail -n 1 "$OUT")"
		local t=$from; from=$to; to=$t
	done
	"$GODWIT" --host "$(cat "$WORK/$case-$from/listen-address")" --token-file "$WORK/$case-$from/token" \
		vm stop bench --force >/dev/null 2>&1 || true
	pkill -f "$WORK/$case-[ab]" 2>/dev/null || true
	sleep 1
}

# ---------------- QEMU ----------------
qemu_start() { # NAME MEMORY APPEND [incoming]
	local name=$1 mem=$2 append=$3 extra=()
	[ "${4:-}" = incoming ] && extra=(-incoming defer)
	"$QEMU" -accel kvm -cpu host -M q35 -m "$mem" -smp 1 -nodefaults -display none -no-reboot \
		-kernel "$KERNEL" -initrd "$WORK/initrd.gz" -append "console=ttyS0 quiet $append" \
		-serial "file:$WORK/$name.con" -qmp "unix:$WORK/$name.qmp,server,nowait" \
		"${extra[@]}" >"$WORK/$name.out" 2>&1 &
	disown
	echo $!
}

bench_qemu() { # CASE MEMORY APPEND CHANNELS TOOL
	local case=$1 mem=$2 append=$3 channels=$4 tool=$5
	local from=a to=b pfrom port=$((47000 + RANDOM % 1000))
	pfrom=$(qemu_start "$tool-$case-a" "$mem" "$append")
	log "$tool $case: waiting for the guest to fill its memory"
	for _ in $(seq 4800); do
		grep -q BENCH-FILLED "$WORK/$tool-$case-a.con" 2>/dev/null && break
		kill -0 "$pfrom" 2>/dev/null || { log "$tool $case: QEMU ended: $(tail -n 2 "$WORK/$tool-$case-a.out")"; break; }
		sleep 0.25
	done
	sleep 1
	for run in $(seq "$RUNS"); do
		local pto ok=true
		pto=$(qemu_start "$tool-$case-$to" "$mem" "$append" incoming)
		port=$((port + 1))
		/usr/bin/python3 "$HERE/qmp.py" "$WORK/$tool-$case-$from.qmp" "$WORK/$tool-$case-$to.qmp" \
			"$port" "$channels" >"$WORK/q.json" || ok=false
		/usr/bin/python3 -c '
import json, sys
try:
    q = json.load(open(sys.argv[1]))
except ValueError:
    q = {"error": "no output from qmp.py"}
print(json.dumps({"tool": sys.argv[2], "case": sys.argv[3], "run": int(sys.argv[4]),
                  "ok": sys.argv[5] == "true", "total_ms": q.get("total_ms", 0),
                  "downtime_ms": q.get("downtime_ms", 0), "bytes": q.get("bytes", 0),
                  "mbps": q.get("mbps", 0), "channels": int(sys.argv[6]),
                  "error": q.get("error", "")}))' \
			"$WORK/q.json" "$tool" "$case" "$run" "$ok" "$channels" >>"$OUT"
		log "$tool $case run $run: $(tail -n 1 "$OUT")"
		kill "$pfrom" 2>/dev/null || true
		rm -f "$WORK/$tool-$case-$from.qmp"
		pfrom=$pto
		local t=$from; from=$to; to=$t
	done
	kill "$pfrom" 2>/dev/null || true
	sleep 1
}

log "$RUNS runs per case and tool; cases: $MIG_CASES"
has_case idle-after-fill && bench_godwit idle-after-fill 2G fill-random:512
has_case dirtying && bench_godwit dirtying 2G dirty:256:4000
has_case idle-after-fill-4g && bench_godwit idle-after-fill-4g 4G "fill-random:$BIG_MIB"
if [ "$MIG_QEMU" = 1 ] && [ -n "$QEMU" ] && [ -n "$KERNEL" ]; then
	"$HERE/mkinitramfs.sh" "$WORK/initrd.gz"
	log "QEMU: $("$QEMU" --version | head -1), kernel $KERNEL"
	if has_case idle-after-fill; then
		bench_qemu idle-after-fill 2G "bench.mib=512" 1 qemu
		bench_qemu idle-after-fill 2G "bench.mib=512" 2 qemu-multifd
	fi
	if has_case dirtying; then
		bench_qemu dirtying 2G "bench.mib=512 bench.mode=dirty" 1 qemu
		bench_qemu dirtying 2G "bench.mib=512 bench.mode=dirty" 2 qemu-multifd
	fi
	has_case idle-after-fill-4g && bench_qemu idle-after-fill-4g 4G "bench.mib=$BIG_MIB" 2 qemu-multifd
elif [ "$MIG_QEMU" = 1 ]; then
	log "QEMU or a kernel is missing: only godwit was measured (run scripts/install-deps.sh)"
fi
true
