#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwit-vmm from the command line: the hello marker, consoles, exit codes and bad input.
set -u
VMM=$1
GUEST=$2
. "$(dirname "$0")/../lib/gw_test.sh"
gw_need_kvm "godwit-vmm tests"
gw_tmp gw-vmm

# --- the guest runs ---
expect "hello prints its marker on stdio" 0 '^GODWIT-GUEST-HELLO' -- \
	"$VMM" --memory 64M --guest "$GUEST" --cmdline hello --serial stdio
"$VMM" --memory 64M --guest "$GUEST" --cmdline hello --serial "file:$TMP/console" \
	--log-level error >"$TMP/out" 2>&1
if grep -q '^GODWIT-GUEST-HELLO ram=64MiB' "$TMP/console"; then
	pass "hello prints its marker to a console file"
else
	fail "console file lacks the marker"
fi
expect "--json prints the result" 0 '"result":"guest-exit","guest_exit_code":0' -- \
	"$VMM" --memory 32M --guest "$GUEST" --cmdline hello --serial none --json
expect "dirty guest verifies itself" 0 'dirty: pass 2: all 256 pages ok' -- \
	"$VMM" --memory 32M --guest "$GUEST" --cmdline dirty:1:100:2

# A unix-socket console: a client that connects sees the guest's output, also while 20 other
# clients come and vanish. The guest runs until
# the client has seen three passes (a guest that stopped by itself after three could finish
# before a slow client even connects), then SIGTERM stops the VM cleanly (exit code 0).
"$VMM" --memory 32M --guest "$GUEST" --cmdline dirty:1:100 --serial "unix:$TMP/con.sock" \
	--log-level error &
vmm_pid=$!
/usr/bin/python3 - "$TMP/con.sock" >"$TMP/sock.out" 2>&1 <<'PY'
import socket, sys, time
deadline = time.time() + 120
while True:
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.05)
s.settimeout(120)
# Clients that vanish (a reset, not a close) while the guest prints: the VMM's sends to them
# fail, and it must drop them without disturbing the others or itself.
import struct
for _ in range(20):
    c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
    c.settimeout(5)
    try:
        c.recv(16)
    except OSError:
        pass
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
data = b""
while data.count(b": all 256 pages ok") < 3:
    chunk = s.recv(4096)
    if not chunk: break
    data += chunk
sys.stdout.write(data.decode(errors="replace"))
PY
kill -TERM $vmm_pid
wait $vmm_pid
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c ": all 256 pages ok" "$TMP/sock.out")" -ge 3 ]; then
	pass "unix-socket console carries the guest's output past vanishing clients"
else
	fail "unix-socket console (rc $rc)"; tail -3 "$TMP/sock.out"
fi

# --- exit codes for what the guest does ---
expect "guest error exit code is 1" 1 'unknown workload' -- \
	"$VMM" --memory 32M --guest "$GUEST" --cmdline nonsense
expect "unmapped MMIO is logged and the guest continues" 0 'unmapped address 0xd0000000' -- \
	"$VMM" --memory 32M --guest "$GUEST" --cmdline fault:unmapped
expect "unknown backdoor call answers ENOSYS" 0 'unknown backdoor call 57005' -- \
	"$VMM" --memory 32M --guest "$GUEST" --cmdline fault:backdoor
expect "triple fault stops the VM with exit code 4" 4 'stopping' -- \
	"$VMM" --memory 32M --guest "$GUEST" --cmdline fault:triple
expect "--timeout stops an idle guest with exit code 5" 5 'timeout of 1 s reached' -- \
	"$VMM" --memory 32M --guest "$GUEST" --cmdline fill-random:1 --timeout 1

# --- bad input: one clear line, exit code 2 (usage) or 3 (setup) ---
for m in abc 0 1M 3M 64G -5M 12Q; do
	expect "memory size '$m' is refused" 2 'memory' -- \
		"$VMM" --memory "$m" --guest "$GUEST"
done
expect "missing guest file" 3 "cannot read --guest '$TMP/nope'" -- \
	"$VMM" --memory 32M --guest "$TMP/nope"
echo "this is not an ELF file" >"$TMP/text"
expect "text file as guest" 3 'not an ELF file' -- "$VMM" --memory 32M --guest "$TMP/text"
head -c 100 "$GUEST" >"$TMP/short"
expect "truncated ELF as guest" 3 'program header table' -- \
	"$VMM" --memory 32M --guest "$TMP/short"
expect "dynamic executable as guest" 3 'not a statically linked executable' -- \
	"$VMM" --memory 32M --guest /bin/true
expect "directory as guest" 3 'not a regular file' -- "$VMM" --memory 32M --guest "$TMP"
# Linux kernels that cannot be booted: a clear reason, exit code 3, and the VM never starts (no
# console output). These stop before the guest runs, so any KVM does.
KERNEL=$(ls -v /boot/vmlinuz-* 2>/dev/null | tail -n 1)
if [ -n "$KERNEL" ]; then
	head -c 20000 "$KERNEL" >"$TMP/trunc.bz"
	expect "truncated bzImage" 3 'not bootable: .*truncated' -- \
		"$VMM" --memory 256M --kernel "$TMP/trunc.bz" --serial "file:$TMP/con1"
	expect "a kernel too big for RAM" 3 "needs [0-9]+ MiB of RAM from" -- \
		"$VMM" --memory 32M --kernel "$KERNEL" --serial "file:$TMP/con2"
	head -c $((40 << 20)) /dev/zero >"$TMP/big.img"
	expect "an initrd that does not fit" 3 'the initrd \(40 MiB\) does not fit' -- \
		"$VMM" --memory 96M --kernel "$KERNEL" --initrd "$TMP/big.img" --serial "file:$TMP/con3"
	expect "a command line over the kernel's limit" 3 'the command line is 3000 bytes; this kernel takes at most' -- \
		"$VMM" --memory 256M --kernel "$KERNEL" --cmdline "$(head -c 3000 /dev/zero | tr '\0' x)" \
		--serial "file:$TMP/con4"
	expect "a missing initrd" 3 "cannot read --initrd '$TMP/nope'" -- \
		"$VMM" --memory 256M --kernel "$KERNEL" --initrd "$TMP/nope" --serial "file:$TMP/con5"
	expect "a text file as kernel" 3 'not bootable' -- \
		"$VMM" --memory 256M --kernel "$TMP/text" --serial "file:$TMP/con6"
	cat "$TMP"/con[1-6] 2>/dev/null | grep -q . && fail "a refused kernel wrote to the console" ||
		pass "no refused kernel ever ran (nothing on any console)"
else
	fail "no kernel in /boot to test with: scripts/install-deps.sh installs linux-image-amd64"
fi
expect "--kernel with --guest" 2 'one of --kernel, --guest' -- \
	"$VMM" --memory 256M --kernel /x --guest "$GUEST"
expect "--initrd without --kernel" 2 'initrd goes with --kernel' -- \
	"$VMM" --memory 256M --guest "$GUEST" --initrd /x
expect "unknown option" 2 'Usage' -- "$VMM" --bogus
expect "missing --memory" 2 'required' -- "$VMM" --guest "$GUEST"
expect "bad serial sink" 2 'serial' -- "$VMM" --memory 32M --guest "$GUEST" --serial tcp:1
expect "--help" 0 'Exit codes' -- "$VMM" --help

# /dev/kvm missing or not KVM: hide it in a private mount namespace.
if unshare --mount true 2>/dev/null; then
	expect "missing /dev/kvm" 3 '/dev/kvm does not exist' -- \
		unshare --mount sh -c "mount -t tmpfs none /dev && exec '$VMM' --memory 32M --guest '$GUEST'"
	expect "/dev/kvm that is not KVM" 3 '/dev/kvm is not a KVM device' -- \
		unshare --mount sh -c "mount --bind /dev/null /dev/kvm && exec '$VMM' --memory 32M --guest '$GUEST'"
else
	echo "note - missing-/dev/kvm cases not run: unshare --mount is not permitted here"
fi

gw_finish "godwit-vmm CLI"
