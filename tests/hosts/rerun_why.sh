#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# After a test failed in test hosts: is it one of the test hosts' known faults (README.md,
# "Known faults") rather than the test? Prints the reason and exits 0 if so, exits 1 if not.
#   - a host's own kernel panicked, or triple-faulted (QEMU's log, -d cpu_reset), under nested
#     SVM in QEMU's TCG: the host is booted again;
#   - a guest shut down in the nested-paging fault (tcg_npt_fault.py on the exits before each
#     shutdown, which shutdowns.sh prints here from each running host's trace ring).
# Used by run-test.sh and on-hosts.sh, which then run the test once more.
# usage: rerun_why.sh BUILD HOST...
set -u
BUILD=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
TH=("$HERE/testhost.sh" --build "$BUILD")
why=
for h in "$@"; do
	if ! "${TH[@]}" status | grep -q "^$h: running"; then
		how=
		if grep -q "Kernel panic" "$BUILD/testhosts/$h/console.log" 2>/dev/null; then
			how=panicked
		elif grep -q "^Triple fault" "$BUILD/testhosts/$h/qemu-debug.log" 2>/dev/null; then
			how=triple-faulted
		fi
		if [ -n "$how" ]; then
			"${TH[@]}" stop "$h" >/dev/null 2>&1
			"${TH[@]}" boot "$h" >/dev/null || exit 1
			why="${why:+$why; }test host $h's kernel $how (booted again)"
		fi
		continue
	fi
	"$HERE/shutdowns.sh" "$BUILD" "$h" >&2
	/usr/bin/python3 "$HERE/tcg_npt_fault.py" "$BUILD/testhosts/$h/last-shutdowns" &&
		why="${why:+$why; }the nested-paging fault on $h"
done
[ -n "$why" ] || exit 1
echo "$why"
