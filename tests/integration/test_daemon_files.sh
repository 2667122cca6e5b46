#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwitd's state directory without KVM: it refuses a directory or token that group or others
# can read (saying the chmod to run), and what it makes itself is owner-only: the directory, the
# token and the unix socket.
set -u
GODWITD=$1
. "$(dirname "$0")/../lib/gw_test.sh"
gw_tmp gw-daemon-files
S="$TMP/state"

run() { timeout 20 "$GODWITD" --listen none --state-dir "$S" --emul-nic none "$@"; }

mkdir -m 0755 "$S"
expect "a state directory others can read is refused" 1 "mode 0755.*run 'chmod 700 $S'" -- run
chmod 700 "$S"
printf '%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef >"$S/token"
chmod 644 "$S/token"
expect "a token others can read is refused" 1 "$S/token .*mode 0644.*run 'chmod 600 $S/token'" -- run
: >"$S/token"
chmod 600 "$S/token"
expect "an empty token is refused" 1 "$S/token is empty" -- run
rm -f "$S/token"
rmdir "$S" 2>/dev/null || rm -rf "$S"

# Made by godwitd: all owner-only.
umask 000
"$GODWITD" --listen none --state-dir "$S" --emul-nic none --log-level error &
pid=$!
gw_bg "$pid"
umask 022
gw_until 120 test -S "$S/godwitd.sock"
mode() { stat -c %a "$1" 2>/dev/null; }
[ "$(mode "$S")" = 700 ] && pass "state directory 0700" || fail "state directory $(mode "$S")"
[ "$(mode "$S/token")" = 600 ] && pass "token 0600" || fail "token $(mode "$S/token")"
[ "$(mode "$S/godwitd.sock")" = 600 ] && pass "unix socket 0600" ||
	fail "unix socket $(mode "$S/godwitd.sock")"
[ "$(wc -c <"$S/token")" = 65 ] && pass "token: 64 hex digits" || fail "token: $(cat "$S/token")"
kill "$pid"
wait "$pid" 2>/dev/null
gw_finish "godwitd: state files"
