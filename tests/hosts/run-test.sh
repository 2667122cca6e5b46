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
# The host's trace ring (agent.sh) from here on holds this test's guests' exits only.
"$HERE/testhost.sh" --build "$BUILD" run "$HOST" -- sh -c \
	'[ -w /sys/kernel/tracing/trace ] && : >/sys/kernel/tracing/trace' >/dev/null 2>&1
"$BUILD/tests/hosts/gw-reaper" --grace 25 -- "$HERE/testhost.sh" --build "$BUILD" run "$HOST" -- "$@"
rc=$?
# The host's own kernel can die under a nested guest: kvm_amd nested in QEMU's TCG SVM overflows
# its kernel stack in the vCPU thread now and then (tests/hosts/README.md, "Known faults"). That
# is the test host failing, not the test: once, and only for a kernel panic of the host, the
# test runs again on a freshly booted one. Every other failure stands as it is.
if [ "$rc" = 75 ] && grep -q "Kernel panic" "$BUILD/testhosts/$HOST/console.log" 2>/dev/null; then
	echo "# test host $HOST's kernel panicked (the nested-SVM fault above, not the test): rebooting it and running the test once more"
	"$HERE/testhost.sh" --build "$BUILD" stop "$HOST" >/dev/null 2>&1
	"$HERE/testhost.sh" --build "$BUILD" boot "$HOST" || exit 1
	exec "$BUILD/tests/hosts/gw-reaper" --grace 25 -- "$HERE/testhost.sh" --build "$BUILD" run "$HOST" -- "$@"
fi
# A guest reset by a triple fault leaves no state of its own (SVM resets the vCPU first): the
# exits before its shutdown, from the host's trace ring (agent.sh), say where it was.
if [ "$rc" != 0 ] && [ "$rc" != 75 ]; then
	"$HERE/shutdowns.sh" "$BUILD" "$HOST"
	# The test host's nested paging fault (tests/hosts/README.md, "Known faults"): the guest's
	# vCPU shut down delivering a page fault on the very instruction whose nested page fault
	# KVM had just resolved, with no exception of KVM's in between. The guest's page tables had
	# just translated that address (the nested fault names its guest-physical address), so
	# this page fault comes from QEMU's emulation of nested paging, not from the guest or the
	# VMM. Once, the test runs again.
	if [ -z "${GW_RERUN:-}" ] && /usr/bin/python3 "$HERE/tcg_npt_fault.py" \
		"$BUILD/testhosts/$HOST/last-shutdowns"; then
		echo "# the test host's nested-paging fault above (not the test): running the test once more"
		export GW_RERUN=1
		exec "$BUILD/tests/hosts/gw-reaper" --grace 25 -- "$HERE/testhost.sh" --build "$BUILD" \
			run "$HOST" -- "$@"
	fi
fi
exit "$rc"
