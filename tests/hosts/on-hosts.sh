#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# How CTest runs a test that drives test hosts h1 and h2 from this machine (integration_cross_host,
# integration_vfio): with the hosts' trace rings emptied first, and on failure the exits before
# every guest shutdown printed from them (agent.sh, run-test.sh). When a failure shows the test
# hosts' nested-paging fault (tcg_npt_fault.py, tests/hosts/README.md "Known faults"), the test
# runs once more; any other failure stands.
# usage: on-hosts.sh BUILD -- CMD...
set -u
BUILD=$1
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
TH=("$HERE/testhost.sh" --build "$BUILD")
rings() { # ACTION: clear, or print the exits before each shutdown into BUILD/testhosts/HOST/
	for h in h1 h2; do
		if [ "$1" = clear ]; then
			"${TH[@]}" run "$h" -- sh -c '[ -w /sys/kernel/tracing/trace ] && : >/sys/kernel/tracing/trace' \
				>/dev/null 2>&1
			continue
		fi
		"$HERE/shutdowns.sh" "$BUILD" "$h"
	done
}
for try in 1 2; do
	rings clear
	"$BUILD/tests/hosts/gw-reaper" --grace 25 -- "$@"
	rc=$?
	[ "$rc" = 0 ] && exit 0
	rings print
	[ "$try" = 2 ] && break
	/usr/bin/python3 "$HERE/tcg_npt_fault.py" "$BUILD/testhosts/h1/last-shutdowns" ||
		/usr/bin/python3 "$HERE/tcg_npt_fault.py" "$BUILD/testhosts/h2/last-shutdowns" || break
	echo "# the test hosts' nested-paging fault above (not the test): running the test once more"
done
exit "$rc"
