#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Live migration between two test hosts over their virtual network: one godwitd on h1
# (10.77.0.11), one on h2 (10.77.0.12), each with an emulated gen1 PF. A VM whose guest keeps
# rewriting and verifying its memory, and a VM holding a VF, migrate h1 -> h2 and back; the
# guest verifies its pattern after each move, and the stream must have crossed the network.
# usage: test_cross_host.sh BUILD GODWITD GODWIT GUEST
set -u
BUILD=$1
GODWITD=$2
GODWIT=$3
GUEST=$4
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/gw_test.sh"
TH=("$HERE/testhost.sh" --build "$BUILD")
# The shared folder the hosts see (not gw_tmp's /tmp, which is each host's own); expect and
# verified keep their files in TMP.
X=$(mktemp -d "$BUILD/testhosts/xhost-XXXXXX")
TMP=$X
BG=()
cleanup() {
	for p in "${BG[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$X"
}
trap cleanup EXIT

# One godwitd per host, as a job that lives until this script ends; its token and address are
# copied to the shared folder X for the client on the other host. They speak mutual TLS, with
# certificates of a test CA naming each host by its address.
gw_test_certs "$X/ca" >/dev/null || { echo "FAIL - cannot make test certificates"; exit 1; }
daemon() { # HOST IP NAME
	# shellcheck disable=SC2046 # the TLS options are words
	"${TH[@]}" run "$1" -- bash -c '
		d=$0 ip=$1 n=$2 x=$3; shift 4
		"$d" --listen "$ip:7700" --state-dir "/tmp/gw-$n" --emul-nic gen=1,vfs=2 "$@" \
			>"$x/$n.log" 2>&1 &
		for _ in $(seq 300); do [ -s "/tmp/gw-$n/listen-address" ] && break; sleep 0.1; done
		cp "/tmp/gw-$n/token" "$x/$n.token" && cp "/tmp/gw-$n/listen-address" "$x/$n.addr"
		wait' "$GODWITD" "$2" "$3" "$X" - $(gw_tls "$X/ca" "$1") &
	BG+=($!)
}
daemon h1 10.77.0.11 a
daemon h2 10.77.0.12 b
for _ in $(seq 600); do [ -s "$X/a.addr" ] && [ -s "$X/b.addr" ] && break; sleep 0.1; done
if ! [ -s "$X/a.addr" ] || ! [ -s "$X/b.addr" ]; then
	echo "FAIL - the daemons did not start on h1 and h2"
	cat "$X"/*.log 2>/dev/null
	exit 1
fi
A=$(cat "$X/a.addr")
B=$(cat "$X/b.addr")
echo "# godwitd on h1 at $A, on h2 at $B"
# The CLI runs on h1 and reaches either daemon over the control network, over TLS.
GA=("${TH[@]}" run h1 -- "$GODWIT" --host "$A" --token-file "$X/a.token" --tls-ca "$X/ca/ca.pem")
GB=("${TH[@]}" run h1 -- "$GODWIT" --host "$B" --token-file "$X/b.token" --tls-ca "$X/ca/ca.pem")
expect "the CLI will not talk plaintext to another host" 2 'tls-ca' -- \
	"${TH[@]}" run h1 -- "$GODWIT" --host "$B" --token-file "$X/b.token" host info
expect "h2's godwitd serves TLS as h2" 0 '"tlsNames".*10.77.0.12' -- "${GB[@]}" --json host info

# The migration's stream went to the other host's address, not to loopback.
crossed() { # G-array-name VM DEST-IP
	local -n g=$1
	"${g[@]}" --json migration list >"$X/ml" 2>&1
	/usr/bin/python3 -c '
import json, sys
m = [m for m in json.load(open(sys.argv[1]))["migrations"] if m["vm"] == sys.argv[2]][0]
assert m["destination"].startswith(sys.argv[3] + ":"), m
' "$X/ml" "$2" "$3"
}

expect "create web on h1" 0 created -- "${GA[@]}" vm create web --memory 64M --guest "$GUEST" --cmdline dirty:2:300
expect "start web" 0 started -- "${GA[@]}" vm start web
expect "create nv with a VF on h1" 0 created -- "${GA[@]}" vm create nv --memory 32M --guest "$GUEST" --cmdline dirty:1:200 --nic vf
expect "start nv" 0 started -- "${GA[@]}" vm start nv
sleep 2

# --allow-tsc-change: each test host calibrates its TSC when it boots, under QEMU's TCG, and
# two boots can differ by more than KVM's 250 ppm, with no TSC scaling in the nested KVM (see
# test_vfio.sh); the refusal itself is tested in integration_migrate and unit_hv.
for vm in web nv; do
	expect "migrate $vm h1 -> h2" 0 'phase +done' -- "${GA[@]}" migrate "$vm" --to "$B" --to-token-file "$X/b.token" \
		--allow-tsc-change
	if crossed GA "$vm" 10.77.0.12; then pass "$vm went to h2's address on the control network"; else fail "$vm: destination: $(cat "$X/ml")"; fi
	expect "$vm runs on h2" 0 "$vm +running" -- "${GB[@]}" vm list
	if verified GB "$vm" 6; then pass "$vm verifies its whole pattern on h2"; else fail "$vm: verification on h2"; cat "$X/con"; fi
done
expect "nv holds a VF of h2's gen1 PF" 0 'nic0 +vf pf0 vf[0-9]+ gen1 .*passthrough' -- "${GB[@]}" vm info nv
for vm in web nv; do
	expect "migrate $vm h2 -> h1" 0 'phase +done' -- "${GB[@]}" migrate "$vm" --to "$A" --to-token-file "$X/a.token" \
		--allow-tsc-change
	if crossed GB "$vm" 10.77.0.11; then pass "$vm came back to h1's address"; else fail "$vm: destination: $(cat "$X/ml")"; fi
	expect "$vm runs on h1 again" 0 "$vm +running" -- "${GA[@]}" vm list
	if verified GA "$vm" 6; then pass "$vm verifies its whole pattern back on h1"; else fail "$vm: verification on h1"; cat "$X/con"; fi
done
expect "h2 holds no VM" 0 'no VMs' -- "${GB[@]}" vm list

gw_failure_hook() {
	for n in a b; do echo "--- godwitd $n ---"; tail -n 15 "$X/$n.log"; done
}
gw_finish cross-host
