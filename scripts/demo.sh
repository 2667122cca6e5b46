#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The demo: two hosts, each with its godwitd; a VM whose guest keeps rewriting and verifying its
# memory migrates from the first to the second and back, then a short report. Then a VM with an
# SR-IOV VF echoing live traffic moves from a host with gen1 NICs to one with gen2 NICs: the
# decisions and the packet counts. Where this machine's /dev/kvm runs godwit's test guest, the
# two hosts are two godwitd on loopback; otherwise (or with GODWIT_NO_KVM=1) they are the QEMU
# test hosts h1 and h2 of tests/hosts/, and the migrations cross their virtual network.
set -euo pipefail
BUILD=$(realpath "${1:-build}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
VMM=$BUILD/vmm/godwit-vmm
GODWITD=$BUILD/daemon/godwitd
GODWIT=$BUILD/cli/godwit
PEER=$BUILD/tools/nicpeer/godwit-nicpeer
GUEST=$BUILD/tests/guest/godwit-test-guest
TH=("$SRC/tests/hosts/testhost.sh" --build "$BUILD")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints a command as the user would type it (on which host, in test-host mode), then runs it.
run() {
	local shown=("$@")
	[ "$1" = on ] && shown=("${@:3}")
	shown[0]=$(basename "${shown[0]}")
	echo "\$ ${shown[*]}"
	"$@"
}
# on HOST CMD...: runs CMD on that host (here, in native mode).
on() {
	local h=$1
	shift
	if [ "$MODE" = hosts ]; then "${TH[@]}" run "$h" -- "$@"; else "$@"; fi
}

BOOTED=()
if "${TH[@]}" probe >/dev/null; then
	MODE=native
	STATE=$(mktemp -d /tmp/godwit-demo-XXXXXX)
	IP1=127.0.0.1 IP2=127.0.0.1
else
	MODE=hosts
	echo "No usable KVM here ($(cut -d' ' -f2- "$BUILD/testhosts/kvm-probe")): the demo runs in two QEMU test hosts, h1 and h2 (tests/hosts/), over their virtual network."
	# Hosts already running (a developer's) are used and left running.
	"${TH[@]}" status | grep -q '^h1: running' || BOOTED+=(h1)
	"${TH[@]}" status | grep -q '^h2: running' || BOOTED+=(h2)
	"${TH[@]}" boot h1 h2
	STATE=$(mktemp -d "$BUILD/testhosts/demo-XXXXXX")
	IP1=10.77.0.11 IP2=10.77.0.12
fi
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ "$MODE" = native ] && { pkill -KILL -f "$STATE/" 2>/dev/null || true; }
	wait 2>/dev/null || true
	rm -rf "$STATE"
	[ ${#BOOTED[@]} -gt 0 ] && "${TH[@]}" stop "${BOOTED[@]}" >/dev/null
	return 0
}
trap cleanup EXIT

# daemon NAME HOST IP [godwitd args]: a godwitd whose token and address end up in $STATE/NAME.
daemon() {
	local n=$1 h=$2 ip=$3
	shift 3
	if [ "$MODE" = native ]; then
		"$GODWITD" --listen "$ip:0" --state-dir "$STATE/$n" --log-level warn "$@" &
	else
		mkdir -p "$STATE/$n"
		"${TH[@]}" run "$h" -- bash -c '
			"$0" --listen "$1:0" --state-dir "/tmp/gw-$2" --log-level warn "${@:4}" &
			for _ in $(seq 300); do [ -s "/tmp/gw-$2/listen-address" ] && break; sleep 0.1; done
			cp "/tmp/gw-$2/token" "$3/$2/token.tmp" && mv "$3/$2/token.tmp" "$3/$2/token"
			cp "/tmp/gw-$2/listen-address" "$3/$2/listen-address"
			wait' "$GODWITD" "$ip" "$n" "$STATE" "$@" &
	fi
	PIDS+=($!)
}
wait_daemon() { # NAME
	for _ in $(seq 600); do [ -s "$STATE/$1/listen-address" ] && [ -s "$STATE/$1/token" ] && return; sleep 0.05; done
	echo "demo: godwitd $1 did not start" >&2
	exit 1
}

# console_pass G-array-name VM FILE: shows the guest's console, 3 s at a time, until it reports a
# verification pass (a slow or loaded host may need several looks); the output also in FILE.
console_pass() {
	local -n g=$1
	local shown=("${g[@]}")
	[ "${shown[0]}" = on ] && shown=("${shown[@]:2}")
	echo "\$ $(basename "${shown[0]}") ${shown[*]:1} vm console $2 --timeout 3"
	: >"$3"
	for _ in $(seq 60); do
		"${g[@]}" vm console "$2" --timeout 3 | tee -a "$3"
		grep -q "pages ok" "$3" && return 0
	done
	echo "demo: the guest reported no verification pass in 3 minutes" >&2
	return 1
}

say "godwit-vmm boots the test guest directly in long mode"
run on h1 "$VMM" --memory 256M --guest "$GUEST" --cmdline hello --serial stdio --log-level warn

daemon alpha h1 "$IP1"
daemon beta h2 "$IP2"
wait_daemon alpha
wait_daemon beta
A=$(cat "$STATE/alpha/listen-address")
B=$(cat "$STATE/beta/listen-address")
GA=(on h1 "$GODWIT" --host "$A" --token-file "$STATE/alpha/token")
GB=(on h1 "$GODWIT" --host "$B" --token-file "$STATE/beta/token")

if [ "$MODE" = native ]; then
	say "two hosts on loopback: alpha ($A) and beta ($B)"
else
	say "two test hosts: alpha is h1 ($A), beta is h2 ($B)"
fi
run "${GA[@]}" vm create demo --memory 256M --guest "$GUEST" --cmdline dirty:8:400
run "${GA[@]}" vm start demo
console_pass GA demo "$STATE/first.console"

say "live migration alpha -> beta, with the guest rewriting 400 pages/s"
run "${GA[@]}" migrate demo --to "$B" --to-token-file "$STATE/beta/token"
ID1=$("${GA[@]}" --json migration list | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["migrations"][0]["id"])')
run "${GB[@]}" vm list
console_pass GB demo "$STATE/beta.console"

say "and back: beta -> alpha"
run "${GB[@]}" migrate demo --to "$A" --to-token-file "$STATE/alpha/token"
ID2=$("${GB[@]}" --json migration list | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["migrations"][0]["id"])')
console_pass GA demo "$STATE/alpha.console"

say "report"
report() { # G-array-name ID label
	local -n g=$1
	"${g[@]}" --json migration status "$2" | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)
phase = m["phase"].split("_")[-1].lower()
total, down, sent = int(m["totalTimeUs"]) / 1e6, int(m["downtimeUs"]) / 1e3, int(m["bytesSent"]) / 2**20
print("%-16s %-6s total %6.3f s   downtime %6.1f ms   sent %7.1f MiB" % (sys.argv[1], phase, total, down, sent))
' "$3"
}
report GA "$ID1" "alpha -> beta"
report GB "$ID2" "beta -> alpha"
cat "$STATE/beta.console" "$STATE/alpha.console" >"$STATE/all.console"
ok=$(grep -c "pages ok" "$STATE/all.console" || true)
bad=$(grep -c "BAD" "$STATE/all.console" || true)
echo "guest verification after the migrations: $ok passes over all 2048 pages OK, $bad with bad pages"
[ "$bad" -eq 0 ] && [ "$ok" -gt 0 ]
"${GA[@]}" vm stop demo >/dev/null
echo
echo "the VM moved there and back while running, and its own checks found every page intact."

say "a VM with a passthrough NIC, live traffic, and a NIC generation change"
on h1 "$PEER" --listen "udp:$IP1:0" --ready-file "$STATE/peer.ready" --count 6000 --rate 500 \
	--window 8 --stats-file "$STATE/peer.stats" --json --quiet >"$STATE/peer.json" &
PEER_PID=$!
PIDS+=($PEER_PID)
for _ in $(seq 100); do [ -s "$STATE/peer.ready" ] && break; sleep 0.05; done
UPLINK=$(cat "$STATE/peer.ready")
echo "godwit-nicpeer plays the switch at $UPLINK: numbered frames out, echoes checked"
daemon gen1host h1 "$IP1" --emul-nic "gen=1,vfs=2,uplink=$UPLINK"
daemon gen2host h2 "$IP2" --emul-nic "gen=2,vfs=2,uplink=$UPLINK"
wait_daemon gen1host
wait_daemon gen2host
G1=(on h1 "$GODWIT" --host "$(cat "$STATE/gen1host/listen-address")" --token-file "$STATE/gen1host/token")
G2=(on h1 "$GODWIT" --host "$(cat "$STATE/gen2host/listen-address")" --token-file "$STATE/gen2host/token")
run "${G1[@]}" vm create nicvm --memory 64M --guest "$GUEST" --cmdline nic-echo:0 --nic vf
run "${G1[@]}" vm start nicvm
for _ in $(seq 300); do
	[ -s "$STATE/peer.stats" ] && [ "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["received"])' "$STATE/peer.stats")" -ge 1500 ] && break
	sleep 0.1
done
run "${G1[@]}" vm info nicvm
say "live migration gen1host -> gen2host while the guest echoes (DMA shadowing on)"
run "${G1[@]}" migrate nicvm --to "$(cat "$STATE/gen2host/listen-address")" \
	--to-token-file "$STATE/gen2host/token"
sleep 2
run "${G2[@]}" vm info nicvm
wait "$PEER_PID" || true
/usr/bin/python3 - "$STATE/peer.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
print("traffic: %d frames sent, %d echoed, %d lost (%d sent while the VM was stopped or "
      "its NIC re-created), %d duplicates, %d corrupt" % (p["sent"], p["received"], p["lost"],
      p["sent_during_outage"], p["duplicates"], p["corrupt"]))
PY
"${G2[@]}" vm stop nicvm >/dev/null
echo
echo "demo finished: the NIC moved from a gen1 to a gen2 VF (quiesced, re-created, the guest"
echo "renegotiated two queue pairs) and the echoes went on."
