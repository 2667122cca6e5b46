#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# How CTest runs a test that drives test hosts h1 and h2 from this machine (integration_cross_host,
# integration_vfio): with the hosts' trace rings emptied first, and on failure the exits before
# every guest shutdown printed from them (agent.sh, run-test.sh). When a failure shows one of
# the test hosts' known faults (rerun_why.sh: a host's kernel panicked, or the nested-paging
# fault; tests/hosts/README.md "Known faults"), the test runs again (three runs at most); any other failure
# stands.
# usage: on-hosts.sh BUILD -- CMD...
set -u
BUILD=$1
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
TH=("$HERE/testhost.sh" --build "$BUILD")
for try in 1 2 3; do
	for h in h1 h2; do
		"${TH[@]}" run "$h" -- sh -c '[ -w /sys/kernel/tracing/trace ] && : >/sys/kernel/tracing/trace' \
			>/dev/null 2>&1
	done
	"$BUILD/tests/hosts/gw-reaper" --grace 25 -- "$@"
	rc=$?
	[ "$rc" = 0 ] && exit 0
	if [ "$try" = 3 ]; then
		for h in h1 h2; do "$HERE/shutdowns.sh" "$BUILD" "$h"; done
		break
	fi
	why=$("$HERE/rerun_why.sh" "$BUILD" h1 h2) || break
	echo "# $why (not the test): running the test once more"
done
exit "$rc"
