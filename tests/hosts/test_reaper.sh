#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# gw-reaper leaves nothing behind: a test script that starts a godwitd, a double-forked
# setsid process and a plain child is killed the way CTest kills a test that timed out
# (SIGKILL to the process CTest started), and also ends normally; either way every process
# it started must be gone within the grace period.
# usage: test_reaper.sh GW-REAPER GODWITD
set -u
REAPER=$1
GODWITD=$2
. "$(dirname "$0")/../lib/gw_test.sh"
gw_tmp gw-reaper

# The "test": records the pids of what it starts, then blocks (or ends at once with END=1).
cat >"$TMP/victim.sh" <<VICTIM
#!/bin/bash
"$GODWITD" --listen 127.0.0.1:0 --state-dir "$TMP/d\$1" --log-level error &
echo \$! >>"$TMP/pids\$1"
setsid bash -c 'sleep 1000 & echo \$! >>"\$0"; wait' "$TMP/pids\$1" &
( ( exec -a gw-orphan-$TMP sleep 1000 ) & echo \$! >>"$TMP/pids\$1" ) 
for _ in \$(seq 100); do [ -s "$TMP/d\$1/listen-address" ] && break; sleep 0.05; done
echo started >"$TMP/started\$1"
[ "\${END:-0}" = 1 ] && exit 3
sleep 1000
VICTIM
chmod +x "$TMP/victim.sh"

all_gone() { # N: every pid the victim recorded has exited (zombies count as gone)
	local p st
	for _ in $(seq 100); do
		local alive=0
		for p in $(cat "$TMP/pids$1"); do
			st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)
			[ -n "$st" ] && [ "$st" != Z ] && alive=1
		done
		[ $alive = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# 1: killed with SIGKILL, as CTest does on a timeout.
"$REAPER" --grace 2 -- "$TMP/victim.sh" 1 &
R=$!
for _ in $(seq 200); do [ -e "$TMP/started1" ] && break; sleep 0.05; done
[ "$(wc -l <"$TMP/pids1")" -ge 3 ] && pass "the victim started a godwitd, a setsid process and an orphan" ||
	fail "victim did not start: $(cat "$TMP/pids1" 2>/dev/null)"
kill -KILL "$R"
if all_gone 1; then pass "SIGKILL to gw-reaper: nothing left running"; else
	fail "left running after SIGKILL: $(for p in $(cat "$TMP/pids1"); do ps -o pid=,comm= -p "$p"; done)"; fi

# 2: the test ends on its own (exit 3) and leaves its processes behind; its exit code is kept.
END=1 "$REAPER" --grace 2 -- "$TMP/victim.sh" 2
rc=$?
[ $rc -eq 3 ] && pass "gw-reaper returns the test's exit code" || fail "exit code $rc, wanted 3"
if all_gone 2; then pass "test ended: nothing left running"; else fail "left running after the end"; fi

# 3: SIGTERM (an interrupted make check) is passed on; the code says which signal.
"$REAPER" --grace 2 -- "$TMP/victim.sh" 3 &
R=$!
for _ in $(seq 200); do [ -e "$TMP/started3" ] && break; sleep 0.05; done
kill -TERM "$R"
wait "$R"
rc=$?
[ $rc -eq 143 ] && pass "SIGTERM ends the test with 143" || fail "exit code $rc after SIGTERM, wanted 143"
if all_gone 3; then pass "SIGTERM: nothing left running"; else fail "left running after SIGTERM"; fi

gw_finish reaper
