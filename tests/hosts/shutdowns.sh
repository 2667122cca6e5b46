#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Prints, from test host HOST's trace ring (agent.sh), the last exits of every vCPU before each of
# its two latest shutdowns, and keeps them in BUILD/testhosts/HOST/last-shutdowns (read by
# tcg_npt_fault.py). Used by run-test.sh and on-hosts.sh when a test failed.
# usage: shutdowns.sh BUILD HOST
set -u
BUILD=$1 HOST=$2
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/testhost.sh" --build "$BUILD" run "$HOST" --timeout 60 -- sh -c '
	t=/sys/kernel/tracing/trace
	[ -r "$t" ] || exit 0
	grep -n " reason shutdown" "$t" | tail -n 2 | while IFS=: read -r n line; do
		task=$(echo "$line" | awk "{print \$1}")
		echo "# '"$HOST"': the last exits of $task before its shutdown (the host trace ring):"
		head -n "$n" "$t" | grep -F -- "$task" | tail -n 40
	done' 2>/dev/null | tee "$BUILD/testhosts/$HOST/last-shutdowns"
