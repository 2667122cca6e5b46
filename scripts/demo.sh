#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The demo: the test guest under godwit-vmm, then a VM's life through godwitd and the CLI.
set -euo pipefail
BUILD=${1:-build}
VMM=$BUILD/vmm/godwit-vmm
GODWITD=$BUILD/daemon/godwitd
GODWIT=$BUILD/cli/godwit
GUEST=$(realpath "$BUILD/tests/guest/godwit-test-guest")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { echo "\$ $*"; "$@"; }

say "godwit-vmm boots the test guest directly in long mode (workload: hello)"
run "$VMM" --memory 256M --guest "$GUEST" --cmdline hello --serial stdio --log-level warn

say "a guest that dirties 2 MiB at 200 pages/s and verifies its own pattern 3 times"
run "$VMM" --memory 64M --guest "$GUEST" --cmdline dirty:2:200:3 --json --log-level warn

say "godwitd and the godwit CLI: a VM's whole life"
STATE=$(mktemp -d /tmp/godwit-demo-XXXXXX)
cleanup() {
	[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null || true
	pkill -KILL -f "$STATE/vms/" 2>/dev/null || true
	rm -rf "$STATE"
}
trap cleanup EXIT
"$GODWITD" --listen 127.0.0.1:0 --state-dir "$STATE" --log-level warn &
DPID=$!
for _ in $(seq 100); do [ -s "$STATE/listen-address" ] && break; sleep 0.05; done
ADDR=$(cat "$STATE/listen-address")
echo "godwitd listens on $ADDR (token in $STATE/token) and unix:$STATE/godwitd.sock"
G=("$GODWIT" --host "$ADDR" --token-file "$STATE/token")
run "${G[@]}" host info
run "${G[@]}" vm create demo --memory 64M --guest "$GUEST" --cmdline dirty:2:100
run "${G[@]}" vm start demo
run "${G[@]}" vm list
run "${G[@]}" vm console demo --timeout 4
run "${G[@]}" vm stop demo
run "${G[@]}" vm delete demo

echo
echo "demo finished: the guest printed GODWIT-GUEST-HELLO, verified its memory, and ran"
echo "under godwitd from creation to deletion."
