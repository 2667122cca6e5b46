#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /init of godwit's Linux test guests (copied in by tests/linux/mkinitramfs.sh): mounts the
# kernel's file systems, prints GODWIT-LINUX-INIT-OK, then runs what gw.test= on the kernel
# command line asks for (info, echo, else a shell). POSIX sh for busybox ash; the console
# format is in tests/linux/README.md. With GW_INIT_LIB=1 it only defines its functions (the
# host-side test sources it that way); GW_SYS and GW_CMDLINE point them at another sysfs and
# command line.
set -u
PATH=/usr/bin:/bin:/usr/sbin:/sbin
export PATH
GW_SYS=${GW_SYS:-/sys}
GW_CMDLINE=${GW_CMDLINE:-/proc/cmdline}

gw_mounts() {
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	mkdir -p /dev/pts /tmp
	mount -t devpts devpts /dev/pts 2>/dev/null
	# Whatever console the kernel handed over, the one devtmpfs has from now on.
	if [ -c /dev/console ]; then
		exec </dev/console >/dev/console 2>&1
	fi
}

# gw_param NAME: the value of NAME=VALUE on the kernel command line; fails when absent.
gw_param() {
	set -f
	# shellcheck disable=SC2013 # words, not lines
	for w in $(cat "$GW_CMDLINE"); do
		case $w in
		"$1"=*)
			set +f
			echo "${w#*=}"
			return 0
			;;
		esac
	done
	set +f
	return 1
}

# One line per PCI function: address, vendor, device, class (as sysfs spells them).
gw_pci_list() {
	echo "GODWIT-PCI-BEGIN"
	for d in "$GW_SYS"/bus/pci/devices/*; do
		[ -e "$d/vendor" ] || continue
		drv=-
		[ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
		echo "pci: ${d##*/} vendor=$(cat "$d/vendor") device=$(cat "$d/device")" \
			"class=$(cat "$d/class") driver=$drv"
	done
	echo "GODWIT-PCI-END"
}

# Every ACPI table the kernel exposes (tables/ and tables/dynamic/), base64 between marker
# lines that carry its name (the sysfs file name, dynamic/ included) and its size in bytes.
gw_acpi_dump() {
	t=$GW_SYS/firmware/acpi/tables
	echo "GODWIT-ACPI-BEGIN"
	for f in "$t"/* "$t"/dynamic/*; do
		[ -f "$f" ] || continue
		name=${f#"$t"/}
		echo "GODWIT-ACPI-TABLE-BEGIN name=$name size=$(wc -c <"$f" | tr -d ' ')"
		base64 <"$f"
		echo "GODWIT-ACPI-TABLE-END name=$name"
	done
	echo "GODWIT-ACPI-END"
}

gw_info() {
	echo "GODWIT-INFO-BEGIN"
	echo "kernel: $(uname -r)"
	echo "nproc: $(nproc)"
	echo "cpus-online: $(cat "$GW_SYS/devices/system/cpu/online" 2>/dev/null)"
	echo "memtotal-kb: $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null)"
	gw_pci_list
	gw_acpi_dump
	echo "GODWIT-INFO-END"
}

gw_poweroff() {
	echo "GODWIT-LINUX-POWEROFF"
	# The console's tty still holds what was written (up to 4 KiB) while its UART sends it by
	# interrupt; powering off now cuts it short, and the kernel's own last line ("reboot: Power
	# down") lands in the middle of it. stty sets a mode with TCSADRAIN, which returns once the
	# tty's buffer is empty and the UART's transmitter too.
	stty -F /dev/console onlcr 2>/dev/null
	sync
	poweroff -f
	sleep 5
	echo "GODWIT-LINUX-POWEROFF-FAILED"
}

# insmod what mkinitramfs.sh put in, dependencies first.
gw_load_modules() {
	kver=$(cat /lib/modules/gw-kver)
	while read -r m; do
		name=$(basename "$m" .ko)
		if [ -d "/sys/module/$name" ]; then
			continue
		fi
		if ! insmod "/lib/modules/$kver/$m"; then
			echo "GODWIT-ECHO-FAIL insmod $m"
			return 1
		fi
		echo "GODWIT-MODULE-LOADED $name"
	done </lib/modules/gw-load-order
}

# gw_netdev VENDOR DEVICE: the network interface of the first PCI function with those IDs.
gw_netdev() {
	for n in "$GW_SYS"/class/net/*; do
		[ -e "$n/device/vendor" ] || continue
		if [ "$(cat "$n/device/vendor")" = "$1" ] && [ "$(cat "$n/device/device")" = "$2" ]; then
			echo "${n##*/}"
			return 0
		fi
	done
	return 1
}

# gw_wait SECONDS CMD...: runs CMD every 100 ms until it succeeds or SECONDS passed.
gw_wait() {
	tries=$(($1 * 10))
	shift
	while ! "$@"; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		usleep 100000
	done
}

gw_carrier() {
	[ "$(cat "$GW_SYS/class/net/$1/carrier" 2>/dev/null)" = 1 ]
}

gw_echo() {
	gw_load_modules || return 1
	if ! gw_wait 30 gw_netdev 0x8086 0x10ca >/dev/null; then
		echo "GODWIT-ECHO-FAIL no network interface bound to 8086:10ca within 30 s"
		return 1
	fi
	dev=$(gw_netdev 0x8086 0x10ca)
	echo "GODWIT-ECHO-NETDEV dev=$dev mac=$(cat "$GW_SYS/class/net/$dev/address")"
	# No IPv6 chatter on the port: its frames are the test's.
	v6=/proc/sys/net/ipv6/conf/$dev/disable_ipv6
	[ -w "$v6" ] && echo 1 >"$v6"
	if ! ip link set dev "$dev" up; then
		echo "GODWIT-ECHO-FAIL ip link set dev $dev up"
		return 1
	fi
	if ! gw_wait 60 gw_carrier "$dev"; then
		echo "GODWIT-ECHO-FAIL no carrier on $dev within 60 s"
		return 1
	fi
	echo "GODWIT-ECHO-CARRIER dev=$dev"
	gw-clockcheck &
	echo "GODWIT-ECHO-START dev=$dev"
	gw-lecho --announce-every 1000 --stats-every 10 "$dev"
	echo "GODWIT-ECHO-FAIL gw-lecho exited with $?"
	return 1
}

gw_shell() {
	echo "GODWIT-LINUX-SHELL"
	while :; do
		setsid cttyhack sh -l
		echo "GODWIT-LINUX-SHELL exited: starting another"
		sleep 1
	done
}

gw_main() {
	gw_mounts
	echo "GODWIT-LINUX-INIT-OK"
	test=$(gw_param gw.test) || test=
	echo "GODWIT-LINUX-TEST ${test:--}"
	case $test in
	probe)
		gw_poweroff # only the marker above: the boot probe of tests/hosts/testhost.sh
		;;
	clock)
		gw-clockcheck # its lines only: the guest's clocks against the host's
		;;
	info)
		# Kernel messages would break the base64 blocks: emergencies only meanwhile.
		read -r level _ </proc/sys/kernel/printk
		echo 1 >/proc/sys/kernel/printk
		gw_info
		echo "$level" >/proc/sys/kernel/printk
		gw_poweroff
		;;
	echo)
		gw_echo
		;;
	esac
	gw_shell # init must never end: the kernel panics when it does
}

if [ "${GW_INIT_LIB:-}" != 1 ]; then
	gw_main
fi
