#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwit-nicpeer against a fake VF in Python: clean echoes, loss/corruption/duplicates, a late
# echo, a "migration" (a second announce from a new address), and its exit codes.
set -u
PEER=$1
PY=/usr/bin/python3
. "$(dirname "$0")/../lib/gw_test.sh"
if [ ! -x "$PY" ]; then
	echo "SKIP: needs $PY"
	exit 77
fi
PEER_PID=""
FPID=""
gw_cleanup_hook() {
	[ -n "$PEER_PID" ] && kill "$PEER_PID" 2>/dev/null
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null
}
gw_tmp gw-nicpeer

# The fake VF: announces itself with an RFC 903 RARP frame, then echoes every test frame back
# with GW_NIC_FLAG_ECHO set and the MACs swapped, misbehaving on request.
cat >"$TMP/fakevf.py" <<'EOF'
import argparse, select, signal, socket, struct, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("spec")
ap.add_argument("--drop-every", type=int, default=0)
ap.add_argument("--corrupt", type=int, default=0)
ap.add_argument("--dup", type=int, default=0)
ap.add_argument("--delay", default="")  # SEQ:SECONDS
ap.add_argument("--migrate-after", type=int, default=0)
ap.add_argument("--stop-after", type=int, default=0)  # then drop --stop-for frames, announce again
ap.add_argument("--stop-for", type=int, default=0)
ap.add_argument("--counts", default="")
a = ap.parse_args()

MAC = bytes.fromhex("525400123456")


def open_sock():
    if a.spec.startswith("udp:"):
        host, port = a.spec[4:].rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        return s, (host, int(port))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("")  # autobind an abstract name so the peer can reply
    return s, a.spec[5:]


def announce(s, peer):
    body = struct.pack(">HHBBH", 1, 0x0800, 6, 4, 3) + MAC + bytes(4) + MAC + bytes(4)
    f = b"\xff" * 6 + MAC + b"\x80\x35" + body
    s.sendto(f + bytes(60 - len(f)), peer)


socks = []
s, peer = open_sock()
socks.append(s)
counts = [0, 0]
delay_seq, delay_s = 0, 0.0
if a.delay:
    delay_seq, delay_s = int(a.delay.split(":")[0]), float(a.delay.split(":")[1])
held = []  # (due, frame, sock, src)
stopped = 0  # frames still to drop: a VM stopped while it moves, same address after
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    announce(s, peer)
    last = time.monotonic()
    while time.monotonic() - last < 5 or held:
        now = time.monotonic()
        for h in [h for h in held if h[0] <= now]:
            h[2].sendto(h[1], h[3])
            held.remove(h)
        ready, _, _ = select.select(socks, [], [], 0.05)
        for rs in ready:
            f, src = rs.recvfrom(65536)
            last = time.monotonic()
            if f[12:14] != b"\x88\xb5":
                continue
            seq = struct.unpack_from("<Q", f, 20)[0]
            counts[socks.index(rs)] += 1
            if stopped:
                stopped -= 1
                if not stopped:
                    announce(rs, peer)  # running again, reached the same way
                continue
            if a.drop_every and seq % a.drop_every == 0:
                continue
            f = bytearray(f)
            f[0:6], f[6:12] = f[6:12], f[0:6]
            struct.pack_into("<I", f, 32, struct.unpack_from("<I", f, 32)[0] | 1)
            if seq == a.corrupt:
                f[len(f) - 1] ^= 0x40
            if seq == delay_seq:
                held.append((time.monotonic() + delay_s, bytes(f), rs, src))
                continue
            rs.sendto(bytes(f), src)
            if seq == a.dup:
                rs.sendto(bytes(f), src)
            if seq == a.stop_after:
                stopped = a.stop_for
            if seq == a.migrate_after and len(socks) == 1:
                # The "destination" announces from a new address; the source keeps
                # echoing whatever is still in flight to it.
                s2, _ = open_sock()
                socks.append(s2)
                announce(s2, peer)
finally:
    if a.counts:
        with open(a.counts, "w") as c:
            c.write("%d %d\n" % (counts[0], counts[1]))
EOF

# jget FILE KEY: one field of the peer's JSON report.
jget() {
	"$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" \
		2>/dev/null
}

# start_peer NAME ARGS...: runs godwit-nicpeer in the background and waits for its ready file.
start_peer() {
	local name=$1
	shift
	rm -f "$TMP/ready"
	"$PEER" --ready-file "$TMP/ready" --json --quiet "$@" >"$TMP/$name.json" \
		2>"$TMP/$name.err" &
	PEER_PID=$!
	gw_until 120 test -s "$TMP/ready"
}

# finish NAME: waits for the peer and then the fake VF; sets RC to the peer's exit code.
finish() {
	wait "$PEER_PID"
	RC=$?
	PEER_PID=""
	if [ -n "$FPID" ]; then
		kill "$FPID" 2>/dev/null
		wait "$FPID" 2>/dev/null
		FPID=""
	fi
}

# check NAME KEY WANT
check() {
	local got
	got=$(jget "$TMP/$1.json" "$2")
	if [ "$got" != "$3" ]; then
		fail "$1: $2 is '$got', wanted '$3'"
		sed 's/^/       /' "$TMP/$1.json" "$TMP/$1.err" | tail -5
		return 1
	fi
	return 0
}

# 1. A well-behaved VF over UDP: every frame comes back intact.
if start_peer clean --listen udp:127.0.0.1:0 --count 200 --stats-file "$TMP/clean.stats"; then
	spec=$(cat "$TMP/ready")
	case $spec in
	udp:127.0.0.1:[1-9]*) ;;
	*) fail "clean: ready file holds '$spec'" ;;
	esac
	"$PY" "$TMP/fakevf.py" "$spec" 2>"$TMP/fake1.err" &
	FPID=$!
	finish clean
	ok=1
	[ "$RC" -eq 0 ] || { fail "clean: exit code $RC, wanted 0"; ok=0; }
	for kv in sent=200 received=200 lost=0 duplicates=0 corrupt=0 announces=1 result=pass \
		vf_mac=52:54:00:12:34:56; do
		check clean "${kv%%=*}" "${kv#*=}" || ok=0
	done
	# The stats file ends with the same final report.
	[ "$(jget "$TMP/clean.stats" state)" = done ] &&
		[ "$(jget "$TMP/clean.stats" received)" = 200 ] ||
		{ fail "clean: stats file: $(cat "$TMP/clean.stats" 2>&1)"; ok=0; }
	[ $ok -eq 1 ] && pass "clean run: 200 sent, 200 echoed intact, exit 0"
else
	fail "clean: no ready file"; cat "$TMP/clean.err"
fi

# 2. A lossy VF: drops every 10th frame, corrupts frame 33 and echoes frame 51 twice.
# Lost: 10, 20, ..., 100 and 33 (a corrupt echo is no echo).
if start_peer lossy --listen udp:127.0.0.1:0 --count 100 --window 8; then
	"$PY" "$TMP/fakevf.py" "$(cat "$TMP/ready")" --drop-every 10 --corrupt 33 --dup 51 \
		2>"$TMP/fake2.err" &
	FPID=$!
	finish lossy
	ok=1
	[ "$RC" -eq 1 ] || { fail "lossy: exit code $RC, wanted 1"; ok=0; }
	for kv in sent=100 received=89 lost=11 corrupt=1 duplicates=1 result=fail; do
		check lossy "${kv%%=*}" "${kv#*=}" || ok=0
	done
	# Which ones: the report names them.
	check lossy lost_seqs "[10, 20, 30, 33, 40, 50, 60, 70, 80, 90, 100]" || ok=0
	check lossy duplicate_seqs "[51]" || ok=0
	[ $ok -eq 1 ] && pass "lossy run: 11 lost, 1 corrupt, 1 duplicate, exit 1"
else
	fail "lossy: no ready file"; cat "$TMP/lossy.err"
fi

# 3. A late echo: frame 7 comes back after 2.5 s. It counts as received (late), and the
# window did not wait for it.
if start_peer late --listen udp:127.0.0.1:0 --count 200 --rate 50; then
	"$PY" "$TMP/fakevf.py" "$(cat "$TMP/ready")" --delay 7:2.5 2>"$TMP/fake3.err" &
	FPID=$!
	finish late
	ok=1
	[ "$RC" -eq 0 ] || { fail "late: exit code $RC, wanted 0"; ok=0; }
	for kv in sent=200 received=200 lost=0 late=1 duplicates=0; do
		check late "${kv%%=*}" "${kv#*=}" || ok=0
	done
	[ $ok -eq 1 ] && pass "late echo: received, counted late, exit 0"
else
	fail "late: no ready file"; cat "$TMP/late.err"
fi

# 4. A "migration" over unix datagrams: after frame 100 the VF announces from a new address
# and the peer moves its traffic there.
if start_peer migrate --listen "unix:$TMP/switch.sock" --count 300 --rate 1000; then
	spec=$(cat "$TMP/ready")
	[ "$spec" = "unix:$TMP/switch.sock" ] || fail "migrate: ready file holds '$spec'"
	"$PY" "$TMP/fakevf.py" "$spec" --migrate-after 100 --counts "$TMP/counts" \
		2>"$TMP/fake4.err" &
	FPID=$!
	finish migrate
	ok=1
	[ "$RC" -eq 0 ] || { fail "migrate: exit code $RC, wanted 0"; ok=0; }
	for kv in sent=300 received=300 lost=0 announces=2; do
		check migrate "${kv%%=*}" "${kv#*=}" || ok=0
	done
	read -r on_src on_dst <"$TMP/counts" 2>/dev/null
	if [ "${on_dst:-0}" -lt 150 ] || [ "${on_src:-0}" -lt 100 ]; then
		fail "migrate: source saw ${on_src:-?} frames, destination ${on_dst:-?}"
		ok=0
	fi
	[ -e "$TMP/switch.sock" ] && { fail "migrate: the socket file was left behind"; ok=0; }
	[ $ok -eq 1 ] && pass "migration: traffic followed the second announce ($on_src + $on_dst)"
else
	fail "migrate: no ready file"; cat "$TMP/migrate.err"
fi

# 4b. A move the peer reaches the same way (one wire, one MAC): after frame 100 the VF drops 3
# frames (stopped), then announces again from the same address. The 3 were lost while it was
# stopped, not while it answered: lost_running judges them by the echoes before the announce.
# (One frame in flight at a time: each of them was sent after the last echo.)
if start_peer stop --listen "unix:$TMP/switch.sock" --count 300 --rate 1000 --window 1; then
	"$PY" "$TMP/fakevf.py" "$(cat "$TMP/ready")" --stop-after 100 --stop-for 3 \
		2>"$TMP/fake4b.err" &
	FPID=$!
	finish stop
	ok=1
	for kv in sent=300 received=297 lost=3 lost_running=0 announces=2; do
		check stop "${kv%%=*}" "${kv#*=}" || ok=0
	done
	[ $ok -eq 1 ] && pass "a stop and an announce from the same address: 3 lost, none while it answered"
else
	fail "stop: no ready file"; cat "$TMP/stop.err"
fi

# 5. Nobody announces: exit 3, still with a report.
"$PEER" --listen udp:127.0.0.1:0 --wait-announce 0.5 --json --quiet >"$TMP/none.json" \
	2>"$TMP/none.err"
RC=$?
if [ $RC -eq 3 ] && check none result no-announce && grep -q "no RARP announce" "$TMP/none.err"
then
	pass "no announce: exit 3"
else
	fail "no announce: exit code $RC"
fi

# 6. Usage errors: exit 2.
bad=0
for args in "--bogus" "" "--listen tcp:1" "--listen udp:127.0.0.1:0 --size 20" \
	"--listen udp:127.0.0.1:0 --window 0" "--listen udp:127.0.0.1:0 --duration x" \
	"--listen udp:127.0.0.1:0 --vlan 0" "--listen udp:127.0.0.1:0 --vlan 4095"; do
	# shellcheck disable=SC2086
	"$PEER" $args >/dev/null 2>&1
	rc=$?
	[ $rc -eq 2 ] || { fail "usage: '$args' gave exit code $rc"; bad=1; }
done
[ $bad -eq 0 ] && pass "usage errors: exit 2"

# 7. SIGTERM ends an open-ended run cleanly, with a report.
if start_peer sigterm --listen udp:127.0.0.1:0 --rate 200; then
	"$PY" "$TMP/fakevf.py" "$(cat "$TMP/ready")" 2>"$TMP/fake7.err" &
	FPID=$!
	sleep 1.5
	kill -TERM "$PEER_PID"
	finish sigterm
	sent=$(jget "$TMP/sigterm.json" sent)
	if [ "$RC" -eq 0 ] && [ "${sent:-0}" -gt 50 ] && check sigterm lost 0; then
		pass "SIGTERM: drained and reported ($sent frames), exit 0"
	else
		fail "SIGTERM: exit code $RC, sent '${sent:-}'"
	fi
else
	fail "sigterm: no ready file"; cat "$TMP/sigterm.err"
fi

gw_finish nicpeer
