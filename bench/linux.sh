#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench's Linux cases, godwit and QEMU side by side on the same host, same kernel, same
# initramfs (tests/linux/), same vCPUs:
#   linux-boot     from the VMM's start to the guest's init printing its marker (RUNS runs each,
#                  alternating; QEMU: -accel kvm -kernel -initrd, no firmware of its own to skip)
#   linux-migrate  a 1 GiB Linux guest migrated back and forth RUNS times over loopback (godwit:
#                  two godwitd and `godwit migrate`; QEMU: two QEMUs, QMP migrate)
# Both need a KVM that boots Linux: natively where testhost.sh's Linux probe says so, else inside
# test host h1, where the two run under the same nested KVM.
# usage: bench/linux.sh BUILD RAW          (appends JSON lines to RAW)
#        bench/linux.sh --here BUILD OUT   (runs the cases on this machine, lines to OUT)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-5}
log() { printf '[bench linux] %s\n' "$*" >&2; }

if [ "${1:-}" != --here ]; then
	BUILD=$(realpath "$1")
	RAW=$2
	HOSTS="$SRC/tests/hosts/testhost.sh --build $BUILD"
	if $HOSTS linux >/dev/null 2>&1; then
		log "natively: $(cut -d' ' -f2- "$BUILD/testhosts/linux-probe")"
		exec "$0" --here "$BUILD" "$RAW"
	fi
	log "in test host h1: $(cut -d' ' -f2- "$BUILD/testhosts/linux-probe")"
	$HOSTS boot h1 >&2
	out=$BUILD/testhosts/bench-linux.jsonl
	: >"$out"
	rc=0
	$HOSTS run h1 --timeout 3000 --env "RUNS=$RUNS" -- "$0" --here "$BUILD" "$out" || rc=$?
	cat "$out" >>"$RAW"
	exit $rc
fi

BUILD=$2
OUT=$3
KERNEL=$(cat "$BUILD/testhosts/linux-kernel")
INITRD=$BUILD/testhosts/linux-guest.cpio.gz
CMDLINE="console=ttyS0 quiet panic=-1"
# godwit-vmm unpacks the kernel on the host and caches it: the first boot below starts with an
# empty cache (and is reported as such), the others find it there.
export GODWIT_CACHE_DIR=$BUILD/testhosts/bench-kernel-cache
rm -rf "$GODWIT_CACHE_DIR"
WORK=$(mktemp -d /tmp/godwit-bench-linux-XXXXXX)
cleanup() {
	pkill -KILL -f "$WORK/" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# marker_ms CMD...: ms from the start of CMD to the init marker on its stdout; -1 if never.
marker_ms() {
	local t0
	t0=$(now_ms)
	timeout 300 "$@" 2>/dev/null | {
		at=-1
		while IFS= read -r line; do
			case $line in *GODWIT-LINUX-INIT-OK*) [ "$at" = -1 ] && at=$(($(now_ms) - t0)) ;; esac
		done
		echo "$at"
	}
}

boot_row() { # TOOL RUN MS
	local ok=true
	[ "$3" -ge 0 ] || ok=false
	printf '{"tool": "%s", "case": "linux-boot", "run": %d, "ok": %s, "boot_ms": %d, "cpus": 2}\n' \
		"$1" "$2" "$ok" "$3" >>"$OUT"
	log "boot $1 run $2: $3 ms"
}

for run in $(seq "$RUNS"); do
	ms=$(marker_ms "$BUILD/vmm/godwit-vmm" --memory 256M --cpus 2 --kernel "$KERNEL" \
		--initrd "$INITRD" --cmdline "$CMDLINE gw.test=probe" --serial stdio --log-level error)
	boot_row godwit "$run" "$ms"
	ms=$(marker_ms qemu-system-x86_64 -accel kvm -cpu host -m 256 -smp 2 -nodefaults \
		-display none -no-reboot -serial stdio -kernel "$KERNEL" -initrd "$INITRD" \
		-append "$CMDLINE gw.test=probe")
	boot_row qemu "$run" "$ms"
done

# ---- a 1 GiB Linux guest, migrated ----
mig_godwit() {
	for h in a b; do
		"$BUILD/daemon/godwitd" --listen 127.0.0.1:0 --state-dir "$WORK/$h" --log-level warn \
			>"$WORK/$h.log" 2>&1 &
		disown
	done
	for h in a b; do
		for _ in $(seq 200); do [ -s "$WORK/$h/listen-address" ] && break; sleep 0.05; done
	done
	G() { local h=$1; shift; "$BUILD/cli/godwit" --host "$(cat "$WORK/$h/listen-address")" \
		--token-file "$WORK/$h/token" "$@"; }
	G a vm create lx --memory 1G --kernel "$KERNEL" --initrd "$INITRD" \
		--cmdline "$CMDLINE gw.test=clock" >/dev/null
	G a vm start lx >/dev/null
	G a vm console lx --timeout 120 2>/dev/null | grep -m1 -q "clock: start" || true
	local from=a to=b
	for run in $(seq "$RUNS"); do
		G "$from" --json migrate lx --to "$(cat "$WORK/$to/listen-address")" \
			--to-token-file "$WORK/$to/token" >"$WORK/m.json" 2>/dev/null || true
		tail -n 1 "$WORK/m.json" | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)
total = int(m.get("totalTimeUs", 0)) / 1e3
print(json.dumps({"tool": "godwit", "case": "linux-migrate", "run": int(sys.argv[1]),
                  "ok": m.get("phase") == "MIGRATION_PHASE_DONE", "total_ms": total,
                  "downtime_ms": int(m.get("downtimeUs", 0)) / 1e3,
                  "bytes": int(m.get("bytesSent", 0)),
                  "mbps": int(m.get("bytesSent", 0)) * 8 / 1e6 / (total / 1e3) if total else 0,
                  "error": m.get("error", "")}))' "$run" >>"$OUT"
		log "migrate godwit run $run: $(tail -n 1 "$OUT")"
		local t=$from; from=$to; to=$t
	done
	G "$from" vm stop lx --force >/dev/null 2>&1 || true
	pkill -f "$WORK/[ab]" 2>/dev/null || true
}

qemu_vm() { # NAME [incoming]
	local extra=()
	[ "${2:-}" = incoming ] && extra=(-incoming defer)
	qemu-system-x86_64 -accel kvm -cpu host -m 1G -smp 1 -nodefaults -display none \
		-no-reboot -kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE gw.test=clock" \
		-serial "file:$WORK/$1.con" -qmp "unix:$WORK/$1.qmp,server,nowait" "${extra[@]}" \
		>"$WORK/$1.out" 2>&1 &
	disown
	echo $!
}

mig_qemu() {
	local from=a to=b pfrom port=47100
	pfrom=$(qemu_vm a)
	for _ in $(seq 1200); do grep -q "clock: start" "$WORK/a.con" 2>/dev/null && break; sleep 0.1; done
	for run in $(seq "$RUNS"); do
		local pto ok=true
		pto=$(qemu_vm "$to" incoming)
		port=$((port + 1))
		/usr/bin/python3 "$HERE/qmp.py" "$WORK/$from.qmp" "$WORK/$to.qmp" "$port" 1 \
			>"$WORK/q.json" 2>/dev/null || ok=false
		/usr/bin/python3 -c '
import json, sys
q = json.load(open(sys.argv[1]))
print(json.dumps({"tool": "qemu", "case": "linux-migrate", "run": int(sys.argv[2]),
                  "ok": sys.argv[3] == "true", "total_ms": q.get("total_ms", 0),
                  "downtime_ms": q.get("downtime_ms", 0), "bytes": q.get("bytes", 0),
                  "mbps": q.get("mbps", 0), "error": q.get("error", "")}))' \
			"$WORK/q.json" "$run" "$ok" >>"$OUT"
		log "migrate qemu run $run: $(tail -n 1 "$OUT")"
		kill "$pfrom" 2>/dev/null || true
		rm -f "$WORK/$from.qmp"
		pfrom=$pto
		local t=$from; from=$to; to=$t
	done
	kill "$pfrom" 2>/dev/null || true
}

mig_godwit
mig_qemu
