#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages godwit needs; idempotent, safe to run before every build.
set -eu

# Packages by purpose. Build: compiler, CMake. Tests: CUnit, clang for libFuzzer and sanitizers.
# Control plane: gRPC core and protobuf-c, python3 grpcio for the interoperability test;
# libnl-route-3 for godwitd's rtnetlink requests (a real VF's MAC on its PF); OpenSSL 3 for
# the migration stream's TLS 1.3 (kTLS where the kernel has it).
# Test hosts and the QEMU side of `make bench`: busybox and a Debian kernel.
# A real host's services: libvirt (nodedev inventory, VF binding; libvirtd carries the nodedev
# driver in Debian 12), libxml2 for domain XML, DPDK for the data plane, libsystemd for
# sd_notify and journald, libmicrohttpd for /metrics, Python's Prometheus parser for its test.
PKGS="build-essential cmake pkg-config libcunit1-dev clang libclang-rt-14-dev clang-format
      libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler-grpc
      python3-grpcio python3-grpc-tools busybox-static cpio linux-image-amd64 acpica-tools
      liblzma-dev libnl-route-3-dev libssl-dev
      libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-dev libdpdk-dev libsystemd-dev
      libmicrohttpd-dev python3-prometheus-client"
# The dpdk: uplink's tests and benchmark: veth pairs, bridges and TAPs (ip), the VMM's CPU time.
PKGS="$PKGS iproute2 time libxxhash-dev"
# QEMU >= 8 (igb with SR-IOV) comes from bookworm-backports.
QEMU_MIN_MAJOR=8

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

log() { printf 'install-deps: %s\n' "$*" >&2; }

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

qemu_major() {
	command -v qemu-system-x86_64 >/dev/null 2>&1 || { echo 0; return; }
	qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1
}

need_qemu=0
if [ "$(qemu_major)" -lt "$QEMU_MIN_MAJOR" ]; then
	need_qemu=1
fi

if [ -z "$missing" ] && [ "$need_qemu" -eq 0 ]; then
	log "all dependencies present"
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive

if [ "$need_qemu" -eq 1 ]; then
	# Reuse the URI of the Debian source already configured: never hard-code a mirror.
	uri=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ {print $2; exit}' "$f")
		case "$uri" in *debian-security*) uri="" ;; esac
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
	fi
	if [ -z "$uri" ]; then
		log "error: no Debian source found in /etc/apt; add one, then re-run"
		exit 1
	fi
	list=/etc/apt/sources.list.d/godwit-backports.list
	if [ ! -f "$list" ]; then
		log "enabling bookworm-backports from $uri"
		echo "deb $uri bookworm-backports main" | $SUDO tee "$list" >/dev/null
	fi
fi

log "installing:$missing$( [ "$need_qemu" -eq 1 ] && echo ' qemu-system-x86 (backports)')"
aptlog=$(mktemp)
trap 'rm -f "$aptlog"' EXIT
run() {
	if ! "$@" >>"$aptlog" 2>&1; then
		tail -n 30 "$aptlog" >&2
		log "error: '$*' failed; see the lines above"
		exit 1
	fi
}
run $SUDO apt-get update
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	run $SUDO apt-get install -y --no-install-recommends $missing
fi
if [ "$need_qemu" -eq 1 ]; then
	run $SUDO apt-get install -y --no-install-recommends -t bookworm-backports \
		qemu-system-x86 qemu-utils
fi
log "done"
