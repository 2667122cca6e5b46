#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The demo: boots the bundled test guest under godwit-vmm and shows what it prints.
set -euo pipefail
BUILD=${1:-build}
VMM=$BUILD/vmm/godwit-vmm
GUEST=$BUILD/tests/guest/godwit-test-guest

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "godwit-vmm boots the test guest directly in long mode (workload: hello)"
echo "\$ $VMM --memory 256M --guest $GUEST --cmdline hello --serial stdio"
"$VMM" --memory 256M --guest "$GUEST" --cmdline hello --serial stdio --log-level warn

say "a guest that dirties 2 MiB at 200 pages/s and verifies its own pattern 3 times"
echo "\$ $VMM --memory 64M --guest $GUEST --cmdline dirty:2:200:3 --json"
"$VMM" --memory 64M --guest "$GUEST" --cmdline dirty:2:200:3 --json --log-level warn

say "enumerating 256 absent PCI functions (no VM exits: one shared 0xFF page)"
"$VMM" --memory 64M --guest "$GUEST" --cmdline pci-scan --json --log-level warn

echo
echo "demo finished: the guest printed GODWIT-GUEST-HELLO and verified its memory."
