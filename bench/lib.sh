# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Sourced by the bench scripts whose guests need a KVM that runs godwit's test guest (and QEMU's
# -accel kvm): bench_dispatch runs the calling script's --here half natively when this machine's
# KVM runs the test guest, else inside test host h1, under its nested KVM.

# bench_dispatch SCRIPT BUILD RAW TAG TIMEOUT [VAR...]
# Natively: execs SCRIPT --here BUILD RAW. Else boots h1 (a no-op when it runs), runs SCRIPT
# --here BUILD OUT there with each VAR that is set passed along, and appends OUT (under
# BUILD/testhosts, which h1 shares) to RAW. Returns the script's exit code; h1 keeps running
# (the caller stops it; make bench takes the test hosts for itself: do not run it beside make
# check on the same build directory); BENCH_HOST_MEM (MiB) boots it with that
# much memory instead of testhost.sh's default (an h1 that already runs with less is booted again
# with it, and stopped after). Also writes BUILD/testhosts/linux-kernel
# (the kernel QEMU's guests boot) through testhost.sh linux.
bench_dispatch() {
	local script=$1 build=$2 raw=$3 tag=$4 timeout=$5
	shift 5
	local hosts=("$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/hosts/testhost.sh"
		--build "$build")
	local envs=() v
	for v in "$@"; do
		[ -n "${!v+x}" ] && envs+=(--env "$v=${!v}")
	done
	"${hosts[@]}" linux >/dev/null 2>&1 || true
	if "${hosts[@]}" probe >/dev/null 2>&1; then
		printf '[bench %s] natively\n' "$tag" >&2
		exec "$script" --here "$build" "$raw"
	fi
	printf '[bench %s] in test host h1 (this machine'"'"'s KVM cannot run the guests)\n' \
		"$tag" >&2
	local ran=0 pidf=$build/testhosts/h1/qemu.pid
	[ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null && ran=1
	# An h1 that runs with less memory than the case asks for (booted by another case or a
	# test) would refuse its VMs: boot it again with what the case needs.
	if [ $ran = 1 ] && [ -n "${BENCH_HOST_MEM:-}" ]; then
		local have
		have=$(tr '\0' '\n' <"/proc/$(cat "$pidf")/cmdline" 2>/dev/null | sed -n '/^-m$/{n;p;q}')
		case $have in
		*[Gg]) have=$((${have%[Gg]} * 1024)) ;;
		*) have=${have%%[!0-9]*} ;;
		esac
		if [ -n "$have" ] && [ "$have" -lt "$BENCH_HOST_MEM" ]; then
			printf '[bench %s] h1 runs with %s MiB, less than the %s MiB asked for: booting it again\n' \
				"$tag" "$have" "$BENCH_HOST_MEM" >&2
			"${hosts[@]}" stop h1 >&2 || true
			ran=0
		fi
	fi
	"${hosts[@]}" boot h1 ${BENCH_HOST_MEM:+--mem "$BENCH_HOST_MEM"} >&2 || return 2
	local out=$build/testhosts/bench-$tag.jsonl rc=0
	: >"$out"
	"${hosts[@]}" run h1 --timeout "$timeout" "${envs[@]}" -- "$script" --here "$build" "$out" ||
		rc=$?
	cat "$out" >>"$raw"
	# An h1 booted here with other memory than testhost.sh's default is no use to the cases
	# after (the passthrough ones need all of its RAM below 4 GiB): stop it.
	if [ $ran = 0 ] && [ -n "${BENCH_HOST_MEM:-}" ]; then
		"${hosts[@]}" stop h1 >&2 || true
	fi
	return $rc
}

# bench_qemu_kernel BUILD: the kernel QEMU's guests boot (testhost.sh linux's, else /boot's).
# bench_here BUILD OUT: the paths a case running on this machine uses (BUILD, OUT, GODWITD,
# GODWIT, GUEST, KERNEL).
# shellcheck disable=SC2034 # set for the scripts that source this file
bench_here() {
	BUILD=$1
	OUT=$2
	GODWITD=$BUILD/daemon/godwitd
	GODWIT=$BUILD/cli/godwit
	GUEST=$BUILD/tests/guest/godwit-test-guest
	KERNEL=$(bench_qemu_kernel "$BUILD")
}

bench_qemu_kernel() {
	cat "$1/testhosts/linux-kernel" 2>/dev/null || ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1
}
