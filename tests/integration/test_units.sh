#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# godwitd's systemd units as `make install` writes them: staged under a DESTDIR, ExecStart at the
# installed godwitd, and passing `systemd-analyze verify` without a word (a deliberately broken
# copy proves that the check speaks up); their key directives; and the sandbox's exposure score.
set -u
BUILD=$1
. "$(dirname "$0")/../lib/gw_test.sh"
if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: systemd-analyze is not installed"
	exit 77
fi
gw_tmp gw-units

ROOT=$TMP/root
if DESTDIR=$ROOT cmake --install "$BUILD" --prefix /usr >"$TMP/install.log" 2>&1; then
	pass "cmake --install stages the files"
else
	fail "cmake --install: $(tail -3 "$TMP/install.log")"
fi
UNITDIR=$(sed -n 's/^GODWIT_SYSTEMD_UNIT_DIR:PATH=//p' "$BUILD/CMakeCache.txt")
for f in usr/bin/godwitd usr/bin/godwit-vmm usr/bin/godwit; do
	[ -x "$ROOT/$f" ] && pass "installed $f" || fail "$f missing"
done
SVC=$ROOT$UNITDIR/godwitd.service
SOCK=$ROOT$UNITDIR/godwitd.socket
[ -f "$SVC" ] && [ -f "$SOCK" ] && pass "units in $UNITDIR" || fail "units not in $ROOT$UNITDIR"

has() { # NAME FILE REGEX
	grep -Eq -- "$3" "$2" && pass "$1" || fail "$1: no /$3/ in $(basename "$2")"
}
has "ExecStart runs the installed godwitd" "$SVC" '^ExecStart=/usr/bin/godwitd --state-dir /var/lib/godwit '
has "Type=notify" "$SVC" '^Type=notify$'
has "a watchdog" "$SVC" '^WatchdogSec=[1-9]'
has "VMs outlive a stop (KillMode=process)" "$SVC" '^KillMode=process$'
has "ProtectSystem=strict with the state directory writable" "$SVC" '^StateDirectory=godwit$'
has "ProtectSystem=strict" "$SVC" '^ProtectSystem=strict$'
has "only allowed devices" "$SVC" '^DevicePolicy=closed$'
has "/dev/kvm allowed" "$SVC" '^DeviceAllow=/dev/kvm rw$'
has "/dev/vfio allowed" "$SVC" '^DeviceAllow=/dev/vfio/vfio rw$'
has "VFIO groups allowed" "$SVC" '^DeviceAllow=char-vfio rw$'
has "socket at the CLI's default path" "$SOCK" '^ListenStream=/var/lib/godwit/godwitd.sock$'
has "socket for its owner only" "$SOCK" '^SocketMode=0600$'

# verify wants ExecStart's binary to exist: point it at the staged one.
mkdir "$TMP/v"
sed "s#^ExecStart=/usr/bin/godwitd#ExecStart=$ROOT/usr/bin/godwitd#" "$SVC" >"$TMP/v/godwitd.service"
cp "$SOCK" "$TMP/v/godwitd.socket"
if (cd "$TMP/v" && systemd-analyze verify --man=no "$TMP/v/godwitd.service" "$TMP/v/godwitd.socket") >"$TMP/verify.out" 2>&1 &&
	[ ! -s "$TMP/verify.out" ]; then
	pass "systemd-analyze verify: no error, no warning"
else
	fail "systemd-analyze verify: $(cat "$TMP/verify.out")"
fi
mkdir "$TMP/bad"
sed 's/^KillMode=process/KillMode=sometimes/' "$TMP/v/godwitd.service" >"$TMP/bad/godwitd.service"
(cd "$TMP/bad" && systemd-analyze verify --man=no "$TMP/bad/godwitd.service") >"$TMP/bad.out" 2>&1
grep -q "kill mode" "$TMP/bad.out" && pass "a broken unit is reported (the check works)" ||
	fail "a broken unit went unnoticed: $(cat "$TMP/bad.out")"

# The sandbox as systemd scores it (0 best, 10 worst); a root daemon that runs KVM and VFIO
# cannot be fully confined, but must not lose what it has.
if systemd-analyze security --help 2>&1 | grep -q -- --offline; then
	systemd-analyze security --offline=yes "$TMP/v/godwitd.service" >"$TMP/sec.out" 2>&1
	score=$(sed -n 's/.*Overall exposure level for godwitd.service: \([0-9.]*\).*/\1/p' "$TMP/sec.out")
	echo "# exposure level: $score"
	if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 5.5) }'; then
		pass "exposure level $score <= 5.5"
	else
		fail "exposure level '$score': $(tail -3 "$TMP/sec.out")"
	fi
fi
gw_finish "systemd units"
