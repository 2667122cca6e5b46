#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench's passthrough cases, in the test hosts (the only place with an SR-IOV NIC here):
# the same Linux guest (tests/linux/, gw-lecho) echoes godwit-nicpeer's frames, sent from h2's
# igb PF over the data segment, through
#   godwit-vfio   a VF of h1's igb passed through by godwit-vmm's vfio backend
#   qemu-vfio     the same kind of VF passed through by QEMU's -device vfio-pci
#   godwit-emul   godwit's emulated VF, its uplink on h1's igb PF (packet:eth1)
# Reported per run: packets per second and round-trip time (the peer's), and VM exits per
# packet from h1's KVM statistics (debugfs: every exit, and those that reached the VMM), counted
# from the 1000th echo to the last.
# usage: bench/vfio.sh BUILD RAW              (appends JSON lines to RAW)
#        bench/vfio.sh --case BUILD KIND X    (inside h1: one VM for one peer run; with
#                                             BENCH_VFIO_SNAP=FILE every KVM counter of it)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}
FRAMES=${FRAMES:-10000}
PF=0000:00:04.0
log() { printf '[bench vfio] %s\n' "$*" >&2; }

# KVM's counters of the one VM running on this host, summed over its debugfs files.
kvm_counts() {
	local d=/sys/kernel/debug/kvm
	[ -d "$d" ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
	local all=0 io=0 mmio=0 f
	for f in "$d"/*-*/; do
		[ -e "$f/exits" ] || continue
		all=$((all + $(cat "$f/exits"))) io=$((io + $(cat "$f/io_exits")))
		mmio=$((mmio + $(cat "$f/mmio_exits")))
	done
	echo "$all $((io + mmio))"
	# BENCH_VFIO_SNAP=FILE: every counter of the VM, for a closer look.
	if [ -n "${BENCH_VFIO_SNAP:-}" ]; then
		for f in "$d"/*-*/*; do
			[ -f "$f" ] && echo "$(basename "$f") $(cat "$f" 2>/dev/null)"
		done >>"$BENCH_VFIO_SNAP"
	fi
}

if [ "${1:-}" = --case ]; then
	BUILD=$2 KIND=$3 X=$4
	KERNEL=$(cat "$BUILD/testhosts/linux-kernel")
	INITRD=$BUILD/testhosts/linux-guest.cpio.gz
	CMDLINE="console=ttyS0 quiet panic=-1 gw.test=echo"
	export GODWIT_CACHE_DIR=$BUILD/testhosts/kernel-cache
	# Fresh VFs: QEMU's igb latches RSTD for a VF only when the PF resets, which creating
	# them does; igbvf needs it.
	echo 0 >/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe
	echo 0 >/sys/bus/pci/devices/$PF/sriov_numvfs
	echo 1 >/sys/bus/pci/devices/$PF/sriov_numvfs
	VF=$(basename "$(readlink /sys/bus/pci/devices/$PF/virtfn0)")
	ip link set eth1 vf 0 mac 02:67:77:00:0b:01
	modprobe vfio-pci
	echo vfio-pci >/sys/bus/pci/devices/$VF/driver_override
	echo "$VF" >/sys/bus/pci/drivers_probe
	sleep 3 # the PF's link comes back after its reset
	case $KIND in
	godwit-vfio)
		"$BUILD/vmm/godwit-vmm" --memory 256M --kernel "$KERNEL" --initrd "$INITRD" \
			--cmdline "$CMDLINE" --serial "file:$X/console" --log-level warn \
			--vf "pf=0,vf=0,mac=02:67:77:00:0b:01,backend=vfio,host=$VF" &
		;;
	qemu-vfio)
		qemu-system-x86_64 -accel kvm -cpu host -m 256 -smp 1 -nodefaults -display none \
			-serial "file:$X/console" -kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE" \
			-device "vfio-pci,host=$VF" &
		;;
	godwit-emul)
		"$BUILD/vmm/godwit-vmm" --memory 256M --kernel "$KERNEL" --initrd "$INITRD" \
			--cmdline "$CMDLINE" --serial "file:$X/console" --log-level warn \
			--vf "pf=0,vf=0,gen=1,mac=02:67:77:00:0b:01,uplink=packet:eth1" &
		;;
	esac
	vm=$!
	got=0
	for _ in $(seq 2400); do
		got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["received"])' \
			"$X/peer.stats" 2>/dev/null || echo 0)
		[ "$got" -ge 1000 ] && break
		sleep 0.25
	done
	# shellcheck disable=SC2046 # two numbers
	set -- $(kvm_counts)
	a0=$1 u0=$2
	echo "$got" >"$X/r0"
	for _ in $(seq 2400); do [ -s "$X/peer.json" ] && break; sleep 0.25; done
	# shellcheck disable=SC2046
	set -- $(kvm_counts)
	a1=$1 u1=$2
	echo "$((a1 - a0)) $((u1 - u0))" >"$X/exits"
	kill -KILL "$vm" 2>/dev/null || true
	wait "$vm" 2>/dev/null || true
	echo 0 >/sys/bus/pci/devices/$PF/sriov_numvfs
	exit 0
fi

BUILD=$(realpath "$1")
RAW=$2
TH=("$SRC/tests/hosts/testhost.sh" --build "$BUILD")
"${TH[@]}" linux >/dev/null 2>&1 || true # builds the guest's initramfs
"${TH[@]}" boot h1 h2 >&2
X=$(mktemp -d "$BUILD/testhosts/bench-vfio-XXXXXX")
trap 'rm -rf "$X"' EXIT
for run in $(seq "$RUNS"); do
	for kind in godwit-vfio qemu-vfio godwit-emul; do
		rm -f "$X"/peer.* "$X"/exits "$X"/r0 "$X"/console
		"${TH[@]}" run h2 --timeout 900 -- "$BUILD/tools/nicpeer/godwit-nicpeer" \
			--listen packet:eth1 --count "$FRAMES" --window 16 --wait-announce 300 \
			--stats-file "$X/peer.stats" --json --quiet >"$X/peer.json" 2>"$X/peer.err" &
		peer=$!
		"${TH[@]}" run h1 --timeout 900 -- "$0" --case "$BUILD" "$kind" "$X" >&2 || true
		wait "$peer" || true
		python3 - "$X" "$kind" "$run" "$FRAMES" >>"$RAW" <<'PY'
import json, sys
x, kind, run, frames = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
try:
    p = json.load(open(x + "/peer.json"))
    r0 = int(open(x + "/r0").read())
    allx, vmm = (int(v) for v in open(x + "/exits").read().split())
    n = max(int(p["received"]) - r0, 1)
    row = {"tool": kind, "case": "vf-echo", "run": run, "ok": p["received"] == frames and p["corrupt"] == 0,
           "pps": p["pps"], "rtt_us_avg": p["rtt_us"]["avg"], "rtt_us_min": p["rtt_us"]["min"],
           "exits_per_packet": round(allx / n, 3), "vmm_exits_per_packet": round(vmm / n, 3),
           "received": p["received"], "lost": p["lost"]}
except Exception as e:  # a failed run is a row too
    row = {"tool": kind, "case": "vf-echo", "run": run, "ok": False, "error": str(e)}
print(json.dumps(row))
PY
		log "$kind run $run: $(tail -n 1 "$RAW")"
	done
done
