#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A stock Linux kernel boots in godwit-vmm to the project's init, with 1 and with 2 vCPUs:
# the marker, nproc, the PCI functions Linux lists against those the VMM says it exposes, and
# the ACPI tables as Linux read them, disassembled by iasl. Then it powers off (exit code 0).
set -u
BUILD=$1
VMM=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/gw_test.sh"
. "$HERE/linux_lib.sh"
gw_tmp gw-linuxboot

for n in 1 2; do
	con=$TMP/console-$n
	t0=$SECONDS
	"$VMM" --memory 256M --cpus "$n" --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" \
		--cmdline "$LINUX_CMDLINE gw.test=info" --serial "file:$con" --json --timeout 400 \
		--vf "pf=0,vf=0,gen=1,mac=02:67:77:00:01:0$n,uplink=none" \
		>"$TMP/vmm-$n.json" 2>"$TMP/vmm-$n.err"
	rc=$?
	secs=$((SECONDS - t0))
	if [ "$rc" = 0 ] && grep -q GODWIT-LINUX-INIT-OK "$con" && grep -q "guest powered off" "$TMP/vmm-$n.err"; then
		pass "$n vCPU(s): booted to init and powered off (exit 0, $secs s)"
	else
		fail "$n vCPU(s): exit $rc"
		tail -n 15 "$con" "$TMP/vmm-$n.err" | sed 's/^/       /'
		continue
	fi
	if ! "$HERE/guest_info.py" "$con" "$TMP/acpi-$n" >"$TMP/info-$n.json" 2>"$TMP/info.err"; then
		fail "$n vCPU(s): no facts from the guest: $(cat "$TMP/info.err")"
		continue
	fi
	nproc=$(jget "$TMP/info-$n.json" "['nproc']")
	[ "$nproc" = "$n" ] && pass "$n vCPU(s): nproc says $nproc" ||
		fail "$n vCPU(s): nproc says $nproc"
	# The guest's view (bdf, vendor, device, class) against the VMM's own list.
	guest=$(jget "$TMP/info-$n.json" "['pci']" | python3 -c "import ast,sys
print(sorted((d['bdf'],d['vendor'],d['device'],d['class']) for d in ast.literal_eval(sys.stdin.read())))")
	vmm=$(jget "$TMP/vmm-$n.json" "['pci']" | python3 -c "import ast,sys
print(sorted((d['bdf'],d['vendor'],d['device'],d['class']) for d in ast.literal_eval(sys.stdin.read())))")
	if [ "$guest" = "$vmm" ] && echo "$guest" | grep -q "0x10ca"; then
		pass "$n vCPU(s): Linux lists the PCI functions the VMM exposes: $guest"
	else
		fail "$n vCPU(s): Linux lists $guest, the VMM exposes $vmm"
	fi
	driver=$(jget "$TMP/info-$n.json" "['pci'][1]['driver']")
	[ "$driver" = "-" ] || [ "$driver" = igbvf ] || fail "$n vCPU(s): the VF is bound to $driver"
	# Every table Linux found, disassembled; the four godwit builds must be among them.
	tables=$(python3 -c "import json,sys; print(' '.join(sorted(json.load(open(sys.argv[1]))['tables'])))" \
		"$TMP/info-$n.json")
	bad=
	for t in "$TMP/acpi-$n"/*; do
		(cd "$TMP/acpi-$n" && iasl -d "$(basename "$t")" >"$t.log" 2>&1) || bad="$bad $(basename "$t")"
	done
	want_ok=1
	for t in APIC DSDT FACP MCFG; do [ -s "$TMP/acpi-$n/$t.dsl" ] || want_ok=0; done
	if [ -z "$bad" ] && [ "$want_ok" = 1 ]; then
		pass "$n vCPU(s): iasl -d accepts every table Linux read: $tables"
	else
		fail "$n vCPU(s): iasl -d refused:${bad:- none} (tables: $tables)"
	fi
	lapics=$(grep -c "Subtable Type : 00 \[Processor Local APIC\]" "$TMP/acpi-$n/APIC.dsl")
	[ "$lapics" = "$n" ] && pass "$n vCPU(s): the MADT Linux read has $n local APICs" ||
		fail "$n vCPU(s): the MADT has $lapics local APICs"
done
gw_finish integration_linux_boot
