#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the initramfs of godwit's Linux test guests at test time (it is never committed):
# Debian's static busybox with its applet links, the kernel's own igbvf.ko and what it depends
# on, godwit's static helpers gw-lecho and gw-clockcheck, and tests/linux/init.sh as /init.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() {
	cat <<USAGE
usage: mkinitramfs.sh --kernel VMLINUZ --out FILE.cpio.gz [--build BUILDDIR]
                      [--kver VERSION] [--modules-dir DIR] [--busybox PATH] [--help]
Writes a gzip'd newc cpio (files owned by 0:0) for booting VMLINUZ with godwit-vmm --initrd.
  --kernel VMLINUZ   the kernel the initramfs is for; its version (from the file name
                     vmlinuz-VERSION, else from the bzImage header) picks the modules
  --out FILE         where to write it (written to FILE.tmp, then renamed)
  --build BUILDDIR   godwit's build tree, holding tests/linux/gw-lecho and gw-clockcheck
                     (default: $REPO/build)
  --kver VERSION     the module version, instead of the one the kernel names
  --modules-dir DIR  where the module trees are (default: /lib/modules)
  --busybox PATH     a statically linked busybox (default: /bin/busybox, from busybox-static)
Exit codes: 0 written, 1 something it needs is missing (the message says what), 2 usage.
USAGE
}

die() {
	echo "mkinitramfs: $*" >&2
	exit 1
}

KERNEL='' OUT='' BUILD=$REPO/build KVER='' MODDIR=/lib/modules BUSYBOX=/bin/busybox
while [ $# -gt 0 ]; do
	case $1 in
	--kernel | --out | --build | --kver | --modules-dir | --busybox)
		[ $# -ge 2 ] || {
			usage >&2
			exit 2
		}
		case $1 in
		--kernel) KERNEL=$2 ;;
		--out) OUT=$2 ;;
		--build) BUILD=$2 ;;
		--kver) KVER=$2 ;;
		--modules-dir) MODDIR=$2 ;;
		--busybox) BUSYBOX=$2 ;;
		esac
		shift 2
		;;
	--help | -h)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
done
if [ -z "$KERNEL" ] || [ -z "$OUT" ]; then
	usage >&2
	exit 2
fi

for tool in cpio gzip readelf find sort; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/install-deps.sh installs it)"
done

# The version a bzImage names in its setup header: a pointer at 0x20E to a string 0x200 further
# on (Documentation/x86/boot.rst, "kernel_version").
image_version() {
	ptr=$(od -An -tu2 -j 526 -N 2 "$1" | tr -d ' ')
	[ -n "$ptr" ] && [ "$ptr" -gt 0 ] || return 1
	dd if="$1" bs=1 skip=$((ptr + 512)) count=128 2>/dev/null | tr '\0' '\n' | head -n 1 |
		cut -d' ' -f1
}

is_static() {
	readelf -lW "$1" 2>/dev/null | grep -q 'LOAD' &&
		! readelf -lW "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

[ -f "$KERNEL" ] || die "no kernel image $KERNEL"
if [ -z "$KVER" ]; then
	case $(basename "$KERNEL") in
	vmlinuz-?*) KVER=$(basename "$KERNEL" | sed 's/^vmlinuz-//') ;;
	*) KVER=$(image_version "$KERNEL") || KVER= ;;
	esac
fi
[ -n "$KVER" ] || die "cannot tell the version of $KERNEL: give --kver"
MODS=$MODDIR/$KVER
[ -f "$MODS/modules.dep" ] ||
	die "no modules for kernel $KVER ($MODS/modules.dep missing): install linux-image-$KVER"

[ -f "$BUSYBOX" ] || die "no busybox at $BUSYBOX: install busybox-static"
is_static "$BUSYBOX" || die "$BUSYBOX is not statically linked: install busybox-static"

LECHO=$BUILD/tests/linux/gw-lecho
CLOCKCHECK=$BUILD/tests/linux/gw-clockcheck
for h in "$LECHO" "$CLOCKCHECK"; do
	[ -x "$h" ] || die "helper $h is missing: build it (make -C $BUILD $(basename "$h"))"
	is_static "$h" || die "helper $h is not statically linked"
done

# igbvf and what modules.dep says it needs, dependencies first. A line of modules.dep is
# "path: dep-path dep-path ...", paths relative to the module tree.
dep_line() {
	awk -v m="$1" -F': *' '{ n = $1; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n) }
		n == m { print; exit }' "$MODS/modules.dep"
}
LINE=$(dep_line igbvf)
if [ -z "$LINE" ]; then
	if grep -q '/igbvf\.ko$' "$MODS/modules.builtin" 2>/dev/null; then
		die "igbvf is built into $KVER: this script expects it as a module"
	fi
	die "igbvf is not in $MODS/modules.dep: the kernel $KVER has no igbvf.ko"
fi
ORDER=''
add_module() { # a path relative to $MODS, its dependencies first
	case " $ORDER " in *" $1 "*) return 0 ;; esac
	deps=$(awk -v p="$1" -F': *' '$1 == p { print $2; exit }' "$MODS/modules.dep")
	for d in $deps; do
		add_module "$d"
	done
	ORDER="$ORDER $1"
}
add_module "${LINE%%:*}"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/gw-initramfs-XXXXXX")
trap 'rm -rf "$STAGE"' EXIT INT TERM
mkdir -p "$STAGE/bin" "$STAGE/sbin" "$STAGE/usr/bin" "$STAGE/usr/sbin" "$STAGE/dev" \
	"$STAGE/proc" "$STAGE/sys" "$STAGE/tmp" "$STAGE/root" "$STAGE/etc" \
	"$STAGE/lib/modules/$KVER"

cp "$BUSYBOX" "$STAGE/bin/busybox"
# Applet links as busybox itself places them (bin/sh, sbin/poweroff, usr/bin/nproc, ...).
"$BUSYBOX" --list-full | while read -r applet; do
	case $applet in
	*/*) ;;
	*) continue ;; # linuxrc: /init is ours
	esac
	[ "$applet" = bin/busybox ] && continue
	mkdir -p "$STAGE/$(dirname "$applet")"
	ln -sf /bin/busybox "$STAGE/$applet"
done
[ -L "$STAGE/bin/sh" ] || die "$BUSYBOX has no sh applet"

# Modules go in uncompressed (busybox's insmod reads plain ELF), under their own paths.
: >"$STAGE/lib/modules/gw-load-order"
for m in $ORDER; do
	src=$MODS/$m
	dst=$STAGE/lib/modules/$KVER/${m%.xz}
	dst=${dst%.zst}
	dst=${dst%.gz}
	[ -f "$src" ] || die "module $src is listed in modules.dep but missing"
	mkdir -p "$(dirname "$dst")"
	case $m in
	*.ko.xz) xz -dc "$src" >"$dst" || die "cannot decompress $src (xz)" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" || die "cannot decompress $src (zstd)" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" || die "cannot decompress $src (gzip)" ;;
	*) cp "$src" "$dst" ;;
	esac
	echo "${dst#"$STAGE/lib/modules/$KVER/"}" >>"$STAGE/lib/modules/gw-load-order"
done
echo "$KVER" >"$STAGE/lib/modules/gw-kver"

cp "$LECHO" "$CLOCKCHECK" "$STAGE/usr/bin/"
cp "$HERE/init.sh" "$STAGE/init"
chmod 0755 "$STAGE/init" "$STAGE/bin/busybox" "$STAGE/usr/bin/gw-lecho" \
	"$STAGE/usr/bin/gw-clockcheck"
# The kernel's built-in initramfs already has /dev/console, so this node is a second
# guarantee, where mknod is allowed.
mknod -m 0600 "$STAGE/dev/console" c 5 1 2>/dev/null || true

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9n >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
NAMES=$(echo "$ORDER" | sed 's|^ ||; s|[^ ]*/||g')
echo "mkinitramfs: $OUT for $KVER ($(wc -c <"$OUT") bytes): busybox, $NAMES, gw-lecho," \
	"gw-clockcheck"
