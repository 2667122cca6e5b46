#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# mkinitramfs.sh against this machine's newest /boot/vmlinuz-*: the cpio holds /init, busybox
# and its links, igbvf.ko of that kernel's version and the two static helpers, all owned by
# root; its refusals (missing busybox-static, modules, helpers). Then init.sh's info output,
# from a made-up sysfs, decoded back into the same ACPI tables by a host-side parser.
#   test_initramfs.sh BUILDDIR
set -u
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
MK=$HERE/mkinitramfs.sh
. "$HERE/../lib/gw_test.sh"
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
if [ -z "$KERNEL" ]; then
	echo "SKIP: no /boot/vmlinuz-* (scripts/install-deps.sh installs linux-image-amd64)"
	exit 77
fi
KVER=${KERNEL##*/vmlinuz-}
gw_tmp gw-initramfs
echo "# kernel $KERNEL"

expect "mkinitramfs.sh for $KVER" 0 "^mkinitramfs: .*igbvf" -- \
	"$MK" --kernel "$KERNEL" --out "$TMP/i.cpio.gz" --build "$BUILD"
cat "$TMP/out"
gzip -dc "$TMP/i.cpio.gz" | cpio -t --quiet >"$TMP/list" 2>"$TMP/err" || fail "cpio -t: $(cat "$TMP/err")"
for f in init bin/busybox bin/sh \
	"lib/modules/$KVER/kernel/drivers/net/ethernet/intel/igbvf/igbvf.ko" \
	lib/modules/gw-load-order lib/modules/gw-kver usr/bin/gw-lecho usr/bin/gw-clockcheck; do
	if grep -qx "$f" "$TMP/list"; then pass "cpio lists $f"; else fail "cpio lacks $f"; fi
done
# newc, every entry owned by 0:0.
if gzip -dc "$TMP/i.cpio.gz" | head -c 6 | grep -q '^070701$'; then
	pass "newc format"
else
	fail "not a newc cpio"
fi
if gzip -dc "$TMP/i.cpio.gz" | cpio -tv --quiet 2>/dev/null | awk '$3 != "root" || $4 != "root" { bad = 1 } END { exit bad }'; then
	pass "every entry owned by root:root"
else
	fail "entries not owned by root"
fi

mkdir "$TMP/x"
(cd "$TMP/x" && gzip -dc "$TMP/i.cpio.gz" | cpio -idm --quiet --no-absolute-filenames 2>/dev/null)
if cmp -s "$TMP/x/init" "$HERE/init.sh" && [ -x "$TMP/x/init" ]; then
	pass "/init is init.sh, executable"
else
	fail "/init differs from init.sh or is not executable"
fi
KO=$TMP/x/lib/modules/$KVER/kernel/drivers/net/ethernet/intel/igbvf/igbvf.ko
if [ -f "$KO" ] && strings "$KO" | grep -q "^vermagic=$KVER " &&
	[ "$(cat "$TMP/x/lib/modules/gw-kver")" = "$KVER" ] &&
	tail -n 1 "$TMP/x/lib/modules/gw-load-order" | grep -q 'igbvf\.ko$'; then
	pass "igbvf.ko is for $KVER (vermagic), last in the load order"
else
	fail "igbvf.ko missing, compressed or not of $KVER"
fi
for b in bin/busybox usr/bin/gw-lecho usr/bin/gw-clockcheck; do
	if readelf -lW "$TMP/x/$b" | grep -q 'Requesting program interpreter'; then
		fail "$b is dynamically linked"
	else
		pass "$b is static"
	fi
done
if [ "$(readlink "$TMP/x/bin/sh")" = /bin/busybox ]; then
	pass "applet links point at /bin/busybox"
else
	fail "bin/sh -> $(readlink "$TMP/x/bin/sh")"
fi

# Every command init.sh runs is an applet of the busybox in there.
missing=
for a in mount mkdir cat basename readlink wc tr base64 uname nproc awk sync poweroff sleep \
	insmod ip usleep setsid cttyhack; do
	found=
	for d in bin sbin usr/bin usr/sbin; do
		[ -L "$TMP/x/$d/$a" ] && found=1
	done
	[ -n "$found" ] || missing="$missing $a"
done
if [ -z "$missing" ]; then pass "the applets init.sh uses are linked"; else fail "no applet:$missing"; fi

# Refusals, each exit 1 with what is missing.
mkdir "$TMP/nobuild"
expect "no helpers" 1 "helper .*gw-lecho is missing" -- \
	"$MK" --kernel "$KERNEL" --out "$TMP/n.cpio.gz" --build "$TMP/nobuild"
expect "dynamic busybox" 1 "not statically linked: install busybox-static" -- \
	"$MK" --kernel "$KERNEL" --out "$TMP/n.cpio.gz" --build "$BUILD" --busybox /bin/true
expect "no busybox" 1 "no busybox at .*: install busybox-static" -- \
	"$MK" --kernel "$KERNEL" --out "$TMP/n.cpio.gz" --build "$BUILD" --busybox "$TMP/none"
cp "$KERNEL" "$TMP/vmlinuz-0.0.0-none"
expect "no modules" 1 "no modules for kernel 0.0.0-none" -- \
	"$MK" --kernel "$TMP/vmlinuz-0.0.0-none" --out "$TMP/n.cpio.gz" --build "$BUILD"
mkdir -p "$TMP/mods/$KVER"
grep -v igbvf "/lib/modules/$KVER/modules.dep" >"$TMP/mods/$KVER/modules.dep"
expect "no igbvf" 1 "igbvf is not in .*modules.dep" -- \
	"$MK" --kernel "$KERNEL" --out "$TMP/n.cpio.gz" --build "$BUILD" --modules-dir "$TMP/mods"
# A kernel without the version in its name: the bzImage header names it.
cp "$KERNEL" "$TMP/bzImage"
expect "version from the bzImage header" 0 "for $KVER " -- \
	"$MK" --kernel "$TMP/bzImage" --out "$TMP/h.cpio.gz" --build "$BUILD"
expect "usage" 2 "usage: mkinitramfs.sh" -- "$MK" --kernel "$KERNEL"
[ -e "$TMP/n.cpio.gz" ] && fail "a refused run left its output behind"

# init.sh's info output from a made-up sysfs, parsed as a host-side script would.
S=$TMP/sys
mkdir -p "$S/firmware/acpi/tables/dynamic" "$S/firmware/acpi/tables/data" \
	"$S/bus/pci/devices/0000:00:01.0" "$S/bus/pci/devices/0000:00:00.0" \
	"$S/devices/system/cpu"
head -c 36 /dev/urandom >"$S/firmware/acpi/tables/FACP"
head -c 3000 /dev/urandom >"$S/firmware/acpi/tables/DSDT"
: >"$S/firmware/acpi/tables/EMPTY"
head -c 77 /dev/urandom >"$S/firmware/acpi/tables/dynamic/SSDT1"
printf '0x8086\n' >"$S/bus/pci/devices/0000:00:01.0/vendor"
printf '0x10ca\n' >"$S/bus/pci/devices/0000:00:01.0/device"
printf '0x020000\n' >"$S/bus/pci/devices/0000:00:01.0/class"
printf '0x1b36\n' >"$S/bus/pci/devices/0000:00:00.0/vendor"
printf '0x0008\n' >"$S/bus/pci/devices/0000:00:00.0/device"
printf '0x060000\n' >"$S/bus/pci/devices/0000:00:00.0/class"
echo 0-1 >"$S/devices/system/cpu/online"
BB=$TMP/x/bin/busybox
GW_INIT_LIB=1 GW_SYS=$S "$BB" sh -c ". '$HERE/init.sh'; gw_info" >"$TMP/info" 2>&1
"$HERE/guest_info.py" "$TMP/info" "$TMP/rebuilt" >"$TMP/parsed.json" 2>&1
prc=$?
if [ "$prc" = 0 ] && [ "$(jget "$TMP/parsed.json" "['tables']")" = \
	"{'DSDT': 3000, 'EMPTY': 0, 'FACP': 36, 'dynamic/SSDT1': 77}" ] &&
	[ "$(jget "$TMP/parsed.json" "['pci']")" = "[{'vendor': '0x1b36', 'device': '0x0008', \
'class': '0x060000', 'driver': '-', 'bdf': '00:00.0'}, {'vendor': '0x8086', 'device': '0x10ca', \
'class': '0x020000', 'driver': '-', 'bdf': '00:01.0'}]" ] &&
	diff -r -x data "$S/firmware/acpi/tables" "$TMP/rebuilt" >/dev/null; then
	pass "info output: PCI lines, and ACPI tables rebuilt byte for byte from the base64 blocks"
else
	fail "info output"
	sed 's/^/       /' "$TMP/info" | head -n 30
	sed 's/^/       /' "$TMP/parsed.json"
fi
# gw.test= from the command line, and the interface of the VF found by its IDs.
mkdir -p "$S/class/net/eth0/device" "$S/class/net/eth1/device" "$S/class/net/lo"
printf '0x1af4\n' >"$S/class/net/eth0/device/vendor"
printf '0x1000\n' >"$S/class/net/eth0/device/device"
printf '0x8086\n' >"$S/class/net/eth1/device/vendor"
printf '0x10ca\n' >"$S/class/net/eth1/device/device"
echo 'console=ttyS0 gw.test=echo* quiet gw.other=1' >"$TMP/cmdline"
got=$(GW_INIT_LIB=1 GW_SYS=$S GW_CMDLINE=$TMP/cmdline "$BB" sh -c ". '$HERE/init.sh'
	gw_param gw.test; gw_param gw.none || echo absent; gw_netdev 0x8086 0x10ca" 2>&1)
if [ "$got" = "$(printf 'echo*\nabsent\neth1')" ]; then
	pass "gw_param and gw_netdev"
else
	fail "gw_param and gw_netdev: $got"
fi
if "$BB" sh -n "$HERE/init.sh"; then pass "init.sh parses in busybox sh"; else fail "init.sh syntax"; fi
gw_finish unit_linux_initramfs
