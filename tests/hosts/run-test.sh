#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# How CTest runs a test that needs KVM: natively when this machine's /dev/kvm runs godwit's
# test guest (and GODWIT_NO_KVM is not 1), else inside test host HOST. With --linux the test
# boots stock Linux guests: natively only where /dev/kvm boots Linux (testhost.sh linux's
# probe). Either way under gw-reaper, so that a test that ends or is killed leaves no process
# behind.
# usage: run-test.sh BUILD HOST [--linux] -- CMD...
set -u
BUILD=$1
HOST=$2
shift 2
KIND=kvm
if [ "$1" = --linux ]; then
	KIND=linux
	shift
fi
shift
HERE=$(cd "$(dirname "$0")" && pwd)
PROBE=$BUILD/testhosts/kvm-probe
if [ "${GODWIT_NO_KVM:-0}" != 1 ] && [ ! -s "$PROBE" ]; then
	"$HERE/testhost.sh" --build "$BUILD" probe >/dev/null
fi
if [ $KIND = linux ]; then
	# The probe also builds the guests' initramfs, which the tests need wherever they run.
	PROBE=$BUILD/testhosts/linux-probe
	if [ ! -s "$PROBE" ] || [ ! -s "$BUILD/testhosts/linux-guest.cpio.gz" ]; then
		"$HERE/testhost.sh" --build "$BUILD" linux >/dev/null
	fi
fi
if [ "${GODWIT_NO_KVM:-0}" != 1 ] && [ "$(cut -d' ' -f1 "$PROBE")" = yes ]; then
	echo "# native: $(cut -d' ' -f2- "$PROBE")"
	exec "$BUILD/tests/hosts/gw-reaper" -- "$@"
fi
# A host without a working /dev/kvm fails the test: the test must not skip for lack of KVM.
if ! "$HERE/testhost.sh" --build "$BUILD" run "$HOST" -- test -c /dev/kvm; then
	echo "FAIL: test host $HOST has no /dev/kvm: $(grep '^kvm' "$BUILD/testhosts/$HOST/facts" 2>/dev/null | tr '\n' ' ')"
	exit 1
fi
echo "# in test host $HOST: native KVM: $(cut -d' ' -f2- "$PROBE" 2>/dev/null || echo 'GODWIT_NO_KVM=1')"
# Three times at most: another run only when the last failed in one of the test host's known
# faults (rerun_why.sh: its kernel panicked or triple-faulted, or a guest hit the
# nested-paging fault), not the test's. Two in a row were seen (2026-12-05: the nested-paging
# fault, then a host panic in the rerun). Before each run the host's trace ring (agent.sh) is
# emptied, so that it holds this test's guests' exits only; after a failure the exits before
# each guest shutdown are printed.
for try in 1 2 3; do
	"$HERE/testhost.sh" --build "$BUILD" run "$HOST" -- sh -c \
		'[ -w /sys/kernel/tracing/trace ] && : >/sys/kernel/tracing/trace' >/dev/null 2>&1
	"$BUILD/tests/hosts/gw-reaper" --grace 25 -- "$HERE/testhost.sh" --build "$BUILD" run "$HOST" -- "$@"
	rc=$?
	[ "$rc" = 0 ] && exit 0
	if [ "$try" = 3 ]; then
		"$HERE/shutdowns.sh" "$BUILD" "$HOST"
		break
	fi
	why=$("$HERE/rerun_why.sh" "$BUILD" "$HOST") || break
	echo "# $why (not the test): running the test once more"
done
exit "$rc"
