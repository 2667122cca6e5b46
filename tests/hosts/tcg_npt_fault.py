#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Does a test host's trace of a guest's last exits (run-test.sh) show the nested-paging fault
of QEMU's TCG SVM (tests/hosts/README.md, "Known faults")? Exit 0 if so, 1 if not.

The signature, for one vCPU: the shutdown was delivering a hardware page fault (intr_info
valid, type 3, vector 14) on an instruction fetch (error code bit 4) at a RIP the guest had
just been able to fetch from, as its last exit before the shutdown shows:
  - an `npf` at the same RIP (data/npt-fault.trace): KVM had just resolved the nested fault of
    that very fetch, whose guest-physical address the guest's own page tables had produced;
  - or an `io` exit whose next RIP (info2, SVM's EXITINFO2) is the shutdown's RIP
    (data/npt-fault-io.trace): the guest had fetched and run the IN or OUT just before it, and
    KVM resumed it at the next instruction, in the same kernel text;
  - or a `vintr` or `interrupt` exit at the same RIP, the exits before it there too
    (data/npt-fault-vintr.trace, integration_linux_migrate at 38dedc5: Linux's module text,
    40 such exits at one RIP in 8 ms): the guest was resumed, again and again, at an
    instruction it had reached by running there;
or, the last exit a `vintr` or `interrupt` at the same RIP and the shutdown delivering the
external interrupt KVM injected on re-entry (intr_info valid, type 0;
data/npt-fault-extint.trace, integration_linux_generations at 862aeaa: vector 0x22 into a
Linux kernel, whose IDT and stacks are always mapped);
or, a supervisor data access not present (error code without the present, user, reserved-bit
and fetch flags), the last exit an `npf` at the same RIP on the same kind of access (read or
write) in the final translation (info1 bit 32: the guest's own page tables had just produced
the guest-physical address KVM then mapped; data/npt-fault-data.trace, integration_nic_mailbox
at a36fe25: the test guest reading its .rodata, whose identity map never changes);
or, a supervisor data access (error code without the user, reserved-bit and fetch flags), the
last exit an `interrupt` at the same RIP (data/npt-fault-intr.trace: the test guest, at a
register-only `shl`): the guest ran nothing in between, and the access that faulted is the
delivery of an event on re-entry (its IDT or stack), which the guest keeps mapped.
In each case the guest's page fault cannot be the guest's: it is the emulated nested paging's."""
import re
import sys

EXIT = re.compile(r"^\s*(\S+)\s.*kvm_exit: vcpu \d+ reason (\S+) rip (0x[0-9a-f]+) "
                  r"info1 (0x[0-9a-f]+) info2 (0x[0-9a-f]+) "
                  r"intr_info (0x[0-9a-f]+) error_code (0x[0-9a-f]+)")


def matches(lines):
    last = {}
    stay = {}  # consecutive exits at the last exit's RIP
    for line in lines:
        m = EXIT.match(line)
        if not m:
            continue
        task, reason, rip, info1, info2, info, err = m.groups()
        rip, info1, info2 = int(rip, 16), int(info1, 16), int(info2, 16)
        if reason == "shutdown":
            prev = last.get(task)
            info, err = int(info, 16), int(err, 16)
            pf = (info & 0x80000000) and (info >> 8) & 7 == 3 and info & 0xff == 14
            fetched = prev and ((prev[0] == "npf" and prev[1] == rip) or
                                (prev[0] == "io" and prev[2] == rip) or
                                (prev[0] in ("vintr", "interrupt") and prev[1] == rip and
                                 stay.get(task, 0) >= 2))
            delivery = prev and prev[0] == "interrupt" and prev[1] == rip
            data = prev and prev[0] == "npf" and prev[1] == rip and prev[3] >> 32 & 1 and \
                not err & 0x1d and err & 0x2 == prev[3] & 0x2 and not prev[3] & 0x10
            extint = (info & 0x80000000) and (info >> 8) & 7 == 0 and prev and \
                prev[0] in ("vintr", "interrupt") and prev[1] == rip
            if pf and ((fetched and err & 0x10) or (delivery and not err & 0x1c) or data):
                return True
            if extint:
                return True
        stay[task] = stay.get(task, 0) + 1 if last.get(task, ("", None))[1] == rip else 1
        last[task] = (reason, rip, info2, info1)
    return False


if __name__ == "__main__":
    try:
        with open(sys.argv[1], errors="replace") as f:
            sys.exit(0 if matches(f) else 1)
    except OSError:
        sys.exit(1)
