#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# QEMU test hosts: TCG machines with nested KVM, an Intel IOMMU and QEMU's igb (SR-IOV), on
# two shared virtual segments, whose root is this machine's root (read-only, virtio-9p) and
# whose project and build trees are shared read-write at the same paths. See tests/README.md.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)

usage() {
	cat <<EOF
usage: testhost.sh [--build DIR] COMMAND [ARGS]
  boot NAME... [--mem MIB] [--cpus N] [--no-wait]
                                     start test hosts (in the background) and wait for them
  up                                 probe native KVM, then boot h1 and h2 (CTest fixture)
  run NAME [--timeout S] [--env K=V]... [--] CMD...
                                     run CMD inside NAME (in the current directory) and
                                     return its exit code; 124 on timeout, 75 when the
                                     host itself died meanwhile
  shell NAME                         an interactive shell on NAME's second serial port
  status                             the hosts that run, with their facts
  probe                              can this machine run godwit's test guest on /dev/kvm?
                                     exit 0 if so (the result is kept for the tests)
  linux                              build the Linux test guests' initramfs, then probe
                                     whether /dev/kvm boots Linux (QEMU -accel kvm): exit 0
                                     if so (kept for the tests, like probe's)
  stop NAME...|all                   power hosts off (QEMU is killed after 20 s)
Hosts are named h1, h2, ...: host hN has 10.77.0.(10+N) on the control network (virtio-net)
and 10.77.1.(10+N) on its igb PF. --build defaults to \$GW_BUILD or $SRC/build.
Environment: GW_HOST_MEM (MiB, default 2800: all of it below 4 GiB, see boot_one), GW_HOST_CPUS
(default 2).
EOF
}

BUILD=${GW_BUILD:-$SRC/build}
if [ "${1:-}" = "--build" ]; then
	BUILD=$(cd "$2" && pwd)
	shift 2
fi
DIR=$BUILD/testhosts
REAPER=$BUILD/tests/hosts/gw-reaper
mkdir -p "$DIR"

die() {
	echo "testhost: $*" >&2
	exit 2
}

kernel_version() { # the newest Debian kernel whose modules are installed
	local k v
	for k in $(ls -v /boot/vmlinuz-* 2>/dev/null | sort -rV); do
		v=${k#/boot/vmlinuz-}
		[ -d "/lib/modules/$v" ] && echo "$v" && return
	done
}

# The initramfs: busybox and the modules that reach the 9p root; built once per build tree.
initramfs() {
	local v=$1 out=$DIR/initramfs-$v.cpio.gz
	[ -s "$out" ] && [ "$out" -nt "$HERE/init.sh" ] && echo "$out" && return
	local root m mods
	root=$(mktemp -d "$DIR/initramfs.XXXXXX")
	mkdir -p "$root/bin" "$root/modules" "$root/proc" "$root/sys" "$root/dev"
	cp /bin/busybox "$root/bin/busybox" || die "busybox-static is missing (scripts/install-deps.sh)"
	for a in sh mount insmod sed cat tr mkdir switch_root poweroff echo sleep; do
		ln -s busybox "$root/bin/$a"
	done
	mods=$(for m in 9p 9pnet_virtio virtio_pci; do
		modprobe --show-depends -S "$v" "$m" | awk '$1 == "insmod" {print $2}'
	done | awk '!seen[$0]++')
	: >"$root/modules.order"
	for m in $mods; do
		case $m in
		*.ko.xz) xz -dc "$m" >"$root/modules/$(basename "$m" .xz)" ;;
		*.ko.zst) zstd -qdc "$m" >"$root/modules/$(basename "$m" .zst)" ;;
		*) cp "$m" "$root/modules/" ;;
		esac
		basename "${m%.xz}" | sed 's/\.zst$//' >>"$root/modules.order"
	done
	cp "$HERE/init.sh" "$root/init"
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp" && mv "$out.tmp" "$out"
	rm -rf "$root"
	echo "$out"
}

# The two segments: UDP multicast on loopback, on ports chosen once per build tree so that
# two build trees on one machine do not share a wire.
segment_port() { # 0 control, 1 data
	[ -s "$DIR/segment-base" ] || echo $((20000 + RANDOM % 20000)) >"$DIR/segment-base"
	echo $(($(cat "$DIR/segment-base") + $1))
}

shares() { # the project tree, and the build tree when it lies outside it
	echo "$SRC"
	case "$BUILD/" in "$SRC"/*) ;; *) echo "$BUILD" ;; esac
}

host_pid() { # NAME: the pid of its QEMU, if it runs (a zombie or a reused pid does not count)
	local p st
	p=$(cat "$DIR/$1/qemu.pid" 2>/dev/null) || return 1
	[ -n "$p" ] || return 1
	st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] || return 1
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-name gw-$1 " || return 1
	echo "$p"
}

host_end() { # NAME: how a host that is gone ended: QEMU's "Triple fault" (-d cpu_reset) or errors
	local log=$DIR/$1/qemu-debug.log
	if grep -q "^Triple fault" "$log" 2>/dev/null; then
		echo "testhost: $1's kernel triple-faulted; QEMU's last CPU state:"
		sed -n '/^Triple fault/,$p' "$log" | grep -E "^(RAX|RSI|R8 |R12|RIP|EAX|ESI|EIP|CS |SS |CR0|EFER)" | head -n 12
	fi
	[ -s "$DIR/$1/qemu.log" ] && tail -n 5 "$DIR/$1/qemu.log"
	return 0
}

boot_one() { # NAME MEM CPUS
	local name=$1 mem=$2 cpus=$3 idx v img qemu
	case $name in h[0-9]*) idx=${name#h} ;; *) die "host names are h1, h2, ...: $name" ;; esac
	if host_pid "$name" >/dev/null; then
		return 0
	fi
	qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 is missing (scripts/install-deps.sh)"
	v=$(kernel_version)
	[ -n "$v" ] || die "no kernel in /boot with modules in /lib/modules (linux-image-amd64)"
	[ -x "$REAPER" ] || die "$REAPER is not built (make build)"
	img=$(initramfs "$v") || exit 2
	rm -rf "${DIR:?}/$name"
	mkdir -p "$DIR/$name/jobs"
	local sh_args=() i=0 s list=""
	for s in $(shares); do
		sh_args+=(-fsdev "local,id=gws$i,path=$s,security_model=none,multidevs=remap"
			-device "virtio-9p-pci,fsdev=gws$i,mount_tag=gws$i")
		list="$list${list:+,}$s"
		i=$((i + 1))
	done
	local mac
	mac=$(printf '%02x' "$idx")
	# The igb's VFs must sit below 4 GiB: QEMU 10's VFs declare 32-bit BARs while the PF's
	# SR-IOV capability offers 64-bit ones, so a VF placed above 4 GiB is decoded at its
	# address's low 32 bits (`info pci` shows it), where nothing reaches it. SeaBIOS moves 64-bit
	# BARs above 4 GiB when the machine has RAM there (q35 puts RAM there from 2816 MiB on:
	# hence the default of 2800); with no 64-bit PCI window either (pci-hole64-size=0), Linux
	# has only the 32-bit window for the SR-IOV BARs.
	# no_timer_check: Linux measures whether the IO-APIC timer ticks within a busy loop and, with
	# interrupt remapping on, panics when it does not ("timer doesn't work through
	# Interrupt-remapped IO-APIC"); a TCG machine on a loaded host is simply too slow for it.
	# -d cpu_reset -D: QEMU writes "Triple fault" and the CPU's registers there when the host's
	# own kernel triple-faults (QEMU then exits, -no-reboot), and with a log file it keeps its
	# stderr (its own errors) after -daemonize instead of sending it to /dev/null.
	"$qemu" -name "gw-$name" -nodefaults -display none -no-reboot \
		-d cpu_reset -D "$DIR/$name/qemu-debug.log" \
		-machine q35,kernel-irqchip=split -accel tcg,thread=multi -cpu max \
		-global q35-pcihost.pci-hole64-size=0 \
		-smp "$cpus" -m "$mem" \
		-device intel-iommu,intremap=on \
		-kernel "/boot/vmlinuz-$v" -initrd "$img" \
		-append "console=ttyS0 loglevel=4 panic=-1 intel_iommu=on no_timer_check rdinit=/init gw.name=$name gw.index=$idx gw.dir=$DIR gw.shares=$list gw.agent=$HERE/agent.sh gw.reaper=$REAPER" \
		-fsdev "local,id=gwroot,path=/,readonly=on,security_model=none,multidevs=remap" \
		-device virtio-9p-pci,fsdev=gwroot,mount_tag=gwroot \
		"${sh_args[@]}" \
		-netdev "socket,id=ctl,mcast=230.0.77.1:$(segment_port 0),localaddr=127.0.0.1" \
		-device "virtio-net-pci,netdev=ctl,mac=52:54:00:77:00:$mac" \
		-netdev "socket,id=dat,mcast=230.0.77.1:$(segment_port 1),localaddr=127.0.0.1" \
		-device "igb,netdev=dat,mac=52:54:00:77:01:$mac" \
		-serial "file:$DIR/$name/console.log" \
		-serial "unix:$DIR/$name/shell.sock,server=on,wait=off" \
		-qmp "unix:$DIR/$name/qmp.sock,server=on,wait=off" \
		-pidfile "$DIR/$name/qemu.pid" -daemonize \
		>"$DIR/$name/qemu.log" 2>&1 9>&- </dev/null ||
		die "$name: QEMU did not start: $(tail -n 3 "$DIR/$name/qemu.log")"
}

wait_ready() { # NAME TIMEOUT
	local name=$1 t=$2 i
	for ((i = 0; i < t * 10; i++)); do
		[ -e "$DIR/$name/ready" ] && return 0
		if ! host_pid "$name" >/dev/null; then
			echo "testhost: $name stopped while booting; its console, then QEMU's:" >&2
			tail -n 20 "$DIR/$name/console.log" >&2
			tail -n 2 "$DIR/$name/qemu.log" >&2
			return 3
		fi
		if grep -q GW-TESTHOST-FAILED "$DIR/$name/console.log" 2>/dev/null; then
			tail -n 20 "$DIR/$name/console.log" >&2
			return 2
		fi
		sleep 0.1
	done
	echo "testhost: $name not ready after ${t}s; its console:" >&2
	tail -n 20 "$DIR/$name/console.log" >&2
	return 2
}

cmd_boot() {
	local names=() mem=${GW_HOST_MEM:-2800} cpus=${GW_HOST_CPUS:-2} nowait=0
	while [ $# -gt 0 ]; do
		case $1 in
		--no-wait) nowait=1; shift ;;
		--mem) mem=$2; shift 2 ;;
		--cpus) cpus=$2; shift 2 ;;
		*) names+=("$1"); shift ;;
		esac
	done
	[ ${#names[@]} -gt 0 ] || die "boot: name a host (h1, h2, ...)"
	local n t0=$SECONDS rc=0
	(
		flock 9
		for n in "${names[@]}"; do boot_one "$n" "$mem" "$cpus" || exit 2; done
	) 9>"$DIR/lock" || exit 2
	[ $nowait = 1 ] && echo "testhost: ${names[*]} booting" && return 0
	# A host whose QEMU ends while it boots is booted again, twice at most: seen once, QEMU
	# 10's TCG aborting on an assertion of its own (iotlb_to_section) before the kernel ran.
	local try r
	for n in "${names[@]}"; do
		for try in 1 2 3; do
			wait_ready "$n" 300
			r=$?
			[ $r = 0 ] && break
			if [ $r = 3 ] && [ $try -lt 3 ]; then
				echo "testhost: booting $n again" >&2
				(
					flock 9
					boot_one "$n" "$mem" "$cpus"
				) 9>"$DIR/lock" && continue
			fi
			rc=2
			break
		done
	done
	[ $rc -eq 0 ] && echo "testhost: ${names[*]} ready in $((SECONDS - t0)) s"
	return $rc
}

cmd_probe() {
	local out=$DIR/kvm-probe
	if [ "${GODWIT_NO_KVM:-0}" = 1 ]; then
		echo "no GODWIT_NO_KVM=1" >"$out"
	elif [ ! -e /dev/kvm ]; then
		echo "no /dev/kvm does not exist" >"$out"
	elif timeout 120 "$BUILD/vmm/godwit-vmm" --memory 16M \
		--guest "$BUILD/tests/guest/godwit-test-guest" --cmdline hello --serial stdio \
		--log-level error 2>&1 | grep -q GODWIT-GUEST-HELLO; then
		echo "yes /dev/kvm runs godwit's test guest" >"$out"
	else
		echo "no /dev/kvm does not run godwit's test guest" >"$out"
	fi
	echo "testhost: native KVM: $(cut -d' ' -f2- "$out")"
	[ "$(cut -d' ' -f1 "$out")" = yes ]
}

# The initramfs of the Linux test guests (tests/linux/), for the newest kernel in /boot (or
# GW_LINUX_KERNEL), built once per build tree where every host sees it.
linux_kernel() {
	if [ -n "${GW_LINUX_KERNEL:-}" ]; then
		echo "$GW_LINUX_KERNEL"
	else
		ls -v /boot/vmlinuz-* 2>/dev/null | tail -n1
	fi
}

cmd_linux() {
	local k out=$DIR/linux-probe img=$DIR/linux-guest.cpio.gz
	k=$(linux_kernel)
	[ -n "$k" ] || die "no kernel in /boot: run scripts/install-deps.sh (linux-image-amd64)"
	mkdir -p "$DIR"
	if [ ! -s "$img" ] || [ "$img" -ot "$k" ] || [ "$img" -ot "$SRC/tests/linux/init.sh" ] ||
		[ "$img" -ot "$BUILD/tests/linux/gw-lecho" ] ||
		[ "$img" -ot "$BUILD/tests/linux/gw-clockcheck" ]; then
		"$SRC/tests/linux/mkinitramfs.sh" --kernel "$k" --out "$img.tmp" --build "$BUILD" >&2 ||
			die "cannot build the Linux test initramfs"
		mv "$img.tmp" "$img"
	fi
	echo "$k" >"$DIR/linux-kernel"
	# A paravirtual /dev/kvm (kvm_pvm) runs godwit's test guest but hangs a stock kernel
	# after its decompressor: QEMU's own boot of the same kernel tells, with godwit out of it.
	if [ "${GODWIT_NO_KVM:-0}" = 1 ]; then
		echo "no GODWIT_NO_KVM=1" >"$out"
	elif [ ! -e /dev/kvm ]; then
		echo "no /dev/kvm does not exist" >"$out"
	elif timeout 40 qemu-system-x86_64 -accel kvm -cpu host -m 256 -nodefaults -display none \
		-no-reboot -serial stdio -kernel "$k" -initrd "$img" \
		-append "console=ttyS0 quiet panic=-1 gw.test=probe" 2>&1 |
		grep -q GODWIT-LINUX-INIT-OK; then
		echo "yes /dev/kvm boots Linux (QEMU, $(basename "$k"))" >"$out"
	else
		echo "no /dev/kvm does not boot Linux within 40 s (QEMU, $(basename "$k"))" >"$out"
	fi
	echo "testhost: native KVM for Linux guests: $(cut -d' ' -f2- "$out")"
	[ "$(cut -d' ' -f1 "$out")" = yes ]
}

cmd_run() {
	local name=$1 timeout=0 envs=()
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) timeout=$2; shift 2 ;;
		--env) envs+=("$2"); shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	[ $# -gt 0 ] || die "run: no command"
	wait_ready "$name" 300 || exit 2
	local id f
	id=$(date +%s%N)-$$
	f=$DIR/$name/jobs/$id
	{
		echo "cd $(printf '%q' "$PWD") || exit 125"
		local e
		# What the test's environment says (the sanitizers' options too, for make
		# sanitize), but never the switch that sends it here.
		while IFS= read -r e; do
			echo "export $(printf '%q' "$e")"
		done < <(env | grep -E '^(GW_|GODWIT_|CTEST_|LANG=|TERM=|[AUL]SAN_OPTIONS=)' |
			grep -v '^GODWIT_NO_KVM=')
		for e in "${envs[@]}"; do echo "export $(printf '%q' "$e")"; done
		printf 'exec'
		printf ' %q' "$@"
		echo
	} >"$f.tmp"
	mv "$f.tmp" "$f.job"
	cancelled=0
	cancel() {
		cancelled=1
		touch "$f.cancel"
	}
	trap cancel TERM INT HUP
	local off=0 size fin start=$SECONDS deadline=0
	while :; do
		fin=0
		[ -e "$f.rc" ] && fin=1
		size=$(stat -c %s "$f.out" 2>/dev/null || echo 0)
		if [ "$size" -gt "$off" ]; then
			tail -c +$((off + 1)) "$f.out" | head -c $((size - off))
			off=$size
		fi
		[ $fin = 1 ] && break
		if [ "$timeout" -gt 0 ] && [ $((SECONDS - start)) -ge "$timeout" ] && [ ! -e "$f.cancel" ]; then
			echo "testhost: $name: '$*' timed out after ${timeout}s; cancelled" >&2
			cancel
		fi
		if [ $cancelled = 1 ]; then
			[ $deadline = 0 ] && deadline=$((SECONDS + 20))
			[ $SECONDS -ge $deadline ] && { echo "testhost: $name: the job did not end" >&2; exit 125; }
		fi
		if ! host_pid "$name" >/dev/null; then
			echo "testhost: $name is gone (QEMU exited); its console:" >&2
			tail -n 20 "$DIR/$name/console.log" >&2
			host_end "$name" >&2
			exit 75 # EX_TEMPFAIL: the host, not the job
		fi
		sleep 0.1
	done
	local rc
	rc=$(cat "$f.rc")
	rm -f "$f.run" "$f.out" "$f.rc" "$f.pid"
	[ $cancelled = 1 ] && [ "$timeout" -gt 0 ] && exit 124
	exit "$rc"
}

cmd_stop() {
	local names=("$@") n p i
	if [ "${1:-}" = all ]; then
		names=()
		for n in "$DIR"/h*/; do [ -d "$n" ] && names+=("$(basename "$n")"); done
	fi
	for n in "${names[@]}"; do
		p=$(host_pid "$n") || continue
		touch "$DIR/$n/jobs/poweroff"
		for ((i = 0; i < 200; i++)); do host_pid "$n" >/dev/null || break; sleep 0.1; done
		host_pid "$n" >/dev/null && kill -KILL "$p" 2>/dev/null && echo "testhost: $n did not power off; killed"
		echo "testhost: $n stopped"
	done
	return 0
}

cmd_status() {
	local n
	for n in "$DIR"/h*/; do
		[ -d "$n" ] || continue
		n=$(basename "$n")
		if host_pid "$n" >/dev/null; then
			echo "$n: running (qemu pid $(host_pid "$n"))"
			sed 's/^/  /' "$DIR/$n/facts" 2>/dev/null
		else
			echo "$n: stopped"
		fi
	done
}

cmd_shell() {
	local name=$1
	wait_ready "$name" 300 || exit 2
	echo "testhost: shell on $name (leave with Ctrl-])" >&2
	exec /usr/bin/python3 "$HERE/console.py" "$DIR/$name/shell.sock"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
boot) cmd_boot "$@" ;;
up)
	# Booting waits even where native KVM runs the tests: two TCG machines booting take both
	# cores for half a minute, and a native test beside them ran its guest too slowly to test
	# what it meant to (auto-converge saw no dirtying to throttle).
	cmd_probe
	cmd_linux || true
	cmd_boot h1 h2
	;;
run) [ $# -gt 0 ] || die "run: name a host"; cmd_run "$@" ;;
shell) [ $# -gt 0 ] || die "shell: name a host"; cmd_shell "$1" ;;
status) cmd_status ;;
probe) cmd_probe ;;
linux) cmd_linux ;;
stop) cmd_stop "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
