# SPDX-License-Identifier: Apache-2.0
# What the tests of Linux guests share (bash), sourced after tests/lib/gw_test.sh with BUILD
# set to the build tree:
#   LINUX_KERNEL, LINUX_INITRD  the kernel and the initramfs that `testhost.sh linux` chose and
#                               built (build/testhosts/), visible in the test hosts too
#   LINUX_CMDLINE               the command line every test starts from (quiet: on a nested
#                               KVM each console byte is an exit that costs about 0.5 ms)
#   linux_console_wait FILE PATTERN SECS   waits until FILE has a line matching PATTERN
LINUX_KERNEL=$(cat "$BUILD/testhosts/linux-kernel" 2>/dev/null)
LINUX_INITRD=$BUILD/testhosts/linux-guest.cpio.gz
LINUX_CMDLINE="console=ttyS0 quiet panic=-1"
# Kernels godwit-vmm unpacks on the host are cached where every test host can write.
export GODWIT_CACHE_DIR=$BUILD/testhosts/kernel-cache
if [ -z "$LINUX_KERNEL" ] || [ ! -s "$LINUX_INITRD" ]; then
	echo "FAIL: no Linux test initramfs: run tests/hosts/testhost.sh --build $BUILD linux"
	exit 1
fi

linux_console_wait() {
	local file=$1 pat=$2 secs=$3
	for _ in $(seq $((secs * 10))); do
		grep -Eq -- "$pat" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
