#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# gw-lecho natively, in a private network namespace (unshare -n): on one end of a veth pair,
# against lecho_peer.py on the other (announces, echoes, bad frames, SIGUSR2), then its counter
# line on SIGUSR1 and at exit; then against godwit-nicpeer itself, through relay.py (the veth
# to UDP, as the VF's port). Needs root (CAP_NET_ADMIN and AF_PACKET); skips without.
#   test_lecho.sh GW-LECHO GODWIT-NICPEER
set -u
LECHO=$1
NICPEER=$2
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/gw_test.sh"
if [ "${GW_LECHO_IN_NETNS:-}" != 1 ]; then
	if [ "$(id -u)" != 0 ] || [ ! -x "$PY" ] || ! command -v unshare >/dev/null; then
		echo "SKIP: needs root, unshare and $PY"
		exit 77
	fi
	if ! unshare -n true 2>/dev/null; then
		echo "SKIP: cannot make a network namespace (unshare -n)"
		exit 77
	fi
	GW_LECHO_IN_NETNS=1 exec unshare -n "$0" "$@"
fi

gw_tmp gw-lecho
gw_failure_hook() { sed 's/^/       /' "$TMP/lecho.out"; }
if ! ip link add name gwl0 type veth peer name gwl1 2>"$TMP/err"; then
	echo "SKIP: no veth pair: $(cat "$TMP/err")"
	exit 77
fi
# No IPv6 chatter on the pair: its frames are the test's.
sysctl -qw net.ipv6.conf.gwl0.disable_ipv6=1 net.ipv6.conf.gwl1.disable_ipv6=1 2>/dev/null
ip link set lo up && ip link set gwl0 up && ip link set gwl1 up
for _ in $(seq 50); do
	ip -o link show gwl0 | grep -q LOWER_UP && break
	sleep 0.1
done

# The peer binds first (and says so in peer.ready), so that it sees gw-lecho's first announce.
"$PY" "$HERE/lecho_peer.py" gwl1 "$TMP/peer.ready" "$TMP/lecho.pid" &
PPID_=$!
gw_bg "$PPID_"
for _ in $(seq 50); do
	[ -e "$TMP/peer.ready" ] && break
	sleep 0.1
done
"$LECHO" --stats-every 0 gwl0 >"$TMP/lecho.out" 2>&1 &
LPID=$!
gw_bg "$LPID"
echo "$LPID" >"$TMP/lecho.pid"
if wait "$PPID_"; then
	pass "lecho_peer.py"
else
	fail "lecho_peer.py"
fi

kill -USR1 "$LPID"
sleep 0.3
# 21 good frames echoed, 4 bad ones (rx counts only ethertype 0x88B5, so IPv6 chatter is not
# in it).
STATS='^lecho: rx 25 tx 21 bad 4 announces 2 txerr 0$'
if grep -Eq "$STATS" "$TMP/lecho.out"; then
	pass "counters on SIGUSR1"
else
	fail "counters on SIGUSR1: wanted /$STATS/"
fi
kill -TERM "$LPID"
wait "$LPID"
rc=$?
if [ "$rc" = 0 ] && [ "$(grep -Ec "$STATS" "$TMP/lecho.out")" = 2 ]; then
	pass "exit 0 on SIGTERM with the counters"
else
	fail "exit on SIGTERM: code $rc"
fi
if grep -Eq '^lecho: ready dev=gwl0 ifindex=[0-9]+ mac=([0-9a-f]{2}:){5}[0-9a-f]{2}$' "$TMP/lecho.out" &&
	[ "$(grep -Ec '^lecho: announce [12] mac=' "$TMP/lecho.out")" = 2 ]; then
	pass "ready and announce lines"
else
	fail "ready and announce lines"
fi

# The real peer: it learns the guest from the announce, 2000 frames of 1000 bytes come back
# intact through the relay, in both directions as one datagram per frame.
"$NICPEER" --listen udp:127.0.0.1:0 --ready-file "$TMP/peer.spec" --count 2000 --size 1000 \
	--wait-announce 10 --stats-file "$TMP/peer.json" --quiet >"$TMP/nicpeer.out" 2>&1 &
NPID=$!
gw_bg "$NPID"
for _ in $(seq 50); do
	[ -s "$TMP/peer.spec" ] && break
	sleep 0.1
done
"$PY" "$HERE/relay.py" gwl1 "$(cat "$TMP/peer.spec")" "$TMP/relay.ready" &
gw_bg $!
for _ in $(seq 50); do
	[ -e "$TMP/relay.ready" ] && break
	sleep 0.1
done
"$LECHO" --stats-every 0 gwl0 >"$TMP/lecho.out" 2>&1 &
LPID=$!
gw_bg "$LPID"
wait "$NPID"
rc=$?
kill -TERM "$LPID"
wait "$LPID"
if [ "$rc" = 0 ] && [ "$(jget "$TMP/peer.json" "['received']")" = 2000 ] &&
	[ "$(jget "$TMP/peer.json" "['corrupt']")" = 0 ] &&
	[ "$(jget "$TMP/peer.json" "['announces']")" = 1 ] &&
	grep -Eq '^lecho: rx 2000 tx 2000 bad 0 announces 1 txerr 0$' "$TMP/lecho.out"; then
	pass "godwit-nicpeer: 2000 frames echoed intact, the guest learnt from one announce"
else
	fail "godwit-nicpeer: exit $rc"
	sed 's/^/       /' "$TMP/nicpeer.out" "$TMP/peer.json"
fi

# A usage error is exit 2, an interface that is not there 1.
expect "usage error" 2 "usage: gw-lecho" -- "$LECHO" --bogus
expect "missing interface" 1 "no interface nosuch0" -- "$LECHO" nosuch0
gw_finish gw-lecho
