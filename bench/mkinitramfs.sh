#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the QEMU side's guest: a busybox initramfs whose init fills tmpfs from /dev/urandom
# (or keeps rewriting it) and then idles. Usage: mkinitramfs.sh OUT.cpio.gz
set -eu
OUT=$1
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/bin" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/data"
cp /bin/busybox "$ROOT/bin/busybox"
for a in sh mount dd sleep echo cat; do ln -s busybox "$ROOT/bin/$a"; done
cat >"$ROOT/init" <<'INIT'
#!/bin/sh
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t tmpfs -o size=1200m tmpfs /data
mib=512
mode=idle
for arg in $(cat /proc/cmdline); do
	case $arg in
	bench.mib=*) mib=${arg#bench.mib=} ;;
	bench.mode=*) mode=${arg#bench.mode=} ;;
	esac
done
dd if=/dev/urandom of=/data/fill bs=1M count="$mib" 2>/dev/null
echo "BENCH-FILLED $mib"
if [ "$mode" = dirty ]; then
	# Keep rewriting 64 MiB: a continuously dirtying workload.
	while true; do dd if=/dev/urandom of=/data/dirty bs=1M count=64 conv=notrunc 2>/dev/null; done
fi
while true; do sleep 3600; done
INIT
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$OUT"
