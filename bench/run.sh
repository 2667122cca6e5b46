#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make bench: godwit and QEMU side by side, same machine, same run, over loopback.
# The migration cases (bench/migrate.sh): a 2 GiB VM holding 512 MiB of pseudo-random data and
# then idle ("idle-after-fill"), the same with a workload that keeps dirtying memory
# ("dirtying"), and a 4 GiB VM holding the same ("idle-after-fill-4g"); RUNS migrations each,
# natively or in test host h1 (bench/lib.sh). Then the NIC case
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
cleanup() {
	rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[bench] %s\n' "$*" >&2; }

QV=$(qemu-system-x86_64 --version 2>/dev/null | head -1 || echo "QEMU not installed")
# BENCH_ONLY=migrate runs only the migration cases (bench/migrate.sh), BENCH_ONLY=cycles only
# the cycles-per-page case (bench/cycles.sh);
# BENCH_ONLY=godwit skips QEMU; BENCH_ONLY=nic runs only the NIC cases; BENCH_ONLY=linux only
# the Linux cases; BENCH_ONLY=vfio only the passthrough cases (bench/vfio.sh); BENCH_ONLY=packets
# only the packet case (bench/packets.sh: udp:, tap: and dpdk: uplinks side by side).
for only in migrate cycles; do
	[ "${BENCH_ONLY:-}" = $only ] || continue
	rc=0
	RUNS=$RUNS "$HERE/$only.sh" "$BUILD" "$RAW" || rc=$?
	/usr/bin/python3 "$HERE/report.py" "$RAW" "$OUT" "$QV" "$RUNS" "latest-$only"
	exit $rc
done
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
if [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY:-}" = godwit ]; then
	log "migration cases: $BUILD, $RUNS runs per case"
	[ "${BENCH_ONLY:-}" = godwit ] && export MIG_QEMU=0
	RUNS=$RUNS "$HERE/migrate.sh" "$BUILD" "$RAW" || log "the migration cases failed; see above"
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
[ -n "${BENCH_ONLY:-}" ] && QV="not run (BENCH_ONLY=$BENCH_ONLY)"
/usr/bin/python3 "$HERE/report.py" "$RAW" "$OUT" "$QV" "$RUNS" "latest${BENCH_ONLY:+-$BENCH_ONLY}"
