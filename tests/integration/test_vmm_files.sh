#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwit-vmm refuses files to boot that are not regular files (a FIFO nobody writes to, a
# directory, a device) at once, before it needs /dev/kvm: no KVM needed here.
set -u
VMM=$1
. "$(dirname "$0")/../lib/gw_test.sh"
gw_tmp gw-vmm-files
mkfifo "$TMP/fifo"
mkdir "$TMP/dir"
printf 'not a kernel' >"$TMP/file"

# timeout 20: a FIFO opened for reading would wait for a writer; 124 is that hang.
expect "a FIFO as --guest" 3 "'$TMP/fifo' is not a regular file \(a FIFO\)" -- \
	timeout 20 "$VMM" --memory 64M --guest "$TMP/fifo"
expect "a FIFO as --kernel" 3 "--kernel '$TMP/fifo' is not a regular file \(a FIFO\)" -- \
	timeout 20 "$VMM" --memory 64M --kernel "$TMP/fifo"
expect "a FIFO as --initrd" 3 "--initrd '$TMP/fifo' is not a regular file \(a FIFO\)" -- \
	timeout 20 "$VMM" --memory 64M --kernel "$TMP/file" --initrd "$TMP/fifo"
expect "a directory as --guest" 3 "is not a regular file \(a directory\)" -- \
	timeout 20 "$VMM" --memory 64M --guest "$TMP/dir"
expect "a device as --kernel" 3 "is not a regular file \(a character device\)" -- \
	timeout 20 "$VMM" --memory 64M --kernel /dev/null
expect "a missing --guest" 3 "cannot read --guest '$TMP/none': No such file" -- \
	timeout 20 "$VMM" --memory 64M --guest "$TMP/none"
gw_finish "godwit-vmm: files to boot"
