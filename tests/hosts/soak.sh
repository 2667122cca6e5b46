#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs the whole CTest suite N times in a row with every KVM test inside the test hosts
# (GODWIT_NO_KVM=1), stopping at the first failure; each run's log in BUILD/soak/run-K.log.
# usage: soak.sh [--build DIR] N [ctest args...]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${GW_BUILD:-$HERE/../../build}
if [ "${1:-}" = "--build" ]; then
	BUILD=$2
	shift 2
fi
case ${1:-} in
'' | -h | --help)
	sed -n '3,5p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
N=$1
shift
BUILD=$(cd "$BUILD" && pwd)
mkdir -p "$BUILD/soak"
for ((k = 1; k <= N; k++)); do
	t0=$SECONDS
	(cd "$BUILD" && GODWIT_NO_KVM=1 ctest --output-on-failure -j2 "$@") >"$BUILD/soak/run-$k.log" 2>&1
	rc=$?
	summary=$(grep -E 'tests passed|tests failed' "$BUILD/soak/run-$k.log" | tail -n 1)
	echo "soak: run $k of $N: $summary ($((SECONDS - t0)) s)"
	if [ $rc -ne 0 ]; then
		grep -E '^\s+[0-9]+ - ' "$BUILD/soak/run-$k.log"
		echo "soak: stopped at run $k; log: $BUILD/soak/run-$k.log"
		exit 1
	fi
done
echo "soak: $N runs in a row passed"
