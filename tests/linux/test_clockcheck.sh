#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# gw-clockcheck natively for 1.5 s: its start line, one line a second in the documented format
# (tests/linux/README.md), clocks that agree with this host's, no backward step; usage errors.
#   test_clockcheck.sh GW-CLOCKCHECK
set -u
CC=$1
. "$(dirname "$0")/../lib/gw_test.sh"
gw_tmp gw-clockcheck
gw_failure_hook() { sed 's/^/       /' "$TMP/cc.out"; }

before=$(date +%s%N)
"$CC" --duration-ms 1500 >"$TMP/cc.out" 2>&1
rc=$?
after=$(date +%s%N)
if [ "$rc" = 0 ]; then pass "exit 0 after --duration-ms"; else fail "exit code $rc"; fi

if grep -Eq '^clock: start interval_ms=10 report_ms=1000 mono_ns=[0-9]+ real_ns=[0-9]+$' \
	"$TMP/cc.out"; then
	pass "start line"
else
	fail "start line"
fi
LINE='^clock: mono_ns=[0-9]+ real_ns=[0-9]+ max_jump_ms=[0-9]+ win_jump_ms=[0-9]+ backwards=0 real_max_jump_ms=[0-9]+ real_backwards=[0-9]+ samples=[0-9]+ jumps=(-|[0-9]+@[0-9]+(,[0-9]+@[0-9]+)*)$'
n=$(grep -Ec "$LINE" "$TMP/cc.out")
total=$(wc -l <"$TMP/cc.out")
# Reports at 1 s and 2 s: the second ends the run, as 1.5 s have passed by then.
if [ "$n" = 2 ] && [ "$total" = 3 ]; then
	pass "two report lines in the documented format, nothing else"
else
	fail "report lines: $n of $total lines match /$LINE/"
fi
last=$(tail -n 1 "$TMP/cc.out")
field() { echo "$last" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
real=$(field real_ns)
jump=$(field max_jump_ms)
samples=$(field samples)
if [ -n "$real" ] && [ "$real" -ge "$before" ] && [ "$real" -le "$after" ]; then
	pass "real_ns within the run by this host's clock"
else
	fail "real_ns $real not within $before..$after"
fi
# Sampling every 10 ms: at least 10 ms between samples, and well under a second here.
if [ -n "$jump" ] && [ "$jump" -ge 10 ] && [ "$jump" -lt 500 ] && [ "$samples" -ge 50 ] &&
	[ "$samples" -le 200 ]; then
	pass "max_jump_ms $jump, $samples samples in 2 s"
else
	fail "max_jump_ms $jump, samples $samples"
fi

"$CC" --report-ms 100 --interval-ms 5 --duration-ms 300 >"$TMP/cc.out" 2>&1
if [ "$(grep -Ec "$LINE" "$TMP/cc.out")" = 3 ]; then
	pass "--report-ms 100 --interval-ms 5: a line every 100 ms"
else
	fail "--report-ms 100: $(grep -Ec "$LINE" "$TMP/cc.out") report lines"
fi
# A stall (SIGSTOP for 300 ms, as a paused VM looks from inside) shows as a step of about that
# length in jumps=, stamped with CLOCK_REALTIME at its end.
"$CC" --report-ms 100 --duration-ms 1200 >"$TMP/cc.out" 2>&1 &
cc=$!
sleep 0.3
kill -STOP "$cc"
stop_at=$(date +%s%N)
sleep 0.3
kill -CONT "$cc"
cont_at=$(date +%s%N)
wait "$cc"
jumps=$(tail -n 1 "$TMP/cc.out" | sed -n 's/.* jumps=\(.*\)$/\1/p')
# The stall's step is the first to end after the stop: a loaded host (the test hosts' QEMU
# on the same cores) may show a shorter step of its own before it (seen: 53 ms).
ms= end=
for j in ${jumps//,/ }; do
	[ "${j#*@}" -ge "$stop_at" ] 2>/dev/null || continue
	ms=${j%%@*} end=${j#*@}
	break
done
if [ -n "$ms" ] && [ "$ms" -ge 290 ] && [ "$ms" -le 1000 ] && [ "$end" -ge "$stop_at" ] &&
	[ "$end" -le $((cont_at + 500000000)) ]; then
	pass "a 300 ms stall shows as jumps=$jumps"
else
	fail "a 300 ms stall: jumps=$jumps (stopped $stop_at, continued $cont_at)"
fi
expect "usage error" 2 "usage: gw-clockcheck" -- "$CC" --interval-ms 0
expect "--help" 0 "max_jump_ms" -- "$CC" --help
gw_finish gw-clockcheck
