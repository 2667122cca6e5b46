#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /init of a test host's initramfs (busybox): mounts the machine's root read-only and the
# project's shares read-write over virtio-9p, then hands over to the agent as PID 1.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do
	insmod "/modules/$m" 2>/dev/null
done

arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
SHARES=$(arg gw.shares | tr ',' ' ')
AGENT=$(arg gw.agent)
REAPER=$(arg gw.reaper)

fail() {
	echo "gw-testhost: init: $*"
	echo "GW-TESTHOST-FAILED"
	poweroff -f
}

mkdir -p /newroot
# cache=loose: the root is read-only and nobody changes it while a test host runs.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose gwroot /newroot ||
	fail "cannot mount the machine's root (virtio-9p tag gwroot)"
for d in tmp run var/tmp dev/shm; do
	mount -t tmpfs -o mode=1777 tmpfs "/newroot/$d" 2>/dev/null
done
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
i=0
for s in $SHARES; do
	mkdir -p "/newroot$s" 2>/dev/null
	# No cache: files the machine writes (jobs) must be seen at once, and the reverse.
	mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=512000 "gws$i" "/newroot$s" ||
		fail "cannot mount share $s (virtio-9p tag gws$i)"
	i=$((i + 1))
done
[ -x "/newroot$REAPER" ] || fail "$REAPER is not built"
# The agent runs from a copy, so that editing agent.sh cannot change a running host's loop.
exec switch_root /newroot "$REAPER" --init -- /bin/bash -c \
	'cp "$0" /run/gw-agent.sh && exec /bin/bash /run/gw-agent.sh' "$AGENT"
