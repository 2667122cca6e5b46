#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Does a test host's trace of a guest's last exits (run-test.sh) show the nested-paging fault
of QEMU's TCG SVM (tests/hosts/README.md, "Known faults")? Exit 0 if so, 1 if not.

The signature, for one vCPU: its last exit before `reason shutdown` is an `npf` at the same
RIP, and the shutdown was delivering a hardware page fault (intr_info valid, type 3,
vector 14) on an instruction fetch (error code bit 4). KVM had just resolved the nested fault
of that very fetch, whose guest-physical address the guest's own page tables had produced, so
the guest's page fault cannot be the guest's: it is the emulated nested paging's."""
import re
import sys

EXIT = re.compile(r"^\s*(\S+)\s.*kvm_exit: vcpu \d+ reason (\S+) rip (0x[0-9a-f]+) .*"
                  r"intr_info (0x[0-9a-f]+) error_code (0x[0-9a-f]+)")


def matches(lines):
    last = {}
    for line in lines:
        m = EXIT.match(line)
        if not m:
            continue
        task, reason, rip, info, err = m.groups()
        if reason == "shutdown":
            prev = last.get(task)
            info, err = int(info, 16), int(err, 16)
            pf = (info & 0x80000000) and (info >> 8) & 7 == 3 and info & 0xff == 14
            if prev and prev[0] == "npf" and prev[1] == rip and pf and err & 0x10:
                return True
        last[task] = (reason, rip)
    return False


if __name__ == "__main__":
    try:
        with open(sys.argv[1], errors="replace") as f:
            sys.exit(0 if matches(f) else 1)
    except OSError:
        sys.exit(1)
