#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tcg_npt_fault.py, which decides whether run-test.sh reruns a test: it must match the traces of
# the nested-paging fault caught in the test hosts (data/npt-fault.trace after an npf exit,
# data/npt-fault-io.trace after an io exit, data/npt-fault-intr.trace after an interrupt exit,
# all 2026-12-04, data/npt-fault-vintr.trace after vintr exits at one RIP and
# data/npt-fault-extint.trace delivering an external interrupt after a vintr exit, 2026-12-05,
# data/npt-fault-data.trace on a data read after an npf exit for it, 2026-12-06) and nothing else: not the same
# traces with the shutdown elsewhere, not a fault of another vector, not the test guest's
# deliberate triple fault.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/gw_test.sh"
gw_tmp gw-nptfault
T=$HERE/data/npt-fault.trace
check() { # NAME WANT FILE
	/usr/bin/python3 "$HERE/tcg_npt_fault.py" "$3"
	[ "$?" = "$2" ] && pass "$1" || fail "$1: exit $?, wanted $2"
}
check "the fault caught in a test host matches" 0 "$T"
sed 's/reason shutdown rip 0x\([0-9a-f]*\)0 /reason shutdown rip 0x\11 /' "$T" >"$TMP/rip"
check "a shutdown at another RIP than the nested fault's does not" 1 "$TMP/rip"
sed 's/intr_info 0x80000b0e/intr_info 0x80000b0d/' "$T" >"$TMP/gp"
check "a shutdown delivering a #GP does not" 1 "$TMP/gp"
sed 's/error_code 0x00000010$/error_code 0x00000002/' "$T" >"$TMP/write"
check "a page fault on a write does not" 1 "$TMP/write"
I=$HERE/data/npt-fault-io.trace
check "the fault caught after an io exit matches" 0 "$I"
sed 's/reason shutdown rip 0xffffffff816aa475 /reason shutdown rip 0xffffffff816ab475 /' "$I" >"$TMP/iorip"
check "a shutdown after an io exit, not at its next RIP, does not" 1 "$TMP/iorip"
sed 's/intr_info 0x80000b0e error_code 0x00000010$/intr_info 0x80000b0e error_code 0x00000000/' "$I" >"$TMP/iodata"
check "a page fault on a read after an io exit does not" 1 "$TMP/iodata"
N=$HERE/data/npt-fault-intr.trace
check "the fault caught after an interrupt exit matches" 0 "$N"
sed 's/reason shutdown rip 0x100fb4 /reason shutdown rip 0x100fb8 /' "$N" >"$TMP/nrip"
check "a shutdown at another RIP than the interrupt exit's does not" 1 "$TMP/nrip"
sed 's/intr_info 0x80000b0e error_code 0x00000000$/intr_info 0x80000b0e error_code 0x00000004/' "$N" >"$TMP/nuser"
check "a user-mode page fault after an interrupt exit does not" 1 "$TMP/nuser"
V=$HERE/data/npt-fault-vintr.trace
check "the fault caught after vintr exits at one RIP matches" 0 "$V"
sed 's/reason shutdown rip 0xffffffffc06dd20c /reason shutdown rip 0xffffffffc06dd210 /' "$V" >"$TMP/vrip"
check "a shutdown at another RIP than the vintr exits' does not" 1 "$TMP/vrip"
tail -n 2 "$V" >"$TMP/vonce"
check "one vintr exit before the shutdown does not" 1 "$TMP/vonce"
sed 's/intr_info 0x80000b0e error_code 0x00000010$/intr_info 0x80000b0e error_code 0x00000002/' "$V" >"$TMP/vwrite"
check "a page fault on a write after vintr exits does not" 1 "$TMP/vwrite"
E=$HERE/data/npt-fault-extint.trace
check "the fault caught delivering an external interrupt after a vintr exit matches" 0 "$E"
sed 's/reason shutdown rip 0xffffffff810a8e6d /reason shutdown rip 0xffffffff810a8e70 /' "$E" >"$TMP/erip"
check "a shutdown at another RIP than the vintr exit's does not" 1 "$TMP/erip"
sed 's/intr_info 0x80000022 error_code/intr_info 0x80000322 error_code/' "$E" >"$TMP/eexc"
check "a shutdown delivering an exception (not an interrupt) there does not" 1 "$TMP/eexc"
sed 's/reason vintr rip 0xffffffff810a8e6d /reason msr rip 0xffffffff810a8e6d /' "$E" >"$TMP/emsr"
check "a shutdown after an msr exit at that RIP does not" 1 "$TMP/emsr"
D=$HERE/data/npt-fault-data.trace
check "the fault caught on a data read after an npf exit for it matches" 0 "$D"
sed 's/reason shutdown rip 0x103809 /reason shutdown rip 0x103810 /' "$D" >"$TMP/drip"
check "a shutdown at another RIP than the npf's does not" 1 "$TMP/drip"
sed 's/intr_info 0x80000b0e error_code 0x00000000$/intr_info 0x80000b0e error_code 0x00000002/' "$D" >"$TMP/dwrite"
check "a page fault on a write after an npf on a read does not" 1 "$TMP/dwrite"
sed 's/intr_info 0x80000b0e error_code 0x00000000$/intr_info 0x80000b0e error_code 0x00000001/' "$D" >"$TMP/dprot"
check "a protection fault (present) after it does not" 1 "$TMP/dprot"
sed 's/intr_info 0x80000b0e error_code 0x00000000$/intr_info 0x80000b0e error_code 0x00000004/' "$D" >"$TMP/duser"
check "a user-mode page fault after it does not" 1 "$TMP/duser"
sed 's/info1 0x0000000100000004 info2 0x0000000000104c50/info1 0x0000000200000006 info2 0x0000000000005000/' "$D" >"$TMP/dwalk"
check "an npf in the guest's page walk (not the final translation) does not" 1 "$TMP/dwalk"
cat >"$TMP/triple" <<'TR'
           vcpu0-1098    [001] .....   124.944635: kvm_exit: vcpu 0 reason io rip 0x1004d2 info1 0x0000000003f80010 info2 0x00000000001004d3 intr_info 0x00000000 error_code 0x00000000
           vcpu0-1098    [001] .....   124.945219: kvm_exit: vcpu 0 reason shutdown rip 0x101392 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x80000403 error_code 0x00000000
TR
check "the test guest's deliberate triple fault does not" 1 "$TMP/triple"
check "no trace at all does not" 1 "$TMP/none"
gw_finish tcg_npt_fault
