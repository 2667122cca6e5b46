#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwitd driven through the godwit CLI: VM lifecycle, console, auth, bad input, a crashed
# VMM, garbage on the port, a daemon restart that re-adopts a running VM, and the SR-IOV
# VF pool (--emul-nic, vm create --nic, host info).
set -u
GODWITD=$1
GODWIT=$2
GUEST=$3
. "$(dirname "$0")/../lib/gw_test.sh"
gw_need_kvm "the daemon lifecycle tests"
DPID=
gw_cleanup_hook() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null
}
gw_tmp gw-dc
S=$TMP/state

start_daemon() { # [extra godwitd options]
	rm -f "$S/listen-address"
	"$GODWITD" --listen 127.0.0.1:0 --state-dir "$S" "$@" >>"$TMP/godwitd.log" 2>&1 &
	DPID=$!
	GW_UNTIL_STEP=0.05 gw_until 120 test -s "$S/listen-address"
	ADDR=$(cat "$S/listen-address")
}

U=(--host "unix:$S/godwitd.sock")
# gexpect NAME WANT_RC PATTERN -- args to godwit
gexpect() { expect "$1" "$2" "$3" -- "$GODWIT" "${@:5}"; }

state_of() { "$GODWIT" "${U[@]}" --json vm info "$1" 2>/dev/null |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
pid_of() { "$GODWIT" "${U[@]}" --json vm info "$1" 2>/dev/null |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
wait_state() { gw_until "$3" is_state "$1" "$2"; } # NAME STATE TIMEOUT_S

start_daemon
[ -n "$ADDR" ] && pass "godwitd serves on $ADDR" || { fail "godwitd did not start"; cat "$TMP/godwitd.log"; exit 1; }
[ "$(stat -c %a "$S/godwitd.sock")" = 600 ] && pass "unix socket is owner-only (0600)" ||
	fail "unix socket mode is $(stat -c %a "$S/godwitd.sock")"

# --- usage ---
gexpect "no command is a usage error" 2 'Usage' --
gexpect "--help" 0 'Exit codes' -- --help
gexpect "vm --help" 0 'create NAME' -- vm --help
gexpect "unknown command" 2 'unknown command' -- bogus
gexpect "vm create without a name" 2 'name is required' -- "${U[@]}" vm create --memory 32M --guest "$GUEST"
gexpect "bad size syntax" 2 'bad memory size' -- "${U[@]}" vm create x --memory lots --guest "$GUEST"

# --- host info and auth ---
gexpect "host info over the unix socket" 0 'kvm +available' -- "${U[@]}" host info
gexpect "TCP without a token is refused" 1 'UNAUTHENTICATED: missing bearer token' -- --host "$ADDR" host info
echo "not-the-token" >"$TMP/wrong"
gexpect "TCP with a wrong token is refused" 1 'UNAUTHENTICATED: wrong bearer token' -- --host "$ADDR" --token-file "$TMP/wrong" vm list
gexpect "TCP with the token" 0 'vms +0' -- --host "$ADDR" --token-file "$S/token" host info
gexpect "host info --json" 0 '"kvm":\{"available":true' -- --host "$ADDR" --token-file "$S/token" --json host info

# --- the default SR-IOV inventory: one gen1 PF with 7 free VFs ---
gexpect "host info shows the default PF" 0 'pf0 +emul gen1 +8086:10ca rev 01 api 1.0 queues 1 +uplink none +VFs 7 \(7 free\)' -- "${U[@]}" host info
"$GODWIT" "${U[@]}" --json host info >"$TMP/host.json" 2>&1
if /usr/bin/python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))
pfs = h["sriovPfs"]
assert len(pfs) == 1, pfs
p = pfs[0]
assert (p["backend"], p["gen"]["gen"], p["totalVfs"], p["freeVfs"], len(p["vfs"])) == ("emul", 1, 7, 7, 7), p
assert all(v["free"] for v in p["vfs"]), p
' "$TMP/host.json"; then pass "host info --json: 1 PF, 7 of 7 VFs free"; else fail "host info --json SR-IOV counts"; fi

# --- create and bad input ---
gexpect "create" 0 'vm web created' -- "${U[@]}" vm create web --memory 32M --guest "$GUEST" --cmdline dirty:1:50
gexpect "duplicate name" 1 'ALREADY_EXISTS' -- "${U[@]}" vm create web --memory 32M --guest "$GUEST"
gexpect "malformed name" 1 'INVALID_ARGUMENT: VM name' -- "${U[@]}" vm create 'We b' --memory 32M --guest "$GUEST"
gexpect "zero size" 1 'INVALID_ARGUMENT: memory size is zero' -- "${U[@]}" vm create z --memory 0 --guest "$GUEST"
gexpect "too large" 1 'INVALID_ARGUMENT: memory size' -- "${U[@]}" vm create z --memory 30G --guest "$GUEST"
gexpect "missing guest file" 1 'INVALID_ARGUMENT: guest image /no/such' -- "${U[@]}" vm create z --memory 32M --guest /no/such/guest
gexpect "unknown VM" 1 "NOT_FOUND: no VM named 'nope'" -- "${U[@]}" vm info nope
gexpect "--json error" 1 '"error":\{"code":"NOT_FOUND"' -- "${U[@]}" --json vm info nope

# --- start, console, list ---
gexpect "start" 0 'vm web started \(running\)' -- "${U[@]}" vm start web
gexpect "start twice" 1 'already running' -- "${U[@]}" vm start web
gexpect "list shows it running" 0 'web +running +32 MiB' -- "${U[@]}" vm list
gexpect "console shows the guest" 0 'dirty: pass [0-9]+: all 256 pages ok' -- "${U[@]}" vm console web --timeout 4
gexpect "delete while running" 1 'FAILED_PRECONDITION' -- "${U[@]}" vm delete web

# --- garbage on the TCP port: the daemon keeps serving ---
/usr/bin/python3 - "$ADDR" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
for junk in (b"\x00" * 64, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 64):
    s = socket.create_connection((host, int(port)))
    s.sendall(junk)
    s.settimeout(2)
    try:
        s.recv(1024)
    except OSError:
        pass
    s.close()
PY
gexpect "serving after garbage bytes" 0 'web +running' -- --host "$ADDR" --token-file "$S/token" vm list

# --- daemon restart with the VM left running ---
VPID=$(pid_of web)
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=
if kill -0 "$VPID" 2>/dev/null; then pass "VM survives godwitd stopping"; else fail "VM died with godwitd"; fi
start_daemon
if [ "$(state_of web)" = VM_STATE_RUNNING ] && [ "$(pid_of web)" = "$VPID" ]; then
	pass "restarted godwitd re-adopts the running VM (pid $VPID)"
else
	fail "re-adoption: state $(state_of web), pid $(pid_of web), wanted $VPID"
fi
gexpect "console after re-adoption" 0 'dirty: pass' -- "${U[@]}" vm console web --timeout 3

# --- a VMM that crashes is reported failed; the daemon lives on ---
gexpect "create crashy" 0 'created' -- "${U[@]}" vm create crashy --memory 32M --guest "$GUEST" --cmdline dirty:1:20
gexpect "start crashy" 0 'started' -- "${U[@]}" vm start crashy
kill -KILL "$(pid_of crashy)"
if wait_state crashy VM_STATE_FAILED 10; then pass "killed VMM is reported failed"; else fail "crashy is $(state_of crashy)"; fi
gexpect "failure reason shown" 0 'failed: godwit-vmm was killed \(signal 9\)' -- "${U[@]}" vm info crashy
gexpect "daemon still serves" 0 'web +running' -- "${U[@]}" vm list

# --- a guest that exits by itself ---
gexpect "create hello" 0 'created' -- "${U[@]}" vm create hello --memory 32M --guest "$GUEST" --cmdline hello
gexpect "start hello" 0 'started' -- "${U[@]}" vm start hello
if wait_state hello VM_STATE_STOPPED 20; then pass "guest exit is seen"; else fail "hello is $(state_of hello)"; fi
gexpect "exit reason" 0 'guest exited with code 0' -- "${U[@]}" vm info hello
gexpect "restart a stopped VM" 0 'started' -- "${U[@]}" vm start hello
wait_state hello VM_STATE_STOPPED 20

# --- stop and delete ---
gexpect "stop" 0 'vm web stopped' -- "${U[@]}" vm stop web
# Gone, or a zombie waiting for whatever reaps orphans on this machine: not running either way.
if [ -z "$(ps -o stat= -p "$VPID" | grep -v '^Z')" ]; then pass "VMM process is gone"; else fail "VMM still alive after stop"; fi
gexpect "stop a stopped VM" 1 'not running' -- "${U[@]}" vm stop web
gexpect "delete" 0 'vm web deleted' -- "${U[@]}" vm delete web
gexpect "deleted is gone" 1 'NOT_FOUND' -- "${U[@]}" vm info web
[ -d "$S/vms/web" ] && fail "VM directory left behind" || pass "VM directory removed"
gexpect "no migrations yet" 0 'no migrations' -- "${U[@]}" migration list
gexpect "unknown migration" 1 'NOT_FOUND' -- "${U[@]}" migration status 0123456789abcdef

# --- Linux VMs: --kernel/--initrd/--cmdline reach godwit-vmm (this machine's KVM may not boot
# Linux, so every case here ends before the guest would run) ---
not_listed() { # NAME: the VM is in neither 'vm list' nor 'vm info'
	! "$GODWIT" "${U[@]}" vm list | grep -Eq "^$1 " &&
		! "$GODWIT" "${U[@]}" vm info "$1" >/dev/null 2>&1
}
gexpect "vm create --help documents --kernel" 0 'create NAME --memory SIZE \(--kernel BZIMAGE \[--initrd FILE\] \| --guest PATH\)' -- "${U[@]}" vm create --help
gexpect "--help mentions the default Linux command line" 0 'defaults to console=ttyS0' -- "${U[@]}" vm create --help
gexpect "a missing kernel is refused" 1 'INVALID_ARGUMENT: kernel /no/such/vmlinuz cannot be read by godwitd: No such file or directory' -- \
	"${U[@]}" vm create lx --memory 64M --kernel /no/such/vmlinuz
not_listed lx && pass "the refused VM is not listed" || fail "refused VM lx was left behind"
gexpect "--initrd without --kernel is a usage error" 2 'vm create: --initrd goes with --kernel' -- \
	"${U[@]}" vm create lx --memory 64M --guest "$GUEST" --initrd "$GUEST"
gexpect "--kernel with --guest is a usage error" 2 'vm create: give one of --kernel and --guest, not both' -- \
	"${U[@]}" vm create lx --memory 64M --guest "$GUEST" --kernel "$GUEST"
gexpect "neither --kernel nor --guest is a usage error" 2 'required' -- "${U[@]}" vm create lx --memory 64M
gexpect "a missing initrd is refused" 1 'INVALID_ARGUMENT: initrd /no/such/initrd cannot be read by godwitd' -- \
	"${U[@]}" vm create lx --memory 64M --kernel "$GUEST" --initrd /no/such/initrd
gexpect "a directory as the kernel is refused" 1 "INVALID_ARGUMENT: kernel $TMP is not a regular file" -- \
	"${U[@]}" vm create lx --memory 64M --kernel "$TMP"
: >"$TMP/empty.img"
gexpect "an empty initrd is refused" 1 "INVALID_ARGUMENT: initrd $TMP/empty.img is empty" -- \
	"${U[@]}" vm create lx --memory 64M --kernel "$GUEST" --initrd "$TMP/empty.img"
gexpect "more vCPUs than godwit-vmm runs are refused" 1 'INVALID_ARGUMENT: 9 vCPUs requested; at most 8 are supported' -- \
	"${U[@]}" vm create lx --memory 64M --kernel "$GUEST" --cpus 9
not_listed lx && pass "no refused VM left behind" || fail "a refused VM lx was left behind"

VMLINUZ=$(ls /boot/vmlinuz-* 2>/dev/null | head -1)
if [ -n "$VMLINUZ" ] && [ -r "$VMLINUZ" ]; then
	# A bzImage cut after its first 4 KiB: godwitd can read it, godwit-vmm refuses it (exit 3).
	head -c 4096 "$VMLINUZ" >"$TMP/trunc.bz"
	gexpect "create with a truncated bzImage" 0 'vm lx created \(defined\)' -- \
		"${U[@]}" vm create lx --memory 64M --cpus 2 --kernel "$TMP/trunc.bz"
	"$GODWIT" "${U[@]}" vm info lx | grep -Pzq "cpus +2\nkernel +\Q$TMP/trunc.bz\E\ninitrd +none\ncmdline +console=ttyS0\n" &&
		pass "info shows cpus 2, the kernel, initrd none, cmdline console=ttyS0 (the default)" || fail "info lines of lx: $("$GODWIT" "${U[@]}" vm info lx)"
	gexpect "list shows what lx boots" 0 'lx +defined +64 MiB +2 +kernel trunc.bz ' -- "${U[@]}" vm list
	"$GODWIT" "${U[@]}" --json vm list >"$TMP/list.json" 2>&1
	if /usr/bin/python3 -c '
import json, sys
vms = {v["name"]: v for v in json.load(open(sys.argv[1]))["vms"]}
s = vms["lx"]["spec"]
assert (s["kernelPath"], s["initrdPath"], s["guestPath"], s["cmdline"], s["cpus"]) == \
    (sys.argv[2], "", "", "console=ttyS0", 2), s
assert vms["hello"]["spec"]["kernelPath"] == "" and vms["hello"]["spec"]["guestPath"], vms["hello"]
' "$TMP/list.json" "$TMP/trunc.bz"; then pass "vm list --json: kernelPath, initrdPath, cmdline, cpus"; else fail "vm list --json: $(cat "$TMP/list.json")"; fi
	gexpect "start: the VMM's refusal is the error" 1 "INTERNAL: cannot start VM 'lx': godwit-vmm exited during start-up: vm: kernel $TMP/trunc.bz is not bootable: truncated" -- \
		"${U[@]}" vm start lx
	grep -q 'lx: godwit-vmm (pid [0-9]*) ended: godwit-vmm ended with exit code 3' "$TMP/godwitd.log" &&
		pass "godwit-vmm exited 3 (setup error)" || fail "no exit code 3 for lx in godwitd's log"
	gexpect "the failed VM says why" 0 'state +failed: godwit-vmm exited during start-up: vm: kernel .* is not bootable' -- "${U[@]}" vm info lx
	gexpect "delete the failed VM" 0 'vm lx deleted' -- "${U[@]}" vm delete lx
	not_listed lx && [ ! -d "$S/vms/lx" ] && pass "nothing of lx is left" || fail "lx left behind"

	# A bootable kernel with pieces that cannot fit: the refusal proves what godwitd passed.
	truncate -s 60M "$TMP/big.initrd"
	gexpect "create with a kernel and an initrd" 0 'created' -- \
		"${U[@]}" vm create lx2 --memory 96M --kernel "$VMLINUZ" --initrd "$TMP/big.initrd" --cmdline 'console=ttyS0 quiet'
	"$GODWIT" "${U[@]}" vm info lx2 | grep -Pzq "kernel +\Q$VMLINUZ\E\ninitrd +\Q$TMP/big.initrd\E\ncmdline +console=ttyS0 quiet\n" &&
		pass "info shows the kernel, the initrd and the command line as given" || fail "info of lx2: $("$GODWIT" "${U[@]}" vm info lx2)"
	gexpect "start: --initrd reached godwit-vmm" 1 'the initrd \(60 MiB\) does not fit' -- "${U[@]}" vm start lx2
	gexpect "delete lx2" 0 'deleted' -- "${U[@]}" vm delete lx2
	LONG=$(head -c 3000 /dev/zero | tr '\0' x)
	gexpect "create with a 3000-byte command line" 0 'created' -- \
		"${U[@]}" vm create lx3 --memory 96M --kernel "$VMLINUZ" --cmdline "$LONG"
	gexpect "start: --cmdline reached godwit-vmm" 1 'command line is 3000 bytes' -- "${U[@]}" vm start lx3
	gexpect "delete lx3" 0 'deleted' -- "${U[@]}" vm delete lx3
else
	echo "skip - no readable /boot/vmlinuz-*: the bzImage cases need one"
fi

# --- the VF pool: two PFs of one VF each, gen1 and gen2 ---
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=
S=$TMP/state-nics
U=(--host "unix:$S/godwitd.sock")
start_daemon --emul-nic gen=1,vfs=1 --emul-nic gen=2,vfs=1
[ -n "$ADDR" ] && pass "godwitd with two --emul-nic" || { fail "godwitd with two --emul-nic did not start"; tail "$TMP/godwitd.log"; }
gexpect "host info shows pf0 gen1 and pf1 gen2" 0 'pf1 +emul gen2 +8086:10ca rev 02 api 1.1 queues 2 +uplink none +VFs 1 \(1 free\)' -- "${U[@]}" host info
gexpect "vm create --help documents --nic" 0 '--nic vf\[,gen=N\]\[,backend=vfio\|emul\]\[,mac=MAC\]' -- "${U[@]}" vm create --help
gexpect "create --nic vf,gen=2" 0 'vm n1 created' -- "${U[@]}" vm create n1 --memory 32M --guest "$GUEST" --cmdline hello --nic vf,gen=2
gexpect "n1's NIC is pf1's VF" 0 'nic0 +vf pf1 vf0 gen2 .* 02:[0-9a-f:]{14} +passthrough, uplink none' -- "${U[@]}" vm info n1
MAC=$("$GODWIT" "${U[@]}" --json vm info n1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["nics"][0]["mac"])')
gexpect "host info shows the VF held by n1" 0 "  vf0  held by n1  $MAC" -- "${U[@]}" host info
gexpect "a second gen2 NIC is refused" 1 'RESOURCE_EXHAUSTED: no free VF of generation 2 on this host \(1 of 1 in use\); delete a VM that holds one' -- \
	"${U[@]}" vm create n2 --memory 32M --guest "$GUEST" --cmdline hello --nic vf,gen=2
gexpect "the refused VM does not exist" 1 'NOT_FOUND' -- "${U[@]}" vm info n2
gexpect "a third generation does not exist here" 1 'FAILED_PRECONDITION: this host has no VF of generation 3' -- \
	"${U[@]}" vm create n2 --memory 32M --guest "$GUEST" --nic vf,gen=3
gexpect "a multicast MAC is refused" 1 'INVALID_ARGUMENT: nic0: MAC 01:00:5e:00:00:01 is a multicast' -- \
	"${U[@]}" vm create n2 --memory 32M --guest "$GUEST" --nic vf,mac=01:00:5e:00:00:01
gexpect "a malformed --nic is a usage error" 2 'vf\[,gen=N\]\[,backend=vfio\|emul\]\[,mac=MAC\]' -- "${U[@]}" vm create n2 --memory 32M --guest "$GUEST" --nic vf,speed=10
gexpect "five NICs are a usage error" 2 'at most 4' -- "${U[@]}" vm create n2 --memory 32M --guest "$GUEST" --nic vf --nic vf --nic vf --nic vf --nic vf
gexpect "any generation with a given MAC" 0 'created' -- "${U[@]}" vm create n3 --memory 32M --guest "$GUEST" --cmdline hello --nic vf,mac=02:AA:00:00:00:01
gexpect "n3 got pf0 and its MAC" 0 'nic0 +vf pf0 vf0 gen1 .* 02:aa:00:00:00:01' -- "${U[@]}" vm info n3
gexpect "a VM with a VF runs" 0 'started' -- "${U[@]}" vm start n1
if wait_state n1 VM_STATE_STOPPED 20; then pass "n1 ran to its end with its VF"; else fail "n1 is $(state_of n1)"; fi
grep -q 'attached at .*gen2' "$S/vms/n1/vmm.log" && pass "godwit-vmm attached the gen2 VF" || fail "no VF in n1's vmm.log"
gexpect "a stopped VM still holds its VF" 0 'VFs 1 \(0 free\)' -- "${U[@]}" host info
gexpect "delete n1" 0 'deleted' -- "${U[@]}" vm delete n1
gexpect "delete freed pf1's VF" 0 'pf1 +emul gen2 .* VFs 1 \(1 free\)' -- "${U[@]}" host info
gexpect "the freed VF goes to the next VM" 0 'created' -- "${U[@]}" vm create n2 --memory 32M --guest "$GUEST" --nic vf,gen=2

# A restart rebuilds the held set; a VF the new declaration lacks leaves its NIC unbacked.
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=
start_daemon --emul-nic gen=1,vfs=1 --emul-nic gen=2,vfs=1
gexpect "restart: held VFs rebuilt" 0 'pf1 +emul gen2 .* VFs 1 \(0 free\)' -- "${U[@]}" host info
gexpect "restart: n2 still holds pf1 vf0" 0 '  vf0  held by n2' -- "${U[@]}" host info
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=
start_daemon --emul-nic gen=1,vfs=1
gexpect "a VF no longer declared: NIC unbacked" 0 'nic0 +vf .*unbacked: pf1 vf0 is not declared on this host' -- "${U[@]}" vm info n2
gexpect "an unbacked VM does not start" 1 'FAILED_PRECONDITION: .*nic0 has no VF on this host' -- "${U[@]}" vm start n2
grep -q 'warn n2: nic0 .* is unbacked' "$TMP/godwitd.log" && pass "the unbacked NIC is logged as a warning" || fail "no warning for the unbacked NIC"
gexpect "n3 keeps pf0" 0 '  vf0  held by n3  02:aa:00:00:00:01' -- "${U[@]}" host info

# --- --emul-nic none, and bad values ---
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=
S=$TMP/state-none
U=(--host "unix:$S/godwitd.sock")
start_daemon --emul-nic none
gexpect "--emul-nic none: host info" 0 'SR-IOV +none declared' -- "${U[@]}" host info
gexpect "--emul-nic none: create --nic vf fails" 1 'FAILED_PRECONDITION: this host declares no SR-IOV NIC' -- \
	"${U[@]}" vm create x --memory 32M --guest "$GUEST" --nic vf
gexpect "--emul-nic none: create without a NIC works" 0 'created' -- "${U[@]}" vm create x --memory 32M --guest "$GUEST"
for bad in gen=3,vfs=1 gen=1,vfs=8 gen=1 gen=1,vfs=2,uplink=eth0 gen=1,vfs=2,uplink=udp:h; do
	"$GODWITD" --state-dir "$TMP/state-bad" --emul-nic "$bad" >"$TMP/out" 2>&1
	rc=$?
	if [ $rc -eq 2 ] && grep -q "bad --emul-nic '$bad': .*use gen=N,vfs=M" "$TMP/out"; then
		pass "bad --emul-nic $bad exits 2 and says what is allowed"
	else
		fail "bad --emul-nic $bad: exit $rc: $(cat "$TMP/out")"
	fi
done
"$GODWITD" --state-dir "$TMP/state-bad" --emul-nic none --emul-nic gen=1,vfs=1 >"$TMP/out" 2>&1
[ $? -eq 2 ] && grep -q 'cannot be combined' "$TMP/out" && pass "'none' with another --emul-nic exits 2" ||
	fail "none combined: $(cat "$TMP/out")"
"$GODWITD" --help | grep -q -- '--emul-nic gen=N,vfs=M\[,uplink=SPEC\]' && pass "godwitd --help documents --emul-nic" ||
	fail "godwitd --help lacks --emul-nic"

gw_failure_hook() {
	echo "--- godwitd log ---"
	tail -30 "$TMP/godwitd.log"
}
gw_finish daemon/CLI
