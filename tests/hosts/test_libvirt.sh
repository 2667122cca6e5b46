#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwitd --libvirt in test host h1 (run there as root, tests/CMakeLists.txt): a libvirt daemon
# of this machine's packages is started in a mount namespace of its own (its state directories
# on tmpfs: the host's root is read-only), the igb PF gets two VFs, and:
#   - godwitd's inventory through libvirt (qemu:///system: node devices, virNodeDeviceDetachFlags)
#     equals the one through sysfs (--libvirt none): addresses, drivers, IOMMU groups,
#     availability; host info names its source;
#   - the VFs are detached to vfio-pci through libvirt, and re-attached when godwitd stops;
#   - a VF a libvirt domain holds (defined, not started: a <hostdev managed='yes'>) is busy with
#     the domain's name in host info, godwit vm create --from-libvirt-xml on it is refused naming
#     the domain, and a godwitd started afterwards leaves it alone; the other VF is created
#     with the XML's MAC and VLAN, which its PF then shows.
# Skips (77) where no libvirt daemon can be started or it shows no node devices.
# usage: test_libvirt.sh GODWITD GODWIT
set -u
GODWITD=$1
GODWIT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/gw_test.sh"
gw_tmp gw-libvirt
PF=0000:00:04.0
SYS=/sys/bus/pci/devices
LVPID=
GWPID=
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (run in a test host)"; exit 77; }
[ -d "$SYS/$PF" ] || { echo "SKIP: no igb PF $PF (run in a test host)"; exit 77; }

stop_godwitd() {
	[ -n "$GWPID" ] || return 0
	kill -TERM "$GWPID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$GWPID" 2>/dev/null || break; sleep 0.1; done
	wait "$GWPID" 2>/dev/null
	GWPID=
}
gw_cleanup_hook() {
	stop_godwitd
	virsh -c qemu:///system undefine holder >/dev/null 2>&1
	[ -n "$LVPID" ] && kill -TERM "$LVPID" 2>/dev/null
	echo 0 >"$SYS/$PF/sriov_numvfs" 2>/dev/null
}
gw_failure_hook() {
	for f in "$TMP"/*.log; do
		echo "--- $f"
		tail -n 40 "$f"
	done
}

# Two VFs with no driver (autoprobe off, as godwitd itself makes them), before libvirt starts:
# its node devices are read at its start (no udev daemon here sends it events).
echo 0 >"$SYS/$PF/sriov_numvfs" && echo 0 >"$SYS/$PF/sriov_drivers_autoprobe" &&
	echo 2 >"$SYS/$PF/sriov_numvfs" || { echo "FAIL - cannot make VFs on $PF"; exit 1; }
VF0=$(basename "$(readlink "$SYS/$PF/virtfn0")")
VF1=$(basename "$(readlink "$SYS/$PF/virtfn1")")
drv() { basename "$(readlink "$SYS/$1/driver" 2>/dev/null)" 2>/dev/null || true; }
modprobe vfio-pci 2>/dev/null

# libvirtd as root: /etc/libvirt, /var/lib, /var/cache, /var/log on tmpfs in its own mount
# namespace; /run (tmpfs already) is shared, so its socket is reachable from here.
if ! command -v libvirtd >/dev/null || ! command -v unshare >/dev/null; then
	echo "SKIP: no libvirtd or unshare on this machine (scripts/install-deps.sh)"
	exit 77
fi
rm -rf /run/libvirt /run/libvirtd.pid
# Debian's libvirt resolves its QEMU user, libvirt-qemu (libvirt-daemon-system makes it), before
# it reads qemu.conf: that namespace's /etc/passwd and /etc/group have it.
{ cat /etc/passwd; echo "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin"; } >"$TMP/passwd"
{ cat /etc/group; echo "libvirt-qemu:x:64055:"; echo "libvirt:x:64056:"; } >"$TMP/group"
unshare -m --propagation private sh -c '
	set -e
	mount --bind "$0/passwd" /etc/passwd
	mount --bind "$0/group" /etc/group
	for d in /etc/libvirt /var/lib /var/cache /var/log; do mount -t tmpfs tmpfs "$d"; done
	printf "user = \"root\"\ngroup = \"root\"\nsecurity_driver = \"none\"\n" >/etc/libvirt/qemu.conf
	printf "auth_unix_rw = \"none\"\nunix_sock_rw_perms = \"0700\"\n" >/etc/libvirt/libvirtd.conf
	exec libvirtd -f /etc/libvirt/libvirtd.conf' "$TMP" >"$TMP/libvirtd.log" 2>&1 &
LVPID=$!
gw_bg "$LVPID"
for _ in $(seq 300); do
	virsh -c qemu:///system version >/dev/null 2>&1 && break
	kill -0 "$LVPID" 2>/dev/null || break
	sleep 0.2
done
if ! virsh -c qemu:///system version >"$TMP/virsh-version.log" 2>&1; then
	echo "SKIP: libvirtd did not start here:"
	tail -n 20 "$TMP/libvirtd.log" "$TMP/virsh-version.log"
	exit 77
fi
if ! virsh -c qemu:///system nodedev-dumpxml "pci_${PF//[:.]/_}" >"$TMP/pf.xml" 2>&1; then
	echo "SKIP: libvirt's node device driver does not show $PF:"
	head -n 5 "$TMP/pf.xml"
	exit 77
fi
pass "libvirtd runs (qemu:///system) and shows the PF $PF as a node device"

# godwitd NAME LIBVIRT: godwitd on its own state directory and the unix socket only.
godwitd() {
	local dir=$TMP/$1
	"$GODWITD" --listen none --state-dir "$dir" --pf "$PF" --emul-nic none --libvirt "$2" \
		--log-level info >"$TMP/$1.log" 2>&1 &
	GWPID=$!
	for _ in $(seq 300); do [ -S "$dir/godwitd.sock" ] && return 0; sleep 0.1; done
	echo "FAIL - godwitd --libvirt $2 did not start"
	tail -n 20 "$TMP/$1.log"
	exit 1
}
G() { "$GODWIT" --host "unix:$TMP/$1/godwitd.sock" "${@:2}"; }
# The VF table of a host info JSON: what both sources must agree on.
vfs() {
	/usr/bin/python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))
print(h.get("inventory", ""))
for p in h["sriovPfs"]:
    for v in p["vfs"]:
        print(v["hostAddress"], v.get("driver", ""), v.get("iommuGroup", ""),
              v.get("available", False), v.get("libvirtDomain", ""))' "$1"
}

# 1. sysfs
godwitd sysfs none
G sysfs --json host info >"$TMP/sysfs.json" 2>&1
vfs "$TMP/sysfs.json" >"$TMP/sysfs.vfs" 2>&1
stop_godwitd
if [ "$(head -1 "$TMP/sysfs.vfs")" = sysfs ] && [ "$(grep -c ' vfio-pci .* True' "$TMP/sysfs.vfs")" = 2 ]; then
	pass "--libvirt none: sysfs inventory, both VFs on vfio-pci and available"
else
	fail "sysfs inventory: $(cat "$TMP/sysfs.vfs")"
fi
[ -z "$(drv "$VF0")" ] && [ -z "$(drv "$VF1")" ] &&
	pass "godwitd gave both VFs back at exit (no driver, as before)" ||
	fail "after the sysfs godwitd: $VF0 on '$(drv "$VF0")', $VF1 on '$(drv "$VF1")'"

# 2. libvirt: the same inventory; the VFs detached to vfio-pci through libvirt.
godwitd lv qemu:///system
G lv --json host info >"$TMP/lv.json" 2>&1
vfs "$TMP/lv.json" >"$TMP/lv.vfs" 2>&1
[ "$(head -1 "$TMP/lv.vfs")" = "libvirt qemu:///system" ] &&
	pass "host info names the source: libvirt qemu:///system" ||
	fail "inventory source: $(head -1 "$TMP/lv.vfs")"
# (Files, not <(...): the test host's /dev has no /dev/fd.)
tail -n +2 "$TMP/sysfs.vfs" >"$TMP/sysfs.tab"
tail -n +2 "$TMP/lv.vfs" >"$TMP/lv.tab"
if [ -s "$TMP/lv.tab" ] && diff "$TMP/sysfs.tab" "$TMP/lv.tab" >"$TMP/diff.log" 2>&1; then
	pass "the inventory through libvirt equals the sysfs one ($(tail -n +2 "$TMP/lv.vfs" | tr '\n' ';'))"
else
	fail "libvirt and sysfs inventories differ: $(cat "$TMP/diff.log")"
fi
[ "$(drv "$VF0")" = vfio-pci ] && [ "$(drv "$VF1")" = vfio-pci ] &&
	pass "virNodeDeviceDetachFlags(vfio) bound both VFs to vfio-pci" ||
	fail "after detach: $VF0 on '$(drv "$VF0")', $VF1 on '$(drv "$VF1")'"
G lv host info >"$TMP/lv.txt" 2>&1
grep -q "^inventory libvirt qemu:///system" "$TMP/lv.txt" && pass "godwit host info prints the source" ||
	fail "host info text: $(head -c 600 "$TMP/lv.txt")"

# 3. A defined libvirt domain takes VF1; the running godwitd sees it at the next look.
hex() { echo "$1" | sed -E 's/^(....):(..):(..)\.(.)$/domain="0x\1" bus="0x\2" slot="0x\3" function="0x\4"/'; }
cat >"$TMP/holder.xml" <<EOF
<domain type='qemu'>
  <name>holder</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address $(hex "$VF1")/></source>
    </hostdev>
  </devices>
</domain>
EOF
if virsh -c qemu:///system define "$TMP/holder.xml" >"$TMP/define.log" 2>&1; then
	pass "libvirt domain 'holder' defined with a <hostdev> on $VF1"
else
	fail "virsh define: $(cat "$TMP/define.log")"
fi
G lv --json host info >"$TMP/lv2.json" 2>&1
vfs "$TMP/lv2.json" | grep -q "^$VF1 .* False holder$" &&
	pass "host info: $VF1 is busy, held by libvirt domain holder" ||
	fail "host info after define: $(vfs "$TMP/lv2.json" | tr '\n' ';')"
G lv host info 2>&1 | grep -q "busy: in use by libvirt domain holder" &&
	pass "godwit host info prints the busy VF with its domain" ||
	fail "host info text: $(G lv host info 2>&1 | tail -n 4)"

# The import: a domain with an <interface type='hostdev'> on each VF, one at a time.
# create only checks that godwitd can read a non-empty kernel; nothing boots here
echo "not a kernel: this VM is created, never started" >"$TMP/bzImage"
nicxml() {
	cat <<EOF
<domain type='kvm'>
  <name>$1</name>
  <uuid>0d5c1a52-8c5e-4bb4-9d9e-3a0c4a1e7a0$3</uuid>
  <memory unit='KiB'>131072</memory>
  <currentMemory unit='KiB'>131072</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <kernel>$TMP/bzImage</kernel>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:00:0$3'/>
      <source>
        <address type='pci' $(hex "$2" | tr '"' "'")/>
      </source>
      <vlan>
        <tag id='12$3'/>
      </vlan>
    </interface>
  </devices>
</domain>
EOF
}
nicxml taker "$VF1" 1 >"$TMP/taker.xml"
expect "vm create --from-libvirt-xml on the domain's VF is refused, naming the domain" 1 \
	"in use by libvirt domain 'holder'" -- G lv vm create --from-libvirt-xml "$TMP/taker.xml"
nicxml free "$VF0" 2 >"$TMP/free.xml"
expect "vm create --from-libvirt-xml on the other VF: created with that VF" 0 "vm free created" -- \
	G lv vm create --from-libvirt-xml "$TMP/free.xml"
NETDEV=$(ls "$SYS/$PF/net" 2>/dev/null | head -1)
ip link show "$NETDEV" >"$TMP/ip.log" 2>&1
grep -q "vf 0 .*link/ether 52:54:00:00:00:02.*vlan 122" "$TMP/ip.log" &&
	pass "the PF ($NETDEV) gives VF 0 the XML's MAC and VLAN 122" ||
	fail "ip link show $NETDEV: $(grep 'vf 0' "$TMP/ip.log")"
G lv --json vm info free >"$TMP/free.json" 2>&1
[ "$(jget "$TMP/free.json" "['nics'][0]['hostAddress']")" = "$VF0" ] &&
	pass "vm info: the NIC is on $VF0" || fail "vm info: $(head -c 600 "$TMP/free.json")"
G lv vm delete free >/dev/null 2>&1

# 4. godwitd stops: libvirt re-attaches the VF it detached, and leaves the domain's VF alone.
stop_godwitd
[ "$(drv "$VF0")" != vfio-pci ] &&
	pass "virNodeDeviceReAttach gave $VF0 back to the host (driver now '$(drv "$VF0")')" ||
	fail "after godwitd stopped: $VF0 still on vfio-pci"
before=$(drv "$VF1")
before0=$(drv "$VF0")
godwitd lv2 qemu:///system
G lv2 --json host info >"$TMP/lv3.json" 2>&1
vfs "$TMP/lv3.json" >"$TMP/lv3.vfs"
grep -q "^$VF1 .* False holder$" "$TMP/lv3.vfs" && [ "$(drv "$VF1")" = "$before" ] &&
	pass "a godwitd started after the domain leaves $VF1 alone (driver '$before') and reports it busy" ||
	fail "second godwitd: $(tr '\n' ';' <"$TMP/lv3.vfs") driver '$(drv "$VF1")' (was '$before')"
# The re-attach re-probes host drivers: a VF a host driver took stays with it (sysfs's rule).
if [ -z "$before0" ]; then
	grep -q "^$VF0 vfio-pci .* True $" "$TMP/lv3.vfs"
else
	grep -q "^$VF0 $before0 .* False $" "$TMP/lv3.vfs"
fi && pass "... and treats $VF0 as sysfs would (driver '$before0' before it: $(grep "^$VF0" "$TMP/lv3.vfs"))" ||
	fail "second godwitd, $VF0 (driver '$before0' before): $(tr '\n' ';' <"$TMP/lv3.vfs")"
stop_godwitd

gw_finish libvirt
