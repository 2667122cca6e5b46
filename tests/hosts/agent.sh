#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The agent of a test host: brings up KVM, the IOMMU-backed igb PF and the network, then runs
# the jobs that testhost.sh drops into the host's job folder (on the read-write share), each
# under gw-reaper so that a cancelled or finished job leaves nothing running.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp/home LANG=C.UTF-8
mkdir -p "$HOME"
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
NAME=$(arg gw.name)
DIR=$(arg gw.dir)
REAPER=$(arg gw.reaper)
IDX=$(arg gw.index)
JOBS=$DIR/$NAME/jobs
FACTS=$DIR/$NAME/facts
hostname "$NAME"
log() { echo "gw-testhost[$NAME]: $*" >/dev/console; }

ip link set lo up
# The control network (virtio-net) and the data network (QEMU's igb, an 82576 PF with SR-IOV).
modprobe virtio_net
modprobe igb
nic_of() { # DRIVER: the first interface bound to it
	local n
	for n in /sys/class/net/*; do
		[ "$(basename "$(readlink "$n/device/driver" 2>/dev/null)")" = "$1" ] && basename "$n" && return
	done
}
CTL=$(nic_of virtio_net)
PF=$(nic_of igb)
CTL_IP=10.77.0.$((10 + IDX))
PF_IP=10.77.1.$((10 + IDX))
[ -n "$CTL" ] && ip addr add "$CTL_IP/24" dev "$CTL" && ip link set "$CTL" up
[ -n "$PF" ] && ip addr add "$PF_IP/24" dev "$PF" && ip link set "$PF" up

# The CPU's AES and carry-less multiply for the kernel's crypto (kTLS), as udev loads them on a
# real host from the CPU's features (the test host has no udev).
grep -qw aes /proc/cpuinfo && modprobe aesni_intel
grep -qw pclmulqdq /proc/cpuinfo && modprobe ghash_clmulni_intel

# Nested KVM: whichever module the CPU model offers.
KVM_MOD=none
if grep -qw svm /proc/cpuinfo; then
	modprobe kvm_amd && KVM_MOD=kvm_amd
elif grep -qw vmx /proc/cpuinfo; then
	modprobe kvm_intel && KVM_MOD=kvm_intel
fi
# Every exit of the nested guests goes to the kernel's trace ring (a few MiB per CPU, the newest
# kept): when a guest is reset by a triple fault, SVM has already reset its vCPU, and the exits
# before it are what is left of where it was (run-test.sh prints them when a test fails).
T=/sys/kernel/tracing
[ -d "$T/events" ] || mount -t tracefs nodev "$T" 2>/dev/null
if [ -w "$T/events/kvm/kvm_exit/enable" ]; then
	echo 4096 >"$T/buffer_size_kb"
	echo 1 >"$T/events/kvm/kvm_exit/enable"
	echo 1 >"$T/events/kvm/kvm_inj_exception/enable"
fi
PF_PCI=
[ -n "$PF" ] && PF_PCI=$(basename "$(readlink "/sys/class/net/$PF/device")")
{
	echo "name=$NAME"
	echo "kernel=$(uname -r)"
	echo "kvm=$KVM_MOD"
	echo "kvm_dev=$([ -c /dev/kvm ] && echo yes || echo no)"
	echo "iommu_groups=$(ls /sys/kernel/iommu_groups 2>/dev/null | wc -l)"
	echo "ctl_if=$CTL"
	echo "ctl_ip=$CTL_IP"
	echo "pf_if=$PF"
	echo "pf_ip=$PF_IP"
	echo "pf_pci=$PF_PCI"
	echo "pf_totalvfs=$(cat "/sys/class/net/$PF/device/sriov_totalvfs" 2>/dev/null)"
} >"$FACTS.tmp"
mv "$FACTS.tmp" "$FACTS"

# An interactive shell on the second serial port, for `testhost.sh shell`.
(
	while :; do
		setsid -c /bin/bash -il </dev/ttyS1 >/dev/ttyS1 2>&1
		sleep 1
	done
) &

cancel_job() { # ID
	local id=$1
	if [ -e "$JOBS/$id.job" ] && rm -f "$JOBS/$id.job"; then
		echo 125 >"$JOBS/$id.rc" # cancelled before it started
	elif [ -s "$JOBS/$id.pid" ]; then
		kill -TERM "$(cat "$JOBS/$id.pid")" 2>/dev/null
	else
		return # started, its pid not yet written: look again next round
	fi
	rm -f "$JOBS/$id.cancel"
}

start_job() { # ID
	local id=$1 f=$JOBS/$1
	mv "$f.job" "$f.run" 2>/dev/null || return
	(
		"$REAPER" --quiet -- /bin/bash "$f.run" >"$f.out" 2>&1 </dev/null &
		echo $! >"$f.pid"
		wait $!
		echo $? >"$f.rc.tmp"
		mv "$f.rc.tmp" "$f.rc"
	) &
}

log "ready: kvm=$KVM_MOD ctl=$CTL_IP pf=$PF_IP ($PF_PCI)"
touch "$DIR/$NAME/ready"
shopt -s nullglob
# The pause between two looks at the job folder, without a fork: a read with a timeout on a fifo
# that nobody writes (a TCG machine forks slowly; an idle host should cost the machine nothing).
mkfifo /run/gw-agent.tick
exec 8<>/run/gw-agent.tick
# One directory read a round (no forks); quicker rounds for a few seconds after a job came or went.
busy=0
while :; do
	stop=0
	for f in "$JOBS"/*; do
		case $f in
		*.job) f=${f##*/}; start_job "${f%.job}"; busy=50 ;;
		*.rc) busy=50 ;; # a job just ended: the next one often follows
		*.cancel) f=${f##*/}; cancel_job "${f%.cancel}" ;;
		*/poweroff) stop=1 ;;
		esac
	done
	[ $stop = 1 ] && break
	if [ $busy -gt 0 ]; then
		busy=$((busy - 1))
		read -r -t 0.05 -u 8 _
	else
		read -r -t 0.5 -u 8 _
	fi
done
log "powering off"
